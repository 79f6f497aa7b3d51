"""The `all` and `transformer` workflows end to end on a tiny configuration:
small subsets of the shipped corpora, a few steps. Checks the report they
write and the package."""
import shutil
import subprocess
import tarfile
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
import srsly
from weasel.util.config import load_project_config

ROOT = Path(__file__).parent.parent


def head_sentences(source: Path, dest: Path, n: int) -> None:
    sentences = source.read_text(encoding="utf8").split("\n\n")[:n]
    dest.write_text("\n\n".join(sentences) + "\n", encoding="utf8")


def run_workflow(project: Path, args: List[str], workflow: str) -> str:
    """Run a workflow; return what it printed."""
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", workflow, str(project), *args],
        capture_output=True, text=True, cwd=project,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout + result.stderr


PATH_VARS = ["source_train", "source_dev", "target_train", "target_dev", "target_test"]


@pytest.mark.parametrize("path", ["/data/n2c2/train", "corpora/ours/train.tsv", "../data/notes"])
def test_convert_depends_on_exactly_the_given_paths(tmp_path, path):
    shutil.copy(ROOT / "project.yml", tmp_path)
    config = load_project_config(tmp_path, overrides={f"vars.{name}": path for name in PATH_VARS})
    (convert,) = [command for command in config["commands"] if command["name"] == "convert"]
    assert [tmp_path / dep for dep in convert["deps"]] == [tmp_path / path] * len(PATH_VARS)


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory) -> Tuple[Path, List[str]]:
    """A copy of the project on small subsets of the shipped corpora, 20 steps per training."""
    project = tmp_path_factory.mktemp("tiny").resolve() / "project"
    project.mkdir()
    shutil.copy(ROOT / "project.yml", project)
    shutil.copytree(ROOT / "configs", project / "configs")
    (project / "assets").mkdir()
    for name in ["LICENSE-CC-BY-4.0.md", "README.md"]:  # the packaged pipeline's licenses
        shutil.copy(ROOT / "assets" / name, project / "assets" / name)
    tiny = project / "tiny"
    tiny.mkdir()
    for corpus, split, n in [("BC5CDR-IOB", "train", 120), ("BC5CDR-IOB", "devel", 40),
                             ("NCBI-disease-IOB", "train", 400), ("NCBI-disease-IOB", "devel", 40),
                             ("NCBI-disease-IOB", "test", 40)]:
        head_sentences(ROOT / "assets" / corpus / f"{split}.tsv", tiny / f"{corpus}-{split}.tsv", n)
    # Source paths absolute, target paths relative to the project: both must work.
    overrides = {
        "source_train": str(tiny / "BC5CDR-IOB-train.tsv"), "source_dev": str(tiny / "BC5CDR-IOB-devel.tsv"),
        "source_dev_count": 30, "target_train": "tiny/NCBI-disease-IOB-train.tsv",
        "target_dev": "tiny/NCBI-disease-IOB-devel.tsv", "target_test": "tiny/NCBI-disease-IOB-test.tsv",
        "target_fraction": 0.1, "source_steps": 20, "target_steps": 20, "eval_frequency": 10,
    }
    return project, [f"--vars.{k}={v}" for k, v in overrides.items()]


def test_all_workflow_on_tiny_data(tiny_project):
    project, args = tiny_project
    printed = run_workflow(project, args, "all")

    # 10% of 400 sentences, seeded.
    from spacy.tokens import DocBin
    assert len(DocBin().from_disk(project / "corpus/target/train.spacy")) == 40
    results = srsly.read_json(project / "reports/results.json")
    systems = {s["system"]: s for s in results["systems"]}
    assert set(systems) == {"baseline", "dtn"}
    for s in systems.values():
        assert 0.0 <= s["test"]["f"] <= 1.0
    # Only gated layers have gates; the baseline has none, and the output layer is private
    # because BC5CDR and NCBI-disease have different labels.
    assert systems["baseline"]["gates"] == {}
    assert set(systems["dtn"]["gates"]) == {"char_embed", "char_lstm", "word_embed", "word_lstm"}
    assert systems["dtn"]["gate_notes"] == {"output": "private (label sets differ)"}
    assert 0.0 < systems["dtn"]["gates"]["word_lstm"] < 1.0
    table = (project / "reports/results.md").read_text()
    assert "| baseline | — | — | — | — | — | — |" in table and "| private (label sets differ) |" in table
    assert "| dtn | 0.881 |" in table  # where dtn.cfg starts its gates: sigmoid(gate_bias = 2)
    calibration = srsly.read_json(project / "metrics/calibration.json")
    assert set(calibration) == {"dev", "test"} and calibration["dev"]["before"]["temperature"] == 1.0
    for image in ["f1.png", "gates.png", "reliability.png"]:
        assert (project / "reports" / image).read_bytes()[:4] == b"\x89PNG"
    (sdist,) = (project / "packages").glob("*/dist/*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {Path(name).name for name in archive.getnames()}
    assert {"LICENSE", "LICENSES_SOURCES"} <= names
    assert "no files found matching" not in printed
    assert "without the 'build' package" not in printed
    report = srsly.read_json(project / "corpus/target/train.report.json")
    assert report["totals"]["docs_written"] == 40 and report["format"] == "iob"


def test_transformer_workflow_adds_the_transformer_dtn(tiny_project):
    project, args = tiny_project
    run_workflow(project, args, "transformer")
    systems = {s["system"]: s for s in srsly.read_json(project / "reports/results.json")["systems"]}
    assert set(systems) == {"baseline", "dtn", "dtn_trf"}
    assert set(systems["dtn_trf"]["gates"]) == {"vector_proj", "word_lstm"}
    assert 0.0 < systems["dtn_trf"]["gates"]["vector_proj"] < 1.0
    assert 0.0 <= systems["dtn_trf"]["test"]["f"] <= 1.0
    table = (project / "reports/results.md").read_text()
    assert "| dtn_trf |" in table and "vector_proj" in table
