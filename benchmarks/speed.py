"""Speed, memory and size of trained pipelines, each measured in a fresh process.

Inference: `nlp.pipe` over the target test set, warm (one pass first), batch
size 256. Training: words/s of `nlp.update` (benchmarks/train_speed.py).
Peak RSS: the serving process's high-water mark after loading and tagging.
"""
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import srsly
from run import source_model_path

BENCH = Path(__file__).resolve().parent
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
    records = srsly.read_json(quality_path)
    quick = {r["system"]: r for r in records if r["pair"] == "BC5CDR->NCBI-disease" and r["fraction"] == 0.1 and r["seed"] == 0}
    corpus = BENCH / "work" / "corpus" / "BC5CDR-NCBI-disease"
    out = []
    for system in [s for s in MEASURED if s in quick]:
        model = BENCH.parent / quick[system]["model"]
        served = json.loads(subprocess.run(
            [sys.executable, "-c", SERVE, str(model), str(corpus / "target_test.spacy"), str(BATCH_SIZE)],
            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        config = model / "config.cfg"
        train = subprocess.run(
            [sys.executable, str(BENCH / "train_speed.py"), str(config), "--steps", "100",
             "--paths.train", str(corpus / "target_train_0.1_0.spacy"), "--paths.dev", str(corpus / "target_dev.spacy"),
             *(["--paths.source_model", str(source_model_path(SOURCE_KIND[system], "BC5CDR->NCBI-disease", 0))]
               if system in SOURCE_KIND else [])],
            capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        out.append({"system": system, **served, "train_words_per_s": float(train.split("=")[-1].split()[0]),
                    "model_mb": model_mb(model), "batch_size": BATCH_SIZE})
        print(out[-1], flush=True)
    srsly.write_json(speed_path, out)
    return out
