"""The config document's plugins: handler wrappers that are thin spellings of the policies.

`CachePlugin`, `RetryPlugin` and `CircuitBreakerPlugin` build a `ResultCache`, `RetryPolicy` or
`CircuitBreaker` and apply it with the runtime's own `call_step`, exactly as a stage's YAML
fields or a flow's `@note(...)` would. `MetricsPlugin` counts calls. `PluginRegistry` keeps
plugins by name and stage handlers by stage name; `PluginFactory` composes plugins by name on
the process-wide registry.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from cascadence.cascade.compile import stage_cache_key
from cascadence.errors import RetryExhaustedError, closest
from cascadence.policies.cache import ResultCache, key_or_none
from cascadence.policies.circuit_breaker import CircuitBreaker
from cascadence.policies.retry import RetryPolicy
from cascadence.policies.stack import StepPolicy
from cascadence.runtime.cancel import is_timeout_cancel
from cascadence.runtime.clock import SYSTEM_CLOCK, Clock
from cascadence.runtime.context import ExecutionContext
from cascadence.runtime.handlers import import_object
from cascadence.runtime.invoke import AsyncHandler, call_step, to_async

__all__ = [
    "CachePlugin",
    "CircuitBreakerPlugin",
    "HandlerPlugin",
    "MetricsPlugin",
    "PluginFactory",
    "PluginRegistry",
    "RetryPlugin",
]


def _check_handler(handler: Any, what: str) -> None:
    if not callable(handler):
        raise TypeError(f"{what} wraps a handler function, got {type(handler).__name__}")


def _input_of(context: Any) -> Any:
    return getattr(context, "data", context)


class HandlerPlugin:
    """Base of the plugins: wraps a handler and applies one policy around it."""

    policy: StepPolicy

    def __init__(self, wrapped_handler: Callable[[Any], Any], policy: StepPolicy) -> None:
        _check_handler(wrapped_handler, type(self).__name__)
        self.wrapped_handler = wrapped_handler
        self._fn: AsyncHandler = to_async(wrapped_handler)
        self.policy = policy
        self.__name__ = getattr(wrapped_handler, "__name__", type(self).__name__)

    async def __call__(self, context: Any) -> Any:
        """Call the wrapped handler under this plugin's policy."""
        return await call_step(
            self.__name__, self._fn, context, self.policy, cache_input=self._cache_input(context)
        )

    def _cache_input(self, context: Any) -> Any:
        """What the policy's cache key is built from: the input."""
        return _input_of(context)


