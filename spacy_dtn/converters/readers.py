"""Corpus readers for spaCy configs, reading the raw formats directly.

`[corpora.train] @readers = "spacy_dtn.BratCorpus.v1"` spares a separate
conversion step. Each reader converts exactly as the command line does
(same tokenizer, policy and sub-sample for the same seed), so a config and
a converted `.spacy` file train on the same data. The predicted Doc of each
Example copies the reference tokens, so gold and predicted tokenization
always align.
"""
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .brat import read_brat
from .convert import ReadFunction, load_docs
from .i2b2_2010 import read_i2b2_2010
from .i2b2_xml import read_i2b2_xml
from .iob import read_iob
from .sampling import check_sampling_args
from .stats import ConversionStats


class ConvertedCorpus:
    """Callable that reads a corpus into Examples each time it is called
    (once per epoch in `spacy train`), like `spacy.Corpus.v1`. `stats` holds
    the merge/drop counts of the latest read."""

    def __init__(
        self,
        read: ReadFunction,
        path: Path,
        fraction: Optional[float] = None,
        count: Optional[int] = None,
        seed: int = 0,
    ) -> None:
        check_sampling_args(fraction, count)
        self.read = read
        self.path = Path(path)
        self.fraction = fraction
        self.count = count
        self.seed = seed
        self.stats = ConversionStats()

    def __call__(self, nlp: Language) -> Iterator[Example]:
        # A blank pipeline of the same language sharing nlp's vocab: the
        # tokenization the command line uses, with strings in nlp's StringStore.
        tokenizer_nlp = spacy.blank(nlp.lang, vocab=nlp.vocab)
        self.stats = ConversionStats()
        docs = load_docs(
            self.read, self.path, tokenizer_nlp, self.stats, self.fraction, self.count, self.seed
        )
        for reference in docs:
            predicted = Doc(
                nlp.vocab,
                words=[token.text for token in reference],
                spaces=[bool(token.whitespace_) for token in reference],
            )
            yield Example(predicted, reference)


@registry.readers("spacy_dtn.IOBCorpus.v1")
def create_iob_reader(
    path: Path, fraction: Optional[float] = None, count: Optional[int] = None, seed: int = 0
) -> Callable[[Language], Iterable[Example]]:
    """Read an IOB/CoNLL file or folder (BIO, IOB1 or BIOES tags)."""
    return ConvertedCorpus(read_iob, path, fraction, count, seed)


@registry.readers("spacy_dtn.BratCorpus.v1")
def create_brat_reader(
    path: Path, fraction: Optional[float] = None, count: Optional[int] = None, seed: int = 0
) -> Callable[[Language], Iterable[Example]]:
    """Read a brat standoff folder or `.txt`/`.ann` pair."""
    return ConvertedCorpus(read_brat, path, fraction, count, seed)


@registry.readers("spacy_dtn.I2B2ConceptCorpus.v1")
def create_i2b2_concept_reader(
    path: Path, fraction: Optional[float] = None, count: Optional[int] = None, seed: int = 0
) -> Callable[[Language], Iterable[Example]]:
    """Read i2b2 2010 `.txt` + `.con` files (side by side, or in `txt/` and
    `concept/` subfolders of `path`)."""
    return ConvertedCorpus(read_i2b2_2010, path, fraction, count, seed)


@registry.readers("spacy_dtn.I2B2DeidCorpus.v1")
def create_i2b2_deid_reader(
    path: Path, fraction: Optional[float] = None, count: Optional[int] = None, seed: int = 0
) -> Callable[[Language], Iterable[Example]]:
    """Read i2b2 2006 (inline PHI) or 2014 (standoff TAGS) de-identification XML."""
    return ConvertedCorpus(read_i2b2_xml, path, fraction, count, seed)
