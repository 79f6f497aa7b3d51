"""What the tagger reads of a window: no whitespace tokens (line breaks, tabs,
no-break spaces, runs of spaces); compatibility characters in their plain
form (reading.py)."""
from pathlib import Path

import pytest
import spacy
import torch
from spacy.training import Example
from thinc.api import fix_random_seed

from spacy_dtn import ner_component
from spacy_dtn.converters.iob import read_iob
from spacy_dtn.plan import TARGET
from spacy_dtn.reading import column_break_flags, plain_form, read_training_segment, read_window
from spacy_dtn.segments import prediction_windows
from spacy_dtn.tag_scheme import continuing_tags
from spacy_dtn.tagger_model import forbid_tags
from spacy_dtn.transfer_corpus import mark_task

from conftest import SENTENCES, confidences, entities

LAYOUTS = {"no-break space": "\u00a0", "tab": "\t", "two spaces": "  ", "ideographic space": "\u3000", "space and tab": " \t",
           "line break": "\n", "blank line": "\n\n", "carriage return": "\r\n"}
ONE_SPACE = {"no-break space": "\u00a0", "ideographic space": "\u3000", "narrow no-break space": "\u202f"}


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
def test_the_tagger_reads_the_words_without_their_layout_and_knows_where_each_is(layout):
    nlp = spacy.blank("en")
    doc = nlp(f"She doesn't have{layout}breast{layout}cancer .")
    reading = read_window(doc[:])
    assert reading.span.text == "She doesn't have breast cancer ."
    assert [t.norm_ for t in reading.span] == [t.norm_ for t in doc if not t.is_space]
    assert [doc[reading.doc_index(i)].text for i in range(len(reading.span))] == [t.text for t in reading.span]
    start, end = reading.doc_span(4, 6)  # "breast cancer": the layout between them stays inside
    assert doc[start:end].text == f"breast{layout}cancer"


def test_a_window_without_whitespace_tokens_is_read_as_it_is():
    nlp = spacy.blank("en")
    note = nlp("DIAGNOSES: breast cancer . Plan: follow up .")[:]
    assert read_window(note).span is note
    with_tab = nlp("DIAGNOSES:\tbreast cancer\nPlan: follow up .")
    assert [t.text for t in read_window(with_tab[:]).span] == ["DIAGNOSES", ":", "breast", "cancer", "Plan", ":", "follow", "up", "."]
    only_layout = nlp("a \t b")[1:2]
    assert read_window(only_layout).span is only_layout
    indented = nlp(" breast cancer\n  seen")  # spaCy makes a token of the space that begins a text
    assert [t.text for t in read_window(indented[:]).span] == ["breast", "cancer", "seen"]
    with_control = nlp("breast\x07cancer")[:]  # not printable, no whitespace token: read as it is
    assert read_window(with_control).span is with_control


def test_layout_and_capitals_make_one_copy():
    nlp = spacy.blank("en")
    doc = nlp("HISTORY\u00a0OF BREAST CANCER AND\tDIABETES MELLITUS")
    reading = read_window(doc[:])
    assert reading.span.text == "history of breast cancer and diabetes mellitus"
    assert read_window(doc[:], lowercase_capitals=False).span.text == "HISTORY OF BREAST CANCER AND DIABETES MELLITUS"


