"""Finding and reading the input files of a corpus.

Corpora arrive as a single file, a folder, or (brat, i2b2 2010) pairs of a
text file and an annotation file matched by name. Everything that is found
but not used is counted, and anything that cannot be paired is an error.

Every file must be UTF-8: other bytes (Latin-1, cp1252, a file cut in the
middle of a character) are an error naming the line and byte offset. A
byte-order mark at the start of a file that is read line by line (IOB,
`.ann`, `.con`, i2b2 `.txt`) is dropped; in a brat `.txt` it is kept, as a
character that the standoff offsets count.
"""
from pathlib import Path
from typing import Iterable, List, NamedTuple, Optional, Tuple, Union

from .errors import ConversionError
from .stats import ConversionStats


class FilePair(NamedTuple):
    """A text file, its annotation file and the name to record in the Doc."""

    text: Path
    ann: Path
    name: str


BYTE_ORDER_MARK = "\ufeff"


def read_text(path: Path, *, strip_bom: bool = False) -> str:
    """Read UTF-8 text exactly as stored: no newline translation, because
    standoff offsets count every character, "\\r" included. `strip_bom`
    drops a leading byte-order mark (for files that are not offset into)."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConversionError(path, "whole file", "cannot be read", err.strerror) from None
    text = decode_utf8(data, path)
    if strip_bom and text.startswith(BYTE_ORDER_MARK):
        text = text[1:]
    return text


def decode_utf8(data: bytes, path: Path) -> str:
    """Decode UTF-8, or fail naming the line and byte offset of the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConversionError(
            path,
            f"line {line}, byte {err.start}",
            f"not valid UTF-8 ({err.reason})",
            data[err.start : err.start + 8],
            hint="re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
        ) from None


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise ConversionError(
            path, "input", "no such file or folder", hint="check the INPUT path"
        )


def list_files(path: Union[str, Path], suffixes: Iterable[str]) -> List[Tuple[Path, str]]:
    """A single file, or every file with one of `suffixes` under a folder
    (recursively, sorted), each with the name to record in its Docs."""
    path = Path(path)
    _check_exists(path)
    if path.is_file():
        return [(path, path.name)]
    suffixes = tuple(suffixes)
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in suffixes)
    if not found:
        raise ConversionError(
            path,
            "whole folder",
            "no input files found",
            hint=f"expected files ending in {', '.join(suffixes)}",
        )
    return [(p, p.relative_to(path).as_posix()) for p in found]


def pair_files(
    path: Union[str, Path],
    ann_suffix: str,
    stats: ConversionStats,
    ann_dir: Optional[Union[str, Path]] = None,
) -> List[FilePair]:
    """Match `NAME.txt` with `NAME{ann_suffix}`.

    `path` is one file of a pair (its partner is looked for next to it, or in
    `ann_dir`), or a folder of text files; annotation files are looked for in
    `ann_dir` (default: the same folder) at the same relative path. An
    annotation file without its text is an error; a text file without
    annotations is skipped and counted (it may be a README or unannotated).
    """
    path = Path(path)
    _check_exists(path)
    if path.is_file():
        if path.suffix not in (".txt", ann_suffix):
            raise ConversionError(
                path,
                "input",
                "unexpected file type",
                path.suffix,
                hint=f"give a .txt or {ann_suffix} file, or a folder of them",
            )
        folder = Path(ann_dir) if ann_dir is not None else path.parent
        pair = FilePair(
            path.with_suffix(".txt"), folder / (path.stem + ann_suffix), path.stem + ".txt"
        )
        _check_pair(pair, ann_suffix)
        return [pair]
    txt_dir = path
    ann_root = Path(ann_dir) if ann_dir is not None else path
    _check_exists(ann_root)
    pairs = []
    for ann in sorted(ann_root.rglob(f"*{ann_suffix}")):
        name = ann.relative_to(ann_root).with_suffix(".txt")
        pair = FilePair(txt_dir / name, ann, name.as_posix())
        _check_pair(pair, ann_suffix)
        pairs.append(pair)
    paired = {pair.text for pair in pairs}
    for txt in txt_dir.rglob("*.txt"):
        if txt not in paired:
            stats.skipped[f".txt files without {ann_suffix}"] += 1
    if not pairs:
        raise ConversionError(
            ann_root,
            "whole folder",
            f"no {ann_suffix} files found",
            hint=f"expected NAME.txt + NAME{ann_suffix} pairs; check the FORMAT",
        )
    return pairs


def _check_pair(pair: FilePair, ann_suffix: str) -> None:
    if not pair.ann.is_file():
        raise ConversionError(
            pair.text,
            "whole file",
            f"no matching {ann_suffix} file",
            str(pair.ann),
            hint=f"put {pair.ann.name} next to it, or pass the folder that holds it",
        )
    if not pair.text.is_file():
        raise ConversionError(
            pair.ann,
            "whole file",
            "no matching .txt file",
            str(pair.text),
            hint="add the .txt the annotations refer to, or remove the annotation file",
        )
