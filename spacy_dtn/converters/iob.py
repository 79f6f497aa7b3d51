"""IOB / CoNLL token-per-line files to Docs, one Doc per sentence.

The token is the first column and the tag the last (columns split on any
whitespace); a blank line ends a sentence and `-DOCSTART-` lines are
skipped (counted). One decoder reads every common tag scheme, because
corpora mix them and mislabel which one they use:

- BIO / IOB2: `B-X` starts an entity, `I-X` continues it;
- IOB1: `I-X` after `O` or after another type starts an entity, `B-X` only
  separates two adjacent entities of the same type;
- BIOES / IOBES (and spaCy's BILUO): `S-X`/`U-X` is a one-token entity,
  `E-X`/`L-X` ends the open entity of type X.

IOB entities never overlap; they are set as `doc.ents` and, like every
converter's, as `doc.spans["entities_all"]` (see `spans`).

An unknown prefix, a tag without a label, or an `E-X` with no open entity of
type X is an error: the file says something the converter cannot represent.
Entity labels cannot contain whitespace here by construction (a tag such as
`B-chief complaint` is read as the tag `complaint`, an error that says so).

Columns are separated by spaces and tabs only, so a token may contain other
whitespace (a no-break space in `10\u00a0mg` stays one token). A line with a
token and no tag (a file cut mid-line) is an error naming the line.
"""
import re
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from .errors import ConversionError
from .files import list_files, read_text
from .spans import Mention, set_entities
from .stats import ConversionStats

# Files taken from a folder given as input.
IOB_SUFFIXES = (".tsv", ".conll", ".iob", ".bio", ".txt")
BEGIN, INSIDE, END, SINGLE = "B", "I", "E", "S"
PREFIXES = {"B": BEGIN, "I": INSIDE, "E": END, "S": SINGLE, "L": END, "U": SINGLE}
COLUMN_SEPARATOR = re.compile(r"[ \t\r]+")


def read_iob(
    path: Union[str, Path],
    *,
    nlp: Optional[Language] = None,
    stats: Optional[ConversionStats] = None,
) -> Iterator[Doc]:
    """Yield one Doc per sentence of an IOB file, or of every IOB file in a folder."""
    vocab = (nlp if nlp is not None else spacy.blank("en")).vocab
    stats = stats if stats is not None else ConversionStats()
    for file_path, name in list_files(path, IOB_SUFFIXES):
        stats.begin_file(name)
        yield from _read_file(file_path, name, vocab, stats)


def _read_file(path: Path, name: str, vocab: Vocab, stats: ConversionStats) -> Iterator[Doc]:
    words: List[str] = []
    tags: List[Tuple[str, int]] = []
    n_docs = 0
    for line_no, line in enumerate(read_text(path, strip_bom=True).split("\n"), start=1):
        columns = [column for column in COLUMN_SEPARATOR.split(line) if column]
        if columns and columns[0] == "-DOCSTART-":
            stats.skipped["-DOCSTART- lines"] += 1
            columns = []
        if columns and len(columns) < 2:
            raise ConversionError(
                path,
                f"line {line_no}",
                "expected a token and a tag separated by whitespace",
                line.strip(),
                hint="every non-blank line needs the token first and the tag last",
            )
        if columns:
            words.append(columns[0])
            tags.append((columns[-1], line_no))
        elif words:
            yield _make_doc(vocab, words, tags, path, name, stats)
            n_docs += 1
            words, tags = [], []
    if words:
        yield _make_doc(vocab, words, tags, path, name, stats)
        n_docs += 1
    if n_docs == 0:
        raise ConversionError(
            path,
            "whole file",
            "no tokens found (the file is empty or only has -DOCSTART- lines)",
            hint="check the path and that the file is in token<TAB>tag format",
        )


def _make_doc(
    vocab: Vocab,
    words: List[str],
    tags: List[Tuple[str, int]],
    path: Path,
    name: str,
    stats: ConversionStats,
) -> Doc:
    doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
    set_entities(doc, [Mention(*span) for span in spans_from_file_tags(tags, path)], stats)
    doc.user_data["source_file"] = name
    doc.user_data["source_line"] = tags[0][1]
    stats.read_doc()
    return doc


def spans_from_file_tags(tags: Sequence[Tuple[str, int]], path: Path) -> List[Tuple[int, int, str]]:
    """Decode the (tag, line number) pairs of a corpus file, in any supported
    scheme and mixes of them, into (start, end, label) token spans, end
    exclusive. Unlike tag_scheme.spans_from_tags (the tagger's own output, a
    valid sequence by construction) it accepts what real files hold and says
    where a tag is malformed."""
    spans: List[Tuple[int, int, str]] = []
    open_start: Optional[int] = None
    open_label = ""
    for i, (tag, line_no) in enumerate(tags):
        if tag == "O":
            prefix, label = None, ""
        else:
            prefix_char, dash, label = tag.partition("-")
            prefix = PREFIXES.get(prefix_char) if dash else None
            if prefix is None or not label:
                raise ConversionError(
                    path,
                    f"line {line_no}",
                    "invalid tag",
                    tag,
                    hint="tags must be O or B-, I-, E-, S- (or L-, U-) followed by a label; "
                    "the tag is the last column, so a label cannot contain spaces",
                )
        continues = open_start is not None and label == open_label
        if prefix in (INSIDE, END) and continues:
            if prefix == END:
                spans.append((open_start, i + 1, label))
                open_start = None
            continue
        if prefix == END:
            raise ConversionError(
                path,
                f"line {line_no}",
                f"end tag without an open {label} entity",
                tag,
                hint=f"start the entity with B-{label} (or use S-{label} for a one-token entity)",
            )
        if open_start is not None:
            spans.append((open_start, i, open_label))
            open_start = None
        if prefix == SINGLE:
            spans.append((i, i + 1, label))
        elif prefix in (BEGIN, INSIDE):
            open_start, open_label = i, label
    if open_start is not None:
        spans.append((open_start, len(tags), open_label))
    return spans
