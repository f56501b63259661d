"""viaseg.gui: the PySide6 desktop app (annotation, training, prediction)."""

from . import _refguard

_refguard.start()  # PySide6 6.12 on Python 3.11 under-counts None/True/False: see _refguard
