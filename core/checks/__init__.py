"""viaseg.core.checks.checks: dataset checks (one rule per problem kind, the one copy rule) and label-error areas and fixes; no TensorFlow."""
