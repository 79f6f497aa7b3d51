"""Dynamic Transfer Networks for named entity recognition, as spaCy components."""
# Before the imports: the component stamps it into the cfg of saved pipelines.
__version__ = "0.1.0"

from . import case_variants, corpus_checks, ner_component, note_sentences, tagger_model, transfer_corpus, transformer_model  # noqa: E402,F401  (registrations)
