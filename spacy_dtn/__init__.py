"""Dynamic Transfer Networks for named entity recognition, as spaCy components."""
from . import ner_component, tagger_model, transfer_corpus  # noqa: F401  (registrations)

__version__ = "0.1.0"
