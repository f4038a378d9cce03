"""Perceptual hashes of photos, their distances, and the bands that index them.

The hash is a 64-bit pHash: the grayscale image is area-averaged to 32x32 (as float32, so no
rounding to uint8 in between), transformed with a 2-D DCT-II (``cv2.dct``), and the 8x8 block
of lowest frequencies is read in row-major order, DC first. Bit 63 (the most significant) is
the DC coefficient, bit 0 the (7, 7) one; a bit is 1 when its coefficient is strictly greater
than the median of the 63 AC coefficients (the DC term is left out of the median because it is
the image's mean brightness, not its structure). Scaling the brightness scales every
coefficient and the median alike, so the hash does not change.

For search the hash is cut into 4 bands of 16 bits. Two hashes within distance d differ in at
most floor(d / 4) bits of at least one band (pigeonhole), so probing every band value within
that many bit flips of the query's finds every candidate; the exact distance is checked after.
"""

from collections.abc import Iterator, Mapping
from itertools import combinations

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "BANDS",
    "BAND_BITS",
    "HASH_BITS",
    "band_keys",
    "band_radius",
    "bands",
    "components",
    "from_hex",
    "hamming",
    "neighbours",
    "perceptual_hash",
    "to_hex",
    "to_signed",
    "to_unsigned",
]

HASH_BITS = 64
BANDS = 4
BAND_BITS = HASH_BITS // BANDS
_BAND_MASK = (1 << BAND_BITS) - 1
_SIDE = 32
_LOW = 8


def perceptual_hash(gray: npt.NDArray[np.uint8]) -> int:
    """The 64-bit pHash of a 2-D grayscale image of any size (see the module docstring)."""
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale array, got shape {gray.shape}")
    small = cv2.resize(gray.astype(np.float32), (_SIDE, _SIDE), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:_LOW, :_LOW].ravel()
    median = float(np.median(low[1:]))
    value = 0
    for coefficient in low:
        value = (value << 1) | int(coefficient > median)
    return value


def hamming(a: int, b: int) -> int:
    """How many of the 64 bits differ between two hashes."""
    return (a ^ b).bit_count()


def to_hex(value: int) -> str:
    """The hash as 16 lowercase hex characters, as records keep it."""
    return f"{value:016x}"


def from_hex(text: str) -> int:
    """The hash written by to_hex; ValueError for anything else."""
    if len(text) != HASH_BITS // 4 or text != text.lower():
        raise ValueError("a hash is 16 lowercase hex characters")
    return int(text, 16)


def to_signed(value: int) -> int:
    """The unsigned 64-bit hash as the signed int64 SQLite and BSON can store."""
    return value - (1 << HASH_BITS) if value >= 1 << (HASH_BITS - 1) else value


def to_unsigned(value: int) -> int:
    """The inverse of to_signed."""
    return value + (1 << HASH_BITS) if value < 0 else value


def bands(value: int) -> tuple[int, int, int, int]:
    """The four 16-bit bands of the hash, most significant first."""
    return (
        (value >> 48) & _BAND_MASK,
        (value >> 32) & _BAND_MASK,
        (value >> 16) & _BAND_MASK,
        value & _BAND_MASK,
    )


def band_keys(value: int) -> list[int]:
    """The hash's bands as single ints, band * 65536 + value, for one multikey index."""
    return [band << BAND_BITS | part for band, part in enumerate(bands(value))]


def band_radius(max_distance: int) -> int:
    """How many bit flips per band to probe to find every hash within max_distance."""
    if max_distance < 0:
        raise ValueError("max_distance must not be negative")
    return max_distance // BANDS


def neighbours(value: int, radius: int) -> Iterator[int]:
    """Every 16-bit band value within radius bit flips of value, the value itself first."""
    if not 0 <= radius <= BAND_BITS:
        raise ValueError(f"radius must be within 0..{BAND_BITS}")
    for flips in range(radius + 1):
        for positions in combinations(range(BAND_BITS), flips):
            mask = 0
            for position in positions:
                mask |= 1 << position
            yield value ^ mask


def components(hashes: Mapping[str, int], distance: int) -> list[list[str]]:
    """The single-link groups of the hashes: chains of pairs within distance, each sorted.

    Pairwise, so for the members of one group (what a delete splits), not a whole catalog.
    """
    ids = sorted(hashes)
    parent = {image_id: image_id for image_id in ids}

    def root(image_id: str) -> str:
        while parent[image_id] != image_id:
            parent[image_id] = parent[parent[image_id]]
            image_id = parent[image_id]
        return image_id

    for index, first in enumerate(ids):
        for second in ids[index + 1 :]:
            if hamming(hashes[first], hashes[second]) <= distance:
                parent[root(second)] = root(first)
    groups: dict[str, list[str]] = {}
    for image_id in ids:
        groups.setdefault(root(image_id), []).append(image_id)
    return list(groups.values())
