"""Executing a `CascadePlan`: stage order, routing, parallel groups, timeouts and the result.

One call of `run_cascade` is one execution. All its state lives in local variables and the
`ExecutionContext`, so one plan serves any number of concurrent executions. The run-wide
deadline (`global_timeout`) is folded into each stage's own deadline, so no timer is armed
unless a handler actually suspends.
"""

from __future__ import annotations

import asyncio
import decimal
import numbers
import time
from collections.abc import Awaitable, Callable
from typing import Any

from cascadence.conditions.issues import EvalWarning
from cascadence.errors import (
    CircuitOpenError,
    GlobalTimeoutError,
    PlanError,
    RetryExhaustedError,
    Skip,
)
from cascadence.errors import TimeoutError as StepTimeoutError
from cascadence.runtime.cascade_result import Decision, Executions, StageStats, build_result
from cascadence.runtime.context import ExecutionContext
from cascadence.runtime.gather import start_calls
from cascadence.runtime.invoke import _Resume, call_step, resume_until, retries_cut
from cascadence.runtime.observe import Observers
from cascadence.runtime.plan import CascadePlan, RulePlan, StagePlan
from cascadence.runtime.result import StageResult, as_stage_result, complete
from cascadence.runtime.routing import Routing

__all__ = ["run_cascade"]

_perf = time.perf_counter
# `StageResult` reads by attribute (`__getattr__`), which makes its own methods slower to look
# up than `dict`'s: the hot path calls these directly
_dict_get: Callable[..., Any] = dict.get
_setdefault: Callable[..., Any] = dict.setdefault

_RESULT_KEYS = frozenset(
    (
        "result",
        "confidence",
        "data",
        "time_ms",
        "cost",
        "error",
        "error_type",
        "escalated",
        "cached",
        "skipped_reason",
    )
)
"""Keys a stage result has, or that the engine adds to it."""
_SPELT_FOR = ("result", "confidence", "data")
"""The keys a handler returns, that a misspelt key is compared with."""
_NEAR: dict[Any, str | None] = {}
"""Other keys handlers returned -> the key of `_SPELT_FOR` each is a misspelling of, or None."""
_NEAR_LIMIT = 4096


def _misspelling_of(key: Any) -> str | None:
    """The well-known result key `key` is very close to (`confidnce`: `confidence`), or None."""
    try:
        return _NEAR[key]
    except KeyError:
        pass
    except TypeError:  # unhashable: not a name either
        return None
    near: str | None = None
    if isinstance(key, str) and len(key) >= 3:
        import difflib

        found = difflib.get_close_matches(key.lower(), _SPELT_FOR, n=1, cutoff=0.8)
        near = found[0] if found and found[0] != key else None
    if len(_NEAR) < _NEAR_LIMIT:
        _NEAR[key] = near
    return near


def _message(exc: BaseException) -> str:
    """`str(exc)`, or its type's name when that is empty or `__str__` itself fails (a run
    must not be lost to an error that cannot describe itself)."""
    try:
        text = str(exc)
    except Exception as broken:
        return f"{type(exc).__name__} (its message could not be read: {type(broken).__name__})"
    return text or type(exc).__name__


def _error_record(stage: str, exc: BaseException, text: str | None = None) -> dict[str, Any]:
    return {"stage": stage, "error": text or _message(exc), "type": type(exc).__name__}


def _failed(exc: BaseException, text: str | None = None) -> StageResult:
    return StageResult(
        result=None,
        confidence=None,
        data={},
        error=text or _message(exc),
        error_type=type(exc).__name__,
    )


