"""HTTP API through TestClient, with real sample photos."""

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from processor.codec import decode, encode
from processor.config import Settings
from processor.main import create_app
from processor.operations.geometry import RotateParams, rotate
from tests.metrics import sample
from tests.processor.test_codec import bomb_png

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
ROCKET = (SAMPLES / "rocket.jpg").read_bytes()
MAX = 50_000_000


def make_client(**overrides: object) -> tuple[FastAPI, TestClient]:
    app = create_app(settings=Settings.model_validate(overrides))
    return app, TestClient(app)


@pytest.fixture
def client() -> Iterator[TestClient]:
    _, test_client = make_client()
    with test_client:
        yield test_client


def assert_error(response: object, status: int, code: str, *fragments: str) -> str:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    for fragment in fragments:
        assert fragment in message
    return message


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "service": "processor"}


def test_operations_lists_every_operation_with_schema(client: TestClient) -> None:
    response = client.get("/v1/operations")
    assert response.status_code == 200
    ops = {op["name"]: op for op in response.json()}
    assert set(ops) == {
        "brightness",
        "contrast",
        "crop",
        "edges",
        "equalize",
        "flip",
        "gradient_x",
        "gradient_y",
        "grayscale",
        "invert",
        "low_pass",
        "median",
        "resize",
        "rotate",
        "sharpen",
        "square_crop",
        "threshold",
    }
    for op in ops.values():
        assert op["summary"] and "\n" not in op["summary"]
    rotate = ops["rotate"]
    assert rotate["summary"] == "Rotate about the centre, counter-clockwise for positive degrees."
    assert rotate["output"] == "photo"
    degrees = rotate["params"]["properties"]["degrees"]
    assert (degrees["minimum"], degrees["maximum"], degrees["default"]) == (-360, 360, 90)
    assert degrees["description"]
    assert rotate["params"]["additionalProperties"] is False
    assert ops["gradient_x"]["output"] == "graphic"
    assert ops["gradient_x"]["params"]["properties"]["mode"]["enum"] == ["signed", "abs"]
    sigma = ops["low_pass"]["params"]["properties"]["sigma"]["anyOf"][0]
    assert sigma["exclusiveMinimum"] == 0
    # fill: a choice of named colours for forms; hex is accepted by the API too.
    fill = ops["rotate"]["params"]["properties"]["fill"]["anyOf"]
    assert fill[0]["enum"] == ["transparent", "black", "white"]
    assert ops["grayscale"]["params"]["properties"] == {}


