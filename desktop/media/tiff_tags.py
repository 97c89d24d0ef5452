"""TIFF directories (IFDs) as EXIF blocks and TIFF files hold them: orientation, descriptive tags.

EXIF blocks are TIFF-structured, so reading a JPEG's EXIF, building EXIF from a TIFF's tags and
writing EXIF sub-IFDs into a TIFF output all go through the same few functions. Pillow
(de)serializes the tags; copying each tag's type keeps a directory valid (Pillow would guess
types of the many EXIF tags it does not know), and ASCII values go back as the original bytes
(UTF-8 survives).
"""

from __future__ import annotations

import io
import logging
import os
import struct
from collections.abc import Iterable, Mapping
from typing import IO

from PIL import ImageFile, TiffImagePlugin, TiffTags

logger = logging.getLogger(__name__)

EXIF_PREFIX = b"Exif\x00\x00"
TAG_ORIENTATION = 0x0112
_TAG_EXIF_IFD = 0x8769
_TAG_GPS_IFD = 0x8825
_TAG_INTEROP_IFD = 0xA005
# IFD0 tags that describe the picture (not its pixel layout), carried between TIFF and EXIF:
# DocumentName, ImageDescription, Make, Model, PageName, Software, DateTime, Artist, HostComputer,
# Rating, RatingPercent, Copyright, Windows XPTitle/XPComment/XPAuthor/XPKeywords/XPSubject.
_DESCRIPTIVE_IFD0_TAGS = (269, 270, 271, 272, 285, 305, 306, 315, 316, 18246, 18249, 33432, *range(40091, 40096))
_TIFFFILE_DESCRIPTION_PREFIXES = (b'{"shape":', b"ImageJ=", b"<?xml version")  # machine-made, not captions
_POINTER_TAGS = frozenset({_TAG_EXIF_IFD, _TAG_GPS_IFD, _TAG_INTEROP_IFD, 330})  # offsets cannot be copied
CLASSIC_TIFF_HEADER = b"II*\x00\x08\x00\x00\x00"


# --------------------------------------------------------------------------- reading
def plausible_exif_tiff(tiff: bytes) -> bool:
    """Whether an EXIF payload has a classic TIFF header whose first IFD lies inside it."""
    endian = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if endian is None or len(tiff) < 14:
        return False
    version, ifd0 = struct.unpack_from(endian + "HI", tiff, 2)
    return version == 42 and ifd0 >= 8 and ifd0 + 2 <= len(tiff)


def _ifd_entries(buf: bytes, endian: str, offset: int) -> list[tuple[int, int, int, int, int]]:
    """Entries (tag, type, count, raw value, entry offset) of the classic-TIFF IFD at ``offset``."""
    if offset + 2 > len(buf):
        return []
    (count,) = struct.unpack_from(endian + "H", buf, offset)
    entries = []
    for index in range(count):
        position = offset + 2 + 12 * index
        if position + 12 > len(buf):
            break
        tag, kind, n, value = struct.unpack_from(endian + "HHII", buf, position)
        entries.append((tag, kind, n, value, position))
    return entries


def _find_orientations(tiff: bytes | memoryview) -> list[tuple[int, int, str]]:
    """(orientation, byte offset of its value, struct code) of each Orientation entry in IFD0 of a
    TIFF-structured buffer, in their order (a damaged file may hold several).

    Works on TIFF files (classic and BigTIFF) and on EXIF blocks without their prefix; empty when
    there is no Orientation tag or the structure is damaged.
    """
    endian = {b"II": "<", b"MM": ">"}.get(bytes(tiff[:2]))
    if endian is None or len(tiff) < 16:
        return []
    (version,) = struct.unpack_from(endian + "H", tiff, 2)
    if version == 42:
        (ifd0,) = struct.unpack_from(endian + "I", tiff, 4)
        count_code, entry_code, entry_size, value_at = "H", "HHI", 12, 8
    elif version == 43:
        (ifd0,) = struct.unpack_from(endian + "Q", tiff, 8)
        count_code, entry_code, entry_size, value_at = "Q", "HHQ", 20, 12
    else:
        return []
    count_size = struct.calcsize(endian + count_code)
    if ifd0 + count_size > len(tiff):
        return []
    (count,) = struct.unpack_from(endian + count_code, tiff, ifd0)
    found = []
    for index in range(count):
        position = ifd0 + count_size + entry_size * index
        if position + entry_size > len(tiff):
            break
        tag, kind, n = struct.unpack_from(endian + entry_code, tiff, position)
        if tag == TAG_ORIENTATION and n >= 1 and kind in (3, 4):
            code = endian + ("H" if kind == 3 else "I")
            found.append((struct.unpack_from(code, tiff, position + value_at)[0], position + value_at, code))
    return found


