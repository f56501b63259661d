"""viaseg: label, correct and segment damage in photos (installed as ``viaseg.core`` and ``viaseg.gui``)."""

__version__ = "0.1.0"
