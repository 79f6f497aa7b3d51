"""The benchmarks package: its results writer on synthetic records, the records
its runs write, and its entry point."""
import argparse
import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from spacy.training import Example

from benchmarks import capitals, characters, grid, line_breaks
from benchmarks import run as bench_run
from benchmarks.grid import BUDGET, CONFIGS, ROOT
from benchmarks.run import quality_scores, run_gates, runner_shard, scheme_fractions, setting_run, system_name
from conftest import GATES, saved_pipeline
from benchmarks.write_results import latest, speed_table, summarize, targets_table, write_results
from spacy_dtn.runs import config_digest, logged_steps

PAIR = "BC2GM->BioNLP13PC"


def record(system: str, seed: int, test_f1: float, dev_f1: float, per_type=None) -> dict:
    return {"pair": PAIR, "fraction": 0.1, "system": system, "seed": seed, "dev_f1": dev_f1, "test_f1": test_f1,
            "test_per_type": per_type or {}, "train_seconds": 10.0, "threads": 1, "budget": BUDGET,
            "steps": 2000 + 400 * seed, "best_step": 400, "config": config_digest(grid.system_config(system))}


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
    assert row == [f"| {PAIR} | 10% | 2 | 71.00 | +5.00 | +2.00 | +0.50 (char_embed, of 2 run) |"]


def test_write_results_writes_tables_and_plots(tmp_path):
    srsly.write_json(tmp_path / "quality.json", RECORDS + [{**r, "fraction": 0.25} for r in RECORDS])
    write_results(tmp_path, tmp_path / "RESULTS.md")
    text = (tmp_path / "RESULTS.md").read_text(encoding="utf8")
    assert "### Per type: BC2GM->BioNLP13PC, target 10%" in text
    assert "| dtn_sequential | 55.00 | 85.00 |" in text
    assert "| 25% | 71.00 ± 1.41 | 69.00 ± 0.00 | 66.00 ± 0.00 |" in text
    assert (tmp_path / "f1_by_fraction_BC2GM_to_BioNLP13PC.png").stat().st_size > 0
    assert "| dtn_sequential | 2 | 71.00 ± 1.41 | 72.00 | 2,200 | 400 | 10 | 1 |" in text
    assert "Earlier rule" not in text


def test_records_of_an_earlier_budget_rule_are_kept_apart(tmp_path):
    older = [{k: v for k, v in r.items() if k not in ("budget", "steps", "best_step")} for r in RECORDS]
    srsly.write_json(tmp_path / "quality.json", RECORDS + [{**r, "test_f1": 0.1} for r in older])
    (tmp_path / "f1_BC2GM_to_BioNLP13PC_0.05.png").write_bytes(b"a plot of a setting no record has now")
    write_results(tmp_path, tmp_path / "RESULTS.md")
    assert sorted(p.name for p in tmp_path.glob("f1_*.png")) == ["f1_BC2GM_to_BioNLP13PC_0.1.png"]
    current, earlier = (tmp_path / "RESULTS.md").read_text(encoding="utf8").split("## Earlier rule")
    assert "| 10% | 71.00 ± 1.41 |" in current and "10.00" not in current
    assert "| 10% | 10.00 ± 0.00 |" in earlier


def test_speed_rows_of_two_runs_name_each_run_and_its_systems():
    """A system remeasured after a change keeps the others' rows: the footer
    says which command measured which rows, since ratios hold within a run."""
    def run(command: str, started: str) -> dict:
        return {"command": command, "started": started, "omp_num_threads": "1", "cpu_affinity": [1],
                "rounds": 3, "load_average_start": [0.1, 0.1, 0.1]}

    new = {**run("new speed", "2026-11-26 08:00:00"), "cpu": "AMD EPYC", "cpu_features": ["avx2", "avx512_bf16"]}
    speed = [
        {"system": "dtn", "infer_words_per_s": 2.0, "run": new},
        {"system": "spacy_ner_target", "infer_words_per_s": 1.0, "run": new},
        {"system": "dtn_trf", "infer_words_per_s": 0.1, "run": run("old speed", "2026-11-25 20:00:00")},
    ]
    footer = [line for line in speed_table(speed) if line.startswith(("dtn", "spacy"))]
    assert len(footer) == 2
    assert footer[0].startswith("dtn, spacy_ner_target: `new speed`")
    assert "AMD EPYC (avx2, avx512_bf16)" in footer[0]  # a run that recorded its CPU names it
    assert footer[1].startswith("dtn_trf: `old speed`") and "EPYC" not in footer[1]


