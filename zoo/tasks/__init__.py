"""Evaluation hooks by task; the core registers ``image-classification`` (``zoo.tasks.classification.evaluate``)."""
