"""Similar photos and duplicate groups through the HTTP API, with real sample photos.

Each sample is uploaded with edited copies, as a catalog receives them: re-encoded as JPEG
quality 60, resized to 50 %, brightened and darkened by 20 %, and cropped by 2 % per side.
The copies must be found from the original and grouped with it, and no two different
samples may ever share a group.
"""

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageEnhance

from catalog.config import Settings
from catalog.main import create_app
from catalog.models import DEFAULT_DUPLICATE_DISTANCE, decode_group_cursor, encode_group_cursor
from tests.contract.mongomock_store import mongomock_store

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SAMPLE_NAMES = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".png", ".jpg"))
# Edits that keep the picture: pHash moves by at most 4 bits on every sample.
MILD = ("q60", "half", "brighter", "darker")


def encode(image: Image.Image, format: str = "PNG", **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **options)
    return out.getvalue()


def crop(image: Image.Image, fraction: float) -> Image.Image:
    width, height = image.size
    dx, dy = round(width * fraction), round(height * fraction)
    return image.crop((dx, dy, width - dx, height - dy))


def copies(name: str) -> dict[str, bytes]:
    """The original's bytes and its edited copies, by edit."""
    original = (SAMPLES / name).read_bytes()
    with Image.open(io.BytesIO(original)) as opened:
        rgb = opened.convert("RGB")
    width, height = rgb.size
    return {
        "original": original,
        "q60": encode(rgb, "JPEG", quality=60),
        "half": encode(rgb.resize((width // 2, height // 2), Image.Resampling.LANCZOS)),
        "brighter": encode(ImageEnhance.Brightness(rgb).enhance(1.2)),
        "darker": encode(ImageEnhance.Brightness(rgb).enhance(0.8)),
        "crop2": encode(crop(rgb, 0.02)),
    }


@pytest.fixture(scope="module", params=["sqlite", "mongomock"])
def catalog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The app holding every sample and its copies; ids by "sample/edit". Tests only read."""
    root = tmp_path_factory.mktemp("similar")
    store = mongomock_store()[0] if request.param == "mongomock" else None
    app_settings = Settings(store=f"sqlite:///{root / 'catalog.db'}", blobs=root / "blobs")
    with TestClient(create_app(settings=app_settings, store=store)) as client:
        ids: dict[str, str] = {}
        for name in SAMPLE_NAMES:
            for edit, data in copies(name).items():
                response = client.post(
                    "/v1/images", params={"name": f"{edit}-{name}"}, content=data
                )
                assert response.status_code == 201, response.text
                ids[f"{name}/{edit}"] = response.json()["id"]
        yield client, ids


def all_groups(client: TestClient, limit: int) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get("/v1/duplicates", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        groups.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return groups
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_edited_copies_are_similar_to_their_original(
    catalog: tuple[TestClient, dict[str, str]], name: str
) -> None:
    client, ids = catalog
    response = client.get(f"/v1/images/{ids[f'{name}/original']}/similar")
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    found = {item["image"]["id"]: item["distance"] for item in items}
    for edit in MILD:
        # Within the default duplicate distance (6): clipped highlights of a brightened copy
        # move a hash from the 64 px reduced decode by up to that much.
        assert found[ids[f"{name}/{edit}"]] <= 6, edit
    assert found[ids[f"{name}/crop2"]] <= 8  # the default max_distance
    # Nothing of another sample is near: the closest two samples are 20 bits apart.
    assert {key.split("/")[0] for key, value in ids.items() if value in found} == {name}
    assert [(i["distance"], i["image"]["id"]) for i in items] == sorted(
        (i["distance"], i["image"]["id"]) for i in items
    )
    assert ids[f"{name}/original"] not in found


def test_duplicate_groups_hold_one_sample_and_its_copies(
    catalog: tuple[TestClient, dict[str, str]],
) -> None:
    client, ids = catalog
    sample_of = {value: key.split("/")[0] for key, value in ids.items()}
    groups = all_groups(client, 3)
    assert [group["group"] for group in groups] == sorted(group["group"] for group in groups)
    by_sample: dict[str, set[str]] = {}
    for group in groups:
        members = [image["id"] for image in group["images"]]
        assert group["group"] == members[0]
        pixels = [image["pixels"] for image in group["images"]]
        assert pixels == sorted(pixels, reverse=True)
        samples = {sample_of[member] for member in members}
        assert len(samples) == 1, samples  # different photos are never grouped
        (sample,) = samples
        assert sample not in by_sample  # one group per sample
        by_sample[sample] = set(members)
    assert sorted(by_sample) == SAMPLE_NAMES
    for name in SAMPLE_NAMES:
        original = ids[f"{name}/original"]
        assert {ids[f"{name}/{edit}"] for edit in MILD} | {original} <= by_sample[name]
        # A crop joins when it is within the duplicate distance of a member (single link).
        crop_id = ids[f"{name}/crop2"]
        similar = client.get(
            f"/v1/images/{crop_id}/similar", params={"max_distance": DEFAULT_DUPLICATE_DISTANCE}
        ).json()["items"]
        linked = any(item["image"]["id"] in by_sample[name] for item in similar)
        assert (crop_id in by_sample[name]) == linked


def test_pages_of_groups_are_the_same_at_any_limit(
    catalog: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = catalog
    assert all_groups(client, 1) == all_groups(client, 100)


def message(response: Any) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    return str(error["message"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_distance": 13}, "max_distance"),
        ({"max_distance": -1}, "max_distance"),
        ({"max_distance": "8.5"}, "max_distance"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"other": 1}, "other"),
    ],
)
def test_similar_parameters_are_checked(
    catalog: tuple[TestClient, dict[str, str]], params: dict[str, Any], field: str
) -> None:
    client, ids = catalog
    response = client.get(f"/v1/images/{ids['camera.png/original']}/similar", params=params)
    assert message(response).startswith(f"{field}: ")


def test_similar_of_an_unknown_image_is_404(catalog: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = catalog
    for image_id in ("0" * 20, "not-an-id"):
        response = client.get(f"/v1/images/{image_id}/similar")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "image_not_found"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"cursor": "abc"}, "cursor")],
)
def test_duplicates_parameters_are_checked(
    catalog: tuple[TestClient, dict[str, str]], params: dict[str, Any], field: str
) -> None:
    client, _ = catalog
    assert message(client.get("/v1/duplicates", params=params)).startswith(f"{field}: ")


def test_a_cursor_past_the_last_group_is_an_empty_page(
    catalog: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = catalog
    page = client.get("/v1/duplicates", params={"cursor": encode_group_cursor("f" * 20)}).json()
    assert page == {"items": [], "next_cursor": None}


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=st.text(max_size=80))
def test_any_cursor_text_is_a_page_or_a_422_naming_cursor(
    catalog: tuple[TestClient, dict[str, str]], text: str
) -> None:
    client, _ = catalog
    response = client.get("/v1/duplicates", params={"cursor": text, "limit": 1})
    if response.status_code == 422:
        assert message(response) == "cursor: not a valid cursor"
    else:
        assert response.status_code == 200, response.text


@settings(max_examples=100, deadline=None, database=None)
@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=3),
        max_leaves=6,
    )
)
def test_only_the_catalogs_own_cursors_are_read(payload: object) -> None:
    # json.dumps spaces its items, which the catalog never does: none of these is its own.
    text = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    with pytest.raises(ValueError, match="not a valid cursor"):
        decode_group_cursor(text)


def test_group_cursors_round_trip_and_refuse_respellings() -> None:
    cursor = encode_group_cursor("0123456789abcdef0123")
    assert decode_group_cursor(cursor) == "0123456789abcdef0123"
    for respelled in (cursor + "=", f" {cursor}", cursor.upper()):
        with pytest.raises(ValueError, match="not a valid cursor"):
            decode_group_cursor(respelled)
