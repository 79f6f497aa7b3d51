"""`note_sentencizer` (note_sentences.py): spaCy's sentences, told a note's lines."""
import textwrap

import pytest
import spacy

from test_line_wraps import PARAGRAPH


@pytest.fixture(scope="module")
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("note_sentencizer")
    return nlp


def sentences(nlp, text):
    return [s.text.strip() for s in nlp(text).sents]


def test_each_item_of_a_numbered_list_is_a_sentence_with_its_number(nlp):
    text = "1. breast cancer\n2. ataxia telangiectasia\n3. colorectal cancer"
    assert sentences(nlp, text) == ["1. breast cancer", "2. ataxia telangiectasia", "3. colorectal cancer"]
    # spaCy's own ends a sentence after each number's full stop.
    plain = spacy.blank("en")
    plain.add_pipe("sentencizer")
    assert sentences(plain, text) == ["1.", "breast cancer\n2.", "ataxia telangiectasia\n3.", "colorectal cancer"]


@pytest.mark.parametrize("text", [
    "Plan:\n1. (L) knee effusion\n2. \"Gout\" flare",
    "Plan:\n1.\tknee effusion\n2.\tgout flare",
    "Plan:\n1.2. knee effusion\n100. gout flare\nii. asthma",
])
def test_an_item_keeps_its_number_whatever_follows_it(nlp, text):
    assert sentences(nlp, text) == [line.strip() for line in text.split("\n")]


def test_whitespace_before_the_first_word_is_part_of_the_first_sentence(nlp):
    assert sentences(nlp, "\n\nHello there.") == ["Hello there."]
    assert sentences(nlp, "\n\n1. gout\n2. asthma") == ["1. gout", "2. asthma"]


def test_only_sentences_with_a_line_break_are_judged_for_wraps(nlp, monkeypatch):
    """A wrap is judged over whole lines: each of many sentences of one long
    line judged would walk it again (a note of one line took seconds)."""
    import spacy_dtn.note_sentences as module

    calls = []
    judged = module.wrapped_line_breaks
    monkeypatch.setattr(module, "wrapped_line_breaks", lambda *args: calls.append(args) or judged(*args))
    doc = nlp("The patient has gout. " * 200 + "\nShe is well. " * 3)
    assert len(list(doc.sents)) == 203 and len(calls) == 3


def test_a_heading_and_the_lines_of_a_list_are_sentences(nlp):
    text = "PROBLEM LIST:\n- asthma\n- gout\n\u2022 chronic kidney disease\na) anaemia"
    assert sentences(nlp, text) == ["PROBLEM LIST:", "- asthma", "- gout", "\u2022 chronic kidney disease", "a) anaemia"]


@pytest.mark.parametrize("width", [40, 60, 80])
def test_a_wrapped_paragraph_has_the_sentences_of_spacys_sentencizer(nlp, width):
    plain = spacy.blank("en")
    plain.add_pipe("sentencizer")
    text = textwrap.fill(" ".join([PARAGRAPH] * 3), width)
    assert "\n" in text
    assert sentences(nlp, text) == sentences(plain, text)
    assert [" ".join(s.split()) for s in sentences(nlp, text)] == sentences(plain, " ".join([PARAGRAPH] * 3))


def test_a_paragraph_after_a_list_begins_a_sentence_and_its_wraps_do_not(nlp):
    text = "Medications:\n- metformin\n- lisinopril\n" + textwrap.fill(PARAGRAPH, 70)
    found = sentences(nlp, text)
    assert found[:3] == ["Medications:", "- metformin", "- lisinopril"]
    assert [" ".join(s.split()) for s in found[3:]] == [s.strip() for s in sentences(nlp, PARAGRAPH)]


def test_it_saves_and_loads_with_its_settings(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("note_sentencizer", config={"punct_chars": ["."]})
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.pipe_names == ["note_sentencizer"]
    assert loaded.get_pipe("note_sentencizer").punct_chars == {"."}
    assert sentences(loaded, "Gout! Asthma.\n1. x") == ["Gout! Asthma.", "1. x"]