def full_width(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@pytest.mark.parametrize("text,breaks", [
    ("renal failure\tdiabetes", (2,)),  # a field boundary
    ("renal failure  diabetes", (2,)),
    ("renal failure \u00a0diabetes", (2,)),  # "&nbsp; " indents
    ("renal\u00a0failure diabetes", ()),  # one space between words
    ("renal failure\u3000diabetes", ()),
    ("renal failure\ndiabetes", (2,)),  # a line of a list
    ("renal failure\n\ndiabetes", (2,)),
    ("renal failure\r\ndiabetes", (2,)),
])
def test_a_tab_a_run_of_spaces_or_a_line_break_left_out_is_a_column_break(text, breaks):
    reading = read_window(spacy.blank("en")(text)[:])
    assert reading.column_breaks == breaks


def test_column_break_flags_follow_the_tokens_of_a_batch_in_order():
    nlp = spacy.blank("en")
    readings = [read_window(nlp(text)[:]) for text in ["a b", "a\tb  c", "x"]]
    assert column_break_flags(readings).tolist() == [False, False, False, True, True, False]


def test_no_entity_runs_across_a_column_break(target_model):
    """Fields of a problem list joined by tabs or runs of spaces: each entity
    lies within one field, exactly where the rule rules continuing tags out."""
    nlp = spacy.load(target_model)
    fields = [SENTENCES[i].rstrip(" .") for i in range(len(SENTENCES))]
    notes = [f"{a}\t{b}  {c}" for a, b, c in zip(fields, fields[1:], fields[2:])]
    docs = list(nlp.pipe(notes))
    assert any(doc.ents for doc in docs)
    assert not any("\t" in e.text or "  " in e.text for doc in docs for e in doc.ents)
    ner = nlp.get_pipe("ner")
    readings = [read_window(doc[:]) for doc in docs]
    names = ner.tag_names(TARGET)
    rules = [(column_break_flags(readings), continuing_tags(names, "BILUO"))]
    scores, _ = forbid_tags(ner.model.predict(([r.span for r in readings], TARGET)), rules)
    for row, reading in enumerate(readings):
        for i in range(len(reading.span)):
            ruled_out = bool(torch.isinf(scores.emissions[row, i]).any())
            assert ruled_out == (i in reading.column_breaks)


def test_prediction_ends_every_entity_at_a_column_break(target_model, monkeypatch):
    """A model that would carry one entity through the whole note: the breaks cut it into the fields."""
    nlp = spacy.load(target_model)
    inner = torch.from_numpy(continuing_tags(nlp.get_pipe("ner").tag_names(TARGET), "BILUO"))

    def eager(outputs, rules):  # the model's scores, every continuing tag made far likelier
        scores, gates = outputs
        return forbid_tags((scores._replace(emissions=scores.emissions + 50.0 * inner), gates), rules)

    monkeypatch.setattr(ner_component, "forbid_tags", eager)
    doc = nlp("renal failure\tcolon cancer  breast cancer")
    assert [e.text for e in doc.ents] == ["renal failure", "colon cancer", "breast cancer"]
    assert [e.text for e in nlp("renal failure colon cancer").ents] == ["renal failure colon cancer"]


def test_compatibility_characters_are_read_in_their_plain_form_with_its_norm():
    nlp = spacy.blank("en")
    doc = nlp("cystic \ufb01brosis and \uff23\uff26 , 5 \u338e ´ daily")
    read = read_window(doc[:]).span
    assert [t.text for t in read] == ["cystic", "fibrosis", "and", "CF", ",", "5", "mg", "´", "daily"]
    assert [t.norm_ for t in read] == ["cystic", "fibrosis", "and", "cf", ",", "5", "mg", "'", "daily"]  # spaCy's norm of ´
    assert read_window(doc[:]).positions == list(range(len(doc)))  # the same tokens
    assert doc.text.startswith("cystic \ufb01brosis")  # the note is untouched


def test_format_characters_are_not_read_unless_nothing_else_is_there():
    nlp = spacy.blank("en")
    doc = nlp("\ufeffRenal fail\u00adure and can\u00adcer \u200b seen")
    read = read_window(doc[:]).span
    assert [t.text for t in read] == ["Renal", "failure", "and", "cancer", "\u200b", "seen"]
    assert [t.norm_ for t in read][:4] == ["renal", "failure", "and", "cancer"]


def test_format_characters_go_before_nfkc_composes():
    """U+00AD between a letter and its accent would keep NFKC from composing them."""
    assert plain_form("caf" + "e\u00ad\u0301") == "caf\u00e9" and plain_form("\u1100\u00ad\u1161") == "\uac00"


def test_a_token_in_capitals_and_full_width_is_read_lower_cased_and_plain():
    nlp = spacy.blank("en")
    doc = nlp(full_width("HISTORY OF BREAST CANCER AND DIABETES MELLITUS"))
    assert read_window(doc[:]).span.text == "history of breast cancer and diabetes mellitus"


@pytest.mark.parametrize("layout", ONE_SPACE.values(), ids=ONE_SPACE.keys())
def test_notes_with_other_spaces_are_tagged_as_with_single_spaces(target_model, layout):
    """Same entities on the same words, with the same confidences; an entity
    keeps the space inside it, never at its edges. (Tabs and runs of spaces
    are column breaks: test_no_entity_runs_across_a_column_break.)"""
    nlp = spacy.load(target_model)
    plain = [f"{a} {b}" for a, b in zip(SENTENCES, SENTENCES[1:])]
    spaced = list(nlp.pipe([text.replace(" ", layout) for text in plain]))
    as_plain = list(nlp.pipe(plain))
    assert any(doc.ents for doc in as_plain) and confidences(spaced) == confidences(as_plain)
    assert [[(e.text.replace(layout, " "), e.label_) for e in doc.ents] for doc in spaced] == [
        [(e.text, e.label_) for e in doc.ents] for doc in as_plain]
    assert not any(e[0].is_space or e[-1].is_space for doc in spaced for e in doc.ents)
    assert entities(spaced) == entities(as_plain)  # one character each: the same offsets


def test_notes_in_full_width_forms_are_tagged_as_in_ascii(target_model):
    nlp = spacy.load(target_model)
    plain, wide = list(nlp.pipe(SENTENCES)), list(nlp.pipe(map(full_width, SENTENCES)))
    assert any(doc.ents for doc in plain)
    assert entities(wide) == entities(plain) and confidences(wide) == confidences(plain)
    assert [e.text for doc in wide for e in doc.ents] == [full_width(e.text) for doc in plain for e in doc.ents]


def test_a_training_segment_is_read_without_its_layout_with_its_gold_tags():
    nlp = spacy.blank("en")
    doc = nlp("Risk of breast\u00a0cancer  rose .")
    biluo = ["O", "O", "B-Disease", "I-Disease", "L-Disease", "O", "O", "O"]
    reading, tags = read_training_segment(doc[:], biluo)
    assert [t.text for t in reading.span] == ["Risk", "of", "breast", "cancer", "rose", "."]
    assert tags == ["O", "O", "B-Disease", "L-Disease", "O", "O"]
    # An annotation that takes in a left-out token is kept on the tokens of it that are read.
    starts_on_space = ["O", "O", "O", "B-Disease", "L-Disease", "B-Disease", "I-Disease", "L-Disease"]
    reading, tags = read_training_segment(doc[:], starts_on_space)
    assert len(reading.span) == 6 and tags == ["O", "O", "O", "U-Disease", "B-Disease", "L-Disease"]
    assert read_training_segment(doc[:], ["O", "O", "O", "U-Disease", "O", "U-X", "O", "O"])[1] == ["O"] * 6


def test_training_on_a_note_with_layout_is_training_on_it_with_single_spaces(target_model):
    """The same loss (dropout seeded alike): the same tokens read, with the same gold tags."""
    nlp = spacy.load(target_model)
    references = list(nlp.pipe(SENTENCES))  # the model's own entities as gold

    def loss(text_of) -> float:
        examples = [mark_task(Example(nlp.make_doc(text_of(d.text)), _respaced(nlp, d, text_of)), TARGET) for d in references]
        fix_random_seed(0)
        return nlp.get_pipe("ner").update(examples)["ner"]

    assert any(doc.ents for doc in references)
    assert loss(lambda text: text) > 0 and loss(lambda text: text.replace(" ", "\u00a0")) == pytest.approx(loss(lambda text: text))
    assert loss(full_width) == pytest.approx(loss(lambda text: text))


def _respaced(nlp, doc, text_of):
    """The doc's entities on the same words of text_of(doc.text), a text of the same length."""
    spaced = nlp.make_doc(text_of(doc.text))
    spaced.ents = [spaced.char_span(e.start_char, e.end_char, label=e.label_) for e in doc.ents]
    return spaced


def test_every_window_of_the_shipped_corpora_is_read_as_it_is():
    """Why reading.py and `lowercase_capitals = true` keep the benchmark
    records' config digest (spacy_dtn.runs.NEUTRAL_SETTINGS): no text the grid
    trains on has layout, and no window it tunes on or scores is read
    differently (the grid predicts on dev and test sets only)."""
    assets = Path(__file__).parent.parent / "assets"
    docs = {path: list(read_iob(path)) for path in sorted(assets.glob("*-IOB/*.tsv"))}
    assert len(docs) == 12 and sum(map(len, docs.values())) > 45_000
    for doc in (doc for texts in docs.values() for doc in texts):
        whole = doc[:]
        assert read_training_segment(whole, ["O"] * len(doc))[0].span is whole
    scored = [docs[path] for path in docs if path.stem in ("devel", "test")]
    windows = [w.span for texts in scored for doc in texts for w in prediction_windows(doc, 256, 32)]
    assert len(windows) > 20_000 and all(read_window(span).span is span for span in windows)