def test_a_run_record_is_what_the_writer_reads(tmp_path):
    paths = {"dev": tmp_path / "dev.spacy", "test": tmp_path / "test.spacy"}
    runs = [setting_run(PAIR, 0.1, seed, "baseline", paths) for seed in (0, 1)]
    assert runs[0].name == f"{PAIR} 10% seed 0 baseline" and runs[0].output.parent.name == "0.1_0"
    scores = {"p": 0.5, "r": 0.7, "f": 0.6, "per_type": {"Gene": {"p": 0.5, "r": 0.7, "f": 0.6}}}
    records = [{**run.key, **quality_scores(run, scores, {**scores, "f": f1}, 12.34)} for run, f1 in zip(runs, (0.6, 0.8))]
    assert records[0]["model"].startswith("benchmarks/work/target/") and records[0]["train_seconds"] == 12.3
    (row,) = summarize(records)
    assert (row["pair"], row["fraction"], row["system"], row["seeds"]) == (PAIR, 0.1, "baseline", 2)
    assert abs(row["test_f1"] - 0.7) < 1e-9 and abs(row["per_type"]["Gene"] - 0.6) < 1e-9
    assert records[0]["gates"] == {}  # the baseline has no gates
    with_vectors = setting_run(PAIR, 0.1, 0, "baseline", paths, "model2vec")
    records.append({**with_vectors.key, **quality_scores(with_vectors, scores, {**scores, "f": 0.1}, 1.0)})
    kept = latest(records)
    assert len(kept) == 3  # the run with vectors replaces no run without them
    assert [(r["system"], r["seeds"], round(r["test_f1"], 6)) for r in summarize(kept)] == [
        ("baseline", 2, 0.7), ("baseline+model2vec", 1, 0.1)]


def test_a_dtn_record_holds_its_dev_gates(tmp_path):
    paths = {"dev": tmp_path / "dev.spacy", "test": tmp_path / "test.spacy"}
    runs = [dataclasses.replace(setting_run(PAIR, 0.1, 0, system, paths), output=tmp_path / system)
            for system in ("dtn_sequential", "scheme:word_lstm")]
    for run in runs:
        saved_pipeline(run.output / "model-best", "dtn.cfg", ["Gene"], ["GENE"])
    assert run_gates(runs[0]) == GATES
    assert run_gates(runs[1]) == {}  # a fixed scheme has no gates to read


def test_only_runs_of_each_systems_current_config_count():
    redone_old, redone = {**RECORDS[0], "config": "old"}, {**RECORDS[0], "test_f1": 0.9}
    not_redone, same_config = {**RECORDS[1], "config": "old"}, RECORDS[2]
    # A scheme whose only runs predate a change of scheme.cfg no longer stands for "the best scheme".
    stale_scheme = {**RECORDS[5], "config": "old"}
    earlier_rule = {**RECORDS[3], "budget": "600-steps", "config": "old"}
    kept = latest([redone_old, not_redone, same_config, stale_scheme, redone, earlier_rule])
    assert kept == [redone, same_config, earlier_rule]


def test_a_changed_setting_changes_the_config_digest_and_a_comment_does_not(tmp_path):
    config = (CONFIGS / "dtn.cfg").read_text(encoding="utf8")
    for name, text in [("same", config), ("comment", "# a note\n" + config),
                       ("rate", config.replace("gate_learn_rate_scale = 10.0", "gate_learn_rate_scale = 1.0"))]:
        (tmp_path / f"{name}.cfg").write_text(text, encoding="utf8")
    digest = {name: config_digest(tmp_path / f"{name}.cfg") for name in ("same", "comment", "rate")}
    assert digest["same"] == digest["comment"] == config_digest(CONFIGS / "dtn.cfg") != digest["rate"]


