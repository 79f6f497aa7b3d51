"""`python -m spacy_dtn annotate`: inputs, outputs, bad notes, resume after a kill."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas
import pytest
import spacy

from spacy_dtn.annotate import AnnotationSettings, main, tag_batches
from spacy_dtn.converters import read_brat
from spacy_dtn.note_outputs import AnnotatedNote, Entity, JsonlWriter
from spacy_dtn.notes import Note, NoteSource
from conftest import SENTENCES, note_texts


@pytest.fixture(scope="module")
def model(target_model):
    return target_model


def write_jsonl(path, texts):
    with path.open("w", encoding="utf8") as file:
        for i, text in enumerate(texts):
            file.write(json.dumps({"id": f"n{i:05d}", "text": text}) + "\n")
    return path


def expected_entities(model, texts, batch_size=64, sentencizer=False):
    """What nlp.pipe finds, batched as annotate batches (the floats depend a little on the batch)."""
    nlp = spacy.load(model)
    if sentencizer:
        nlp.add_pipe("note_sentencizer", first=True)
    docs = nlp.pipe(texts, batch_size=batch_size)
    return [[(e.start_char, e.end_char, e.label_, e.text, e._.confidence) for e in doc.ents] for doc in docs]


def as_tuples(entities):
    return [(e["start"], e["end"], e["label"], e["text"], e["confidence"]) for e in entities]


def assert_same_entities(got, expected):
    """Spans exactly; confidences to 1e-4, since the floats move a little with
    torch's thread count and the batch (annotate's workers use one thread)."""
    assert [[e[:4] for e in note] for note in got] == [[e[:4] for e in note] for note in expected]
    flat = [e[4] for note in got for e in note]
    assert flat == pytest.approx([e[4] for note in expected for e in note], abs=1e-4)


def test_inputs_report_bad_notes_and_go_on(tmp_path):
    folder = tmp_path / "notes"
    (folder / "ward").mkdir(parents=True)
    (folder / "a.txt").write_text("Fine note .", encoding="utf8")
    (folder / "ward" / "b.txt").write_bytes(b"caf\xe9 latin-1")
    (folder / "c.txt").write_bytes(b"")
    (folder / "d.txt").symlink_to(folder / "missing.txt")
    (folder / "e.TXT").write_text("Copied from Windows .", encoding="utf8")
    notes = list(NoteSource(folder))
    assert [(n.id, n.text) for n in notes if n.error is None] == [("a", "Fine note ."), ("e", "Copied from Windows .")]
    errors = {n.id: n.error for n in notes if n.error}
    assert set(errors) == {"ward/b", "c", "d"}
    assert "UTF-8" in errors["ward/b"] and "empty" in errors["c"] and "cannot read" in errors["d"]

    jsonl = tmp_path / "notes.jsonl"
    jsonl.write_bytes(b'{"id": 1, "text": "One ."}\nnot json\n{"id": 3}\n{"id": 1, "text": "again"}\n'
                      b'{"id": 5, "text": "caf\xe9"}\n')
    notes = list(NoteSource(jsonl))
    assert [(n.id, n.text, n.error is None) for n in notes][0] == ("1", "One .", True)
    assert [n.id for n in notes[1:]] == ["line 2", "3", "1", "line 5"]
    assert all(n.error for n in notes[1:]) and "duplicate" in notes[3].error

    csv = tmp_path / "notes.csv"
    csv.write_bytes(b'note,body\n007,"Two\nlines ."\n8,\n9,caf\xe9\n')
    notes = list(NoteSource(csv, id_col="note", text_col="body"))
    assert (notes[0].id, notes[0].text) == ("007", "Two\nlines .")
    assert [n.id for n in notes if n.error] == ["8", "9"]
    with pytest.raises(ValueError, match="--text-col"):
        NoteSource(csv)

    parquet = tmp_path / "notes.parquet"
    pandas.DataFrame({"id": ["x", "y", None], "text": ["Three .", None, "orphan"]}).to_parquet(parquet)
    source = NoteSource(parquet)
    assert source.total == 3
    assert [(n.id, n.text, bool(n.error)) for n in source] == [("x", "Three .", False), ("y", None, True), ("row 3", None, True)]


def test_inputs_in_another_encoding_are_read_when_it_is_named(tmp_path):
    text = "Café au lait spots, naïve T cells – 5 µg"
    raw = text.encode("cp1252")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_bytes(raw)
    (tmp_path / "notes.jsonl").write_bytes(b'{"id": "a", "text": "' + raw + b'"}\n')
    (tmp_path / "notes.csv").write_bytes(b"id,text\na," + raw.replace(b",", b"") + b"\n")
    expected = {"notes": text, "notes.jsonl": text, "notes.csv": text.replace(",", "")}
    for name, wanted in expected.items():
        (refused,) = NoteSource(tmp_path / name)
        assert refused.text is None and "not valid UTF-8" in refused.error and "--encoding" in refused.error
        (note,) = NoteSource(tmp_path / name, encoding="cp1252")
        assert (note.id, note.text, note.error) == ("a", wanted, None)
    (tmp_path / "notes" / "b.txt").write_bytes(b"ok \x81")  # 0x81 is no cp1252 character
    refused = [n for n in NoteSource(tmp_path / "notes", encoding="cp1252") if n.error]
    assert [(n.id, n.error) for n in refused] == [("b", "not valid cp1252 at byte 3")]
    with pytest.raises(ValueError, match="Unknown encoding 'klingon'"):
        NoteSource(tmp_path / "notes", encoding="klingon")
    parquet = tmp_path / "notes.parquet"
    pandas.DataFrame({"id": ["a"], "text": [text]}).to_parquet(parquet)
    assert [n.text for n in NoteSource(parquet, encoding="cp1252")] == [text]  # Parquet text is UTF-8


def test_a_byte_order_mark_that_begins_a_file_is_the_encoding_not_the_text(model, tmp_path):
    """Windows tools write one first: it made the first JSONL line "not JSON"
    and moved a .txt note's offsets."""
    bom = "\ufeff".encode("utf-8")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_bytes(bom + SENTENCES[0].encode("utf-8"))
    (tmp_path / "notes" / "b.txt").write_bytes(bom)
    (tmp_path / "notes.jsonl").write_bytes(b"".join(bom + json.dumps({"id": i, "text": SENTENCES[0]}).encode() + b"\n" for i in "xy"))
    (tmp_path / "blank_first.jsonl").write_bytes(bom + b"\n" + json.dumps({"id": "z", "text": SENTENCES[0]}).encode() + b"\n")
    assert list(NoteSource(tmp_path / "blank_first.jsonl")) == [Note("z", SENTENCES[0])]
    notes = list(NoteSource(tmp_path / "notes"))
    assert (notes[0].text, notes[1].error) == (SENTENCES[0], "no text (empty)")
    assert list(NoteSource(tmp_path / "notes.jsonl")) == [Note("x", SENTENCES[0]), Note("y", SENTENCES[0])]
    # In another encoding the same bytes are characters of the text.
    assert next(iter(NoteSource(tmp_path / "notes", encoding="cp1252"))).text == "\u00ef\u00bb\u00bf" + SENTENCES[0]
    assert main([str(model), str(tmp_path / "notes"), str(tmp_path / "brat"), "--allow-failures"]) == 0
    assert (tmp_path / "brat" / "a.txt").read_text(encoding="utf8") == SENTENCES[0]
    out = tmp_path / "out.jsonl"
    assert main([str(model), str(tmp_path / "notes.jsonl"), str(out)]) == 0
    got = [as_tuples(json.loads(line)["entities"]) for line in out.read_text().splitlines()]
    assert_same_entities(got, expected_entities(model, [SENTENCES[0]] * 2))


