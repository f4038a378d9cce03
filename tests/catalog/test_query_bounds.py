"""ImageQuery.bounds: ranges tightened by pixels = width * height, never loosened."""

import pytest

from catalog.models import ImageQuery


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"width": (None, None), "height": (None, None), "pixels": (None, None)}),
        ({"min_width": 1920, "min_height": 1080},
         {"width": (1920, None), "height": (1080, None), "pixels": (2_073_600, None)}),
        ({"max_width": 100, "max_height": 50},
         {"width": (None, 100), "height": (None, 50), "pixels": (None, 5000)}),
        ({"min_pixels": 1001, "max_height": 10},
         {"width": (101, None), "height": (None, 10), "pixels": (1001, None)}),
        ({"max_pixels": 999, "min_width": 10},
         {"width": (10, None), "height": (None, 99), "pixels": (None, 999)}),
        ({"min_width": 5, "min_height": 5, "min_pixels": 100},
         {"width": (5, None), "height": (5, None), "pixels": (100, None)}),
        ({"min_width": 50, "min_height": 50, "min_pixels": 100},
         {"width": (50, None), "height": (50, None), "pixels": (2500, None)}),
    ],
)  # fmt: skip
def test_bounds(
    filters: dict[str, int], expected: dict[str, tuple[int | None, int | None]]
) -> None:
    assert ImageQuery.model_validate(filters).bounds() == expected