class _Run(Routing):
    """Mutable state of one execution (kept off the plan so executions never share it).

    Times are `time.perf_counter` readings; `deadline` (the global timeout) too. They are
    turned into event-loop time only when a handler suspends and a timer must be armed.
    """

    __slots__ = (
        "cost",
        "deadline",
        "errors",
        "first_error",
        "index",
        "input",
        "ok",
        "run_id",
        "skipped",
        "stats",
        "t0",
        "timed_out",
        "timeline",
    )

    def __init__(
        self,
        plan: CascadePlan,
        ctx: ExecutionContext,
        stats: dict[str, StageStats] | None,
        obs: Observers | None,
        explain: bool,
        run_id: str | None,
    ) -> None:
        self.plan = plan
        self.ctx = ctx
        self.input = ctx.data  # the input as given: the context copies it on its first write
        self.stats = stats
        self.obs = obs
        self.explain: list[dict[str, Any]] | None = [] if explain else None
        self.run_id = run_id
        self.enabled = plan.enabled_mask  # a mask of `StagePlan.bit`s
        self.ok = 0  # bits of the stages that finished without an error
        self.errors: list[dict[str, Any]] | None = None  # created on the first error
        # the rules whose action was taken (a dict each in the result); a restored run's earlier
        # decisions are those dicts already
        self.decisions: list[Decision] = []
        # (stage, started, time_ms, failed) per stage run, in order: the path is its names;
        # `time_ms` is the stage result's own float (no end time is kept)
        self.timeline: list[tuple[str, float, float, bool]] = []
        self.skipped: dict[str, str] | None = None  # created on the first skip
        self.cost = 0.0
        self.terminated_by: str | None = None
        self.timed_out = False
        self.jump: str | None = None
        self.deadline: float | None = None
        self.t0 = 0.0
        self.forced: StagePlan | None = None  # a skip_to target that may skip its dependencies
        self.index = 0
        self._pending_routing: list[tuple[str, str, str]] | None = None

    @property
    def path(self) -> list[str]:
        """The stages run so far, in order."""
        return [entry[0] for entry in self.timeline]

    # -- stage execution -------------------------------------------------------------------
    def _finish(self, st: StagePlan, sr: StageResult, started: float, ended: float) -> None:
        sr["time_ms"] = elapsed = (ended - started) * 1000.0
        confidence = sr.get("confidence")
        if confidence is not None and (
            confidence.__class__ is not float or not 0.0 <= confidence <= 1.0
        ):
            self.check_confidence(st, sr, confidence)
        cost = sr.setdefault("cost", st.cost)
        name = st.name
        self.ctx.stage_results[name] = sr
        try:
            self.cost += cost
        except TypeError:
            cost = self.bad_cost(st, sr)
        failed = sr.get("error") is not None
        if failed:
            self.returned_error(name, sr)
        else:
            self.ok |= st.bit
        self.timeline.append((name, started, elapsed, failed))  # small while in flight
        stats = self.stats
        if stats is not None:
            s = stats.get(name)
            if s is None:
                s = stats[name] = StageStats()
            s.count += 1
            s.total_time_ms += elapsed
            s.total_cost += cost
            if failed:
                s.errors += 1

    def check_keys(self, st: StagePlan, sr: StageResult) -> None:
        """Give `sr` the keys every result has that the handler left out (as `complete`), and
        warn (on the run's `warnings`) about a key it returned instead that is a misspelling
        of one (`confidnce`): that key is kept as written, and `stages.NAME.confidence` is
        None. Called only for results missing `result`, `confidence` or `data`."""
        missing = ("result" not in sr) | ("confidence" not in sr) << 1 | ("data" not in sr) << 2
        complete(sr)  # bits of `missing`: the keys of _SPELT_FOR it had to add
        if len(sr) != 3:  # the handler returned other keys too: rarely, and looked up once
            self._misspelt_keys(st, sr, missing)

    def _misspelt_keys(self, st: StagePlan, sr: StageResult, missing: int) -> None:
        for key in sr:
            if key in _RESULT_KEYS:
                continue
            meant = _misspelling_of(key)
            if meant is None or not missing & (1 << _SPELT_FOR.index(meant)):
                continue
            empty = "{}" if meant == "data" else "None"
            self.ctx.warnings.append(
                EvalWarning(
                    f"stages.{st.name}.{key}",
                    f"stage {st.name!r} returned {key!r}, kept as written, and no {meant!r} "
                    f"(so stages.{st.name}.{meant} is {empty}); did you mean {meant!r}?",
                )
            )

    def check_confidence(self, st: StagePlan, sr: StageResult, confidence: Any) -> None:
        """A handler's `confidence` must be a number from 0 to 1: anything else (a string, a
        bool, NaN, 1.5) fails the stage, as rules on it could not mean what they say."""
        number = confidence
        if (
            not isinstance(number, bool)
            and isinstance(number, (numbers.Real, decimal.Decimal))
            and 0.0 <= float(number) <= 1.0  # NaN is not
        ):
            return  # an int, a numpy float, a Decimal in range
        if sr.get("error") is not None:  # failed already: its own error says why
            return
        sr["error"] = (
            f"the handler returned confidence {confidence!r}; expected a number from 0 to 1 "
            "(or none)"
        )
        sr["error_type"] = "ValueError"

    def bad_cost(self, st: StagePlan, sr: StageResult) -> float:
        """A handler returned a `cost` that is not a number: record it, charge the stage's."""
        self.error(
            {
                "stage": st.name,
                "error": f"the handler returned cost {sr['cost']!r}; expected a number "
                f"(the stage's configured cost {st.cost:g} was charged)",
                "type": "ValueError",
            }
        )
        sr["cost"] = st.cost
        self.cost += st.cost
        return st.cost

    def returned_error(self, name: str, sr: StageResult) -> None:
        """A stage finished with an `error`: make sure the run's errors list it.

        A handler that raised is recorded already; one that returned an `error` key is
        recorded here, so `success` and `errors` agree with the stage result.
        """
        errors = self.errors
        if errors and errors[-1].get("stage") == name:
            return
        kind = sr.get("error_type")
        self.error(
            {
                "stage": name,
                "error": str(sr["error"]),
                "type": kind if isinstance(kind, str) else "StageError",
            }
        )

    def _record_error(self, st: StagePlan, exc: BaseException) -> StageResult:
        """Record a stage's failure; `exc` as `as_recorded` gave it (converted once, so hooks
        and the result agree)."""
        if self.obs is not None and getattr(self, "first_error", None) is None:
            self.first_error = exc  # kept for the observers only (set only with them)
        if isinstance(exc, StepTimeoutError) and self.stats is not None:
            self.stats.setdefault(st.name, StageStats()).timeouts += 1
        text = self.recorded_message(st, exc)
        self.error(_error_record(st.name, exc, text))
        failed = _failed(exc, text)
        if isinstance(exc, CircuitOpenError) or st.fn is None:  # no handler was called
            failed["cost"] = 0
        return failed

    def recorded_message(self, st: StagePlan, exc: BaseException) -> str:
        """The error a failed stage's result records: the exception's message, and, when its
        retries stopped before the last attempt because the next backoff would end past a
        time limit, which attempt was the last and why."""
        text = _message(exc)
        retry = st.policy.retry
        cut = retries_cut(exc) if retry is not None else None
        if cut is None or retry is None or isinstance(exc, GlobalTimeoutError):
            return text  # a global timeout that cancelled the stage says so itself
        _note, attempt, delay = cut
        total = st.policy.total_timeout
        deadline = self.deadline
        if deadline is not None and (total is None or deadline - _perf() <= delay):
            limit = f"the cascade's global timeout ({self.plan.global_timeout or 0.0:g}s)"
        elif total is not None:
            limit = f"the step's time limit ({total:g}s for all attempts)"
        else:
            limit = "the step's time limit"
        return (
            f"{text} (no retry after attempt {attempt} of {retry.max_attempts}: the next "
            f"would start {delay:g}s from now, after {limit} runs out)"
        )

    def error(self, record: dict[str, Any]) -> None:
        """Record an error of the run."""
        if self.errors is None:
            self.errors = []
        self.errors.append(record)

    def as_recorded(self, st: StagePlan, exc: BaseException) -> BaseException:
        """The error a stage's failure is recorded and reported as: a `GlobalTimeoutError`
        when the run's deadline, not the stage's own timeout, stopped it (its retries too)."""
        if isinstance(exc, GlobalTimeoutError) or not isinstance(
            exc, (StepTimeoutError, RetryExhaustedError)
        ):
            return exc
        timed = exc.original_error if isinstance(exc, RetryExhaustedError) else exc
        if isinstance(timed, StepTimeoutError) and any(
            own is not None and abs(timed.timeout - own) < 1e-6
            for own in (st.policy.timeout, st.policy.total_timeout)
        ):  # the stage's own limit, though it is recorded after the deadline (in a group)
            return exc
        if not self.cut_off(exc):
            return exc
        cut = GlobalTimeoutError(self.plan.name, self.plan.global_timeout or 0.0)
        cut.args = (
            f"the cascade's global timeout ({self.plan.global_timeout:g}s) cancelled {st.name!r}",
        )
        return cut

    def cut_off(self, exc: BaseException) -> bool:
        """Whether `exc` (a step timeout, or retries that ended in one) came from the run's
        global deadline; it then marks the run timed out."""
        if self.deadline is None or _perf() < self.deadline:
            return False
        if isinstance(exc, RetryExhaustedError) and not isinstance(
            exc.original_error, StepTimeoutError
        ):
            return False
        self.timed_out = True
        return True

    def skip_unreached(self, index: int) -> None:
        """Record why the stages still due from `index` on did not run: time ran out."""
        results = self.ctx.stage_results
        limit = self.plan.global_timeout or 0.0
        said = self.skipped or {}
        for st in self.plan.stages[index:]:
            if self.enabled & st.bit and st.name not in results and st.name not in said:
                self.skip(st.name, f"the cascade's global timeout ({limit:g}s) ran out first")

    def stopped_before(self, st: StagePlan) -> None:
        """Record that a precondition kept `st` from running (unless one said why already)."""
        if self.skipped is None or st.name not in self.skipped:
            last = self.decisions[-1] if self.decisions else None
            by = f"precondition {last.name!r}" if isinstance(last, RulePlan) else "a precondition"
            self.skip(st.name, f"stopped by {by}")

    def skip(self, stage: str, reason: str) -> None:
        """Record why a stage did not run."""
        if self.skipped is None:
            self.skipped = {}
        self.skipped[stage] = reason

    def results_mask(self, failed: bool) -> int:
        """The bits of the stages whose result records an error (`failed`) or none."""
        return self.plan.mask(
            name
            for name, sr in self.ctx.stage_results.items()
            if (sr.get("error") is not None) is failed
        )

    def loop_deadline(self) -> float | None:
        """The run-wide deadline on the event loop's clock (None without a global timeout)."""
        if self.deadline is None:
            return None
        return asyncio.get_running_loop().time() + (self.deadline - _perf())

    def overrun(self, st: StagePlan, started: float, now: float) -> StepTimeoutError:
        """The error of a stage that finished without ever awaiting, after its time limit: it
        held the event loop, so no timer could cancel it, and its late result is not taken."""
        timeout = st.timeout
        if timeout is not None and now - started > timeout:
            return StepTimeoutError(st.name, timeout, now - started)
        assert self.deadline is not None
        return StepTimeoutError(st.name, max(self.deadline - started, 0.0), now - started)

    def _slow(self, st: StagePlan, coro: Any, yielded: Any, started: float) -> Awaitable[Any]:
        """What to await for the rest of a handler that suspended on its first step."""
        timeout = st.timeout
        deadline = self.deadline
        if timeout is None and deadline is None:
            return _Resume(coro, yielded)
        limit = started + timeout if timeout is not None else deadline
        assert limit is not None
        if deadline is not None and deadline < limit:
            limit = deadline
        loop_limit = asyncio.get_running_loop().time() + (limit - _perf())
        # the timeout the error will name: the stage's own (no new float) unless the global
        # deadline comes first
        shown = timeout if timeout is not None and limit != deadline else max(limit - started, 0.0)
        return resume_until(coro, yielded, loop_limit, st.name, shown)

    async def call(self, st: StagePlan) -> StageResult:
        """Run one stage through its policy; never raises (errors land on the result)."""
        fn = st.fn
        ctx = self.ctx
        obs = self.obs
        if obs is not None:
            await obs.step_started(self.plan.name, self.run_id, st.name, ctx)
        started = _perf()
        error: BaseException | None = None
        try:
            if fn is None:  # no handler was registered: the stage fails as a handler would
                raise PlanError(st.no_handler or f"no handler for stage {st.name!r}")
            if st.plain:
                coro = fn(ctx)
                try:
                    yielded = coro.send(None)
                except StopIteration as stop:
                    raw = stop.value
                    timeout = st.timeout
                    if timeout is not None or self.deadline is not None:
                        now = _perf()
                        if (timeout is not None and now - started > timeout) or (
                            self.deadline is not None and now > self.deadline
                        ):
                            raise self.overrun(st, started, now) from None
                else:  # the handler suspended: only now is its deadline armed
                    raw = await self._slow(st, coro, yielded, started)
            else:
                retry = (
                    None
                    if obs is None
                    else obs.retry_listener(self.plan.name, self.run_id, st.name, ctx)
                )
                hits: list[Any] | None = [] if st.policy.cache is not None else None
                raw = await call_step(
                    st.name,
                    fn,
                    ctx,
                    st.policy,
                    deadline=self.loop_deadline(),
                    on_retry=retry,
                    assign=_assign,
                    hits=hits,
                )
                if hits:  # served from the cache: nothing was spent
                    raw = StageResult(raw) if isinstance(raw, dict) else as_stage_result(raw)
                    raw["cost"] = 0
                    raw["cached"] = True
            sr = StageResult(raw) if type(raw) is dict else as_stage_result(raw)
            if "data" not in sr or "confidence" not in sr or "result" not in sr:
                self.check_keys(st, sr)
        except Skip as skip:
            sr = StageResult(result=None, confidence=None, data={}, skipped_reason=skip.reason)
        except Exception as exc:
            error = self.as_recorded(st, exc)  # hooks and reporters see what the result says
            sr = self._record_error(st, error)
        except asyncio.CancelledError as cancelled:  # the execution itself was cancelled
            if obs is not None:  # awaited here, not shielded: reporters restore this context
                await obs.step_finished(
                    self.plan.name, self.run_id, st.name, ctx, _perf() - started, cancelled
                )
            raise
        ended = _perf()
        self._finish(st, sr, started, ended)
        if obs is not None:
            await obs.step_finished(
                self.plan.name,
                self.run_id,
                st.name,
                ctx,
                ended - started,
                error,
                {"cost": sr["cost"], "confidence": sr.get("confidence")},
            )
        return sr

    async def call_batch(self, batch: list[StagePlan]) -> None:
        """Run a parallel group: each stage in a task of its own, whose first step runs at
        once; the group waits only for stages that suspended (see `gather.gather_calls`)."""
        if (
            self.obs is not None
            or len(batch) > self.plan.max_parallel
            or not all(s.plain and s.fn is not None for s in batch)
        ):
            sem = asyncio.Semaphore(self.plan.max_parallel)

            async def limited(st: StagePlan) -> StageResult:
                async with sem:
                    return await self.call(st)

            await asyncio.gather(*(limited(st) for st in batch))
            self._in_plan_order(batch)
            return
        started = _perf()
        fns = [st.fn for st in batch]
        timeouts = [st.timeout for st in batch]
        names = [st.name for st in batch]
        args = [self.ctx] * len(batch)
        deadline = self.loop_deadline()
        outcomes, launched = start_calls(fns, args, timeouts, names, deadline)  # type: ignore[arg-type]
        if launched is not None:  # wait only for the stages that suspended
            outcomes = await launched.collect(False)
        for st, (ok, value, ended) in zip(batch, outcomes):
            if ok:
                sr = StageResult(value) if type(value) is dict else as_stage_result(value)
                if "data" not in sr or "confidence" not in sr or "result" not in sr:
                    self.check_keys(st, sr)
            elif isinstance(value, Skip):
                sr = StageResult(result=None, confidence=None, data={}, skipped_reason=value.reason)
            else:
                sr = self._record_error(st, self.as_recorded(st, value))
            self._finish(st, sr, started, ended)

    async def group(self, first: StagePlan, index: int) -> list[StagePlan]:
        """Run `first` with the stages after it (from `index`) of its parallel group that are
        ready and whose preconditions let them, then apply their rules in plan order.

        With an explicit `execution_order`, members are gathered up to the first stage
        outside the group that would run: the order given is kept, so such a stage (and its
        rules: a terminate, a disable_stages) comes before the members ordered after it.
        Without one, the order is only the dependencies', and every ready member joins.

        Returns:
            The stages that ran, in plan order.
        """
        results = self.ctx.stage_results
        batch = [first]
        ordered = self.plan.ordered
        for nxt in self.plan.stages[index:]:
            if nxt.group != first.group:
                if ordered and self.enabled & nxt.bit and nxt.name not in results:
                    # a stage outside the group comes first in the order: it runs (and its
                    # rules apply) before the members after it start
                    break
                continue
            if self.enabled & nxt.bit and nxt.name not in results and not nxt.deps_mask & ~self.ok:
                if nxt.pre_rules and not self.apply_rules(nxt, pre=True):
                    self.stopped_before(nxt)
                    if self.terminated_by is not None or self.jump is not None:
                        break  # a terminal precondition: no further member starts
                    continue
                batch.append(nxt)
        await self.call_batch(batch)
        stop_any = self.plan.stop_on_failure
        for done in batch:
            sr = results[done.name]
            if sr.get("error") is not None and (done.stop_on_failure or stop_any):
                self.terminated_by = f"failure of {done.name}"
            if done.post_rules and self.terminated_by is None:
                self.apply_rules(done)
        return batch

    def _in_plan_order(self, batch: list[StagePlan]) -> None:
        """Put the stages of a batch that finished in any order back in plan order in the
        timeline (the path) and the stage results, as the batch's inline path records them."""
        count = len(batch)
        position = {st.name: i for i, st in enumerate(batch)}
        self.timeline[-count:] = sorted(self.timeline[-count:], key=lambda e: position[e[0]])
        results = self.ctx.stage_results
        for st in batch:
            results[st.name] = results.pop(st.name)

    async def report_routing(self, obs: Observers) -> None:
        """Tell the observers about the routing decisions taken since the last report."""
        pending = self._pending_routing or []
        for stage_name, rule_name, action in pending:
            await obs.routing(self.plan.name, self.run_id, stage_name, rule_name, action)
        pending.clear()

    async def report_finished(self, obs: Observers) -> dict[str, Any]:
        """Build the result and tell the observers the run finished."""
        result = build_result(self, _perf() - self.t0)
        error: BaseException | None = None
        if not result["success"]:  # the first exception a stage raised, as reporters expect
            error = getattr(self, "first_error", None)
            if error is None and self.timed_out:
                error = GlobalTimeoutError(self.plan.name, self.plan.global_timeout or 0.0)
            elif error is None:  # an error returned by a handler, or a routing error
                error = RuntimeError("; ".join(e["error"] for e in self.errors or ()))
        await obs.run_finished(self.plan.name, self.run_id, self.ctx, _perf() - self.t0, error)
        return result