def reset_orientation(buffer: bytes, offset: int = 0) -> tuple[bytes, int]:
    """Set the IFD0 Orientation of the TIFF structure at ``buffer[offset:]`` to 1 (in a copy).

    Returns the new buffer and the orientation found (1 when there is none). Of several Orientation
    entries the first counts (as for libexif, libtiff and browsers), and every one is set to 1, so
    no reader of the output finds another one to apply.
    """
    found = _find_orientations(memoryview(buffer)[offset:])
    if all(value == 1 for value, _, _ in found):
        return buffer, 1
    patched = bytearray(buffer)
    for _, position, code in found:
        struct.pack_into(code, patched, offset + position, 1)
    return bytes(patched), found[0][0]


def exif_from_tiff_tags(im: ImageFile.ImageFile, data: bytes) -> bytes | None:
    """An EXIF block from a TIFF's descriptive IFD0 tags and its Exif/GPS sub-IFDs."""
    try:
        top, subs = descriptive_ifds(data, im.tag_v2)
        top.tagtype[TAG_ORIENTATION] = TiffTags.SHORT
        top[TAG_ORIENTATION] = 1
        if len(top) == 1 and not subs:  # nothing but the Orientation
            return None
        return EXIF_PREFIX + CLASSIC_TIFF_HEADER + layout_ifds(top, subs, len(CLASSIC_TIFF_HEADER))
    except Exception as exc:  # metadata must never make a readable image unreadable
        logger.warning("ignoring unreadable TIFF metadata tags: %s", exc)
        return None


# tags; copying each tag's type keeps the directory valid (Pillow would guess types of the many
# EXIF tags it does not know), and ASCII values go back as the original bytes (UTF-8 survives).
def load_ifd(tiff: bytes, offset: int, group: int | None = None) -> TiffImagePlugin.ImageFileDirectory_v2:
    """The IFD at ``offset`` of a TIFF-structured buffer (a TIFF file or an EXIF block without prefix)."""
    bigtiff = tiff[2:4] in (b"+\x00", b"\x00+")
    ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=tiff[:16] if bigtiff else tiff[:8], group=group)
    stream = io.BytesIO(tiff)
    stream.seek(offset)
    ifd.load(stream)
    return ifd


def _copy_ifd(
    source: TiffImagePlugin.ImageFileDirectory_v2, tags: Iterable[int] | None = None, group: int | None = None
) -> TiffImagePlugin.ImageFileDirectory_v2:
    """A little-endian classic copy of ``tags`` (default all) of ``source``, types kept, pointers left out."""
    target = TiffImagePlugin.ImageFileDirectory_v2(ifh=CLASSIC_TIFF_HEADER, group=group)
    for tag in sorted(source) if tags is None else tags:
        if tag not in source or tag in _POINTER_TAGS:
            continue
        value = source[tag]
        target.tagtype[tag] = source.tagtype[tag]
        target[tag] = value.encode("latin-1", "replace") if isinstance(value, str) else value
    return target


def descriptive_ifds(
    tiff: bytes, ifd0: TiffImagePlugin.ImageFileDirectory_v2
) -> tuple[TiffImagePlugin.ImageFileDirectory_v2, dict[int, TiffImagePlugin.ImageFileDirectory_v2]]:
    """The descriptive tags of ``ifd0`` and copies of its Exif and GPS sub-IFDs (read from ``tiff``)."""
    top = _copy_ifd(ifd0, _DESCRIPTIVE_IFD0_TAGS)
    description = top.get(270)
    if isinstance(description, bytes) and description.lstrip().startswith(_TIFFFILE_DESCRIPTION_PREFIXES):
        del top[270]  # tifffile/ImageJ/OME metadata, meaningless once the pixels change
    subs = {}
    for tag in (_TAG_EXIF_IFD, _TAG_GPS_IFD):
        offset = ifd0.get(tag)
        if isinstance(offset, int) and 8 <= offset < len(tiff):
            sub = _copy_ifd(load_ifd(tiff, offset, group=tag), group=tag)
            if len(sub):
                subs[tag] = sub
    return top, subs


