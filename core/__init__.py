"""viaseg.core: everything that is not a widget. Never imports Qt."""

import os as _os

# oneDNN stays on (about 1.9x faster training on this CPU); its crash here came from Grappler's remapper pass,
# which viaseg.core.tfsetup switches off. The log level must be set before TensorFlow is imported.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
