"""Convert a corpus in any supported format to a spaCy `DocBin` file.

`convert` is what the command line (`python -m spacy_dtn.converters`) wraps,
and `load_docs` is shared with the registered corpus readers, so a corpus
read at training time is exactly what the command line would have written.

`sentences` picks the sentence splitter of the document formats (see
`sentences`); "default" keeps each format's own: the sentencizer for brat and
i2b2 XML, one Doc per line for i2b2 2010, the file's sentences for IOB
(which takes no other value: its Docs are sentences already).
"""
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from .brat import read_brat
from .errors import ConversionError
from .i2b2_2010 import read_i2b2_2010
from .i2b2_xml import read_i2b2_xml
from .iob import read_iob
from .sampling import check_sampling_args, subsample
from .sentences import SPLITTERS
from .stats import ConversionStats

ReadFunction = Callable[..., Iterable[Doc]]

FORMATS: Dict[str, ReadFunction] = {
    "iob": read_iob,
    "brat": read_brat,
    "i2b2-2010": read_i2b2_2010,
    "i2b2-xml": read_i2b2_xml,
}
# The formats whose readers take a `sentences` splitter.
DOCUMENT_FORMATS = ("brat", "i2b2-2010", "i2b2-xml")
SENTENCE_CHOICES = ("default", *SPLITTERS)


def read_options(format: str, sentences: str = "default") -> Dict[str, str]:
    """The keyword arguments that pass `sentences` to the reader of `format`."""
    if sentences not in SENTENCE_CHOICES:
        raise ValueError(
            f"unknown sentence splitter {sentences!r}: choose one of {', '.join(SENTENCE_CHOICES)}"
        )
    if sentences == "default":
        return {}
    if format not in DOCUMENT_FORMATS:
        raise ValueError(
            f"sentences={sentences!r} applies to {', '.join(DOCUMENT_FORMATS)}; "
            f"{format} files are split into sentences already: leave it at 'default'"
        )
    return {"sentences": sentences}


def load_docs(
    read: ReadFunction,
    path: Union[str, Path],
    nlp: Language,
    stats: ConversionStats,
    fraction: Optional[float] = None,
    count: Optional[int] = None,
    seed: int = 0,
    **options: str,
) -> List[Doc]:
    """Read every Doc of a corpus (`options` go to `read`), then sub-sample if
    asked; an input that yields no Docs at all is an error rather than an
    empty training set."""
    check_sampling_args(fraction, count)
    docs = list(read(path, nlp=nlp, stats=stats, **options))
    if not docs:
        raise ConversionError(
            path,
            "whole input",
            "no documents found",
            hint="check the format and that the input holds annotated text",
        )
    if fraction is None and count is None:
        return docs
    try:
        return subsample(docs, fraction=fraction, count=count, seed=seed)
    except ValueError as err:
        raise ConversionError(
            path, "sub-sampling", str(err), hint="ask for fewer documents"
        ) from None


def convert(
    format: str,
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    fraction: Optional[float] = None,
    count: Optional[int] = None,
    seed: int = 0,
    lang: str = "en",
    sentences: str = "default",
) -> ConversionStats:
    """Convert `input_path` (a file or folder in `format`, one of `FORMATS`)
    to a `.spacy` file and return what was written, merged and dropped."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    options = read_options(format, sentences)
    output_path = Path(output_path)
    if output_path.suffix != ".spacy":
        raise ConversionError(
            output_path,
            "output",
            "output must be a .spacy file",
            output_path.suffix,
            hint="name it e.g. train.spacy",
        )
    stats = ConversionStats()
    docs = load_docs(
        FORMATS[format], input_path, spacy.blank(lang), stats, fraction, count, seed, **options
    )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    DocBin(docs=docs, store_user_data=True).to_disk(output_path)
    stats.count_written(docs)
    return stats
