"""Properties, fuzzed with hypothesis: whatever arrives, the processor answers in its vocabulary.

(a) Any pipeline text parses or raises InvalidPipeline, UnknownOperation or
InvalidParameter, and a parsed pipeline's canonical text parses back to the same steps.
(b) Parameter values drawn from each operation's published JSON schema: the parser
accepts exactly what the schema allows, and refuses the rest naming operation and field.
(c) Every operation on every array the codec hands over (L, LA, RGB, RGBA; 1x1, 1xN;
read-only): a uint8 C-contiguous result of the declared size, alpha kept, input untouched.
(d) ``POST /v1/process`` with any query answers an image or a named error, never a 500.

Explicit ``@example``s pin edge cases, among them every example that once failed.
"""

import io
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, example, given, note, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from processor.config import Settings
from processor.errors import ImageTooLarge, InvalidParameter, InvalidPipeline, UnknownOperation
from processor.jobs import run_pipeline
from processor.main import create_app
from processor.operations import all_operations
from processor.operations.alpha import has_alpha
from processor.pipeline import Pipeline, parse_pipeline

# Cheap enough to run with the suite; no example database is written into the tree.
CHEAP = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
MAX_STEPS = 20
PARSE_ERRORS = (InvalidPipeline, UnknownOperation, InvalidParameter)
NAMES = [op.name for op in all_operations()]
SCHEMAS = {op.name: op.params.model_json_schema() for op in all_operations()}
FIELDS = [(name, field) for name, schema in SCHEMAS.items() for field in schema["properties"]]
SEPARATORS = frozenset("|,:=")
# What pydantic reads as a boolean, in any case.
BOOLEAN_WORDS = frozenset({"0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes"})
Arguments = dict[str, str]


def branches(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of one property's schema."""
    return [branch for branch in spec.get("anyOf", [spec]) if branch.get("type") != "null"]


def enum_values(spec: dict[str, Any]) -> list[str]:
    """The choices a property names, as text."""
    return [str(value) for branch in branches(spec) for value in branch.get("enum", ())]


def parse_step(name: str, arguments: Arguments) -> Pipeline:
    """Parse one step ``name:key=value,...`` (just ``name`` without arguments)."""
    pairs = ",".join(f"{key}={value}" for key, value in arguments.items())
    return parse_pipeline(f"{name}:{pairs}" if pairs else name, max_steps=MAX_STEPS)


# --- (a) pipeline text ----------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.sampled_from(
        ["nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-0", "0", "-0.0", "1e308", "1e309",
         "-1e308", "5e-324", "1e-400", "0x10", "1_000", "+3", ".5", "5.", "1e3", "00007"]
    ),
    st.integers().map(str),
    st.integers(min_value=10**20, max_value=10**400).map(str),
    st.integers(max_value=-(10**20)).map(str),
    st.floats().map(repr),
)  # fmt: skip
ODD_TEXT = st.one_of(
    st.sampled_from(
        [" ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u200b", "\x00", "é", "ß", "\u0661",
         "\uff11", "½", "∞", "İ", "ﬁ", "\ufeff", "😀", "#ff0000", "#FFFFFF80", ""]
    ),
    st.text(max_size=4),
)  # fmt: skip
VOCABULARY = sorted(
    set(NAMES)
    | {field for _, field in FIELDS}
    | {value for name, field in FIELDS for value in enum_values(SCHEMAS[name]["properties"][field])}
    | {"true", "false"}
)
TOKENS = st.one_of(
    st.sampled_from(VOCABULARY),
    st.sampled_from(["|", ":", ",", "=", " | ", "||", "::", "=="]),
    NUMBER_TEXT,
    ODD_TEXT,
)


