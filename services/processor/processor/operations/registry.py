"""The operation registry: every operation registers itself with ``@operation``.

An operation is a pure function ``(image, params) -> image`` on uint8 arrays shaped
HxW (L), HxWx2 (LA), HxWx3 (RGB) or HxWx4 (RGBA). Its function name is its registry
key, its pipeline word and its label in ``/v1/operations``, where its summary is the
first line of its docstring as plain text (double-backtick literals unquoted).

``/v1/operations`` publishes each operation's parameters as the JSON schema of its
params model, with one Darkroom extension a form may use: a property carrying
``"x-applies-when": {"method": ["butterworth", "ideal"]}`` applies only while each
named parameter (here ``method``) has one of the listed values; forms hide it otherwise.

While a job runs (``job_context``), operations can learn two things about it: its
pixel limit (``check_output_size`` refuses larger results) and whether the output
format can carry transparency (``output_carries_alpha``: an operation may then add an
alpha channel, as ``rotate`` does for a transparent fill). Outside a job neither applies.
"""

import re
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


OutputSize = Callable[[Any, int, int], tuple[int, int]]


@dataclass(frozen=True)
class Operation:
    """A registered operation and what the API says about it.

    ``output_size(params, width, height)`` is the (width, height) of the result for
    a width x height input; None means the operation keeps the size. ``scale_free``
    says no parameter measures pixels, so running the operation on a smaller copy of
    the image and then shrinking gives the picture shrinking first would (a point
    operation, a flip, a rotation): shrink-on-load may look past it.
    """

    name: str
    summary: str
    params: type[BaseModel]
    func: Callable[[np.ndarray, Any], np.ndarray]
    output: OutputKind
    shrink_on_load: ShrinkOnLoad | None = None
    output_size: OutputSize | None = None
    scale_free: bool = False

    def __call__(self, image: np.ndarray, params: BaseModel) -> np.ndarray:
        """Apply the operation to ``image``."""
        return self.func(image, params)

    def size_of(self, params: BaseModel, width: int, height: int) -> tuple[int, int]:
        """Return the (width, height) this operation gives a ``width`` x ``height`` image."""
        if self.output_size is None:
            return width, height
        return self.output_size(params, width, height)


P = TypeVar("P", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., np.ndarray])

_REGISTRY: dict[str, Operation] = {}


_RST_LITERAL = re.compile(r"``(.+?)``")


def plain_summary(docstring: str) -> str:
    """Return the first line of ``docstring`` as plain text, double-backtick literals unquoted."""
    return _RST_LITERAL.sub(r"\1", docstring.strip().splitlines()[0])


def operation(
    params: type[P],
    *,
    output: OutputKind = "photo",
    shrink_on_load: ShrinkOnLoad | None = None,
    output_size: OutputSize | None = None,
    scale_free: bool = False,
) -> Callable[[F], F]:
    """Register the decorated function as an operation taking ``params``.

    ``output="graphic"`` marks results that are not photographs (PNG by default);
    ``shrink_on_load`` lets a leading step of this operation be started by the decoder;
    ``output_size`` gives the result's size for operations that change it (the job's
    cost estimate needs it before any pixel is decoded); ``scale_free`` marks
    operations whose parameters measure no pixels (see ``Operation``).
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
            summary=plain_summary(doc),
            params=params,
            func=func,
            output=output,
            shrink_on_load=shrink_on_load,
            output_size=output_size,
            scale_free=scale_free,
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


@dataclass(frozen=True)
class JobContext:
    """What operations may know of the job they run in: its pixel limit, its output's alpha."""

    max_pixels: int | None = None
    output_alpha: bool = False


OUTSIDE_A_JOB = JobContext()
_job: ContextVar[JobContext] = ContextVar("job", default=OUTSIDE_A_JOB)


@contextmanager
def job_context(*, max_pixels: int | None = None, output_alpha: bool = False) -> Iterator[None]:
    """Run the block as part of a job with this pixel limit and output alpha.

    ``check_output_size`` enforces ``max_pixels``; ``output_carries_alpha`` says whether
    the output format keeps transparency.
    """
    token = _job.set(JobContext(max_pixels, output_alpha))
    try:
        yield
    finally:
        _job.reset(token)


def output_carries_alpha() -> bool:
    """Return True while the job's output format can carry alpha (PNG, WebP); else False."""
    return _job.get().output_alpha


def check_output_size(name: str, width: int, height: int) -> None:
    """Raise ImageTooLarge if an operation is about to produce too many pixels.

    Operations that can enlarge an image call this before allocating the result,
    so an oversized request fails fast instead of first allocating gigabytes.
    """
    limit = _job.get().max_pixels
    if limit is not None and width * height > limit:
        raise ImageTooLarge(
            f"{name} would produce {width}x{height} = {width * height} pixels, "
            f"over the limit of {limit}"
        )
