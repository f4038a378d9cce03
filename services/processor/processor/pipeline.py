"""Parse pipeline text (``rotate:degrees=30|grayscale``) into validated steps; canonical form."""

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ValidationError

from processor.errors import (
    InvalidParameter,
    InvalidPipeline,
    describe_validation_errors,
)
from processor.operations import Operation, get_operation


@dataclass(frozen=True)
class Step:
    """One operation with its validated parameters."""

    operation: Operation
    params: BaseModel

    def canonical(self) -> str:
        """Return ``name`` or ``name:key=value,...`` with defaults filled and keys sorted."""
        values = self.params.model_dump()
        pairs = [
            f"{key}={_format_value(values[key])}"
            for key in sorted(values)
            if values[key] is not None
        ]
        return f"{self.operation.name}:{','.join(pairs)}" if pairs else self.operation.name


@dataclass(frozen=True)
class Pipeline:
    """An ordered sequence of steps; the empty pipeline is the identity."""

    steps: tuple[Step, ...]

    def canonical(self) -> str:
        """Return the canonical text: equal pipelines give equal strings."""
        return "|".join(step.canonical() for step in self.steps)

    @property
    def output(self) -> Literal["photo", "graphic"]:
        """Return "graphic" if any step produces a non-photographic result."""
        if any(step.operation.output == "graphic" for step in self.steps):
            return "graphic"
        return "photo"


def _format_value(value: object) -> str:
    """Format one parameter value the way ``parse_pipeline`` reads it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _parse_arguments(step_text: str, arguments: str, number: int) -> dict[str, str]:
    """Split ``key=value,key=value`` into a dict, rejecting malformed text."""
    where = f"step {number} ({step_text!r})"
    values: dict[str, str] = {}
    for item in arguments.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep:
            raise InvalidPipeline(f"{where}: expected key=value, got {item.strip()!r}")
        if not key:
            raise InvalidPipeline(f"{where}: empty parameter name in {item.strip()!r}")
        if key in values:
            raise InvalidPipeline(f"{where}: parameter {key!r} given twice")
        values[key] = value
    return values


def _split_step(step_text: str, number: int) -> tuple[str, dict[str, str]]:
    """Split ``name`` or ``name:key=value,...`` into the name and raw values."""
    name, colon, arguments = (part.strip() for part in step_text.partition(":"))
    if not name:
        raise InvalidPipeline(f"step {number} ({step_text!r}): missing operation name")
    if colon and not arguments:
        raise InvalidPipeline(f"step {number} ({step_text!r}): expected key=value after ':'")
    return name, _parse_arguments(step_text, arguments, number) if colon else {}


def _validate_step(name: str, raw: dict[str, str]) -> Step:
    """Look up the operation and validate its parameters."""
    op = get_operation(name)
    try:
        params = op.params.model_validate(raw)
    except ValidationError as exc:
        raise InvalidParameter(describe_validation_errors(exc.errors(), prefix=name)) from None
    return Step(operation=op, params=params)


def parse_pipeline(text: str, *, max_steps: int) -> Pipeline:
    """Parse pipeline text into validated steps; the empty string is the identity.

    Syntax errors anywhere (400) are reported before unknown operations (404)
    and bad parameters (422).
    """
    if not text.strip():
        return Pipeline(steps=())
    parts = text.split("|")
    if len(parts) > max_steps:
        raise InvalidPipeline(f"too many steps: {len(parts)}, at most {max_steps}")
    raw_steps = []
    for number, part in enumerate(parts, start=1):
        step_text = part.strip()
        if not step_text:
            raise InvalidPipeline(f"step {number} is empty (check for a stray '|')")
        raw_steps.append(_split_step(step_text, number))
    return Pipeline(steps=tuple(_validate_step(name, raw) for name, raw in raw_steps))