@pytest.mark.parametrize("config_name,neutral,active", [
    ("dtn_trf.cfg", "bfloat16 = false", "bfloat16 = true"),
    ("dtn.cfg", "map_labels_by_overlap = null", "map_labels_by_overlap = 0.4"),
    ("dtn.cfg", "lowercase_capitals = true", "lowercase_capitals = false"),
    ("baseline.cfg", "lowercase_capitals = true", "lowercase_capitals = false"),
])
def test_a_setting_spelled_out_at_its_neutral_value_keeps_the_digest(tmp_path, config_name, neutral, active):
    """bfloat16 = false trains and scores as a config without it, and so does
    map_labels_by_overlap = null (no label pairs inferred): the grid's records stay
    current; their active values can change a run, so they count."""
    config = (CONFIGS / config_name).read_text(encoding="utf8")
    assert neutral in config
    for name, text in [("without", config.replace(neutral + "\n", "")), ("on", config.replace(neutral, active))]:
        (tmp_path / f"{name}.cfg").write_text(text, encoding="utf8")
    assert config_digest(tmp_path / "without.cfg") == config_digest(CONFIGS / config_name) != config_digest(tmp_path / "on.cfg")


@pytest.mark.parametrize("schemes,quick,expected", [(None, False, [0.1]), (None, True, []), (False, False, []), (True, True, [0.1])])
def test_schemes_are_trained_in_the_grid_unless_asked_not_to(schemes, quick, expected):
    assert scheme_fractions(schemes, quick) == expected