def test_rotate_rocket_90_png_equals_rot90(client: TestClient) -> None:
    response = client.post(
        "/v1/process",
        params={"ops": "rotate:degrees=90", "format": "png"},
        content=ROCKET,
        headers={"Content-Type": "image/jpeg"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-image-width"] == "427"
    assert response.headers["x-image-height"] == "640"
    assert response.headers["x-image-format"] == "png"
    assert (
        response.headers["x-pipeline"]
        == "rotate:degrees=90,expand=true,fill=transparent,interpolation=bilinear"
    )
    out = decode(response.content, max_pixels=MAX).pixels
    original = decode(ROCKET, max_pixels=MAX).pixels
    assert np.array_equal(out, np.rot90(original))


def test_default_output_format_follows_input_or_png_for_graphics(client: TestClient) -> None:
    same = client.post("/v1/process", params={"ops": "grayscale"}, content=ROCKET)
    assert same.status_code == 200
    assert same.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(same.content)).mode == "L"
    graphic = client.post("/v1/process", params={"ops": "gradient_x"}, content=ROCKET)
    assert graphic.headers["content-type"] == "image/png"
    assert graphic.headers["x-pipeline"] == "gradient_x:mode=signed"
    tiff = io.BytesIO()
    Image.new("RGB", (5, 3)).save(tiff, "TIFF")
    identity = client.post("/v1/process", content=tiff.getvalue())
    assert identity.status_code == 200
    assert identity.headers["content-type"] == "image/png"
    assert identity.headers["x-pipeline"] == ""
    webp = client.post("/v1/process", params={"format": "webp", "quality": 50}, content=ROCKET)
    assert webp.headers["content-type"] == "image/webp"
    assert webp.content[8:12] == b"WEBP"


def test_quality_changes_jpeg_size(client: TestClient) -> None:
    low = client.post("/v1/process", params={"format": "jpeg", "quality": 10}, content=ROCKET)
    high = client.post("/v1/process", params={"format": "jpeg", "quality": 95}, content=ROCKET)
    assert len(low.content) < len(high.content)


@pytest.mark.parametrize(
    ("params", "status", "code", "fragment"),
    [
        ({"ops": "grayscale||rotate"}, 400, "invalid_pipeline", "step 2 is empty"),
        ({"ops": "rotate:degrees"}, 400, "invalid_pipeline", "step 1"),
        ({"ops": "sepia"}, 404, "unknown_operation", "'sepia'"),
        ({"ops": "rotate:degrees=1000"}, 422, "invalid_parameter", "rotate.degrees"),
        ({"ops": "rotate:degrees=nan"}, 422, "invalid_parameter", "rotate.degrees"),
        ({"format": "gif"}, 422, "invalid_parameter", "format: Input should be"),
        ({"quality": 0}, 422, "invalid_parameter", "quality: Input should be greater"),
        ({"quality": "high"}, 422, "invalid_parameter", "quality"),
    ],
)
def test_bad_query_is_rejected_before_the_body(
    client: TestClient, params: dict[str, object], status: int, code: str, fragment: str
) -> None:
    # The body is not an image: the query error must win.
    response = client.post("/v1/process", params=params, content=b"not an image")
    assert_error(response, status, code, fragment)


def test_degrees_out_of_range_names_the_range(client: TestClient) -> None:
    response = client.post("/v1/process", params={"ops": "rotate:degrees=1000"}, content=ROCKET)
    assert_error(
        response,
        422,
        "invalid_parameter",
        "rotate.degrees: Input should be less than or equal to 360",
    )


def test_text_body_is_415(client: TestClient) -> None:
    response = client.post("/v1/process", content=b"hello", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "unreadable_image", "not an image")
    assert_error(client.post("/v1/process", content=b""), 415, "unreadable_image", "empty body")
    truncated = client.post("/v1/process", content=ROCKET[: len(ROCKET) // 2])
    assert_error(truncated, 415, "unreadable_image", "truncated")


def test_body_over_the_limit_is_413() -> None:
    _, client = make_client(max_body_bytes=1000)
    with client:
        response = client.post("/v1/process", content=ROCKET)
        assert_error(response, 413, "body_too_large", "1000")
        # Streamed without Content-Length, so the limit is enforced while reading.
        chunks = iter([ROCKET[:600], ROCKET[600:1200], ROCKET[1200:]])
        streamed = client.post("/v1/process", content=chunks)
        assert_error(streamed, 413, "body_too_large")
        assert_error(client.post("/v1/info", content=ROCKET), 413, "body_too_large")


def test_bomb_is_413_without_decoding(client: TestClient) -> None:
    response = client.post("/v1/process", content=bomb_png())
    assert_error(response, 413, "image_too_large", "100000x100000")


def test_pipeline_output_over_max_pixels_is_413() -> None:
    _, client = make_client(max_pixels=300_000)
    with client:
        response = client.post("/v1/process", params={"ops": "rotate:degrees=45"}, content=ROCKET)
        assert_error(response, 413, "image_too_large", "rotate")


def test_too_many_steps_is_400() -> None:
    _, client = make_client(max_steps=2)
    with client:
        response = client.post("/v1/process", params={"ops": "grayscale|grayscale|grayscale"})
        assert_error(response, 400, "invalid_pipeline", "at most 2")


def test_info_describes_a_sample(client: TestClient) -> None:
    response = client.post("/v1/info", content=(SAMPLES / "grace_hopper.jpg").read_bytes())
    assert response.status_code == 200
    assert response.json() == {
        "format": "jpeg",
        "width": 512,
        "height": 600,
        "mode": "RGB",
        "bytes": 61306,
        "exif_orientation": 1,
        "frames": 1,
        "bit_depth": 8,
        "colour_space": "RGB",
        "icc_profile": None,
        "camera_make": None,
        "camera_model": None,
        "taken": None,
    }
    assert_error(client.post("/v1/info", content=b"plain text"), 415, "unreadable_image")
    assert client.post("/v1/info", content=bomb_png()).json()["width"] == 100_000


def test_busy_job_slots_give_429_with_retry_after() -> None:
    app, client = make_client(max_jobs=1, queue_timeout_s=0.05)
    with client:
        portal = client.portal
        assert portal is not None
        portal.call(app.state.jobs.acquire)  # the only slot is now busy
        try:
            response = client.post("/v1/process", content=ROCKET)
            assert_error(response, 429, "overloaded", "job slots")
            assert response.headers["retry-after"] == "1"
        finally:
            portal.call(app.state.jobs.release)
        assert client.post("/v1/process", content=ROCKET).status_code == 200


def test_metrics_count_requests_and_jobs(client: TestClient) -> None:
    client.post("/v1/process", params={"ops": "grayscale"}, content=ROCKET)
    client.post("/v1/process", params={"ops": "sepia"}, content=ROCKET)
    text = client.get("/metrics").text
    requests = "darkroom_processor_requests_total"
    assert sample(text, requests, route="/v1/process", status="200", method="POST") == 1
    assert sample(text, requests, route="/v1/process", status="404", method="POST") == 1
    assert sample(text, "darkroom_processor_jobs_in_flight") == 0
    assert sample(text, "darkroom_processor_job_seconds_count") == 1


@pytest.mark.parametrize(
    ("ops", "status", "fragment"),
    [
        ("low_pass:sigma=-1", 422, "low_pass.sigma"),
        ("low_pass:sigma=1e308", 422, "low_pass.sigma"),
        ("sharpen:amount=NaN", 422, "sharpen.amount"),
        ("median:size=1000001", 422, "median.size"),
        ("crop:x=0,y=0,width=641,height=10", 422, "crop.width: x + width = 641"),
        ("crop:x=0,y=420,width=10,height=10", 422, "crop.height"),
        ("resize:width=0", 422, "resize.width"),
        ("rotate:degrees=1e400", 422, "rotate.degrees"),
        ("flip:axis=", 422, "flip.axis"),
        ("invert:x=1", 422, "invert.x"),
        ("sepia|grayscale", 404, "'sepia'"),
        ("grayscale:", 400, "expected key=value"),
    ],
)
def test_hostile_parameters_are_named_errors(
    client: TestClient, ops: str, status: int, fragment: str
) -> None:
    response = client.post("/v1/process", params={"ops": ops}, content=ROCKET)
    code = {400: "invalid_pipeline", 404: "unknown_operation", 422: "invalid_parameter"}[status]
    assert_error(response, status, code, fragment)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xd8\xff",  # a JPEG signature and nothing else
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # a PNG signature with a broken header
        b"GIF89a",
        b"\x00" * 1000,
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    ],
)
def test_non_images_and_stubs_are_415(client: TestClient, body: bytes) -> None:
    assert_error(client.post("/v1/process", content=body), 415, "unreadable_image")


def test_every_operation_runs_over_http_on_a_photo(client: TestClient) -> None:
    for op in client.get("/v1/operations").json():
        ops = {"resize": "resize:width=64", "crop": "crop:width=32,height=16"}.get(
            op["name"], op["name"]
        )
        response = client.post("/v1/process", params={"ops": ops, "format": "png"}, content=ROCKET)
        assert response.status_code == 200, (ops, response.text)
        pixels = decode(response.content, max_pixels=MAX).pixels
        expected = {"resize": (43, 64), "crop": (16, 32)}.get(op["name"])
        if expected:
            assert pixels.shape[:2] == expected


def test_png_ignores_quality_and_jpeg_is_baseline(client: TestClient) -> None:
    low = client.post("/v1/process", params={"format": "png", "quality": 1}, content=ROCKET)
    high = client.post("/v1/process", params={"format": "png", "quality": 100}, content=ROCKET)
    assert low.content == high.content
    jpeg = client.post("/v1/process", params={"format": "jpeg"}, content=ROCKET)
    assert not Image.open(io.BytesIO(jpeg.content)).info.get("progressive")


def test_metrics_time_each_stage_of_a_job(client: TestClient) -> None:
    ops = "resize:width=100|grayscale|grayscale"
    assert client.post("/v1/process", params={"ops": ops}, content=ROCKET).status_code == 200
    text = client.get("/metrics").text
    for stage in ("decode", "resize", "grayscale", "encode"):
        assert sample(text, "darkroom_processor_stage_seconds_count", stage=stage) == 1
    assert 'stage="rotate"' not in text


def test_pipeline_route_gives_the_canonical_form_or_the_process_error(client: TestClient) -> None:
    response = client.get("/v1/pipeline", params={"ops": " rotate | grayscale "})
    assert response.json() == {
        "pipeline": (
            "rotate:degrees=90,expand=true,fill=transparent,interpolation=bilinear|grayscale"
        ),
        "output": "photo",
    }
    assert client.get("/v1/pipeline", params={"ops": "gradient_x"}).json()["output"] == "graphic"
    assert client.get("/v1/pipeline").json() == {"pipeline": "", "output": "photo"}
    assert_error(client.get("/v1/pipeline", params={"ops": "a||b"}), 400, "invalid_pipeline")
    assert_error(client.get("/v1/pipeline", params={"ops": "sepia"}), 404, "unknown_operation")
    assert_error(
        client.get("/v1/pipeline", params={"ops": "rotate:degrees=999"}),
        422,
        "invalid_parameter",
        "rotate.degrees",
    )


# --- transparent fill -----------------------------------------------------------------------


def corners(pixels: np.ndarray) -> list[np.ndarray]:
    return [pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]]


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_transparent_fill_gives_transparent_corners_where_the_format_has_alpha(
    client: TestClient, fmt: str
) -> None:
    response = client.post(
        "/v1/process", params={"ops": "rotate:degrees=30", "format": fmt}, content=ROCKET
    )
    assert response.status_code == 200, response.text
    assert Image.open(io.BytesIO(response.content)).mode == "RGBA"
    pixels = decode(response.content, max_pixels=MAX).pixels
    assert pixels.shape == (690, 768, 4)
    for corner in corners(pixels):
        assert corner[3] == 0
    assert pixels[345, 384, 3] == 255


