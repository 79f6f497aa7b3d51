"""Converters from clinical and biomedical NER corpus formats to spaCy Docs.

Importing this package registers the corpus readers
(`spacy_dtn.IOBCorpus.v1`, `spacy_dtn.BratCorpus.v1`,
`spacy_dtn.I2B2ConceptCorpus.v1`, `spacy_dtn.I2B2DeidCorpus.v1`).
"""
from .brat import read_brat
from .convert import FORMATS, convert, load_docs
from .errors import ConversionError
from .i2b2_2010 import read_i2b2_2010
from .i2b2_xml import read_i2b2_xml
from .iob import read_iob
from .readers import (
    create_brat_reader,
    create_i2b2_concept_reader,
    create_i2b2_deid_reader,
    create_iob_reader,
)
from .sampling import subsample
from .stats import ConversionStats

__all__ = [
    "FORMATS",
    "ConversionError",
    "ConversionStats",
    "convert",
    "create_brat_reader",
    "create_i2b2_concept_reader",
    "create_i2b2_deid_reader",
    "create_iob_reader",
    "load_docs",
    "read_brat",
    "read_i2b2_2010",
    "read_i2b2_xml",
    "read_iob",
    "subsample",
]
