"""Figures of the reports (spacy_dtn/report.py, benchmarks/write_results.py).

Policy: matplotlib draws off-screen (Agg: no display on servers and in CI) and
is imported on use, as it is only needed for reports (the `project` and
`test` extras); a figure is laid out, saved as PNG and closed in one place, so
no figure stays open when drawing fails.
"""
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Tuple


@contextmanager
def saved_figure(path: Path, size: Tuple[float, float], dpi: int) -> Iterator[Any]:
    """The axes of a new figure, saved to `path` when the block ends without error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    try:
        yield ax
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
