"""Fallback: what a step yields when it fails for good."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

__all__ = ["NO_DEFAULT", "Fallback", "fallback_from"]


class _NoDefault:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Any = _NoDefault()


@dataclass(frozen=True, slots=True)
class Fallback:
    """Replace a failure with a value.

    Args:
        default: The value to use (copied per use when it is a list, dict or set).
        field: For flow notes, the score field to write `default` into.
        factory: Called with the error to produce the value, instead of `default`.
        on: Exception types the fallback applies to.
    """

    default: Any = None
    field: str | None = None
    factory: Callable[[BaseException], Any] | None = None
    on: tuple[type[BaseException], ...] = dc_field(default=(Exception,))

    def applies_to(self, error: BaseException) -> bool:
        """Whether this fallback handles `error`."""
        return isinstance(error, self.on)

    def value(self, error: BaseException) -> Any:
        """The replacement value for `error`."""
        if self.factory is not None:
            return self.factory(error)
        default = self.default
        if isinstance(default, (list, dict, set)):  # every use gets its own, nested ones too
            return copy.deepcopy(default)
        return default


def fallback_from(spec: Any) -> Fallback | None:
    """Build a `Fallback` from `{"default": ..., "field": ...}`, a `Fallback`, or None."""
    if spec is None:
        return None
    if isinstance(spec, Fallback):
        return spec
    if isinstance(spec, dict):
        unknown = set(spec) - {"default", "field", "factory", "on"}
        if unknown:
            raise ValueError(
                f"unknown fallback option(s) {sorted(unknown)}; expected 'default' and 'field'"
            )
        on = spec.get("on", (Exception,))
        return Fallback(
            default=spec.get("default"),
            field=spec.get("field"),
            factory=spec.get("factory"),
            on=on if isinstance(on, tuple) else (on,),
        )
    return Fallback(default=spec)
