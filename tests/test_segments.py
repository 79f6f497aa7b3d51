"""Segments never cut a gold entity in training; prediction windows overlap
so that every entity near a window edge is decoded whole."""
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import Doc
from spacy.training import Example

from conftest import TARGET_SENTENCES, expand, make_nlp
from spacy_dtn.segments import prediction_windows, training_windows

NLP = spacy.blank("en")


def doc_with_entities(length, entities):
    """A doc of `length` tokens with (start, end) entities labelled X."""
    tags = ["O"] * length
    for start, end in entities:
        tags[start : end] = ["B-X"] + ["I-X"] * (end - start - 1)
    return Doc(NLP.vocab, words=[f"w{i}" for i in range(length)], ents=tags)


@st.composite
def docs_and_entities(draw):
    length = draw(st.integers(1, 120))
    entities, position = [], 0
    while position < length:
        position += draw(st.integers(0, 6))
        size = draw(st.integers(1, 12))
        if position + size > length:
            break
        entities.append((position, position + size))
        position += size
    return length, entities


@settings(max_examples=80, deadline=None)
@given(case=docs_and_entities(), max_length=st.integers(1, 20))
def test_training_segments_never_cut_an_entity(case, max_length):
    length, entities = case
    doc = doc_with_entities(length, entities)
    tags = Example(doc, doc).get_aligned_ner()
    segments = list(training_windows(doc, max_length, lambda i: not tags[i][0] in "IL"))
    assert [t for s in segments for t in range(s.start, s.end)] == list(range(length))
    for segment in segments:
        inside = [e for e in entities if segment.start < e[1] and e[0] < segment.end]
        assert all(segment.start <= s and e <= segment.end for s, e in inside)
        if len(segment) > max_length:  # only to keep one long entity whole
            assert any(e - s > max_length for s, e in inside)


@settings(max_examples=80, deadline=None)
@given(length=st.integers(1, 300), max_length=st.integers(1, 40), margin=st.integers(0, 10))
def test_prediction_windows_keep_every_token_once_with_context(length, max_length, margin):
    doc = doc_with_entities(length, [])
    windows = list(prediction_windows(doc, max_length, margin))
    kept = [i for w in windows for i in range(w.keep_start, w.keep_end)]
    assert kept == list(range(length))
    margin = min(margin, (max_length - 1) // 2)
    for w in windows:
        assert len(w.span) <= max_length
        # An entity of up to margin + 1 tokens that starts in the kept part lies in the window.
        assert w.keep_end + margin <= w.span.end or w.span.end == length
        assert w.keep_start - margin >= w.span.start or w.span.start == 0


def toy_sentences(copies):
    return [expand(template, c + t) for c in range(copies) for t, template in enumerate(TARGET_SENTENCES)]


def as_example(nlp, sentences):
    words = [w for sentence in sentences for w, _ in sentence]
    doc = Doc(nlp.vocab, words=words, ents=[tag for sentence in sentences for _, tag in sentence])
    return Example(Doc(nlp.vocab, words=words), doc)


def test_a_long_note_trains_with_the_loss_of_its_sentences():
    """Entities straddle the 16-token segment edges of a note without sentence
    boundaries; cut there, each would add about 1e4 to the loss."""
    nlp = make_nlp({"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1"})
    ner = nlp.get_pipe("ner")
    ner.max_segment_length = 16
    sentences = toy_sentences(12)
    note = as_example(nlp, sentences)
    tags = note.get_aligned_ner()
    assert any(tags[i][0] in "IL" for i in range(16, len(tags), 16))  # fixed cuts would split entities
    nlp.initialize(lambda: [note])
    note_loss = nlp.update([note], sgd=None)["ner"]
    sentence_loss = nlp.update([as_example(nlp, [s]) for s in sentences], sgd=None)["ner"]
    assert note_loss < 2 * sentence_loss
