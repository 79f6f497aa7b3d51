"""Speed, memory and size of trained pipelines, each measured in a fresh process.

Inference: `nlp.pipe` over the target test set, warm (one pass first), batch
size 256. Training: words/s of `nlp.update` (benchmarks/train_speed.py).
Peak RSS: the serving process's high-water mark after loading and tagging.
All on the `--quick` setting of benchmarks/run.py (grid.QUICK).
"""
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import srsly

from .grid import QUICK, ROOT, corpus_paths, source_model_path

BATCH_SIZE = 256
MEASURED = ["dtn_sequential", "dtn_trf", "baseline", "spacy_ner_target"]
# The source pipeline a system's training starts from (sequential transfer).
SOURCE_KIND = {"dtn_sequential": "dtn", "dtn_trf": "trf"}

SERVE = r"""
import json, sys, time, spacy
from spacy.tokens import DocBin
nlp = spacy.load(sys.argv[1])
texts = [d.text for d in DocBin().from_disk(sys.argv[2]).get_docs(nlp.vocab)]
words = sum(len(nlp.make_doc(t)) for t in texts)
list(nlp.pipe(texts, batch_size=int(sys.argv[3])))
start = time.perf_counter()
list(nlp.pipe(texts, batch_size=int(sys.argv[3])))
seconds = time.perf_counter() - start
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"infer_words_per_s": words / seconds, "peak_rss_mb": int(peak) / 1024}))
"""


def model_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def measure_speed(quality_path: Path, speed_path: Path) -> List[Dict]:
    """Measure each system of MEASURED trained in the quick setting; write and return the measurements."""
    pair, fraction, seed = QUICK
    records = srsly.read_json(quality_path)
    quick = {r["system"]: r for r in records if (r["pair"], r["fraction"], r["seed"]) == QUICK}
    corpus = corpus_paths(pair, fraction, seed)
    out = []
    for system in [s for s in MEASURED if s in quick]:
        model = ROOT / quick[system]["model"]
        served = json.loads(subprocess.run(
            [sys.executable, "-c", SERVE, str(model), str(corpus["test"]), str(BATCH_SIZE)],
            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        config = model / "config.cfg"
        train = subprocess.run(
            [sys.executable, "-m", "benchmarks.train_speed", str(config), "--steps", "100",
             "--paths.train", str(corpus["train"]), "--paths.dev", str(corpus["dev"]),
             *(["--paths.source_model", str(source_model_path(SOURCE_KIND[system], pair, seed))]
               if system in SOURCE_KIND else [])],
            capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip().splitlines()[-1]
        out.append({"system": system, **served, "train_words_per_s": float(train.split("=")[-1].split()[0]),
                    "model_mb": model_mb(model), "batch_size": BATCH_SIZE})
        print(out[-1], flush=True)
    srsly.write_json(speed_path, out)
    return out
