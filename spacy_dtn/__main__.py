"""`python -m spacy_dtn COMMAND ...`: the package's command-line tools.
`python -m spacy_dtn --help` lists them; `COMMAND --help` tells one's options."""
import importlib
import sys
from typing import List, Optional

# Imported on use: a command loads only the modules it needs.
COMMANDS = {
    "annotate": (".annotate", "tag a note archive (folder, JSONL, CSV, Parquet; local or Spark)"),
    "calibrate": (".calibration", "fit the confidence temperature on dev data"),
    "convert": (".converters.__main__", "IOB, brat, i2b2 2010 or i2b2 XML annotations to .spacy"),
    "report": (".report", "the project report: test scores of every system, the gates, plots"),
    "search": (".search", "train every fixed sharing scheme (the search DTN replaces)"),
    "vectors": (".word_vectors", "a static vectors table from unlabelled notes, offline"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(["usage: python -m spacy_dtn COMMAND ...", "", "commands:", *lines,
                      "", "python -m spacy_dtn COMMAND --help: that command's options"])


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if not argv or argv[0] not in COMMANDS:
        unknown = f"unknown command {argv[0]!r}\n\n" if argv else ""
        print(unknown + usage(), file=sys.stderr)
        return 2
    return importlib.import_module(COMMANDS[argv[0]][0], __package__).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
