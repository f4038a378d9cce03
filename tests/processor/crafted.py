"""Image files written byte by byte, for what Pillow cannot write: 16-bit colour, chunk order.

Each writer is the format's specification at its simplest (one strip, one IDAT, no
compression options), so a test knows exactly what the file holds.
"""

import struct
import zlib

import numpy as np
from PIL import ExifTags, Image

EXIF_ORIENTATION = 0x0112
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels: grey, grey+alpha, RGB, RGBA


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def png16(pixels: np.ndarray, *, trns: tuple[int, ...] | None = None) -> bytes:
    """A 16-bit PNG of ``pixels`` (uint16, HxW grey or HxWxC with C in 2, 3, 4)."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    header = struct.pack(">IIBBBBB", width, height, 16, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    rows = pixels.astype(">u2").reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 on every row
    transparency = b"" if trns is None else _chunk(b"tRNS", struct.pack(f">{len(trns)}H", *trns))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + transparency
        + _chunk(b"IDAT", zlib.compress(raw))
        + _chunk(b"IEND", b"")
    )


def with_png_exif(png: bytes, exif: bytes, *, after_pixels: bool) -> bytes:
    """``png`` with an eXIf chunk right after IHDR, or after the pixel data (before IEND)."""
    chunk = _chunk(b"eXIf", exif.removeprefix(b"Exif\x00\x00"))
    if after_pixels:
        assert png[-8:-4] == b"IEND"
        return png[:-12] + chunk + png[-12:]
    return png[:33] + chunk + png[33:]


def tiff16(pixels: np.ndarray, *, orientation: int = 1) -> bytes:
    """A little-endian 16-bit RGB or RGBA TIFF (uint16 HxWx3 or HxWx4) in one strip."""
    height, width, samples = pixels.shape
    entries: list[tuple[int, int, int, int]] = []  # tag, type (3 SHORT, 4 LONG), count, value
    directory_size = 2 + 12 * (12 if samples == 4 else 11) + 4
    bits_at = 8 + directory_size
    data_at = bits_at + 2 * samples
    data = pixels.astype("<u2").tobytes()
    entries += [(256, 3, 1, width), (257, 3, 1, height), (258, 3, samples, bits_at)]
    entries += [(259, 3, 1, 1), (262, 3, 1, 2), (273, 4, 1, data_at), (274, 3, 1, orientation)]
    entries += [(277, 3, 1, samples), (278, 3, 1, height), (279, 4, 1, len(data))]
    entries += [(284, 3, 1, 1)]
    if samples == 4:
        entries.append((338, 3, 1, 2))  # unassociated alpha
    out = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    for tag, kind, count, value in sorted(entries):
        if kind == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    out += struct.pack("<I", 0)
    assert len(out) == bits_at
    return out + struct.pack(f"<{samples}H", *([16] * samples)) + data


def camera_exif(orientation: int = 1) -> Image.Exif:
    """EXIF as a phone writes it: camera, time taken with its offset, GPS and pixel size."""
    block = Image.Exif()
    block[ExifTags.Base.Make] = "Darkroom"
    block[ExifTags.Base.Model] = "Phone 1"
    block[EXIF_ORIENTATION] = orientation
    details = block.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.DateTimeOriginal] = "2024:05:06 07:08:09"
    details[ExifTags.Base.OffsetTimeOriginal] = "+02:00"
    details[ExifTags.Base.ExifImageWidth] = 48
    details[ExifTags.Base.ExifImageHeight] = 32
    gps = block.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 0.0)
    return block


def exif_with_thumbnail(thumbnail: bytes) -> bytes:
    """A camera's EXIF block: IFD0 with the make, then IFD1 pointing at a JPEG thumbnail."""
    make = b"Darkroom\x00"
    ifd0, text, ifd1 = 8, 26, 36
    data = ifd1 + 30
    tiff = b"II*\x00" + struct.pack("<I", ifd0)
    tiff += struct.pack("<HHHII", 1, 271, 2, len(make), text) + struct.pack("<I", ifd1)
    tiff += make + b"\x00"  # pad IFD1 to an even offset
    tiff += struct.pack("<H", 2)
    tiff += struct.pack("<HHII", 513, 4, 1, data) + struct.pack("<HHII", 514, 4, 1, len(thumbnail))
    tiff += struct.pack("<I", 0)
    assert len(tiff) == data
    return b"Exif\x00\x00" + tiff + thumbnail
