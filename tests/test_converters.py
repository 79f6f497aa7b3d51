"""Tests for the corpus converters (spacy_dtn.converters).

Fixtures in tests/fixtures/converters are small synthetic clinical notes
written for these tests (no real patient data); malformed inputs are written
to tmp_path by each test.
"""
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import List, Tuple

import pytest
import spacy
from hypothesis import given, settings
from hypothesis import strategies as st
from spacy.tokens import DocBin
from spacy.util import registry

from spacy_dtn.converters import (
    ALL_ENTITIES_KEY,
    ConversionError,
    ConversionStats,
    convert,
    read_brat,
    read_i2b2_2010,
    read_i2b2_xml,
    read_iob,
    subsample,
)
from spacy_dtn.converters.__main__ import main
from spacy_dtn.converters.iob import spans_from_file_tags
from spacy_dtn.converters.sentences import set_sentences
from spacy_dtn.converters.spans import Mention, set_entities

FIXTURES = Path(__file__).parent / "fixtures" / "converters"
REPO_ROOT = Path(__file__).resolve().parent.parent


def ents(doc) -> List[Tuple[str, str]]:
    return [(ent.text, ent.label_) for ent in doc.ents]


def token_ents(doc) -> List[Tuple[int, int, str]]:
    return [(ent.start, ent.end, ent.label_) for ent in doc.ents]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


# ---------------------------------------------------------------- IOB


SENTENCE_1 = "Patient is a 67 yo male with chest pain and shortness of breath .".split()
SENTENCE_2 = "Troponin was elevated ; started aspirin 81 mg heparin drip .".split()
EXPECTED_IOB_ENTS = [
    [(7, 9, "problem"), (10, 13, "problem")],
    [(0, 1, "test"), (5, 8, "treatment"), (8, 10, "treatment")],
]


def test_iob_bio_words_entities_and_docstart(nlp):
    stats = ConversionStats()
    docs = list(read_iob(FIXTURES / "iob" / "bio.tsv", nlp=nlp, stats=stats))
    assert [[t.text for t in doc] for doc in docs] == [SENTENCE_1, SENTENCE_2]
    assert [token_ents(doc) for doc in docs] == EXPECTED_IOB_ENTS
    assert ents(docs[1]) == [
        ("Troponin", "test"),
        ("aspirin 81 mg", "treatment"),
        ("heparin drip", "treatment"),
    ]
    assert [bool(t.whitespace_) for t in docs[0]] == [True] * 13 + [False]
    assert docs[0].user_data == {"source_file": "bio.tsv", "source_line": 3}
    assert docs[1].user_data == {"source_file": "bio.tsv", "source_line": 18}
    assert stats.docs_read == 2
    assert stats.skipped == Counter({"-DOCSTART- lines": 1})


@pytest.mark.parametrize("scheme", ["iob1", "bioes"])
def test_iob_schemes_give_the_same_entities_as_bio(nlp, scheme):
    bio = list(read_iob(FIXTURES / "iob" / "bio.tsv", nlp=nlp))
    other = list(read_iob(FIXTURES / "iob" / f"{scheme}.tsv", nlp=nlp))
    assert [[t.text for t in doc] for doc in other] == [SENTENCE_1, SENTENCE_2]
    assert [token_ents(doc) for doc in other] == [token_ents(doc) for doc in bio]
    assert [token_ents(doc) for doc in other] == EXPECTED_IOB_ENTS


def test_iob_folder_reads_every_file_in_name_order(nlp):
    docs = list(read_iob(FIXTURES / "iob", nlp=nlp))
    assert [doc.user_data["source_file"] for doc in docs] == [
        "bio.tsv", "bio.tsv", "bioes.tsv", "bioes.tsv", "iob1.tsv", "iob1.tsv",
    ]


@pytest.mark.parametrize(
    "tags,spans",
    [
        (["I-A", "I-B", "B-B", "O"], [(0, 1, "A"), (1, 2, "B"), (2, 3, "B")]),  # IOB1
        (
            ["B-A", "E-A", "S-A", "U-B", "B-C", "L-C"],
            [(0, 2, "A"), (2, 3, "A"), (3, 4, "B"), (4, 6, "C")],
        ),
        (["B-Gene-or-protein", "I-Gene-or-protein"], [(0, 2, "Gene-or-protein")]),
        (["O", "B-A", "I-A"], [(1, 3, "A")]),  # entity open at the end
    ],
)
def test_tags_to_spans_decodes_mixed_schemes(tags, spans):
    assert spans_from_file_tags([(tag, i + 1) for i, tag in enumerate(tags)], Path("x.tsv")) == spans