def test_transparent_fill_stays_black_in_jpeg_byte_for_byte(client: TestClient) -> None:
    response = client.post(
        "/v1/process", params={"ops": "rotate:degrees=30", "format": "jpeg"}, content=ROCKET
    )
    assert response.status_code == 200, response.text
    # Exactly what the operation gives outside a job, where fills never add alpha.
    rotated = rotate(decode(ROCKET, max_pixels=MAX).pixels, RotateParams(degrees=30))
    assert response.content == encode(rotated, "jpeg", quality=90)
    pixels = decode(response.content, max_pixels=MAX).pixels
    assert pixels.shape == (690, 768, 3)
    for corner in corners(pixels):
        assert corner.max() <= 8  # black, give or take JPEG's rounding


def test_transparency_survives_the_steps_after_the_rotate(client: TestClient) -> None:
    sizes = {"resize": "resize:width=64", "crop": "crop:width=32,height=16"}
    for op in client.get("/v1/operations").json():
        step = sizes.get(op["name"], op["name"])
        ops = f"rotate:degrees=30|{step}"
        response = client.post("/v1/process", params={"ops": ops, "format": "png"}, content=ROCKET)
        assert response.status_code == 200, (ops, response.text)
        pixels = decode(response.content, max_pixels=MAX).pixels
        assert pixels.ndim == 3 and pixels.shape[2] in (2, 4), ops
        assert pixels[0, 0, -1] == 0, ops
    grey = client.post(
        "/v1/process",
        params={"ops": "rotate:degrees=30|grayscale", "format": "png"},
        content=ROCKET,
    )
    assert Image.open(io.BytesIO(grey.content)).mode == "LA"


