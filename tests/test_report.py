"""The report's tables and gates, on saved-pipeline files written by hand (the
workflow end to end is tests/test_project.py), and the shared table writer."""
from pathlib import Path

import pytest
import srsly

from conftest import GATES, saved_pipeline
from spacy_dtn.gate_scores import LABELS_DIFFER, NOT_SCORED, saved_gate_start, saved_gates
from spacy_dtn.report import gate_trajectories, main, markdown, system_record
from spacy_dtn.tables import markdown_table


def metrics(path: Path) -> Path:
    srsly.write_json(path, {"ents_p": 0.6, "ents_r": 0.8, "ents_f": 0.6857, "ents_per_type": {}})
    return path


def test_table_layout():
    assert markdown_table(["system", "F1"], [["dtn", "71.00"], ["a|b", 3]]) == [
        "| system | F1 |", "|---|---|", "| dtn | 71.00 |", "| a\\|b | 3 |"]


def test_table_rejects_a_row_of_the_wrong_width():
    with pytest.raises(ValueError, match="Row 2 .* has 1 cells: give one cell per column \\(2\\)"):
        markdown_table(["system", "F1"], [["dtn", "71.00"], ["baseline"]])


def test_only_gated_layers_have_gates(tmp_path):
    baseline = saved_pipeline(tmp_path / "baseline", "baseline.cfg", ["Disease"], [])
    dtn = saved_pipeline(tmp_path / "dtn", "dtn.cfg", ["Disease"], ["Chemical", "Disease"])
    same_labels = saved_pipeline(tmp_path / "same", "dtn.cfg", ["Disease"], ["Disease"])
    scheme = saved_pipeline(tmp_path / "scheme", "scheme.cfg", ["Disease"], ["Chemical", "Disease"])
    no_source = saved_pipeline(tmp_path / "no_source", "dtn.cfg", ["Disease"], [])
    assert saved_gates(baseline) == ({}, {})
    assert saved_gates(dtn) == (GATES, {"output": LABELS_DIFFER})
    assert saved_gates(same_labels) == (GATES, {})
    assert saved_gates(scheme) == ({}, {"output": LABELS_DIFFER})
    assert saved_gates(no_source) == ({}, {})


def test_gates_of_a_pipeline_saved_without_scores():
    """The DTN pipeline saved by 0.1.0 (tests/fixtures/saved_v0_1) was saved by
    nlp.to_disk, so its meta.json has no scores: its gated layers say so."""
    pipeline = Path(__file__).parent / "fixtures" / "saved_v0_1" / "pipeline"
    gated = ["char_embed", "char_lstm", "word_embed", "word_lstm"]
    assert saved_gates(pipeline) == ({}, {**{layer: NOT_SCORED for layer in gated}, "output": LABELS_DIFFER})


def test_report_shows_a_dash_where_a_system_has_no_gate(tmp_path):
    baseline = saved_pipeline(tmp_path / "baseline", "baseline.cfg", ["Disease"], [])
    dtn = saved_pipeline(tmp_path / "dtn", "dtn.cfg", ["Disease"], ["Chemical", "Disease"])
    systems = [system_record("baseline", baseline, metrics(tmp_path / "b.json")),
               system_record("dtn", dtn, metrics(tmp_path / "d.json"))]
    lines = markdown(systems, []).splitlines()
    start = lines.index("| system | start | char_embed | char_lstm | word_embed | word_lstm | output |")
    # dtn.cfg starts its gates at sigmoid(2) = 0.881: char_embed (0.875) did not move.
    assert lines[start + 2:start + 4] == [
        "| baseline | — | — | — | — | — | — |",
        f"| dtn | 0.881 | 0.875* | 0.750 | 0.625 | 0.250 | {LABELS_DIFFER} |",
    ]


def test_gate_start_is_read_from_the_architecture(tmp_path):
    dtn = saved_pipeline(tmp_path / "dtn", "dtn.cfg", ["Disease"], ["Chemical", "Disease"])
    assert saved_gate_start(dtn) == pytest.approx(0.8808, abs=1e-4)
    config = (dtn / "config.cfg").read_text(encoding="utf8").replace("gate_bias = 2.0", "gate_bias = 0.0")
    (dtn / "config.cfg").write_text(config, encoding="utf8")
    assert saved_gate_start(dtn) == 0.5
    # A config without gate_bias starts where the architecture's default does (2.0).
    (dtn / "config.cfg").write_text(config.replace("gate_bias = 0.0\n", ""), encoding="utf8")
    assert saved_gate_start(dtn) == pytest.approx(0.8808, abs=1e-4)
    baseline = saved_pipeline(tmp_path / "baseline", "baseline.cfg", ["Disease"], [])
    assert system_record("baseline", baseline, metrics(tmp_path / "b.json"))["gate_start"] is None


def test_report_writes_empty_gates_in_json_and_plots_only_gates(tmp_path):
    baseline = saved_pipeline(tmp_path / "baseline", "baseline.cfg", ["Disease"], [])
    dtn = saved_pipeline(tmp_path / "dtn", "dtn.cfg", ["Disease"], ["Chemical", "Disease"])
    out = tmp_path / "reports"
    assert main([str(out), "--system", "baseline", str(baseline), str(metrics(tmp_path / "b.json")),
                 "--system", "dtn", str(dtn), str(metrics(tmp_path / "d.json"))]) == 0
    systems = {s["system"]: s for s in srsly.read_json(out / "results.json")["systems"]}
    assert systems["baseline"]["gates"] == {} and systems["baseline"]["gate_notes"] == {}
    assert systems["dtn"]["gates"] == GATES and systems["dtn"]["gate_notes"] == {"output": LABELS_DIFFER}
    for image in ["f1.png", "gates.png"]:
        assert (out / image).read_bytes()[:4] == b"\x89PNG"


def test_gate_trajectories_come_from_the_training_log(tmp_path):
    baseline = saved_pipeline(tmp_path / "baseline", "baseline.cfg", ["Disease"], [])
    log = tmp_path / "train_log.jsonl"
    srsly.write_jsonl(log, [
        {"epoch": 0, "step": step, "losses": {"ner": 1.0}, "score": 0.5,
         # as spacy.ConsoleLogger.v3 writes them: in percent
         "scores": {"ents_f": 50.0, "gate_char_embed": 88.0 - step / 10, "gate_word_lstm": 88.0 - step / 5,
                    "gate_output": 0.0}}
        for step in (0, 100, 200)
    ])
    curves = gate_trajectories(log)
    assert list(curves) == ["char_embed", "word_lstm"]
    assert curves["char_embed"] == [(0, pytest.approx(0.88)), (100, pytest.approx(0.78)), (200, pytest.approx(0.68))]
    assert curves["word_lstm"] == [(0, pytest.approx(0.88)), (100, pytest.approx(0.68)), (200, pytest.approx(0.48))]
    out = tmp_path / "reports"
    assert main([str(out), "--system", "baseline", str(baseline), str(metrics(tmp_path / "b.json")),
                 "--training-log", "dtn", str(log)]) == 0
    assert (out / "gates_over_training_dtn.png").read_bytes()[:4] == b"\x89PNG"
    assert "![gates_over_training_dtn](gates_over_training_dtn.png)" in (out / "results.md").read_text(encoding="utf8")
