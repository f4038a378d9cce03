"""Response headers for a page on a network, and a same-origin check for state changes.

Every response gets a strict Content-Security-Policy (scripts, styles and images from
the gateway itself only, never inline; no plugins; no framing), ``nosniff``, a referrer
policy that keeps image ids and pipelines inside the site, and the legacy frame header.

A request that changes state (any method but GET, HEAD, OPTIONS) must come from a page
of this site: browsers say where a request comes from (``Sec-Fetch-Site``, and
``Origin`` on cross-site requests), so a form on another site cannot upload or delete
through a visitor's browser. Requests without either header (scripts, curl) are not
browsers acting for a visitor and pass; the catalog's key guards them.
"""

import html
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' blob: data:",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values a page of this site (or the visitor typing the URL) sends.
SAME_SITE = frozenset({"same-origin", "none"})


def cross_site(scope: Scope) -> str | None:
    """Why a state-changing request comes from another site, or None when it does not."""
    headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in SAME_SITE:
        return f"the browser says the request comes from a {fetch_site} page"
    origin = headers.get("origin")
    if origin is None:
        return None
    # Hosts, not schemes, are compared: behind a TLS proxy the page is https, this hop http.
    if urlsplit(origin).netloc != headers.get("host", ""):
        return f"the request comes from {origin}, not from this site"
    return None


class SecurityHeaders:
    """Plain ASGI middleware: the headers on every response, the check on every state change."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse cross-site state changes, then pass on, adding the headers to the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                extra = [(key, value) for key, value in HEADERS if key not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if scope["method"] not in SAFE_METHODS:
            reason = cross_site(scope)
            if reason is not None:
                await refuse(reason, with_headers)
                return
        await self.app(scope, receive, with_headers)


async def refuse(reason: str, send: Send) -> None:
    """Answer 403 with a short page saying why."""
    body = (
        "<!doctype html><title>Forbidden</title><h1>Forbidden (403)</h1>"
        f"<p>This change was refused: {html.escape(reason)}. "
        "Make it from Darkroom's own pages.</p>"
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
