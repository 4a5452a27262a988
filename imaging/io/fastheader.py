"""A minimal, fast reader of the top-level header elements of a little-endian DICOM file.

``find_series`` reads tens of thousands of headers; pydicom's general reader spends most
of that time building datasets and converting values nobody asked for.  This reader walks
the element stream of a Part 10 file with ``struct`` only, keeps the raw bytes of the
wanted top-level tags, skips everything else (private blocks and sequences of any
nesting included) and stops at PixelData, whose position it reports.

It handles only the common case: a ``DICM`` preamble, a little-endian transfer syntax
(implicit, explicit, or any encapsulated one), text in ASCII, latin-1 (``ISO_IR 100``)
or UTF-8 (``ISO_IR 192``) and no wanted sequence.  Anything else (another character
set, big endian, deflate, an explicit-VR ``UN`` element of undefined length, a malformed
stream, a multi-frame functional-group header, a DICOMDIR) raises :class:`Fallback`,
and the caller reads the file with pydicom instead, so the result never depends on
which reader ran.
"""

from __future__ import annotations

import struct
from typing import Any, BinaryIO, Iterable

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataelem import RawDataElement

__all__ = ["Fallback", "FastHeader", "read_fast_header"]

_LONG_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UT", b"UN", b"UC", b"UR", b"SV", b"UV"})
_PIXEL_DATA = 0x7FE00010
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_IMPLICIT = "1.2.840.10008.1.2"
_BIG_OR_DEFLATE = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"})
#: Sequences whose presence sends the file to pydicom (multi-frame geometry, DICOMDIR).
_SEQUENCE_TAGS = frozenset({0x52009229, 0x52009230, 0x00041220})
_CHUNK = 1 << 16
#: SpecificCharacterSet values this reader decodes itself (ASCII, latin-1, UTF-8); any other
#: (Cyrillic, Greek, Chinese, ISO 2022 escapes, ...) sends the file to pydicom's decoders.
_FAST_CHARSETS = frozenset({"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192"})


class Fallback(Exception):
    """This file needs the general (pydicom) reader."""


class _Buffer:
    """Bytes of the file read on demand, in chunks."""

    def __init__(self, fp: BinaryIO, start: bytes) -> None:
        self.fp = fp
        self.data = bytearray(start)
        self.eof = False

    def need(self, end: int) -> bool:
        while len(self.data) < end and not self.eof:
            chunk = self.fp.read(max(_CHUNK, end - len(self.data)))
            if not chunk:
                self.eof = True
            self.data += chunk
        return len(self.data) >= end


class FastHeader:
    """Raw top-level elements of one file, with the small part of pydicom's Dataset API used here.

    Attributes
    ----------
    transfer_syntax, media_class, media_instance : str
        From the file meta group.
    pixel_pos : int or None
        Byte offset of the PixelData element tag (None when absent).
    """

    def __init__(self, meta: dict[int, bytes], elements: dict[int, RawDataElement], pixel_pos: int | None) -> None:
        self._meta = meta
        self._elements = elements
        self.pixel_pos = pixel_pos
        self.transfer_syntax = _ascii(meta.get(0x00020010))
        self.media_class = _ascii(meta.get(0x00020002))
        self.media_instance = _ascii(meta.get(0x00020003))
        charset = _ascii(elements[0x00080005].value) if 0x00080005 in elements else ""
        self._encoding = "utf-8" if "ISO_IR 192" in charset else "latin-1"

    def get_item(self, tag: int) -> RawDataElement | None:
        return self._elements.get(int(tag))

    def get(self, name: str, default: Any = None) -> Any:
        elem = self._elements.get(tag_for_keyword(name) or -1)
        if elem is None:
            return default
        text = bytes(elem.value).decode(self._encoding, errors="replace").strip(" \0")
        return [v.strip(" \0") for v in text.split("\\")] if "\\" in text else text

    def __contains__(self, name: object) -> bool:
        tag = tag_for_keyword(str(name))
        return tag is not None and tag in self._elements


def _ascii(value: bytes | None) -> str:
    return "" if value is None else bytes(value).decode("latin-1").strip(" \0")


def _skip_undefined(buf: _Buffer, pos: int, implicit: bool, depth: int = 0) -> int:
    """Position just after the sequence delimiter of an undefined-length sequence at ``pos``."""
    if depth > 16:
        raise Fallback("sequences nested too deep")
    while True:
        if not buf.need(pos + 8):
            raise Fallback("file ends inside a sequence")
        group, elem, length = struct.unpack_from("<HHI", buf.data, pos)
        tag = (group << 16) | elem
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise Fallback(f"unexpected tag {tag:08X} in a sequence")
        if length != 0xFFFFFFFF:
            pos += length
            continue
        # item of undefined length: elements until the item delimiter
        while True:
            pos, tag, _, _ = _element(buf, pos, implicit, depth + 1, inside=True)
            if tag == _ITEM_END:
                break


