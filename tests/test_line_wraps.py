"""Which line breaks an editor made by wrapping a line, and which a writer
made (line_wraps.py), and what the tagger reads of each (reading.py)."""
import textwrap

import pytest
import spacy

from spacy_dtn.line_wraps import WRAP_MIN_WIDTH, wrapped_line_breaks
from spacy_dtn.reading import read_window

PARAGRAPH = (
    "The patient is a 64 year old woman with a history of congestive heart failure , type 2 diabetes "
    "mellitus and chronic kidney disease who presented with three days of worsening shortness of breath "
    "and bilateral leg swelling . She was treated for an exacerbation of her heart failure with diuretics ."
)
LIST = ["diabetes", "hypertension", "chronic obstructive pulmonary disease", "asthma"]


def line_breaks(doc) -> set:
    return {t.i for t in doc if t.is_space and "\n" in t.text}


@pytest.mark.parametrize("width", [WRAP_MIN_WIDTH + 5, 60, 80])
def test_every_break_of_a_wrapped_paragraph_is_a_wrap_and_read_as_a_space(width):
    nlp = spacy.blank("en")
    doc = nlp(textwrap.fill(PARAGRAPH, width))
    assert len(line_breaks(doc)) >= 3
    assert wrapped_line_breaks(doc, 0, len(doc)) == line_breaks(doc)
    reading = read_window(doc[:])
    assert reading.span.text == PARAGRAPH and reading.column_breaks == ()


def test_a_list_after_a_wrapped_paragraph_keeps_its_lines_apart():
    nlp = spacy.blank("en")
    doc = nlp(textwrap.fill(PARAGRAPH, 70) + "\n\nProblems:\n" + "\n".join(LIST))
    wraps = wrapped_line_breaks(doc, 0, len(doc))
    first_list_break = min(t.i for t in doc if t.text == "\n\n")
    assert wraps and all(i < first_list_break for i in wraps)
    reading = read_window(doc[:])
    starts = {reading.span[i].text for i in reading.column_breaks}
    assert starts == {"Problems", "diabetes", "hypertension", "chronic", "asthma"}


def test_the_widest_item_of_a_list_does_not_make_it_a_paragraph():
    nlp = spacy.blank("en")
    items = ["diabetes", "autosomal dominant polycystic kidney disease in the adult", "asthma", "gout"]
    doc = nlp("\n".join(items))
    assert len(items[1]) >= WRAP_MIN_WIDTH
    assert wrapped_line_breaks(doc, 0, len(doc)) == set()
    assert len(read_window(doc[:]).column_breaks) == len(items) - 1


def test_a_blank_line_or_a_narrow_text_is_never_a_wrap():
    nlp = spacy.blank("en")
    wrapped = textwrap.fill(PARAGRAPH, 70)
    blank = nlp(wrapped.replace("\n", "\n\n", 1))
    assert min(t.i for t in blank if t.text == "\n\n") not in wrapped_line_breaks(blank, 0, len(blank))
    narrow = nlp(textwrap.fill(PARAGRAPH, WRAP_MIN_WIDTH - 10))
    assert wrapped_line_breaks(narrow, 0, len(narrow)) == set()


def test_a_window_that_begins_or_ends_inside_a_line_measures_the_lines_whole():
    """A sentence of a wrapped note (a sentencizer's window) begins and ends
    mid-line: its breaks are wraps as they are in the whole note."""
    nlp = spacy.blank("en")
    doc = nlp(textwrap.fill(PARAGRAPH, 60))
    whole = wrapped_line_breaks(doc, 0, len(doc))
    period = next(t.i for t in doc if t.text == ".")
    for start, end in [(3, period + 1), (period + 1, len(doc)), (5, len(doc) - 5)]:
        assert wrapped_line_breaks(doc, start, end) == {i for i in whole if start <= i < end}
        assert read_window(doc[start:end]).column_breaks == ()


def test_every_sentence_of_a_note_wrapped_at_the_narrowest_width_reads_its_wraps():
    """Wrapped at 40 columns, few lines reach the width: a sentence's window
    finds it in the lines around, as a window of the whole note does."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    doc = nlp(textwrap.fill(" ".join([PARAGRAPH] * 4), WRAP_MIN_WIDTH))
    assert sum(len(line) == WRAP_MIN_WIDTH for line in doc.text.splitlines()) >= 2
    assert wrapped_line_breaks(doc, 0, len(doc)) == line_breaks(doc)
    for sentence in doc.sents:
        assert wrapped_line_breaks(doc, sentence.start, sentence.end) == line_breaks(sentence)
        assert read_window(sentence).column_breaks == ()


@pytest.mark.parametrize("width", [WRAP_MIN_WIDTH, 60])
def test_one_wider_line_nearby_does_not_hide_a_paragraphs_wraps(width):
    """A date line typed above a note wrapped at 60 columns is no width."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    header = "Seen in the outpatient clinic on 12 March 2019 by the attending physician."
    doc = nlp(header + "\n\n" + textwrap.fill(" ".join([PARAGRAPH] * 2), width))
    wraps = line_breaks(doc) - {t.i for t in doc if t.text == "\n\n"}
    assert wrapped_line_breaks(doc, 0, len(doc)) == wraps
    for sentence in list(doc.sents)[1:]:
        assert wrapped_line_breaks(doc, sentence.start, sentence.end) == line_breaks(sentence) & wraps