@st.composite
def rough_steps(draw: st.DrawFn) -> str:
    """One step, often well formed: a name, then key=value pairs, many of the operation's own."""
    name = draw(st.sampled_from(NAMES) | ODD_TEXT)
    fields = list(SCHEMAS[name]["properties"]) if name in SCHEMAS else []
    keys = st.sampled_from(fields) | ODD_TEXT if fields else ODD_TEXT
    values = st.sampled_from(VOCABULARY) | NUMBER_TEXT | ODD_TEXT
    pairs = draw(st.lists(st.tuples(keys, values), max_size=4))
    if not pairs:
        return name
    return name + ":" + ",".join(f"{key}={value}" for key, value in pairs)


PIPELINE_TEXT = st.one_of(
    st.text(),
    st.lists(TOKENS, max_size=24).map("".join),
    st.lists(rough_steps(), max_size=5).map("|".join),
    st.lists(rough_steps(), max_size=5).map(" | ".join),
)


def assert_parses_stably(text: str) -> None:
    """Parse ``text``: a domain error, or a pipeline whose canonical text parses back to it."""
    try:
        pipeline = parse_pipeline(text, max_steps=MAX_STEPS)
    except PARSE_ERRORS as error:
        assert error.message
        return
    canonical = pipeline.canonical()
    note(f"canonical: {canonical!r}")
    # It travels in the X-Pipeline header and keys the gateway's cache: printable ASCII.
    assert canonical.isascii() and canonical.isprintable() and " " not in canonical
    again = parse_pipeline(canonical, max_steps=MAX_STEPS)
    assert again.canonical() == canonical
    assert again.steps == pipeline.steps


@CHEAP
@given(PIPELINE_TEXT)
@example("rotate:degrees=-0 | brightness:offset=1_0|contrast:factor=1e-400")
@example("median:size=" + "9" * 5000)
@example("crop:width=1e308,height=nan")
@example("rotate:fill=#ABCDEF\n, expand = YES")
@example("low_pass:method=butterworth,cutoff=5e-324")
@example("|".join(["grayscale"] * (MAX_STEPS + 1)))
def test_any_pipeline_text_parses_stably_or_raises_a_domain_error(text: str) -> None:
    assert_parses_stably(text)


# --- (b) parameter values from the published schemas ----------------------------------------


def number_or_none(branch: dict[str, Any], text: str) -> float | None:
    """The number ``text`` spells in the canonical way (digits, repr of a float), else None."""
    if branch.get("type") == "integer":
        return int(text) if re.fullmatch(r"-?[0-9]+", text) else None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if np.isfinite(value) and text.strip() == text else None


def bounds(branch: dict[str, Any]) -> tuple[Any, Any]:
    """The lower and upper bound of a numeric schema, inclusive or not (None: unbounded)."""
    low = branch.get("minimum", branch.get("exclusiveMinimum"))
    return low, branch.get("maximum", branch.get("exclusiveMaximum"))


def branch_allows(branch: dict[str, Any], text: str) -> bool:
    """Whether one alternative of a property's schema allows ``text``."""
    if "enum" in branch:
        return text in [str(value) for value in branch["enum"]]
    kind = branch.get("type")
    if kind == "string":
        return "pattern" not in branch or re.search(branch["pattern"], text) is not None
    if kind == "boolean":
        return text in ("true", "false")
    value = number_or_none(branch, text)
    if value is None:
        return False
    return bool(
        branch.get("minimum", -np.inf) <= value <= branch.get("maximum", np.inf)
        and branch.get("exclusiveMinimum", -np.inf) < value < branch.get("exclusiveMaximum", np.inf)
    )