def test_outputs_hold_the_pipeline_entities(model, tmp_path, capsys):
    texts = note_texts(12)
    jsonl_in = write_jsonl(tmp_path / "in.jsonl", texts)
    expected = expected_entities(model, texts)
    assert any(expected)
    assert main([str(model), str(jsonl_in), str(tmp_path / "out.jsonl")]) == 0
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf8").splitlines()]
    assert [r["id"] for r in records] == [f"n{i:05d}" for i in range(12)]
    assert_same_entities([as_tuples(r["entities"]) for r in records], expected)

    assert main([str(model), str(jsonl_in), str(tmp_path / "out.parquet"), "--part-size", "5", "--batch-size", "5"]) == 0
    table = pandas.read_parquet(tmp_path / "out.parquet")
    assert len(list((tmp_path / "out.parquet").glob("part-*.parquet"))) == 3
    assert_same_entities([as_tuples(list(e)) for e in table["entities"]], expected_entities(model, texts, batch_size=5))

    assert main([str(model), str(jsonl_in), str(tmp_path / "brat"), "--html", str(tmp_path / "sample.html")]) == 0
    docs = {doc.user_data["source_file"]: doc for doc in read_brat(tmp_path / "brat")}
    for i, text in enumerate(texts):
        doc = docs[f"n{i:05d}.txt"]
        assert doc.text == text
        assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [x[:3] for x in expected[i]]
    ann = (tmp_path / "brat" / "n00000.ann").read_text(encoding="utf8")
    written = re.search(r"confidence=(\d\.\d{4})", ann)
    assert written and float(written.group(1)) == pytest.approx(expected[0][0][4], abs=2e-4)
    page = (tmp_path / "sample.html").read_text(encoding="utf8")
    shown = re.search(re.escape(expected[0][0][2]) + r" (\d\.\d\d)", page)
    assert shown and float(shown.group(1)) == pytest.approx(expected[0][0][4], abs=0.006)
    assert "annotated 12, skipped 0 (already written), failed 0" in capsys.readouterr().out


