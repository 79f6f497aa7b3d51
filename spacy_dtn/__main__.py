"""`python -m spacy_dtn COMMAND ...`: the package's command-line tools."""
import importlib
import sys
from typing import List, Optional

# Imported on use: a command loads only the modules it needs.
COMMANDS = {
    "annotate": ".annotate",
    "calibrate": ".calibration",
    "convert": ".converters.__main__",
    "report": ".report",
    "search": ".search",
    "vectors": ".word_vectors",
}


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m spacy_dtn {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[argv[0]], __package__).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
