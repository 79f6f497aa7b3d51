"""Every shipped config is complete (as `spacy init fill-config` writes it)
and passes spaCy's own checks, `spacy debug config` and `spacy debug data`,
on small demo corpora cut from the shipped ones. The CLI runs in-process
(typer's runner), which spares a spaCy import per call."""
from pathlib import Path
from typing import Dict, List

import pytest
from spacy import util
from spacy.cli import app
from spacy.tokens import DocBin
from spacy.training import Example
from typer.testing import CliRunner

from spacy_dtn.converters import convert

ROOT = Path(__file__).parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.cfg")) + sorted((ROOT / "benchmarks" / "configs").glob("*.cfg"))
# Configs whose components are sourced from [paths.source_model]: spaCy loads it to fill them.
SOURCED = {"spacy_ner_transfer.cfg": "spacy_ner.cfg"}
# spacy debug data fails below 100 training documents.
SENTENCES = {"train": 120, "devel": 30}


def head_sentences(source: Path, dest: Path, n: int) -> Path:
    dest.write_text("\n\n".join(source.read_text(encoding="utf8").split("\n\n")[:n]) + "\n", encoding="utf8")
    return dest


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Dict[str, Path]:
    """Demo corpora: the first sentences of NCBI-disease (target) and BC5CDR (source)."""
    root = tmp_path_factory.mktemp("demo")
    paths = {}
    for role, corpus in (("target", "NCBI-disease-IOB"), ("source", "BC5CDR-IOB")):
        for split, n in SENTENCES.items():
            tsv = head_sentences(ROOT / "assets" / corpus / f"{split}.tsv", root / f"{role}-{split}.tsv", n)
            paths[f"{role}_{split}"] = root / f"{role}-{split}.spacy"
            convert("iob", tsv, paths[f"{role}_{split}"])
    return paths


@pytest.fixture(scope="module")
def spacy_source_model(demo, tmp_path_factory) -> Path:
    """An initialized (untrained) pipeline of benchmarks/configs/spacy_ner.cfg, to source from."""
    config = util.load_config(ROOT / "benchmarks" / "configs" / "spacy_ner.cfg")
    nlp = util.load_model_from_config(config, auto_fill=True)
    reference = list(DocBin().from_disk(demo["source_train"]).get_docs(nlp.vocab))
    nlp.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in reference])
    path = tmp_path_factory.mktemp("spacy_source") / "model"
    nlp.to_disk(path)
    return path


def overrides(config: Path, demo: Dict[str, Path], request) -> Dict[str, str]:
    values = {"paths.train": str(demo["target_train"]), "paths.dev": str(demo["target_devel"])}
    if config.name in SOURCED:
        values["paths.source_model"] = str(request.getfixturevalue("spacy_source_model"))
    return values


def cli_args(values: Dict[str, str]) -> List[str]:
    return [arg for key, value in values.items() for arg in (f"--{key}", value)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_config_is_complete_as_fill_config_writes_it(config, demo, request):
    # What spacy.cli.init_config.fill_config does, with the paths a sourced config needs.
    base = util.load_config(config, overrides=overrides(config, demo, request))
    nlp = util.load_model_from_config(base, auto_fill=True, validate=False)
    filled = util.load_model_from_config(nlp.config).config
    filled["components"].update(util.get_sourced_components(base))
    assert filled == base, f"run `spacy init fill-config {config}` and add what it adds"


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_spacy_debug_config(config, demo, request):
    assert "Config is valid" in spacy_cli(["debug", "config", str(config)], overrides(config, demo, request))


# debug data checks the corpora and that the pipeline initializes on them: once per
# train reader (TransferCorpus in the transfer configs, spacy.Corpus in the others),
# to keep the suite short; debug config above validates every config.
@pytest.mark.parametrize("config", ["dtn.cfg", "source.cfg"])
def test_spacy_debug_data(config, demo, request):
    path = ROOT / "configs" / config
    output = spacy_cli(["debug", "data", str(path)], overrides(path, demo, request))
    assert "Corpus is loadable" in output and "Pipeline can be initialized with data" in output


def spacy_cli(args: List[str], values: Dict[str, str]) -> str:
    """Run `python -m spacy ARGS --key value ...` in-process; return its output."""
    result = CliRunner().invoke(app, [*args, *cli_args(values)])
    assert result.exit_code == 0, result.output[-3000:]
    return result.output
