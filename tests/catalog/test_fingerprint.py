"""The perceptual hash on arrays whose DCT is known, and the band helpers it is indexed by."""

from math import comb

import numpy as np
import pytest

from catalog.fingerprint import (
    BAND_BITS,
    band_keys,
    band_radius,
    bands,
    from_hex,
    hamming,
    neighbours,
    perceptual_hash,
    to_hex,
    to_signed,
    to_unsigned,
)

DC_BIT = 1 << 63


def ramp(width: int = 32, height: int = 32) -> np.ndarray:
    """A left-to-right ramp from 0 to 248 in 32 steps, repeated down the rows."""
    columns = (np.arange(width) * 256 // width).astype(np.uint8)
    return np.tile(columns, (height, 1))


def test_flat_image_has_only_the_dc_bit() -> None:
    # Every AC coefficient of a flat image is 0, as is their median: only DC > 0.
    assert perceptual_hash(np.full((40, 60), 128, np.uint8)) == DC_BIT
    assert perceptual_hash(np.zeros((32, 32), np.uint8)) == 0


def test_ramp_and_its_mirror_differ_in_the_odd_horizontal_frequencies() -> None:
    # A horizontal ramp's DCT is non-zero only at (0, u) for odd u (negative, as it rises):
    # mirroring it flips their sign, so bits (0, 1), (0, 3), (0, 5), (0, 7) become 1.
    image = ramp()
    mirrored = image[:, ::-1]
    odd = sum(1 << (63 - u) for u in (1, 3, 5, 7))
    assert perceptual_hash(image) == DC_BIT
    assert perceptual_hash(np.ascontiguousarray(mirrored)) == DC_BIT | odd
    assert hamming(perceptual_hash(image), perceptual_hash(np.ascontiguousarray(mirrored))) == 4


def test_vertical_ramp_sets_the_first_column_not_the_first_row() -> None:
    # Rising from bottom to top: (v, 0) for odd v is positive, every (0, u) AC term is 0.
    image = np.ascontiguousarray(ramp().T[::-1])
    value = perceptual_hash(image)
    column = [bool(value >> (63 - 8 * v) & 1) for v in (1, 3, 5, 7)]
    row = [bool(value >> (63 - u) & 1) for u in range(1, 8)]
    assert column == [True] * 4
    assert row == [False] * 7


def test_uniform_brightness_scaling_keeps_the_hash() -> None:
    texture = np.random.default_rng(7).integers(0, 128, (96, 80), dtype=np.uint8)
    doubled = (texture.astype(np.uint16) * 2).astype(np.uint8)
    assert perceptual_hash(texture) == perceptual_hash(doubled)


def test_size_does_not_matter_for_a_block_image() -> None:
    # 32x32 blocks of 4x4 pixels area-average back to the same 32x32 image exactly.
    small = np.random.default_rng(3).integers(0, 256, (32, 32), dtype=np.uint8)
    large = np.kron(small, np.ones((4, 4), np.uint8))
    assert perceptual_hash(small) == perceptual_hash(large)


@pytest.mark.parametrize("shape", [(0, 0), (4,), (4, 4, 3)])
def test_refuses_what_is_not_a_grayscale_image(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="2-D grayscale"):
        perceptual_hash(np.zeros(shape, np.uint8))


def test_hamming_counts_differing_bits() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0, 2**64 - 1) == 64
    assert hamming(0b1011, 0b0001) == 2


def test_hex_and_signed_round_trips() -> None:
    value = 0xF00D_0000_BEEF_0001
    assert to_hex(value) == "f00d0000beef0001"
    assert from_hex(to_hex(value)) == value
    assert to_hex(1) == "0000000000000001"
    assert to_signed(value) < 0 and to_unsigned(to_signed(value)) == value
    assert to_signed(5) == 5
    for bad in ("F00D0000BEEF0001", "f00d", "xyz0000000000000"):
        with pytest.raises(ValueError):
            from_hex(bad)


def test_bands_split_most_significant_first() -> None:
    value = 0x1111_2222_3333_4444
    assert bands(value) == (0x1111, 0x2222, 0x3333, 0x4444)
    assert band_keys(value) == [0x1111, 65536 + 0x2222, 2 * 65536 + 0x3333, 3 * 65536 + 0x4444]


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_neighbours_are_every_value_within_the_radius_once(radius: int) -> None:
    found = list(neighbours(0xA5A5, radius))
    assert found[0] == 0xA5A5
    assert len(found) == len(set(found)) == sum(comb(BAND_BITS, k) for k in range(radius + 1))
    assert all(hamming(0xA5A5, value) <= radius for value in found)


def test_band_radius_is_the_pigeonhole_bound() -> None:
    assert [band_radius(d) for d in (0, 3, 4, 6, 8, 12)] == [0, 0, 1, 1, 2, 3]
    rng = np.random.default_rng(11)
    # Any hash within distance d has a band within band_radius(d) flips of the query's.
    for _ in range(200):
        query = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
        flips = rng.choice(64, size=int(rng.integers(0, 13)), replace=False)
        other = query
        for bit in flips:
            other ^= 1 << int(bit)
        radius = band_radius(len(flips))
        assert any(hamming(a, b) <= radius for a, b in zip(bands(query), bands(other), strict=True))
