"""`python -m spacy_dtn annotate MODEL INPUT OUTPUT`: run a trained pipeline
over a note archive and write every note's entities with their confidence.

Policy:
- input: a folder of `.txt` notes, JSONL, CSV or Parquet (notes.py); output:
  a brat folder, JSONL or a Parquet folder (note_outputs.py), resumable and
  written atomically: a rerun skips the notes OUTPUT already holds, so
  after a killed run, running the same command again finishes the job;
- a note that cannot be read or written is reported on stderr with its id and
  reason and counted; the run goes on. The exit code is 1 when any note
  failed (0 with --allow-failures), 2 for a bad command line or input;
- entity confidence is switched on in the loaded pipeline whatever its
  config says (the pipeline's temperature is kept); `--min-confidence` drops
  entities below it from the output;
- a note longer than `--max-length` characters (spaCy's default
  `nlp.max_length`, 1,000,000, unless raised) fails with a hint to raise it:
  dtn_ner reads a note in windows, so a long note's time and memory grow
  with its tokens only; a note over the limit stays in its batch (and fails
  there), so the batches do not depend on the limit;
- `--sentencizer` puts `note_sentencizer` (note_sentences.py: spaCy's
  rule-based sentencizer, told the note's lines) before the tagger, so that
  a note is read sentence by sentence and line by line, as the corpora a
  model learns from are (README, "Read notes sentence by sentence"); without
  it a note is read in windows of `max_segment_length` tokens, as nlp.pipe
  reads it;
- what decides a note's entities (the model, `--min-confidence`,
  `--max-length`, `--sentencizer`) is one frozen `AnnotationSettings`, checked
  once where it is made (the command line, or spark.annotate's keywords)
  and sent as it is to every worker process and Spark executor;
- `--engine spark` runs the same pipeline on Spark (spark.py), Parquet in and
  out; Spark commits its output when the job succeeds, so a rerun starts over.
"""
import argparse
import html
import multiprocessing
import random
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Deque, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import spacy
from spacy import displacy, util
from spacy.language import Language
from spacy.tokens import Doc
from tqdm import tqdm

from .ner_component import DynamicTransferNER
from .note_outputs import OUTPUT_FORMATS, PART_SIZE, AnnotatedNote, Entity, NoteWriteError, detect_output_format, open_writer, write_atomic
from .notes import INPUT_FORMATS, Note, NoteInputError, NoteSource

HTML_NOTES = 20
NOTE_SENTENCIZER = "note_sentencizer"
MAX_LENGTH = 1_000_000  # spaCy's default nlp.max_length
# displaCy colours by confidence, so a reviewer's eye goes to the doubtful ones.
CONFIDENCE_COLOURS = ((0.9, "#9be59b"), (0.6, "#ffe08a"), (0.0, "#ff9e9e"))


@dataclass
class Summary:
    annotated: int = 0
    skipped: int = 0
    failed: int = 0
    failures: List[Tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0  # from the first note read to the last written (no start-up)

    def line(self) -> str:
        return (
            f"annotated {self.annotated}, skipped {self.skipped} (already written), failed {self.failed} "
            f"in {self.seconds:.1f} s"
        )


def load_pipeline(model: str, gpu_id: int = -1, sentencizer: bool = False) -> Language:
    """The pipeline with entity confidence on in every dtn_ner component, and
    note_sentencizer first if asked for and the pipeline has none."""
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model)
    components = [pipe for _, pipe in nlp.pipeline if isinstance(pipe, DynamicTransferNER)]
    if not components:
        raise NoteInputError(f"The pipeline {model} has no dtn_ner component (it has {nlp.pipe_names}).")
    for pipe in components:
        pipe.confidence = True
    if sentencizer and NOTE_SENTENCIZER not in nlp.pipe_names:
        nlp.add_pipe(NOTE_SENTENCIZER, first=True)
    return nlp


# Pipelines loaded in this process, by name and sentencizer: worker processes and
# Spark's Python workers load one once and keep it; a forked worker inherits its parent's.
_PIPELINES: Dict[Tuple[str, bool], Language] = {}


@dataclass(frozen=True)
class AnnotationSettings:
    """How notes are tagged: which pipeline, how it reads a note, which
    entities are kept. One frozen value of strings and numbers, so it pickles:
    it goes as it is to worker processes and to Spark's executors, where each
    process loads the pipeline once. Checked when made, with the names of both
    the keyword and the command-line option."""

    model: str
    min_confidence: float = 0.0
    max_length: int = MAX_LENGTH
    sentencizer: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence (--min-confidence) {self.min_confidence}: use a value from 0 to 1")
        if self.max_length < 1:
            raise ValueError(f"max_length (--max-length) {self.max_length}: use 1 or more characters "
                             f"(default {MAX_LENGTH:,}, spaCy's nlp.max_length)")

    def pipeline(self, gpu_id: int = -1) -> Language:
        """This process's pipeline for these settings, loaded on first use."""
        key = (self.model, self.sentencizer)
        if key not in _PIPELINES:
            _PIPELINES[key] = load_pipeline(self.model, gpu_id, self.sentencizer)
        return _PIPELINES[key]