def _encode(spans, n, scheme):
    tags = ["O"] * n
    previous_end, previous_label = -1, None
    for start, end, label in spans:
        if scheme == "bio":
            tags[start : end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
        elif scheme == "iob1":
            first = "B" if (previous_end == start and previous_label == label) else "I"
            tags[start : end] = [f"{first}-{label}"] + [f"I-{label}"] * (end - start - 1)
        elif end - start == 1:
            tags[start] = f"S-{label}"
        else:
            inside = [f"I-{label}"] * (end - start - 2)
            tags[start : end] = [f"B-{label}"] + inside + [f"E-{label}"]
        previous_end, previous_label = end, label
    return tags


@st.composite
def entity_layouts(draw):
    n = draw(st.integers(min_value=1, max_value=12))
    cuts = sorted(set(draw(st.lists(st.integers(0, n), max_size=8)) + [0, n]))
    spans = []
    for start, end in zip(cuts, cuts[1:]):
        label = draw(st.sampled_from([None, "problem", "test"]))
        if label is not None:
            spans.append((start, end, label))
    return n, spans


@settings(max_examples=150, deadline=None)
@given(entity_layouts(), st.sampled_from(["bio", "iob1", "bioes"]))
def test_tags_to_spans_inverts_every_scheme(layout, scheme):
    n, spans = layout
    tags = _encode(spans, n, scheme)
    assert spans_from_file_tags([(tag, i + 1) for i, tag in enumerate(tags)], Path("x.tsv")) == spans


@pytest.mark.parametrize(
    "content,line,value",
    [
        ("chest\tB-problem\npain\tX-Foo\n", "line 2", "X-Foo"),
        ("chest\tB-problem\npain\tE-test\n", "line 2", "E-test"),
        ("\nchest\tO\npain\tE-problem\n", "line 3", "E-problem"),
        ("chest\tB-\n", "line 1", "B-"),
        ("chest\tO\npain\n", "line 2", "pain"),  # truncated: a token and no tag
        ("chest\tO\npain\tB", "line 2", "B"),  # cut in the middle of the tag
        ("chest\tB-chief complaint\n", "line 1", "complaint"),  # label with a space
    ],
)
def test_iob_malformed_tags_name_file_line_and_value(tmp_path, content, line, value):
    path = write(tmp_path / "bad-tags.tsv", content)
    with pytest.raises(ConversionError) as info:
        list(read_iob(path))
    message = str(info.value)
    assert "bad-tags.tsv" in message
    assert f", {line}:" in message
    assert repr(value) in message
    assert info.value.location == line


def test_iob_empty_file_is_an_error(tmp_path):
    path = write(tmp_path / "empty.tsv", "\n-DOCSTART-\tO\n\n")
    with pytest.raises(ConversionError, match=r"empty\.tsv, whole file: no tokens found"):
        list(read_iob(path))
    path.write_bytes(b"")
    with pytest.raises(ConversionError, match=r"empty\.tsv, whole file: no tokens found"):
        list(read_iob(path))


def test_iob_label_with_a_space_says_why(tmp_path):
    path = write(tmp_path / "space.tsv", "pain\tB-chief complaint\n")
    with pytest.raises(ConversionError, match="a label cannot contain spaces"):
        list(read_iob(path))


def test_iob_byte_order_mark_is_not_a_token(tmp_path, nlp):
    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufeff-DOCSTART-\tO\n\nchest\tB-problem\npain\tI-problem\n".encode("utf-8"))
    stats = ConversionStats()
    (doc,) = read_iob(path, nlp=nlp, stats=stats)
    assert [t.text for t in doc] == ["chest", "pain"]
    assert stats.skipped == Counter({"-DOCSTART- lines": 1})


def test_iob_columns_split_on_spaces_and_tabs_only(tmp_path, nlp):
    # A no-break space inside a token is part of the token, not a column break.
    path = write(tmp_path / "nbsp.tsv", "aspirin\tB-treatment\n81\u00a0mg\tI-treatment\r\ndaily O\n")
    (doc,) = read_iob(path, nlp=nlp)
    assert [t.text for t in doc] == ["aspirin", "81\u00a0mg", "daily"]
    assert token_ents(doc) == [(0, 2, "treatment")]


# ---------------------------------------------------------------- brat


def test_brat_entities_and_policy_counts(nlp):
    stats = ConversionStats()
    docs = list(read_brat(FIXTURES / "brat", nlp=nlp, stats=stats))
    assert [doc.user_data["source_file"] for doc in docs] == ["note1.txt", "note2.txt"]
    assert ents(docs[0]) == [
        ("chest pain", "Problem"),
        ("radiating to the left arm", "Problem"),  # T2: discontinuous, merged
        ("Troponin-I", "Test"),  # T3 kept, nested T4 "Troponin" in doc.spans only
        ("aspirin 81 mg", "Treatment"),  # T5 kept, nested T6 and T7 in doc.spans only
        ("shortness of breath", "Problem"),  # T8 "shortness of breat", expanded
    ]
    assert [(e.start_char, e.end_char) for e in docs[0].ents] == [
        (29, 39), (40, 65), (67, 77), (100, 113), (124, 143),
    ]
    assert ents(docs[1]) == [
        ("creatinine", "Test"),  # tie with T2 on the same span: first in file wins
        ("acute kidney", "Problem"),  # tie with "kidney injury": earliest start wins
        ("lisinopril", "Treatment"),  # trailing space trimmed
    ]
    assert docs[0].text == (FIXTURES / "brat" / "note1.txt").read_text()
    assert stats.docs_read == 2
    assert stats.counts == Counter(
        merged_discontinuous=1, expanded_to_tokens=1, trimmed_whitespace=1,
        nested=3,  # T4 in T3, T6 and T7 in T5
        same_span_other_label=1,  # note2 T2
        crossing=1,  # note2 "kidney injury" against "acute kidney"
    )
    assert [len(doc.spans[ALL_ENTITIES_KEY]) for doc in docs] == [8, 5]
    assert ("kidney injury", "Problem") in [(s.text, s.label_) for s in docs[1].spans[ALL_ENTITIES_KEY]]
    assert stats.skipped == Counter(
        {"brat R lines": 1, "brat A lines": 1, "brat # lines": 1, ".txt files without .ann": 1}
    )


@pytest.mark.parametrize("name", ["note2.ann", "note2.txt"])
def test_brat_single_pair(nlp, name):
    docs = list(read_brat(FIXTURES / "brat" / name, nlp=nlp))
    assert len(docs) == 1
    assert ents(docs[0]) == [
        ("creatinine", "Test"), ("acute kidney", "Problem"), ("lisinopril", "Treatment"),
    ]


def test_brat_tokenization_is_the_blank_english_tokenizer(nlp):
    doc = next(iter(read_brat(FIXTURES / "brat" / "note1.ann", nlp=nlp)))
    assert [t.text for t in doc] == [t.text for t in nlp.make_doc(doc.text)]


BRAT_TEXT = "Pt denies chest pain. Given aspirin.\n"


@pytest.mark.parametrize(
    "ann,location,value",
    [
        (
            "T1\tProblem 10 20\tchest pain\nT2\tTreatment 28 80\taspirin\n",
            "annotation T2 (line 2)",
            "28 80",
        ),
        ("T1\tProblem 10 20\tchest pains\n", "annotation T1 (line 1)", "chest pains"),
        ("T1\tProblem 10 x\tchest pain\n", "annotation T1 (line 1)", "10 x"),
        ("T1\tProblem 20 10\tchest pain\n", "annotation T1 (line 1)", "20 10"),
        ("T1\tChief complaint 10 20\tchest pain\n", "annotation T1 (line 1)", "complaint 10 20"),
        ("R1\tCause Arg1:T1 Arg2:T2\nX1 what is this\n", "line 2", "X1 what is this"),
        # offsets beyond the text, both of them
        ("T1\tProblem 40 45\tchest\n", "annotation T1 (line 1)", "40 45"),
        # zero-length span: an error (see the spans module docstring), not a drop
        ("T1\tProblem 10 10\t\n", "annotation T1 (line 1)", "zero-length span"),
        # lines cut short: in the offsets, after the label, after the id
        ("T1\tProblem 10 20\tchest pain\nT2\tTreatment 28", "annotation T2 (line 2)", "'28'"),
        ("T1\tProblem 10 20\tchest pain\nT2\tTreat", "annotation T2 (line 2)", "''"),
        ("T1\tProblem 10 20\tchest pain\nT2", "line 2", "'T2'"),
    ],
)
def test_brat_malformed_annotations_name_file_and_id(tmp_path, ann, location, value):
    write(tmp_path / "note.txt", BRAT_TEXT)
    write(tmp_path / "note.ann", ann)
    with pytest.raises(ConversionError) as info:
        list(read_brat(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "note.ann") in message
    assert info.value.location == location
    assert value in message


@pytest.mark.parametrize("bad_file", ["note.txt", "note.ann"])
def test_brat_latin1_bytes_name_file_line_and_byte(tmp_path, bad_file):
    files = {"note.txt": BRAT_TEXT, "note.ann": "T1\tProblem 10 20\tchest pain\n"}
    for name, text in files.items():
        write(tmp_path / name, text)
    # Line 3, after 8 KB of valid text: the offset counts from the start of the file.
    padding = "x" * 9000
    content = files[bad_file] + padding + "\nCaf\u00e9 au lait.\n"
    (tmp_path / bad_file).write_bytes(content.encode("latin-1"))
    byte = len(content.encode("latin-1").split(b"\xe9")[0])
    with pytest.raises(ConversionError) as info:
        list(read_brat(tmp_path))
    assert info.value.path == tmp_path / bad_file
    assert info.value.location == f"line 3, byte {byte}"
    assert "not valid UTF-8 (invalid continuation byte)" in str(info.value)
    assert "iconv -f latin1 -t utf-8" in str(info.value)


def test_brat_ann_cut_inside_a_character_is_an_error(tmp_path):
    write(tmp_path / "note.txt", "Pt denies café pain.\n")
    data = "T1\tProblem 10 14\tcafé\n".encode("utf-8")
    (tmp_path / "note.ann").write_bytes(data[: data.index(b"\xa9")])  # last byte of é missing
    with pytest.raises(ConversionError, match=r"note\.ann, line 1, byte 20: not valid UTF-8 \(unexpected end of data\)"):
        list(read_brat(tmp_path))


def test_brat_empty_files(tmp_path, nlp):
    write(tmp_path / "empty.txt", "")
    write(tmp_path / "empty.ann", "")
    write(tmp_path / "unannotated.txt", BRAT_TEXT)
    write(tmp_path / "unannotated.ann", "")
    stats = ConversionStats()
    (doc,) = read_brat(tmp_path, nlp=nlp, stats=stats)
    assert doc.user_data["source_file"] == "unannotated.txt" and doc.ents == ()
    assert stats.docs_read == 1
    assert stats.skipped == Counter({"empty documents": 1})
    (tmp_path / "unannotated.txt").unlink()
    (tmp_path / "unannotated.ann").unlink()
    with pytest.raises(ConversionError, match=r"whole input: no documents found"):
        convert("brat", tmp_path, tmp_path / "out.spacy")


def test_brat_annotations_on_an_empty_text_are_an_error(tmp_path):
    write(tmp_path / "note.txt", "")
    write(tmp_path / "note.ann", "T1\tProblem 10 20\tchest pain\n")
    with pytest.raises(ConversionError, match=r"note\.ann, annotation T1 \(line 1\): offsets outside the text \(which has 0 characters\)"):
        list(read_brat(tmp_path))


def test_brat_byte_order_mark(tmp_path, nlp):
    # Dropped from the .ann; kept in the .txt, where brat counts it as a character.
    (tmp_path / "note.txt").write_bytes(("\ufeff" + BRAT_TEXT).encode("utf-8"))
    (tmp_path / "note.ann").write_bytes("\ufeffT1\tProblem 11 21\tchest pain\n".encode("utf-8"))
    (doc,) = read_brat(tmp_path, nlp=nlp)
    assert ents(doc) == [("chest pain", "Problem")]


def test_brat_ann_without_txt_is_an_error(tmp_path):
    write(tmp_path / "a.txt", BRAT_TEXT)
    write(tmp_path / "a.ann", "T1\tProblem 10 20\tchest pain\n")
    write(tmp_path / "orphan.ann", "T1\tProblem 10 20\tchest pain\n")
    with pytest.raises(ConversionError, match=r"orphan\.ann, whole file: no matching \.txt file"):
        list(read_brat(tmp_path))


def test_brat_folder_without_ann_files_is_an_error(tmp_path):
    write(tmp_path / "note.txt", BRAT_TEXT)
    with pytest.raises(ConversionError, match=r"no \.ann files found"):
        list(read_brat(tmp_path))


def test_brat_offsets_count_carriage_returns(tmp_path, nlp):
    write(tmp_path / "crlf.txt", "Vitals stable.\r\nChest pain resolved.\r\n")
    write(tmp_path / "crlf.ann", "T1\tProblem 16 26\tChest pain\n")
    (doc,) = read_brat(tmp_path, nlp=nlp)
    assert ents(doc) == [("Chest pain", "Problem")]


# ---------------------------------------------------------------- i2b2 2010


def test_i2b2_2010_release_layout(nlp):
    stats = ConversionStats()
    docs = list(read_i2b2_2010(FIXTURES / "i2b2_2010", nlp=nlp, stats=stats))
    by_line = {(d.user_data["source_file"], d.user_data["source_line"]): d for d in docs}
    assert sorted(by_line) == [("record-1.txt", n) for n in (1, 2, 4, 5, 6, 7, 8)] + [
        ("record-2.txt", 1), ("record-2.txt", 2),
    ]
    record_1 = {line: doc for (name, line), doc in by_line.items() if name == "record-1.txt"}
    assert ents(record_1[4]) == [("chest pain", "problem"), ("shortness of breath", "problem")]
    assert token_ents(record_1[4]) == [(7, 9, "problem"), (10, 13, "problem")]
    assert ents(record_1[5]) == [("Troponin I", "test"), ("aspirin 81 mg", "treatment")]
    assert ents(record_1[6]) == [("nitroglycerin", "treatment"), ("his chest pain", "problem")]
    assert ents(record_1[7]) == [("Chest x-ray", "test")]
    assert ents(record_1[8]) == []  # "a right lower / lobe infiltrate" crosses lines: dropped
    assert ents(by_line["record-2.txt", 2]) == [("Metoprolol", "treatment")]
    assert [t.text for t in record_1[7]] == "Chest x-ray showed a right lower".split()
    assert stats.docs_read == 9
    assert stats.counts == Counter(nested=1, dropped_cross_line=1)


def test_i2b2_2010_separate_and_flat_folders_agree(tmp_path, nlp):
    release = [token_ents(d) for d in read_i2b2_2010(FIXTURES / "i2b2_2010", nlp=nlp)]
    separate = read_i2b2_2010(
        FIXTURES / "i2b2_2010" / "txt", con_dir=FIXTURES / "i2b2_2010" / "concept", nlp=nlp
    )
    assert [token_ents(d) for d in separate] == release
    for sub in ("txt", "concept"):
        for path in (FIXTURES / "i2b2_2010" / sub).iterdir():
            shutil.copy(path, tmp_path / path.name)
    assert [token_ents(d) for d in read_i2b2_2010(tmp_path, nlp=nlp)] == release


I2B2_TEXT = "Chief complaint :\nchest pain and dyspnea .\n"


@pytest.mark.parametrize(
    "con,value",
    [
        (
            'c="chest pain" 2:0 2:1||t="problem"\nc="chest pain and" 2:0 2:1||t="problem"\n',
            "chest pain and",
        ),
        ('c="chest pain" 2:0 2:1||t="problem"\nc="dyspnea" 2:3 2:9||t="problem"\n', "2:9"),
        ('c="chest pain" 2:0 2:1||t="problem"\nc="dyspnea" 5:0 5:0||t="problem"\n', "5:0"),
        (
            'c="chest pain" 2:0 2:1||t="problem"\nchest pain 2:0 2:1 problem\n',
            "chest pain 2:0 2:1 problem",
        ),
        ('c="chest pain" 2:0 2:1||t="problem"\nc="dyspnea" 2:3 2:', 'c="dyspnea" 2:3 2:'),  # cut short
        ('c="chest pain" 2:0 2:1||t="problem"\nc="dyspnea" 2:3 2:2||t="problem"\n', "2:3 2:2"),
        ('c="chest pain" 2:0 2:1||t="problem"\nc="dyspnea" 2:3 2:3||t="chief complaint"\n', "chief complaint"),
    ],
)
def test_i2b2_2010_malformed_concepts_name_file_and_line(tmp_path, con, value):
    write(tmp_path / "rec.txt", I2B2_TEXT)
    write(tmp_path / "rec.con", con)
    with pytest.raises(ConversionError) as info:
        list(read_i2b2_2010(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "rec.con") in message
    assert info.value.location == "line 2"
    assert value in message


@pytest.mark.parametrize("bad_file,line", [("rec.txt", 2), ("rec.con", 1)])
def test_i2b2_2010_latin1_bytes_name_file_and_line(tmp_path, bad_file, line):
    write(tmp_path / "rec.txt", I2B2_TEXT)
    write(tmp_path / "rec.con", 'c="chest pain" 2:0 2:1||t="problem"\n')
    path = tmp_path / bad_file
    path.write_bytes(path.read_text().replace("pain", "p\u00e2in").encode("latin-1"))
    with pytest.raises(ConversionError) as info:
        list(read_i2b2_2010(tmp_path))
    assert info.value.path == path
    assert info.value.location.startswith(f"line {line}, byte ")
    assert "not valid UTF-8 (invalid continuation byte): b'\\xe2in" in str(info.value)


def test_i2b2_2010_con_without_txt_is_an_error(tmp_path):
    write(tmp_path / "rec.con", 'c="chest pain" 2:0 2:1||t="problem"\n')
    with pytest.raises(ConversionError, match=r"rec\.con, whole file: no matching \.txt file"):
        list(read_i2b2_2010(tmp_path))


def test_i2b2_2010_empty_files(tmp_path, nlp):
    write(tmp_path / "empty.txt", "")
    write(tmp_path / "empty.con", "")
    write(tmp_path / "rec.txt", I2B2_TEXT)
    write(tmp_path / "rec.con", "")
    stats = ConversionStats()
    docs = list(read_i2b2_2010(tmp_path, nlp=nlp, stats=stats))
    assert [d.user_data["source_file"] for d in docs] == ["rec.txt", "rec.txt"]
    assert all(d.ents == () for d in docs)
    assert stats.skipped == Counter({"empty documents": 1})


def test_i2b2_2010_byte_order_marks_are_dropped(tmp_path, nlp):
    (tmp_path / "rec.txt").write_bytes(("\ufeff" + I2B2_TEXT).encode("utf-8"))
    (tmp_path / "rec.con").write_bytes('\ufeffc="Chief complaint" 1:0 1:1||t="problem"\n'.encode("utf-8"))
    first, _ = read_i2b2_2010(tmp_path, nlp=nlp)
    assert [t.text for t in first] == ["Chief", "complaint", ":"]
    assert ents(first) == [("Chief complaint", "problem")]


def test_i2b2_2010_concept_text_is_compared_lower_cased(tmp_path, nlp):
    write(tmp_path / "rec.txt", "Chest Pain since Monday\n")
    write(tmp_path / "rec.con", 'c="chest pain" 1:0 1:1||t="problem"\n')
    (doc,) = read_i2b2_2010(tmp_path, nlp=nlp)
    assert ents(doc) == [("Chest Pain", "problem")]


# ---------------------------------------------------------------- i2b2 XML


def test_i2b2_xml_2014_standoff(nlp):
    stats = ConversionStats()
    (doc,) = read_i2b2_xml(FIXTURES / "i2b2_xml" / "note-101.xml", nlp=nlp, stats=stats)
    assert ents(doc) == [
        ("2067-05-03", "DATE"),
        ("Lakeside Medical Center", "HOSPITAL"),
        ("Dolores Quigley", "PATIENT"),
        ("4459812", "MEDICALRECORD"),
        ("67", "AGE"),
        ("Yosef Ngo", "DOCTOR"),
        ("617-555-0199", "PHONE"),  # no TYPE attribute: the element name
    ]
    assert [(e.start_char, e.end_char) for e in doc.ents][:2] == [(14, 24), (26, 49)]
    assert doc.text.startswith("\nRecord date: 2067-05-03\n")
    assert doc.user_data == {"source_file": "note-101.xml"}
    assert stats.docs_read == 1
    assert stats.counts == Counter()


def test_i2b2_xml_2006_inline_records(nlp):
    docs = list(read_i2b2_xml(FIXTURES / "i2b2_xml" / "records-2006.xml", nlp=nlp))
    assert [d.user_data for d in docs] == [
        {"source_file": "records-2006.xml", "record_id": "201"},
        {"source_file": "records-2006.xml", "record_id": "202"},
    ]
    assert ents(docs[0]) == [
        ("05/03/2067", "DATE"), ("Ngo", "DOCTOR"), ("Lakeside Medical Center", "HOSPITAL"),
    ]
    assert ents(docs[1]) == [("Dolores Quigley", "PATIENT"), ("05/09/2067", "DATE")]
    assert docs[1].text == "\nPatient Dolores Quigley was discharged on 05/09/2067 to home.\n"


def test_i2b2_xml_folder_reads_both_styles(nlp):
    docs = list(read_i2b2_xml(FIXTURES / "i2b2_xml", nlp=nlp))
    assert [d.user_data["source_file"] for d in docs] == [
        "note-101.xml", "records-2006.xml", "records-2006.xml",
    ]


def _deid_xml(tags: str, text: str = "Seen on 2067-05-03 by Dr. Ngo.") -> str:
    return f"<deIdi2b2><TEXT><![CDATA[{text}]]></TEXT><TAGS>{tags}</TAGS></deIdi2b2>"


@pytest.mark.parametrize(
    "content,location,value",
    [
        (
            _deid_xml('<DATE id="P0" start="8" end="18" text="2067-05-04" TYPE="DATE"/>'),
            "tag P0 <DATE>",
            "2067-05-04",
        ),
        (
            _deid_xml(
                '<DATE id="P0" start="8" end="18" TYPE="DATE"/>'
                '<NAME id="P1" start="26" end="99" TYPE="DOCTOR"/>'
            ),
            "tag P1 <NAME>",
            "26 99",
        ),
        (_deid_xml('<NAME id="P3" start="26" TYPE="DOCTOR"/>'), "tag P3 <NAME>", "26 "),
        (
            "<deIdi2b2><TEXT>Seen by Dr. Ngo & partners</TEXT></deIdi2b2>",
            "line 1, column 33",
            "not well-formed",
        ),
        ("<ROOT><NOTE>Seen</NOTE></ROOT>", "root element <ROOT>", "RECORD"),
        ("", "line 1, column 0", "no element found"),
        (_deid_xml('<DATE id="P0" start="8" end="8" TYPE="DATE"/>'), "tag P0 <DATE>", "zero-length span"),
        (
            '<ROOT><RECORD ID="9"><TEXT>Seen on <PHI TYPE="DATE"></PHI>.</TEXT></RECORD></ROOT>',
            "record 9, inline tag #1 <PHI>",
            "zero-length span",
        ),
        (_deid_xml("")[:40], "line 1, column 40", "unclosed CDATA section"),  # truncated file
    ],
)
def test_i2b2_xml_malformed_names_file_and_tag(tmp_path, content, location, value):
    path = write(tmp_path / "deid-7.xml", content)
    with pytest.raises(ConversionError) as info:
        list(read_i2b2_xml(path))
    message = str(info.value)
    assert str(path) in message
    assert info.value.location == location
    assert value in message


def test_i2b2_xml_overlapping_tags_keep_the_longest(tmp_path, nlp):
    path = write(
        tmp_path / "deid.xml",
        _deid_xml(
            '<NAME id="P0" start="26" end="29" TYPE="DOCTOR"/>'
            '<NAME id="P1" start="22" end="29" TYPE="DOCTOR"/>'
            '<DATE id="P2" start="8" end="12" TYPE="DATE"/>'
            '<DATE id="P3" start="8" end="18" TYPE="DATE"/>'
        ),
    )
    stats = ConversionStats()
    (doc,) = read_i2b2_xml(path, nlp=nlp, stats=stats)
    assert ents(doc) == [("2067-05-03", "DATE"), ("Dr. Ngo", "DOCTOR")]
    assert stats.counts == Counter(nested=2)
    assert len(doc.spans[ALL_ENTITIES_KEY]) == 4


@pytest.mark.parametrize(
    "content,line",
    [
        ("<deIdi2b2><TEXT>Seen by Dr. M\u00fcller</TEXT></deIdi2b2>", 1),
        ('<?xml version="1.0" encoding="UTF-8"?>\n<deIdi2b2>\n<TEXT>Dr. M\u00fcller</TEXT></deIdi2b2>', 3),
    ],
)
def test_i2b2_xml_latin1_bytes_are_named_as_such(tmp_path, content, line):
    path = tmp_path / "deid.xml"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(ConversionError) as info:
        list(read_i2b2_xml(path))
    assert info.value.location == f"line {line}, byte {content.index(chr(0xfc))}"
    assert "not valid UTF-8" in str(info.value)


def test_i2b2_xml_declared_latin1_is_read(tmp_path, nlp):
    path = tmp_path / "deid.xml"
    content = '<?xml version="1.0" encoding="ISO-8859-1"?><deIdi2b2><TEXT>Dr. M\u00fcller</TEXT></deIdi2b2>'
    path.write_bytes(content.encode("latin-1"))
    (doc,) = read_i2b2_xml(path, nlp=nlp)
    assert doc.text == "Dr. M\u00fcller"


def test_label_with_space_is_rejected_with_a_hint(tmp_path):
    path = write(
        tmp_path / "deid.xml",
        _deid_xml('<NAME id="P1" start="26" end="29" text="Ngo" TYPE="ATTENDING DOCTOR"/>'),
    )
    with pytest.raises(ConversionError) as info:
        list(read_i2b2_xml(path))
    assert str(info.value) == (
        f"{path}, tag P1 <NAME>: entity label is empty or contains whitespace: "
        "'ATTENDING DOCTOR'. rename the label in the input (e.g. use '_' instead of spaces)"
    )


# ---------------------------------------------------------------- sub-sampling


def test_subsample_is_seeded_order_preserving_and_rounds_half_up():
    items = list(range(100))
    first = subsample(items, count=10, seed=1)
    assert first == subsample(items, count=10, seed=1)
    assert first != subsample(items, count=10, seed=2)
    assert first == sorted(first) and len(set(first)) == 10
    assert len(subsample(items, fraction=0.255, seed=0)) == 26
    assert len(subsample(list(range(10)), fraction=0.25)) == 3  # 2.5 rounds up
    assert len(subsample(list(range(10)), fraction=0.01)) == 1  # at least one
    assert subsample(items, fraction=1.0) == items


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({}, "fraction or a count"),
        ({"fraction": 0.5, "count": 3}, "not both"),
        ({"fraction": 0.0}, r"\(0, 1\]"),
        ({"fraction": 1.5}, r"\(0, 1\]"),
        ({"count": 0}, "at least 1"),
        ({"count": 11}, "more than the 10"),
    ],
)
def test_subsample_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        subsample(list(range(10)), **kwargs)


# ---------------------------------------------------------------- convert and CLI


def test_convert_writes_a_docbin_with_user_data(tmp_path, nlp):
    output = tmp_path / "out" / "deid.spacy"
    stats = convert("i2b2-xml", FIXTURES / "i2b2_xml", output, count=2, seed=0)
    docs = list(DocBin().from_disk(output).get_docs(nlp.vocab))
    assert len(docs) == stats.docs_written == 2
    assert stats.docs_read == 3
    assert stats.entities == sum(len(d.ents) for d in docs)
    assert stats.labels == Counter(e.label_ for d in docs for e in d.ents)
    assert all("source_file" in d.user_data for d in docs)


def test_convert_rejects_an_output_that_is_not_spacy(tmp_path):
    with pytest.raises(ConversionError, match=r"out\.json, output: output must be a \.spacy file"):
        convert("iob", FIXTURES / "iob" / "bio.tsv", tmp_path / "out.json")


def test_cli_main_sub_samples_reproducibly(tmp_path, nlp, capsys):
    texts = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        output = tmp_path / f"{name}.spacy"
        argv = ["i2b2-2010", str(FIXTURES / "i2b2_2010"), str(output), "--count", "4"]
        assert main(argv + ["--seed", str(seed)]) == 0
        texts.append([d.text for d in DocBin().from_disk(output).get_docs(nlp.vocab)])
    assert len(texts[0]) == 4
    assert texts[0] == texts[1]
    assert texts[0] != texts[2]
    assert "4 docs written (of 9 read)" in capsys.readouterr().out


def test_cli_main_bad_input_exits_1_with_the_message(tmp_path, capsys):
    path = write(tmp_path / "bad.tsv", "chest\tB-problem\npain\tX-Foo\n")
    assert main(["iob", str(path), str(tmp_path / "out.spacy")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.tsv, line 2: invalid tag: 'X-Foo'" in err
    assert not (tmp_path / "out.spacy").exists()


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    pythonpath = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, pythonpath)))
    return subprocess.run(
        [sys.executable, "-m", "spacy_dtn.converters", *args],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120,
    )


