"""i2b2 2010 concept files (`NAME.txt` + `NAME.con`) to Docs, one per line.

In the i2b2 2010 release every line of a `.txt` file is a sentence, already
tokenized: tokens are separated by whitespace. A concept line such as
`c="chest pain" 12:3 12:4||t="problem"` marks tokens 3 to 4 (0-based,
inclusive) of line 12 (1-based). Each non-empty line becomes one Doc whose
words are `line.split()`, so offsets map to tokens exactly.

The concept text is checked against the tokens at its offsets, compared
lower-cased because i2b2 lower-cases concept text; a mismatch is an error.
A concept spanning two lines cannot be represented in per-line Docs and is
dropped ("dropped_cross_line"). Offsets are inclusive token indices, so a
zero-length concept cannot be written; one that ends before it starts, or
points beyond its line or the text, is an error naming the `.con` line. A
line cut short, or a label with whitespace, is an error too. An empty `.txt`
is skipped and counted ("empty documents"); an empty `.con` gives documents
without entities. Overlapping concepts follow the shared policy
(see `spans`): keep the longest, ties to the earliest start and then to the
first in the file, count the rest ("dropped_overlap").

`.con` files may sit next to the `.txt` files or in their own folder
(`con_dir`); a folder holding `txt/` and `concept/` subfolders, as in the
i2b2 release, is recognised.
"""
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .errors import ConversionError
from .files import FilePair, pair_files, read_text
from .spans import Mention, check_label, set_entities
from .stats import ConversionStats

CONCEPT_LINE = re.compile(
    r'^c="(?P<text>.*)" (?P<line>\d+):(?P<start>\d+) (?P<end_line>\d+):(?P<end>\d+)'
    r'\|\|t="(?P<label>[^"]*)"\s*$'
)


def read_i2b2_2010(
    txt_dir: Union[str, Path],
    con_dir: Optional[Union[str, Path]] = None,
    *,
    nlp: Optional[Language] = None,
    stats: Optional[ConversionStats] = None,
) -> Iterator[Doc]:
    """Yield one Doc per non-empty text line; `txt_dir` is a folder (or one
    `.txt`/`.con` file), `con_dir` the folder of the `.con` files if separate."""
    nlp = nlp if nlp is not None else spacy.blank("en")
    stats = stats if stats is not None else ConversionStats()
    txt_dir = Path(txt_dir)
    if con_dir is None and (txt_dir / "txt").is_dir() and (txt_dir / "concept").is_dir():
        txt_dir, con_dir = txt_dir / "txt", txt_dir / "concept"
    for pair in pair_files(txt_dir, ".con", stats, ann_dir=con_dir):
        yield from _read_pair(pair, nlp, stats)


def _read_pair(pair: FilePair, nlp: Language, stats: ConversionStats) -> Iterator[Doc]:
    lines = [line.split() for line in read_text(pair.text, strip_bom=True).split("\n")]
    concepts = _parse_con(pair.ann, lines, stats)
    n_docs = 0
    for line_no, words in enumerate(lines, start=1):
        if not words:
            continue
        doc = Doc(nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
        set_entities(doc, concepts.get(line_no, []), stats)
        doc.user_data["source_file"] = pair.name
        doc.user_data["source_line"] = line_no
        stats.docs_read += 1
        n_docs += 1
        yield doc
    if n_docs == 0:
        stats.skipped["empty documents"] += 1


def _parse_con(
    path: Path, lines: List[List[str]], stats: ConversionStats
) -> Dict[int, List[Mention]]:
    """Concepts of a `.con` file as token mentions per text line number,
    checked against the tokenized text."""
    concepts: Dict[int, List[Mention]] = defaultdict(list)
    for con_line_no, raw in enumerate(read_text(path, strip_bom=True).split("\n"), start=1):
        if not raw.strip():
            continue
        location = f"line {con_line_no}"
        match = CONCEPT_LINE.match(raw.strip())
        if match is None:
            raise ConversionError(
                path,
                location,
                "not an i2b2 2010 concept line",
                raw.strip(),
                hint='expected c="concept text" LINE:TOKEN LINE:TOKEN||t="type"',
            )
        label = check_label(match["label"], path, location)
        line_no, start = int(match["line"]), int(match["start"])
        end_line_no, end = int(match["end_line"]), int(match["end"])
        for number, token in ((line_no, start), (end_line_no, end)):
            n_tokens = len(lines[number - 1]) if 1 <= number <= len(lines) else 0
            if token >= n_tokens:
                raise ConversionError(
                    path,
                    location,
                    f"offset {number}:{token} is beyond the text ({len(lines)} lines, "
                    f"{n_tokens} tokens on line {number})",
                    raw.strip(),
                    hint="check that the .con file belongs to this .txt file",
                )
        if end_line_no != line_no:
            stats.dropped_cross_line += 1
            continue
        if end < start:
            raise ConversionError(
                path,
                location,
                "concept ends before it starts",
                raw.strip(),
                hint="fix the offsets",
            )
        found = " ".join(lines[line_no - 1][start : end + 1])
        if found.lower() != " ".join(match["text"].split()).lower():
            raise ConversionError(
                path,
                location,
                f"concept text does not match the tokens at {line_no}:{start}-{end} ({found!r})",
                match["text"],
                hint="the .con and .txt files are out of step: use the .txt they were made on",
            )
        concepts[line_no].append(Mention(start, end + 1, label))
    return concepts
