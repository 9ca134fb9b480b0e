"""Handlers named by import path: `"package.module:function"` (or `"package.module.function"`)."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cascadence.errors import PlanError, closest

__all__ = ["import_object", "refused_call"]


def refused_call(fn: Callable[..., Any], count: int) -> tuple[str, str] | None:
    """Why `fn` cannot be called with `count` positional arguments: its parameters as shown
    in a message, and the reason; None when it can, or has no signature to read (some
    builtins). A wrapper made with `functools.wraps` is read as itself, not as the function
    it wraps (it may supply arguments of its own)."""
    try:
        signature = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*([None] * count))
    except TypeError as exc:
        return str(signature.replace(return_annotation=inspect.Signature.empty)), str(exc)
    return None


def import_object(path: str, *, what: str = "handler", search: Sequence[str] = ()) -> Any:
    """Import the object an import path names.

    `search` lists folders tried too (a cascade file's own folder, so that handlers kept next
    to the YAML import without installing them).

    Raises:
        PlanError: The module or attribute does not exist; the message names the closest
            attribute of the module when there is one.
    """
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise PlanError(
            f"{what} {path!r} is not an import path; expected 'package.module:attribute'"
        )
    added = [d for d in search if d not in sys.path]
    sys.path.extend(added)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise PlanError(
            f"cannot import {what} {path!r}: module {exc.name!r} not found "
            "(is it installed, or is its folder on PYTHONPATH?)"
        ) from None
    except Exception as exc:  # the module itself fails: a syntax error, an error at import
        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f" ({exc.filename}:{exc.lineno})"
        raise PlanError(
            f"cannot import {what} {path!r}: importing {module_name!r} raised "
            f"{type(exc).__name__}: {exc}{where}"
        ) from exc
    finally:
        for d in added:
            sys.path.remove(d)
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            names = [n for n in dir(target) if not n.startswith("_")]
            hint = closest(part, names)
            raise PlanError(
                f"cannot import {what} {path!r}: {module_name!r} has no attribute {part!r}"
                + (f"; did you mean {hint!r}?" if hint else "")
            )
        target = getattr(target, part)
    return target