def schema_allows(name: str, arguments: Arguments) -> bool:
    """Whether operation ``name``'s published schema allows ``arguments`` as spelled.

    Reads the keywords Darkroom's schemas use: types, bounds, enum, pattern, ``not:
    multipleOf``, ``required``, a model-level ``anyOf`` of ``required`` lists, no
    additional properties, and the ``x-applies-when`` extension (see the registry).
    """
    schema = SCHEMAS[name]
    properties: dict[str, dict[str, Any]] = schema["properties"]
    given = set(arguments)
    if not given <= set(properties) or not set(schema.get("required", ())) <= given:
        return False
    alternatives = [set(option.get("required", ())) for option in schema.get("anyOf", ())]
    if alternatives and not any(option <= given for option in alternatives):
        return False
    for field, text in arguments.items():
        spec = properties[field]
        if not any(branch_allows(branch, text) for branch in branches(spec)):
            return False
        step = spec.get("not", {}).get("multipleOf")
        if step is not None and float(text) % step == 0:
            return False
        for key, allowed in spec.get("x-applies-when", {}).items():
            if arguments.get(key, default_text(properties[key])) not in allowed:
                return False
    return True


def default_text(spec: dict[str, Any]) -> str:
    """The default of a property as the pipeline spells it."""
    value = spec.get("default")
    return str(value).lower() if isinstance(value, bool) else str(value)


def valid_text(spec: dict[str, Any]) -> st.SearchStrategy[str]:
    """Text the schema of one property allows, spelled as the canonical form spells it."""
    options: list[st.SearchStrategy[str]] = []
    step = spec.get("not", {}).get("multipleOf")
    for branch in branches(spec):
        low, high = bounds(branch)
        if "enum" in branch:
            options.append(st.sampled_from([str(value) for value in branch["enum"]]))
        elif "pattern" in branch:
            options.append(st.from_regex(branch["pattern"], fullmatch=True).map(str.strip))
        elif branch.get("type") == "boolean":
            options.append(st.sampled_from(["true", "false"]))
        elif branch.get("type") == "integer":
            if step is None:
                integers = st.integers(low, high)
            else:
                integers = st.sampled_from([v for v in range(low, high + 1) if v % step])
            options.append(integers.map(str))
        else:
            floats = st.floats(
                low,
                high,
                exclude_min="exclusiveMinimum" in branch,
                exclude_max="exclusiveMaximum" in branch,
            )
            options.append(floats.map(repr))
    return st.one_of(options)


@st.composite
def valid_arguments(draw: st.DrawFn, name: str, fixed: Arguments | None = None) -> Arguments:
    """A parameter set operation ``name``'s schema allows, keeping the ``fixed`` values.

    A property whose ``x-applies-when`` does not hold is left out; a model-level
    ``anyOf`` of ``required`` lists (a side of ``resize``) is satisfied.
    """
    schema = SCHEMAS[name]
    properties: dict[str, dict[str, Any]] = schema["properties"]
    required = set(schema.get("required", ()))
    chosen = dict(fixed or {})
    for field, spec in properties.items():
        conditions: dict[str, list[str]] = spec.get("x-applies-when", {})
        current = {key: chosen.get(key, default_text(properties[key])) for key in conditions}
        if any(current[key] not in allowed for key, allowed in conditions.items()):
            continue
        if field not in chosen and (field in required or draw(st.booleans())):
            chosen[field] = draw(valid_text(spec))
    alternatives = [sorted(option.get("required", ())) for option in schema.get("anyOf", ())]
    if alternatives and not any(set(option) <= set(chosen) for option in alternatives):
        for field in draw(st.sampled_from(alternatives)):
            chosen[field] = draw(valid_text(properties[field]))
    return chosen


@st.composite
def allowed_steps(draw: st.DrawFn) -> tuple[str, Arguments]:
    """An operation and a parameter set its schema allows."""
    name = draw(st.sampled_from(NAMES))
    return name, draw(valid_arguments(name))


@CHEAP
@given(allowed_steps())
@example(("median", {"size": "4"}))  # once failed: the schema did not say "odd"
@example(("resize", {"fit": "cover"}))  # once failed: nor that resize needs a side
@example(("low_pass", {"method": "ideal", "order": "3"}))
def test_the_parser_accepts_exactly_what_the_schema_allows(case: tuple[str, Arguments]) -> None:
    name, arguments = case
    allowed = schema_allows(name, arguments)
    try:
        (step,) = parse_step(name, arguments).steps
    except InvalidParameter as refused:
        assert not allowed, refused.message
        return
    assert allowed
    properties = SCHEMAS[name]["properties"]
    for field, text in arguments.items():
        if any(
            branch.get("type") in ("integer", "number") for branch in branches(properties[field])
        ):
            # Taken as given: never clamped or rounded into range.
            assert float(getattr(step.params, field)) == float(text), field


