"""Handlers named by import path: `"package.module:function"` (or `"package.module.function"`)."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
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

    `search` lists folders tried first (a cascade file's own folder, so that handlers kept
    next to the YAML import without installing them). A module such a folder holds is imported
    from there, even when a module of the same name is already imported from elsewhere (the
    handlers of another version of the cascade, kept next to its own file): then the folder's
    module is loaded for this import, and the module imported before stays what `import`
    gives everyone else.

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
    top = module_name.partition(".")[0]
    folder = next((d for d in search if _origin(d, top) is not None), None)
    try:
        if folder is None:
            module = importlib.import_module(module_name)
        else:
            module = _import_from(folder, top, module_name)
    except ModuleNotFoundError as exc:
        raise PlanError(
            f"cannot import {what} {path!r}: module {exc.name!r} not found "
            "(is it installed, or is its folder on PYTHONPATH?)"
        ) from None
    except (KeyboardInterrupt, GeneratorExit):
        raise
    except BaseException as exc:  # the module itself fails: a syntax error, an error at
        # import, a `sys.exit()` at import
        where = ""
        if isinstance(exc, SyntaxError) and exc.filename:
            where = f" ({exc.filename}:{exc.lineno})"
        raise PlanError(
            f"cannot import {what} {path!r}: importing {module_name!r} raised "
            f"{type(exc).__name__}: {exc}{where}"
        ) from exc
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


def _origin(folder: str, top: str) -> str | None:
    """The file that module `top` is in `folder` (a module or a package), if it is there."""
    for candidate in (os.path.join(folder, top + ".py"), os.path.join(folder, top, "__init__.py")):
        if os.path.isfile(candidate):
            return os.path.realpath(candidate)
    return None


def _inside(module: ModuleType, folder: str) -> bool:
    file = getattr(module, "__file__", None)
    return isinstance(file, str) and os.path.realpath(file).startswith(folder + os.sep)


def _import_from(folder: str, top: str, module_name: str) -> ModuleType:
    """Import `module_name` (whose top-level module `top` is in `folder`) from `folder`.

    Modules of the names the folder holds that are already imported from elsewhere are set
    aside for the import (so the folder's modules import each other, not those) and put back
    after it.
    """
    folder = os.path.realpath(folder)
    loaded = sys.modules.get(top)
    stashed: dict[str, ModuleType] = {}
    if loaded is not None and not _inside(loaded, folder):
        held = {
            name[:-3] if name.endswith(".py") else name
            for name in os.listdir(folder)
            if name.endswith(".py") or os.path.isfile(os.path.join(folder, name, "__init__.py"))
        }
        for name, module in list(sys.modules.items()):
            if (
                name.partition(".")[0] in held
                and getattr(module, "__file__", None) is not None
                and not _inside(module, folder)
            ):
                stashed[name] = module
                del sys.modules[name]
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(module_name)
    finally:
        if sys.path and sys.path[0] == folder:
            del sys.path[0]
        elif folder in sys.path:  # pragma: no cover - the import itself changed sys.path
            sys.path.remove(folder)
        if stashed:  # the folder's modules leave `sys.modules`; the ones set aside return
            tops = {name.partition(".")[0] for name in stashed}
            for name in [n for n in sys.modules if n.partition(".")[0] in tops]:
                if _inside(sys.modules[name], folder):
                    del sys.modules[name]
            sys.modules.update(stashed)