def test_min_confidence_and_resume(model, tmp_path, capsys):
    texts = note_texts(8)
    jsonl_in = write_jsonl(tmp_path / "in.jsonl", texts)
    confidences = sorted(x[4] for row in expected_entities(model, texts) for x in row)
    threshold = confidences[len(confidences) // 2]
    out = tmp_path / "out.jsonl"
    assert main([str(model), str(jsonl_in), str(out), "--min-confidence", str(threshold)]) == 0
    kept = [e["confidence"] for line in out.read_text().splitlines() for e in json.loads(line)["entities"]]
    assert kept and min(kept) >= threshold and len(kept) < len(confidences)
    write_jsonl(jsonl_in, texts + note_texts(10)[8:])
    assert main([str(model), str(jsonl_in), str(out)]) == 0
    assert "annotated 2, skipped 8 (already written), failed 0" in capsys.readouterr().out
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [f"n{i:05d}" for i in range(10)]


@pytest.mark.parametrize("n_process", [1, 2])
def test_sentencizer_reads_notes_sentence_by_sentence(model, tmp_path, n_process):
    texts = [text for text in note_texts(12) if text.count(" .") > 1]
    source = write_jsonl(tmp_path / "in.jsonl", texts)
    out = tmp_path / "out.jsonl"
    assert main([str(model), str(source), str(out), "--sentencizer", "--n-process", str(n_process)]) == 0
    got = [as_tuples(json.loads(line)["entities"]) for line in out.read_text().splitlines()]
    assert_same_entities(got, expected_entities(model, texts, sentencizer=True))
    # Read whole, the sentences see each other: the confidences differ.
    assert got != expected_entities(model, texts)


def test_worker_processes_write_what_one_process_writes(model, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", note_texts(40))
    options = ["--batch-size", "4"]
    assert main([str(model), str(source), str(tmp_path / "one.jsonl"), *options]) == 0
    assert main([str(model), str(source), str(tmp_path / "two.jsonl"), "--n-process", "2", *options]) == 0
    one, two = ([json.loads(line) for line in (tmp_path / name).read_text().splitlines()] for name in ("one.jsonl", "two.jsonl"))
    assert len(one) == 40 and any(note["entities"] for note in one)
    # Same notes and entities; a confidence may differ in float32's last digits, since
    # the workers batch other notes together (padding changes the BLAS call sizes).
    assert [(n["id"], [{k: v for k, v in e.items() if k != "confidence"} for e in n["entities"]]) for n in two] == \
        [(n["id"], [{k: v for k, v in e.items() if k != "confidence"} for e in n["entities"]]) for n in one]
    assert all(abs(a["confidence"] - b["confidence"]) < 1e-4
               for m, n in zip(one, two) for a, b in zip(m["entities"], n["entities"]))


def test_failed_notes_are_counted_and_set_the_exit_code(model, tmp_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "good.txt").write_text(SENTENCES[0], encoding="utf8")
    (folder / "bad.txt").write_bytes(b"\xff\xfe broken")
    assert main([str(model), str(folder), str(tmp_path / "brat")]) == 1
    captured = capsys.readouterr()
    assert "failed: bad: not valid UTF-8 at byte 0 (notes in another encoding: name it with --encoding" in captured.err
    assert "annotated 1, skipped 0 (already written), failed 1" in captured.out
    assert main([str(model), str(folder), str(tmp_path / "brat"), "--allow-failures"]) == 0
    assert "annotated 0, skipped 1 (already written), failed 1" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "brat").iterdir()) == ["good.ann", "good.txt"]
    # Named as cp1252, the bytes are text: brat gets it in UTF-8, as the converter reads it.
    assert main([str(model), str(folder), str(tmp_path / "brat"), "--encoding", "cp1252"]) == 0
    assert "annotated 1, skipped 1 (already written), failed 0" in capsys.readouterr().out
    assert (tmp_path / "brat" / "bad.txt").read_text(encoding="utf8") == "\u00ff\u00fe broken"
    assert main([str(model), str(folder), str(tmp_path / "brat2"), "--encoding", "klingon"]) == 2
    assert "Unknown encoding 'klingon'" in capsys.readouterr().err


