"""i2b2 2006 / 2014 de-identification XML to Docs.

Two layouts are recognised from the document structure:

- 2014 style (also n2c2 2018 and others): a root element (`<deIdi2b2>`) with
  `<TEXT>` (usually CDATA) and `<TAGS>`, whose children are standoff
  annotations such as `<DATE id="P0" start="16" end="26" text="2067-05-03"
  TYPE="DATE"/>`; one Doc per file. The label is the `TYPE` attribute,
  falling back to the element name; a `text` attribute, when present, must
  match the text at the offsets.
- 2006 style: `<ROOT>` with `<RECORD ID="...">` elements whose `<TEXT>`
  holds inline `<PHI TYPE="DATE">2067-05-03</PHI>` tags; one Doc per record,
  labelled by `TYPE` (falling back to the element name). Elements nested
  inside an inline tag keep their text but are not entities (counted).

Character spans become tokens of a blank pipeline's tokenizer with the same
alignment and overlap policy as brat (see `spans`): trim whitespace, expand
to token boundaries, every distinct entity in `doc.spans["entities_all"]`,
the longest of overlapping entities in `doc.ents`. Sentence boundaries come
from the `sentences` splitter and never cut an entity (see `sentences`). A zero-length
tag (`start == end`, or an empty inline element) is an error, as are offsets
beyond the text. A file that declares no encoding (or UTF-8) must be UTF-8:
other bytes are an error naming the line and byte offset.
"""
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator, Optional, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc

from .errors import ConversionError
from .files import decode_utf8, list_files
from .sentences import check_splitter, set_sentences
from .spans import align_char_span, check_label, set_entities
from .stats import ConversionStats


def read_i2b2_xml(
    path: Union[str, Path],
    *,
    nlp: Optional[Language] = None,
    stats: Optional[ConversionStats] = None,
    sentences: str = "sentencizer",
) -> Iterator[Doc]:
    """Yield Docs from one XML file or every `.xml` file in a folder;
    `sentences` names the splitter."""
    nlp = nlp if nlp is not None else spacy.blank("en")
    stats = stats if stats is not None else ConversionStats()
    check_splitter(sentences)
    for file_path, name in list_files(path, (".xml",)):
        stats.begin_file(name)
        root = _parse(file_path)
        if root.find("TEXT") is not None:
            docs = [_read_standoff(root, file_path, nlp, stats)]
        elif root.tag == "RECORD" or root.find("RECORD") is not None:
            records = [root] if root.tag == "RECORD" else root.findall("RECORD")
            docs = [_read_inline(record, file_path, nlp, stats) for record in records]
        else:
            raise ConversionError(
                file_path,
                f"root element <{root.tag}>",
                "neither a <TEXT> child (2014 style) nor <RECORD> elements (2006 style)",
                hint="check that this is an i2b2 de-identification file",
            )
        for doc in docs:
            if not doc.text.strip():
                stats.skipped["empty documents"] += 1
                continue
            set_sentences(doc, sentences, stats)
            doc.user_data["source_file"] = name
            stats.read_doc()
            yield doc


XML_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _parse(path: Path) -> ET.Element:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConversionError(path, "whole file", "cannot be read", err.strerror) from None
    declared = XML_ENCODING.match(data)
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if not utf16 and (declared is None or declared.group(1).lower() in (b"utf-8", b"utf8")):
        # Expat would report Latin-1 bytes as "not well-formed (invalid token)".
        decode_utf8(data, path)
    try:
        return ET.fromstring(data)
    except ET.ParseError as err:
        line, column = err.position
        raise ConversionError(
            path,
            f"line {line}, column {column}",
            "not well-formed XML",
            str(err),
            hint="fix the XML (an unescaped '&' or '<' in the text is the usual cause)",
        ) from None


def _read_standoff(root: ET.Element, path: Path, nlp: Language, stats: ConversionStats) -> Doc:
    text = root.find("TEXT").text or ""
    doc = nlp.make_doc(text)
    tags = root.find("TAGS")
    mentions = []
    for i, tag in enumerate(tags if tags is not None else [], start=1):
        location = f"tag {tag.get('id', f'#{i}')} <{tag.tag}>"
        label = check_label(tag.get("TYPE") or tag.tag, path, location)
        offsets = (tag.get("start", ""), tag.get("end", ""))
        if not all(value.isascii() and value.isdigit() for value in offsets):
            raise ConversionError(
                path,
                location,
                "start and end must be character offsets",
                " ".join(offsets),
                hint="give integer start= and end= attributes",
            )
        mentions.append(
            align_char_span(
                doc,
                text,
                int(offsets[0]),
                int(offsets[1]),
                label,
                path,
                location,
                stats,
                expected_text=tag.get("text"),
            )
        )
    set_entities(doc, mentions, stats)
    return doc


def _read_inline(record: ET.Element, path: Path, nlp: Language, stats: ConversionStats) -> Doc:
    record_id = record.get("ID", "?")
    text_element = record.find("TEXT")
    if text_element is None:
        raise ConversionError(
            path, f"record {record_id}", "no <TEXT> element", hint="each <RECORD> needs a <TEXT>"
        )
    pieces = [text_element.text or ""]
    offset = len(pieces[0])
    spans = []
    for i, element in enumerate(text_element, start=1):
        content = "".join(element.itertext())
        location = f"record {record_id}, inline tag #{i} <{element.tag}>"
        label = check_label(element.get("TYPE") or element.tag, path, location)
        spans.append((offset, offset + len(content), label, location))
        nested = sum(1 for _ in element.iter()) - 1
        if nested:
            stats.skipped["nested inline elements"] += nested
        tail = element.tail or ""
        pieces.extend((content, tail))
        offset += len(content) + len(tail)
    text = "".join(pieces)
    doc = nlp.make_doc(text)
    mentions = [
        align_char_span(doc, text, start, end, label, path, location, stats)
        for start, end, label, location in spans
    ]
    set_entities(doc, mentions, stats)
    doc.user_data["record_id"] = record_id
    return doc
