"""The exhaustive scheme search: every subset, progress, resumable results; and
the runner it shares with the benchmarks (spacy_dtn/runs.py)."""
import pytest
import srsly

from conftest import CONFIGS
from spacy_dtn.plan import SHARABLE_LAYERS, VECTOR_LAYERS
from spacy_dtn.runs import add_record, train_in_subprocess
from spacy_dtn.search import all_schemes, run_search, scheme_name, scheme_overrides


def test_all_schemes_counts():
    assert len(all_schemes(output_sharable=False)) == 16
    assert len(all_schemes(output_sharable=True)) == 32
    assert ["char_embed", "word_lstm"] in all_schemes(False)
    assert not any("output" in s for s in all_schemes(False))
    assert scheme_name([]) == "scheme:none"
    assert scheme_name(["char_embed", "word_lstm"]) == "scheme:char_embed+word_lstm"


def test_scheme_layers_come_from_the_config_architecture():
    """scheme.cfg searches the BiLSTM-CRF's layers; dtn_trf.cfg the layers above
    the transformer; both with their gates switched off (both architectures have `gated`)."""
    fixed = {"components.ner.model.gated": []}
    assert scheme_overrides(CONFIGS / "scheme.cfg") == {"layers": list(SHARABLE_LAYERS), "fixed": fixed}
    assert scheme_overrides(CONFIGS / "dtn.cfg") == {"layers": list(SHARABLE_LAYERS), "fixed": fixed}
    trf = scheme_overrides(CONFIGS / "dtn_trf.cfg")
    assert trf == {"layers": list(VECTOR_LAYERS), "fixed": fixed}
    assert len(all_schemes(False, trf["layers"])) == 4


def test_search_trains_ranks_and_resumes(corpus_dir, source_model, tmp_path, capsys):
    target = corpus_dir / "target.spacy"
    overrides = {
        "paths.train": str(target), "paths.dev": str(target), "paths.source_model": str(source_model),
        "training.max_steps": 30, "training.eval_frequency": 15, "training.logger.progress_bar": False,
    }
    results_path = tmp_path / "search.json"
    schemes = [[], ["word_lstm"]]
    args = (CONFIGS / "scheme.cfg", tmp_path / "runs", results_path, target, target, overrides,
            ["Chemical", "Disease"], ["Disease"])
    # Stopped after the first scheme: the rerun trains only the second.
    run_search(*args, schemes=schemes[:1])
    assert "[1/1] scheme:none: training" in capsys.readouterr().out
    results = run_search(*args, schemes=schemes)
    out = capsys.readouterr().out
    assert "2 runs planned, 1 done earlier (skipped), 1 to go" in out and "[1/1] scheme:word_lstm: training" in out
    assert [(r["system"], r["shared"]) for r in srsly.read_json(results_path)] == [
        ("scheme:none", []), ("scheme:word_lstm", ["word_lstm"])]
    assert [r["dev"]["f"] for r in results] == sorted((r["dev"]["f"] for r in results), reverse=True)
    assert all(0.0 <= r["test"]["f"] <= 1.0 and r["train_seconds"] > 0 for r in results)
    assert (tmp_path / "runs" / "scheme_word_lstm" / "train.log").stat().st_size > 0
    # A rerun of a finished search trains nothing.
    run_search(*args, schemes=schemes)
    out = capsys.readouterr().out
    assert "2 runs planned, 2 done earlier (skipped), 0 to go" in out and "training (" not in out


def test_add_record_keeps_records_written_by_another_runner(tmp_path):
    path = tmp_path / "quality.json"
    add_record(path, {"system": "a", "seed": 0})
    add_record(path, {"system": "a", "seed": 1})
    assert srsly.read_json(path) == [{"system": "a", "seed": 0}, {"system": "a", "seed": 1}]


def test_failed_training_names_the_command_and_shows_its_log(tmp_path):
    """A missing config: spaCy fails before loading any model code."""
    with pytest.raises(RuntimeError, match=r"(?s)spacy train failed \(exit [1-9].*train\.log.*missing\.cfg"):
        train_in_subprocess(tmp_path / "missing.cfg", tmp_path / "run", {"training.max_steps": 1})
