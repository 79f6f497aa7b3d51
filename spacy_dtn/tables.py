"""Markdown tables of the reports (spacy_dtn/report.py, benchmarks/write_results.py).

Policy: a table is its header and its rows, written in one layout (GitHub
markdown, one `---` per column); callers format their numbers, this module
only lays them out, so every report's tables read the same.
"""
from typing import Iterable, List, Sequence


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> List[str]:
    """The lines of a table; cells are written with str(), a `|` in a cell escaped."""
    lines = [_row(headers), "|---" * len(headers) + "|"]
    for i, row in enumerate(rows, 1):
        if len(row) != len(headers):
            raise ValueError(
                f"Row {i} of the table with columns {list(headers)} has {len(row)} cells: "
                f"give one cell per column ({len(headers)})."
            )
        lines.append(_row(row))
    return lines


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"