# --- operation schemas ----------------------------------------------------------------------


def test_operation_summaries_are_plain_text(client: TestClient) -> None:
    summaries = {op["name"]: op["summary"] for op in client.get("/v1/operations").json()}
    assert [name for name, summary in summaries.items() if "`" in summary] == []
    assert summaries["sharpen"] == (
        "Sharpen with an unsharp mask: add amount times the detail lost to a Gaussian blur."
    )


def test_low_pass_schema_says_which_method_each_parameter_applies_to(client: TestClient) -> None:
    ops = {op["name"]: op for op in client.get("/v1/operations").json()}
    properties = ops["low_pass"]["params"]["properties"]
    applies = {name: prop.get("x-applies-when") for name, prop in properties.items()}
    assert applies == {
        "method": None,
        "sigma": {"method": ["gaussian"]},
        "cutoff": {"method": ["butterworth", "ideal"]},
        "order": {"method": ["butterworth"]},
    }
    methods = set(properties["method"]["enum"])
    for name, condition in applies.items():
        if condition is not None:
            assert set(condition["method"]) <= methods, name
            # Every method listed accepts the parameter, every other refuses it.
            for method in methods:
                ops_text = f"low_pass:method={method},{name}=1"
                status = client.get("/v1/pipeline", params={"ops": ops_text}).status_code
                assert status == (200 if method in condition["method"] else 422), ops_text


