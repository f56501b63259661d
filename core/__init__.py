"""viaseg.core: everything that is not a widget. Never imports Qt."""

import os as _os

# TensorFlow's oneDNN graph rewrites crashed training here with glibc heap corruption ("double free or
# corruption" after "remapper failed"), 3 runs of 3; with them off, 40- and 50-epoch runs were clean.
# Must be set before TensorFlow is imported, and every engine path imports viaseg.core first.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