@pytest.mark.parametrize("command", [["-m", "benchmarks.run"], ["benchmarks/run.py"]])
def test_runs_from_the_repository_root_as_a_module_or_a_script(command):
    result = subprocess.run([sys.executable, *command, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "--quick" in result.stdout and "python -m benchmarks.run" in result.stdout


def test_logged_steps_reads_the_last_and_the_best_row(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("\n".join([
        "E    #       LOSS NER  ENTS_F  ENTS_P  ENTS_R  SCORE ",
        "---  ------  --------  ------  ------  ------  ------",
        "  0       0     53.40   41.32   41.35   41.30    0.41",
        "  3     200   2703.37   72.86   75.07   70.78    0.73",
        "  7     400    353.44   71.49   77.00   68.49    0.72",
        " 10     600    107.87   73.10   70.41   74.08    0.73",  # SCORE ties with step 200: ENTS_F decides
        " 14     800     49.66   71.62   72.89   70.39    0.72",
        " 17    1000     40.12   73.10   70.41   74.08    0.73",  # a tie goes to the later step, as model-best does
        " 20    1200     30.02   71.00   72.89   70.39    0.71",
        "✔ Saved pipeline to output directory",
    ]), encoding="utf8")
    assert logged_steps(log) == (1200, 1000)
    (tmp_path / "empty.log").write_text("spacy train failed\n", encoding="utf8")
    with pytest.raises(ValueError, match="no evaluation rows"):
        logged_steps(tmp_path / "empty.log")


def test_a_changed_source_config_trains_its_own_source(tmp_path, monkeypatch):
    """A source trained under an earlier source config is never reused: its
    targets' configs may no longer fit it (other word features, sizes)."""
    config = tmp_path / "source.cfg"
    text = (CONFIGS / "source.cfg").read_text(encoding="utf8")
    config.write_text(text, encoding="utf8")
    monkeypatch.setitem(grid.SOURCE_CONFIGS, "dtn", config)
    pair = next(iter(grid.PAIRS))
    before = grid.source_model_path("dtn", pair)
    assert before == grid.source_model_path("dtn", pair)
    config.write_text(text.replace("dropout = 0.5", "dropout = 0.3", 1), encoding="utf8")
    after = grid.source_model_path("dtn", pair)
    assert after != before and after.parent.parent == before.parent.parent


def test_a_run_with_vectors_is_a_cell_of_its_own_and_every_system_reads_them(tmp_path, monkeypatch):
    """With --vectors a run has its own key and folder (the records without
    vectors stay valid), its source pipeline is another, and both our configs
    and spaCy's read the table (spaCy's tok2vec only when told to)."""

    monkeypatch.setattr(bench_run, "pair_vectors", lambda method, pair: tmp_path / method)
    monkeypatch.setattr(bench_run, "source_model", lambda kind, pair, paths, vectors=None: grid.source_model_path(kind, pair, vectors))
    paths = {"train": "train", "dev": "dev", "test": "test", "source_train": "source"}
    plain, read = (setting_run(PAIR, 0.1, 0, "dtn_sequential", paths, vectors) for vectors in (None, "model2vec"))
    assert plain.key["vectors"] is None and read.key == {**plain.key, "vectors": "model2vec"}
    assert read.output.name == "dtn_sequential_model2vec" and plain.output.parent == read.output.parent
    trainings = {system: bench_run.system_run(system, PAIR, paths, 0, "model2vec")
                 for system in ("dtn_sequential", "spacy_ner_transfer", "spacy_ner_target", "baseline")}
    for config, settings in trainings.values():  # each override names a setting its config has
        spacy.util.load_config(config, overrides={k: str(v) if isinstance(v, Path) else v for k, v in settings.items()})
    overrides = {system: settings for system, (_, settings) in trainings.items()}
    assert all(o["paths.vectors"] == tmp_path / "model2vec" for o in overrides.values())
    flag = next(iter(grid.SPACY_READS_VECTORS))
    assert overrides["spacy_ner_target"][flag] is True
    # the transfer config sources its tok2vec, which has no such setting to override
    assert not any(flag in overrides[system] for system in ("spacy_ner_transfer", "dtn_sequential", "baseline"))
    source = overrides["dtn_sequential"]["paths.source_model"]
    assert source.parent.name.endswith("_model2vec") and source != grid.source_model_path("dtn", PAIR)
    assert "paths.vectors" not in bench_run.system_run("baseline", PAIR, paths, 0)[1]


def test_a_dev_check_trains_with_its_overrides_once(tmp_path, monkeypatch):
    """The candidate's overrides reach `spacy train` on top of the grid's, the
    record holds its dev F1 and dev gates, and a recorded check is not trained again."""
    from benchmarks import dev_check
    from spacy_dtn import runs

    calls = []

    def train(config, output, overrides, use_gpu):
        calls.append(overrides)
        saved_pipeline(output / "model-best", "dtn.cfg", ["Gene"], ["GENE"])
        (output / "train.log").write_text(" 0  0  1.0  50.00  0.50\n 3  200  2.0  70.00  0.70\n", encoding="utf8")
        return 12.3

    scores = {"p": 0.5, "r": 0.7, "f": 0.6, "per_type": {}}
    monkeypatch.setattr(dev_check, "WORK", tmp_path / "work")
    monkeypatch.setattr(dev_check, "corpora", lambda pair, fraction, seed: {"dev": "dev", "test": "test"})
    monkeypatch.setattr(dev_check, "system_run", lambda system, pair, paths, seed, vectors: ("dtn.cfg", {"system.seed": seed}))
    monkeypatch.setattr(runs, "train_in_subprocess", train)
    monkeypatch.setattr(runs, "evaluate", lambda model, corpus: {**scores, "f": 0.6 if corpus == "dev" else 0.8})
    checks = tmp_path / "checks.json"
    extra = dev_check.parse_overrides(["components.ner.model.shared_learn_rate_scale=0.3"])
    for _ in range(2):
        runs.run_all([dev_check.check_run("slow_shared", "dtn_sequential", PAIR, 0.25, 1, extra)], checks,
                     dev_check.check_scores)
    assert calls == [{"system.seed": 1, "components.ner.model.shared_learn_rate_scale": "0.3"}]
    (record,) = srsly.read_json(checks)
    assert (record["dev_f1"], record["test_f1"]) == pytest.approx((0.6, 0.8))
    assert (record["steps"], record["best_step"]) == (200, 200)
    assert record["gates"] == GATES and record["overrides"] == extra
    with pytest.raises(SystemExit, match="section.key=value"):
        dev_check.parse_overrides(["learn_rate"])
    with_vectors = dev_check.check_run("slow_shared", "dtn_sequential", PAIR, 0.25, 1, extra, "model2vec")
    assert with_vectors.output.name == "dtn_sequential_model2vec"  # beside the run without, not over it


def test_shards_split_the_planned_runs_between_runners():
    planned = list(range(7))
    first, second = runner_shard(planned, "1/2"), runner_shard(planned, "2/2")
    assert sorted(first + second) == planned and not set(first) & set(second)
    assert runner_shard(planned, "1/1") == planned
    for bad in ("0/2", "3/2", "2", "a/b"):
        with pytest.raises(SystemExit, match="k/n"):
            runner_shard(planned, bad)


def test_one_fixed_scheme_can_be_named_as_a_system():
    assert system_name("scheme:word_embed+word_lstm") == "scheme:word_embed+word_lstm"
    assert system_name("dtn_sequential") == "dtn_sequential"
    for bad in ("scheme:word_lstm+word_embed", "scheme:tagger", "dtn"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a system"):
            system_name(bad)


def test_precision_f1_scores_each_pipeline_in_float_and_in_int8_on_dev_and_test(target_model, corpus_dir, tmp_path, monkeypatch):
    """benchmarks/precision_f1.py: one row per pipeline and precision, each loaded
    with `quantize` as the row says, scored as spaCy's scorer scores it."""
    from benchmarks import precision_f1

    for split in ("dev", "test"):
        (tmp_path / f"target_{split}.spacy").write_bytes((corpus_dir / "target.spacy").read_bytes())
    monkeypatch.setattr(precision_f1, "CORPUS", tmp_path)
    loaded = []
    load = spacy.load
    monkeypatch.setattr(spacy, "load", lambda path, config: loaded.append(config) or load(path, config=config))
    precision_f1.main([str(tmp_path / "rows.json"), str(target_model)])
    rows = srsly.read_json(tmp_path / "rows.json")
    assert [row["quantize"] for row in rows] == [False, True]
    assert [config["components"]["ner"]["quantize"] for config in loaded] == [False, True]
    nlp = load(target_model)  # spacy.load is the recording one here
    examples = [Example(nlp.make_doc(d.text), d) for d in DocBin().from_disk(corpus_dir / "target.spacy").get_docs(nlp.vocab)]
    float_f1 = round(nlp.evaluate(examples)["ents_f"] * 100, 2)
    assert rows[0]["dev_f1"] == rows[0]["test_f1"] == float_f1 > 0
    assert rows[1]["dev_f1"] == rows[1]["test_f1"]


def test_gpu_check_compares_two_loads_and_fails_when_the_weights_stay_on_the_cpu(target_model, corpus_dir, monkeypatch, capsys):
    """benchmarks/gpu_check.py on a machine without a GPU, `require_gpu` made a
    no-op: both loads run on the CPU, so they agree entity for entity, and the
    check fails because the second pipeline's weights are not on cuda."""
    from benchmarks import gpu_check

    monkeypatch.setattr(spacy, "require_gpu", lambda gpu_id: True)
    with pytest.raises(SystemExit, match="on \\['cpu'\\], not cuda"):
        gpu_check.main([str(target_model), str(corpus_dir / "target.spacy")])
    report = json.loads(capsys.readouterr().out)
    assert report["entities_cpu"] == report["entities_gpu"] > 0
    assert report["entities_differing"] == 0 and report["max_confidence_diff"] == 0
    assert report["f1_cpu"] == report["f1_gpu"] > 0


def test_a_source_cut_off_mid_training_is_trained_again_and_a_finished_one_is_reused(tmp_path, monkeypatch):
    """spaCy writes model-best at every improving evaluation, so a source whose
    training was cut off has one too: only the record written at its end counts."""
    trained = []

    def train(config, output, overrides, use_gpu=-1):
        trained.append(output)
        (output / "model-best").mkdir(parents=True, exist_ok=True)
        (output / "train.log").write_text("E    #       LOSS NER  ENTS_F  SCORE\n 0     200    1.00   0.50    0.50\n 1     400    0.50   0.60    0.60\n",
                                          encoding="utf8")
        return 12.5

    monkeypatch.setattr(grid, "WORK", tmp_path)
    monkeypatch.setattr(bench_run, "train_in_subprocess", train)
    pair = next(iter(grid.PAIRS))
    paths = {"source_train": "train", "source_dev": "dev"}
    (grid.source_model_path("dtn", pair)).mkdir(parents=True)  # cut off: model-best, no record
    model = bench_run.source_model("dtn", pair, paths)
    assert trained == [model.parent]
    assert srsly.read_json(model.parent / bench_run.SOURCE_RECORD) == {"train_seconds": 12.5, "steps": 400, "best_step": 400}
    assert bench_run.source_model("dtn", pair, paths) == model and len(trained) == 1


def iob_labels(tsv: Path) -> set:
    """The entity types an IOB file of the shipped assets tags."""
    tags = (line.rsplit("\t", 1)[-1].strip() for line in tsv.read_text(encoding="utf8").splitlines() if "\t" in line)
    return {tag.split("-", 1)[1] for tag in tags if tag != "O"}


def test_check_pairs_run_only_when_named_and_map_labels_their_corpora_have(monkeypatch):
    """The check pairs test the defaults on data they were not chosen on: the
    default grid leaves them out, `--pairs` takes each, and every label map (the
    grid's and the checks') names a source type onto a target type that exist."""
    planned = []
    monkeypatch.setattr(bench_run, "quality", lambda pairs, *args, **kwargs: planned.append(pairs))
    monkeypatch.setattr(bench_run, "write_results", lambda *args: None)
    bench_run.main(["--fractions", "0.1"])
    for check in grid.CHECK_PAIRS:
        bench_run.main(["--pairs", check, "--fractions", "0.1"])
    assert planned == [list(grid.PAIRS), *([check] for check in grid.CHECK_PAIRS)]
    assert not set(grid.CHECK_PAIRS) & set(grid.PAIRS)
    for pair, mapping in grid.LABEL_MAPS.items():
        source, target = grid.ALL_PAIRS[pair]
        assert set(mapping) <= iob_labels(ROOT / "assets" / source / "train.tsv")
        assert set(mapping.values()) <= iob_labels(ROOT / "assets" / target / "train.tsv")


def test_line_break_notes_keep_their_gold_offsets():
    nlp = spacy.blank("en")
    first = nlp.make_doc("Colon cancer was found .")
    first.ents = [first.char_span(0, 12, "Disease")]
    second = nlp.make_doc("No signs of asthma in a patient with a long history of ataxia telangiectasia .")
    second.ents = [second.char_span(12, 18, "Disease"), second.char_span(55, 76, "Disease")]
    for separator in (" ", "  ", "\n\n"):
        ((text, gold),) = line_breaks.joined_notes([first, second], separator, sentences=10)
        assert sorted(text[s:e] for s, e, _ in gold) == ["Colon cancer", "asthma", "ataxia telangiectasia"]
    wrapped = line_breaks.hard_wrapped(text.replace("\n\n", " "), width=40)
    assert len(wrapped) == len(text) - 1 and "\n" in wrapped
    assert all(len(line) <= 40 for line in wrapped.split("\n"))
    assert wrapped.replace("\n", " ") == text.replace("\n\n", " ")


def test_entity_lists_hold_the_entities_alone_with_their_offsets():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("No asthma , colon cancer or renal failure here .")
    doc.ents = [doc.char_span(3, 9, "Disease"), doc.char_span(12, 24, "Disease"), doc.char_span(28, 41, "Disease")]
    notes = line_breaks.entity_lists([doc, doc], "\t", per_note=4)
    assert [text for text, _ in notes] == ["asthma\tcolon cancer\trenal failure\tasthma", "colon cancer\trenal failure"]
    assert all(sorted(text[s:e] for s, e, _ in gold) == sorted(text.split("\t")) for text, gold in notes)
    numbered = line_breaks.entity_lists([doc, doc], "\n", per_note=4, marks=["1. ", "2. ", "3. ", "4. "])
    assert numbered[0][0] == "1. asthma\n2. colon cancer\n3. renal failure\n4. asthma"
    assert numbered[1][0] == "1. colon cancer\n2. renal failure"
    assert all(sorted(text[s:e] for s, e, _ in gold) == sorted(line[3:] for line in text.split("\n")) for text, gold in numbered)


def test_non_breaking_notes_turn_a_seeded_share_of_spaces_and_move_no_offset():
    text = " ".join(["word"] * 2001)
    spaced = line_breaks.non_breaking(text, 0.1, random.Random(0))
    assert spaced.replace("\u00a0", " ") == text and 150 < spaced.count("\u00a0") < 250
    assert spaced == line_breaks.non_breaking(text, 0.1, random.Random(0)) != line_breaks.non_breaking(text, 0.1, random.Random(1))
    assert line_breaks.non_breaking(text, 1.0, random.Random(0)) == text.replace(" ", "\u00a0")


def test_character_notes_move_their_gold_offsets_with_the_text():
    text = "cystic fibrosis , an affliction of efflux , in fifty"
    gold = {(0, 15, "Disease"), (21, 31, "Disease"), (35, 41, "X")}  # "cystic fibrosis", "affliction", "efflux"
    new, moved = characters.with_ligatures((text, gold))
    assert new == "cystic \ufb01brosis , an a\ufb04iction of e\ufb04ux , in \ufb01fty"
    assert sorted(new[s:e] for s, e, _ in moved) == ["a\ufb04iction", "cystic \ufb01brosis", "e\ufb04ux"]
    hyphenated, moved = characters.with_soft_hyphens((text, gold))
    assert hyphenated == "cystic fibr\u00adosis , an affl\u00adiction of efflux , in fifty"
    assert sorted(hyphenated[s:e] for s, e, _ in moved) == ["affl\u00adiction", "cystic fibr\u00adosis", "efflux"]
    marked, moved = characters.with_byte_order_mark((text, gold))
    assert marked == "\ufeff" + text and moved == {(s + 1, e + 1, label) for s, e, label in gold}
    wide, same = characters.full_width((text, gold))
    assert len(wide) == len(text) and same == gold and wide[:6] == "\uff43\uff59\uff53\uff54\uff49\uff43"


def test_line_break_scores_count_exact_offsets_and_whitespace_edges():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([
        {"label": "Disease", "pattern": "asthma"},
        {"label": "Disease", "pattern": [{"IS_SPACE": True}, {"LOWER": "colon"}]},
    ])
    text = "No asthma ,\ncolon cancer ."  # gold: asthma, colon cancer; found: asthma, "\ncolon"
    got = line_breaks.scores(nlp, [(text, {(3, 9, "Disease"), (12, 24, "Disease")})])
    assert got == {"f1": 50.0, "precision": 50.0, "recall": 50.0, "whitespace_edges": 1}


def test_capitals_notes_upper_case_a_share_of_their_lines_and_keep_their_gold_offsets():
    nlp = spacy.blank("en")
    docs = []
    for i in range(20):
        doc = nlp.make_doc(f"Case {i} of colon cancer .")
        doc.ents = [doc.char_span(len(f"Case {i} of "), len(f"Case {i} of colon cancer"), "Disease")]
        docs.append(doc)
    notes = capitals.notes_with_capitals(docs, sentences=10, share=0.3, seed=0)
    lines = [line for text, _ in notes for line in text.split("\n")]
    assert len(notes) == 2 and len(lines) == 20 and 0 < sum(line.isupper() for line in lines) < 20
    assert all(text[s:e].lower() == "colon cancer" for text, gold in notes for s, e, _ in gold)
    assert capitals.notes_with_capitals(docs, 10, 0.3, seed=0) == notes  # seeded
    assert capitals.upper_cased("Morbus Straße") == "Morbus Straße"  # its length would change
    layouts = capitals.layouts(docs, 10, 0.3, 0)
    assert [text for text, _ in layouts["capitals"]] == [d.text.upper() for d in docs]
    assert [gold for _, gold in layouts["capitals"]] == [gold for _, gold in layouts["as_is"]]