# --- job lanes and Retry-After --------------------------------------------------------------

RETINA = (SAMPLES / "retina.jpg").read_bytes()  # 1411 x 1411
THUMBNAIL = "resize:width=320,height=320,fit=contain"


def test_thumbnails_do_not_wait_for_busy_heavy_slots() -> None:
    app, client = make_client(max_jobs=1, queue_timeout_s=0.2)
    with client:
        portal = client.portal
        assert portal is not None
        portal.call(app.state.jobs.acquire)  # the only heavy slot is now busy
        try:
            thumbnail = client.post("/v1/process", params={"ops": THUMBNAIL}, content=RETINA)
            assert thumbnail.status_code == 200, thumbnail.text
            assert thumbnail.headers["x-image-width"] == "320"
            heavy = client.post("/v1/process", content=RETINA)
            assert_error(heavy, 429, "overloaded", "1 heavy job slots")
            text = client.get("/metrics").text
        finally:
            portal.call(app.state.jobs.release)
    assert sample(text, "darkroom_processor_lane_jobs_total", lane="express") == 1
    assert sample(text, "darkroom_processor_lane_jobs_total", lane="heavy") == 0
    assert sample(text, "darkroom_processor_lane_jobs_in_flight", lane="heavy") == 1
    assert sample(text, "darkroom_processor_lane_jobs_in_flight", lane="express") == 0
    assert sample(text, "darkroom_processor_jobs_in_flight") == 1


def test_the_express_lane_has_slots_of_its_own() -> None:
    app, client = make_client(express_jobs=1, queue_timeout_s=0.05)
    with client:
        portal = client.portal
        assert portal is not None
        portal.call(app.state.jobs.acquire, "express")
        try:
            thumbnail = client.post("/v1/process", params={"ops": THUMBNAIL}, content=RETINA)
            assert_error(thumbnail, 429, "overloaded", "1 express job slots")
            assert client.post("/v1/process", content=RETINA).status_code == 200
        finally:
            portal.call(app.state.jobs.release, "express")
        assert client.post("/v1/process", params={"ops": THUMBNAIL}, content=RETINA).is_success


def test_retry_after_is_at_least_the_time_already_waited() -> None:
    app, client = make_client(max_jobs=1, queue_timeout_s=1.2)
    with client:
        portal = client.portal
        assert portal is not None
        portal.call(app.state.jobs.acquire)
        try:
            response = client.post("/v1/process", content=ROCKET)
        finally:
            portal.call(app.state.jobs.release)
    assert_error(response, 429, "overloaded")
    assert int(response.headers["retry-after"]) >= 2


def test_retry_after_grows_with_the_backlog_of_recent_jobs() -> None:
    app, client = make_client(max_jobs=2, queue_timeout_s=0.05)
    with client:
        portal = client.portal
        assert portal is not None
        for _ in range(2):
            portal.call(app.state.jobs.acquire)
        for _ in range(3):
            app.state.jobs.lanes["heavy"].observe(3.0)  # recent jobs took 3 s each
        try:
            response = client.post("/v1/process", content=ROCKET)
        finally:
            for _ in range(2):
                portal.call(app.state.jobs.release)
    assert_error(response, 429, "overloaded")
    # Two jobs running on two slots, 3 s each: a slot frees in about 3 s.
    assert response.headers["retry-after"] == "3"
