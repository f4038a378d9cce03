"""Processing-form fields derived from the processor's operation schemas."""

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.clients import OperationInfo
from gateway.errors import InvalidInput

FieldKind = Literal["number", "integer", "boolean", "choice", "text"]
# Characters that structure the pipeline string; a value holding one would change its meaning.
RESERVED = frozenset("|,:=")
# A float slider moves in steps of about a thousandth of its range, rounded to a power of ten.
SLIDER_POSITIONS = 1000


@dataclass(frozen=True)
class FormField:
    """One input of an operation's parameter form."""

    name: str
    label: str
    help: str
    kind: FieldKind
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    # Whether the bounds themselves are refused (JSON schema exclusiveMinimum/exclusiveMaximum).
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    # The schema's multipleOf, or 2 for odd integers ("not": {"multipleOf": 2}) from an odd minimum.
    multiple_of: float | None = None
    # The processor's "x-applies-when": {other field: values under which this one applies}.
    applies_when: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @property
    def step(self) -> str:
        """HTML step attribute: the schema's multiple, whole numbers for integers, else any."""
        if self.multiple_of is not None:
            return _number_text(self.multiple_of)
        return "1" if self.kind == "integer" else "any"

    @property
    def slider(self) -> bool:
        """Whether the field gets a range slider: a number bounded on both sides."""
        numeric = self.kind in ("number", "integer")
        return numeric and self.minimum is not None and self.maximum is not None

    @property
    def slider_step(self) -> str:
        """The slider's step: the number box's for integers, else a power of ten near 1/1000."""
        if self.kind == "integer" or self.multiple_of is not None:
            return self.step
        if self.minimum is None or self.maximum is None:
            return "any"
        span = float(self.maximum) - float(self.minimum)
        if span <= 0:
            return "1"
        return _number_text(10.0 ** math.floor(math.log10(span / SLIDER_POSITIONS)))

    @property
    def slider_min(self) -> str:
        """The slider's lowest position: the minimum, one step in when the minimum is refused."""
        return self._slider_end(self.minimum, self.exclusive_minimum, +1)

    @property
    def slider_max(self) -> str:
        """The slider's highest position: the maximum, one step in when the maximum is refused."""
        return self._slider_end(self.maximum, self.exclusive_maximum, -1)

    def _slider_end(self, bound: float | None, exclusive: bool, inward: int) -> str:
        if bound is None:
            return ""
        step = float(self.slider_step)
        return _number_text(round(bound + inward * step, 12) if exclusive else bound)

    def slider_value(self, current: str) -> str:
        """Where the slider starts: the current value when in range, else the low end."""
        try:
            value = float(current)
        except ValueError:
            return self.slider_min
        low, high = float(self.slider_min), float(self.slider_max)
        return current if low <= value <= high else self.slider_min

    @property
    def default_text(self) -> str:
        """The default as the form shows it: empty when there is none, true/false for flags."""
        if self.default is None:
            return ""
        if isinstance(self.default, bool):
            return "true" if self.default else "false"
        return str(self.default)

    def input_name(self, operation: str) -> str:
        """The form field name, unique across operations."""
        return f"p.{operation}.{self.name}"

    def applies(self, values: Mapping[str, str]) -> bool:
        """Whether this field applies given the other fields' values (name to value)."""
        return all(values.get(key, "") in allowed for key, allowed in self.applies_when.items())


def _number_text(value: float) -> str:
    """A number as an HTML attribute writes it: no trailing .0, no float noise."""
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def prefilled(fields: list[FormField], given: Mapping[str, str]) -> dict[str, str]:
    """Each field's value to show: the given one, else its default."""
    return {field.name: given.get(field.name, field.default_text) for field in fields}


def form_fields(operation: OperationInfo) -> list[FormField]:
    """Turn an operation's JSON schema into form fields, in declaration order."""
    properties: dict[str, Any] = operation.params.get("properties", {})
    return [_field(name, spec) for name, spec in properties.items()]


