"""viaseg.gui: the PySide6 desktop app (annotation, training, prediction)."""
