"""Dynamic Transfer Networks for named entity recognition, as spaCy components."""

__version__ = "0.1.0"
