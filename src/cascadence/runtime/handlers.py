"""Handlers named by import path: `"package.module:function"` (or `"package.module.function"`)."""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import site
import sys
import sysconfig
import threading
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
    folder = next((d for d in search if _holds(d, top)), None)
    try:
        if folder is None:
            module = _import_with(search, module_name)
        else:
            module = _import_from(os.path.realpath(folder), module_name)
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


def _holds(folder: str, top: str) -> bool:
    """Whether module `top` is in `folder`: a module file, a package or a namespace folder."""
    return os.path.isfile(os.path.join(folder, top + ".py")) or os.path.isdir(
        os.path.join(folder, top)
    )


def _import_with(search: Sequence[str], module_name: str) -> ModuleType:
    """Import `module_name` as Python does, with `search` tried last."""
    added = [d for d in search if d not in sys.path]
    sys.path.extend(added)
    try:
        return importlib.import_module(module_name)
    finally:
        for d in added:
            sys.path.remove(d)


def _belongs(module: ModuleType, name: str, folder: str) -> bool:
    """Whether `module` (imported as `name`) was loaded from `folder`, where its top-level
    module is `folder/TOP.py` or the folder `folder/TOP`."""
    base = os.path.join(folder, name.partition(".")[0])
    return any(
        real == base + ".py" or real == base or real.startswith(base + os.sep)
        for real in _places(module)
    )


def _places(module: ModuleType) -> list[str]:
    """Where a module was loaded from: its file, or a namespace package's folders."""
    file = getattr(module, "__file__", None)
    places = [file] if isinstance(file, str) else list(getattr(module, "__path__", None) or ())
    return [os.path.realpath(place) for place in places]


@functools.cache
def _installed_places() -> tuple[str, ...]:
    """Where the standard library and installed packages live (not an application's code,
    even when the application sits under the interpreter's prefix, as `/usr/src/app`)."""
    places: set[str] = set()
    for scheme_path in sysconfig.get_paths().values():
        places.add(os.path.realpath(scheme_path) + os.sep)
    for extra in (*site.getsitepackages(), site.getusersitepackages()):
        places.add(os.path.realpath(extra) + os.sep)
    return tuple(p for p in places if p != os.sep)


def _local(module: ModuleType) -> bool:
    """Whether `module` is an application's own (not the standard library, not an installed
    package, not built in)."""
    places = _places(module)
    installed = _installed_places()  # looked up once, when first needed
    return bool(places) and not any(place.startswith(installed) for place in places)


def _held(folder: str) -> set[str]:
    """The names of the modules and packages `folder` holds."""
    names = set()
    for entry in os.listdir(folder):
        if entry.endswith(".py") and entry[:-3].isidentifier():
            names.add(entry[:-3])
        elif (
            entry.isidentifier()
            and entry != "__pycache__"
            and os.path.isdir(os.path.join(folder, entry))
        ):
            names.add(entry)
    return names


_IMPORTING = threading.RLock()
_LOCKS_LOCK = threading.Lock()
_NAME_LOCKS: dict[str, threading.RLock] = {}

_STDLIB: frozenset[str] = frozenset(getattr(sys, "stdlib_module_names", ()))
"""The standard library's top-level module names (Python 3.10+)."""

_FOLDER_MODULES: dict[str, dict[str, ModuleType]] = {}
"""Per folder, the modules loaded from it that could not stay in `sys.modules`: a module of
the same name was imported from elsewhere first."""


def _import_from(folder: str, module_name: str) -> ModuleType:
    """Import `module_name`, whose top-level module is in `folder`, from `folder`.

    The application's modules of names the folder holds that were imported from elsewhere
    (another version of the cascade, next to its own file) are set aside for the import, so
    the folder's modules import each other and not those, and are put back after it. The
    folder's modules that then leave `sys.modules` are kept for the folder's next imports, so
    every stage (and engine, and reload) of that folder shares one module, loaded once.
    Imports a handler makes later, when it is called, are Python's: they find the modules in
    `sys.modules`.
    """
    loaded = sys.modules.get(module_name)
    if loaded is not None and _belongs(loaded, module_name, folder):
        return importlib.import_module(module_name)  # waits for an import still running
    own = _FOLDER_MODULES.get(folder)
    if own is not None and module_name in own:
        return own[module_name]
    top = module_name.partition(".")[0]
    with _name_lock(top):  # folders importing a module of one name: one at a time
        own = _FOLDER_MODULES.get(folder)
        aside = _aside(folder, module_name)
        if own or aside:
            # Modules are set aside process-wide: one such import at a time. (An import with
            # nothing to set aside holds only its name's lock, so one that builds an engine
            # while another thread imports a module of another name does not wait on it.)
            with _IMPORTING:
                return _import_locked(folder, module_name, _aside(folder, module_name))
        return _import_locked(folder, module_name, aside)


def _name_lock(top: str) -> threading.RLock:
    with _LOCKS_LOCK:
        lock = _NAME_LOCKS.get(top)
        if lock is None:
            lock = _NAME_LOCKS[top] = threading.RLock()
        return lock


def _aside(folder: str, module_name: str) -> dict[str, ModuleType]:
    """The imported modules of names `folder` holds that the import of `module_name` from
    there sets aside: the application's own, loaded from elsewhere, and whatever holds the
    requested module's own name (a standard-library `queue` for the folder's `queue.py`)."""
    held = _held(folder)
    top = module_name.partition(".")[0]
    return {
        name: module
        for name, module in list(sys.modules.items())
        if name.partition(".")[0] in held
        and not _belongs(module, name, folder)
        and (name.partition(".")[0] == top or _local(module))
    }


def _import_locked(folder: str, module_name: str, stashed: dict[str, ModuleType]) -> ModuleType:
    """The import itself, with `stashed` (`_aside`, taken under the locks) set aside."""
    loaded = sys.modules.get(module_name)
    if loaded is not None and _belongs(loaded, module_name, folder):
        return importlib.import_module(module_name)
    own = _FOLDER_MODULES.setdefault(folder, {})
    if module_name in own:
        return own[module_name]
    for name in stashed:
        del sys.modules[name]
    sys.modules.update(own)
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(module_name)
    finally:
        if folder in sys.path:
            sys.path.remove(folder)  # the entry put first (another thread's may follow)
        # A folder module named like a standard-library module stays the folder's own, so the
        # rest of the process still imports the standard library's.
        private = {
            n.partition(".")[0]
            for n in list(sys.modules)
            if n.partition(".")[0] in _STDLIB and _belongs(sys.modules[n], n, folder)
        }
        if stashed or own or private:  # the folder's modules leave; the ones set aside return
            tops = {name.partition(".")[0] for name in (*stashed, *own)} | private
            for name in [n for n in sys.modules if n.partition(".")[0] in tops]:
                module = sys.modules[name]
                if _belongs(module, name, folder):
                    own[name] = module
                    del sys.modules[name]
            sys.modules.update(stashed)
