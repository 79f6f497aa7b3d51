"""Turning annotations into `doc.ents` and `doc.spans`: alignment and overlap policy.

spaCy entities are non-overlapping runs of whole tokens; annotation formats
allow character offsets inside tokens and nested or overlapping mentions.
These helpers apply one documented policy for every format:

- leading/trailing whitespace inside an annotation is trimmed (counted as
  "trimmed_whitespace");
- character spans not on token boundaries grow to the tokens they touch
  (`alignment_mode="expand"`, counted as "expanded_to_tokens");
- exact repeats (same tokens and label after alignment) are merged into one
  ("duplicates": nothing is lost);
- every distinct mention, nested and overlapping ones included, goes to
  `doc.spans[ALL_ENTITIES_KEY]` (sorted by start, end, label), so nothing the
  source annotated is lost;
- `doc.ents` (the flat layer the tagger learns and `spacy evaluate` scores)
  keeps, of overlapping mentions, the longest (in tokens); ties go to the
  earliest start, then to the one first in the file. Every other mention that
  shares a token with a kept one stays out of `doc.ents` and is counted by how
  it overlaps the kept one: "same_span_other_label" (same tokens), "nested"
  (inside it) or "crossing" (partly outside it).

Errors (a `ConversionError` naming file and annotation): offsets beyond the
text; a zero-length span (start == end), which marks no text and usually
means the offsets are out of step, so it is not dropped silently; a span that
covers only whitespace; annotated text that differs from the text at the
offsets; a label that is empty or contains whitespace.
"""
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from spacy.tokens import Doc, Span

from .errors import ConversionError

if TYPE_CHECKING:  # stats imports this module for ALL_ENTITIES_KEY
    from .stats import ConversionStats

# The span group holding every annotated entity, nested and overlapping ones included.
ALL_ENTITIES_KEY = "entities_all"


class Mention(NamedTuple):
    """An entity candidate as token offsets (end exclusive), before overlaps are resolved."""

    start: int
    end: int
    label: str


def check_label(label: str, path: Path, location: str) -> str:
    """Reject labels spaCy's NER cannot use, rather than renaming them silently."""
    if not label or any(char.isspace() for char in label):
        raise ConversionError(
            path,
            location,
            "entity label is empty or contains whitespace",
            label,
            hint="rename the label in the input (e.g. use '_' instead of spaces)",
        )
    return label


def same_text(found: str, expected: str) -> bool:
    """Compare annotation text ignoring whitespace differences: tools write
    newlines and runs of spaces inside spans as a single space."""
    return found.split() == expected.split()


def align_char_span(
    doc: Doc,
    text: str,
    start: int,
    end: int,
    label: str,
    path: Path,
    location: str,
    stats: "ConversionStats",
    expected_text: Optional[str] = None,
) -> Mention:
    """Check character offsets (and the annotated text, if given) against
    `text`, the text the doc was made from, and map them to the tokens they
    cover. The text is passed in because `Doc.text` joins every token: read
    per annotation, it made a long annotated note quadratic to convert."""
    if not 0 <= start <= end <= len(text):
        raise ConversionError(
            path,
            location,
            f"offsets outside the text (which has {len(text)} characters) or reversed",
            f"{start} {end}",
            hint="check that the annotation file belongs to this exact version of the text",
        )
    if start == end:
        raise ConversionError(
            path,
            location,
            "zero-length span (start == end): it marks no text",
            f"{start} {end}",
            hint="delete the annotation or fix its offsets",
        )
    if expected_text is not None and not same_text(text[start:end], expected_text):
        raise ConversionError(
            path,
            location,
            f"annotated text does not match the text at these offsets ({text[start:end]!r})",
            expected_text,
            hint="the annotation and text files are out of step: re-export them together",
        )
    trimmed_start, trimmed_end = start, end
    while trimmed_start < trimmed_end and text[trimmed_start].isspace():
        trimmed_start += 1
    while trimmed_end > trimmed_start and text[trimmed_end - 1].isspace():
        trimmed_end -= 1
    if trimmed_start == trimmed_end:
        raise ConversionError(
            path,
            location,
            "annotation covers only whitespace",
            text[start:end],
            hint="delete the annotation or fix its offsets",
        )
    if (trimmed_start, trimmed_end) != (start, end):
        stats.add("trimmed_whitespace")
    span = doc.char_span(trimmed_start, trimmed_end, alignment_mode="expand")
    if (span.start_char, span.end_char) != (trimmed_start, trimmed_end):
        stats.add("expanded_to_tokens")
    return Mention(span.start, span.end, label)


def set_entities(doc: Doc, mentions: Sequence[Mention], stats: "ConversionStats") -> None:
    """Set `doc.spans[ALL_ENTITIES_KEY]` to every distinct mention and
    `doc.ents` to the flat layer; see the module docstring."""
    distinct = list(dict.fromkeys(mentions))
    stats.add("duplicates", len(mentions) - len(distinct))
    doc.spans[ALL_ENTITIES_KEY] = [_span(doc, m) for m in sorted(distinct)]
    kept, left_out = flat_layer(distinct)
    for kind in overlap_kinds(left_out, kept):
        stats.add(kind)
    doc.ents = [_span(doc, m) for m in kept]


def flat_layer(mentions: Sequence[Mention]) -> Tuple[List[Mention], List[Mention]]:
    """Split distinct mentions (in file order) into non-overlapping ones to
    keep, longest first (then earliest start, then first in the file), sorted,
    and the ones left out."""
    ranked = sorted(
        range(len(mentions)),
        key=lambda i: (-(mentions[i].end - mentions[i].start), mentions[i].start, i),
    )
    taken = set()
    kept: List[Mention] = []
    left_out: List[Mention] = []
    for i in ranked:
        mention = mentions[i]
        tokens = range(mention.start, mention.end)
        if taken.intersection(tokens):
            left_out.append(mention)
            continue
        taken.update(tokens)
        kept.append(mention)
    return sorted(kept), left_out


def overlap_kinds(left_out: Sequence[Mention], kept: Sequence[Mention]) -> Iterator[str]:
    """How each mention left out of the flat layer overlaps the kept ones.
    The kept ones are sorted, at least as long and do not overlap each other,
    so a left-out one lies inside one of them or crosses the edge of one; the
    ones it overlaps are a run of `kept`, found by binary search (their ends
    are sorted too)."""
    starts, ends = [k.start for k in kept], [k.end for k in kept]
    for mention in left_out:
        overlapping = kept[bisect_right(ends, mention.start) : bisect_left(starts, mention.end)]
        yield _overlap_kind(mention, overlapping)


def _overlap_kind(mention: Mention, overlapping: Sequence[Mention]) -> str:
    if len(overlapping) == 1:
        (other,) = overlapping
        if (other.start, other.end) == (mention.start, mention.end):
            return "same_span_other_label"
        if other.start <= mention.start and mention.end <= other.end:
            return "nested"
    return "crossing"


def _span(doc: Doc, mention: Mention) -> Span:
    return Span(doc, mention.start, mention.end, label=mention.label)
