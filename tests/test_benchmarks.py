"""The benchmark's results writer and record merging, on synthetic records."""
import sys
from pathlib import Path

import srsly

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from run import add_record  # noqa: E402
from write_results import summarize, targets_table, write_results  # noqa: E402

PAIR = "BC2GM->BioNLP13PC"


def record(system: str, seed: int, test_f1: float, dev_f1: float, per_type=None) -> dict:
    return {"pair": PAIR, "fraction": 0.1, "system": system, "seed": seed, "dev_f1": dev_f1, "test_f1": test_f1,
            "test_per_type": per_type or {}, "train_seconds": 10.0, "threads": 1}


RECORDS = [
    record("dtn_sequential", 0, 0.70, 0.71, {"Gene": 0.8, "Cell": 0.6}),
    record("dtn_sequential", 1, 0.72, 0.73, {"Gene": 0.9, "Cell": 0.5}),
    record("baseline", 0, 0.66, 0.70, {"Gene": 0.7, "Cell": 0.4}),
    record("baseline", 1, 0.66, 0.70, {"Gene": 0.7, "Cell": 0.4}),
    record("spacy_ner_transfer", 0, 0.69, 0.69),
    # The scheme with the best dev F1 is not the one with the best test F1: the table must pick by dev.
    record("scheme:word_embed", 0, 0.75, 0.60),
    record("scheme:char_embed", 0, 0.705, 0.80),
]


def test_summary_averages_over_seeds_and_types():
    rows = {r["system"]: r for r in summarize(RECORDS)}
    dtn = rows["dtn_sequential"]
    assert dtn["seeds"] == 2
    assert abs(dtn["test_f1"] - 0.71) < 1e-9
    assert abs(dtn["test_f1_std"] - 0.0141421356) < 1e-6
    assert abs(dtn["per_type"]["Gene"] - 0.85) < 1e-9


def test_targets_table_compares_dtn_with_each_system_and_the_dev_best_scheme():
    row = [line for line in targets_table(summarize(RECORDS)) if line.startswith(f"| {PAIR}")]
    assert row == [f"| {PAIR} | 10% | 2 | 71.00 | +5.00 | +2.00 | +0.50 (char_embed) |"]


def test_write_results_writes_tables_and_plots(tmp_path):
    srsly.write_json(tmp_path / "quality.json", RECORDS + [{**r, "fraction": 0.25} for r in RECORDS])
    write_results(tmp_path, tmp_path / "RESULTS.md")
    text = (tmp_path / "RESULTS.md").read_text(encoding="utf8")
    assert "### Per type: BC2GM->BioNLP13PC, target 10%" in text
    assert "| dtn_sequential | 55.00 | 85.00 |" in text
    assert "| 25% | 71.00 ± 1.41 | 69.00 ± 0.00 | 66.00 ± 0.00 |" in text
    assert (tmp_path / "f1_by_fraction_BC2GM_to_BioNLP13PC.png").stat().st_size > 0


def test_add_record_keeps_records_written_by_another_runner(tmp_path):
    path = tmp_path / "quality.json"
    add_record(path, RECORDS[0])
    add_record(path, RECORDS[1])
    assert [(r["system"], r["seed"]) for r in srsly.read_json(path)] == [("dtn_sequential", 0), ("dtn_sequential", 1)]