def test_cli_subprocess_round_trip(tmp_path, nlp):
    output = tmp_path / "brat.spacy"
    result = _run_cli("brat", str(FIXTURES / "brat"), str(output))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"{output}: 2 docs written (of 2 read); "
        "8 entities in doc.ents (Problem=4, Test=2, Treatment=2), 13 in doc.spans['entities_all']; "
        "duplicates=0 (merged, nothing lost); "
        "in doc.spans only: same_span_other_label=1, nested=3, crossing=1; "
        "merged_discontinuous=1, expanded_to_tokens=1, trimmed_whitespace=1, "
        "dropped_cross_line=0, sentence_breaks_in_entities=0; "
        "skipped: .txt files without .ann=1, brat # lines=1, brat A lines=1, brat R lines=1"
    )
    docs = list(DocBin().from_disk(output).get_docs(nlp.vocab))
    assert [ents(d) for d in docs] == [ents(d) for d in read_brat(FIXTURES / "brat", nlp=nlp)]
    assert [d.user_data["source_file"] for d in docs] == ["note1.txt", "note2.txt"]


def test_cli_subprocess_error_has_no_traceback(tmp_path):
    write(tmp_path / "orphan.ann", "T1\tProblem 0 5\tchest\n")
    result = _run_cli("brat", str(tmp_path), str(tmp_path / "out.spacy"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "orphan.ann, whole file: no matching .txt file" in result.stderr


# ---------------------------------------------------------------- readers


READERS = [
    ("spacy_dtn.IOBCorpus.v1", read_iob, FIXTURES / "iob" / "bio.tsv"),
    ("spacy_dtn.BratCorpus.v2", read_brat, FIXTURES / "brat"),
    ("spacy_dtn.I2B2ConceptCorpus.v2", read_i2b2_2010, FIXTURES / "i2b2_2010"),
    ("spacy_dtn.I2B2DeidCorpus.v2", read_i2b2_xml, FIXTURES / "i2b2_xml"),
    ("spacy_dtn.BratCorpus.v1", read_brat, FIXTURES / "brat"),
    ("spacy_dtn.I2B2ConceptCorpus.v1", read_i2b2_2010, FIXTURES / "i2b2_2010"),
    ("spacy_dtn.I2B2DeidCorpus.v1", read_i2b2_xml, FIXTURES / "i2b2_xml"),
]


@pytest.mark.parametrize("name,read,path", READERS)
def test_registered_readers_yield_aligned_examples(name, read, path):
    nlp = spacy.blank("en")
    examples = list(registry.readers.get(name)(path=path)(nlp))
    expected = list(read(path, nlp=spacy.blank("en")))
    assert [token_ents(eg.reference) for eg in examples] == [token_ents(d) for d in expected]
    assert sum(len(eg.reference.ents) for eg in examples) > 0
    assert all(ALL_ENTITIES_KEY in eg.reference.spans for eg in examples)
    # v2 readers of brat and XML split sentences by default; v1 and one-Doc-per-line i2b2 do not
    split = name in ("spacy_dtn.BratCorpus.v2", "spacy_dtn.I2B2DeidCorpus.v2")
    assert any(token.is_sent_start for eg in examples for token in eg.reference[1:]) == split
    for eg in examples:
        assert [t.text for t in eg.predicted] == [t.text for t in eg.reference]
        assert eg.predicted.text == eg.reference.text
        assert eg.predicted.ents == ()
        assert eg.reference.vocab is nlp.vocab and eg.predicted.vocab is nlp.vocab


def test_reader_sub_sample_matches_subsample():
    nlp = spacy.blank("en")
    make = registry.readers.get("spacy_dtn.I2B2ConceptCorpus.v1")
    picked = [eg.reference.text for eg in make(path=FIXTURES / "i2b2_2010", count=3, seed=5)(nlp)]
    all_texts = [d.text for d in read_i2b2_2010(FIXTURES / "i2b2_2010")]
    assert picked == subsample(all_texts, count=3, seed=5)


def test_reader_resolves_from_a_config():
    config = {
        "corpus": {
            "@readers": "spacy_dtn.IOBCorpus.v1",
            "path": str(FIXTURES / "iob" / "bioes.tsv"),
            "fraction": 0.5,
            "seed": 1,
        }
    }
    corpus = registry.resolve(config)["corpus"]
    (example,) = corpus(spacy.blank("en"))
    assert token_ents(example.reference) in EXPECTED_IOB_ENTS


def test_reader_takes_a_splitter_and_rejects_one_for_iob():
    nlp = spacy.blank("en")
    make = registry.readers.get("spacy_dtn.I2B2ConceptCorpus.v2")
    (first, second) = [eg.reference for eg in make(path=FIXTURES / "i2b2_2010", sentences="lines")(nlp)]
    assert first.user_data["source_file"] == "record-1.txt" and len(list(first.sents)) == 6
    with pytest.raises(ValueError, match="iob files are split into sentences already"):
        convert("iob", FIXTURES / "iob" / "bio.tsv", Path("unused.spacy"), sentences="lines")
    with pytest.raises(ValueError, match="unknown sentence splitter 'paragraphs'"):
        registry.readers.get("spacy_dtn.BratCorpus.v2")(path=FIXTURES / "brat", sentences="paragraphs")


# ---------------------------------------------------------------- spans and sentences


def test_overlaps_are_counted_by_kind_and_kept_in_doc_spans(nlp):
    doc = nlp.make_doc("a b c d e f g h i j")
    mentions = [
        Mention(0, 3, "X"),  # kept
        Mention(0, 3, "X"),  # exact repeat: merged
        Mention(0, 3, "Y"),  # same span, another label
        Mention(1, 2, "X"),  # nested
        Mention(2, 4, "Y"),  # crossing the end of 0-3
        Mention(5, 8, "X"),  # kept
        Mention(4, 7, "Y"),  # ties with 5-8 and starts earlier: kept; 5-8 crosses it
    ]
    stats = ConversionStats()
    set_entities(doc, mentions, stats)
    assert token_ents(doc) == [(0, 3, "X"), (4, 7, "Y")]
    assert [(s.start, s.end, s.label_) for s in doc.spans[ALL_ENTITIES_KEY]] == sorted(set(mentions))
    assert stats.counts == Counter(duplicates=1, same_span_other_label=1, nested=1, crossing=2)


def _brute_force_kind(mention: Mention, kept: List[Mention]) -> str:
    """The overlap kind by its definition, comparing with every kept mention."""
    overlapping = [k for k in kept if k.start < mention.end and mention.start < k.end]
    if len(overlapping) == 1 and (overlapping[0].start, overlapping[0].end) == (mention.start, mention.end):
        return "same_span_other_label"
    if len(overlapping) == 1 and overlapping[0].start <= mention.start and mention.end <= overlapping[0].end:
        return "nested"
    return "crossing"


mention_lists = st.lists(
    st.tuples(st.integers(0, 15), st.integers(1, 5), st.sampled_from("XY")).map(
        lambda t: Mention(t[0], min(t[0] + t[1], 20), t[2])
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(mention_lists)
def test_overlap_kinds_agree_with_their_definition(nlp, mentions):
    doc = nlp.make_doc(" ".join("abcdefghijklmnopqrst"))
    stats = ConversionStats()
    set_entities(doc, mentions, stats)
    kept = [Mention(e.start, e.end, e.label_) for e in doc.ents]
    distinct = list(dict.fromkeys(mentions))
    expected = Counter(_brute_force_kind(m, kept) for m in distinct if m not in kept)
    assert {kind: stats.counts[kind] for kind in expected} == dict(expected)
    assert sum(stats.counts[k] for k in ("same_span_other_label", "nested", "crossing")) == len(distinct) - len(kept)


def test_long_annotated_note_converts_in_linear_time(tmp_path):
    """A note of 3,000 sentences with 12,000 annotations (nested ones and
    repeats) took 80 s to convert when each annotation re-read the Doc's text
    and each sentence start re-checked the whole Doc; it takes under a second."""
    sentence = "The patient had ataxia telangiectasia and breast cancer. "
    write(tmp_path / "long.txt", sentence * 3000)
    lines = []
    for i in range(3000):
        offset = i * len(sentence)
        for start, end in [(16, 37), (42, 55), (49, 55), (16, 37)]:
            text = sentence[start:end]
            lines.append(f"T{len(lines) + 1}\tDisease {offset + start} {offset + end}\t{text}")
    write(tmp_path / "long.ann", "\n".join(lines) + "\n")
    stats = ConversionStats()
    began = time.perf_counter()
    (doc,) = read_brat(tmp_path, stats=stats)
    assert time.perf_counter() - began < 20.0
    assert len(doc.ents) == 6000 and len(list(doc.sents)) == 3000
    assert stats.counts["duplicates"] == 3000 and stats.counts["nested"] == 3000


def test_unknown_count_is_an_error():
    with pytest.raises(KeyError, match="dropped_overlap"):
        ConversionStats().add("dropped_overlap")


@pytest.mark.parametrize(
    "splitter,starts,removed",
    [
        # "pain. Given" is one entity: the sentencizer's boundary at "Given" goes
        ("sentencizer", [0, 6, 10], 1),  # the line-break token starts a sentence
        ("lines", [0, 7], 0),
        ("none", None, 0),
    ],
)
def test_sentence_boundaries_skip_entities(nlp, splitter, starts, removed):
    doc = nlp.make_doc("Chest pain. Given aspirin.\nNo fever. Stable.")
    stats = ConversionStats()
    set_entities(doc, [Mention(1, 4, "Problem")], stats)
    set_sentences(doc, splitter, stats)
    if starts is None:
        assert not doc.has_annotation("SENT_START")
    else:
        assert [t.i for t in doc if t.is_sent_start] == starts
    assert stats.counts["sentence_breaks_in_entities"] == removed


def test_i2b2_2010_one_doc_per_file_keeps_cross_line_concepts(nlp):
    stats = ConversionStats()
    docs = list(read_i2b2_2010(FIXTURES / "i2b2_2010", nlp=nlp, stats=stats, sentences="lines"))
    assert [d.user_data["source_file"] for d in docs] == ["record-1.txt", "record-2.txt"]
    record_1 = docs[0]
    assert ("a right lower\nlobe infiltrate", "problem") in ents(record_1)
    # one sentence per non-empty line, but the concept over lines 7-8 joins them
    sentences = [s.text.strip() for s in record_1.sents]
    assert sentences[0] == "Admission Date :" and sentences[1] == "2067-05-03"
    assert sentences[-1] == "Chest x-ray showed a right lower\nlobe infiltrate ."
    assert stats.counts == Counter(nested=1, sentence_breaks_in_entities=1)
