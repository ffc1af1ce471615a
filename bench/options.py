"""Typed, validated options for plugins: a dataclass whose fields are the options.

Values arriving from the command line are strings; ``Options.from_dict`` converts them to the
field's type and rejects unknown names or bad values with a one-line message.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, Literal, get_args, get_origin

from bench.errors import BenchError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, value: Any, annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices:
            raise BenchError(f"option {name}={value!r}: choose one of {', '.join(map(str, choices))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return None
        return _convert(name, value, args[0])
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError
        if annotation is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if annotation is float:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
            if not math.isfinite(number):  # a config must record every value faithfully (JSON has no inf/nan)
                raise BenchError(f"option {name}={value!r}: must be a finite number")
            return number
        if annotation is str:
            return str(value)
    except (TypeError, ValueError):
        raise BenchError(f"option {name}={value!r} is not a valid {annotation.__name__}") from None
    return value


@dataclasses.dataclass
class Options:
    """Base for plugin options; subclass as a dataclass with typed fields and defaults."""

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None = None):
        values = dict(values or {})
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise BenchError(
                f"unknown option {', '.join(unknown)} for {cls.__qualname__.split('.')[0]}; "
                f"valid: {', '.join(fields) or 'none'}"
            )
        converted = {key: _convert(key, value, hints[key]) for key, value in values.items()}
        options = cls(**converted)
        options.validate()
        return options

    def validate(self) -> None:
        """Override to check ranges; raise BenchError with a clear message."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def describe(cls) -> dict[str, dict[str, Any]]:
        """Field name -> {type, default} for `bench list --json`."""
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else None
            out[f.name] = {"type": _type_name(hints[f.name]), "default": default}
        return out


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " | ".join(repr(a) for a in get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def positive(name: str, value: float) -> None:
    if not value > 0:
        raise BenchError(f"option {name} must be > 0, got {value}")


def fraction(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise BenchError(f"option {name} must be between 0 and 1, got {value}")
