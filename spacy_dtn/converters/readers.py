"""Corpus readers for spaCy configs, reading the raw formats directly.

`[corpora.train] @readers = "spacy_dtn.BratCorpus.v2"` spares a separate
conversion step. Each reader converts exactly as the command line does
(same tokenizer, policy, sentence splitter and sub-sample for the same
seed), so a config and a converted `.spacy` file train on the same data. The
predicted Doc of each Example copies the reference tokens, so gold and
predicted tokenization always align.

The document formats' readers are v2: they take `sentences` (see
`sentences`; "default" is the format's own splitter, as on the command
line). The v1 names stay loadable and read as before that option: no
sentence boundaries for brat and i2b2 XML, one Doc per line for i2b2 2010.
"""
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Optional

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .brat import read_brat
from .convert import ReadFunction, load_docs, read_options
from .i2b2_2010 import read_i2b2_2010
from .i2b2_xml import read_i2b2_xml
from .iob import read_iob
from .sampling import check_sampling_args
from .stats import ConversionStats


class ConvertedCorpus:
    """Callable that reads a corpus into Examples each time it is called
    (once per epoch in `spacy train`), like `spacy.Corpus.v1`. `stats` holds
    the conversion counts of the latest read."""

    def __init__(
        self,
        read: ReadFunction,
        path: Path,
        fraction: Optional[float] = None,
        count: Optional[int] = None,
        seed: int = 0,
        options: Optional[Dict[str, str]] = None,
    ) -> None:
        check_sampling_args(fraction, count)
        self.read = read
        self.path = Path(path)
        self.fraction = fraction
        self.count = count
        self.seed = seed
        self.options = options or {}
        self.stats = ConversionStats()

    def __call__(self, nlp: Language) -> Iterator[Example]:
        # A blank pipeline of the same language sharing nlp's vocab: the
        # tokenization the command line uses, with strings in nlp's StringStore.
        tokenizer_nlp = spacy.blank(nlp.lang, vocab=nlp.vocab)
        self.stats = ConversionStats()
        docs = load_docs(
            self.read,
            self.path,
            tokenizer_nlp,
            self.stats,
            self.fraction,
            self.count,
            self.seed,
            **self.options,
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


Reader = Callable[..., Callable[[Language], Iterable[Example]]]


def _document_reader(format: str, read: ReadFunction) -> Reader:
    """The v2 reader of a document format: its `sentences` is "default" (the
    format's own) or a splitter name, as `--sentences` on the command line."""

    def create(
        path: Path,
        fraction: Optional[float] = None,
        count: Optional[int] = None,
        seed: int = 0,
        sentences: str = "default",
    ) -> Callable[[Language], Iterable[Example]]:
        options = read_options(format, sentences)
        return ConvertedCorpus(read, path, fraction, count, seed, options)

    create.__doc__ = f"Read a {format} corpus (see {read.__module__})."
    return create


def _v1_reader(v2: Reader, sentences: str) -> Reader:
    """A v1 name: the v2 reader as it read before the `sentences` option."""

    def create(
        path: Path, fraction: Optional[float] = None, count: Optional[int] = None, seed: int = 0
    ) -> Callable[[Language], Iterable[Example]]:
        return v2(path, fraction, count, seed, sentences=sentences)

    create.__doc__ = f"{v2.__doc__} v1: sentences={sentences!r}."
    return create


create_brat_reader = registry.readers("spacy_dtn.BratCorpus.v2")(
    _document_reader("brat", read_brat)
)
create_i2b2_concept_reader = registry.readers("spacy_dtn.I2B2ConceptCorpus.v2")(
    _document_reader("i2b2-2010", read_i2b2_2010)
)
create_i2b2_deid_reader = registry.readers("spacy_dtn.I2B2DeidCorpus.v2")(
    _document_reader("i2b2-xml", read_i2b2_xml)
)
create_brat_reader_v1 = registry.readers("spacy_dtn.BratCorpus.v1")(
    _v1_reader(create_brat_reader, "none")
)
create_i2b2_concept_reader_v1 = registry.readers("spacy_dtn.I2B2ConceptCorpus.v1")(
    _v1_reader(create_i2b2_concept_reader, "default")
)
create_i2b2_deid_reader_v1 = registry.readers("spacy_dtn.I2B2DeidCorpus.v1")(
    _v1_reader(create_i2b2_deid_reader, "none")
)