def entities(doc: Doc, min_confidence: float = 0.0) -> List[Entity]:
    """doc.ents with their confidence (None for entities of other components)."""
    found = [Entity(e.start_char, e.end_char, e.label_, e.text, e._.confidence) for e in doc.ents]
    return [e for e in found if e.confidence is None or e.confidence >= min_confidence]


def tag_texts(settings: AnnotationSettings, texts: Sequence[Optional[str]]) -> List[Optional[List[Entity]]]:
    """The entities of each text, tagged as one batch; None for a text the
    pipeline cannot take (none, empty, longer than `max_length` characters).
    Only these small tuples leave a worker: no Doc is serialized."""
    nlp = settings.pipeline()
    nlp.max_length = settings.max_length
    usable = [isinstance(t, str) and 0 < len(t) <= settings.max_length for t in texts]
    docs = iter(nlp.pipe([t for t, ok in zip(texts, usable) if ok], batch_size=max(len(texts), 1)))
    return [entities(next(docs), settings.min_confidence) if ok else None for ok in usable]


def start_worker() -> None:
    # One torch thread per worker: the workers already use the cores.
    import torch

    torch.set_num_threads(1)


def tag_batches(
    settings: AnnotationSettings, batches: Iterable[List[Note]], n_process: int
) -> Iterator[Tuple[List[Note], List[Optional[List[Entity]]]]]:
    """Each batch with its entities, in order: here, or in `n_process` worker
    processes with a few batches in flight (the input is read as it goes)."""
    if n_process == 1:
        for batch in batches:
            yield batch, tag_texts(settings, [note.text for note in batch])
        return
    pending: Deque = deque()
    with multiprocessing.Pool(n_process, initializer=start_worker) as pool:
        for batch in batches:
            pending.append((batch, pool.apply_async(tag_texts, (settings, [note.text for note in batch]))))
            if len(pending) > 2 * n_process:
                batch, result = pending.popleft()
                yield batch, result.get()
        while pending:
            batch, result = pending.popleft()
            yield batch, result.get()


def annotate_notes(
    settings: AnnotationSettings,
    notes: Iterable[Note],
    writer,
    *,
    n_process: int = 1,
    batch_size: int = 64,
    gpu_id: int = -1,
    progress: Optional[tqdm] = None,
    sample: Optional["Sample"] = None,
    done: Optional[Set[str]] = None,
) -> Summary:
    """Annotate the notes not `done` (default: those the writer holds) and write them."""
    summary = Summary()
    done = writer.done_ids() if done is None else done
    settings.pipeline(gpu_id)  # here first: a bad MODEL fails before any worker starts
    started = time.perf_counter()

    def fail(note_id: str, reason: str) -> None:
        summary.failed += 1
        summary.failures.append((note_id, reason))
        tqdm.write(f"failed: {note_id}: {reason}", file=sys.stderr)
        if progress is not None:
            progress.update(1)
            progress.set_postfix(failed=summary.failed, refresh=False)

    def readable() -> Iterator[Note]:
        for note in notes:
            if note.error is not None:
                fail(note.id, note.error)
            else:
                yield note

    def todo() -> Iterator[List[Note]]:
        """Whole batches: one with a note still to do is tagged again in full, so
        that every note is tagged in the same batch as in one uninterrupted run
        (a forward pass's floats depend a little on what else is in it). A note
        over `max_length` stays in its batch (tag_texts leaves it out of the
        pass), so the batches are the same whatever the limit."""
        for batch in util.minibatch(readable(), batch_size):
            if all(note.id in done for note in batch):
                summary.skipped += len(batch)
            else:
                yield batch

    for batch, found in tag_batches(settings, todo(), n_process):
        for note, note_entities in zip(batch, found):
            if note.id in done:
                summary.skipped += 1
                continue
            if note_entities is None:  # the one text tag_texts refuses here: too long
                fail(note.id, f"{len(note.text):,} characters, more than --max-length {settings.max_length:,}: "
                              f"pass --max-length {len(note.text)} or more to annotate it")
                continue
            annotated = AnnotatedNote(note.id, note.text, note_entities)
            try:
                writer.write(annotated)
            except NoteWriteError as err:
                fail(note.id, str(err))
                continue
            summary.annotated += 1
            if sample is not None:
                sample.offer(annotated)
            if progress is not None:
                progress.update(1)
    writer.close()
    summary.seconds = time.perf_counter() - started
    return summary


