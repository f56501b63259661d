"""viaseg.core.ml: training options and events (no TF), data pipeline, U-Net, training, prediction, evaluation, cross-validation, export, improve-from-corrections."""
