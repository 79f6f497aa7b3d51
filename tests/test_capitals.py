"""Windows written in capitals are read lower-cased (capitals.py, `lowercase_capitals`)."""
import pytest
import spacy

from spacy_dtn.capitals import in_capitals
from spacy_dtn.reading import read_window

from conftest import SENTENCES, confidences, entities


@pytest.mark.parametrize("text,expected", [
    ("HISTORY OF BREAST CANCER AND DIABETES MELLITUS .", True),
    ("ASPIRIN 81 mg PO DAILY FOR CHEST PAIN", True),  # a unit in small letters
    ("NO KNOWN ALLERGIES", False),  # 16 letters: too short to tell a note from an acronym
    ("Patient with DMD and BRCA1 mutations .", False),
    ("Mutations of BRCA1 , BRCA2 and TP53 in HNPCC and FAP families", False),
    ("DXS7 - MAOA - MAOB - NDP - dc12 - YMAO", True),  # gene symbols alone: 90% capitals
    ("1234 5678 ; 90 / 12", False),
    ("ÄRZTLICHER BERICHT ÜBER MORBUS CROHN", True),  # not ASCII: counted letter by letter
    ("Ärztlicher Bericht über Morbus Crohn", False),
])
def test_a_window_is_in_capitals_when_nearly_all_of_enough_letters_are(text, expected):
    nlp = spacy.blank("en")
    assert in_capitals(nlp(text)[:]) is expected


def test_the_model_reads_a_lower_cased_copy_of_the_words():
    nlp = spacy.blank("en")
    doc = nlp("HISTORY OF BREAST CANCER.\n\nTREATED WITH TAMOXIFEN")
    read = read_window(doc[:]).span
    assert [t.text for t in read] == [t.lower_ for t in doc if not t.is_space]
    assert read.text == "history of breast cancer. treated with tamoxifen"  # the blank line is not read
    assert doc.text == "HISTORY OF BREAST CANCER.\n\nTREATED WITH TAMOXIFEN"  # the note is untouched
    mixed = nlp("History of breast cancer in BRCA1 and BRCA2 carriers.")[:]
    assert read_window(mixed).span is mixed


def test_the_copy_keeps_each_tokens_norm():
    """NORM (the tokenizer's "n't" -> "not") is the one word feature every tagger reads."""
    nlp = spacy.blank("en")
    doc = nlp("She doesn't smoke.\nHISTORY OF BREAST CANCER AND DIABETES")
    read = read_window(doc[:]).span
    assert read is not doc[:] and [t.norm_ for t in read] == [t.norm_ for t in doc if not t.is_space]
    assert "not" in [t.norm_ for t in read]


@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\f", "\u2028"])
def test_a_line_ends_where_str_splitlines_ends_one(line_break):
    nlp = spacy.blank("en")
    doc = nlp(f"Seen today for follow up.{line_break}DIAGNOSES: CONGESTIVE HEART FAILURE, DIABETES")
    read = read_window(doc[:]).span
    assert [t.text for t in read if t.text != t.lower_] == ["Seen"]


def test_only_the_lines_in_capitals_of_a_mixed_case_window_are_read_lower_cased():
    nlp = spacy.blank("en")
    note = nlp("Seen today for follow up.\nDIAGNOSES: CONGESTIVE HEART FAILURE, DIABETES\nNO ALLERGIES\nPlan: see in May.")
    read = read_window(note[:]).span
    words = [t for t in note if not t.is_space]
    lowered = [t.text for t, r in zip(words, read) if t.text != r.text]
    assert lowered == ["DIAGNOSES", "CONGESTIVE", "HEART", "FAILURE", "DIABETES"]  # "NO ALLERGIES": 11 letters
    assert [t.text.lower() for t in words] == [r.text.lower() for r in read]


def test_a_note_in_capitals_is_tagged_as_its_lower_case_and_keeps_its_own_text(target_model):
    nlp = spacy.load(target_model)
    ner = nlp.get_pipe("ner")
    assert ner.lowercase_capitals  # the default
    upper = list(nlp.pipe([s.upper() for s in SENTENCES]))
    lower = list(nlp.pipe([s.lower() for s in SENTENCES]))
    assert any(doc.ents for doc in upper)
    assert entities(upper) == entities(lower) and confidences(upper) == confidences(lower)
    assert all(e.text.isupper() for doc in upper for e in doc.ents)
    ner.lowercase_capitals = False
    assert confidences(nlp.pipe([s.upper() for s in SENTENCES])) != confidences(upper)


def test_mixed_case_notes_are_tagged_as_before(target_model):
    """Notes with line breaks, acronyms (20 or more capitals in all) and
    contractions, no line of them in capitals: read as they are."""
    nlp = spacy.load(target_model)
    notes = [f"{s}\nShe doesn't have HNPCC , FAP or MEN2A .\nSeen by DR SMITH at UCSF ." for s in SENTENCES]
    on = list(nlp.pipe(notes))
    nlp.get_pipe("ner").lowercase_capitals = False
    off = list(nlp.pipe(notes))
    assert entities(on) == entities(off) and confidences(on) == confidences(off) and any(entities(on))


def test_a_line_in_capitals_beside_a_contraction_is_tagged_as_its_lower_case(target_model):
    nlp = spacy.load(target_model)
    body, heading = "She doesn't have renal failure after surgery .", SENTENCES[0].upper()
    note, as_lower = nlp(f"{body}\n{heading}"), nlp(f"{body}\n{heading.lower()}")
    assert entities([note]) == entities([as_lower]) and confidences([note]) == confidences([as_lower])


def test_only_the_sentences_in_capitals_are_read_lower_cased(target_model):
    """A capitals heading sentence before a mixed-case one: each sentence is a
    window, and only the heading's is read lower-cased."""
    nlp = spacy.load(target_model)
    nlp.add_pipe("sentencizer", first=True)
    heading, body = SENTENCES[0].upper(), SENTENCES[3]
    note = nlp(f"{heading} {body}")
    alone = [nlp(heading.lower()), nlp(body)]
    shift = len(heading) + 1
    expected = entities(alone[:1])[0] + [(s + shift, e + shift, label) for s, e, label in entities(alone[1:])[0]]
    assert len(list(note.sents)) == 2 and entities([note]) == [expected] and len(expected) >= 2


def test_a_line_in_capitals_is_tagged_as_its_lower_case_within_its_note(target_model):
    """No sentence boundaries: the note is one window of mixed case, and its line
    in capitals is read as if written in small letters."""
    nlp = spacy.load(target_model)
    body, heading = SENTENCES[3], SENTENCES[0].upper()
    note, as_lower = nlp(f"{body}\n{heading}"), nlp(f"{body}\n{heading.lower()}")
    assert entities([note]) == entities([as_lower]) and confidences([note]) == confidences([as_lower])
    assert any(e.text.isupper() for e in note.ents)
