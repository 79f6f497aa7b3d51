"""Transfer levers: the target's output rows for labels it shares with the
source start from the source's (by name or by a label map)."""
from pathlib import Path
from typing import Dict, List, Sequence

import pytest
import spacy
import torch
from spacy.training.initialize import init_nlp
from spacy.util import fix_random_seed, load_config

from spacy_dtn.plan import TARGET
from spacy_dtn.pytorch_tagger import OutputLayer
from spacy_dtn.tag_scheme import make_tag_names
from spacy_dtn.tagger_model import get_torch_module
from conftest import SMALL_SETTINGS, examples, make_nlp

CONFIGS = Path(__file__).parent.parent / "configs"
DTN = {"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1", "gated": ["char_embed", "char_lstm", "word_embed", "word_lstm"]}


@pytest.fixture(scope="module")
def source_path(corpus_dir, tmp_path_factory) -> Path:
    """A source pipeline (Chemical, Disease) whose output layer holds random values
    everywhere, CRF included, so that no copied entry matches a fresh one by chance."""
    nlp = make_nlp({"@architectures": "spacy_dtn.BiLSTMTransferTagger.v1"})
    nlp.initialize(lambda: examples(nlp, corpus_dir / "source.spacy", TARGET))
    with torch.no_grad():
        for param in source_output(nlp).parameters():
            param.copy_(torch.randn_like(param))
    path = tmp_path_factory.mktemp("levers") / "source"
    nlp.to_disk(path)
    return path


def source_output(nlp) -> OutputLayer:
    return get_torch_module(nlp.get_pipe("ner").model).layers["output"][TARGET]


def target_output(corpus_dir: Path, source: Path, labels: Sequence[str], **settings) -> OutputLayer:
    """The target's output copy after a seeded sequential initialize."""
    nlp = make_nlp(DTN)
    fix_random_seed(0)
    nlp.get_pipe("ner").initialize(
        lambda: examples(nlp, corpus_dir / "target.spacy", TARGET), nlp=nlp, labels=list(labels),
        source_model=str(source), **settings,
    )
    return get_torch_module(nlp.get_pipe("ner").model).layers["output"][TARGET]


def expected_rows(target_labels: List[str], source_labels: List[str], pairs: Dict[str, str]) -> Dict[int, int]:
    """Target tag index -> source tag index, spelt out by tag name."""
    target_tags = make_tag_names(target_labels, "BILUO")
    source_tags = make_tag_names(source_labels, "BILUO")
    rows = {0: 0}
    for target, source in pairs.items():
        for prefix in "BILU":
            rows[target_tags.index(f"{prefix}-{target}")] = source_tags.index(f"{prefix}-{source}")
    return rows


def assert_rows(copied: OutputLayer, fresh: OutputLayer, source: OutputLayer, rows: Dict[int, int]) -> None:
    """Rows in `rows` equal the source's, every other entry equals the fresh model's."""
    for name in ("linear.weight", "linear.bias", "start", "end", "transitions"):
        expected = dict(fresh.named_parameters())[name].detach().clone()
        origin = dict(source.named_parameters())[name].detach()
        for to, of in rows.items():
            if name == "transitions":
                for to2, of2 in rows.items():
                    expected[to, to2] = origin[of, of2]
            else:
                expected[to] = origin[of]
        assert torch.equal(dict(copied.named_parameters())[name], expected), name


def test_common_rows_start_from_the_source_and_the_rest_stays_fresh(corpus_dir, source_path):
    labels = ["Disease", "Symptom"]
    copied = target_output(corpus_dir, source_path, labels, transfer_output=True)
    fresh = target_output(corpus_dir, source_path, labels)
    source = source_output(spacy.load(source_path))
    rows = expected_rows(labels, ["Chemical", "Disease"], {"Disease": "Disease"})
    assert len(rows) == 5 and not torch.equal(copied.linear.weight, fresh.linear.weight)
    assert_rows(copied, fresh, source, rows)


def test_label_map_starts_a_differently_named_label_from_the_source(corpus_dir, source_path):
    labels = ["Disease", "Symptom"]
    copied = target_output(corpus_dir, source_path, labels, transfer_output=True, label_map={"Chemical": "Symptom"})
    fresh = target_output(corpus_dir, source_path, labels)
    source = source_output(spacy.load(source_path))
    rows = expected_rows(labels, ["Chemical", "Disease"], {"Disease": "Disease", "Symptom": "Chemical"})
    assert_rows(copied, fresh, source, rows)


def test_a_mapped_label_is_not_also_matched_by_name(corpus_dir, source_path):
    labels = ["Disease", "Symptom"]
    copied = target_output(corpus_dir, source_path, labels, transfer_output=True, label_map={"Disease": "Symptom"})
    fresh = target_output(corpus_dir, source_path, labels)
    source = source_output(spacy.load(source_path))
    assert_rows(copied, fresh, source, expected_rows(labels, ["Chemical", "Disease"], {"Symptom": "Disease"}))


@pytest.mark.parametrize("label_map,message", [
    ({"GENE": "Disease"}, r"source \['GENE'\] \(the source has \['Chemical', 'Disease'\]\), target none"),
    ({"Chemical": "Gene"}, r"source none .* target \['Gene'\] \(the target has \['Disease'\]\)"),
    ({"Chemical": "Disease", "Disease": "Disease"}, r"maps several source labels to \['Disease'\]"),
])
def test_label_map_naming_unknown_labels_is_an_error(corpus_dir, source_path, label_map, message):
    with pytest.raises(ValueError, match=r"label_map in \[initialize.components.ner\] .*" + message):
        target_output(corpus_dir, source_path, ["Disease"], transfer_output=True, label_map=label_map)


def test_label_map_without_a_source_pipeline_is_an_error(corpus_dir):
    nlp = make_nlp(DTN)
    with pytest.raises(ValueError, match="label_map is set in .* but source_model is not"):
        nlp.get_pipe("ner").initialize(lambda: examples(nlp, corpus_dir / "target.spacy", TARGET),
                                       nlp=nlp, label_map={"Chemical": "Disease"})


@pytest.mark.parametrize("config", ["dtn.cfg", "scheme.cfg", "dtn_trf.cfg"])
def test_sequential_configs_name_the_levers_where_spacy_users_look(config):
    section = load_config(CONFIGS / config)["initialize"]["components"]["ner"]
    assert section["label_map"] == {} and isinstance(section["transfer_output"], bool)


def test_config_label_map_reaches_initialize(corpus_dir, source_path):
    """Through spaCy's own init_nlp, as `spacy train` reads [initialize.components.ner]."""
    overrides = {f"components.ner.model.settings.{k}": v for k, v in SMALL_SETTINGS.items() if k != "@misc"}
    target = str(corpus_dir / "target.spacy")
    config = load_config(CONFIGS / "dtn.cfg", overrides={
        **overrides, "paths.train": target, "paths.dev": target, "paths.source_model": str(source_path),
        "initialize.components.ner.transfer_output": True,
        "initialize.components.ner.label_map": {"Chemical": "Disease"},
    })
    nlp = init_nlp(config)
    copied = get_torch_module(nlp.get_pipe("ner").model).layers["output"][TARGET]
    source = source_output(spacy.load(source_path))
    rows = expected_rows(["Disease"], ["Chemical", "Disease"], {"Disease": "Chemical"})
    assert all(torch.equal(copied.linear.weight[to], source.linear.weight[of]) for to, of in rows.items())
