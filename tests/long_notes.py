"""Synthetic long clinical notes in brat standoff, with every annotation
problem the converters count, generated from a seed (nothing committed).

Each note has about 1,000 tokens in paragraphs of sentences. Its entities
(Problem, Test, Treatment) do not overlap, and among them are, by construction:

- one entity across each 256-token edge (tokens 256, 512, 768: a tagger
  window of 256 tokens would cut it);
- `DOT_CROSSING` entities that hold a sentence-final "." inside a paragraph
  (the sentencizer proposes one boundary inside each) and `LINE_CROSSING`
  entities that run over a paragraph's line break (both splitters propose one
  boundary inside each);

and the annotation file adds, after those entities' own lines:

- `DUPLICATES` exact repeats of an entity line (new id, same label and offsets);
- `SAME_SPAN` lines giving an entity's span a second label;
- `NESTED` mentions strictly inside an entity;
- `CROSSING` mentions that start inside an entity and end after it, as long
  as it (the earlier start wins the tie, so the entity stays in doc.ents).

`Note.expected` holds what the converter must report for the note, known
from the construction rather than computed by the code under test.
"""
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import spacy
from spacy.language import Language

DUPLICATES, SAME_SPAN, NESTED, CROSSING = 3, 2, 2, 1
DOT_CROSSING, LINE_CROSSING = 2, 1
WINDOW_EDGES = (256, 512, 768)
LABELS = ("Problem", "Test", "Treatment")
WORDS = (
    "patient denies reports pain fever cough the of with and was is on for after "
    "daily noted mild severe left right chest abdominal history given started "
    "stable normal elevated acute chronic renal cardiac dose tablet scan exam"
).split()
Span = Tuple[int, int, str]  # token start, end (exclusive), label


@dataclass
class Note:
    name: str
    text: str
    entities: List[Span]  # the flat layer: non-overlapping, each first in the file
    extra: List[Span] = field(default_factory=list)  # same span/nested/crossing mentions
    lines: List[str] = field(default_factory=list)  # the .ann lines

    @property
    def spans(self) -> Set[Span]:
        return set(self.entities) | set(self.extra)

    @property
    def expected(self) -> Dict[str, int]:
        return {
            "docs_read": 1, "docs_written": 1,
            "entities": len(self.entities), "spans": len(self.spans),
            "duplicates": DUPLICATES, "same_span_other_label": SAME_SPAN,
            "nested": NESTED, "crossing": CROSSING,
        }


def _paragraphs(rng: random.Random, n_tokens: int) -> List[List[List[str]]]:
    """Paragraphs of sentences of words; each sentence ends with '.'."""
    paragraphs, total = [], 0
    while total < n_tokens:
        paragraph = []
        for _ in range(rng.randint(3, 6)):
            sentence = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))] + ["."]
            paragraph.append(sentence)
            total += len(sentence)
        paragraphs.append(paragraph)
    return paragraphs


def _edge_entity(is_word: List[bool], edge: int) -> Optional[Tuple[int, int]]:
    """2 to 4 words across a window edge, if the words there allow it."""
    fits = [
        (start, end)
        for start in range(edge - 1, edge - 4, -1)
        for end in range(edge + 1, start + 5)
        if all(is_word[start:end])
    ]
    return fits[0] if fits else None


def make_note(name: str, rng: random.Random, nlp: Language, n_tokens: int = 1000) -> Note:
    edge_entities: List[Optional[Tuple[int, int]]] = [None]
    while None in edge_entities:  # redraw a text with a '.' on a window edge
        paragraphs = _paragraphs(rng, n_tokens)
        text = "\n".join(" ".join(" ".join(s) for s in p) for p in paragraphs) + "\n"
        doc = nlp.make_doc(text)
        is_word = [tok.is_alpha for tok in doc]
        edge_entities = [_edge_entity(is_word, edge) for edge in WINDOW_EDGES]
    taken = [False] * len(doc)
    entities: List[Span] = []

    def free(start: int, end: int) -> bool:
        # one free token on each side, so no mention added later can touch another entity
        return 0 < start and end < len(doc) and not any(taken[start - 1 : end + 1])

    def add(start: int, end: int) -> None:
        entities.append((start, end, rng.choice(LABELS)))
        taken[start:end] = [True] * (end - start)

    for start, end in edge_entities:
        add(start, end)
    # word . word (a sentence end inside a paragraph) and word . \n word (a line break)
    for marker, count, before in ((".", DOT_CROSSING, 1), ("\n", LINE_CROSSING, 2)):
        candidates = [i for i, tok in enumerate(doc) if tok.text == marker and i + 1 < len(doc)]
        rng.shuffle(candidates)
        added = 0
        for i in candidates:
            start, end = i - before, i + 2
            if added < count and is_word[start] and is_word[end - 1] and free(start, end):
                add(start, end)
                added += 1
        assert added == count, f"no room for {count} entities across {marker!r}"
    for start in range(2, len(doc) - 6, 9):  # plain entities of 1 to 4 words
        end = start + rng.randint(1, 4)
        if all(is_word[start:end]) and free(start, end):
            add(start, end)
    entities.sort()
    note = Note(name, text, entities)
    _annotate(note, doc, rng)
    return note


def _annotate(note: Note, doc, rng: random.Random) -> None:
    def line(start: int, end: int, label: str) -> str:
        span = doc[start:end]
        covered = note.text[span.start_char : span.end_char].replace("\n", " ")
        return f"{label} {span.start_char} {span.end_char}\t{covered}"

    order = list(note.entities)
    rng.shuffle(order)
    bodies = [line(*entity) for entity in order]
    plain = [e for e in note.entities if all(tok.is_alpha for tok in doc[e[0] : e[1]])]
    # crossing: one word past the entity's end, a free word (entities never touch)
    crossed = rng.sample([e for e in plain if e[1] - e[0] >= 2 and doc[e[1]].is_alpha], CROSSING)
    for start, end, label in crossed:
        note.extra.append((start + 1, end + 1, label))
    nesting = rng.sample([e for e in plain if e[1] - e[0] >= 3 and e not in crossed], NESTED)
    for start, end, _ in nesting:
        note.extra.append((start + 1, end, rng.choice(LABELS)))
    others = [e for e in plain if e not in crossed and e not in nesting]
    for start, end, label in rng.sample(others, SAME_SPAN):
        note.extra.append((start, end, next(other for other in LABELS if other != label)))
    bodies += [line(*mention) for mention in note.extra]
    repeats = rng.sample(note.entities, DUPLICATES - 1)
    bodies += [line(*entity) for entity in repeats + repeats[:1]]  # one repeated twice
    note.lines = [f"T{i}\t{body}" for i, body in enumerate(bodies, start=1)]


def write_notes(folder: Path, n_notes: int, seed: int = 0, prefix: str = "note") -> List[Note]:
    """Write `n_notes` notes as NAME.txt + NAME.ann into `folder`."""
    rng = random.Random(seed)
    nlp = spacy.blank("en")  # the converters' tokenizer
    folder.mkdir(parents=True, exist_ok=True)
    notes = []
    for i in range(n_notes):
        note = make_note(f"{prefix}{i:03d}.txt", rng, nlp)
        (folder / note.name).write_text(note.text, encoding="utf-8")
        ann = "\n".join(note.lines) + "\n"
        (folder / note.name).with_suffix(".ann").write_text(ann, encoding="utf-8")
        notes.append(note)
    return notes
