"""Where the pixel bytes of a DICOM file lie, and whether the file was cut short before their end.

After the header scan (:mod:`imaging.io.headers`) stops at the PixelData element,
:func:`locate_pixel_data` reads that element's own header: for uncompressed syntaxes it
gives the byte offset and length of the pixel values, so that
:func:`~imaging.io.load.load_scan` can read them straight from disk; for encapsulated
(compressed) pixel data it walks the fragment items to their delimiter.  Either way a
file that ends too early is reported as ``truncated: ...`` before any pixel is decoded.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

__all__ = ["UNCOMPRESSED_SYNTAXES", "IMPLICIT_VR_LITTLE_ENDIAN", "has_pixel_element_header", "locate_pixel_data"]

#: DICOM's default transfer syntax, also assumed when a file names none.
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
#: Transfer syntaxes whose pixel bytes lie uncompressed, little endian, in the file.
UNCOMPRESSED_SYNTAXES = frozenset({IMPLICIT_VR_LITTLE_ENDIAN, "1.2.840.10008.1.2.1"})


def has_pixel_element_header(transfer_syntax: str) -> bool:
    """True for the syntaxes whose PixelData element :func:`locate_pixel_data` can read.

    Uncompressed little endian, JPEG family (``1.2.840.10008.1.2.4.*``) and RLE; not
    deflated or big endian files.
    """
    return (transfer_syntax in UNCOMPRESSED_SYNTAXES or transfer_syntax.startswith("1.2.840.10008.1.2.4")
            or transfer_syntax == "1.2.840.10008.1.2.5")


def locate_pixel_data(fp: BinaryIO, pos: int, transfer_syntax: str,
                      file_size: int) -> tuple[int | None, int | None, str | None]:
    """Offset and length of the PixelData value, or a problem when the file is cut short.

    Parameters
    ----------
    fp : binary file
        The open file.
    pos : int
        Byte offset where the header parse stopped (the PixelData tag when present).
    transfer_syntax : str
        The file's TransferSyntaxUID.
    file_size : int
        Bytes.

    Returns
    -------
    offset, length : int or None
        Of the PixelData value, bytes (None when it is not found or encapsulated).
    problem : str or None
        ``truncated: ...`` when the file ends before the pixel data does.
    """
    fp.seek(pos)
    head = fp.read(12)
    if len(head) < 8:
        return None, None, "truncated: file ends before PixelData"
    group, elem = struct.unpack("<HH", head[:4])
    if (group, elem) != (0x7FE0, 0x0010):
        return None, None, None
    if transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        length, offset = struct.unpack("<I", head[4:8])[0], pos + 8
    elif has_pixel_element_header(transfer_syntax):
        if len(head) < 12:
            return None, None, "truncated: file ends inside the PixelData element"
        length, offset = struct.unpack("<I", head[8:12])[0], pos + 12
    else:
        return None, None, None
    if length == 0xFFFFFFFF:  # encapsulated (compressed) frames
        return None, None, _encapsulated_problem(fp, offset, file_size)
    if offset + length > file_size:
        return offset, length, (
            f"truncated: PixelData needs {length} bytes but only {max(0, file_size - offset)} remain"
        )
    return offset, length, None


#: Item and sequence-delimiter tags of encapsulated pixel data, (group, element).
_ITEM, _SEQ_END = (0xFFFE, 0xE000), (0xFFFE, 0xE0DD)


def _encapsulated_problem(fp: BinaryIO, offset: int, file_size: int) -> str | None:
    """A problem when encapsulated (compressed) pixel data ends before its delimiter.

    Walks the item headers (8 bytes each, then skips the fragment); a file cut short
    runs out before the (FFFE,E0DD) sequence delimiter.  ``None`` when complete or when
    the layout is not the expected one (left to the pixel decoder).
    """
    pos = offset
    while True:
        fp.seek(pos)
        head = fp.read(8)
        if len(head) < 8:
            return f"truncated: file is truncated ({file_size} bytes; it ends inside the compressed PixelData)"
        group, elem, length = struct.unpack("<HHI", head)
        if (group, elem) == _SEQ_END:
            return None
        if (group, elem) != _ITEM or length == 0xFFFFFFFF:
            return None
        pos += 8 + length
        if pos > file_size:
            return f"truncated: file is truncated ({file_size} bytes; it ends inside the compressed PixelData)"
