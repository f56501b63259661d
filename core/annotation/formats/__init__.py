"""viaseg.core.annotation.formats: VIA 1/2/3 JSON and CSV, COCO, labelme: read and write; no TensorFlow."""
