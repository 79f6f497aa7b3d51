"""Writing annotated notes for `annotate`: a brat folder, JSONL or Parquet.

Policy: every file appears whole or not at all, and a rerun can tell which
notes are done.
- Files are written under a temporary name (`.NAME.PID.annotate-tmp`, next
  to the file) and renamed into place, so a killed run leaves no half-written
  file under a real name; a later run deletes such leftovers.
- brat: one `ID.txt` (the note exactly as read) and `ID.ann` per note; the
  `.ann` is written last, so a note is done when its `.ann` exists. Each
  entity is a `T` line, its confidence an `AnnotatorNotes` line (`#`), which
  brat shows and our brat converter skips.
- JSONL and Parquet are written in parts of `part_size` notes, each renamed
  into place when full. Parquet's output is the folder of parts (as Spark
  writes it; pandas, pyarrow and Spark read it as one table). JSONL's parts
  go to `OUTPUT.parts/` and are joined into OUTPUT when the run ends (parts
  whose ids OUTPUT already holds are not added twice, so a run killed while
  joining is finished by the next). A note is done when a part holds it.
Notes are written in input order, so a killed run and its rerun write what
one uninterrupted run writes.
"""
import json
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Dict, Iterator, List, NamedTuple, Optional, Set

from .notes import table_library

OUTPUT_FORMATS = ("brat", "jsonl", "parquet")
TMP_SUFFIX = ".annotate-tmp"
PART_SIZE = 1000


class Entity(NamedTuple):
    start: int  # character offsets into the note's text
    end: int
    label: str
    text: str
    confidence: Optional[float]


class AnnotatedNote(NamedTuple):
    id: str
    text: str
    entities: List[Entity]


class NoteWriteError(ValueError):
    """A note that cannot be written (e.g. its id is not a usable file name)."""


def detect_output_format(path: Path) -> str:
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".parquet": "parquet"}.get(suffix, "brat")


def write_atomic(path: Path, data: bytes) -> None:
    """Write under a temporary name, then rename into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise NoteWriteError(f"cannot write {path}: {err.strerror or err}") from None


def make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NoteWriteError(f"cannot create the folder {folder}: {err.strerror or err}") from None


def remove_leftovers(folder: Path, name: str = "*", recursive: bool = True) -> None:
    """Temporary files (of files called `name`) of an earlier, killed run."""
    pattern = f".{name}.*{TMP_SUFFIX}"
    for tmp in folder.rglob(pattern) if recursive else folder.glob(pattern):
        tmp.unlink(missing_ok=True)


def entity_dicts(note: AnnotatedNote) -> List[Dict]:
    return [entity._asdict() for entity in note.entities]


class BratWriter:
    """`ID.txt` + `ID.ann` per note in a folder (ids with `/` make subfolders)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        make_folder(folder)
        remove_leftovers(folder)

    def done_ids(self) -> Set[str]:
        return {p.relative_to(self.folder).with_suffix("").as_posix() for p in self.folder.rglob("*.ann")}

    def _path(self, note_id: str) -> Path:
        parts = PurePosixPath(note_id).parts
        if not parts or note_id.startswith("/") or any(p in ("..", ".") for p in parts) or "\0" in note_id:
            raise NoteWriteError(f"the id {note_id!r} is not a usable relative file name for a brat folder")
        return self.folder.joinpath(*parts)

    def write(self, note: AnnotatedNote) -> None:
        base = self._path(note.id)
        make_folder(base.parent)
        write_atomic(base.with_name(base.name + ".txt"), note.text.encode("utf-8"))
        write_atomic(base.with_name(base.name + ".ann"), brat_ann(note).encode("utf-8"))

    def close(self) -> None:
        pass


def brat_ann(note: AnnotatedNote) -> str:
    lines = []
    for i, entity in enumerate(note.entities, start=1):
        # A T line's text field is one line: brat compares it ignoring whitespace.
        text = " ".join(entity.text.split())
        lines.append(f"T{i}\t{entity.label} {entity.start} {entity.end}\t{text}")
        if entity.confidence is not None:
            lines.append(f"#{i}\tAnnotatorNotes T{i}\tconfidence={entity.confidence:.4f}")
    return "".join(line + "\n" for line in lines)