def _field(name: str, spec: dict[str, Any]) -> FormField:
    # Optional parameters arrive as anyOf [<type>, null]; the non-null branches carry the bounds.
    branches = [b for b in spec.get("anyOf", [spec]) if b.get("type") != "null"] or [spec]
    branch = branches[0]
    choices = tuple(str(c) for b in branches for c in b.get("enum", ()))
    kind: FieldKind
    if any(b.get("type") == "string" and "enum" not in b for b in branches):
        # Free text (a hex colour, say), with any named values offered as suggestions.
        kind = "text"
    elif choices:
        kind = "choice"
    elif branch.get("type") == "boolean":
        kind = "boolean"
    elif branch.get("type") == "integer":
        kind = "integer"
    else:
        kind = "number"
    minimum = branch.get("minimum", branch.get("exclusiveMinimum"))
    maximum = branch.get("maximum", branch.get("exclusiveMaximum"))
    exclusive_minimum = "minimum" not in branch and "exclusiveMinimum" in branch
    exclusive_maximum = "maximum" not in branch and "exclusiveMaximum" in branch
    multiple_of = branch.get("multipleOf")
    odd = branch.get("not", {}).get("multipleOf") == 2 and isinstance(minimum, int) and minimum % 2
    if multiple_of is None and branch.get("type") == "integer" and odd:
        multiple_of = 2
    conditions = spec.get("x-applies-when") or {}
    return FormField(
        name=name,
        label=str(spec.get("title", name)),
        help=str(spec.get("description", "")),
        kind=kind,
        default=spec.get("default"),
        minimum=minimum,
        maximum=maximum,
        choices=choices,
        exclusive_minimum=exclusive_minimum,
        exclusive_maximum=exclusive_maximum,
        multiple_of=multiple_of,
        applies_when={str(k): tuple(str(v) for v in vs) for k, vs in conditions.items()},
    )


def submitted_value(values: Mapping[str, str], name: str) -> str:
    """The value submitted under ``name``; of several, the last (a checkbox after its hidden)."""
    getlist = getattr(values, "getlist", None)
    given = list(getlist(name)) if getlist is not None else [values.get(name, "")]
    return str(given[-1]).strip() if given else ""


def submitted_values(operation: OperationInfo, values: Mapping[str, str]) -> dict[str, str]:
    """The submitted value of each of the operation's fields, by field name (blank ones too)."""
    return {
        field.name: submitted_value(values, field.input_name(operation.name))
        for field in form_fields(operation)
    }


def build_step(operation: OperationInfo, values: Mapping[str, str]) -> str:
    """Build one pipeline step ('name:key=value,...') from submitted form values.

    Fields that do not apply to the other values (a Butterworth cut-off while the method is
    gaussian) are left out, so a form filled in without JavaScript still makes a valid step.
    """
    fields = form_fields(operation)
    given = submitted_values(operation, values)
    current = {field.name: given[field.name] or field.default_text for field in fields}
    pairs = []
    for field in fields:
        value = given[field.name]
        if not value or not field.applies(current):
            continue
        if RESERVED & set(value):
            raise InvalidInput(
                f"{operation.name}.{field.name}: the value may not contain any of | , : ="
            )
        pairs.append(f"{field.name}={value}")
    return f"{operation.name}:{','.join(pairs)}" if pairs else operation.name


def split_pipeline(ops: str) -> list[str]:
    """Split a pipeline string into its steps for display."""
    return [step.strip() for step in ops.split("|") if step.strip()]


def step_values(step: str) -> tuple[str, dict[str, str]]:
    """Split one step into its operation name and its parameter values, to prefill the form."""
    name, _, arguments = step.partition(":")
    pairs = (pair.partition("=") for pair in arguments.split(",") if pair.strip())
    return name.strip(), {key.strip(): value.strip() for key, _, value in pairs}
