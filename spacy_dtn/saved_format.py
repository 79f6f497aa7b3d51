"""The saved format of a dtn_ner component, and the checks that refuse what it cannot read.

A saved component is a folder (or bytes) with `cfg` (JSON: labels, source
labels, tag scheme and the spacy-dtn version that wrote it) and `model` (the
torch state, tensors only). The cfg is checked first, layout and version,
so that a wrong or foreign file fails with a message about that file rather
than with a tensor size mismatch.
"""
import re
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

import srsly

from . import __version__
from .tag_scheme import TAG_SCHEMES

VERSION_KEY = "spacy_dtn_version"
# The cfg saved with the component: its keys and types. A saved cfg with other
# keys, or stamped with another major.minor version, is refused on load.
CFG_LAYOUT = {"labels": list, "source_labels": list, "tag_scheme": str, VERSION_KEY: str}
# 0.1.0 saved its cfg without the version stamp: that layout, unstamped, is 0.1.0.
UNSTAMPED_LAYOUT = ("labels", "source_labels", "tag_scheme")
UNSTAMPED_VERSION = "0.1.0"
SAVED_FILES = ("cfg", "model")


class SavedModelError(ValueError):
    """A saved component that cannot be loaded: the message names the file and
    what is wrong with it."""


def check_saved_folder(path: Path, component: str, exclude: Iterable[str]) -> None:
    """The folder holds every file the component reads back."""
    if not path.is_dir():
        raise SavedModelError(
            f"The folder {path} of component '{component}' is missing or not a folder: the "
            "pipeline was not saved completely (it needs cfg and model there); re-save it."
        )
    for name in SAVED_FILES:
        if name not in exclude and not (path / name).is_file():
            raise SavedModelError(
                f"{path / name} is missing: the pipeline was not saved completely "
                f"(component '{component}' needs cfg and model in {path}); re-save it."
            )


def parse_saved_cfg(text: str, where: str) -> Dict[str, object]:
    """The checked cfg from its JSON text."""
    try:
        cfg = srsly.json_loads(text)
    except ValueError as err:
        raise SavedModelError(
            f"{where} is not valid JSON ({err}): the file is truncated or corrupt; re-save the pipeline."
        ) from None
    return check_saved_cfg(cfg, where)


def unpickling_reason(err: Exception) -> str:
    """The one informative line of torch's weights-only error (which goes on
    to suggest weights_only=False: not something to pass on)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))
    for line in text.splitlines():
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].split(". Please", 1)[0].strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


def _major_minor(version: str) -> Optional[Tuple[int, int]]:
    parts = version.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return None
    return int(parts[0]), int(parts[1])


def check_saved_cfg(cfg: object, where: str) -> Dict[str, object]:
    """The cfg of a saved dtn_ner component, if this version can read it:
    stamped with the same major.minor version and exactly the known keys."""
    if not isinstance(cfg, dict):
        raise SavedModelError(
            f"{where} is not a dtn_ner cfg (a JSON object); found a {type(cfg).__name__}: "
            "the file is corrupt or from another component; re-save the pipeline."
        )
    saved = cfg.get(VERSION_KEY)
    if saved is None:
        if set(cfg) != set(UNSTAMPED_LAYOUT):
            raise SavedModelError(
                f"{where} has no {VERSION_KEY!r} and keys {sorted(cfg)}: it was not saved by "
                f"spacy-dtn (an unknown version, or another component). This is spacy-dtn "
                f"{__version__}: retrain the pipeline with it."
            )
        cfg = {**cfg, VERSION_KEY: UNSTAMPED_VERSION}
        saved = UNSTAMPED_VERSION
    if not isinstance(saved, str) or _major_minor(saved) is None or _major_minor(saved) != _major_minor(__version__):
        raise SavedModelError(
            f"{where} was saved by spacy-dtn {saved}, but this is spacy-dtn {__version__}: "
            "versions with another major.minor may store the model differently. Load it with "
            f"spacy-dtn {saved}, or retrain the pipeline with {__version__}."
        )
    unknown = sorted(set(cfg) - set(CFG_LAYOUT))
    missing = sorted(set(CFG_LAYOUT) - set(cfg))
    wrong = sorted(k for k, kind in CFG_LAYOUT.items() if k in cfg and not isinstance(cfg[k], kind))
    if unknown or missing or wrong:
        raise SavedModelError(
            f"{where} has a layout spacy-dtn {__version__} does not know (saved by spacy-dtn {saved}): "
            f"unknown keys {unknown}, missing keys {missing}, wrong types {wrong}; expected the keys "
            f"{sorted(CFG_LAYOUT)}. Re-save the pipeline with spacy-dtn {__version__}."
        )
    bad_labels = [x for x in cfg["labels"] + cfg["source_labels"] if not isinstance(x, str) or not x]
    if bad_labels or cfg["tag_scheme"] not in TAG_SCHEMES:
        raise SavedModelError(
            f"{where} has invalid values: labels must be non-empty strings (bad: {bad_labels}) and "
            f"tag_scheme one of {list(TAG_SCHEMES)} (found {cfg['tag_scheme']!r}). Re-save the pipeline."
        )
    return dict(cfg)
