"""Who may call which route: a bearer key for writes, and for reads when read keys are set.

Writes (``api_keys``, CATALOG_API_KEYS) are open while no write key is configured; reads
are open while no read key is (``read_keys``, CATALOG_READ_KEYS), and then take a read key
or a write key. A presented key is hashed and compared with the digest of every accepted
key through ``hmac.compare_digest``, so the time taken says neither which key matched, nor
how much of one did, nor how long the keys are. Keys never reach a message or a log line.
"""

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from catalog.config import Settings
from catalog.errors import MissingKey, WrongKey

# auto_error=False: a missing key is answered by MissingKey, in the catalog's error shape.
_bearer = HTTPBearer(
    auto_error=False,
    description="One of CATALOG_API_KEYS (writes, and reads), or of CATALOG_READ_KEYS (reads).",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """The digests of the keys a set of routes accepts; empty means those routes are open."""

    def __init__(self, keys: Iterable[SecretStr]) -> None:
        self._digests = tuple(_digest(key.get_secret_value()) for key in keys)

    def __bool__(self) -> bool:
        """Whether any key is configured (the routes are guarded)."""
        return bool(self._digests)

    def accepts(self, key: str) -> bool:
        """Whether the key is one of the ring's, compared with every one in constant time."""
        presented = _digest(key)
        accepted = False
        for digest in self._digests:
            accepted |= hmac.compare_digest(presented, digest)
        return accepted


@dataclass(frozen=True)
class Access:
    """The keys of the write routes and of the read routes."""

    writes: KeyRing
    reads: KeyRing

    @classmethod
    def from_settings(cls, settings: Settings) -> "Access":
        """Write keys guard writes; read keys, when set, guard reads, which write keys also pass."""
        reads = (*settings.read_keys, *settings.api_keys) if settings.read_keys else ()
        return cls(writes=KeyRing(settings.api_keys), reads=KeyRing(reads))


def _check(ring: KeyRing, credentials: HTTPAuthorizationCredentials | None) -> None:
    """Let the request through when the ring is empty or accepts its key; 401 or 403 otherwise."""
    if not ring:
        return
    if credentials is None:
        raise MissingKey("this route needs a key: send it as 'Authorization: Bearer <key>'")
    if not ring.accepts(credentials.credentials):
        raise WrongKey("the bearer key sent is not one this route accepts")


def _access(request: Request) -> Access:
    return cast(Access, request.app.state.access)


def write_access(request: Request, credentials: Credentials) -> None:
    """Guard of the write routes: a write key, when write keys are configured."""
    _check(_access(request).writes, credentials)


def read_access(request: Request, credentials: Credentials) -> None:
    """Guard of the read routes: a read or write key, when read keys are configured."""
    _check(_access(request).reads, credentials)
