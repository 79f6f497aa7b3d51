"""Resumable series of trainings, shared by the scheme search (spacy_dtn/search.py)
and the benchmarks (benchmarks/run.py).

Policy: each run is one `spacy train` in a subprocess (a clean state per run;
its output goes to train.log in the run's folder), scored on dev and test
from its model-best, and one record in a JSON list, with the steps it trained
and the step of its best dev score (read from its log). A record is merged into
the file under an exclusive lock as soon as its run finishes, so a stopped
series resumes where it stopped (a run whose key is in the file is skipped)
and runners started in parallel on one file keep each other's records.
"""
import fcntl
import hashlib
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import spacy
import srsly
from spacy.tokens import DocBin
from spacy.training import Example

Scores = Dict[str, object]
Record = Dict[str, object]
LOG_TAIL = 3000  # characters of a failed training's log shown in the error
# Component and component-initialize settings added after the grid had records, at
# the value that trains and scores as before (a new serving option, off; no label
# pairs inferred; capitals read lower-cased, as no window of the shipped corpora's
# dev and test sets is in capitals, tests/test_capitals.py, and the grid predicts on
# nothing else: map_labels_by_overlap, which tags training texts, is null there): a
# config that spells one out keeps its digest, so the grid does not redo runs whose
# results would not change.
NEUTRAL_SETTINGS = {"bfloat16": False, "map_labels_by_overlap": None, "lowercase_capitals": True}
# The same for training corpora: case variants at shares 0 draw nothing (no
# augmenter), and TransferCorpus.v2 without an augmenter is v1.
CASE_VARIANTS, TRANSFER_CORPUS = "spacy_dtn.case_variants.v1", "spacy_dtn.TransferCorpus"


@dataclass
class Run:
    """One training of a series. `key` identifies the run among the records and
    starts its record. `prepare` returns the config and its overrides when the
    run starts, so what the run needs first (a source pipeline) is only made
    for runs that are not done."""

    key: Record
    name: str
    output: Path
    prepare: Callable[[], Tuple[Path, Dict[str, object]]]
    dev: Path
    test: Path


# The record fields after the key, from the run, its dev and test scores and its training seconds.
Describe = Callable[[Run, Scores, Scores, float], Record]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def folder_name(name: str) -> str:
    """A run's name as a folder name: `scheme:char_embed+word_lstm` -> `scheme_char_embed-word_lstm`."""
    return name.replace(":", "_").replace("+", "-")


def train_in_subprocess(config: Path, output: Path, overrides: Dict[str, object], use_gpu: int = -1) -> float:
    """`python -m spacy train` with `--key value` overrides; returns its wall seconds.
    Strings and paths are passed as they are, other values as JSON (lists, None, booleans)."""
    args = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(output), "--gpu-id", str(use_gpu)]
    for key, value in overrides.items():
        args += [f"--{key}", str(value) if isinstance(value, (str, Path)) else json.dumps(value)]
    output.mkdir(parents=True, exist_ok=True)
    log_path = output / "train.log"
    start = time.time()
    with log_path.open("w", encoding="utf8") as log_file:
        returncode = subprocess.run(args, stdout=log_file, stderr=subprocess.STDOUT).returncode
    if returncode != 0:
        tail = log_path.read_text(encoding="utf8")[-LOG_TAIL:]
        raise RuntimeError(f"spacy train failed (exit {returncode}): {' '.join(args)}\nEnd of {log_path}:\n{tail}")
    return time.time() - start


# A row of spaCy's console logger: epoch, step, then losses and scores.
LOGGED_ROW = re.compile(r"^\s*\d+\s+(\d+)\s")
# The column to rank evaluations by, if the log has it (SCORE is rounded to 2
# digits, which makes ties of different checkpoints), else SCORE.
RANKED_COLUMNS = ("ENTS_F", "SCORE")


def logged_steps(log_path: Path) -> Tuple[int, int]:
    """(steps trained, step of the best logged evaluation) from a `spacy train`
    log. The best is ranked by ENTS_F where logged, and a tie goes to the later
    step, as spaCy's model-best does (it saves every checkpoint that equals the best)."""
    rows: List[Tuple[float, int]] = []
    from_end = 1
    for line in log_path.read_text(encoding="utf8").splitlines():
        names = line.split()
        if names[:2] == ["E", "#"] and "SCORE" in names:
            # Right-aligned columns, one token each from the scores on ("LOSS NER" is two).
            ranked = next(name for name in RANKED_COLUMNS if name in names)
            from_end = len(names) - names.index(ranked)
        elif (m := LOGGED_ROW.match(line)) is not None:
            rows.append((float(line.split()[-from_end]), int(m.group(1))))
    if not rows:
        raise ValueError(f"{log_path} has no evaluation rows: was it written by `spacy train` with the ConsoleLogger?")
    return rows[-1][1], max(rows)[1]


