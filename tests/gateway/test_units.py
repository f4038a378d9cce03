"""The gateway's result cache and its schema-to-form mapping."""

import pytest

from gateway.cache import ResultCache, held_bytes
from gateway.clients import OperationInfo, Rendered
from gateway.errors import InvalidInput
from gateway.forms import build_step, form_fields, split_pipeline


def rendered(size: int) -> Rendered:
    return Rendered(content=b"x" * size, media_type="image/png", width=1, height=1, pipeline="")


def test_cache_evicts_least_recently_used_by_count() -> None:
    cache = ResultCache(max_items=2, max_bytes=100_000)
    cache.put(("a", "", ""), rendered(1))
    cache.put(("b", "", ""), rendered(1))
    assert cache.get(("a", "", "")) is not None  # a is now the most recent
    cache.put(("c", "", ""), rendered(1))
    assert cache.get(("b", "", "")) is None
    assert cache.get(("a", "", "")) is not None
    assert len(cache) == 2


def test_cache_is_bounded_by_bytes_and_skips_oversized_entries() -> None:
    a6, b6, b4 = rendered(6), rendered(6), rendered(4)
    held_a6, held_b6 = held_bytes(("a", "", ""), a6), held_bytes(("b", "", ""), b6)
    cache = ResultCache(max_items=100, max_bytes=held_a6 + held_b6 - 1)  # one fits, not two
    cache.put(("a", "", ""), a6)
    cache.put(("b", "", ""), b6)
    assert (len(cache), cache.size) == (1, held_b6)
    cache.put(("huge", "", ""), rendered(10_000))
    assert cache.get(("huge", "", "")) is None
    cache.put(("b", "", ""), b4)
    assert cache.size == held_bytes(("b", "", ""), b4)


def test_cache_counts_what_an_entry_really_holds() -> None:
    key = ("f" * 64, "rotate:degrees=90,expand=true,fill=transparent,interpolation=bilinear", "png")
    value = rendered(100_000)
    held = held_bytes(key, value)
    # The image bytes, plus the strings and objects around them: more than the bytes alone,
    # and close to what the interpreter allocates for them.
    assert held > 100_000 + 64 + len(key[1])
    assert held < 100_000 + 2_000
    cache = ResultCache(max_items=100, max_bytes=10 * held)
    for number in range(50):
        cache.put((f"{number:064x}", key[1], "png"), rendered(100_000))
    assert cache.size <= 10 * held
    assert len(cache) == 10


OPERATION = OperationInfo(
    name="demo",
    summary="A demo.",
    params={
        "properties": {
            "sigma": {"type": "number", "exclusiveMinimum": 0, "maximum": 100, "default": 2},
            "size": {
                "anyOf": [{"type": "integer", "minimum": 1, "maximum": 8192}, {"type": "null"}],
                "default": None,
                "description": "Target size.",
            },
            "expand": {"type": "boolean", "default": True},
            "mode": {"enum": ["signed", "abs"], "type": "string", "default": "signed"},
            "fill": {
                "anyOf": [
                    {"enum": ["transparent", "black"], "type": "string"},
                    {"pattern": "^#?[0-9a-f]{6}$", "type": "string"},
                ],
                "default": "transparent",
            },
        }
    },
)


def test_form_fields_follow_the_schema() -> None:
    fields = {field.name: field for field in form_fields(OPERATION)}
    assert list(fields) == ["sigma", "size", "expand", "mode", "fill"]
    assert (fields["sigma"].kind, fields["sigma"].minimum, fields["sigma"].maximum) == (
        "number",
        0,
        100,
    )
    assert (fields["size"].kind, fields["size"].default, fields["size"].step) == (
        "integer",
        None,
        "1",
    )
    assert fields["size"].help == "Target size."
    assert fields["expand"].kind == "boolean"
    assert fields["mode"].choices == ("signed", "abs")
    assert (fields["fill"].kind, fields["fill"].choices) == ("text", ("transparent", "black"))


def test_build_step_skips_blank_values_and_rejects_reserved_characters() -> None:
    values = {"p.demo.sigma": " 3 ", "p.demo.size": "", "p.demo.mode": "abs", "p.other.x": "1"}
    assert build_step(OPERATION, values) == "demo:sigma=3,mode=abs"
    assert build_step(OPERATION, {}) == "demo"
    with pytest.raises(InvalidInput, match=r"demo\.mode"):
        build_step(OPERATION, {"p.demo.mode": "abs|grayscale"})


def test_split_pipeline() -> None:
    assert split_pipeline(" rotate:degrees=30 | grayscale |") == ["rotate:degrees=30", "grayscale"]
    assert split_pipeline("") == []
