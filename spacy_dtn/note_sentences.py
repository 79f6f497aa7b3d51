"""`note_sentencizer`: spaCy's rule-based sentencizer, told the lines of a
clinical note.

Policy: a tagger trained on single sentences scores higher on a note read
sentence by sentence than in long windows (README, "Read notes sentence by
sentence"), but spaCy's `sentencizer` knows only full stops. In a note it
ends a sentence after the full stop of an item number, so "breast
cancer\\n2." is one sentence and the next item begins without its number,
and it runs the lines of a list, a heading and the line after it into one
sentence. This component keeps spaCy's rule (a sentence ends after ".",
"!", "?" and the like) and adds two:

- a line break the writer made ends a sentence: the next line's first word
  begins one; a line break an editor made by wrapping a full line does not
  (line_wraps.py tells them apart);
- an item number or bullet that begins a line ("2. ", "b) ", "- ") begins
  the sentence of its item, which does not end after the number's full stop.

And a sentence begins on a word, not on the whitespace after a full stop.

A doc whose text has no line break gets spaCy's sentences. Whether a line
break is a wrap is decided within each of spaCy's sentences, as the tagger
decides it within the window it reads.

Measured on dev notes only (benchmarks/line_breaks.py and capitals.py, F1;
NCBI-disease: the demo's DTN; BioNLP13PC: mean of 3 DTN pipelines), read in
windows / with spaCy's sentencizer / with this one: dev entities one a line,
plain or after "- " or "• ", 73.56-73.67 / the same / 83.38-83.43
(BioNLP13PC 72.56-72.58 / 72.51-72.52 / 76.11-76.12); numbered "1. ",
77.18 / 78.60 / 80.86 (69.30 / 67.56 / 71.89); notes of prose, joined by a
space or a blank line or wrapped at 40-80 columns, 75.18-75.27 / 75.99 /
75.94-75.99 (71.90-71.93 / 72.36 / 72.35-72.36); notes one sentence a line,
30% in capitals, 73.38 / 74.06 / 74.01 (70.00 / 70.66 / 70.66).
"""
from bisect import bisect_left
from typing import Callable, Iterable, List, Optional

from spacy.language import Language
from spacy.pipeline import Sentencizer
from spacy.tokens import Doc

from .capitals import LINE_BREAKS, breaks_line
from .line_wraps import first_word, list_item_mark, wrapped_line_breaks


class NoteSentencizer(Sentencizer):
    """spaCy's Sentencizer (same settings and serialization), with the lines
    of the note: see the module's policy."""

    def predict(self, docs: Iterable[Doc]) -> List[List[bool]]:
        docs = list(docs)
        return [note_sentence_starts(doc, starts) for doc, starts in zip(docs, super().predict(docs))]


def note_sentence_starts(doc: Doc, starts: List[bool]) -> List[bool]:
    """`starts` (spaCy's sentence starts, a bool per token) with a sentence
    begun after each line break the writer made and none begun inside an
    item number or bullet that begins a line."""
    text = doc.text
    if LINE_BREAKS.isdisjoint(text):
        return starts
    starts = list(starts)
    for i in range(1, len(doc)):  # a sentence begins on a word: "Gout.\n1. x" makes no sentence of "\n"
        if starts[i] and doc[i].is_space:
            starts[i] = False
            word = first_word(doc, i, len(doc))
            if word < len(doc):  # else trailing whitespace: it ends the sentence before
                starts[word] = True
    breaks = [i for i, token in enumerate(doc) if breaks_line(token)]
    bounds = [i for i, start in enumerate(starts) if start] + [len(doc)]
    line_starts = [first_word(doc, 0, len(doc))]
    for begin, end in zip(bounds, bounds[1:]):
        # Only a sentence with a line break is judged: a wrap is judged over
        # whole lines, which many sentences of one long line would each walk.
        within = breaks[bisect_left(breaks, begin) : bisect_left(breaks, end)]
        wraps = wrapped_line_breaks(doc, begin, end, text) if within else set()
        line_starts += [first_word(doc, i + 1, len(doc)) for i in within if i not in wraps]
    for first in line_starts:
        if first < len(doc):
            starts[first] = True
            _keep_with_its_mark(doc, first, starts)
    for i in range(1, min(line_starts[0] + 1, len(doc))):  # leading whitespace belongs to the first sentence
        starts[i] = False
    return starts


def _keep_with_its_mark(doc: Doc, first: int, starts: List[bool]) -> None:
    """No sentence begins inside the item that a bullet or item number at
    token `first` begins: spaCy's rule began one at its first word after the
    mark's full stop and any punctuation ("1. (L) knee")."""
    i = first + list_item_mark(doc, first)
    while first < i < len(doc) and not breaks_line(doc[i]):
        starts[i] = False
        if not (doc[i].is_punct or doc[i].is_space):
            break
        i += 1


@Language.factory(
    "note_sentencizer",
    assigns=["token.is_sent_start", "doc.sents"],
    default_config={"punct_chars": None, "overwrite": False, "scorer": {"@scorers": "spacy.senter_scorer.v1"}},
    default_score_weights={"sents_f": 1.0, "sents_p": 0.0, "sents_r": 0.0},
)
def make_note_sentencizer(
    nlp: Language, name: str, punct_chars: Optional[List[str]], overwrite: bool, scorer: Optional[Callable]
) -> NoteSentencizer:
    return NoteSentencizer(name, punct_chars=punct_chars, overwrite=overwrite, scorer=scorer)