def _assign(target: Any, field: str, value: Any) -> None:
    if isinstance(target, ExecutionContext):
        target.set(field, value)
    else:
        setattr(target, field, value)


def _deps_met(st: StagePlan, results: dict[str, StageResult]) -> str | None:
    for dep in st.depends_on:
        r = results.get(dep)
        if r is None:
            return f"dependency {dep!r} did not run"
        if r.get("error") is not None:
            return f"dependency {dep!r} failed"
    return None


async def run_cascade(
    plan: CascadePlan,
    data: Any,
    stats: dict[str, StageStats] | None = None,
    observers: Observers | None = None,
    explain: bool = False,
    run_id: str | None = None,
    finished: Executions | None = None,
    *,
    on_stage: Callable[[str, StageResult, _Run], Any] | None = None,
    restore: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Execute `plan` on `data` and return the result dict (see `CascadeEngine.execute`)."""
    # An execution waiting in a handler holds this frame: it keeps few locals (values read
    # once per stage come from `run`, `plan` or `ctx`), and exception names are shared.
    ctx = ExecutionContext(data)
    run = _Run(plan, ctx, stats, observers, explain, run_id)
    run.t0 = _perf()
    if plan.global_timeout is not None:
        run.deadline = run.t0 + plan.global_timeout
    stages = plan.stages
    results = ctx.stage_results
    index = 0
    if restore is not None:
        index = _restore(run, restore)
    if observers is not None:
        await observers.run_started(plan.name, run_id, ctx)
    count = len(stages)
    deadline = run.deadline
    timeline = run.timeline
    # Work after a stage that most runs never need, checked with one test.
    hooked = bool(plan.termination) or observers is not None or on_stage is not None
    explain = run.explain is not None
    try:
        while index < count and run.terminated_by is None and not run.timed_out:
            st = stages[index]
            index += 1
            name = st.name
            if not run.enabled & st.bit or name in results:
                continue
            if st.deps_mask & ~run.ok and st is not run.forced:
                run.skip(name, _deps_met(st, results) or "a dependency did not finish")
                continue
            if st.simple and observers is None:
                # The hot path, inlined: `_Run.call` and `_Run._finish` do the same with hooks,
                # policies and preconditions.
                started = _perf()
                try:
                    coro = st.fn(ctx)  # type: ignore[misc]
                    try:
                        raw = coro.send(None)
                    except StopIteration as exc:
                        raw = exc.value
                        timeout = st.timeout
                        if timeout is not None or deadline is not None:
                            now = _perf()
                            if (timeout is not None and now - started > timeout) or (
                                deadline is not None and now > deadline
                            ):
                                raise run.overrun(st, started, now) from None
                    else:  # it suspended: `raw` is what it waits for, then its result
                        raw = await run._slow(st, coro, raw, started)
                    sr = StageResult(raw) if type(raw) is dict else as_stage_result(raw)
                    if "data" not in sr or "confidence" not in sr or "result" not in sr:
                        run.check_keys(st, sr)
                except Skip as exc:
                    sr = StageResult(
                        result=None, confidence=None, data={}, skipped_reason=exc.reason
                    )
                except Exception as exc:
                    sr = run._record_error(st, run.as_recorded(st, exc))
                sr["time_ms"] = elapsed = (_perf() - started) * 1000.0
                confidence = _dict_get(sr, "confidence")
                if confidence is not None and (
                    confidence.__class__ is not float or not 0.0 <= confidence <= 1.0
                ):
                    run.check_confidence(st, sr, confidence)
                cost = _setdefault(sr, "cost", st.cost)
                results[name] = sr
                try:
                    run.cost += cost
                except TypeError:
                    cost = run.bad_cost(st, sr)
                failed = _dict_get(sr, "error") is not None
                if failed:
                    run.returned_error(name, sr)
                else:
                    run.ok |= st.bit
                timeline.append((name, started, elapsed, failed))
                if stats is not None:
                    counters = stats.get(name)
                    if counters is None:
                        counters = stats[name] = StageStats()
                    counters.count += 1
                    counters.total_time_ms += elapsed
                    counters.total_cost += cost
                    if failed:
                        counters.errors += 1
                if failed and (st.stop_on_failure or plan.stop_on_failure):
                    run.terminated_by = f"failure of {name}"
                elif st.post_tests:
                    if explain:
                        run.apply_rules(st)
                    elif st.post_table is not None and run.route_by_table(st, st.post_table):
                        pass
                    else:  # `_Run.apply_rules` inlined: most rules do not match
                        found = st.post_scan(ctx.data, results, ctx.warnings)
                        if found:
                            if found == len(st.post_rules):  # the last rule: nothing else to scan
                                rule = st.post_rules[-1]
                                if rule.action == "enable_stages":  # `_act`, inlined
                                    run.decisions.append(rule)
                                    run.enabled |= rule.mask
                                else:
                                    run._act(name, rule, False)
                            else:
                                run.after_match(st, found)
                if run.jump is not None:
                    index = run.after_jump(stages, index)
                if hooked:
                    if on_stage is not None:
                        run.index = index
                        await on_stage(name, sr, run)
                    await _after_stage(run, plan.termination, observers)
                # the stage's end stands in for the clock: rules take no measurable time
                if deadline is not None and started + elapsed * 0.001 >= deadline:
                    run.timed_out = True
                continue
            if st.pre_rules and not run.apply_rules(st, pre=True):
                run.stopped_before(st)
                index = run.after_jump(stages, index)
                continue
            if st.group is None:
                sr = await run.call(st)
                if sr.get("error") is not None and (st.stop_on_failure or plan.stop_on_failure):
                    run.terminated_by = f"failure of {name}"
                elif st.post_rules:
                    run.apply_rules(st)
                batch = None
            else:
                batch = await run.group(st, index)
            if run.jump is not None:
                index = run.after_jump(stages, index)
            if on_stage is not None:  # after the jump: a resumed run continues where this one would
                run.index = index
                if batch is None:
                    await on_stage(name, results[name], run)
                else:
                    for st in batch:
                        await on_stage(st.name, results[st.name], run)
            if hooked:
                await _after_stage(run, plan.termination, observers)
            if deadline is not None and not run.timed_out and _perf() >= deadline:
                run.timed_out = True
    except BaseException as exc:
        if observers is not None:  # observers that saw the run start see it end
            await observers.run_finished(plan.name, run_id, ctx, _perf() - run.t0, exc)
        raise
    if run.timed_out:
        run.skip_unreached(index)
    if finished is not None:
        finished.count += 1
    if observers is not None:
        return await run.report_finished(observers)
    return build_result(run, _perf() - run.t0)


async def _after_stage(run: _Run, termination: tuple[RulePlan, ...], obs: Observers | None) -> None:
    """Global termination conditions and the routing report, after a stage."""
    if termination and run.terminated_by is None:
        run.terminate_if(termination)
    if obs is not None and run._pending_routing:
        await run.report_routing(obs)


def _entry(item: Any, durations: bool) -> tuple[str, float, float, bool]:
    """A timeline entry from a checkpoint: (stage, started, time_ms, failed), or from a
    checkpoint written before durations were kept, (stage, started, ended, failed)."""
    name, started, third, failed = item
    return name, started, third if durations else (third - started) * 1000.0, failed


def _restore(run: _Run, state: dict[str, Any]) -> int:
    """Put a run back where a checkpoint left it; returns the next stage index."""
    ctx = run.ctx
    for name, value in state.get("stage_results", {}).items():
        ctx.stage_results[name] = StageResult(value)
    if "data" in state:
        ctx.data = state["data"]
    if "enabled" in state:
        run.enabled = run.plan.mask(state["enabled"])
    run.ok = run.results_mask(failed=False)
    run.cost = float(state.get("cost", 0.0))
    run.errors = list(state.get("errors", []))
    run.decisions = [dict(d) for d in state.get("decisions", [])]
    run.skipped = dict(state.get("skipped", {}))
    durations = state.get("timeline_format") == 2
    run.timeline = [_entry(item, durations) for item in state.get("timeline", [])]
    run.terminated_by = state.get("terminated_by")
    return int(state.get("index", 0))
