"""Memory of a dtn_ner pipeline at prediction time: growth of resident memory
(RSS) over repeated `nlp.pipe` passes on the same documents (a leak shows as
steady growth after the first pass), and the peak RSS of tagging one long
document without sentence boundaries (windows of max_segment_length tokens,
tagged in passes of bounded size, so the peak should not grow with length).

    python -m benchmarks.memory training/dtn/model-best
    python -m benchmarks.memory            # trains a tiny pipeline first

RSS is read from /proc/self/status (VmRSS, and VmHWM for peaks, reset through
/proc/self/clear_refs); where that is missing, `resource` gives the peak only.
Not a timed test: the numbers depend on the allocator and the machine.
"""
import argparse
import gc
import resource
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Adam

from spacy_dtn.converters import read_iob

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEXTS = ROOT / "assets" / "NCBI-disease-IOB" / "devel.tsv"
TRAIN_TSV = ROOT / "assets" / "NCBI-disease-IOB" / "train.tsv"
MB = 1024 * 1024


def status() -> Dict[str, int]:
    """VmRSS and VmHWM in bytes (empty where /proc is missing)."""
    values = {}
    try:
        with open("/proc/self/status") as file_:
            for line in file_:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values


def rss() -> Optional[int]:
    return status().get("VmRSS")


def peak() -> int:
    """Peak RSS in bytes: VmHWM since the last reset, else the process peak."""
    value = status().get("VmHWM")
    if value is not None:
        return value
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is in bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as file_:
            file_.write("5")
        return True
    except OSError:
        return False


def train_tiny(n_sentences: int, steps: int) -> Language:
    """The shipped DTN architecture and sizes, trained for a few steps on the
    start of the NCBI-disease training set: the weights matter little here."""
    nlp = spacy.blank("en")
    nlp.add_pipe("dtn_ner", name="ner")
    docs = list(read_iob(TRAIN_TSV, nlp=nlp))[:n_sentences]
    examples = [Example(Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]), d) for d in docs]
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    for step in range(steps):
        batch = examples[(step * 32) % len(examples):][:32]
        nlp.update(batch, sgd=optimizer)
    return nlp


def load_texts(path: Path, limit: int) -> List[str]:
    """Sentences of an IOB file, or lines of a plain-text file."""
    if path.suffix in (".tsv", ".conll", ".iob", ".bio"):
        texts = [doc.text for doc in read_iob(path)]
    else:
        texts = [line for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    return texts[:limit]


def long_doc_peak(nlp: Language, n_tokens: int, words: List[str]) -> Optional[float]:
    """Peak RSS above the RSS before tagging one n_tokens document, in MB."""
    doc = Doc(nlp.vocab, words=[words[i % len(words)] for i in range(n_tokens)])
    gc.collect()
    before = rss()
    if before is None or not reset_peak():
        nlp(doc)
        return None
    nlp(doc)
    return (peak() - before) / MB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", help="pipeline to load; without it a tiny one is trained")
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="IOB file or one text per line")
    parser.add_argument("--docs", type=int, default=2000, help="documents per pass")
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--long-tokens", type=int, default=50_000)
    args = parser.parse_args()

    start = time.perf_counter()
    if args.model:
        nlp = spacy.load(args.model)
        source = args.model
    else:
        nlp = train_tiny(n_sentences=200, steps=30)
        source = "tiny pipeline trained here (shipped DTN sizes, 30 steps on 200 NCBI-disease sentences)"
    texts = load_texts(args.texts, args.docs)
    n_tokens = sum(len(nlp.make_doc(t)) for t in texts)
    print(f"model: {source}")
    print(f"texts: {len(texts)} documents, {n_tokens} tokens from {args.texts}")
    print(f"RSS after loading: {rss() / MB:.1f} MB" if rss() else "RSS: /proc/self/status not available")

    readings = []
    for i in range(args.passes):
        n_ents = sum(len(doc.ents) for doc in nlp.pipe(texts, batch_size=args.batch_size))
        gc.collect()
        readings.append(rss())
        print(f"pass {i + 1:2d}: RSS {readings[-1] / MB:8.1f} MB  ({n_ents} entities)" if readings[-1] else f"pass {i + 1}")
    if all(readings):
        growth = (readings[-1] - readings[0]) / MB
        per_pass = growth / max(len(readings) - 1, 1)
        print(f"RSS growth from pass 1 to pass {args.passes}: {growth:+.1f} MB ({per_pass:+.2f} MB per pass)")

    words = [w for t in texts[:50] for w in t.split() if w not in (".", "!", "?")]
    ner = nlp.get_pipe("ner") if "ner" in nlp.pipe_names else None
    window = getattr(ner, "max_segment_length", "?")
    for n in sorted({args.long_tokens // 10, args.long_tokens}):
        extra = long_doc_peak(nlp, n, words)
        if extra is None:
            print(f"peak for one {n}-token document: VmHWM reset not available; process peak {peak() / MB:.1f} MB")
        else:
            print(f"peak RSS for one {n}-token document (no sentence boundaries, windows of {window}): "
                  f"+{extra:.1f} MB over {rss() / MB:.1f} MB")
    print(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
