"""Annotating notes on Spark: `annotate(df, model)` adds an `entities` column.

Policy:
- the pipeline is never pickled: the function Spark ships to the executors
  carries the model's name or path only, and each Python worker loads the
  pipeline once (on first use) and keeps it for every later batch and task;
  the model must be loadable on every executor (an installed package, a path
  on a shared file system, or a folder shipped with `--archives`);
- notes travel as Arrow batches through an Iterator-of-Series pandas UDF and
  go through `nlp.pipe` batch by batch;
- `entities` is an array of structs (start, end, label, text, confidence),
  the schema of annotate's Parquet output; it is null for a note without
  text or longer than `max_length` characters (annotate.MAX_LENGTH unless raised);
- one torch thread per Python worker: Spark runs one task per core already.

Needs `pip install "spacy-dtn[spark]"` and a Java runtime.
"""
import os
import sys
import time
from typing import Iterator, List, Optional

import pandas
from spacy import util

from .annotate import MAX_LENGTH, AnnotationSettings, Summary, start_worker, tag_texts
from .notes import NoteInputError

ENTITY_FIELDS = (("start", "long"), ("end", "long"), ("label", "string"), ("text", "string"), ("confidence", "double"))
ENTITIES_TYPE = "array<struct<" + ",".join(f"{name}:{kind}" for name, kind in ENTITY_FIELDS) + ">>"
SHOWN_FAILURES = 20


def annotate_texts(texts: Iterator[pandas.Series], settings: AnnotationSettings, batch_size: int) -> Iterator[pandas.Series]:
    """The body of the pandas UDF: entities per text, None where there is no text."""
    start_worker()
    for series in texts:
        rows = []
        for batch in util.minibatch(series.tolist(), batch_size):
            found = tag_texts(settings, batch)
            rows += [None if ents is None else [e._asdict() for e in ents] for ents in found]
        yield pandas.Series(rows, index=series.index, dtype=object)


def check_columns(df, id_col: Optional[str], text_col: str) -> None:
    missing = [name for name in (id_col, text_col) if name is not None and name not in df.columns]
    if missing:
        raise ValueError(f"The DataFrame has no column {missing} (columns: {df.columns}): pass id_col/text_col.")


def annotate(
    df,
    model: str,
    text_col: str = "text",
    id_col: Optional[str] = "id",
    *,
    output_col: str = "entities",
    batch_size: int = 64,
    min_confidence: float = 0.0,
    max_length: int = MAX_LENGTH,
    sentencizer: bool = False,
):
    """`df` with an `entities` column for the notes in `text_col`. Every other
    column stays; `id_col` (None for a table without one) is checked up front,
    so a wrong name fails here rather than after the archive was tagged.
    `sentencizer`: read each note sentence by sentence (annotate.py)."""
    from pyspark.sql.functions import col, pandas_udf

    check_columns(df, id_col, text_col)
    settings = AnnotationSettings(str(model), min_confidence, max_length, sentencizer)

    # Spark reads the UDF's kind from these type hints; the closure holds the settings and a number only.
    def entities_udf(texts: Iterator[pandas.Series]) -> Iterator[pandas.Series]:
        return annotate_texts(texts, settings, batch_size)

    return df.withColumn(output_col, pandas_udf(entities_udf, ENTITIES_TYPE)(col(text_col)))


def spark_session(master: str):
    """A session whose Python workers run this interpreter (and so see this
    environment's spacy-dtn), unless PYSPARK_PYTHON says otherwise."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return SparkSession.builder.master(master).appName("spacy_dtn annotate").getOrCreate()


def run_spark(args) -> Summary:
    """`annotate --engine spark`: Parquet in, a Parquet folder (id, entities) out."""
    from pyspark.sql.functions import col

    spark = spark_session(args.master)
    df = spark.read.parquet(str(args.input))
    try:
        check_columns(df, args.id_col, args.text_col)
    except ValueError as error:
        raise NoteInputError(f"{args.input}: {error} (--id-col/--text-col)") from None
    parallelism = spark.sparkContext.defaultParallelism
    if df.rdd.getNumPartitions() < parallelism:
        df = df.repartition(parallelism)
    notes = df.select(col(args.id_col).cast("string").alias("id"), col(args.text_col).alias("text"))
    out = annotate(
        notes, args.model, "text", "id",
        batch_size=args.batch_size, min_confidence=args.min_confidence, max_length=args.max_length,
        sentencizer=args.sentencizer,
    )
    started = time.perf_counter()
    out.select("id", "entities").write.mode("overwrite").parquet(str(args.output))
    seconds = time.perf_counter() - started
    written = spark.read.parquet(str(args.output))
    failed: List[str] = [r.id for r in written.filter(col("entities").isNull()).select("id").limit(SHOWN_FAILURES).collect()]
    summary = Summary(annotated=written.filter(col("entities").isNotNull()).count(), seconds=seconds)
    summary.failed = written.filter(col("entities").isNull()).count()
    for note_id in failed:
        print(f"failed: {note_id}: no text, or longer than --max-length {args.max_length:,} (raise it to annotate it)",
              file=sys.stderr)
    if summary.failed > len(failed):
        print(f"... and {summary.failed - len(failed)} more (rows of {args.output} with entities null)", file=sys.stderr)
    return summary
