"""`CascadeEngine`: load a cascade, register handlers, execute decisions.

```python
engine = CascadeEngine(CascadeConfig.from_file("cascade.yaml"))
engine.register_stage("FAST_CHECK", fast_check)
result = await engine.execute({"user_id": "u1", "amount": 10_000})
```

The engine compiles its config into an immutable plan. Every `execute` takes the plan current
when it starts and finishes on it, so `update_config` (hot reload) never disturbs executions in
flight. Handlers and statistics survive a reload.
"""

from __future__ import annotations

import asyncio
import os
import uuid
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cascadence.cascade.compile import settled_config
from cascadence.cascade.config import CascadeConfig
from cascadence.cascade.optimizer import ExecutionOptimizer
from cascadence.errors import (
    GlobalTimeoutError,
    HandlerPathError,
    PlanError,
    UnknownStageError,
    closest,
)
from cascadence.hooks import CadenceHooks
from cascadence.policies.stack import StepPolicy, note_parts
from cascadence.runtime.cascade_result import Executions, StageStats
from cascadence.runtime.cascade_runner import run_cascade
from cascadence.runtime.clock import SYSTEM_CLOCK, Clock
from cascadence.runtime.durable import as_run_id
from cascadence.runtime.handlers import import_object, refused_call
from cascadence.runtime.invoke import AsyncHandler, mark_coroutine_function, to_async
from cascadence.runtime.observe import HOOK_METHODS, Observers, build_observers
from cascadence.runtime.plan import CascadePlan
from cascadence.runtime.threads import in_event_loop, run_blocking

if TYPE_CHECKING:
    from cascadence.checkpoint import CheckpointStore
    from cascadence.policies.circuit_breaker import CircuitBreaker

__all__ = ["CascadeEngine", "handler_problem"]

Handler = Callable[[Any], Any]
H = TypeVar("H", bound=Handler)


def handler_problem(stage: str, handler: Any) -> str | None:
    """Why `handler` cannot serve `stage` (not callable, or cannot take the stage's context),
    or None; what `CascadeEngine.register_stage` refuses. A flow is taken as its stage
    handler."""
    as_handler = getattr(handler, "as_stage_handler", None)
    if callable(as_handler):
        handler = as_handler()
    if not callable(handler):
        return f"handler for stage {stage!r} must be callable, got {type(handler).__name__}"
    raw, _ = note_parts(handler)
    refused = refused_call(raw, 1)
    if refused is None:
        return None
    params, reason = refused
    return (
        f"handler for stage {stage!r} cannot be called with the stage's context: "
        f"{getattr(raw, '__name__', type(raw).__name__)}{params}: {reason}; a stage "
        "handler takes one argument, the ExecutionContext"
    )


