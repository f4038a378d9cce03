"""The operation registry: every operation registers itself with ``@operation``.

An operation is a pure function ``(image, params) -> image`` on uint8 arrays shaped
HxW (L), HxWx2 (LA), HxWx3 (RGB) or HxWx4 (RGBA). Its function name is its registry
key, its pipeline word and its label in ``/v1/operations``.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from processor.errors import ImageTooLarge, UnknownOperation

OutputKind = Literal["photo", "graphic"]


class Params(BaseModel):
    """Base of every operation's parameters: strict, finite, immutable."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class NoParams(Params):
    """Parameters of an operation that takes none."""


@dataclass(frozen=True)
class Operation:
    """A registered operation and what the API says about it."""

    name: str
    summary: str
    params: type[BaseModel]
    func: Callable[[np.ndarray, Any], np.ndarray]
    output: OutputKind

    def __call__(self, image: np.ndarray, params: BaseModel) -> np.ndarray:
        """Apply the operation to ``image``."""
        return self.func(image, params)


P = TypeVar("P", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., np.ndarray])

_REGISTRY: dict[str, Operation] = {}


def operation(params: type[P], *, output: OutputKind = "photo") -> Callable[[F], F]:
    """Register the decorated function as an operation taking ``params``."""

    def register(func: F) -> F:
        name = func.__name__
        doc = (func.__doc__ or "").strip()
        if not doc:
            raise TypeError(f"operation {name} needs a docstring")
        if name in _REGISTRY:
            raise TypeError(f"operation {name} is registered twice")
        _REGISTRY[name] = Operation(
            name=name, summary=doc.splitlines()[0], params=params, func=func, output=output
        )
        return func

    return register


def get_operation(name: str) -> Operation:
    """Return the operation called ``name`` or raise UnknownOperation."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownOperation(f"unknown operation {name!r}; known: {known}") from None


def all_operations() -> list[Operation]:
    """Return every registered operation, sorted by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


_pixel_limit: ContextVar[int | None] = ContextVar("pixel_limit", default=None)


@contextmanager
def pixel_limit(max_pixels: int) -> Iterator[None]:
    """Make ``check_output_size`` enforce ``max_pixels`` within this block."""
    token = _pixel_limit.set(max_pixels)
    try:
        yield
    finally:
        _pixel_limit.reset(token)


def check_output_size(name: str, width: int, height: int) -> None:
    """Raise ImageTooLarge if an operation is about to produce too many pixels.

    Operations that can enlarge an image call this before allocating the result,
    so an oversized request fails fast instead of first allocating gigabytes.
    """
    limit = _pixel_limit.get()
    if limit is not None and width * height > limit:
        raise ImageTooLarge(
            f"{name} would produce {width}x{height} = {width * height} pixels, "
            f"over the limit of {limit}"
        )
