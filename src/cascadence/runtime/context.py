"""`ExecutionContext`: what a cascade stage handler receives.

It holds a reference to the input (no copy), the results of the stages run so far, and per-run
metadata. `set()` copies only the containers along the path it writes, the first time it writes
them, so the caller's input is never changed and reading stays zero-copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cascadence.runtime.result import StageResult

__all__ = ["ExecutionContext", "split_path"]

_PATHS: dict[str, tuple[str, ...]] = {}
_MISSING: Any = object()


def split_path(path: str) -> tuple[str, ...]:
    """Split a dot path once and remember the split.

    Raises:
        TypeError: `path` is not a str.
        ValueError: `path` is empty.
    """
    try:
        parts = _PATHS.get(path)
    except TypeError:  # unhashable: not a str either
        parts = None
    if parts is None:
        if not isinstance(path, str):
            raise TypeError(
                "path must be a str of dot-separated names, like 'user.profile.name' or "
                f"'stages.FAST_CHECK.confidence', got {type(path).__name__} {path!r:.60}"
            )
        if not path:
            raise ValueError("an empty path names no field; expected e.g. 'user.profile.name'")
        parts = tuple(path.split("."))
        if len(_PATHS) < 65_536:
            _PATHS[path] = parts
    return parts


def _step(value: Any, part: str) -> Any:
    if isinstance(value, Mapping):
        return value.get(part, _MISSING)
    if isinstance(value, (list, tuple)):
        try:
            return value[int(part)]
        except (ValueError, IndexError):
            return _MISSING
    return getattr(value, part, _MISSING)


class ExecutionContext:
    """The state of one cascade execution, handed to every stage handler.

    Attributes:
        data: The input (read-only from the caller's point of view).
        stage_results: Results of the stages finished so far, by name.
        metadata: Free per-run values (the engine puts `run_id` and `cascade` here).
    """

    __slots__ = ("_metadata", "_owned", "data", "stage_results", "warnings")

    def __init__(
        self,
        data: Any,
        stage_results: dict[str, StageResult] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.data = data
        self.stage_results: dict[str, StageResult] = (
            stage_results if stage_results is not None else {}
        )
        self._metadata = metadata  # created on first use: most runs never touch it
        self.warnings: list[Any] = []
        # containers this context copied (by id), kept alive so that an id cannot be reused
        # by another object, which would then be written in place
        self._owned: dict[int, Any] | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        """Free per-run values (the engine puts `run_id` and `cascade` here)."""
        metadata = self._metadata
        if metadata is None:
            metadata = self._metadata = {}
        return metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = value

    def get(self, path: str, default: Any = None) -> Any:
        """Read a dot path (`user.profile.name`, `items.0.price`, `stages.FAST.confidence`)."""
        parts = split_path(path)
        if parts[0] == "stages" and len(parts) > 1 and parts[1] in self.stage_results:
            value: Any = self.stage_results
            parts = parts[1:]
        else:
            value = self.data
        for part in parts:
            value = _step(value, part)
            if value is _MISSING:
                return default
        return value

    def has(self, path: str) -> bool:
        """Whether a dot path resolves to a value."""
        return self.get(path, _MISSING) is not _MISSING

    def set(self, path: str, value: Any) -> None:
        """Write a dot path, creating intermediate dicts; the caller's input is not changed.

        A segment that is an integer indexes a list on the way (`items.0.flag`, `items.-1`),
        as it does when reading; the list is copied before it is written to.
        """
        parts = split_path(path)
        owned = self._owned
        if owned is None:
            owned = self._owned = {}
        if id(self.data) not in owned:
            if not isinstance(self.data, Mapping):
                raise TypeError(
                    f"cannot set {path!r}: the input is a {type(self.data).__name__}, not a dict"
                )
            self.data = dict(self.data)
            owned[id(self.data)] = self.data
        container: Any = self.data
        for part in parts[:-1]:
            key: Any = _index(container, part, path) if isinstance(container, list) else part
            child = container[key] if isinstance(container, list) else container.get(part)
            if child is None:
                child = {}
            elif isinstance(child, (list, tuple)):
                if id(child) not in owned or isinstance(child, tuple):
                    child = list(child)
            elif isinstance(child, Mapping):
                if id(child) not in owned or not isinstance(child, dict):
                    child = dict(child)
            else:
                raise TypeError(
                    f"cannot set {path!r}: {part!r} holds a {type(child).__name__}, not a dict "
                    "or a list"
                )
            container[key] = child
            owned[id(child)] = child
            container = child
        last = parts[-1]
        if isinstance(container, list):
            container[_index(container, last, path)] = value
        else:
            container[last] = value

    def get_stage_result(self, name: str) -> StageResult | None:
        """The result of stage `name`, or None if it has not run.

        Raises:
            TypeError: `name` is not a str.
        """
        try:
            result = self.stage_results.get(name)
        except TypeError:  # unhashable
            result = None
        if result is None and not isinstance(name, str):
            raise TypeError(
                "get_stage_result() takes the stage name as a str, like 'FAST_CHECK', got "
                f"{type(name).__name__} {name!r:.60}"
            )
        return result

    def __repr__(self) -> str:
        return f"ExecutionContext(stages={list(self.stage_results)})"


def _index(items: list[Any], part: str, path: str) -> int:
    """The list index a path segment names, or a TypeError that says what was expected."""
    text = part[1:] if part.startswith("-") else part
    if text.isdigit():
        index = int(part)
        if -len(items) <= index < len(items):
            return index
        raise TypeError(
            f"cannot set {path!r}: index {index} is out of range for a list of {len(items)} items"
        )
    raise TypeError(
        f"cannot set {path!r}: {part!r} is not an index into a list of {len(items)} items "
        "(use a number, like items.0)"
    )
