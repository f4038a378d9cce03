"""Bearer keys and signed render URLs: who may call the processor, through TestClient.

Each test builds the app with the settings it needs; ``neither configured`` is the
default, where every route stays open as before.
"""

import hashlib
import hmac
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image

from processor.auth import key_matches
from processor.config import Settings
from processor.main import create_app
from processor.signing import sign_render
from tests.processor.test_api import assert_error

KEYS = "first-key-0123456789, second-key-abcdef "
SECRET, OLD_SECRET = "signing-secret-new", "signing-secret-old"
COSTLY = [("POST", "/v1/process"), ("POST", "/v1/info"), ("GET", "/v1/pipeline")]
OPEN = ["/healthz", "/metrics", "/v1/operations"]
GRAYSCALE = "grayscale"


def png(colour: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    """A tiny real PNG."""
    out = io.BytesIO()
    Image.new("RGB", (6, 4), colour).save(out, "PNG")
    return out.getvalue()


BODY = png()
OTHER_BODY = png((1, 2, 3))


def image_id(data: bytes) -> str:
    """The Darkroom id of these bytes: the first 20 hex digits of their SHA-256."""
    return hashlib.sha256(data).hexdigest()[:20]


@contextmanager
def client_with(**overrides: object) -> Iterator[TestClient]:
    """A client of an app built with these settings."""
    with TestClient(create_app(settings=Settings.model_validate(overrides))) as client:
        yield client


def call(
    client: TestClient,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Send ``method`` to ``path`` with a real image body where the route takes one."""
    content = BODY if method == "POST" else None
    response: Response = client.request(
        method, path, content=content, params=params, headers=headers
    )
    return response


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def signed(
    *,
    secret: str = SECRET,
    data: bytes = BODY,
    ops: str = GRAYSCALE,
    canonical: str | None = None,
    fmt: str | None = "png",
    expires: int | None = None,
) -> dict[str, str]:
    """The query of a signed URL for rendering ``data`` with ``ops``, valid for ten minutes."""
    expires = int(time.time()) + 600 if expires is None else expires
    image = image_id(data)
    signature = sign_render(secret, image, canonical or ops, fmt, expires)
    query = {"ops": ops, "image": image, "expires": str(expires), "signature": signature}
    return query if fmt is None else {**query, "format": fmt}


# --- the scheme -----------------------------------------------------------------------------


def test_sign_render_is_the_documented_hmac() -> None:
    # A gateway or script copying the scheme must get exactly these bytes and this hex.
    message = b"darkroom-render-v1\n0123456789abcdef0123\ngrayscale\npng\n1700000000"
    expected = hmac.new(b"correct horse", message, hashlib.sha256).hexdigest()
    assert expected == "43e56947b208810f44efc2ba39db99d170209a2a7df361e0e3e05b6ba8e5cc3d"
    assert sign_render("correct horse", "0123456789abcdef0123", "grayscale", "png", 1700000000) == (
        expected
    )
    without_format = b"darkroom-render-v1\n0123456789abcdef0123\n\n\n1700000000"
    assert sign_render("correct horse", "0123456789abcdef0123", "", None, 1700000000) == (
        hmac.new(b"correct horse", without_format, hashlib.sha256).hexdigest()
    )


def test_key_matches_only_whole_keys() -> None:
    keys = Settings.model_validate({"api_keys": KEYS}).api_keys
    assert key_matches(keys, "first-key-0123456789")
    assert key_matches(keys, "second-key-abcdef")
    assert not key_matches(keys, "first-key")
    assert not key_matches(keys, "first-key-0123456789x")
    assert not key_matches(keys, "")
    assert not key_matches(keys, "clé-été")
    assert not key_matches((), "anything")


def test_keys_are_read_from_the_environment_trimmed_and_hidden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROCESSOR_API_KEYS", " k1 , k2 ,, ")
    monkeypatch.setenv("PROCESSOR_SIGNING_KEYS", "s1")
    monkeypatch.setenv("PROCESSOR_SIGNATURE_MAX_AGE_S", "3600")
    settings = Settings()
    assert [key.get_secret_value() for key in settings.api_keys] == ["k1", "k2"]
    assert [key.get_secret_value() for key in settings.signing_keys] == ["s1"]
    assert settings.signature_max_age_s == 3600
    assert "k1" not in repr(settings) and "s1" not in repr(settings)
    monkeypatch.setenv("PROCESSOR_API_KEYS", "")
    monkeypatch.setenv("PROCESSOR_SIGNING_KEYS", " , ")
    assert Settings().api_keys == () and Settings().signing_keys == ()


# --- bearer keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), COSTLY)
def test_without_keys_the_costly_routes_stay_open(method: str, path: str) -> None:
    with client_with() as client:
        assert call(client, method, path).status_code == 200
        # Signed-URL parameters mean nothing when no signing key is configured.
        assert call(client, method, path, params=signed(secret="unknown")).status_code == 200


@pytest.mark.parametrize(("method", "path"), COSTLY)
def test_costly_routes_need_a_key(method: str, path: str) -> None:
    with client_with(api_keys=KEYS) as client:
        missing = call(client, method, path)
        assert_error(missing, 401, "missing_key", "Authorization: Bearer")
        assert missing.headers["www-authenticate"] == "Bearer"
        basic = call(client, method, path, headers={"Authorization": "Basic Zm9vOmJhcg=="})
        assert_error(basic, 401, "missing_key")
        empty = call(client, method, path, headers={"Authorization": "Bearer "})
        assert_error(empty, 401, "missing_key")
        wrong = call(client, method, path, headers=bearer("first-key"))
        assert_error(wrong, 403, "wrong_key")
        assert "www-authenticate" not in wrong.headers
        for key in ("first-key-0123456789", "second-key-abcdef"):
            assert call(client, method, path, headers=bearer(key)).status_code == 200, key


@pytest.mark.parametrize("path", OPEN)
def test_health_metrics_and_operations_stay_open(path: str) -> None:
    with client_with(api_keys=KEYS, signing_keys=SECRET) as client:
        assert client.get(path).status_code == 200
        assert client.get(path, headers=bearer("wrong")).status_code == 200


def test_keys_never_appear_in_messages() -> None:
    with client_with(api_keys=KEYS) as client:
        for headers in ({}, bearer("first-key-012345678"), bearer("guess")):
            response = call(client, "POST", "/v1/process", headers=headers)
            assert response.status_code in (401, 403)
            for secret in ("first-key", "second-key", "guess"):
                assert secret not in response.text


def test_a_key_that_is_not_ascii_is_wrong_not_an_error() -> None:
    with client_with(api_keys=KEYS) as client:
        headers = [(b"Authorization", "Bearer clé-été".encode())]
        response = client.post("/v1/process", content=BODY, headers=headers)
        assert_error(response, 403, "wrong_key")


def test_the_key_is_checked_before_the_query_and_the_body() -> None:
    with client_with(api_keys=KEYS, max_body_bytes=10) as client:
        for params in ({"quality": "high"}, {"ops": "sepia"}, {"format": "gif"}):
            assert_error(
                client.post("/v1/process", params=params, content=BODY), 401, "missing_key"
            )
        assert_error(client.get("/v1/pipeline", params={"ops": "a||b"}), 401, "missing_key")
        # Over max_body_bytes, yet refused for the key: the body was never read.
        assert_error(client.post("/v1/info", content=BODY), 401, "missing_key")


# --- signed URLs ----------------------------------------------------------------------------


@pytest.fixture
def signing() -> Iterator[TestClient]:
    """A processor with bearer keys and two signing secrets: SECRET signs, OLD_SECRET verifies."""
    with client_with(api_keys=KEYS, signing_keys=f"{SECRET},{OLD_SECRET}") as client:
        yield client


def test_a_signed_url_renders_without_a_key(signing: TestClient) -> None:
    response = signing.post("/v1/process", params=signed(), content=BODY)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-pipeline"] == "grayscale"
    assert Image.open(io.BytesIO(response.content)).mode == "L"


def test_the_signature_covers_the_canonical_pipeline(signing: TestClient) -> None:
    canonical = "rotate:degrees=90,expand=true,fill=transparent,interpolation=bilinear"
    for spelling in ("rotate", " rotate:degrees=90 ", canonical):
        query = signed(ops=spelling, canonical=canonical)
        response = signing.post("/v1/process", params=query, content=BODY)
        assert response.status_code == 200, (spelling, response.text)
    raw = signed(ops="rotate")  # signed over the text as typed, not its canonical form
    assert_error(signing.post("/v1/process", params=raw, content=BODY), 403, "wrong_signature")


def test_a_signed_url_without_a_format_signs_the_empty_string(signing: TestClient) -> None:
    response = signing.post("/v1/process", params=signed(fmt=None), content=BODY)
    assert response.status_code == 200, response.text
    added = {**signed(fmt=None), "format": "webp"}
    assert_error(signing.post("/v1/process", params=added, content=BODY), 403, "wrong_signature")


@pytest.mark.parametrize(
    "tamper",
    [
        {"ops": "invert"},
        {"ops": "grayscale|grayscale"},
        {"ops": "rotate:degrees=30"},
        {"format": "jpeg"},
        {"image": image_id(OTHER_BODY)},
        {"signature": "0" * 64},
    ],
)
def test_a_tampered_url_is_refused(signing: TestClient, tamper: dict[str, str]) -> None:
    query = {**signed(), **tamper}
    response = signing.post("/v1/process", params=query, content=BODY)
    assert_error(response, 403, "wrong_signature", "does not match")


def test_a_tampered_expiry_is_refused(signing: TestClient) -> None:
    query = signed()
    later = {**query, "expires": str(int(query["expires"]) + 60)}
    assert_error(signing.post("/v1/process", params=later, content=BODY), 403, "wrong_signature")


def test_a_body_that_is_not_the_signed_image_is_refused(signing: TestClient) -> None:
    response = signing.post("/v1/process", params=signed(), content=OTHER_BODY)
    assert_error(response, 403, "wrong_signature", "not the signed image")
    # Checked on the bytes before decoding: a signed body that is no image is a 415 ...
    junk = b"not an image at all"
    response = signing.post("/v1/process", params=signed(data=junk), content=junk)
    assert_error(response, 415, "unreadable_image")
    # ... and an unsigned one is refused before it is decoded.
    response = signing.post("/v1/process", params=signed(), content=junk)
    assert_error(response, 403, "wrong_signature", "not the signed image")


def test_the_signature_is_checked_before_the_body_is_read() -> None:
    with client_with(signing_keys=SECRET, max_body_bytes=10) as client:
        forged = {**signed(), "signature": "f" * 64}
        response = client.post("/v1/process", params=forged, content=BODY)
        assert_error(response, 403, "wrong_signature")
        # A genuine signature gets as far as reading the body.
        response = client.post("/v1/process", params=signed(), content=BODY)
        assert_error(response, 413, "body_too_large")


def test_an_expired_url_is_refused(signing: TestClient) -> None:
    query = signed(expires=int(time.time()) - 5)
    response = signing.post("/v1/process", params=query, content=BODY)
    assert_error(response, 403, "expired_signature", "expired")


def test_an_url_living_longer_than_the_max_age_is_refused() -> None:
    with client_with(signing_keys=SECRET, signature_max_age_s=3600) as client:
        now = int(time.time())
        within = client.post("/v1/process", params=signed(expires=now + 3000), content=BODY)
        assert within.status_code == 200, within.text
        beyond = client.post("/v1/process", params=signed(expires=now + 4000), content=BODY)
        assert_error(beyond, 403, "wrong_signature", "3600 s")
        forever = signed(expires=10**19)
        response = client.post("/v1/process", params=forever, content=BODY)
        assert_error(response, 403, "wrong_signature")


def test_signing_keys_rotate() -> None:
    by_old = signed(secret=OLD_SECRET)
    with client_with(signing_keys=f"{SECRET}, {OLD_SECRET}") as client:
        assert client.post("/v1/process", params=by_old, content=BODY).status_code == 200
        assert client.post("/v1/process", params=signed(), content=BODY).status_code == 200
    with client_with(signing_keys=SECRET) as client:
        response = client.post("/v1/process", params=by_old, content=BODY)
        assert_error(response, 403, "wrong_signature")
        assert client.post("/v1/process", params=signed(), content=BODY).status_code == 200


def test_a_bearer_key_still_works_and_decides(signing: TestClient) -> None:
    keyed = signing.post(
        "/v1/process", params={"ops": GRAYSCALE}, content=BODY, headers=bearer("second-key-abcdef")
    )
    assert keyed.status_code == 200, keyed.text
    # A wrong key is refused even beside a valid signature.
    response = signing.post("/v1/process", params=signed(), content=BODY, headers=bearer("nope"))
    assert_error(response, 403, "wrong_key")


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"image": "ABCDEF0123456789ABCD"}, ["image:"]),
        ({"image": "0123"}, ["image:"]),
        ({"expires": "soon"}, ["expires:"]),
        ({"expires": "-5"}, ["expires:"]),
        ({"expires": "1" * 30}, ["expires:"]),
        ({"signature": "xyz"}, ["signature:"]),
        ({"signature": "A" * 64}, ["signature:"]),
        ({"image": "", "expires": "", "signature": ""}, ["image:", "expires:", "signature:"]),
    ],
)
def test_malformed_signed_parameters_are_named(
    signing: TestClient, change: dict[str, str], fragments: list[str]
) -> None:
    query = {**signed(), **change}
    response = signing.post("/v1/process", params=query, content=BODY)
    assert_error(response, 422, "invalid_parameter", *fragments)


def test_a_signed_url_missing_a_part_names_it(signing: TestClient) -> None:
    for missing in ("image", "expires", "signature"):
        query = {name: value for name, value in signed().items() if name != missing}
        response = signing.post("/v1/process", params=query, content=BODY)
        assert_error(response, 422, "invalid_parameter", f"{missing}:")


def test_a_signed_url_gives_each_parameter_once(signing: TestClient) -> None:
    query = [*signed().items(), ("ops", "invert")]
    response = signing.post("/v1/process", params=query, content=BODY)
    assert_error(response, 422, "invalid_parameter", "ops: given 2 times")


@pytest.mark.parametrize(("method", "path"), COSTLY[1:])
def test_only_process_takes_a_signed_url(signing: TestClient, method: str, path: str) -> None:
    assert_error(call(signing, method, path, params=signed()), 401, "missing_key")


def test_without_signing_keys_a_signed_url_is_no_credential() -> None:
    with client_with(api_keys=KEYS) as client:
        response = client.post("/v1/process", params=signed(), content=BODY)
        message = assert_error(response, 401, "missing_key")
        assert "signed URL" not in message


def test_signing_keys_alone_lock_only_process() -> None:
    with client_with(signing_keys=SECRET) as client:
        message = assert_error(client.post("/v1/process", content=BODY), 401, "missing_key")
        assert "signed URL" in message and "Bearer" not in message
        assert client.post("/v1/process", params=signed(), content=BODY).status_code == 200
        assert client.post("/v1/info", content=BODY).status_code == 200
        assert client.get("/v1/pipeline", params={"ops": GRAYSCALE}).status_code == 200
