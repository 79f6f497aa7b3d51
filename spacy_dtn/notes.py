"""Reading a note archive for `annotate`: a folder of `.txt` files, a JSONL
file, or a CSV or Parquet table (a file, or a folder of Parquet parts).

Policy: a note that cannot be annotated does not stop the run. It is yielded
with the reason instead of a text, and the caller reports and counts it:
an unreadable file, bytes that are not in the input's encoding, a JSONL line
that is not a JSON object, a row without an id or without text (missing,
null or empty), an id seen before. A problem with the whole input (no such
path, a missing column, an unknown encoding) is a `NoteInputError`, raised
before any note is read.

Text files, JSONL and CSV are read as UTF-8 unless an `encoding` is named
(archives exported on Windows are often cp1252): decoding never guesses, so
a wrong byte is reported, not turned into a wrong character. Parquet text is
UTF-8 by the format, so it is read as UTF-8 whatever the encoding says.

Ids are strings: the relative path without `.txt` (any case) for a folder, the id
field or column (converted with `str`) otherwise, `line N` / `row N` where a
JSONL line or table row has none. Texts are exactly what is stored ("\\r"
kept), so character offsets point into the stored text, but for the UTF-8
byte-order mark that Windows tools write first in a file: it is the
encoding's, not the text's (as Python's utf-8-sig codec reads it), so a
.txt note or JSONL line that begins with one is read from the character
after it. Read as text, it made the first JSONL line fail as "not JSON" and
put a .txt note's first entity one character early.
"""
import codecs
import importlib
import json
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Union

