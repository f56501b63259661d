"""viaseg.core.assist.segment: click to segment (the AI region tool) from a probability map, clicks and the photo; no Qt, no TensorFlow."""
