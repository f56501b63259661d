"""viaseg.core: everything that is not a widget. Never imports Qt."""

import os as _os

# oneDNN stays on (about 1.9x faster training on this CPU); viaseg.core.ml.tfsetup switches off Grappler's remapper
# pass, after whose failure it used to crash (and the U-Net avoids a layer shape oneDNN crashes on). The log
# level must be set before TensorFlow is imported.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