INPUT_FORMATS = ("txt", "jsonl", "csv", "parquet")
SUFFIXES = {".txt": "txt", ".jsonl": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# Rows per chunk read from a CSV or Parquet table.
TABLE_CHUNK = 1000


class NoteInputError(ValueError):
    """An input that cannot be read at all: the message says how to fix it."""


def table_library(name: str):
    """pandas or pyarrow (module `name`), which CSV and Parquet need."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise NoteInputError(
            f"CSV and Parquet notes need {name.split('.')[0]}, which is not installed: "
            "pip install 'spacy-dtn[tables]'."
        ) from None


class Note(NamedTuple):
    id: str
    text: Optional[str]
    error: Optional[str] = None  # why the note cannot be annotated


def detect_format(path: Path) -> str:
    """The input format from the path: a folder holds .txt notes unless it
    holds Parquet parts; a file goes by its suffix."""
    if path.is_dir():
        return "parquet" if any(path.glob("*.parquet")) else "txt"
    if path.suffix.lower() in SUFFIXES:
        return SUFFIXES[path.suffix.lower()]
    raise NoteInputError(
        f"{path}: cannot tell the input format from the suffix {path.suffix!r}: use a folder of .txt "
        f"files or a .jsonl, .csv or .parquet file, or pass --input-format ({', '.join(INPUT_FORMATS)})."
    )


class NoteSource:
    """The notes of an input, in a stable order, and how many there are."""

    def __init__(
        self,
        path: Union[str, Path],
        input_format: Optional[str] = None,
        id_col: str = "id",
        text_col: str = "text",
        encoding: str = "utf-8",
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise NoteInputError(f"{self.path}: no such file or folder; check the INPUT path.")
        self.format = input_format or detect_format(self.path)
        if self.format not in INPUT_FORMATS:
            raise NoteInputError(f"Unknown input format {self.format!r}: use one of {', '.join(INPUT_FORMATS)}.")
        self.id_col, self.text_col = id_col, text_col
        self.encoding = "utf-8" if self.format == "parquet" else check_encoding(encoding)
        self.total = getattr(self, f"_count_{self.format}")()

    def __iter__(self) -> Iterator[Note]:
        seen = set()
        for note in getattr(self, f"_read_{self.format}")():
            if note.error is None and note.id in seen:
                note = note._replace(text=None, error="duplicate id: an earlier note has the same id")
            seen.add(note.id)
            yield note

    # Folder of .txt files

    def _txt_files(self):
        # Any case of the suffix: archives copied from Windows often say .TXT.
        files = sorted(p for p in self.path.rglob("*") if p.suffix.lower() == ".txt" and not p.is_dir())
        if not files:
            raise NoteInputError(f"{self.path}: no .txt files found in the folder; check the INPUT path.")
        return files

    def _count_txt(self) -> int:
        return len(self._txt_files())

    def _read_txt(self) -> Iterator[Note]:
        for file in self._txt_files():
            note_id = file.relative_to(self.path).with_suffix("").as_posix()
            try:
                data = file.read_bytes()
            except OSError as err:
                yield Note(note_id, None, f"cannot read {file}: {err.strerror or err}")
                continue
            yield text_note(note_id, data, self.encoding, from_file=True)

    # JSONL

    def _count_jsonl(self) -> int:
        with self.path.open("rb") as file:
            return sum(1 for line in file if not self._blank(line))

    def _read_jsonl(self) -> Iterator[Note]:
        with self.path.open("rb") as file:
            for number, line in enumerate(file, start=1):
                if not self._blank(line):
                    yield self._json_note(line, number)

    def _blank(self, line: bytes) -> bool:
        """Whether a JSONL line holds nothing but whitespace (after a UTF-8 byte-order mark)."""
        return not (line.removeprefix(codecs.BOM_UTF8) if self.encoding == "utf-8" else line).strip()

    def _json_note(self, line: bytes, number: int) -> Note:
        where = f"line {number}"
        try:
            record = json.loads(decode_file_bytes(line, self.encoding))
        except UnicodeDecodeError as err:
            return Note(where, None, not_decodable(self.encoding, f"byte {err.start} of the line"))
        except ValueError as err:
            return Note(where, None, f"not JSON ({err})")
        if not isinstance(record, dict):
            return Note(where, None, f"not a JSON object but {type(record).__name__}")
        return self._row_note(record.get(self.id_col), record.get(self.text_col), where)

    # Tables

    def _table_columns(self, columns) -> None:
        missing = [c for c in (self.id_col, self.text_col) if c not in columns]
        if missing:
            raise NoteInputError(
                f"{self.path} has no column {', '.join(map(repr, missing))} (columns: {list(columns)}): "
                "name the id and text columns with --id-col and --text-col."
            )

    def _csv_chunks(self, columns):
        pandas = table_library("pandas")
        header = pandas.read_csv(self.path, nrows=0, encoding=self.encoding, encoding_errors="surrogateescape").columns
        self._table_columns(header)
        # Every value as a Python string (object dtype: pandas' Arrow strings
        # refuse surrogates), an empty cell as "": ids keep their leading zeros
        # and a missing text is "". Bad bytes become surrogates, caught per row.
        return pandas.read_csv(
            self.path, usecols=columns, dtype=object, keep_default_na=False,
            chunksize=TABLE_CHUNK, encoding=self.encoding, encoding_errors="surrogateescape",
        )

    def _count_csv(self) -> int:
        return sum(len(chunk) for chunk in self._csv_chunks([self.id_col]))

    def _read_csv(self) -> Iterator[Note]:
        number = 0
        for chunk in self._csv_chunks([self.id_col, self.text_col]):
            for note_id, text in zip(chunk[self.id_col], chunk[self.text_col]):
                number += 1
                yield self._row_note(note_id, text, f"row {number}")

    def _dataset(self):
        dataset = table_library("pyarrow.dataset").dataset(self.path, format="parquet")
        self._table_columns(dataset.schema.names)
        return dataset

    def _count_parquet(self) -> int:
        return self._dataset().count_rows()

    def _read_parquet(self) -> Iterator[Note]:
        pyarrow = table_library("pyarrow")
        number = 0
        for batch in self._dataset().to_batches(columns=[self.id_col, self.text_col], batch_size=TABLE_CHUNK):
            ids = batch.column(0).to_pylist()
            # As bytes: a string column may still hold bytes that are not UTF-8.
            texts = batch.column(1).cast(pyarrow.binary()).to_pylist()
            for note_id, text in zip(ids, texts):
                number += 1
                yield self._row_note(note_id, text, f"row {number}")

    def _row_note(self, note_id: object, text: object, where: str) -> Note:
        if note_id is None or note_id == "":
            return Note(where, None, f"no {self.id_col!r} value")
        note_id = str(note_id)
        if isinstance(text, bytes):
            return text_note(note_id, text, self.encoding)
        if not isinstance(text, str) or not text:
            return Note(note_id, None, f"no text (the {self.text_col!r} value is {text!r})")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            return Note(note_id, None, not_decodable(self.encoding, f"character {err.start} of the text"))
        return Note(note_id, text)


def check_encoding(encoding: str) -> str:
    """The codec's canonical name ("utf-8", "cp1252"), or a NoteInputError."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise NoteInputError(
            f"Unknown encoding {encoding!r}: name a Python codec, e.g. utf-8, cp1252 or latin-1."
        ) from None


def not_decodable(encoding: str, where: str) -> str:
    """Why a note's bytes were refused, and what to do where the whole input has another encoding."""
    if encoding == "utf-8":
        return f"not valid UTF-8 at {where} (notes in another encoding: name it with --encoding, e.g. cp1252)"
    return f"not valid {encoding} at {where}"


def decode_file_bytes(data: bytes, encoding: str) -> str:
    """The text of a file's bytes (a .txt note, a JSONL line) in `encoding`,
    without a UTF-8 byte-order mark that begins them. Raises UnicodeDecodeError."""
    text = data.decode(encoding)
    return text[1:] if encoding == "utf-8" and text.startswith("\ufeff") else text


def text_note(note_id: str, data: bytes, encoding: str, from_file: bool = False) -> Note:
    """A note from stored bytes in `encoding` (a file's: `from_file`), not empty."""
    try:
        text = decode_file_bytes(data, encoding) if from_file else data.decode(encoding)
    except UnicodeDecodeError as err:
        return Note(note_id, None, not_decodable(encoding, f"byte {err.start}"))
    return Note(note_id, text) if text else Note(note_id, None, "no text (empty)")
