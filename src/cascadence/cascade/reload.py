"""Hot reload from a file: watch a cascade file, validate each new version, swap it in.

```python
watcher = ConfigWatcher(engine, "cascade.yaml", on_error=lambda err: log.error("%s", err))
await watcher.start()      # background task; or `async with ConfigWatcher(...)`
...
await watcher.stop()
```

A change that loads and compiles is applied with `engine.update_config` (executions in flight
finish on their version). A change that fails validation leaves the running version in place;
the error (a `ConfigError` naming file, line and path) goes to `on_error` and is kept in
`last_error`; so does a version in which a stage would have no handler.

Changes are detected with `watchfiles` when it is installed, else by polling. The watch is on
the file's directory, not the file itself, so a save that writes a temporary file and renames
it over the old one (editors, `sed -i`, configuration management, Kubernetes ConfigMaps) is
seen every time; each event, and each `poll_interval` without one, compares the file's
identity, modification time and size with the last version read.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cascadence.cascade.config import CascadeConfig

if TYPE_CHECKING:
    from cascadence.cascade.engine import CascadeEngine

__all__ = ["ConfigWatcher"]

_log = logging.getLogger("cascadence.reload")


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _name(callback: Any) -> str:
    return str(getattr(callback, "__name__", type(callback).__name__))


class ConfigWatcher:
    """Keep an engine on the latest valid version of a cascade file.

    Args:
        engine: The engine to update.
        path: The cascade file (YAML or JSON).
        on_reload: Called with the new config after each successful swap.
        on_error: Called with the exception when a new version is rejected.
        poll_interval: Seconds between checks when polling (no `watchfiles`).
        use_watchfiles: Force (True) or forbid (False) `watchfiles`; None uses it if installed.
    """

    def __init__(
        self,
        engine: CascadeEngine,
        path: str | os.PathLike[str],
        *,
        on_reload: Callable[[CascadeConfig], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        poll_interval: float = 1.0,
        use_watchfiles: bool | None = None,
    ) -> None:
        self.engine = engine
        self.path = Path(path)
        self.on_reload = on_reload
        self.on_error = on_error
        self._callbacks: set[asyncio.Task[Any]] = set()  # async callbacks still running
        self.poll_interval = poll_interval
        self.use_watchfiles = use_watchfiles
        self.last_error: BaseException | None = None
        self.reloads = 0
        self._task: asyncio.Task[None] | None = None
        self._stamp = self._signature()

    def _signature(self) -> tuple[int, int, int, int] | None:
        try:
            stat = self.path.stat()  # follows symbolic links (a ConfigMap's `..data` swap)
        except OSError:
            return None
        return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def check(self) -> bool:
        """Reload now if the file changed since the last check.

        Returns:
            True when a new version was applied.
        """
        stamp = self._signature()
        if stamp is None or stamp == self._stamp:
            return False
        self._stamp = stamp
        return self.reload()

    def reload(self) -> bool:
        """Load, validate and apply the file as it is now.

        Returns:
            True when the new version was applied; False when it was rejected (the running
            version stays and the error is reported).
        """
        try:
            config = CascadeConfig.from_file(self.path)
            self.engine.update_config(config, require_handlers=True)
        except Exception as exc:  # whatever the new version does wrong, keep watching
            self.last_error = exc
            _log.error("kept cascade version %s: %s", self.engine.config.version, exc)
            if self.on_error is not None:
                self._notify(self.on_error, exc)
            return False
        self.last_error = None
        self.reloads += 1
        _log.info("reloaded cascade %s version %s", config.name, config.version)
        if self.on_reload is not None:
            self._notify(self.on_reload, config)
        return True

    def _notify(self, callback: Callable[[Any], Any], value: Any) -> None:
        """Call `on_reload`/`on_error`; a callback that fails is logged, and the watching goes
        on. An async callback runs as a task of the running loop (or to its end when there is
        no loop)."""
        try:
            outcome = callback(value)
            if inspect.isawaitable(outcome):
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    asyncio.run(_awaited(outcome))
                else:
                    task = loop.create_task(_awaited(outcome))
                    self._callbacks.add(task)
                    task.add_done_callback(self._callback_done)
        except Exception:
            _log.exception("the watcher's %s callback failed", _name(callback))

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._callbacks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("the watcher's async callback failed", exc_info=task.exception())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            self.check()

    async def _watch(self) -> None:
        import watchfiles

        # The directory, not the file: a watch on the file follows its inode, and a save by
        # rename replaces the inode, after which nothing more would be reported. A timeout
        # without events also checks, as a safety net for file systems that report nothing.
        directory = self.path.absolute().parent  # not resolved: a symlink swap happens here
        async for _changes in watchfiles.awatch(
            directory,
            debounce=100,
            step=20,
            recursive=False,
            rust_timeout=max(int(self.poll_interval * 1000), 50),
            yield_on_timeout=True,
        ):
            self.check()

    def _wants_watchfiles(self) -> bool:
        if self.use_watchfiles is False:
            return False
        try:
            import watchfiles  # noqa: F401
        except ImportError:
            if self.use_watchfiles:
                raise ImportError(
                    "use_watchfiles=True needs watchfiles: pip install 'cascadence[watch]'"
                ) from None
            return False
        return True

    async def start(self) -> None:
        """Start watching in a background task (idempotent)."""
        if self._task is not None and not self._task.done():
            return
        runner = self._watch() if self._wants_watchfiles() else self._poll()
        self._task = asyncio.ensure_future(runner)

    async def stop(self) -> None:
        """Stop watching."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> ConfigWatcher:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