class Sample:
    """A fixed-size uniform sample of the annotated notes (reservoir, seeded)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.seen, self.notes = size, 0, []
        self.random = random.Random(seed)

    def offer(self, note: AnnotatedNote) -> None:
        self.seen += 1
        if len(self.notes) < self.size:
            self.notes.append(note)
        else:
            slot = self.random.randrange(self.seen)
            if slot < self.size:
                self.notes[slot] = note

    def html(self) -> str:
        """A displaCy page: each entity labelled with its confidence, coloured by it."""
        docs, colours = [], {}
        for note in sorted(self.notes, key=lambda n: n.id):
            ents = []
            for e in note.entities:
                label = e.label if e.confidence is None else f"{e.label} {e.confidence:.2f}"
                shown = 1.0 if e.confidence is None else e.confidence
                colours[label] = next(c for low, c in CONFIDENCE_COLOURS if shown >= low)
                ents.append({"start": e.start, "end": e.end, "label": label})
            docs.append({"text": note.text, "ents": ents, "title": html.escape(note.id)})
        return displacy.render(docs, style="ent", manual=True, page=True, options={"colors": colours})


def run_local(args: argparse.Namespace) -> Summary:
    source = NoteSource(args.input, args.input_format, args.id_col, args.text_col, args.encoding)
    output_format = args.output_format or detect_output_format(args.output)
    # Parts end on batch boundaries, so a resumed run batches as the first did.
    part_size = -(-args.part_size // args.batch_size) * args.batch_size
    writer = open_writer(args.output, output_format, part_size)
    sample = Sample(args.html_notes) if args.html else None
    done = writer.done_ids()
    with tqdm(total=max(source.total - len(done), 0), unit="note", desc="annotate", dynamic_ncols=True) as progress:
        summary = annotate_notes(
            args.settings, source, writer, n_process=args.n_process, batch_size=args.batch_size, gpu_id=args.gpu_id,
            progress=progress, sample=sample, done=done,
        )
    if sample is not None:
        write_atomic(args.html, sample.html().encode("utf-8"))
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        if args.engine == "spark":
            from .spark import run_spark

            summary = run_spark(args)
        else:
            summary = run_local(args)
    except (NoteInputError, NoteWriteError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.output}: {summary.line()}")
    return 1 if summary.failed and not args.allow_failures else 0


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_dtn annotate",
        description="Annotate a note archive with a trained pipeline: entities with their confidence, "
        "as brat, JSONL or Parquet. Rerun the same command to resume.",
    )
    parser.add_argument("model", help="trained pipeline (folder or installed package name)")
    parser.add_argument("input", type=Path, help="folder of .txt notes, .jsonl, .csv or .parquet (file or folder)")
    parser.add_argument("output", type=Path, help="brat folder, .jsonl file or .parquet folder")
    parser.add_argument("--input-format", choices=INPUT_FORMATS, help="default: from INPUT")
    parser.add_argument("--output-format", choices=OUTPUT_FORMATS, help="default: from OUTPUT's suffix (else brat)")
    parser.add_argument("--id-col", default="id", help="id field or column of JSONL/CSV/Parquet input (default id)")
    parser.add_argument("--text-col", default="text", help="text field or column (default text)")
    parser.add_argument("--encoding", default="utf-8", help="encoding of .txt, JSONL and CSV input, e.g. cp1252 (default utf-8)")
    parser.add_argument("--n-process", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--batch-size", type=int, default=64, help="notes per nlp.pipe batch (default 64)")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to run on (default -1: CPU)")
    parser.add_argument("--min-confidence", type=float, default=0.0, help="leave out entities below this confidence")
    parser.add_argument(
        "--max-length", type=int, default=MAX_LENGTH,
        help=f"longest note in characters; a longer one fails (default {MAX_LENGTH:,}, spaCy's nlp.max_length; "
        "time and memory grow with the note's tokens)",
    )
    parser.add_argument(
        "--sentencizer", action="store_true",
        help="read each note sentence by sentence and line by line: note_sentencizer (spaCy's rule-based "
        "sentencizer, told the note's lines) before the tagger (README, 'Read notes sentence by sentence')",
    )
    parser.add_argument("--part-size", type=int, default=PART_SIZE, help=f"notes per JSONL/Parquet part, rounded up to a multiple of --batch-size (default {PART_SIZE})")
    parser.add_argument("--allow-failures", action="store_true", help="exit 0 even when some notes failed")
    parser.add_argument("--html", type=Path, help="write a displaCy page of a sample of annotated notes here")
    parser.add_argument("--html-notes", type=int, default=HTML_NOTES, help=f"notes in the --html sample (default {HTML_NOTES})")
    parser.add_argument("--engine", choices=("local", "spark"), default="local", help="default local")
    parser.add_argument("--master", default="local[2]", help="Spark master for --engine spark (default local[2])")
    args = parser.parse_args(argv)
    if min(args.n_process, args.batch_size, args.part_size, args.html_notes) < 1:
        parser.error("--n-process, --batch-size, --part-size and --html-notes must be 1 or more")
    try:
        args.settings = AnnotationSettings(args.model, args.min_confidence, args.max_length, args.sentencizer)
    except ValueError as err:
        parser.error(str(err))
    if args.gpu_id >= 0 and args.n_process > 1:
        parser.error("--gpu-id with --n-process > 1: worker processes cannot share one GPU; use one process")
    return args
