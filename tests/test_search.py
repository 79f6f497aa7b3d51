"""The exhaustive scheme search: every subset, progress, resumable results."""
import srsly

from conftest import CONFIGS
from spacy_dtn.plan import SHARABLE_LAYERS, VECTOR_LAYERS
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
    the transformer, with its gates switched off."""
    assert scheme_overrides(CONFIGS / "scheme.cfg") == {"layers": list(SHARABLE_LAYERS), "fixed": {}}
    trf = scheme_overrides(CONFIGS / "dtn_trf.cfg")
    assert trf == {"layers": list(VECTOR_LAYERS), "fixed": {"components.ner.model.gated": []}}
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
    results = run_search(*args, schemes=schemes)
    out = capsys.readouterr().out
    assert "[1/2] scheme:none: training" in out and "[2/2] scheme:word_lstm: training" in out
    assert {r["system"] for r in results} == {"scheme:none", "scheme:word_lstm"}
    assert [r["dev"]["f"] for r in results] == sorted((r["dev"]["f"] for r in results), reverse=True)
    assert all(0.0 <= r["test"]["f"] <= 1.0 and r["train_seconds"] > 0 for r in results)
    assert len(srsly.read_json(results_path)) == 2
    # A rerun skips what is done and trains nothing.
    run_search(*args, schemes=schemes)
    out = capsys.readouterr().out
    assert out.count("done earlier, skipped") == 2 and "training (" not in out
