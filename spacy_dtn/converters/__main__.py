"""Command line: `python -m spacy_dtn.converters FORMAT INPUT OUTPUT`.

Prints one summary line; `--report FILE` also writes every count per input
file as JSON (see `stats`).

Bad input is a data problem, not a bug, so it ends with exit code 1 and the
`ConversionError` message (file, line or annotation id, value, fix) instead
of a traceback.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

import srsly

from .convert import DOCUMENT_FORMATS, FORMATS, SENTENCE_CHOICES, convert, read_options
from .errors import ConversionError
from .sampling import check_sampling_args


def _fraction(value: str) -> float:
    try:
        fraction = float(value)
        check_sampling_args(fraction, None)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return fraction


def _count(value: str) -> int:
    try:
        count = int(value)
        check_sampling_args(None, count)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return count


def main(argv: Optional[List[str]] = None) -> int:
    """Parse arguments, convert, print a one-line summary; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m spacy_dtn convert",
        description="Convert an NER corpus (IOB, brat, i2b2 2010 concepts, i2b2 "
        "de-identification XML) to a spaCy .spacy file.",
    )
    parser.add_argument("format", choices=list(FORMATS), help="input format")
    parser.add_argument("input", type=Path, help="input file or folder")
    parser.add_argument("output", type=Path, help="output .spacy file")
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--fraction", type=_fraction, help="keep this fraction of the docs (0 < F <= 1)"
    )
    size.add_argument("--count", type=_count, help="keep this many docs")
    parser.add_argument("--seed", type=int, default=0, help="seed for sub-sampling (default 0)")
    parser.add_argument("--lang", default="en", help="language of the tokenizer (default en)")
    parser.add_argument(
        "--sentences",
        choices=SENTENCE_CHOICES,
        default="default",
        help=f"sentence splitter for {', '.join(DOCUMENT_FORMATS)}; boundaries never cut an "
        "entity. default: sentencizer for brat and i2b2-xml, one Doc per line for i2b2-2010 "
        "(any other value: one Doc per file)",
    )
    parser.add_argument(
        "--report", type=Path, help="write the conversion counts per input file to this JSON file"
    )
    args = parser.parse_args(argv)
    try:
        read_options(args.format, args.sentences)
    except ValueError as err:
        parser.error(str(err))
    try:
        stats = convert(
            args.format,
            args.input,
            args.output,
            fraction=args.fraction,
            count=args.count,
            seed=args.seed,
            lang=args.lang,
            sentences=args.sentences,
        )
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        run = {"format": args.format, "input": str(args.input), "output": str(args.output)}
        srsly.write_json(args.report, {**run, "sentences": args.sentences, **stats.report()})
    print(f"{args.output}: {stats.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
