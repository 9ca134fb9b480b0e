"""What a command may be pointed at: a cascade file, or Python objects named by import path.

A target is a cascade file when it ends in `.yaml`, `.yml` or `.json`. So is an existing file
that is not a `.py` module, and a name whose extension is one letter off a cascade extension
(`cascade.ymal`): loading them reports the unsupported extension with the closest one, as
`cascadence run` does. Anything else names Python: `package.module:attribute` (one object),
`package.module` (every flow, engine and config the module defines) or
`path/to/file.py[:attribute]`. The current folder is importable, as it is for `python -m`.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from cascadence.cli._common import CliError, add_import_folder, fail

__all__ = ["CASCADE_SUFFIXES", "PythonObject", "describe", "is_cascade_file", "load_objects"]

CASCADE_SUFFIXES = (".yaml", ".yml", ".json")
"""File extensions read as cascade files."""


@dataclass(frozen=True)
class PythonObject:
    """A flow, engine or config found at a Python target.

    Attributes:
        label: `module:attribute`, as a user would type it.
        value: The object itself.
        kind: `cadence`, `engine` or `config`.
    """

    label: str
    value: Any
    kind: str


_EXPECTED = (
    f"expected a cascade file ({', '.join(CASCADE_SUFFIXES)}), a .py file, "
    "or 'package.module[:attribute]'"
)


def _one_edit_apart(typed: str, valid: str) -> bool:
    """Whether `typed` is `valid` with one character added, dropped, changed, or two
    neighbours swapped (`.ymal`, `.yl`, `.jsonl` for `.yaml`, `.yml`, `.json`)."""
    if typed == valid or abs(len(typed) - len(valid)) > 1:
        return False
    if len(typed) != len(valid):
        short, long = sorted((typed, valid), key=len)
        return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
    diff = [i for i, (a, b) in enumerate(zip(typed, valid, strict=True)) if a != b]
    if len(diff) == 1:
        return True
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and (typed[diff[0]], typed[diff[1]]) == (valid[diff[1]], valid[diff[0]])
    )


def is_cascade_file(target: str) -> bool:
    """Whether `target` is read as a cascade file rather than imported as Python.

    True for a cascade extension (`.yaml`, `.yml`, `.json`, any case), for an existing file
    that is not a `.py` module (`cascade.txt`, `cascade`), and for a name whose extension is one
    edit away from a cascade extension (`cascade.ymal`, `cascade.jsn`), existing or not: such
    names are typos, not modules, and loading them says which extension was meant.
    """
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix in CASCADE_SUFFIXES:
        return True
    if suffix == ".py":
        return False
    if path.is_file():
        return True
    return any(_one_edit_apart(suffix, valid) for valid in CASCADE_SUFFIXES)


def _kinds() -> tuple[tuple[type, str], ...]:
    from cascadence.cascade.config import CascadeConfig
    from cascadence.cascade.engine import CascadeEngine
    from cascadence.flow.cadence import Cadence

    return ((Cadence, "cadence"), (CascadeEngine, "engine"), (CascadeConfig, "config"))


def _kind_of(value: Any) -> str | None:
    for cls, kind in _kinds():
        if isinstance(value, cls):
            return kind
    return None


def describe(value: Any) -> str:
    """What an object is, for messages: `function`, `class`, `int`..."""
    return "class" if isinstance(value, type) else type(value).__name__


def _import_module(name: str) -> ModuleType:
    try:
        if name.endswith(".py"):
            path = Path(name)
            if not path.is_file():
                fail(f"{name}: no such file")
            add_import_folder(path.parent)
            # Never replace a module already imported under that name (`json.py` is not json).
            mod_name = path.stem if path.stem not in sys.modules else f"_target_{path.stem}"
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:  # pragma: no cover - .py files always load
                fail(f"cannot import {name}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            spec.loader.exec_module(module)
            return module
        if "/" in name or os.sep in name or name.startswith("."):  # a path, not a module name
            if Path(name).is_dir():
                fail(f"{name} is a folder; {_EXPECTED}")
            fail(f"{name}: no such file or folder; {_EXPECTED}")
        add_import_folder(".")
        return importlib.import_module(name)
    except CliError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            fail(
                f"cannot import {name!r}: no module named {exc.name!r} "
                "(run from the folder that holds it, or add that folder to PYTHONPATH)"
            )
        fail(f"importing {name!r} failed: {exc}")
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else name
        fail(f"{where}: SyntaxError: {exc.msg}")
    except (Exception, SystemExit) as exc:  # the user's module raised (or exited) importing
        fail(f"importing {name!r} raised {type(exc).__name__}: {exc}")


_ACCEPTED = "a Cadence, a CascadeEngine or a CascadeConfig"


def _target_kind(owner: Any, name: str) -> str | None:
    try:
        return _kind_of(getattr(owner, name))
    except Exception:  # a lazy attribute that fails to load is no target
        return None


def _missing(owner: str, name: str, value: Any, *, last: bool) -> str:
    """The message for `owner` lacking attribute `name`.

    The names suggested for the object itself are only those of the kinds a target may be
    (flows, engines, configs), never whatever else the module imports (the `note` decorator);
    on the way to it (`module:holder.flow`), any attribute may hold one.
    """
    from cascadence.errors import closest

    names = [n for n in dir(value) if not n.startswith("_")]
    if last:
        names = [n for n in names if _target_kind(value, n) is not None]
    hint = closest(name, names)
    message = f"{owner!r} has no attribute {name!r}"
    if hint is not None:
        return f"{message}; did you mean {hint!r}?"
    if not last:
        return message
    if not names:
        return f"{message}; expected the name of {_ACCEPTED}, and it defines none"
    listed = ", ".join(repr(n) for n in sorted(names)[:10])
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return f"{message}; expected the name of {_ACCEPTED}; it defines {listed}{more}"


def load_objects(target: str) -> list[PythonObject]:
    """Import a Python target and return the flows, engines and configs it names.

    Raises:
        CliError: The module cannot be imported, the attribute does not exist (with the closest
            name), the attribute is not a flow, engine or config, or a module defines none.
    """
    module_name, _, attr = target.partition(":")
    if not module_name or (":" in target and not attr):
        fail(f"{target!r} is not a target; expected 'package.module:attribute' or a module")
    module = _import_module(module_name)
    label = Path(module_name).stem if module_name.endswith(".py") else module_name
    if attr:
        value: Any = module
        parts = attr.split(".")
        for depth, part in enumerate(parts):
            if not hasattr(value, part):
                owner = f"{module_name}:{'.'.join(parts[:depth])}" if depth else module_name
                fail(_missing(owner, part, value, last=depth == len(parts) - 1))
            value = getattr(value, part)
        kind = _kind_of(value)
        if kind is None:
            fail(f"{target} is a {describe(value)}; expected {_ACCEPTED}")
        return [PythonObject(target, value, kind)]
    found: list[PythonObject] = []
    seen: set[int] = set()
    for name, value in vars(module).items():
        if name.startswith("_") or id(value) in seen:
            continue
        kind = _kind_of(value)
        if kind is not None:
            seen.add(id(value))
            found.append(PythonObject(f"{label}:{name}", value, kind))
    if not found:
        fail(f"module {module_name!r} defines no Cadence, CascadeEngine or CascadeConfig")
    return found
