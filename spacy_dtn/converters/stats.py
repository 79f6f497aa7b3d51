"""What a conversion changed or left out, so nothing is lost silently.

Every converter takes a `ConversionStats` and counts each annotation it had
to merge, drop or move, and each input line or file it skipped. The CLI
prints the counts as one line; tests and callers can read the fields.
"""
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from spacy.tokens import Doc


@dataclass
class ConversionStats:
    """Counters filled in while converting (`docs_read`, policy counts) and
    after writing (`docs_written`, `entities`, `labels`)."""

    docs_read: int = 0
    docs_written: int = 0
    entities: int = 0
    labels: Counter = field(default_factory=Counter)
    # Annotation policy counts (see the brat module docstring).
    merged_discontinuous: int = 0
    dropped_overlap: int = 0
    expanded_to_tokens: int = 0
    trimmed_whitespace: int = 0
    dropped_cross_line: int = 0
    # Input that is not an entity annotation, by kind ("R lines", ...).
    skipped: Counter = field(default_factory=Counter)

    def count_written(self, docs: Iterable[Doc]) -> None:
        """Count the docs and entities that end up in the output."""
        for doc in docs:
            self.docs_written += 1
            self.entities += len(doc.ents)
            self.labels.update(ent.label_ for ent in doc.ents)

    def summary(self) -> str:
        """One line for the CLI: what was written and every adjustment made."""
        labels = ", ".join(f"{label}={n}" for label, n in sorted(self.labels.items()))
        policy = ", ".join(
            f"{name}={getattr(self, name)}"
            for name in (
                "merged_discontinuous",
                "dropped_overlap",
                "expanded_to_tokens",
                "trimmed_whitespace",
                "dropped_cross_line",
            )
        )
        parts = [
            f"{self.docs_written} docs written (of {self.docs_read} read)",
            f"{self.entities} entities ({labels or 'none'})",
            policy,
        ]
        if self.skipped:
            skipped = ", ".join(f"{kind}={n}" for kind, n in sorted(self.skipped.items()))
            parts.append(f"skipped: {skipped}")
        return "; ".join(parts)