class CachePlugin(HandlerPlugin):
    """Cache results for `ttl_seconds`, keyed as a stage's own `cache_enabled` keys them.

    Given an `ExecutionContext`, the key is the input together with the `result` and
    `confidence` of the stages run before (the same input after another decision is another
    key), or, with `key_fields`, the values of those paths (of the input, or
    `stages.NAME.data.x`-style paths of earlier results). Given anything else, the key is that
    value's input (its `data`, or the value itself), whole or its `key_fields`.
    """

    def __init__(
        self,
        wrapped_handler: Callable[[Any], Any],
        ttl_seconds: float = 3600,
        *,
        key_fields: Sequence[str] | None = None,
        max_size: int = 10_000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if isinstance(key_fields, str):
            raise TypeError(
                f"key_fields is a list of dot paths, got the string {key_fields!r}; "
                f"write [{key_fields!r}]"
            )
        fields = tuple(key_fields or ())
        for path in fields:
            if not isinstance(path, str) or not path or "" in path.split("."):
                raise ValueError(
                    f"key_fields holds dot paths such as 'user.id' or "
                    f"'stages.FAST_CHECK.result', got {path!r}"
                )
        of_context = stage_cache_key(fields)  # the key of a stage's own `cache_enabled`

        def key(value: Any) -> Hashable:
            if isinstance(value, ExecutionContext):
                return of_context(value)
            return key_or_none(value, fields)

        self.cache = ResultCache(
            ttl=ttl_seconds, key_fields=key_fields, clock=clock, maxsize=max_size, key=key
        )
        super().__init__(wrapped_handler, StepPolicy(cache=self.cache, clock=clock))

    def _cache_input(self, context: Any) -> Any:
        """A stage's context whole (the key reads its earlier results too), else the input."""
        return context if isinstance(context, ExecutionContext) else _input_of(context)

    def clear(self) -> None:
        """Forget every cached result."""
        self.cache.clear()


class RetryPlugin(HandlerPlugin):
    """Retry a failing handler `max_retries` times, delays doubling from `delay_ms`.

    When every attempt failed, the last attempt's exception is raised, as the handler itself
    would have raised it (a stage's own `max_retries` reports `RetryExhaustedError` instead).
    """

    def __init__(
        self,
        wrapped_handler: Callable[[Any], Any],
        max_retries: int = 3,
        delay_ms: float = 100,
        *,
        backoff: str = "exponential",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
        if (
            isinstance(delay_ms, bool)
            or not isinstance(delay_ms, (int, float))
            or not delay_ms >= 0
        ):
            raise ValueError(f"delay_ms must be a number >= 0, got {delay_ms!r}")
        self.max_retries = max_retries
        retry = RetryPolicy(
            max_attempts=max_retries + 1,
            delay=delay_ms / 1000.0,
            backoff=backoff,  # type: ignore[arg-type]
        )
        super().__init__(wrapped_handler, StepPolicy(retry=retry, clock=clock))

    async def __call__(self, context: Any) -> Any:
        """Call the wrapped handler, retrying; raise its last error when every attempt failed."""
        try:
            return await super().__call__(context)
        except RetryExhaustedError as exhausted:
            error = exhausted.last_error
            exhausted.__cause__ = None  # it is the error's cause now, not the other way round
            raise error from exhausted


class CircuitBreakerPlugin(HandlerPlugin):
    """Open after `failure_threshold` consecutive failures; probe again after the timeout."""

    def __init__(
        self,
        wrapped_handler: Callable[[Any], Any],
        failure_threshold: int = 5,
        reset_timeout_seconds: float = 60,
        *,
        name: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        store: Any = None,
    ) -> None:
        # checked here too, so that the message names this plugin's own argument
        if isinstance(reset_timeout_seconds, (int, float)) and reset_timeout_seconds < 0:
            raise ValueError(f"reset_timeout_seconds must be >= 0, got {reset_timeout_seconds!r}")
        self.breaker = CircuitBreaker(
            name or str(getattr(wrapped_handler, "__name__", "circuit")),
            failure_threshold,
            reset_timeout_seconds,
            clock=clock,
            store=store,
        )
        super().__init__(wrapped_handler, StepPolicy(breaker=self.breaker, clock=clock))

    @property
    def state(self) -> str:
        """`closed`, `open` or `half_open`."""
        return self.breaker.state.value


class MetricsPlugin:
    """Count calls, errors and time of a handler; read them from `metrics`."""

    def __init__(self, wrapped_handler: Callable[[Any], Any]) -> None:
        _check_handler(wrapped_handler, "MetricsPlugin")
        self.wrapped_handler = wrapped_handler
        self._fn = to_async(wrapped_handler)
        self.__name__ = getattr(wrapped_handler, "__name__", "MetricsPlugin")
        self._count = 0
        self._errors = 0
        self._total_ms = 0.0

    async def __call__(self, context: Any) -> Any:
        """Call the wrapped handler and record the outcome."""
        started = time.perf_counter()
        try:
            result = await self._fn(context)
        except Exception:
            self._record(started, failed=True)
            raise
        except asyncio.CancelledError as cancelled:
            if is_timeout_cancel(cancelled):  # the stage's timeout stopped the handler
                self._record(started, failed=True)
            raise  # cancelled from outside: no outcome, not counted
        self._record(started, failed=False)
        return result

    def _record(self, started: float, *, failed: bool) -> None:
        self._count += 1
        self._errors += failed
        self._total_ms += (time.perf_counter() - started) * 1000.0

    @property
    def metrics(self) -> dict[str, Any]:
        """`count`, `total_time_ms`, `errors`, `success_rate` (percent) and `avg_time_ms`."""
        count = self._count
        return {
            "count": count,
            "total_time_ms": self._total_ms,
            "errors": self._errors,
            "success_rate": 100.0 * (count - self._errors) / count if count else 0.0,
            "avg_time_ms": self._total_ms / count if count else 0.0,
        }

    def reset(self) -> None:
        """Zero the counters."""
        self._count = self._errors = 0
        self._total_ms = 0.0


_BUILTIN: dict[str, Callable[..., Any]] = {
    "cache": CachePlugin,
    "retry": RetryPlugin,
    "metrics": MetricsPlugin,
    "circuit_breaker": CircuitBreakerPlugin,
}


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    names = sorted(known)
    hint = closest(name, names)
    return (
        f"unknown {kind} {name!r}"
        + (f"; did you mean {hint!r}?" if hint else "")
        + (f" (available: {', '.join(names)})" if names else f" (no {kind}s registered)")
    )


def _option_problem(name: str, plugin: Callable[..., Any], options: Any) -> str | None:
    """What is wrong with the options given for plugin `name` (`config[name]`): not a mapping,
    or a name the plugin does not take (with the closest it does take); None if nothing is
    (or the plugin takes any keyword)."""
    where = f"config[{name!r}]"
    if not isinstance(options, Mapping):
        return (
            f"invalid options for plugin {name!r}: {where} must be a mapping of option names "
            f"to values, got {type(options).__name__}"
        )
    try:
        parameters = list(inspect.signature(plugin).parameters.values())
    except (TypeError, ValueError):  # no signature to read: the call itself will tell
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    keywords = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    valid = sorted(p.name for p in parameters[1:] if p.kind in keywords)  # [0]: the handler
    for option in options:
        if option in valid:
            continue
        hint = closest(str(option), valid)
        return (
            f"invalid options for plugin {name!r}: {where}[{option!r}] is not an option of "
            f"{getattr(plugin, '__name__', name)}"
            + (f"; did you mean {hint!r}?" if hint else "")
            + (f" (valid options: {', '.join(valid)})" if valid else " (it takes no options)")
        )
    return None


class PluginRegistry:
    """Manages plugins, by name, and stage handlers, by stage name.

    A *plugin* is a callable `plugin(handler, **options)` returning a wrapped handler (the
    built-ins: `cache`, `retry`, `metrics`, `circuit_breaker`). A *handler* is what a stage
    runs; register it as a callable or by import path (`"pkg.mod:func"`), then hand the
    registry's `handlers` to `CascadeEngine.register_stages`. `PluginFactory` works on the
    process-wide registry, `PluginRegistry.default()`.

    Args:
        builtins: Start with the built-in plugins registered.
    """

    _default: PluginRegistry | None = None

    def __init__(self, *, builtins: bool = True) -> None:
        self._plugins: dict[str, Callable[..., Any]] = dict(_BUILTIN) if builtins else {}
        self._handlers: dict[str, Callable[..., Any]] = {}

    @classmethod
    def default(cls) -> PluginRegistry:
        """The process-wide registry `PluginFactory` uses."""
        assert cls._default is not None  # made when this module is imported
        return cls._default

    # -- plugins ------------------------------------------------------------------------------
    def register_plugin(self, name: str, plugin: Callable[..., Any]) -> None:
        """Make `plugin` available under `name` (replacing one of that name)."""
        if not callable(plugin):
            raise TypeError(f"plugin {name!r} must be callable, got {type(plugin).__name__}")
        self._plugins[name] = plugin

    def plugin(self, name: str) -> Callable[..., Any]:
        """The plugin registered under `name`.

        Raises:
            ValueError: No plugin has that name (the message suggests the closest).
        """
        try:
            return self._plugins[name]
        except KeyError:
            raise ValueError(_unknown("plugin", name, self._plugins)) from None

    def available(self) -> list[str]:
        """Names of the registered plugins, sorted."""
        return sorted(self._plugins)

    def wrap(
        self,
        handler: Callable[[Any], Any],
        plugins: Sequence[str],
        config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Callable[[Any], Any]:
        """Wrap `handler` so that `plugins[0]` is outermost and the handler innermost.

        Args:
            handler: The handler to wrap.
            plugins: Plugin names, outermost first.
            config: Options per plugin name, passed to the plugin as keywords.

        Raises:
            ValueError: An unknown plugin name (with the closest known one), or options the
                plugin does not take.
        """
        if isinstance(plugins, str):
            raise TypeError(
                f"plugins is a list of plugin names, got the string {plugins!r}; "
                f"write [{plugins!r}]"
            )
        _check_handler(handler, "PluginFactory.wrap_handler")
        config = config or {}
        for name in list(plugins) + list(config):
            self.plugin(name)
        unused = [name for name in config if name not in plugins]
        if unused:
            raise ValueError(
                f"options given for plugin(s) {', '.join(map(repr, unused))} that are not in "
                f"plugins {list(plugins)!r}; add them to plugins or drop their options"
            )
        for name, options in config.items():
            problem = _option_problem(name, self._plugins[name], options)
            if problem is not None:
                raise ValueError(problem)
        wrapped: Callable[[Any], Any] = handler
        for name in reversed(list(plugins)):
            options = dict(config.get(name, {}))
            try:
                wrapped = self._plugins[name](wrapped, **options)
            except TypeError as exc:
                raise ValueError(f"invalid options for plugin {name!r}: {exc}") from None
        return wrapped

    # -- handlers -----------------------------------------------------------------------------
    def register_handler(self, name: str, handler: Callable[..., Any] | str) -> None:
        """Register the handler of stage `name`: a callable, or an import path such as
        `"myapp.stages:fast_check"` (imported now, so a wrong path fails here).

        Raises:
            PlanError: The import path cannot be imported.
            TypeError: `handler` is neither callable nor a string.
        """
        if isinstance(handler, str):
            handler = import_object(handler, what=f"handler of {name}")
        if not callable(handler):
            raise TypeError(
                f"handler for stage {name!r} must be callable, got {type(handler).__name__}"
            )
        self._handlers[name] = handler

    def handler(self, name: str) -> Callable[..., Any]:
        """The handler registered for stage `name`.

        Raises:
            KeyError: No handler for that stage (the message suggests the closest).
        """
        try:
            return self._handlers[name]
        except KeyError:
            raise KeyError(_unknown("handler", name, self._handlers)) from None

    def unregister_handler(self, name: str) -> None:
        """Forget the handler of stage `name` (nothing happens if there is none)."""
        self._handlers.pop(name, None)

    @property
    def handlers(self) -> Mapping[str, Callable[..., Any]]:
        """The registered handlers by stage name (read-only view), for
        `engine.register_stages(registry.handlers)`."""
        return MappingProxyType(self._handlers)

    def __repr__(self) -> str:
        return f"PluginRegistry(plugins={self.available()}, handlers={sorted(self._handlers)})"


PluginRegistry._default = PluginRegistry()  # made once, before any thread can ask for it


class PluginFactory:
    """Compose plugins by name around a handler (on `PluginRegistry.default()`)."""

    @staticmethod
    def register(name: str, plugin: Callable[..., Any]) -> None:
        """Make a plugin class available under `name`."""
        PluginRegistry.default().register_plugin(name, plugin)

    @staticmethod
    def available() -> list[str]:
        """Names of the known plugins."""
        return PluginRegistry.default().available()

    @staticmethod
    async def wrap_handler(
        handler: Callable[[Any], Any],
        plugins: Sequence[str],
        config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Callable[[Any], Any]:
        """Wrap `handler` so that `plugins[0]` is outermost and the handler innermost.

        Raises:
            ValueError: An unknown plugin name (with the closest known one) or option.
        """
        return PluginRegistry.default().wrap(handler, plugins, config)
