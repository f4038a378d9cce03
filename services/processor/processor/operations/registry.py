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
class ShrinkOnLoad:
    """How an operation that shrinks lets the decoder do part of its work.

    ``target(params, width, height)`` is the size the operation shrinks a width x
    height image to, or None when it does not shrink both sides; the decoder may
    then decode at a reduced scale no smaller than that. ``run_from(image, params,
    source)`` applies the operation to such a reduced decode exactly as it would to
    the ``source``-sized original, so the output size is the same either way.
    """

    target: Callable[[Any, int, int], tuple[int, int] | None]
    run_from: Callable[[np.ndarray, Any, tuple[int, int]], np.ndarray]


@dataclass(frozen=True)
class Operation:
    """A registered operation and what the API says about it."""

    name: str
    summary: str
    params: type[BaseModel]
    func: Callable[[np.ndarray, Any], np.ndarray]
    output: OutputKind
    shrink_on_load: ShrinkOnLoad | None = None

    def __call__(self, image: np.ndarray, params: BaseModel) -> np.ndarray:
        """Apply the operation to ``image``."""
        return self.func(image, params)


P = TypeVar("P", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., np.ndarray])

_REGISTRY: dict[str, Operation] = {}


def operation(
    params: type[P], *, output: OutputKind = "photo", shrink_on_load: ShrinkOnLoad | None = None
) -> Callable[[F], F]:
    """Register the decorated function as an operation taking ``params``.

    ``output="graphic"`` marks results that are not photographs (PNG by default);
    ``shrink_on_load`` lets a leading step of this operation be started by the decoder.
    """

    def register(func: F) -> F:
        name = func.__name__
        doc = (func.__doc__ or "").strip()
        if not doc:
            raise TypeError(f"operation {name} needs a docstring")
        if name in _REGISTRY:
            raise TypeError(f"operation {name} is registered twice")
        _REGISTRY[name] = Operation(
            name=name,
            summary=doc.splitlines()[0],
            params=params,
            func=func,
            output=output,
            shrink_on_load=shrink_on_load,
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