def evaluate(model: Path, corpus: Path) -> Scores:
    """Entity precision, recall, F1 and per-type scores of a pipeline on a .spacy corpus."""
    return scores_on(spacy.load(model), corpus)


def scores_on(nlp: spacy.Language, corpus: Path) -> Scores:
    """`evaluate` for a pipeline already loaded (e.g. with settings overridden)."""
    examples = [Example(nlp.make_doc(d.text), d) for d in DocBin().from_disk(corpus).get_docs(nlp.vocab)]
    scores = nlp.evaluate(examples)
    return {"p": scores["ents_p"], "r": scores["ents_r"], "f": scores["ents_f"], "per_type": scores["ents_per_type"]}


def config_digest(config: Path) -> str:
    """A short digest of a config's settings (not its comments or layout): records
    carry it in their key, so a run is done again when its config has changed.
    A component (or component initialize) setting at its NEUTRAL_SETTINGS value is left out."""
    settings = spacy.util.load_config(config, interpolate=False)
    initialize = settings.get("initialize", {}).get("components", {})
    for component in [*settings.get("components", {}).values(), *initialize.values()]:
        for name, neutral in NEUTRAL_SETTINGS.items():
            if name in component and component[name] == neutral:
                del component[name]
    for corpus in settings.get("corpora", {}).values():
        drop_neutral_augmenter(corpus)
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode("utf8")).hexdigest()[:10]


def drop_neutral_augmenter(corpus: Dict[str, object]) -> None:
    """Write a corpus reader's settings as they train: without an augmenter that changes nothing."""
    augmenter = corpus.get("augmenter")
    if isinstance(augmenter, dict) and augmenter.get("@augmenters") == CASE_VARIANTS:
        if not augmenter.get("upper", 0) and not augmenter.get("lower", 0):
            corpus["augmenter"] = None
    if corpus.get("@readers") == f"{TRANSFER_CORPUS}.v2" and corpus.get("augmenter") is None:
        corpus["@readers"] = f"{TRANSFER_CORPUS}.v1"
        corpus.pop("augmenter", None)


def read_records(path: Path) -> List[Record]:
    return srsly.read_json(path) if path.exists() else []


def add_record(path: Path, record: Record) -> None:
    """Merge one record into the file under a lock, so parallel runners keep each other's records."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{path.stem}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        srsly.write_json(path, read_records(path) + [record])


def is_done(run: Run, records: Sequence[Record]) -> bool:
    return any(all(r.get(field) == value for field, value in run.key.items()) for r in records)


def run_all(runs: Sequence[Run], records_path: Path, describe: Describe, use_gpu: int = -1) -> List[Record]:
    """Train, score and record every run not recorded yet; returns all records of the file."""
    records = read_records(records_path)
    todo = [run for run in runs if not is_done(run, records)]
    log(f"{len(runs)} runs planned, {len(runs) - len(todo)} done earlier (skipped), {len(todo)} to go")
    started = time.time()
    for k, run in enumerate(todo, 1):
        elapsed = time.time() - started
        left = f", about {elapsed / (k - 1) * (len(todo) - k + 1) / 60:.0f} min left" if k > 1 else ""
        log(f"[{k}/{len(todo)}] {run.name}: training (elapsed {elapsed / 60:.1f} min{left})")
        config, overrides = run.prepare()
        seconds = train_in_subprocess(config, run.output, overrides, use_gpu)
        best = run.output / "model-best"
        dev, test = evaluate(best, run.dev), evaluate(best, run.test)
        steps, best_step = logged_steps(run.output / "train.log")
        add_record(records_path, {**run.key, **describe(run, dev, test, seconds), "steps": steps, "best_step": best_step})
        log(f"    dev F1 {dev['f']:.4f}  test F1 {test['f']:.4f}  ({seconds:.0f} s)")
    return read_records(records_path)