class CascadeEngine:
    """Runs a cascade configuration.

    Args:
        config: The cascade (a `CascadeConfig`, or a dict or path to load one from).
        clock: Time source for retries, caches and breakers.
        hooks: Hook objects (`CadenceHooks`, `EventEmitter`) that observe every stage.
        reporters: Reporter callables receiving `CadenceEvent`s (e.g. `PrometheusReporter.report`).
        explain: Record why each routing decision was taken, for every execution.
        max_in_flight: Bound on concurrent executions per event loop; further calls wait
            (back-pressure). Each event loop the engine serves (one per `execute_sync` call from
            another thread, say) has its own bound.
        sync_in_thread: Run plain-function handlers in a worker thread (the default, safe for
            blocking code) or inline on the event loop (faster for cheap pure functions).
        breaker_store: Shared state for the stages' circuit breakers (for example
            `RedisBreakerStore`), so that every replica opens and closes together.
    """

    def __init__(
        self,
        config: CascadeConfig | Mapping[str, Any] | str | os.PathLike[str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        hooks: Iterable[Any] | CadenceHooks = (),
        reporters: Iterable[Any] | Callable[[Any], Any] = (),
        explain: bool = False,
        max_in_flight: int | None = None,
        sync_in_thread: bool = True,
        breaker_store: Any = None,
    ) -> None:
        self._config = _as_config(config)
        if not all(callable(getattr(clock, method, None)) for method in ("now", "time", "sleep")):
            raise TypeError(
                "clock must be a Clock (with now(), time() and async sleep(), like "
                f"cascadence.SystemClock()), got {_shown(clock)}"
            )
        _check_flag("CascadeEngine", "explain", explain)
        _check_flag("CascadeEngine", "sync_in_thread", sync_in_thread)
        self.clock = clock
        self.explain = explain
        self.sync_in_thread = sync_in_thread
        self.breaker_store = breaker_store
        self._hooks: list[Any] = _hook_list(hooks, "CascadeEngine(hooks=...)")
        self._reporters: list[Any] = _reporter_list(reporters, "CascadeEngine(reporters=...)")
        self._observers: Observers | None = build_observers(self._hooks, self._reporters, "cascade")
        self._handlers: dict[str, AsyncHandler] = {}
        self._originals: dict[str, Handler] = {}
        self._policies: dict[str, StepPolicy] = {}
        self._state: dict[tuple[str, str], Any] = {}
        self._used: set[tuple[str, str]] = set()  # the slots of `_state` the last plan took
        # stage -> the import path its handler came from, and the folder it was looked up in
        self._from_path: dict[str, tuple[str, str | None]] = {}
        self._stats: dict[str, StageStats] = {}
        self._finished = Executions()
        self._guard: Callable[[str, Handler], Handler] | None = None
        self._in_thread: dict[str, bool | None] = {}  # as each handler was registered
        if max_in_flight is not None and (
            isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int)
        ):
            raise TypeError(f"max_in_flight must be an int or None, got {max_in_flight!r}")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self._limit = max_in_flight or None
        # one semaphore per event loop: an engine may serve several loops one after another
        # (asyncio.run per batch, a test loop per test), and a semaphore binds to one
        self._limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._limits = weakref.WeakKeyDictionary()
        self.max_in_flight = max_in_flight
        self.optimizer = ExecutionOptimizer()
        """Builds the plans this engine runs (conditions compiled once, kept across reloads)."""
        # the config last checked for changes made in place, and its `_shape` then
        self._checked: tuple[CascadeConfig, tuple[Any, ...]] | None = None
        self._config = self._settle(self._config)
        self._plan = self._compile(self._config)
        self._register_paths(self._config)

    # -- configuration -------------------------------------------------------------------
    @property
    def config(self) -> CascadeConfig:
        """The configuration new executions run on."""
        return self._config

    @property
    def plan(self) -> CascadePlan:
        """The compiled plan new executions run on."""
        return self._plan

    def _keep(self, stage: str, key: str, factory: Callable[[], Any]) -> Any:
        slot = (stage, key)
        self._used.add(slot)
        if slot not in self._state:
            self._state[slot] = factory()
        return self._state[slot]

    def _settle(self, config: CascadeConfig, *, fully: bool = True) -> CascadeConfig:
        """`config` as plans are built from it: checked again, and parts given as mappings or
        learned rules converted (see `settled_config`). With `fully=False`, the config checked
        last is taken as it is when none of the lists a plan reads (stages, their routing
        rules, `depends_on` and `cache_key_fields`, `execution_order`, termination
        conditions) changed in place since.

        Raises:
            ConfigError: A part changed in place is invalid, or the whole no longer checks.
        """
        checked = self._checked
        if (
            not fully
            and checked is not None
            and checked[0] is config
            and checked[1] == _shape(config)
        ):
            return config
        settled = settled_config(config)
        self._checked = (settled, _shape(settled))
        return settled

    def _compile(self, config: CascadeConfig) -> CascadePlan:
        self._used = set()
        return self.optimizer.plan(
            config,
            self._handlers,
            clock=self.clock,
            keep=self._keep,
            policies=self._policies,
            breaker_store=self.breaker_store,
        )

    def _prune_state(self) -> None:
        """Drop the caches and breakers no stage of the current plan uses (executions in flight
        on an older plan keep theirs through it)."""
        for slot in [slot for slot in self._state if slot not in self._used]:
            del self._state[slot]

    def _drop_cached_results(self, stage: str) -> None:
        """Forget a stage's cached results: they came from a handler that was replaced."""
        for slot in [slot for slot in self._state if slot[0] == stage]:
            if slot[1].startswith("cache:"):
                del self._state[slot]

    def _register_paths(self, config: CascadeConfig) -> None:
        """Import the handlers the config names by path: for stages without one, and for
        stages whose path, or the folder of the cascade file it is looked up from, changed
        since their handler was imported (a handler registered in code is kept)."""
        search = [str(Path(config.source_file).resolve().parent)] if config.source_file else []
        for name, stage in config.stages.items():
            if not stage.handler:
                continue
            where = (stage.handler, search[0] if search else None)
            if name in self._originals and self._from_path.get(name) in (None, where):
                continue
            try:
                handler = import_object(stage.handler, what=f"handler of {name}", search=search)
                self.register_stage(name, handler)
            except PlanError as exc:
                if not config.source_file:
                    raise
                raise HandlerPathError(config.source_file, name, str(exc)) from None
            self._from_path[name] = where

    def update_config(
        self,
        new_config: CascadeConfig | Mapping[str, Any] | str | os.PathLike[str],
        *,
        handlers: Mapping[str, Handler] | None = None,
        require_handlers: bool = False,
    ) -> None:
        """Hot-reload: new executions use `new_config`; executions in flight finish on the old.

        Handlers registered by name and statistics are kept. Stages the new config adds may
        name handlers by import path, or get them in `handlers`, registered in the same step
        (no execution ever sees the new version without them). A stage whose import path
        changed gets the handler at the new path. Result caches and circuit breakers of stages
        whose settings are unchanged carry over; a replaced handler's cached results do not.

        Args:
            new_config: The new version (a `CascadeConfig`, a mapping or a file path).
            handlers: Handlers for stages of the new version, registered in the same step.
            require_handlers: Refuse a version in which some stage would have no handler
                (`ConfigWatcher` sets it: that stage would otherwise fail whenever a run
                reaches it, until one is registered).

        Raises:
            ConfigError: The new configuration is invalid (the running one stays in place).
            PlanError: A handler import path of the new config cannot be imported, a name in
                `handlers` is not a stage of it, or (with `require_handlers`) a stage has no
                handler; the running version stays in place.
        """
        config = _as_config(new_config)
        if handlers is not None and not isinstance(handlers, Mapping):
            raise TypeError(
                "update_config(handlers=...) takes a mapping of stage name to handler, got "
                f"{_shown(handlers)}"
            )
        _check_flag("update_config", "require_handlers", require_handlers)
        kept = (
            self._config,
            self._plan,
            dict(self._handlers),
            dict(self._originals),
            dict(self._policies),
            dict(self._from_path),
            dict(self._state),
            set(self._used),
            self._checked,
        )
        try:
            config = self._settle(config)
            self._plan = self._compile(config)  # a failure here leaves the running version
            self._config = config
            for name, handler in (handlers or {}).items():
                self.register_stage(name, handler)
            self._register_paths(config)
            if require_handlers:
                self._check_ready(self._plan)
        except BaseException:  # a handler that cannot be bound: keep the old version
            self._config, self._plan = kept[0], kept[1]
            self._handlers, self._originals, self._policies = kept[2], kept[3], kept[4]
            self._from_path, self._state, self._used = kept[5], kept[6], kept[7]
            self._checked = kept[8]
            raise
        self._prune_state()

    # -- handlers -------------------------------------------------------------------------
    def register_stage(self, name: str, handler: Handler, *, in_thread: bool | None = None) -> None:
        """Bind `handler` to stage `name`.

        Handlers take the `ExecutionContext` and return a dict with `result`, `confidence`
        and `data` (extra keys are kept), or any other value, taken as the `result`. Async and
        plain functions are accepted; so are `Cadence` flows and engine plugins.

        Raises:
            TypeError: `name` is not a str, or `in_thread` is not a bool or None.
            UnknownStageError: No stage has that name (the message suggests the closest one).
            PlanError: The handler is not callable.
            ConfigError: The config was changed in place since the last plan into one that
                does not validate (see `update_config`).
        """
        given: object = name  # typed as a str, checked: callers may pass anything
        if not isinstance(given, str):
            raise _name_error("register_stage", given, handler, self._config.stages)
        if in_thread is not None:
            _check_flag("register_stage", "in_thread", in_thread, none="or None")
        config = self._settle(self._config, fully=False)  # changed in place since?
        if name not in config.stages:
            hint = closest(name, config.stages)
            raise UnknownStageError(
                f"cannot register a handler for unknown stage {name!r}"
                + (f"; did you mean {hint!r}?" if hint else "")
                + f" (stages: {', '.join(config.stages)})"
            )
        as_handler = getattr(handler, "as_stage_handler", None)
        if callable(as_handler):  # a Cadence flow
            handler = as_handler()
        problem = handler_problem(name, handler)
        if problem is not None:
            raise PlanError(problem)
        fn: Handler = handler
        raw, policy = note_parts(handler)
        if raw is not handler:
            # A decorated note: the engine applies its policy, so call the undecorated function.
            self._policies[name] = policy
            fn = raw
        else:
            self._policies.pop(name, None)
        if self._guard is not None:
            fn = self._guard(name, fn)
        self._in_thread[name] = in_thread
        thread = self.sync_in_thread if in_thread is None else in_thread
        replaced = name in self._originals and self._originals[name] is not handler
        self._originals[name] = handler
        self._from_path.pop(name, None)
        self._handlers[name] = to_async(fn, in_thread=thread)
        if replaced:
            self._drop_cached_results(name)
        self._config = config
        self._plan = self._compile(config)

    def register_stages(self, handlers: Mapping[str, Handler]) -> None:
        """Register several handlers at once.

        Raises:
            TypeError: `handlers` is not a mapping of stage name to handler.
        """
        if not isinstance(handlers, Mapping):
            raise TypeError(
                "register_stages() takes a mapping of stage name to handler, like "
                f"{{'FAST_CHECK': fast_check}}, got {_shown(handlers)}"
            )
        for name, handler in handlers.items():
            self.register_stage(name, handler)

    def stage(self, name: str) -> Callable[[H], H]:
        """Decorator form of `register_stage`; returns the handler unchanged.

        Raises:
            TypeError: `name` is not a str (`@engine.stage` written without the stage name).
        """
        given: object = name  # typed as a str, checked: `@engine.stage` passes the function
        if not isinstance(given, str):
            if callable(given):
                called = getattr(given, "__name__", "")
                hint = closest(called.upper(), self._config.stages) if called else None
                raise TypeError(
                    "engine.stage takes the stage name: write "
                    f"@engine.stage({(hint or 'STAGE_NAME')!r}) above the handler, not "
                    "@engine.stage"
                )
            raise _name_error("stage", given, None, self._config.stages)

        def decorate(fn: H) -> H:
            self.register_stage(name, fn)
            return fn

        return decorate

    def _guard_handlers(self, guard: Callable[[str, Handler], Handler]) -> None:
        """Call every handler, registered now or later, through `guard(stage, function)`
        (`cascadence run` turns a handler's `sys.exit` into a failure of its stage this way).
        `function` is what the engine calls: a decorated note's undecorated function, a
        flow's stage handler; the guard must keep it sync or async. Policies, threads and
        plugins stay as registered."""
        self._guard = guard
        for name, handler in list(self._originals.items()):
            where = self._from_path.get(name)
            self.register_stage(name, handler, in_thread=self._in_thread.get(name))
            if where is not None:
                self._from_path[name] = where

    def add_hooks(self, *hooks: Any) -> CascadeEngine:
        """Attach more hooks (or `EventEmitter`s), given one by one or as lists; returns the
        engine."""
        for item in hooks:
            self._hooks.extend(_hook_list(item, "add_hooks()"))
        self._observers = build_observers(self._hooks, self._reporters, "cascade")
        return self

    def add_reporter(self, reporter: Any) -> CascadeEngine:
        """Attach a reporter callable; returns the engine."""
        self._reporters.extend(_reporter_list([reporter], "add_reporter()"))
        self._observers = build_observers(self._hooks, self._reporters, "cascade")
        return self

    # -- execution ------------------------------------------------------------------------
    def check_handlers(self) -> None:
        """Refuse a cascade in which some stage has no handler, before anything runs.

        `execute` does not require every handler: a stage without one fails only when it has
        to run, as a handler error would (its result names the stage and how to register
        one). Call this at start-up when every stage must be servable; `cascadence run` and
        `ConfigWatcher` check the same.

        Raises:
            PlanError: Some stage has no handler (every such stage is named).
        """
        self._check_ready(self._plan)

    def _check_ready(self, plan: CascadePlan) -> None:
        missing = plan.missing_handlers()
        if missing:
            raise PlanError(
                f"cascade {plan.name!r}: no handler for stage(s) {', '.join(missing)}; "
                "call engine.register_stage(name, handler) or set `handler: 'pkg.mod:func'` "
                "on the stage"
            )

    def execute(
        self,
        data: Any,
        *,
        explain: bool | None = None,
        run_id: str | uuid.UUID | int | None = None,
        checkpoint: CheckpointStore | None = None,
        raise_on_timeout: bool = False,
        lease_seconds: float = 60.0,
    ) -> Coroutine[Any, Any, dict[str, Any]]:
        """Run the cascade on one input.

        Args:
            data: A dict, or an `EventWithContext` (flattened with `to_flat_dict()`).
            explain: Add `explanation` to the result (per call; default: the engine's setting).
            run_id: Identifies the run (required with `checkpoint`).
            checkpoint: A store that records each finished stage, so a run interrupted by a
                crash resumes from where it stopped, and a finished run id returns its result.
            raise_on_timeout: Raise `GlobalTimeoutError` (carrying the partial result)
                instead of returning a result marked `timed_out`.
            lease_seconds: With `checkpoint`, how long the run id stays locked to this process
                if it dies, for processes on other hosts (the lease is renewed while the
                execution runs; on the same host a dead owner's run is taken over at once).

        Returns:
            `success`, `execution_time_ms`, `stages_executed`, `stage_results` (each with
            `result`, `confidence`, `data`, `time_ms`, `cost` and `error` when it failed),
            `path`, `final_result`, `terminated`, `terminated_by`, `timed_out`, `cost`,
            `errors`, `routing_decisions`, `skipped_stages`, `timeline`, `warnings`,
            `input` (the input as given), and `data` (the input with the fields the run set)
            when the run set any.

        A stage that has to run without a registered handler fails as a handler error would:
        its result's `error` names it and how to register one, and the run goes on (see
        `check_handlers` to refuse such a cascade up front).

        Raises:
            TypeError: `data` is neither a mapping nor an event with `to_flat_dict()`, or an
                option has the wrong type (the message names it).
            GlobalTimeoutError: With `raise_on_timeout`, when the global timeout fired.
        """
        # An async method in all but name: the common call returns the run's own coroutine,
        # so an execution holds one coroutine frame less while it waits (`execute` is marked
        # as a coroutine function below).
        plan = self._plan
        if (
            type(data) is dict
            and checkpoint is None
            and self._limit is None
            and raise_on_timeout is False
            and (explain is None or explain is True or explain is False)
            and (run_id is None or type(run_id) is str)
        ):
            return run_cascade(
                plan,
                data,
                self._stats,
                self._observers,
                self.explain if explain is None else explain,
                run_id,
                self._finished,
            )
        return self._execute(
            data, explain, as_run_id(run_id), checkpoint, raise_on_timeout, lease_seconds
        )

    async def _execute(
        self,
        data: Any,
        explain: bool | None,
        run_id: str | None,
        checkpoint: CheckpointStore | None,
        raise_on_timeout: bool,
        lease_seconds: float,
    ) -> dict[str, Any]:
        _check_options(explain, run_id, checkpoint, raise_on_timeout, lease_seconds)
        plan = self._plan
        if type(data) is not dict:
            to_flat = getattr(data, "to_flat_dict", None)
            if to_flat is not None:
                data = to_flat()
            elif not isinstance(data, Mapping):
                raise TypeError(
                    "execute() takes the input as a dict (or an EventWithContext), got "
                    f"{type(data).__name__}: {data!r:.80}"
                )
        want_explain = self.explain if explain is None else explain
        if checkpoint is not None:
            if not callable(getattr(checkpoint, "acquire", None)):
                shown = f"{checkpoint!r}" if isinstance(checkpoint, str) else "it"
                raise TypeError(
                    f"checkpoint takes a CheckpointStore, got {type(checkpoint).__name__}; make "
                    f"the store once (store = store_from_url({shown}), from cascadence."
                    "checkpoint) and pass it to every execute"
                )
            result = await self._execute_durable(
                plan, data, checkpoint, run_id, want_explain, lease_seconds
            )
            self._finished.count += 1
        elif self._limit is None:
            result = await run_cascade(
                plan, data, self._stats, self._observers, want_explain, run_id, self._finished
            )
        else:
            async with self._in_flight_limit():
                result = await run_cascade(
                    plan, data, self._stats, self._observers, want_explain, run_id, self._finished
                )
        if raise_on_timeout and result["timed_out"]:
            raise GlobalTimeoutError(plan.name, plan.global_timeout or 0.0, partial_result=result)
        return result

    async def _execute_durable(
        self,
        plan: CascadePlan,
        data: Any,
        store: CheckpointStore,
        run_id: str | None,
        explain: bool,
        lease_seconds: float,
    ) -> dict[str, Any]:
        from cascadence.cascade.durable import execute_durable

        def run() -> Coroutine[Any, Any, dict[str, Any]]:
            return execute_durable(
                self,
                plan,
                data,
                store=store,
                run_id=run_id,
                explain=explain,
                lease_seconds=lease_seconds,
            )

        if self._limit is None:
            return await run()
        async with self._in_flight_limit():  # back-pressure holds for checkpointed runs too
            return await run()

    def _in_flight_limit(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        limit = self._limits.get(loop)
        if limit is None:
            assert self._limit is not None
            limit = self._limits[loop] = asyncio.Semaphore(self._limit)
        return limit

    def execute_sync(self, data: Any, **options: Any) -> dict[str, Any]:
        """`execute` from synchronous code (refuses to run inside a running event loop)."""
        _check_option_names("execute_sync", options)
        if not in_event_loop():
            return run_blocking(self.execute(data, **options))
        raise RuntimeError(
            "execute_sync() cannot be called from a running event loop; "
            "use `await engine.execute()`"
        )

    async def execute_many(
        self, items: Iterable[Any], *, concurrency: int = 100, **options: Any
    ) -> list[dict[str, Any]]:
        """Execute many inputs concurrently (at most `concurrency` at once), results in order.

        Raises:
            TypeError: `items` is one input (a mapping) or not iterable, `concurrency` is not
                an int, or an option is not one `execute` takes.
            ValueError: `concurrency` is below 1.
        """
        if isinstance(items, Mapping) or not isinstance(items, Iterable):
            single = (
                "; for one input call execute(), or pass [item]"
                if isinstance(items, Mapping)
                else ""
            )
            raise TypeError(
                f"execute_many() takes an iterable of inputs, got {_shown(items)}{single}"
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise TypeError(
                f"execute_many(concurrency=...) must be an int, got {_shown(concurrency)}"
            )
        if concurrency < 1:
            raise ValueError(f"execute_many(concurrency=...) must be at least 1, got {concurrency}")
        _check_option_names("execute_many", options)
        sem = asyncio.Semaphore(concurrency)

        async def one(item: Any) -> dict[str, Any]:
            async with sem:
                return await self.execute(item, **options)

        return list(await asyncio.gather(*(one(i) for i in items)))

    def new_run_id(self) -> str:
        """A fresh run id."""
        return uuid.uuid4().hex

    # -- statistics ------------------------------------------------------------------------
    def get_statistics(self) -> dict[str, dict[str, Any]]:
        """Per stage: `count`, `total_time_ms`, `avg_time_ms`, `errors`, `timeouts`,
        `success_rate` and `total_cost`, across all executions since the engine started."""
        return {name: s.as_dict() for name, s in self._stats.items()}

    @property
    def executions(self) -> int:
        """How many executions finished."""
        return self._finished.count

    def reset_statistics(self) -> None:
        """Forget the statistics."""
        self._stats.clear()
        self._finished.count = 0

    def clear_cache(self) -> None:
        """Empty every result cache of the engine: the stages' own (`cache_enabled`), those of
        decorated notes, and those of plugins registered as handlers (`CachePlugin`, or a
        `PluginFactory` chain holding one)."""
        from cascadence.policies.cache import ResultCache

        caches = [obj for obj in self._state.values() if isinstance(obj, ResultCache)]
        caches.extend(p.cache for p in self._policies.values() if p.cache is not None)
        for original in self._originals.values():
            handler: Any = original
            seen: set[int] = set()
            while handler is not None and id(handler) not in seen:  # down a plugin chain
                seen.add(id(handler))
                cache = getattr(getattr(handler, "policy", None), "cache", None)
                if isinstance(cache, ResultCache):
                    caches.append(cache)
                handler = getattr(handler, "wrapped_handler", None)
        for cache in caches:
            cache.clear()

    def breaker(self, stage: str) -> CircuitBreaker | None:
        """The circuit breaker of `stage`, or None."""
        given: object = stage
        if not isinstance(given, str):
            raise _name_error("breaker", given, None, self._config.stages)
        for (name, key), obj in self._state.items():
            if name == stage and key.startswith("breaker:"):
                return obj  # type: ignore[no-any-return]
        return None

    # -- composition and rendering ---------------------------------------------------------
    def as_step(
        self, *, input: Callable[[Any], Any] | None = None
    ) -> Callable[[Any], Awaitable[Any]]:
        """Use this cascade as one step of a `Cadence` flow (see `Cadence.cascade`).

        Args:
            input: Builds the cascade input from the score (default: the score's fields).
        """
        from cascadence.flow.score import score_fields

        if input is not None and not callable(input):
            raise TypeError(
                "as_step(input=...) takes a function building the cascade input from the "
                f"score, got {_shown(input)}"
            )
        to_input = input or score_fields

        async def step(score: Any) -> Any:
            return await self.execute(to_input(score))

        step.__name__ = self._config.name
        return step

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of the cascade, routing rules as labelled edges."""
        from cascadence.diagrams import to_mermaid

        return to_mermaid(self)

    def to_dot(self) -> str:
        """A Graphviz DOT digraph of the cascade."""
        from cascadence.diagrams import to_dot

        return to_dot(self)

    def __repr__(self) -> str:
        return f"CascadeEngine({self._config.name!r}, version={self._config.version!r})"


mark_coroutine_function(CascadeEngine.execute)


def _shape(config: CascadeConfig) -> tuple[Any, ...]:
    """The lists of `config` a plan reads, copied (their items shared), so a change made to
    them in place compares unequal: the stages, and each one's routing rules, `depends_on`
    and `cache_key_fields`; `execution_order`; the termination conditions."""
    stages: Mapping[Any, Any] = config.stages
    return (
        tuple(
            (
                key,
                stage,
                tuple(getattr(stage, "routing_rules", ())),
                tuple(getattr(stage, "depends_on", ())),
                tuple(getattr(stage, "cache_key_fields", None) or ()),
            )
            for key, stage in stages.items()
        ),
        tuple(config.execution_order or ()),
        tuple(config.termination_conditions),
    )


def _as_config(
    config: CascadeConfig | Mapping[str, Any] | str | os.PathLike[str],
) -> CascadeConfig:
    if isinstance(config, CascadeConfig):
        return config
    if isinstance(config, (str, os.PathLike)):
        return CascadeConfig.from_file(config)
    if isinstance(config, Mapping):
        return CascadeConfig.from_dict(dict(config))
    raise TypeError(
        f"CascadeEngine expects a CascadeConfig, a dict or a file path, got {type(config).__name__}"
    )


_EXECUTE_OPTIONS = ("explain", "run_id", "checkpoint", "raise_on_timeout", "lease_seconds")


def _shown(value: Any) -> str:
    """`value` for an error message: its type, and the value itself when short."""
    if value is None:
        return "None"
    kind = type(value).__name__
    name = getattr(value, "__name__", None)
    if callable(value) and isinstance(name, str):
        return f"{kind} {name}"
    text = repr(value)
    return f"{kind} {text}" if len(text) <= 60 else f"{kind} {text[:57]}..."


def _check_flag(method: str, argument: str, value: Any, none: str = "") -> None:
    if value is not True and value is not False:
        raise TypeError(
            f"{method}({argument}=...) must be True or False{' ' + none if none else ''}, "
            f"got {_shown(value)}"
        )


def _name_error(method: str, name: Any, handler: Any, stages: Iterable[str]) -> TypeError:
    """The error for a stage name that is not a str, with the stages and a likely fix."""
    names = list(stages)
    hint = ""
    if callable(name) and isinstance(handler, str):
        hint = f"; the arguments look swapped: {method}({handler!r}, handler)"
    else:
        own = getattr(name, "name", None)  # a StageConfig, an enum member
        if isinstance(own, str) and own in names:
            hint = f"; did you mean {own!r}?"
    return TypeError(
        f"{method}() takes the stage name as a str, got {_shown(name)}{hint} "
        f"(stages: {', '.join(names)})"
    )


def _check_options(
    explain: Any, run_id: Any, checkpoint: Any, raise_on_timeout: Any, lease_seconds: Any
) -> None:
    """Refuse `execute` options of the wrong type, naming the option."""
    if explain is not None:
        _check_flag("execute", "explain", explain, none="or None")
    if run_id is not None and not isinstance(run_id, str):
        raise TypeError(
            f"execute(run_id=...) must be a str (or a UUID or int, used as text) or None, got "
            f"{_shown(run_id)}"
        )
    _check_flag("execute", "raise_on_timeout", raise_on_timeout)
    if checkpoint is None:
        return  # the lease is the checkpoint's
    if isinstance(lease_seconds, bool) or not isinstance(lease_seconds, (int, float)):
        raise TypeError(
            f"execute(lease_seconds=...) must be a number of seconds, got {_shown(lease_seconds)}"
        )
    if not 0 < lease_seconds < float("inf"):  # NaN is not
        raise ValueError(
            f"execute(lease_seconds=...) must be a number of seconds above 0, got {lease_seconds}"
        )


def _check_option_names(method: str, options: Mapping[str, Any]) -> None:
    for key in options:
        if key not in _EXECUTE_OPTIONS:
            hint = closest(key, _EXECUTE_OPTIONS)
            raise TypeError(
                f"{method}() got an unknown option {key!r}"
                + (f"; did you mean {hint!r}?" if hint else "")
                + f" (options: {', '.join(_EXECUTE_OPTIONS)})"
            )


def _hook_list(hooks: Any, where: str) -> list[Any]:
    """The hook objects of `hooks` (one, or an iterable of them), each checked to have a hook
    method."""
    if isinstance(hooks, CadenceHooks) or (
        not isinstance(hooks, Iterable) and _has_hook_method(hooks)
    ):
        return [hooks]  # one hooks object, as `with_hooks` takes it
    if isinstance(hooks, (str, bytes, Mapping)) or not isinstance(hooks, Iterable):
        raise TypeError(
            f"{where} takes a CadenceHooks object or EventEmitter, or a list of them, got "
            f"{_shown(hooks)}"
        )
    items = list(hooks)
    for item in items:
        if not isinstance(item, CadenceHooks) and not _has_hook_method(item):
            hint = (
                "; a function receiving every event is a reporter: pass it in reporters=[...] "
                "or to add_reporter()"
                if callable(item)
                else ""
            )
            raise TypeError(
                f"{where} needs CadenceHooks objects or EventEmitters (with any of "
                f"{', '.join(HOOK_METHODS)}), got {_shown(item)}{hint}"
            )
    return items


def _has_hook_method(item: Any) -> bool:
    return any(callable(getattr(item, method, None)) for method in HOOK_METHODS)


def _reporter_list(reporters: Any, where: str) -> list[Any]:
    """The reporters of `reporters` (one, or an iterable of them), each a callable taking a
    `CadenceEvent` (or hooks)."""
    if isinstance(reporters, CadenceHooks) or (
        callable(reporters) and not isinstance(reporters, Iterable)
    ):
        return [reporters]  # one reporter, as `with_reporter` takes it
    if isinstance(reporters, (str, bytes, Mapping)) or not isinstance(reporters, Iterable):
        raise TypeError(
            f"{where} takes a reporter callable, or a list of them, got {_shown(reporters)}"
        )
    items = list(reporters)
    for item in items:
        if not callable(item) and not isinstance(item, CadenceHooks):
            raise TypeError(
                f"{where}: a reporter is a callable taking each CadenceEvent (such as "
                f"PrometheusReporter().report), got {_shown(item)}"
            )
    return items
