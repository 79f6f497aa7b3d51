"""`python -m spacy_dtn COMMAND ...`: the package's command-line tools."""
import sys
from typing import Callable, Dict, List, Optional

from .converters.__main__ import main as convert_main


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands: Dict[str, Callable[[List[str]], int]] = {"convert": convert_main}
    if not argv or argv[0] not in commands:
        print(f"usage: python -m spacy_dtn {{{','.join(commands)}}} ...", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