def test_the_short_items_of_a_list_set_no_width_for_a_paragraph_before_it():
    """Two long lines and a list: the items are close to each other in length,
    but a width under WRAP_MIN_WIDTH is none."""
    nlp = spacy.blank("en")
    doc = nlp("Patient presents with worsening shortness of breath and congestive heart\n"
              "failure and ankle swelling over the past three weeks now.\n- asthma\n- gout")
    reading = read_window(doc[:])
    assert "congestive heart failure and" in reading.span.text
    assert [reading.span[i].text for i in reading.column_breaks] == ["asthma", "gout"]


@pytest.mark.parametrize("bullet", ["- ", "* ", "\u2022 "])
def test_the_bullets_of_a_list_are_not_read_and_each_item_is_a_column(bullet):
    nlp = spacy.blank("en")
    doc = nlp("Problems:\n" + "\n".join(bullet + item for item in LIST))
    reading = read_window(doc[:])
    assert reading.span.text == "Problems: " + " ".join(LIST)
    assert {reading.span[i].text for i in reading.column_breaks} == {"diabetes", "hypertension", "chronic", "asthma"}
    first = nlp("\n".join(bullet + item for item in LIST))  # a note that begins with its list
    assert read_window(first[:]).span.text == " ".join(LIST)


def test_a_dash_that_begins_a_text_of_one_line_or_a_wrapped_line_is_read():
    """A corpus of one sentence a doc ("- The percentages ..."), and a dash
    that an editor's wrap put at the start of a line ("X\\n- linked")."""
    nlp = spacy.blank("en")
    for text in ["- The percentages of births differ .", "- The percentages of births differ .\n"]:
        sentence = nlp(text)[:]
        assert read_window(sentence).span.text.startswith("- The")
    doc = nlp("The patient is a 64 year old man with a long history of adrenoleukodystrophy , X\n"  # wrapped at 80
              "- linked , and chronic kidney disease who presented with three days of worsening\n"
              "shortness of breath and bilateral leg swelling .")
    dash = next(t.i for t in doc if t.text == "-")
    assert dash - 1 in wrapped_line_breaks(doc, 0, len(doc))
    assert "X - linked" in read_window(doc[:]).span.text


@pytest.mark.parametrize("marks", [["- "] * 3, ["1. ", "2. ", "3. "], ["a) ", "b) ", "c) "]])
def test_lines_in_a_row_that_begin_with_item_marks_are_a_list_however_wide(marks):
    nlp = spacy.blank("en")
    items = ["chronic obstructive pulmonary disease with frequent exacerbations",
             "autosomal dominant polycystic kidney disease in the adult",
             "type 2 diabetes mellitus with diabetic nephropathy and retinopathy"]
    doc = nlp("\n".join(mark + item for mark, item in zip(marks, items)))
    assert min(len(item) for item in items) > WRAP_MIN_WIDTH
    assert wrapped_line_breaks(doc, 0, len(doc)) == set()
    assert len(read_window(doc[:]).column_breaks) == 2


def test_a_long_line_before_a_list_does_not_make_its_own_width():
    """The line that introduces a list is judged against the other lines, not
    itself: its break, and the bullet after it, stay the writer's."""
    nlp = spacy.blank("en")
    doc = nlp("Seen today for follow up of chronic problems and a medication review in clinic.\n"
              "No acute complaints today; her current problems are as below:\n- asthma\n- hypertension\n- gout")
    reading = read_window(doc[:])
    assert reading.span.text.endswith("as below: asthma hypertension gout")
    assert [reading.span[i].text for i in reading.column_breaks] == ["asthma", "hypertension", "gout"]


@pytest.mark.parametrize("text", ["  - asthma\n  - gout", "x\n  - asthma\n  - gout", "x\n*\tasthma\n*\tgout"])
def test_indented_bullets_and_bullets_before_a_tab_are_not_read(text):
    reading = read_window(spacy.blank("en")(text)[:])
    assert reading.span.text.split() == [w for w in ["x", "asthma", "gout"] if w in text]
