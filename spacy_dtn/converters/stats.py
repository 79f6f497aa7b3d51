"""What a conversion changed or left out, so nothing is lost silently.

Every converter takes a `ConversionStats` and counts each annotation it had
to merge, move or keep out of the flat entity layer, and each input line or
file it skipped, in total and per input file. The CLI prints the totals as
one line and writes the per-file counts to a JSON report (`--report`).

The counts of overlapping annotations say what happened to each one
(see `spans` for the policy):

- `duplicates`: exact repeats (same tokens, same label) merged into one;
  nothing is lost;
- `same_span_other_label`, `nested`, `crossing`: distinct entities that
  overlap a longer (or earlier) one, so they are in `doc.spans` but not in
  the flat `doc.ents`.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Optional

from spacy.tokens import Doc

from .spans import ALL_ENTITIES_KEY

# Entities kept out of doc.ents (but in doc.spans) because they overlap another.
OVERLAP_COUNTS = ("same_span_other_label", "nested", "crossing")
# Every adjustment a converter counts, in the order the summary line shows them.
POLICY_COUNTS = (
    "duplicates",
    *OVERLAP_COUNTS,
    "merged_discontinuous",
    "expanded_to_tokens",
    "trimmed_whitespace",
    "dropped_cross_line",
    "sentence_breaks_in_entities",
)
# What is counted per input file, besides the policy counts.
FILE_COUNTS = ("docs_read", "docs_written", "entities", "spans")


@dataclass
class ConversionStats:
    """Totals (`docs_read`, `docs_written`, `entities` in doc.ents, `spans`
    in doc.spans, `labels`, policy `counts`, `skipped` input) and the same
    counts per input file in `files`."""

    docs_read: int = 0
    docs_written: int = 0
    entities: int = 0
    spans: int = 0
    labels: Counter = field(default_factory=Counter)
    counts: Counter = field(default_factory=Counter)
    # Input that is not an entity annotation, by kind ("brat R lines", ...).
    skipped: Counter = field(default_factory=Counter)
    files: Dict[str, Counter] = field(default_factory=dict)
    current_file: Optional[str] = None

    def begin_file(self, name: str) -> None:
        """Attribute the counts that follow to input file `name`."""
        self.current_file = name
        self.files.setdefault(name, Counter())

    def add(self, name: str, n: int = 1) -> None:
        """Count a policy event (one of POLICY_COUNTS) in the total and the current file."""
        if name not in POLICY_COUNTS:
            raise KeyError(f"unknown conversion count {name!r}; expected one of {POLICY_COUNTS}")
        self.counts[name] += n
        if self.current_file is not None:
            self.files[self.current_file][name] += n

    def read_doc(self) -> None:
        """Count a Doc read from the current file."""
        self.docs_read += 1
        if self.current_file is not None:
            self.files[self.current_file]["docs_read"] += 1

    def count_written(self, docs: Iterable[Doc]) -> None:
        """Count the docs, entities and spans that end up in the output."""
        for doc in docs:
            n_spans = len(doc.spans[ALL_ENTITIES_KEY]) if ALL_ENTITIES_KEY in doc.spans else 0
            self.docs_written += 1
            self.entities += len(doc.ents)
            self.spans += n_spans
            self.labels.update(ent.label_ for ent in doc.ents)
            per_file = self.files.setdefault(doc.user_data.get("source_file", "?"), Counter())
            per_file.update(docs_written=1, entities=len(doc.ents), spans=n_spans)

    def summary(self) -> str:
        """One line for the CLI: what was written and every adjustment made."""
        labels = ", ".join(f"{label}={n}" for label, n in sorted(self.labels.items()))
        overlaps = ", ".join(f"{name}={self.counts[name]}" for name in OVERLAP_COUNTS)
        other = ", ".join(f"{name}={self.counts[name]}" for name in POLICY_COUNTS[4:])
        parts = [
            f"{self.docs_written} docs written (of {self.docs_read} read)",
            f"{self.entities} entities in doc.ents ({labels or 'none'}), "
            f"{self.spans} in doc.spans[{ALL_ENTITIES_KEY!r}]",
            f"duplicates={self.counts['duplicates']} (merged, nothing lost)",
            f"in doc.spans only: {overlaps}",
            other,
        ]
        if self.skipped:
            skipped = ", ".join(f"{kind}={n}" for kind, n in sorted(self.skipped.items()))
            parts.append(f"skipped: {skipped}")
        return "; ".join(parts)

    def report(self) -> Dict[str, Any]:
        """The JSON report: totals and every count per input file (zeros included)."""
        names = (*FILE_COUNTS, *POLICY_COUNTS)
        totals = {name: self._total(name) for name in names}
        return {
            "spans_key": ALL_ENTITIES_KEY,
            "totals": {**totals, "labels": dict(sorted(self.labels.items()))},
            "skipped": dict(sorted(self.skipped.items())),
            "files": {
                name: {count: per_file[count] for count in names}
                for name, per_file in sorted(self.files.items())
            },
        }

    def _total(self, name: str) -> int:
        return getattr(self, name) if name in FILE_COUNTS else self.counts[name]
