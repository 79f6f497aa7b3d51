"""The converters on long synthetic brat notes (tests/long_notes.py): counts
as constructed, every annotation in doc.spans, and sentence boundaries that
never cut an entity, also across the 256-token window edges."""
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import spacy
import srsly
from long_notes import (
    DOT_CROSSING, DUPLICATES, LINE_CROSSING, NESTED, SAME_SPAN, WINDOW_EDGES, CROSSING,
    Note, write_notes,
)
from spacy.tokens import Doc, DocBin

from spacy_dtn.converters import ALL_ENTITIES_KEY, ConversionStats, read_brat
from spacy_dtn.converters.__main__ import main

N_NOTES = 3
# Boundaries each splitter proposes inside the constructed entities of one note.
BREAKS_INSIDE = {"sentencizer": DOT_CROSSING + LINE_CROSSING, "lines": LINE_CROSSING, "none": 0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Tuple[Path, List[Note]]:
    folder = tmp_path_factory.mktemp("brat")
    return folder, write_notes(folder, N_NOTES, seed=7)


def read(folder: Path, sentences: str) -> Dict[str, Doc]:
    stats = ConversionStats()
    docs = {d.user_data["source_file"]: d for d in read_brat(folder, stats=stats, sentences=sentences)}
    docs["stats"] = stats
    return docs


def test_notes_are_long_and_have_entities_across_window_edges(corpus):
    _, notes = corpus
    nlp = spacy.blank("en")
    for note in notes:
        doc = nlp.make_doc(note.text)
        assert 1000 <= len(doc) < 1200
        for edge in WINDOW_EDGES:
            assert any(start < edge < end for start, end, _ in note.entities)
        assert len(note.lines) == len(note.spans) + DUPLICATES


def test_report_counts_are_the_constructed_ones(corpus, tmp_path, capsys):
    folder, notes = corpus
    report_path = tmp_path / "report.json"
    argv = ["brat", str(folder), str(tmp_path / "notes.spacy"), "--report", str(report_path)]
    assert main(argv) == 0
    report = srsly.read_json(report_path)
    for note in notes:
        counts = report["files"][note.name]
        assert {name: counts[name] for name in note.expected} == note.expected
        assert counts["sentence_breaks_in_entities"] == BREAKS_INSIDE["sentencizer"]
    totals = report["totals"]
    assert totals["duplicates"] == N_NOTES * DUPLICATES
    assert (totals["same_span_other_label"], totals["nested"], totals["crossing"]) == (
        N_NOTES * SAME_SPAN, N_NOTES * NESTED, N_NOTES * CROSSING,
    )
    assert totals["spans"] == sum(len(note.spans) for note in notes)
    summary = capsys.readouterr().out
    assert f"duplicates={N_NOTES * DUPLICATES} (merged, nothing lost)" in summary
    assert f"in doc.spans only: same_span_other_label={N_NOTES * SAME_SPAN}, " in summary


def test_every_annotation_is_in_doc_spans_and_ents_stay_flat(corpus, tmp_path):
    folder, notes = corpus
    output = tmp_path / "notes.spacy"
    assert main(["brat", str(folder), str(output)]) == 0
    docs = list(DocBin().from_disk(output).get_docs(spacy.blank("en").vocab))
    for note, doc in zip(notes, docs):
        spans = {(s.start, s.end, s.label_) for s in doc.spans[ALL_ENTITIES_KEY]}
        assert spans == note.spans
        assert [(e.start, e.end, e.label_) for e in doc.ents] == note.entities


@pytest.mark.parametrize("sentences", ["sentencizer", "lines", "none"])
def test_sentence_boundaries_never_cut_an_entity(corpus, sentences):
    folder, notes = corpus
    docs = read(folder, sentences)
    stats = docs.pop("stats")
    assert stats.counts["sentence_breaks_in_entities"] == N_NOTES * BREAKS_INSIDE[sentences]
    for note in notes:
        doc = docs[note.name]
        if sentences == "none":
            assert not doc.has_annotation("SENT_START")
            continue
        starts = [token.i for token in doc if token.is_sent_start]
        assert len(starts) > 20 if sentences == "sentencizer" else len(starts) > 5
        for span in doc.spans[ALL_ENTITIES_KEY]:
            assert not [i for i in starts if span.start < i < span.end], span


def test_line_splitter_starts_a_sentence_after_every_line_break_outside_entities(corpus):
    folder, notes = corpus
    docs = read(folder, "lines")
    for note in notes:
        doc = docs[note.name]
        inside = {i for s in doc.spans[ALL_ENTITIES_KEY] for i in range(s.start + 1, s.end)}
        after_break = [t.i + 1 for t in doc[:-1] if "\n" in t.text]
        expected = sorted({0, *after_break} - inside)
        assert [t.i for t in doc if t.is_sent_start] == expected
        assert len(inside.intersection(after_break)) == LINE_CROSSING
