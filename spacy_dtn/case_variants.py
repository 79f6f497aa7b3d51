"""Case variants of training examples: notes written all in capitals or all in small letters.

Hospital systems write whole notes or sections in capitals, and some exports
lower-case everything. A tagger trained on the mixed case of published
corpora reads case as a cue: every word feature but NORM (PREFIX, SUFFIX,
SHAPE, the characters) changes with it. This augmenter, spaCy's
`[corpora.train.augmenter]` convention, yields each training example
upper-cased with probability `upper`, else lower-cased with probability
`lower`, else as it is; a fresh draw per example and epoch from Python's
`random`, which `spacy train` seeds, as spaCy's own augmenters do. With both
shares 0 it draws nothing, so training is exactly as without an augmenter
(the shipped configs spell it out at 0: a project variable turns it on).

A variant keeps the reference's tokens, entity annotation (missing tokens stay
missing), span groups (nested entities) and user data; other annotation
(tags, parses) is not carried, since the case change makes it another text.
A text whose case change alters a token's length ("ß" -> "SS") is kept as it is:
the offsets would no longer hold.
"""
import random
from functools import partial
from typing import Callable, Iterator

from spacy.attrs import ENT_ID, ENT_IOB, ENT_KB_ID, ENT_TYPE, SENT_START
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.training.augment import dont_augment
from spacy.util import registry

Augmenter = Callable[[Language, Example], Iterator[Example]]
# The reference annotation a case variant carries token by token.
CARRIED = [ENT_IOB, ENT_TYPE, ENT_KB_ID, ENT_ID, SENT_START]


@registry.augmenters("spacy_dtn.case_variants.v1")
def create_case_variants(upper: float = 0.0, lower: float = 0.0) -> Augmenter:
    """Upper-case a share `upper` and lower-case a share `lower` of the training examples."""
    if upper < 0 or lower < 0 or upper + lower > 1:
        raise ValueError(
            f"spacy_dtn.case_variants.v1 has upper = {upper} and lower = {lower}: each is the "
            "share of examples to change, so use values of 0 or more that add up to 1 or less."
        )
    if upper == lower == 0:
        return dont_augment
    return partial(case_variants, upper=upper, lower=lower)


def case_variants(nlp: Language, example: Example, *, upper: float, lower: float) -> Iterator[Example]:
    draw = random.random()
    if draw < upper:
        yield recased(nlp, example, str.upper)
    elif draw < upper + lower:
        yield recased(nlp, example, str.lower)
    else:
        yield example


def recased(nlp: Language, example: Example, change: Callable[[str], str]) -> Example:
    """The example with every reference token's text changed by `change`."""
    reference = example.reference
    words = [change(token.text) for token in reference]
    if any(len(word) != len(token.text) for word, token in zip(words, reference)):
        return example
    doc = Doc(reference.vocab, words=words, spaces=[bool(token.whitespace_) for token in reference])
    doc.from_array(CARRIED, reference.to_array(CARRIED))
    for key, group in reference.spans.items():
        doc.spans[key] = [Span(doc, span.start, span.end, span.label, kb_id=span.kb_id, span_id=span.id) for span in group]
        doc.spans[key].attrs.update(group.attrs)
    doc.user_data.update(reference.user_data)
    return Example(nlp.make_doc(doc.text), doc)
