"""`NamedEnum`: a string enum that accepts loose spellings and suggests the closest name."""

from __future__ import annotations

from enum import Enum
from typing import Any

from cascadence.errors import closest

__all__ = ["NamedEnum"]


class NamedEnum(str, Enum):
    """A `str` enum whose lookup ignores case, `-` and spaces, takes a member's name (or an
    alias's) as well as its value, and whose errors suggest a value.

    Subclasses name what their values are by overriding `_what` (used in the error message).
    """

    @classmethod
    def _what(cls) -> str:
        return "value"

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            text = value.strip().lower().replace("-", "_").replace(" ", "_")
            for member in cls:
                if member.value == text:
                    return member
            by_name = cls.__members__.get(text.upper())  # a member's name, or an alias
            if by_name is not None:
                return by_name
        valid = [member.value for member in cls]
        suggestion = closest(str(value).lower(), valid)
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        raise ValueError(f"unknown {cls._what()} {value!r}: expected one of {valid}{hint}")

    def __str__(self) -> str:
        return str(self.value)
