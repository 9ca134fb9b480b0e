"""Reading a cascade config as written (plain data or models), before or without validation:
flags as the config model reads them, lists, and fields of any part."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

__all__ = ["any_list", "flag_false", "flag_true", "part", "str_list"]


def flag_true(value: Any) -> bool:
    """Whether a flag reads as true the way the config model reads it (`true`, `"yes"`, 1)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "y", "t", "1")
    return value is True or (type(value) in (int, float) and value == 1)


def flag_false(value: Any) -> bool:
    """Whether a flag reads as false the way the config model reads it (`false`, `"no"`, 0)."""
    if isinstance(value, str):
        return value.strip().lower() in ("false", "no", "off", "n", "f", "0")
    return value is False or (type(value) in (int, float) and value == 0)


def any_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def str_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def part(value: Any, key: str) -> Any:
    """Field `key` of a part of the config, as plain data (a mapping) or a model."""
    if isinstance(value, Mapping):
        return value.get(key)
    return getattr(value, key, None) if isinstance(value, BaseModel) else None
