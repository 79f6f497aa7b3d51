"""Turning annotations into `doc.ents`: alignment and overlap policy.

spaCy entities are non-overlapping runs of whole tokens; annotation formats
allow character offsets inside tokens and nested or overlapping mentions.
These helpers apply one documented policy for every format:

- leading/trailing whitespace inside an annotation is trimmed (counted as
  "trimmed_whitespace");
- character spans not on token boundaries grow to the tokens they touch
  (`alignment_mode="expand"`, counted as "expanded_to_tokens");
- of overlapping mentions the longest (in tokens) is kept; ties go to the
  earliest start, then to the one first in the file. Every other mention
  that shares a token with a kept one is dropped (counted as
  "dropped_overlap"; an exact duplicate counts too).

Errors (a `ConversionError` naming file and annotation): offsets beyond the
text; a zero-length span (start == end), which marks no text and usually
means the offsets are out of step, so it is not dropped silently; a span that
covers only whitespace; annotated text that differs from the text at the
offsets; a label that is empty or contains whitespace.
"""
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence

from spacy.tokens import Doc, Span

from .errors import ConversionError
from .stats import ConversionStats


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
    start: int,
    end: int,
    label: str,
    path: Path,
    location: str,
    stats: ConversionStats,
    expected_text: Optional[str] = None,
) -> Mention:
    """Check character offsets (and the annotated text, if given) against the
    doc text and map them to the tokens they cover."""
    text = doc.text
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
        stats.trimmed_whitespace += 1
    span = doc.char_span(trimmed_start, trimmed_end, alignment_mode="expand")
    if (span.start_char, span.end_char) != (trimmed_start, trimmed_end):
        stats.expanded_to_tokens += 1
    return Mention(span.start, span.end, label)


def set_entities(doc: Doc, mentions: Sequence[Mention], stats: ConversionStats) -> None:
    """Set `doc.ents` from possibly overlapping mentions (in file order),
    keeping the longest of each overlapping group; see the module docstring."""
    ranked = sorted(
        range(len(mentions)),
        key=lambda i: (-(mentions[i].end - mentions[i].start), mentions[i].start, i),
    )
    taken = [False] * len(doc)
    kept: List[Mention] = []
    for i in ranked:
        mention = mentions[i]
        if any(taken[mention.start : mention.end]):
            stats.dropped_overlap += 1
            continue
        taken[mention.start : mention.end] = [True] * (mention.end - mention.start)
        kept.append(mention)
    kept.sort()
    doc.ents = [Span(doc, m.start, m.end, label=m.label) for m in kept]