def _element(buf: _Buffer, pos: int, implicit: bool, depth: int, *, inside: bool = False) -> tuple[int, int, bytes | None, int]:
    """Parse one element at ``pos``; returns (next position, tag, VR, value offset)."""
    if not buf.need(pos + 8):
        raise EOFError
    group, elem = struct.unpack_from("<HH", buf.data, pos)
    tag = (group << 16) | elem
    if group == 0xFFFE:  # item / delimiters: 4-byte length, no VR
        (length,) = struct.unpack_from("<I", buf.data, pos + 4)
        if tag == _ITEM_END and inside:
            return pos + 8, tag, None, pos + 8
        raise Fallback(f"delimiter {tag:08X} outside a sequence")
    if implicit:
        vr = None
        (length,) = struct.unpack_from("<I", buf.data, pos + 4)
        start = pos + 8
    else:
        vr = bytes(buf.data[pos + 4 : pos + 6])
        if vr in _LONG_VRS:
            if not buf.need(pos + 12):
                raise EOFError
            (length,) = struct.unpack_from("<I", buf.data, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", buf.data, pos + 6)
            start = pos + 8
    if tag == _PIXEL_DATA and not inside:
        return pos, tag, vr, start
    if length == 0xFFFFFFFF:
        if vr == b"UN":
            raise Fallback("UN element of undefined length")
        if vr not in (None, b"SQ"):
            raise Fallback(f"undefined length for VR {vr!r}")
        return _skip_undefined(buf, start, implicit, depth), tag, b"SQ", start
    return start + length, tag, vr, start


def read_fast_header(fp: BinaryIO, start: bytes, wanted: Iterable[int]) -> FastHeader:
    """Read the meta group and the wanted top-level elements of an open Part 10 file.

    Parameters
    ----------
    fp : binary file
        Positioned just after the first 132 bytes (preamble and ``DICM``).
    start : bytes
        Those 132 bytes.
    wanted : iterable of int
        Tags whose raw values to keep.

    Raises
    ------
    Fallback
        When the file needs the general reader (see module docstring).
    """
    wanted = set(wanted)
    buf = _Buffer(fp, start)
    meta: dict[int, bytes] = {}
    pos = 132
    while True:
        if not buf.need(pos + 8):
            raise Fallback("file ends inside the meta group")
        group, elem = struct.unpack_from("<HH", buf.data, pos)
        if group != 0x0002:
            break
        vr = bytes(buf.data[pos + 4 : pos + 6])
        if vr in _LONG_VRS:
            buf.need(pos + 12)
            (length,) = struct.unpack_from("<I", buf.data, pos + 8)
            value_start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", buf.data, pos + 6)
            value_start = pos + 8
        if length == 0xFFFFFFFF or not buf.need(value_start + length):
            raise Fallback("malformed meta group")
        meta[(group << 16) | elem] = bytes(buf.data[value_start : value_start + length])
        pos = value_start + length
    syntax = _ascii(meta.get(0x00020010))
    if not syntax or syntax in _BIG_OR_DEFLATE:
        raise Fallback(f"transfer syntax {syntax or 'missing'}")
    implicit = syntax == _IMPLICIT
    elements: dict[int, RawDataElement] = {}
    pixel_pos: int | None = None
    while True:
        try:
            next_pos, tag, vr, value_start = _element(buf, pos, implicit, 0)
        except EOFError:
            if pos != len(buf.data):
                raise Fallback("file ends inside an element") from None
            break
        if tag == _PIXEL_DATA:
            pixel_pos = pos
            break
        if tag > _PIXEL_DATA:
            break
        if tag in _SEQUENCE_TAGS:
            raise Fallback(f"sequence {keyword_for_tag(tag)} present")
        if tag in wanted:
            if not buf.need(next_pos):
                raise Fallback("file ends inside a wanted element")
            value = bytes(buf.data[value_start:next_pos])
            elements[tag] = RawDataElement(tag, vr.decode() if vr else None, len(value), value, value_start, implicit, True)
        pos = next_pos
    charset = _ascii(elements[0x00080005].value) if 0x00080005 in elements else ""
    if charset not in _FAST_CHARSETS:
        raise Fallback(f"character set {charset!r}")
    return FastHeader(meta, elements, pixel_pos)
