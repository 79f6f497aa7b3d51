"""Converters from clinical and biomedical NER corpus formats to spaCy Docs.

Importing this package registers the corpus readers
(`spacy_dtn.IOBCorpus.v1`, `spacy_dtn.BratCorpus.v2`,
`spacy_dtn.I2B2ConceptCorpus.v2`, `spacy_dtn.I2B2DeidCorpus.v2`, and the v1
names of the last three). Every converter writes the flat entity layer to
`doc.ents` and every annotated entity, nested and overlapping ones included,
to `doc.spans[ALL_ENTITIES_KEY]` ("entities_all").
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
from .sentences import SPLITTERS
from .spans import ALL_ENTITIES_KEY
from .stats import ConversionStats

__all__ = [
    "ALL_ENTITIES_KEY",
    "FORMATS",
    "SPLITTERS",
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
