"""Who may use the processor: bearer keys for the costly routes, signed URLs for one render.

With ``api_keys`` set, ``POST /v1/process``, ``POST /v1/info`` and ``GET /v1/pipeline``
need ``Authorization: Bearer <key>``. With ``signing_keys`` set, ``POST /v1/process``
also takes a signed URL instead (``signing.py``); with signing keys alone, it needs
one. With neither, every route is open. ``/healthz``, ``/metrics`` and
``/v1/operations`` are always open.

A bearer key, once given, decides alone: a wrong one is refused even beside a valid
signature. Keys are compared in constant time with every configured key and never
appear in a message. A signature is checked before the body is read; the body's
SHA-256 is checked against the signed image after reading it, before decoding it.
"""

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams

from processor.config import Settings
from processor.errors import (
    DarkroomError,
    ExpiredSignature,
    InvalidParameter,
    MissingKey,
    WrongKey,
    WrongSignature,
)
from processor.pipeline import parse_pipeline
from processor.signing import IMAGE_ID, SIGNATURE, signature_matches

# The query parameters a signed URL adds; any of them makes a request a signed one.
SIGNED_PARAMS = ("image", "expires", "signature")
# What the signature covers besides them; each may appear once, so the route reads what was signed.
_SIGNED_QUERY = ("ops", "format", *SIGNED_PARAMS)
_UNIX_SECONDS = re.compile(r"[0-9]{1,20}")
_MISMATCH = "the signature does not match this image, pipeline, format and expires"


@dataclass(frozen=True)
class Grant:
    """How a request was let in; a signed one names the image its body must be."""

    signed_image: str | None = None

    async def check_body(self, data: bytes) -> None:
        """Raise WrongSignature unless a signed request's body is the signed image."""
        if self.signed_image is None:
            return
        # Off the event loop: hashing a body of up to max_body_bytes takes tens of ms.
        digest = await run_in_threadpool(_sha256, data)
        if not digest.startswith(self.signed_image):
            raise WrongSignature(
                "the body is not the signed image: its SHA-256 does not start with image"
            )


ADMITTED = Grant()


def _sha256(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def key_matches(keys: Iterable[SecretStr], given: str) -> bool:
    """Return whether ``given`` is one of ``keys``, comparing in constant time with every key."""
    candidate = given.encode()
    matched = False
    for key in keys:
        # No early exit: the time taken does not say whether, or which, key matched.
        matched |= hmac.compare_digest(key.get_secret_value().encode(), candidate)
    return matched


def admit(
    settings: Settings, *, bearer: str | None, render_query: QueryParams | None, now: float
) -> Grant:
    """Let a request in openly, by its bearer key or by a signed URL, or raise why not.

    ``render_query`` is the query of a request a signed URL may authorise (``POST
    /v1/process``), None for any other; ``now`` is the time in unix seconds.
    """
    # The query a signed URL may authorise, when the route takes one and keys can sign.
    signable = render_query if settings.signing_keys else None
    if not settings.api_keys and signable is None:
        return ADMITTED
    if bearer is not None:
        if key_matches(settings.api_keys, bearer):
            return ADMITTED
        raise WrongKey("the bearer key is not one of this processor's keys")
    if signable is not None and any(name in signable for name in SIGNED_PARAMS):
        return _admit_signed(settings, signable, now)
    ways = ["an 'Authorization: Bearer <key>' header"] if settings.api_keys else []
    if signable is not None:
        ways.append("a signed URL (image, expires, signature)")
    raise MissingKey(f"this request needs {' or '.join(ways)}")


def _signed_values(query: QueryParams) -> tuple[str, int, str]:
    """Return the image, expires and signature of a signed URL; InvalidParameter naming bad ones."""
    problems = [
        f"{name}: given {count} times; a signed URL gives it once"
        for name in _SIGNED_QUERY
        if (count := len(query.getlist(name))) > 1
    ]
    image, expires, signature = (query.get(name) for name in SIGNED_PARAMS)
    if image is None or not IMAGE_ID.fullmatch(image):
        problems.append("image: expected an image id, 20 lowercase hex digits")
    if expires is None or not _UNIX_SECONDS.fullmatch(expires):
        problems.append("expires: expected unix seconds, a whole number")
    if signature is None or not SIGNATURE.fullmatch(signature):
        problems.append("signature: expected 64 lowercase hex digits")
    if problems:
        raise InvalidParameter("; ".join(problems))
    assert image is not None and expires is not None and signature is not None
    return image, int(expires), signature


def _admit_signed(settings: Settings, query: QueryParams, now: float) -> Grant:
    """Check a signed URL against the render it asks for, and its lifetime."""
    image, expires, signature = _signed_values(query)
    fmt = query.get("format")
    try:
        pipeline = parse_pipeline(query.get("ops", ""), max_steps=settings.max_steps).canonical()
    except DarkroomError:
        # Signers sign canonical pipelines, so no signature covers one that does not parse.
        raise WrongSignature(_MISMATCH) from None
    secrets = [key.get_secret_value() for key in settings.signing_keys]
    if not signature_matches(secrets, signature, image, pipeline, fmt, expires):
        raise WrongSignature(_MISMATCH)
    if expires < now:
        raise ExpiredSignature(f"the signed URL expired at {expires} (unix seconds)")
    if expires > now + settings.signature_max_age_s:
        raise WrongSignature(
            f"expires is more than {settings.signature_max_age_s} s ahead, "
            "the longest a signed URL may live"
        )
    return Grant(signed_image=image)
