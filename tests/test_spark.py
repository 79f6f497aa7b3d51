"""Spark: `spacy_dtn.spark.annotate` and `annotate --engine spark` on local[2]
give the entities nlp.pipe gives."""
import pandas
import pytest
import spacy


pyspark = pytest.importorskip("pyspark", reason="needs the spark extra: pip install -e '.[spark]'")

from spacy_dtn.annotate import main  # noqa: E402
from spacy_dtn.spark import annotate, spark_session  # noqa: E402
from conftest import note_texts  # noqa: E402


@pytest.fixture(scope="session")
def spark():
    session = spark_session("local[2]")
    session.conf.set("spark.sql.shuffle.partitions", "2")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def model(target_model):
    return target_model


def pipe_entities(model, texts, sentencizer=False):
    nlp = spacy.load(model)
    if sentencizer:
        nlp.add_pipe("note_sentencizer", first=True)
    return [[(e.start_char, e.end_char, e.label_, e.text, e._.confidence) for e in doc.ents] for doc in nlp.pipe(texts)]


def assert_same_entities(rows, expected):
    """Same spans, labels and texts; confidences equal up to float32 noise: Spark batches
    other notes together, padding changes the BLAS call sizes, and a confidence summed over
    a long note's spans has been seen 1.5e-5 off (the same bound as tests/test_annotate.py)."""
    got = [[(e["start"], e["end"], e["label"], e["text"]) for e in row] for row in rows]
    assert got == [[x[:4] for x in row] for row in expected]
    assert [[e["confidence"] for e in row] for row in rows] == [pytest.approx([x[4] for x in row], abs=1e-4) for row in expected]


def test_annotate_dataframe_matches_nlp_pipe(spark, model):
    texts = note_texts(30)
    df = spark.createDataFrame(pandas.DataFrame({"id": [f"n{i}" for i in range(31)], "text": texts + [None]}))
    out = annotate(df.repartition(2), str(model)).toPandas().set_index("id")
    assert list(out.columns) == ["text", "entities"]
    assert out.loc["n30", "entities"] is None
    rows = [[e.asDict() if hasattr(e, "asDict") else e for e in out.loc[f"n{i}", "entities"]] for i in range(30)]
    expected = pipe_entities(model, texts)
    assert any(expected)
    assert_same_entities(rows, expected)


def test_annotate_reads_sentence_by_sentence_with_the_sentencizer(spark, model):
    texts = [text for text in note_texts(12) if text.count(" .") > 1]
    df = spark.createDataFrame(pandas.DataFrame({"id": [f"n{i}" for i in range(len(texts))], "text": texts}))
    out = annotate(df, str(model), sentencizer=True).toPandas().set_index("id")
    rows = [[e.asDict() if hasattr(e, "asDict") else e for e in out.loc[f"n{i}", "entities"]] for i in range(len(texts))]
    expected = pipe_entities(model, texts, sentencizer=True)
    assert_same_entities(rows, expected)
    whole = [x[4] for row in pipe_entities(model, texts) for x in row]
    assert max(abs(a - b) for a, b in zip(whole, [x[4] for row in expected for x in row])) > 1e-3


def test_annotate_command_on_spark(spark, model, tmp_path, capsys):
    texts = note_texts(20)
    pandas.DataFrame({"note_id": range(21), "body": texts + [""]}).to_parquet(tmp_path / "notes.parquet")
    args = [str(model), str(tmp_path / "notes.parquet"), str(tmp_path / "out.parquet"), "--engine", "spark",
            "--master", "local[2]", "--id-col", "note_id", "--text-col", "body"]
    assert main(args) == 1
    assert "annotated 20, skipped 0 (already written), failed 1" in capsys.readouterr().out
    table = pandas.read_parquet(tmp_path / "out.parquet").set_index("id")
    assert table.loc["20", "entities"] is None
    assert_same_entities([list(table.loc[str(i), "entities"]) for i in range(20)], pipe_entities(model, texts))


def test_annotate_names_a_missing_id_column_before_tagging(spark, model):
    df = spark.createDataFrame(pandas.DataFrame({"note_id": ["a"], "text": ["Fever."]}))
    with pytest.raises(ValueError, match=r"no column \['id'\].*pass id_col"):
        annotate(df, str(model))
    assert annotate(df, str(model), id_col="note_id").columns == ["note_id", "text", "entities"]
    assert annotate(df, str(model), id_col=None).columns == ["note_id", "text", "entities"]


def test_annotate_leaves_notes_longer_than_max_length_null(spark, model):
    texts = note_texts(4)
    limit = sorted(len(text) for text in texts)[1]
    df = spark.createDataFrame(pandas.DataFrame({"id": range(4), "text": texts}))
    out = annotate(df, str(model), max_length=limit).toPandas().set_index("id")
    assert [out.loc[i, "entities"] is None for i in range(4)] == [len(text) > limit for text in texts]
