"""viaseg.core.base: errors and atomic writes: what every layer may use."""
