"""viaseg.core.annotation: the annotation model (Region, ImageEntry, Project), datasets, edits and history, the journal, regions <-> masks; no TensorFlow."""