class PartWriter:
    """Notes in numbered parts of `part_size` notes, each renamed into place
    when full; subclasses say how a part is stored and read back."""

    suffix = ""

    def __init__(self, parts_dir: Path, part_size: int = PART_SIZE) -> None:
        if part_size < 1:
            raise ValueError(f"part size {part_size}: use 1 or more notes per part.")
        self.parts_dir = parts_dir
        self.part_size = part_size
        self.buffer: List[AnnotatedNote] = []
        if parts_dir.exists():
            remove_leftovers(parts_dir)
        numbers = [int(p.stem.split("-")[1]) for p in self.parts()]
        self.next_part = max(numbers, default=-1) + 1

    def parts(self) -> List[Path]:
        return sorted(self.parts_dir.glob(f"part-*{self.suffix}")) if self.parts_dir.is_dir() else []

    def done_ids(self) -> Set[str]:
        return {note_id for part in self.parts() for note_id in self.part_ids(part)}

    def write(self, note: AnnotatedNote) -> None:
        self.buffer.append(note)
        if len(self.buffer) >= self.part_size:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        make_folder(self.parts_dir)
        write_atomic(self.parts_dir / f"part-{self.next_part:06d}{self.suffix}", self.encode(self.buffer))
        self.next_part += 1
        self.buffer = []

    def close(self) -> None:
        self.flush()

    def encode(self, notes: List[AnnotatedNote]) -> bytes:
        raise NotImplementedError

    def part_ids(self, part: Path) -> Iterator[str]:
        raise NotImplementedError


class JsonlWriter(PartWriter):
    """One JSON object per line: {"id", "entities": [{start, end, label, text, confidence}]}."""

    suffix = ".jsonl"

    def __init__(self, path: Path, part_size: int = PART_SIZE) -> None:
        self.path = path
        make_folder(path.parent)
        remove_leftovers(path.parent, path.name, recursive=False)
        super().__init__(path.with_name(path.name + ".parts"), part_size)

    def encode(self, notes: List[AnnotatedNote]) -> bytes:
        lines = (json.dumps({"id": n.id, "entities": entity_dicts(n)}, ensure_ascii=False) + "\n" for n in notes)
        return "".join(lines).encode("utf-8")

    def part_ids(self, part: Path) -> Iterator[str]:
        with part.open("rb") as file:
            for line in file:
                yield json.loads(line)["id"]

    def done_ids(self) -> Set[str]:
        joined = set(self.part_ids(self.path)) if self.path.exists() else set()
        return joined | super().done_ids()

    def close(self) -> None:
        """Join the parts into the output file, then drop them."""
        super().close()
        if self.path.exists() and not self.parts():
            return
        joined = set(self.part_ids(self.path)) if self.path.exists() else set()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}{TMP_SUFFIX}")
        with tmp.open("wb") as out:
            if self.path.exists():
                with self.path.open("rb") as old:
                    shutil.copyfileobj(old, out)
            for part in self.parts():
                with part.open("rb") as file:
                    out.writelines(line for line in file if json.loads(line)["id"] not in joined)
        os.replace(tmp, self.path)
        shutil.rmtree(self.parts_dir, ignore_errors=True)


class ParquetWriter(PartWriter):
    """A folder of Parquet parts with columns id and entities (list of structs)."""

    suffix = ".parquet"

    def __init__(self, folder: Path, part_size: int = PART_SIZE) -> None:
        table_library("pyarrow.parquet")  # fail before the first note, not at the first part
        super().__init__(folder, part_size)

    def encode(self, notes: List[AnnotatedNote]) -> bytes:
        pyarrow = table_library("pyarrow")
        table = pyarrow.Table.from_pylist(
            [{"id": n.id, "entities": entity_dicts(n)} for n in notes], schema=parquet_schema()
        )
        sink = pyarrow.BufferOutputStream()
        table_library("pyarrow.parquet").write_table(table, sink)
        return sink.getvalue().to_pybytes()

    def part_ids(self, part: Path) -> Iterator[str]:
        table = table_library("pyarrow.parquet").read_table(part, columns=["id"])
        return iter(table.column("id").to_pylist())


def parquet_schema():
    """id, and entities as a list of (start, end, label, text, confidence)."""
    pyarrow = table_library("pyarrow")
    entity = pyarrow.struct([
        ("start", pyarrow.int64()), ("end", pyarrow.int64()), ("label", pyarrow.string()),
        ("text", pyarrow.string()), ("confidence", pyarrow.float64()),
    ])
    return pyarrow.schema([("id", pyarrow.string()), ("entities", pyarrow.list_(entity))])


def open_writer(path: Path, output_format: str, part_size: int = PART_SIZE):
    if output_format == "brat":
        return BratWriter(path)
    if output_format == "jsonl":
        return JsonlWriter(path, part_size)
    if output_format == "parquet":
        return ParquetWriter(path, part_size)
    raise ValueError(f"Unknown output format {output_format!r}: use one of {', '.join(OUTPUT_FORMATS)}.")