def test_a_note_longer_than_max_length_fails_with_a_hint_and_is_annotated_when_raised(model, tmp_path, capsys):
    long_note = " ".join(SENTENCES)
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "short.txt").write_text(SENTENCES[0], encoding="utf8")
    (folder / "long.txt").write_text(long_note, encoding="utf8")
    limit = len(SENTENCES[0]) + 1
    assert main([str(model), str(folder), str(tmp_path / "brat"), "--max-length", str(limit)]) == 1
    captured = capsys.readouterr()
    assert (f"failed: long: {len(long_note)} characters, more than --max-length {limit}: "
            f"pass --max-length {len(long_note)} or more to annotate it") in captured.err
    assert "annotated 1, skipped 0 (already written), failed 1" in captured.out
    assert main([str(model), str(folder), str(tmp_path / "brat"), "--max-length", str(len(long_note))]) == 0
    assert "annotated 1, skipped 1 (already written), failed 0" in capsys.readouterr().out
    # A rerun at the lower limit finds both notes written: nothing failed.
    assert main([str(model), str(folder), str(tmp_path / "brat"), "--max-length", str(limit)]) == 0
    assert "annotated 0, skipped 2 (already written), failed 0" in capsys.readouterr().out
    expected = expected_entities(model, [long_note])[0]
    assert expected and [(s, e, label) for s, e, label, *_ in expected] == [
        (ent.start_char, ent.end_char, ent.label_) for ent in next(read_brat(tmp_path / "brat" / "long.txt")).ents
    ]


@pytest.mark.parametrize("n_process", [1, 2])
def test_workers_take_the_max_length_they_are_given(model, n_process, monkeypatch):
    """A worker process loads its own pipeline: the limit must travel with the
    batch and become the pipeline's own (spaCy refuses a longer text: E088).
    Forked workers inherit this process's pipeline, limit 10 characters."""
    monkeypatch.setattr(AnnotationSettings(str(model)).pipeline(), "max_length", 10)
    texts = [SENTENCES[0], " ".join(SENTENCES)]
    batches = [[Note(f"n{i}", text) for i, text in enumerate(texts)]]
    ((_, found),) = tag_batches(AnnotationSettings(str(model), max_length=len(texts[1]) - 1), batches, n_process)
    assert found[0] is not None and found[1] is None
    ((_, found),) = tag_batches(AnnotationSettings(str(model), max_length=len(texts[1])), batches, n_process)
    assert found[1] is not None


