"""Training throughput of a config: words per second of `nlp.update`, as
`spacy train` runs it (the config's batcher and optimizer), without evaluation.

    python -m benchmarks.train_speed configs/dtn.cfg --steps 100 \
        --paths.train corpus/target/train.spacy --paths.dev corpus/target/dev.spacy \
        --paths.source_model training/source/model-best
"""
import argparse
import itertools
import time

import spacy
from spacy.training.initialize import init_nlp
from spacy.util import load_config, registry, resolve_dot_names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    args, rest = parser.parse_known_args()
    overrides = dict(zip([a.lstrip("-") for a in rest[::2]], rest[1::2]))
    config = load_config(args.config, overrides=overrides, interpolate=False)
    nlp = init_nlp(config)
    T = registry.resolve(nlp.config.interpolate()["training"], schema=spacy.schemas.ConfigSchemaTraining)
    (train_corpus,) = resolve_dot_names(nlp.config.interpolate(), [T["train_corpus"]])
    optimizer = T["optimizer"]
    examples = list(train_corpus(nlp))
    batches = itertools.cycle(list(T["batcher"](examples)))
    for batch in itertools.islice(batches, args.warmup):
        nlp.update(batch, sgd=optimizer)
    words, start, cpu_start = 0, time.perf_counter(), time.process_time()
    for batch in itertools.islice(batches, args.steps):
        nlp.update(batch, sgd=optimizer)
        words += sum(len(eg.predicted) for eg in batch)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    # CPU seconds of this process: on a shared machine, what the run would take on a core of its own.
    print(f"{args.config}: {args.steps} steps, {words} words, {words / cpu_seconds:.0f} words per CPU second; "
          f"in {seconds:.1f} s = {words / seconds:.0f} words/s")


if __name__ == "__main__":
    main()
