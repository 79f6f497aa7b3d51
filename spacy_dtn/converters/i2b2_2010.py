"""i2b2 2010 concept files (`NAME.txt` + `NAME.con`) to Docs.

In the i2b2 2010 release every line of a `.txt` file is a sentence, already
tokenized: tokens are separated by whitespace. A concept line such as
`c="chest pain" 12:3 12:4||t="problem"` marks tokens 3 to 4 (0-based,
inclusive) of line 12 (1-based). Words are `line.split()`, so offsets map to
tokens exactly. Two ways to make Docs (`sentences`):

- None (the default, for the release, where lines are sentences): one Doc
  per non-empty line. A concept spanning two lines cannot be represented in
  per-line Docs and is dropped ("dropped_cross_line").
- a splitter name ("sentencizer", "lines" or "none"; see `sentences`), for
  files whose lines are not sentences: one Doc per file, its lines joined by
  line-break tokens (as spaCy's tokenizer keeps them), with sentence
  boundaries from the splitter that never cut a concept. Concepts spanning
  lines are kept.

The concept text is checked against the tokens at its offsets, compared
lower-cased because i2b2 lower-cases concept text; a mismatch is an error.
Offsets are inclusive token indices, so a zero-length concept cannot be
written; one that ends before it starts, or points beyond its line or the
text, is an error naming the `.con` line. A line cut short, or a label with
whitespace, is an error too. An empty `.txt` is skipped and counted ("empty
documents"); an empty `.con` gives documents without entities. Overlapping
concepts follow the shared policy (see `spans`): all in
`doc.spans["entities_all"]`, the longest in `doc.ents`, the others counted.

`.con` files may sit next to the `.txt` files or in their own folder
(`con_dir`); a folder holding `txt/` and `concept/` subfolders, as in the
i2b2 release, is recognised.
"""
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from .errors import ConversionError
from .files import pair_files, read_text
from .sentences import check_splitter, set_sentences
from .spans import Mention, check_label, set_entities
from .stats import ConversionStats

CONCEPT_LINE = re.compile(
    r'^c="(?P<text>.*)" (?P<line>\d+):(?P<start>\d+) (?P<end_line>\d+):(?P<end>\d+)'
    r'\|\|t="(?P<label>[^"]*)"\s*$'
)


class Concept(NamedTuple):
    """A `.con` line: from token `start` of `line` to token `end` (inclusive)
    of `end_line`; lines are 1-based, tokens 0-based."""

    line: int
    start: int
    end_line: int
    end: int
    label: str


def read_i2b2_2010(
    txt_dir: Union[str, Path],
    con_dir: Optional[Union[str, Path]] = None,
    *,
    nlp: Optional[Language] = None,
    stats: Optional[ConversionStats] = None,
    sentences: Optional[str] = None,
) -> Iterator[Doc]:
    """Yield one Doc per non-empty text line, or per file with a `sentences`
    splitter; `txt_dir` is a folder (or one `.txt`/`.con` file), `con_dir`
    the folder of the `.con` files if separate."""
    nlp = nlp if nlp is not None else spacy.blank("en")
    stats = stats if stats is not None else ConversionStats()
    if sentences is not None:
        check_splitter(sentences)
    txt_dir = Path(txt_dir)
    if con_dir is None and (txt_dir / "txt").is_dir() and (txt_dir / "concept").is_dir():
        txt_dir, con_dir = txt_dir / "txt", txt_dir / "concept"
    for pair in pair_files(txt_dir, ".con", stats, ann_dir=con_dir):
        stats.begin_file(pair.name)
        lines = [line.split() for line in read_text(pair.text, strip_bom=True).split("\n")]
        concepts = _parse_con(pair.ann, lines)
        if sentences is None:
            docs = _line_docs(lines, concepts, nlp.vocab, stats)
        else:
            docs = _file_docs(lines, concepts, nlp.vocab, stats, sentences)
        n_docs = 0
        for doc in docs:
            doc.user_data["source_file"] = pair.name
            stats.read_doc()
            n_docs += 1
            yield doc
        if n_docs == 0:
            stats.skipped["empty documents"] += 1


