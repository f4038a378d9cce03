r"""Signed render URLs: the scheme, in the standard library alone, so a signer can copy it.

A signed URL lets a page or a script ask for one render without holding a bearer key:
``POST /v1/process?ops=<pipeline>&format=<format>&image=<id>&expires=<unix seconds>
&signature=<hex>``, where the signature is the lowercase hex HMAC-SHA256, keyed with
one of ``PROCESSOR_SIGNING_KEYS`` (UTF-8), of the UTF-8 text::

    darkroom-render-v1\n<image>\n<canonical pipeline>\n<format, or nothing>\n<expires>

``image`` is a Darkroom image id (the first 20 hex digits of the original's SHA-256;
the processor refuses a body whose SHA-256 does not start with it), the pipeline is
in its canonical form (``GET /v1/pipeline``; ``""`` for none), ``format`` is the
``format`` query value or the empty string when the URL has none, and ``expires`` is
the integer in decimal. ``quality``, ``metadata`` and ``colour`` are not signed.
The first signing key signs; every one verifies, so a key is rotated by putting the
new one first, waiting out the links' lifetime, then removing the old one.
"""

import hashlib
import hmac
import re
from collections.abc import Iterable

SCHEME = "darkroom-render-v1"
IMAGE_ID = re.compile(r"[0-9a-f]{20}")
SIGNATURE = re.compile(r"[0-9a-f]{64}")


def render_message(image: str, pipeline_canonical: str, fmt: str | None, expires: int) -> bytes:
    """Return the bytes a render signature covers."""
    lines = (SCHEME, image, pipeline_canonical, fmt or "", str(expires))
    return "\n".join(lines).encode()


def sign_render(
    secret: str, image: str, pipeline_canonical: str, fmt: str | None, expires: int
) -> str:
    """Return the hex signature of a render of ``image`` valid until ``expires`` (unix seconds)."""
    message = render_message(image, pipeline_canonical, fmt, expires)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_matches(
    secrets: Iterable[str],
    signature: str,
    image: str,
    pipeline_canonical: str,
    fmt: str | None,
    expires: int,
) -> bool:
    """Return whether ``signature`` was made by any of ``secrets``, comparing in constant time."""
    given = signature.encode()
    matched = False
    for secret in secrets:
        expected = sign_render(secret, image, pipeline_canonical, fmt, expires).encode()
        # Every secret is tried, so the time taken does not say which one matched.
        matched |= hmac.compare_digest(expected, given)
    return matched
