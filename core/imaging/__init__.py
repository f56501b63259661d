"""viaseg.core.imaging: decoding photos (EXIF, bit depths, reduced-scale decode); no TensorFlow."""
