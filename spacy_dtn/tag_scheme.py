"""Entity tag schemes (BIO, BILUO): tag inventories, valid transitions, spans.

The CRF needs to know which tag bigrams are legal so that decoding can never
produce a broken entity; that knowledge lives here, next to the conversions
between entity spans and tag sequences. So does which tags begin or end an
entity (`boundary_tags`): prediction keeps them off whitespace tokens.
"""
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy

TAG_SCHEMES = ("BIO", "BILUO")
OUTSIDE = "O"


def check_tag_scheme(tag_scheme: str, where: str = "the component's `tag_scheme` setting") -> str:
    if tag_scheme not in TAG_SCHEMES:
        raise ValueError(f"Unknown tag_scheme {tag_scheme!r} in {where}: use one of {', '.join(TAG_SCHEMES)}.")
    return tag_scheme


def make_tag_names(labels: Iterable[str], tag_scheme: str) -> List[str]:
    """All tags of the scheme over the labels, "O" first, in a stable order."""
    prefixes = check_tag_scheme(tag_scheme)[:-1]  # "BI" or "BILU"
    return [OUTSIDE] + [f"{p}-{label}" for label in sorted(labels) for p in prefixes]


def _split(tag: str) -> Tuple[str, str]:
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, _, label = tag.partition("-")
    return prefix, label


def allowed_transitions(
    tag_names: Sequence[str], tag_scheme: str
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Boolean masks (start, transitions[from, to], end) of legal tag moves."""
    check_tag_scheme(tag_scheme)
    n = len(tag_names)
    parts = [_split(t) for t in tag_names]
    # A tag "opens" when it may follow anything that closes an entity.
    opens = {"BIO": ("O", "B"), "BILUO": ("O", "B", "U")}[tag_scheme]
    closes = {"BIO": ("O", "B", "I"), "BILUO": ("O", "L", "U")}[tag_scheme]
    inside = {"BIO": ("I",), "BILUO": ("I", "L")}[tag_scheme]
    continues = {"BIO": ("B", "I"), "BILUO": ("B", "I")}[tag_scheme]
    start = numpy.array([p in opens for p, _ in parts], dtype=bool)
    end = numpy.array([p in closes for p, _ in parts], dtype=bool)
    trans = numpy.zeros((n, n), dtype=bool)
    for i, (p_from, l_from) in enumerate(parts):
        for j, (p_to, l_to) in enumerate(parts):
            if p_to in inside:
                trans[i, j] = p_from in continues and l_from == l_to
            else:
                trans[i, j] = p_from in closes
    return start, trans, end


def boundary_tags(tag_names: Sequence[str], tag_scheme: str) -> numpy.ndarray:
    """Which tags begin or end an entity, a bool per tag: BILUO's B, L and U,
    BIO's B (BIO has no tag that ends an entity: the next token's tag does)."""
    edges = {"BIO": ("B",), "BILUO": ("B", "L", "U")}[check_tag_scheme(tag_scheme)]
    return numpy.array([_split(tag)[0] in edges for tag in tag_names], dtype=bool)


def continuing_tags(tag_names: Sequence[str], tag_scheme: str) -> numpy.ndarray:
    """Which tags continue an entity from the token before, a bool per tag:
    BILUO's I and L, BIO's I."""
    inner = {"BIO": ("I",), "BILUO": ("I", "L")}[check_tag_scheme(tag_scheme)]
    return numpy.array([_split(tag)[0] in inner for tag in tag_names], dtype=bool)


def biluo_to_bio(tags: Sequence[str]) -> List[str]:
    mapping = {"L": "I", "U": "B"}
    out = []
    for tag in tags:
        prefix, label = _split(tag)
        out.append(f"{mapping.get(prefix, prefix)}-{label}" if label else tag)
    return out


def bio_to_biluo(tags: Sequence[str]) -> List[str]:
    out = []
    for i, tag in enumerate(tags):
        prefix, label = _split(tag)
        if not label:
            out.append(tag)
            continue
        nxt = tags[i + 1] if i + 1 < len(tags) else OUTSIDE
        continues = nxt == f"I-{label}"
        if prefix == "B":
            out.append(f"{'B' if continues else 'U'}-{label}")
        else:
            out.append(f"{'I' if continues else 'L'}-{label}")
    return out


def spans_from_tags(tags: Sequence[str], tag_scheme: str) -> List[Tuple[int, int, str]]:
    """(start, end, label) token spans of a valid tag sequence."""
    biluo = bio_to_biluo(tags) if check_tag_scheme(tag_scheme) == "BIO" else tags
    spans = []
    start = 0
    for i, tag in enumerate(biluo):
        prefix, label = _split(tag)
        if prefix == "U":
            spans.append((i, i + 1, label))
        elif prefix == "B":
            start = i
        elif prefix == "L":
            spans.append((start, i + 1, label))
    return spans


def tags_from_biluo(biluo: Sequence[str], tag_scheme: str) -> List[str]:
    return biluo_to_bio(biluo) if check_tag_scheme(tag_scheme) == "BIO" else list(biluo)


def entity_tags(label: str, length: int, tag_scheme: str) -> List[str]:
    """The tags that mark one entity of `length` tokens."""
    inner = [f"I-{label}"] * (length - 2)
    biluo = [f"U-{label}"] if length == 1 else [f"B-{label}", *inner, f"L-{label}"]
    return tags_from_biluo(biluo, tag_scheme)


def extending_tag(label: str, tag_scheme: str) -> Optional[str]:
    """The tag that, on the token after an entity, would make it longer: BIO's
    I-X; in BILUO the entity's own last tag (L or U) already closes it."""
    return f"I-{label}" if check_tag_scheme(tag_scheme) == "BIO" else None