# Text no property accepts, whatever its type.
JUNK = ["", "nan", "NaN", "inf", "-inf", "Infinity", "1e309", "-1e309", "\u0661", "\uff11",
        "é", "½", "∞", "None", "null", "[]", "0x1f", "\x00", "1 2", "true false", "😀"]  # fmt: skip


def plainly_allowed(spec: dict[str, Any], text: str) -> bool:
    """Whether a property accepts ``text`` as a choice, a pattern or a boolean word."""
    for branch in branches(spec):
        if text in [str(value) for value in branch.get("enum", ())]:
            return True
        if "pattern" in branch and re.search(branch["pattern"], text):
            return True
        if branch.get("type") == "boolean" and text.lower() in BOOLEAN_WORDS:
            return True
    return False


def invalid_text(spec: dict[str, Any]) -> st.SearchStrategy[str]:
    """Text one property refuses: junk, numbers out of range or of the wrong kind, odd words."""
    words = st.text(min_size=1, max_size=12).filter(
        lambda text: (
            text == text.strip()
            and not SEPARATORS & set(text)
            and not plainly_allowed(spec, text)
            and not re.fullmatch(r"[-+]?[0-9_.eE]+", text)
        )
    )
    options: list[st.SearchStrategy[str]] = [st.sampled_from(JUNK), words]
    step = spec.get("not", {}).get("multipleOf")
    for branch in branches(spec):
        low, high = bounds(branch)
        if branch.get("type") == "integer":
            options += [
                st.integers(max_value=low - 1).map(str),
                st.integers(min_value=high + 1).map(str),
                st.integers(min_value=10**30, max_value=10**300).map(str),
                st.floats(low, high).filter(lambda value: not value.is_integer()).map(repr),
            ]
            if step is not None:
                multiples = st.integers(-(-low // step), high // step).map(lambda k: k * step)
                options.append(multiples.map(str))
        elif branch.get("type") == "number":
            below = st.floats(
                max_value=low, exclude_max="exclusiveMinimum" not in branch, allow_infinity=False
            )
            above = st.floats(min_value=high, exclude_min=True, allow_infinity=False)
            options += [below.map(repr), above.map(repr), st.sampled_from(["1e308", "-1e308"])]
    return st.one_of(options).filter(lambda text: not plainly_allowed(spec, text))


@st.composite
def forbidden_steps(draw: st.DrawFn) -> tuple[str, str, Arguments]:
    """An operation, one of its fields, and otherwise valid arguments with that field wrong."""
    name, field = draw(st.sampled_from(FIELDS))
    spec = SCHEMAS[name]["properties"][field]
    conditions: dict[str, list[str]] = spec.get("x-applies-when", {})
    # The field must apply (a Butterworth cut-off needs method=butterworth) to be judged.
    fixed = {key: draw(st.sampled_from(allowed)) for key, allowed in conditions.items()}
    arguments = draw(valid_arguments(name, fixed))
    arguments[field] = draw(invalid_text(spec))
    return name, field, arguments


@CHEAP
@given(forbidden_steps())
@example(("median", "size", {"size": "4"}))
@example(("rotate", "degrees", {"degrees": "nan"}))
@example(("crop", "width", {"width": "1" * 400, "height": "1"}))
@example(("low_pass", "cutoff", {"method": "butterworth", "cutoff": "0"}))
def test_every_value_the_schema_forbids_is_refused_by_name(
    case: tuple[str, str, Arguments],
) -> None:
    name, field, arguments = case
    with pytest.raises(InvalidParameter) as refused:
        parse_step(name, arguments)
    assert f"{name}.{field}" in refused.value.message


# --- (c) every operation on every array shape -----------------------------------------------

ALPHA_ADDERS = frozenset({"rotate"})  # may add alpha when the output format keeps it
GREY_MAKERS = frozenset({"grayscale", "threshold"})


@st.composite
def images(draw: st.DrawFn, max_side: int = 40) -> np.ndarray:
    """A uint8 array as the codec decodes one: HxW, HxWx2, HxWx3 or HxWx4, read-only."""
    height = draw(st.integers(1, max_side))
    width = draw(st.integers(1, max_side))
    channels = draw(st.sampled_from([0, 2, 3, 4]))
    shape = (height, width, channels) if channels else (height, width)
    image: np.ndarray = draw(arrays(np.uint8, shape, elements=st.integers(0, 255)))
    image.flags.writeable = False
    return image


@st.composite
def operation_cases(draw: st.DrawFn) -> tuple[str, Arguments, np.ndarray, bool]:
    """An operation, valid arguments for it, an image, and whether the output keeps alpha."""
    name = draw(st.sampled_from(NAMES))
    image = draw(images())
    arguments = draw(valid_arguments(name))
    if name == "crop":  # kept inside the image; outside is an InvalidParameter by design
        height, width = image.shape[:2]
        x, y = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        arguments = {
            "x": str(x),
            "y": str(y),
            "width": str(draw(st.integers(1, width - x))),
            "height": str(draw(st.integers(1, height - y))),
        }
    return name, arguments, image, draw(st.booleans())


def constant(shape: tuple[int, ...], value: int) -> np.ndarray:
    """A read-only uint8 array of ``shape`` filled with ``value``."""
    image = np.full(shape, value, np.uint8)
    image.flags.writeable = False
    return image


def colours(image: np.ndarray) -> int:
    """The colour channels of an operation array: 1 for L and LA, 3 for RGB and RGBA."""
    return 1 if image.ndim == 2 or image.shape[2] == 2 else 3


@settings(CHEAP, max_examples=300)
@given(operation_cases())
@example(("low_pass", {"method": "butterworth", "cutoff": "5e-324"}, constant((3, 3, 3), 9), True))
@example(("median", {"size": "99"}, constant((1, 1, 2), 7), False))
@example(("rotate", {"degrees": "45"}, constant((1, 7), 200), True))
def test_every_operation_takes_every_shape(case: tuple[str, Arguments, np.ndarray, bool]) -> None:
    name, arguments, image, carries_alpha = case
    (step,) = parse_step(name, arguments).steps
    before = image.copy()
    try:
        out = run_pipeline(
            Pipeline((step,)), image, max_pixels=100_000, carries_alpha=carries_alpha
        )
    except (InvalidParameter, ImageTooLarge) as refused:
        event(f"refused: {type(refused).__name__}")
        assert name in refused.message
        return
    event(f"{image.ndim}-D in, {out.ndim}-D out")
    assert np.array_equal(image, before)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    assert out.ndim == 2 or (out.ndim == 3 and out.shape[2] in (2, 3, 4)), out.shape
    height, width = image.shape[:2]
    assert (out.shape[1], out.shape[0]) == step.operation.size_of(step.params, width, height)
    gained = has_alpha(out) and not has_alpha(image)
    assert has_alpha(out) == has_alpha(image) or (gained and carries_alpha and name in ALPHA_ADDERS)
    assert colours(out) == (1 if name in GREY_MAKERS else colours(image))


@st.composite
def constant_cases(draw: st.DrawFn) -> tuple[str, Arguments, np.ndarray]:
    """An operation documented to keep a constant image constant, arguments and such an image."""
    name = draw(st.sampled_from(["low_pass", "sharpen", "median", "equalize"]))
    shape = draw(images(max_side=24)).shape
    return name, draw(valid_arguments(name)), constant(shape, draw(st.integers(0, 255)))


@CHEAP
@given(constant_cases())
# Both once came out black: a cut-off below float32's smallest number made 0 / 0 at the centre.
@example(("low_pass", {"method": "butterworth", "cutoff": "5e-324"}, constant((5, 7, 3), 100)))
@example(
    ("low_pass", {"method": "butterworth", "cutoff": "1e-50", "order": "10"}, constant((2, 2), 1))
)
def test_a_constant_image_stays_constant(case: tuple[str, Arguments, np.ndarray]) -> None:
    name, arguments, image = case
    out = run_pipeline(parse_step(name, arguments), image, max_pixels=100_000)
    assert np.array_equal(out, image)


# --- (d) the HTTP layer ---------------------------------------------------------------------

ANSWERS = {200, 400, 404, 413, 415, 422, 429}


def png_of(mode: str, size: tuple[int, int]) -> bytes:
    """A tiny real PNG of ``mode`` with a gradient, so operations have something to do."""
    width, height = size
    ramp = (np.arange(width * height, dtype=np.uint32) * 37 % 256).astype(np.uint8)
    bands = len(mode)
    pixels = np.repeat(ramp.reshape(height, width, 1), bands, axis=2)
    image = Image.fromarray(pixels[:, :, 0] if bands == 1 else pixels, mode)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


BODIES = [png_of("RGB", (6, 4)), png_of("RGBA", (3, 5)), png_of("L", (1, 1)), png_of("LA", (9, 1))]


@st.composite
def mostly(draw: st.DrawFn, valid: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> str:
    """A value from ``valid`` about seven times in eight, else one from ``odd``."""
    return draw(valid if draw(st.integers(0, 7)) else odd)


GOOD_PIPELINES = st.lists(
    allowed_steps().map(lambda case: parse_step(*case).canonical()), max_size=3
).map("|".join)
QUERIES = st.fixed_dictionaries(
    {},
    optional={
        "ops": mostly(GOOD_PIPELINES, PIPELINE_TEXT),
        "format": mostly(st.sampled_from(["jpeg", "png", "webp", "avif"]), ODD_TEXT),
        "quality": mostly(
            st.integers(1, 100).map(str), st.integers(-5, 105).map(str) | NUMBER_TEXT
        ),
        "colour": mostly(st.sampled_from(["srgb", "keep"]), ODD_TEXT),
        "metadata": mostly(st.sampled_from(["strip", "keep"]), ODD_TEXT),
    },
)


@pytest.fixture(scope="module")
def small_client() -> Iterator[TestClient]:
    """A processor whose pixel limit makes large enlargements a quick 413."""
    settings = Settings.model_validate({"max_pixels": 250_000})
    with TestClient(create_app(settings=settings)) as client:
        yield client


@settings(CHEAP, max_examples=100)
@given(QUERIES, st.sampled_from(BODIES))
@example({"ops": "rotate:degrees=30", "format": "avif", "metadata": "keep"}, BODIES[3])
@example({"ops": "resize:width=8192", "format": "webp"}, BODIES[3])
@example({"quality": "1e2", "colour": "keep", "format": "jpeg"}, BODIES[1])
def test_process_answers_an_image_or_a_named_error(
    small_client: TestClient, query: dict[str, str], body: bytes
) -> None:
    response = small_client.post("/v1/process", params=query, content=body)
    event(f"status {response.status_code}")
    assert response.status_code in ANSWERS, response.text
    if response.status_code != 200:
        error = response.json()["error"]
        assert response.json() == {"error": error}
        assert set(error) == {"code", "message"} and error["code"] and error["message"]
        return
    assert response.headers["content-type"].startswith("image/")
    with Image.open(io.BytesIO(response.content)) as image:
        size = (int(response.headers["x-image-width"]), int(response.headers["x-image-height"]))
        assert image.size == size
    assert_parses_stably(response.headers["x-pipeline"])