def _line_docs(
    lines: List[List[str]], concepts: List[Concept], vocab: Vocab, stats: ConversionStats
) -> Iterator[Doc]:
    """One Doc per non-empty line; concepts spanning lines are dropped and counted."""
    by_line: Dict[int, List[Mention]] = defaultdict(list)
    for concept in concepts:
        if concept.end_line != concept.line:
            stats.add("dropped_cross_line")
            continue
        by_line[concept.line].append(Mention(concept.start, concept.end + 1, concept.label))
    for line_no, words in enumerate(lines, start=1):
        if not words:
            continue
        doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
        set_entities(doc, by_line[line_no], stats)
        doc.user_data["source_line"] = line_no
        yield doc


def _file_docs(
    lines: List[List[str]],
    concepts: List[Concept],
    vocab: Vocab,
    stats: ConversionStats,
    sentences: str,
) -> Iterator[Doc]:
    """The whole file as one Doc (none if it has no tokens), a line-break
    token between lines, sentence boundaries from `sentences`."""
    words: List[str] = []
    spaces: List[bool] = []
    first_token: Dict[int, int] = {}
    previous = 0
    for line_no, line_words in enumerate(lines, start=1):
        if not line_words:
            continue
        if words:
            spaces[-1] = False
            words.append("\n" * (line_no - previous))
            spaces.append(False)
        first_token[line_no] = len(words)
        words.extend(line_words)
        spaces.extend([True] * (len(line_words) - 1) + [False])
        previous = line_no
    if not words:
        return
    doc = Doc(vocab, words=words, spaces=spaces)
    mentions = [
        Mention(first_token[c.line] + c.start, first_token[c.end_line] + c.end + 1, c.label)
        for c in concepts
    ]
    set_entities(doc, mentions, stats)
    set_sentences(doc, sentences, stats)
    yield doc


def _parse_con(path: Path, lines: List[List[str]]) -> List[Concept]:
    """The concepts of a `.con` file, in file order, checked against the tokenized text."""
    concepts: List[Concept] = []
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
        concept = Concept(
            int(match["line"]),
            int(match["start"]),
            int(match["end_line"]),
            int(match["end"]),
            check_label(match["label"], path, location),
        )
        _check_concept(concept, match["text"], lines, path, location, raw.strip())
        concepts.append(concept)
    return concepts


def _check_concept(
    concept: Concept, text: str, lines: List[List[str]], path: Path, location: str, raw: str
) -> None:
    """Offsets inside the text, in order, and on tokens that spell `text`."""
    for number, token in ((concept.line, concept.start), (concept.end_line, concept.end)):
        n_tokens = len(lines[number - 1]) if 1 <= number <= len(lines) else 0
        if token >= n_tokens:
            raise ConversionError(
                path,
                location,
                f"offset {number}:{token} is beyond the text ({len(lines)} lines, "
                f"{n_tokens} tokens on line {number})",
                raw,
                hint="check that the .con file belongs to this .txt file",
            )
    if (concept.end_line, concept.end) < (concept.line, concept.start):
        raise ConversionError(
            path, location, "concept ends before it starts", raw, hint="fix the offsets"
        )
    found = " ".join(_words(lines, concept))
    if found.lower() != " ".join(text.split()).lower():
        where = f"{concept.line}:{concept.start}-{concept.end_line}:{concept.end}"
        raise ConversionError(
            path,
            location,
            f"concept text does not match the tokens at {where} ({found!r})",
            text,
            hint="the .con and .txt files are out of step: use the .txt they were made on",
        )


def _words(lines: List[List[str]], concept: Concept) -> List[str]:
    """The tokens a concept covers, across lines if it spans several."""
    if concept.line == concept.end_line:
        return lines[concept.line - 1][concept.start : concept.end + 1]
    middle = [word for line in lines[concept.line : concept.end_line - 1] for word in line]
    first = lines[concept.line - 1][concept.start :]
    return first + middle + lines[concept.end_line - 1][: concept.end + 1]
