"""brat standoff (`NAME.txt` + `NAME.ann`) to Docs, one Doc per document.

Only text-bound annotations (`T1<TAB>Label 0 5<TAB>text`) become entities;
relations, events, attributes, normalisations, notes and other lines
(R, E, A, M, N, #, *) are skipped and counted per kind. The text is
tokenized with the tokenizer of a blank pipeline (`spacy.blank("en")` by
default), so the Docs match what a blank spaCy pipeline sees.

Policy, because spaCy entities are non-overlapping runs of whole tokens:

- a discontinuous span (`T2<TAB>Label 0 5;10 15<TAB>...`) becomes the single
  span from its first start to its last end ("merged_discontinuous");
- for contiguous spans the annotated text must equal the text at the offsets
  (ignoring whitespace differences), otherwise the files are out of step and
  conversion stops with an error;
- whitespace at either end of a span is trimmed ("trimmed_whitespace"), and a
  span that does not start and end on token boundaries grows to the tokens it
  touches ("expanded_to_tokens");
- exact repeats are merged ("duplicates"); every distinct entity, nested and
  overlapping ones included, goes to `doc.spans["entities_all"]`, and
  `doc.ents` keeps the longest of overlapping ones (ties to the earliest
  start, then to the first in the file), counting the others as
  "same_span_other_label", "nested" or "crossing" (see `spans`);
- sentence boundaries come from a splitter (`sentences`: "sentencizer" by
  default, "lines" or "none") and never cut an entity (see `sentences`).

Errors, each naming the `.ann` file and the annotation id and line: a line
that is not a brat annotation (also a line cut short), offsets that are not
`START END` pairs, offsets beyond the text, a zero-length span (`START ==
END`: it marks no text, so it is an error rather than a silent drop, like a
span that covers only whitespace), and a label with whitespace.

A `.ann` without its `.txt` is an error; a `.txt` without `.ann` is skipped
and counted, as is a pair whose `.txt` is empty ("empty documents"); an empty
`.ann` gives a document without entities. Text is read as stored ("\\r" and
a byte-order mark included), as brat counts it.
"""
from pathlib import Path
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .errors import ConversionError
from .files import pair_files, read_text
from .sentences import check_splitter, set_sentences
from .spans import Mention, align_char_span, check_label, set_entities
from .stats import ConversionStats

# First character of the ids of brat annotation lines that are not entities.
SKIPPED_KINDS = set("REAMN#*")


class TextBound(NamedTuple):
    """A `T` line of a `.ann` file."""

    id: str
    label: str
    fragments: List[Tuple[int, int]]
    text: Optional[str]
    line_no: int

    @property
    def location(self) -> str:
        return f"annotation {self.id} (line {self.line_no})"


def read_brat(
    path: Union[str, Path],
    *,
    nlp: Optional[Language] = None,
    stats: Optional[ConversionStats] = None,
    sentences: str = "sentencizer",
) -> Iterator[Doc]:
    """Yield one Doc per `.txt`/`.ann` pair: `path` is a folder (searched
    recursively) or either file of one pair; `sentences` names the splitter."""
    nlp = nlp if nlp is not None else spacy.blank("en")
    stats = stats if stats is not None else ConversionStats()
    check_splitter(sentences)
    for pair in pair_files(path, ".ann", stats):
        stats.begin_file(pair.name)
        text = read_text(pair.text)
        doc = nlp.make_doc(text)
        mentions = [
            _to_mention(doc, text, annotation, pair.ann, stats)
            for annotation in parse_ann(pair.ann, stats)
        ]
        if not text.strip():
            stats.skipped["empty documents"] += 1
            continue
        set_entities(doc, mentions, stats)
        set_sentences(doc, sentences, stats)
        doc.user_data["source_file"] = pair.name
        stats.read_doc()
        yield doc


def _to_mention(doc: Doc, text: str, annotation: TextBound, path: Path, stats: ConversionStats) -> Mention:
    starts, ends = zip(*annotation.fragments)
    expected = annotation.text
    if len(annotation.fragments) > 1:
        stats.add("merged_discontinuous")
        expected = None  # the text field of a discontinuous span joins its fragments
    return align_char_span(
        doc,
        text,
        min(starts),
        max(ends),
        annotation.label,
        path,
        annotation.location,
        stats,
        expected_text=expected,
    )


def parse_ann(path: Path, stats: ConversionStats) -> List[TextBound]:
    """The text-bound annotations of a `.ann` file, in file order; other
    annotation lines are counted in `stats.skipped`."""
    annotations = []
    for line_no, line in enumerate(read_text(path, strip_bom=True).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        kind = line[0]
        if kind in SKIPPED_KINDS:
            stats.skipped[f"brat {kind} lines"] += 1
            continue
        fields = line.split("\t")
        if kind != "T" or len(fields) < 2:
            raise ConversionError(
                path,
                f"line {line_no}",
                "not a brat annotation line",
                line,
                hint="expected 'T1<TAB>Label START END<TAB>text' or an R/E/A/M/N/#/* line",
            )
        ann_id, spec = fields[0], fields[1]
        location = f"annotation {ann_id} (line {line_no})"
        label, _, offsets = spec.partition(" ")
        check_label(label, path, location)
        annotations.append(
            TextBound(
                ann_id,
                label,
                _parse_fragments(offsets, path, location),
                fields[2] if len(fields) > 2 else None,
                line_no,
            )
        )
    return annotations


def _parse_fragments(offsets: str, path: Path, location: str) -> List[Tuple[int, int]]:
    fragments = []
    for fragment in offsets.split(";"):
        parts = fragment.split()
        if len(parts) != 2 or not all(part.isascii() and part.isdigit() for part in parts):
            raise ConversionError(
                path,
                location,
                "offsets must be 'START END' pairs separated by ';'",
                offsets,
                hint="fix the annotation line (brat labels cannot contain spaces)",
            )
        start, end = int(parts[0]), int(parts[1])
        if start == end:
            raise ConversionError(
                path,
                location,
                "zero-length span (start == end): it marks no text",
                offsets,
                hint="delete the annotation or fix its offsets",
            )
        if start > end:
            raise ConversionError(
                path, location, "span ends before it starts", offsets, hint="fix the offsets"
            )
        fragments.append((start, end))
    return fragments