def layout_ifds(
    top: TiffImagePlugin.ImageFileDirectory_v2,
    subs: Mapping[int, TiffImagePlugin.ImageFileDirectory_v2],
    base: int,
) -> bytes:
    """Serialize ``top`` at file offset ``base`` followed by the sub-IFDs it then points to."""
    for tag in subs:
        top.tagtype[tag] = TiffTags.LONG
        top[tag] = 0
    position = base + len(_even(top.tobytes(base)))
    blobs = []
    for tag, sub in subs.items():
        top[tag] = position
        blobs.append(_even(sub.tobytes(position)))
        position += len(blobs[-1])
    head = _even(top.tobytes(base))
    if base + len(head) + sum(map(len, blobs)) != position:  # pragma: no cover - Pillow changed
        raise ValueError("inconsistent IFD layout")
    return head + b"".join(blobs)


def _even(blob: bytes) -> bytes:
    """TIFF offsets must be even (word-aligned)."""
    return blob + b"\x00" if len(blob) % 2 else blob


# --------------------------------------------------------------------------- writing EXIF into a TIFF file
def append_exif_tags(fh: IO[bytes], exif: bytes) -> None:
    """Add the descriptive IFD0 tags and Exif/GPS sub-IFDs of an EXIF block to a written TIFF.

    tifffile does not write EXIF sub-IFDs. The tags are serialized at the end of the file, then a
    copy of the first IFD with their entries merged in is appended and the header pointed to it
    (the old first IFD stays as a few unused bytes; the pixel data does not move).
    """
    fh.seek(0)
    header = fh.read(8)
    if header[:4] != b"II*\x00":
        logger.warning("EXIF not written: the TIFF is not a little-endian classic TIFF (BigTIFF?)")
        return
    end = fh.seek(0, os.SEEK_END)
    try:
        blob = _exif_tags_blob(exif, end + end % 2)
    except Exception as exc:  # a damaged EXIF block must not fail the write
        logger.warning("EXIF not written to the TIFF: the EXIF block is unreadable (%s)", exc)
        return
    if blob is None:
        return
    (ifd0,) = struct.unpack_from("<I", header, 4)
    fh.seek(ifd0)
    (count,) = struct.unpack("<H", fh.read(2))
    ifd_bytes = struct.pack("<H", count) + fh.read(12 * count)
    next_ifd = fh.read(4)
    entries = {tag: ifd_bytes[pos : pos + 12] for tag, _, _, _, pos in _ifd_entries(ifd_bytes, "<", 0)}
    entries.update({tag: blob[pos : pos + 12] for tag, _, _, _, pos in _ifd_entries(blob, "<", 0)})

    _pad_to_word(fh)
    fh.write(blob)
    new_ifd0 = _pad_to_word(fh)
    fh.write(struct.pack("<H", len(entries)) + b"".join(entries[tag] for tag in sorted(entries)) + next_ifd)
    fh.seek(4)
    fh.write(struct.pack("<I", new_ifd0))
    fh.seek(0, os.SEEK_END)


def _exif_tags_blob(exif: bytes, position: int) -> bytes | None:
    """The descriptive IFD0 tags and Exif/GPS sub-IFDs of an EXIF block, laid out at ``position``."""
    tiff = exif[len(EXIF_PREFIX) :] if exif.startswith(EXIF_PREFIX) else exif
    endian = "<" if tiff[:2] == b"II" else ">"
    top, subs = descriptive_ifds(tiff, load_ifd(tiff, struct.unpack_from(endian + "I", tiff, 4)[0]))
    if not len(top) and not subs:
        return None
    return layout_ifds(top, subs, position)


def _pad_to_word(fh: IO[bytes]) -> int:
    end = fh.seek(0, os.SEEK_END)
    if end % 2:
        fh.write(b"\x00")
        end += 1
    if end > 0xFFFFFFFF:
        raise ValueError("TIFF too large for classic TIFF offsets")
    return end