@pytest.mark.parametrize("keyword, value, message", [
    ("min_confidence", 1.5, "min_confidence (--min-confidence) 1.5: use a value from 0 to 1"),
    ("min_confidence", -0.1, "min_confidence (--min-confidence) -0.1: use a value from 0 to 1"),
    ("max_length", 0, "max_length (--max-length) 0: use 1 or more characters"),
])
def test_bad_settings_fail_before_anything_is_loaded(keyword, value, message, tmp_path, capsys):
    """The same check for the command line and the API (spark.annotate makes the same
    settings), naming both spellings; no pipeline is loaded (the model does not exist)."""
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "no_model"), str(tmp_path), str(tmp_path / "out.jsonl"), "--" + keyword.replace("_", "-"), str(value)])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    with pytest.raises(ValueError, match=re.escape(message)):
        AnnotationSettings(str(tmp_path / "no_model"), **{keyword: value})


def test_joining_parts_twice_adds_nothing_twice(tmp_path):
    """A run killed after the joined file was renamed into place but before
    its parts were removed: the next run's join must not repeat them."""
    note = lambda i: AnnotatedNote(f"n{i}", "x", [Entity(0, 1, "Disease", "x", 0.5)])
    writer = JsonlWriter(tmp_path / "out.jsonl", part_size=2)
    for i in range(5):
        writer.write(note(i))
    writer.flush()
    parts = {p.name: p.read_bytes() for p in writer.parts()}
    writer.close()
    joined = (tmp_path / "out.jsonl").read_bytes()
    for name, data in parts.items():  # the parts come back, as if never removed
        writer.parts_dir.mkdir(exist_ok=True)
        (writer.parts_dir / name).write_bytes(data)
    again = JsonlWriter(tmp_path / "out.jsonl", part_size=2)
    assert again.done_ids() == {f"n{i}" for i in range(5)}
    again.close()
    assert (tmp_path / "out.jsonl").read_bytes() == joined and not again.parts_dir.exists()


def start_annotate(model, source, output, *extra):
    cmd = [sys.executable, "-m", "spacy_dtn", "annotate", str(model), str(source), str(output), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})


def committed(output, kind):
    if kind == "brat":
        return list(output.glob("*.ann")) if output.exists() else []
    parts = output if kind == "parquet" else output.with_name(output.name + ".parts")
    return list(parts.glob("part-*")) if parts.exists() else []


def snapshot(output):
    if output.is_file():
        return {output.name: output.read_bytes()}
    return {p.relative_to(output).as_posix(): p.read_bytes() for p in sorted(output.rglob("*")) if p.is_file()}


@pytest.fixture
def one_torch_thread():
    """The killed run is a subprocess on one thread; the rerun and the reference run
    here must be too, or float32 results (confidences) differ in their last digits."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("kind", ["jsonl", "brat", "parquet"])
def test_kill_then_rerun_equals_one_run(model, tmp_path, kind, capsys, one_torch_thread):
    source = write_jsonl(tmp_path / "in.jsonl", note_texts(600))
    name = {"jsonl": "out.jsonl", "brat": "brat", "parquet": "out.parquet"}[kind]
    reference, resumed = tmp_path / "ref" / name, tmp_path / "resumed" / name
    options = ["--batch-size", "8", "--part-size", "16"]
    proc = start_annotate(model, source, resumed, *options)
    deadline = time.time() + 300
    while len(committed(resumed, kind)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert 3 <= len(committed(resumed, kind)) < (600 if kind == "brat" else 38)
    if kind == "jsonl":
        assert not resumed.exists()
    assert main([str(model), str(source), str(resumed), *options]) == 0
    assert "skipped 0 " not in capsys.readouterr().out
    assert main([str(model), str(source), str(reference), *options]) == 0
    assert snapshot(resumed) == snapshot(reference)
    assert not list(resumed.parent.rglob("*annotate-tmp"))
