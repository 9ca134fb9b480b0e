"""`Cadence`: the fluent builder of flows.

```python
checkout = (
    Cadence("checkout", OrderScore(order_id="ORD-123"))
    .then("fetch_items", fetch_items)
    .sync("enrich", [fetch_profile, fetch_history])
    .split("route", is_premium, if_true=[express], if_false=[standard])
    .then("confirm", confirm)
)
score = await checkout.run()                 # runs on the score given above
score = await checkout.run(OrderScore("B"))  # or on a fresh score: one definition, many runs
```

The builder compiles to an immutable `runtime.FlowPlan` (cached until the next builder call);
`run` executes the plan. Runs share nothing but the plan, so a flow defined once may run any
number of times, concurrently, as long as each run gets its own score.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import inspect
import logging
import os
import sys
import uuid
import warnings
import weakref
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, cast

from cascadence.errors import CascadenceWarning, closest
from cascadence.flow.merge import MergeStrategy, apply_fields, merge_snapshots, strategy_merge
from cascadence.flow.note import note_parts
from cascadence.flow.score import ImmutableScore, Score, score_fields, snapshot, snapshots
from cascadence.hooks import CadenceHooks
from cascadence.runtime.durable import as_run_id
from cascadence.runtime.flow_runner import _FlowRun, assign_field
from cascadence.runtime.handlers import refused_call
from cascadence.runtime.invoke import mark_coroutine_function, to_async
from cascadence.runtime.observe import HOOK_METHODS, Observers, build_observers
from cascadence.runtime.plan import (
    BranchNode,
    ChildNode,
    FlowNode,
    FlowPlan,
    ParallelNode,
    StepNode,
)
from cascadence.runtime.threads import in_event_loop, run_blocking

if TYPE_CHECKING:
    from cascadence.cascade.engine import CascadeEngine
    from cascadence.checkpoint import CheckpointStore

__all__ = ["Cadence"]

_log = logging.getLogger("cascadence.flow")


S = TypeVar("S")
NoteFn: TypeAlias = "Callable[[S], Any] | CascadeEngine"
"""A step of a flow of `S` scores: a note taking the score, or a `CascadeEngine` (run on the
score's fields, its result stored in the score's field named as the step, when the score
declares one; in a list of notes the step name of a cascade is its config's name).
`Cadence.cascade` chooses where the input comes from and where the result goes."""


def _is_engine(fn: Any) -> bool:
    return hasattr(fn, "as_step") and hasattr(fn, "register_stage")


def _cascade_step(
    name: str,
    engine: Any,
    input: Callable[[Any], Any] | None = None,
    output: Callable[[Any, dict[str, Any]], Any] | None = None,
    *,
    declared_only: bool = False,
) -> StepNode:
    """A step running `engine` on the score; its result goes to `output(score, result)`, or
    by default to `score.<name>`. With `declared_only` (a cascade given as a plain step), the
    result is stored only in a field the score declares under that name (a frozen score is
    copied with it), and otherwise left out."""
    decide = engine.as_step(input=input)

    async def step(score: Any) -> Any:
        result = await decide(score)
        if output is not None:
            return output(score, result)
        if declared_only:
            if _declares(score, name):
                return assign_field(score, name, result)
            return None
        try:
            setattr(score, name, result)
        except AttributeError as exc:
            raise AttributeError(
                f"cascade step {name!r}: cannot store the result on the score ({exc}); "
                "pass output=lambda score, result: ..."
            ) from None
        return None

    step.__name__ = name
    return StepNode(name=name, fn=step, policy=note_parts(step)[1], is_cascade=True)


def _declares(score: Any, name: str) -> bool:
    """Whether `score` has a field (or, not being a dataclass, an attribute) called `name`."""
    if dataclasses.is_dataclass(score):
        return any(f.name == name for f in dataclasses.fields(score))
    return hasattr(score, name)


def _step(name: str, fn: Any) -> StepNode:
    if isinstance(fn, Cadence):
        raise TypeError(f"step {name!r}: use .child({name!r}, cadence, merge) to nest a flow")
    if _is_engine(fn):  # a CascadeEngine: its result goes to the score's field `name`, if any
        return _cascade_step(name, fn, declared_only=True)
    if not callable(fn):
        raise TypeError(f"step {name!r} must be a function, got {type(fn).__name__}: {fn!r}")
    raw, policy = note_parts(fn)
    _check_takes_score(name, raw)
    fallback = policy.fallback
    if (
        fallback is not None
        and fallback.field is None
        and fallback.factory is None
        and fallback.default is not None
        and not dataclasses.is_dataclass(fallback.default)
    ):
        warnings.warn(
            f"step {name!r}: its fallback value {fallback.default!r} goes nowhere: a flow keeps "
            f"what notes write to the score, so a failure is ignored and the value dropped; "
            f"to store it, name the field, as in "
            f"fallback={{'default': {fallback.default!r}, 'field': 'status'}}",
            CascadenceWarning,
            stacklevel=_outside_stacklevel(),
        )
    if (policy.retry is None and fallback is None) or policy.cache is not None:
        return StepNode(name=name, fn=to_async(raw), policy=policy)
    # each attempt on a view of the score: a failed attempt leaves nothing behind
    return StepNode(
        name=name, fn=to_async(raw), policy=policy, isolate=_attempt_view, commit=_commit_view
    )


def _attempt_view(score: Any) -> Any:
    """The copy-on-write view of the score one attempt of a retried note runs on."""
    if isinstance(score, (dict, list, set, bytearray)):
        return score  # not an object with attributes: attempts share it
    return snapshot(score)


def _commit_view(score: Any, view: Any) -> Any:
    """The score with what a successful attempt wrote to its view."""
    if view is score:
        return score
    return merge_snapshots(score, [view], MergeStrategy.LAST_WRITE_WINS)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _outside_stacklevel() -> int:
    """The `stacklevel` of the nearest caller outside cascadence (for warnings about the
    user's own line, however deep in the package the check runs)."""
    level = 1
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def _check_takes_score(name: str, fn: Callable[..., Any]) -> None:
    """A note is called with the score alone: refuse one that cannot be (found now, not on
    the first run). Functions that passed are remembered: flows built per request check
    each once."""
    try:
        if fn in _TAKES_SCORE:
            return
    except TypeError:  # unhashable, or no weak reference to it: check it every time
        pass
    refused = refused_call(fn, 1)
    if refused is not None:
        shown = getattr(fn, "__name__", type(fn).__name__)
        raise TypeError(
            f"step {name!r}: {shown}{refused[0]} cannot be called with the score alone; a note "
            "takes one argument, the score (read anything else from it or bind it with "
            "functools.partial)"
        )
    with contextlib.suppress(TypeError):
        _TAKES_SCORE.add(fn)


_TAKES_SCORE: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


def _steps(items: Any) -> tuple[StepNode, ...]:
    if isinstance(items, (str, bytes)):
        raise TypeError(f"notes must be a list of functions, got {type(items).__name__}: {items!r}")
    if callable(items) and not isinstance(items, (list, tuple)):
        items = [items]
    return tuple(_step(_step_name(fn, i), fn) for i, fn in enumerate(items))


def _step_name(fn: Any, index: int) -> str:
    """The name of a step given without one: the function's name, a cascade's name."""
    if _is_engine(fn):
        return str(fn.config.name)
    return str(getattr(fn, "__name__", f"task_{index}"))


def _merger(strategy: Any) -> tuple[Callable[[Any, list[Any]], Any], str]:
    if callable(strategy) and not isinstance(strategy, MergeStrategy):

        def custom(base: Any, snaps: list[Any]) -> Any:
            return strategy(base, snaps)

        return custom, getattr(strategy, "__name__", "custom")
    chosen = MergeStrategy(strategy) if strategy is not None else MergeStrategy.SMART
    return strategy_merge(chosen), chosen.name.lower()


def _condition(
    flow: str, name: str, condition: Any, score: Any
) -> tuple[Callable[[Any], Any], str]:
    """The test of split `name` of flow `flow`, and its label. A condition of the condition
    language is checked against the fields of `score` (the flow's own score, or None)."""
    if callable(condition):
        return condition, getattr(condition, "__name__", "condition")
    if isinstance(condition, (str, Mapping)):
        from cascadence.conditions import compile_condition, to_expression

        compiled = compile_condition(condition)
        text = condition if isinstance(condition, str) else to_expression(compiled.node)
        if score is not None:
            _check_condition_fields(name, text, compiled.fields, score)
        test = compiled.fn

        def check(score: Any) -> bool:
            # a type mismatch is false, as for any input; the evaluator says which, and the
            # flow's log shows it (a field the score lacks is false without a word)
            found: list[Any] = []
            result = test(score, None, found)
            if found:
                _log.warning(
                    "flow %r, split %r: condition %r: %s",
                    flow,
                    name,
                    text,
                    "; ".join(f"{w.path}: {w.message}" for w in found),
                )
            return result

        label = condition if isinstance(condition, str) else name
        return check, label
    raise TypeError(
        f"split {name!r}: condition must be a callable of the score or a condition "
        f"(expression string or dict), got {type(condition).__name__}"
    )


def _check_condition_fields(name: str, text: str, paths: Iterable[str], score: Any) -> None:
    """Refuse a condition of split `name` that reads a field the class of `score` (a
    dataclass) does not have: it would be false on every run. A field is one the dataclass
    declares, an attribute or property of the class, or an attribute the score has when the
    flow is built (set in `__post_init__`, say). Mapping scores are not checked."""
    if isinstance(score, (Mapping, type)) or not dataclasses.is_dataclass(score):
        return
    from cascadence.conditions.compiler import field_path

    cls = cast(type, score.__class__)  # a snapshot stands for its score class
    names = [f.name for f in dataclasses.fields(score)]
    known = set(names)
    instance = getattr(score, "__dict__", None)
    if isinstance(instance, dict):
        extra = [k for k in instance if isinstance(k, str) and not k.startswith("_")]
        names += [k for k in extra if k not in known]
        known.update(extra)
    for path in sorted(paths):
        segments = field_path(path)
        if not segments or segments[0] in known or hasattr(cls, segments[0]):
            continue
        raise _unknown_field(
            f"split {name!r}: condition {text!r} reads",
            segments[0],
            cls,
            names,
            f"; a field the score lacks is always false: declare it on {cls.__name__} (notes "
            "may then set it), or test the score with a function",
        )


def _unknown_field(
    what: str, field_name: str, cls: type, names: Sequence[str], advice: str = ""
) -> ValueError:
    """The error for a field `cls` does not have, with the closest of its `names`."""
    hint = closest(field_name, names)
    return ValueError(
        f"{what} field {field_name!r}, which {cls.__name__} does not have"
        + (f"; did you mean {hint!r}?" if hint else "")
        + f" (fields: {', '.join(names) or 'none'})"
        + advice
    )


def _check_declared(cls: type) -> None:
    """Refuse a score class declared in a way that cannot work as the user means: a field
    with a mutable default (a list, dict or set) declared without `@dataclass`, which is one
    class attribute that every score and every run would share; or an `ImmutableScore`
    that is not frozen."""
    if cls in _DECLARED_WELL or not issubclass(cls, Score):
        return
    fields = getattr(cls, "__dataclass_fields__", {})
    for klass in cls.__mro__:
        if klass is Score or klass is ImmutableScore:
            break
        if "__dataclass_fields__" in klass.__dict__ or "__init__" in klass.__dict__:
            continue  # a dataclass, or a class that sets up its own instances
        shared = [
            name
            for name, kind in inspect.get_annotations(klass).items()
            if name not in fields
            and "ClassVar" not in str(kind)
            and isinstance(klass.__dict__.get(name), (list, dict, set))
        ]
        if shared:
            raise TypeError(
                f"{klass.__qualname__} declares {', '.join(shared)} with a mutable default but "
                "is not a dataclass: the value is one class attribute that every score and "
                "every run would share; decorate the class with @dataclass and use "
                "field(default_factory=...)"
            )
    if issubclass(cls, ImmutableScore):
        params = getattr(cls, "__dataclass_params__", None)
        if params is not None and not params.frozen:
            raise TypeError(
                f"{cls.__qualname__} is an ImmutableScore, so declare it with "
                "@dataclass(frozen=True); as declared, notes could change it in place"
            )
    _DECLARED_WELL.add(cls)


_DECLARED_WELL: weakref.WeakSet[type] = weakref.WeakSet()


def _fallback_fields(nodes: Sequence[FlowNode]) -> list[tuple[str, str]]:
    """(step, field) for every score field the steps' fallbacks write. Child flows have
    scores of their own and are not looked into."""
    used: list[tuple[str, str]] = []
    steps = list(nodes)
    while steps:
        step = steps.pop()
        if isinstance(step, StepNode):
            fallback = step.policy.fallback
            if fallback is not None and fallback.field is not None:
                used.append((step.name, fallback.field))
        elif isinstance(step, ParallelNode):
            steps.extend(step.tasks)
        elif isinstance(step, BranchNode):
            steps.extend(step.if_true + step.if_false)
    return used


def _fresh(template: Any) -> Any:
    return copy.deepcopy(template)


def _fits(parent: Any, child: Any) -> bool:
    """Whether a child's score can be merged back into `parent` field by field: it is of the
    parent's class (or of a class the parent's derives from)."""
    return isinstance(parent, child.__class__)


def _needs_merge(step: str, flow: str, parent: Any, child: Any) -> str:
    parent_cls = parent.__class__.__name__
    return (
        f"child {step!r}: flow {flow!r} runs on a {child.__class__.__name__} score, not on "
        f"this flow's {parent_cls}, so its results cannot be merged back field by field; pass "
        f"merge=fn, a function (parent_score, child_score) -> None or a new {parent_cls} "
        "score, that takes what this flow needs from the child's final score"
    )


def _merge_back(step: str, flow: str) -> Callable[[Any, Any], Any]:
    """The merge of a child step given without one: the child's final score's fields
    replace the parent's (a frozen parent score is replaced by a copy with them)."""

    def merge_back(parent: Any, child: Any) -> Any:
        if child is parent:
            return None
        if not _fits(parent, child):
            raise TypeError(_needs_merge(step, flow, parent, child))
        if isinstance(child, Mapping):
            parent.update(child)
            return None
        if dataclasses.is_dataclass(child):
            values = {f.name: getattr(child, f.name) for f in dataclasses.fields(child)}
        elif isinstance(getattr(child, "__dict__", None), dict):
            values = dict(vars(child))
        else:
            raise TypeError(
                f"child {step!r}: a {child.__class__.__name__} score is neither a dataclass, a "
                "mapping nor an object with attributes, so it cannot be merged back field by "
                "field; pass merge=fn, a function (parent_score, child_score) -> None or a new "
                "parent score"
            )
        params = getattr(parent.__class__, "__dataclass_params__", None)
        if params is not None and params.frozen and type(parent) is type(child):
            return child
        return apply_fields(parent, values)

    merge_back.__name__ = "merge_back"
    return merge_back


class Cadence(Generic[S]):
    """A flow of notes over a score.

    Args:
        name: The flow's name (in events, metrics, traces and diagrams).
        score: The score `run()` uses when it is given none.
    """

    def __init__(self, name: str, score: S | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a Cadence's name comes first and is a non-empty string, got {name!r}")
        self.name = name
        self.score = score
        self._nodes: list[FlowNode] = []
        self._hooks: list[Any] = []
        self._reporters: list[Any] = []
        self._on_error: Callable[[Any, Exception], Any] | None = None
        self._stop_on_error = True
        self._checkpoint: CheckpointStore | None = None
        self._run_id: str | None = None
        self._lease_seconds = 60.0
        self._plan: FlowPlan | None = None
        self._observers: Observers | None = None
        self._names: set[str] = set()
        self._children: list[tuple[int, Cadence[Any]]] = []  # (node index, child flow)
        self._checked: set[type] = set()  # score classes given to `run` whose fields fit

    # -- building -------------------------------------------------------------------------
    def _add(self, node: FlowNode) -> Cadence[S]:
        if not isinstance(node.name, str) or not node.name:
            raise TypeError(
                f"a step's name comes first and is a non-empty string (it keys checkpoints and "
                f"metrics), got {type(node.name).__name__}: {node.name!r}"
            )
        if node.name in self._names:
            raise ValueError(
                f"flow {self.name!r} already has a step named {node.name!r}; step names are "
                "unique (they key checkpoints and metrics)"
            )
        if self.score is not None:
            self._check_fields(type(self.score), [node])
        self._names.add(node.name)
        self._nodes.append(node)
        self._checked.clear()  # scores given to `run` are checked against the new step too
        self._plan = None
        return self

    def _check_fields(self, cls: type, nodes: Sequence[FlowNode]) -> None:
        """A fallback that writes a field the score class does not have is a typo: refuse it
        rather than add a stray attribute to every score at run time."""
        _check_declared(cls)
        used = _fallback_fields(nodes)
        if not used or not dataclasses.is_dataclass(cls):
            return
        names = [f.name for f in dataclasses.fields(cls)]
        for step_name, field_name in used:
            if field_name not in names and not hasattr(cls, field_name):
                raise _unknown_field(
                    f"step {step_name!r}: its fallback writes", field_name, cls, names
                )

    def _check_score_class(self, cls: type) -> None:
        """Check every step against the class of a score given to `run` (once per class)."""
        self._check_fields(cls, self._nodes)
        self._checked.add(cls)

    def then(self, name: str, fn: NoteFn[S]) -> Cadence[S]:
        """Run `fn(score)` next."""
        return self._add(_step(name, fn))

    def sequence(self, name: str, notes: Sequence[NoteFn[S]]) -> Cadence[S]:
        """Run several notes one after another, as one named step."""
        steps = _steps(notes)
        return self._add(
            BranchNode(
                name=name, condition=lambda _s: True, if_true=steps, if_false=(), label="sequence"
            )
        )

    def sync(
        self,
        name: str,
        notes: Sequence[NoteFn[S]],
        merge: MergeStrategy | str | Callable[[Any, list[Any]], Any] | None = None,
        *,
        merge_strategy: MergeStrategy | str | Callable[[Any, list[Any]], Any] | None = None,
    ) -> Cadence[S]:
        """Run notes concurrently, each on an isolated snapshot of the score, then merge.

        Each note runs in its own copy of the context and, from its first line, in an asyncio
        task that is its own to its end. A note that finishes without suspending leaves that
        task object to the next note (no task is made for it): per-task state it leaves behind
        (a done callback on `asyncio.current_task()`, a registry keyed by the current task) is
        seen by the next note. The first failure cancels the notes still running; a `Skip` is
        not a failure. A group is all or nothing: when a note fails, no note's snapshot is
        merged, so a handler that lets the flow go on (`on_error(..., stop=False)`) goes on
        with the score as it was before the group (as a retried note's failed attempts leave
        nothing behind).

        Args:
            name: The group's name.
            notes: The notes to run together.
            merge: How to merge the snapshots back: a `MergeStrategy` (default `SMART`:
                lists merge by position keeping every task's additions, dicts merge by key,
                other fields take the last writer by task order), or a function
                `(score, snapshots) -> None`.
            merge_strategy: Another name for `merge` (give one of the two).
        """
        if not notes:
            raise ValueError(f"sync {name!r} needs at least one note")
        if merge_strategy is not None:
            if merge is not None:
                raise TypeError(
                    f"sync {name!r}: give the merge as merge= or as merge_strategy=, not both"
                )
            merge = merge_strategy
        merger, label = _merger(merge)
        return self._add(
            ParallelNode(
                name=name, tasks=_steps(notes), snapshots=snapshots, merge=merger, merge_label=label
            )
        )

    def split(
        self,
        name: str,
        condition: Callable[[S], Any] | str | Mapping[str, Any],
        if_true: Sequence[NoteFn[S]] | NoteFn[S] = (),
        if_false: Sequence[NoteFn[S]] | NoteFn[S] = (),
    ) -> Cadence[S]:
        """Branch: run `if_true` when `condition(score)` holds, else `if_false`.

        `condition` is a function of the score (sync or async) or a condition of the condition
        language over the score's fields, such as `"total > 100 and tier == 'gold'"`.

        For a condition of the language on a flow whose score is a dataclass, every field it
        reads must be one the score has (declared, a class attribute or property, or set when
        the flow's score was made, in `__post_init__` say): another name raises `ValueError`
        here, naming the closest field. At run time a test whose value has the wrong type
        (`"name > 5"` with a str `name`) is false and logged as a warning on the
        `cascadence.flow` logger, with the flow, the split and the mismatch.
        """
        check, label = _condition(self.name, name, condition, self.score)
        return self._add(
            BranchNode(
                name=name,
                condition=check,
                if_true=_steps(if_true),
                if_false=_steps(if_false),
                label=label,
            )
        )

    def child(
        self,
        name: str,
        cadence: Cadence[Any],
        merge: Callable[[Any, Any], Any] | None = None,
        *,
        score: Callable[[Any], Any] | None = None,
    ) -> Cadence[S]:
        """Run another flow as one step and merge its final score into this one.

        Without `merge`, the child's score must be of the parent score's class: its fields, as
        the child flow left them, replace the parent's, field by field. A child flow on a
        score of another class needs a `merge` function; `.child` refuses it without one
        (when both flows have their own scores; otherwise the step fails when it runs).

        Args:
            name: The step name.
            cadence: The child flow.
            merge: `merge(parent_score, child_score) -> None or a new parent score`: takes
                what the parent needs from the child's final score (sync or async). A
                returned score must be of the parent score's class; anything else but None
                fails the step with a `TypeError`.
            score: Builds the child's score from the parent's; default: a deep copy of the
                child flow's own score, fresh for every run.

        Raises:
            TypeError: No `merge`, and the child flow's score is not of the class of this
                flow's score.
        """
        if cadence is self:
            raise ValueError(f"flow {self.name!r} cannot be its own child")
        if not isinstance(cadence, Cadence):
            raise TypeError(
                f"child {name!r} needs a Cadence flow, got {type(cadence).__name__}; a function "
                f"is a step: .then({name!r}, fn)"
            )
        for what, value in (("merge", merge), ("score", score)):
            if value is not None and not callable(value):
                raise TypeError(
                    f"child {name!r}: {what} must be a function, got {type(value).__name__}"
                )
        template = cadence.score
        if score is not None:
            factory = score
        else:
            if template is None:
                raise ValueError(
                    f"child {name!r}: flow {cadence.name!r} has no score; "
                    "give it one or pass score="
                )

            def factory(_parent: Any) -> Any:
                return _fresh(template)

        if merge is None:
            if score is None and self.score is not None and not _fits(self.score, template):
                raise TypeError(_needs_merge(name, cadence.name, self.score, template))
            merge = _merge_back(name, cadence.name)
        plan = cadence._build_plan((self,))  # refuses a child that contains this flow
        own = cadence._observers
        self._add(ChildNode(name=name, plan=plan, factory=factory, merge=merge, observers=own))
        self._children.append((len(self._nodes) - 1, cadence))  # its plan is read at run time
        return self

    def cascade(
        self,
        name: str,
        engine: Any,
        *,
        input: Callable[[Any], Any] | None = None,
        output: Callable[[Any, dict[str, Any]], Any] | None = None,
    ) -> Cadence[S]:
        """Run a `CascadeEngine` as one step.

        Args:
            name: The step name.
            engine: The cascade engine.
            input: Builds the cascade input from the score (default: the score's fields).
            output: Stores the cascade result in the score (default: `score.<name> = result`).
        """
        return self._add(_cascade_step(name, engine, input, output))

    def on_error(self, handler: Callable[[S, Exception], Any], stop: bool = True) -> Cadence[S]:
        """Call `handler(score, error)` when a step fails; the error is then handled.

        With `stop=False` the flow goes on with the next step; with `stop=True` (default) it
        stops there: the steps after the failed one do not run, and `run()` returns the score
        as the handler left it. An error the handler raises propagates. Without `.on_error`,
        a failed step's error propagates from `run()`.
        """
        if not callable(handler):
            raise TypeError(
                f"on_error needs a function handler(score, error), got {type(handler).__name__}"
            )
        if not isinstance(stop, bool):
            raise TypeError(f"on_error: stop is True or False, got {stop!r}")
        if self._on_error is not None:
            raise ValueError(
                f"flow {self.name!r} already has an error handler "
                f"{getattr(self._on_error, '__name__', self._on_error)!r}: .on_error applies "
                "to every step of the flow and is set once; handle each kind of error in it"
            )
        self._on_error = handler
        self._stop_on_error = stop
        self._plan = None
        return self

    def with_hooks(self, hooks: Any) -> Cadence[S]:
        """Attach hooks: a `CadenceHooks` (or `EventEmitter`), or a list of them."""
        items = list(hooks) if isinstance(hooks, (list, tuple)) else [hooks]
        for item in items:
            if not isinstance(item, CadenceHooks) and not any(
                callable(getattr(item, hook, None)) for hook in HOOK_METHODS
            ):
                hint = (
                    "; a function receiving every event is a reporter: use .with_reporter(fn)"
                    if callable(item)
                    else ""
                )
                raise TypeError(
                    f"with_hooks needs CadenceHooks objects or EventEmitters, got "
                    f"{type(item).__name__}{hint}"
                )
        self._hooks.extend(items)
        self._observers = build_observers(self._hooks, self._reporters, "cadence")
        return self

    def with_reporter(self, reporter: Callable[[Any], Any]) -> Cadence[S]:
        """Attach a reporter callable that receives every `CadenceEvent`."""
        if not callable(reporter):
            raise TypeError(
                f"a reporter is a callable taking each CadenceEvent, got {type(reporter).__name__}"
            )
        self._reporters.append(reporter)
        self._observers = build_observers(self._hooks, self._reporters, "cadence")
        return self

    def with_checkpoint(
        self,
        store: CheckpointStore | str,
        run_id: str | uuid.UUID | int | None = None,
        *,
        lease_seconds: float = 60.0,
    ) -> Cadence[S]:
        """Record each finished step in `store` (a store, or a URL for `store_from_url`), so a
        re-run with the same `run_id` resumes.

        A re-run skips the steps that finished and continues from the first one that did not;
        a run that completed returns its stored score without running anything. While a run is
        in progress its process holds a lease on the run id (renewed in the background); a
        second process starting the same run id gets `RunLockedError` while the owner runs. If
        the owner died, a process on the same host takes the run over at once; one on another
        host when the lease expires, `lease_seconds` after the owner's last renewal.
        """
        if isinstance(store, str):  # a store URL: sqlite:///runs.db, redis://..., memory://
            from cascadence.checkpoint import store_from_url

            store = store_from_url(store)
        elif not callable(getattr(store, "acquire", None)):
            raise TypeError(
                f"with_checkpoint needs a CheckpointStore or a store URL such as "
                f"'sqlite:///runs.db', got {type(store).__name__}; to keep runs in a backend "
                "of your own, subclass cascadence.checkpoint.KeyValueCheckpointStore and "
                "implement read, write, remove and keys (docs/checkpoints.md)"
            )
        self._checkpoint = store
        self._run_id = as_run_id(run_id)
        self._lease_seconds = lease_seconds
        return self

    # -- compiled form --------------------------------------------------------------------
    @property
    def plan(self) -> FlowPlan:
        """The compiled, immutable plan of this flow.

        Child flows are read as they are now: steps and hooks added to a child after
        `.child(...)` are part of the plan.

        Raises:
            ValueError: The flow contains itself through its child flows.
        """
        if self._plan is not None and not self._children:
            return self._plan
        return self._build_plan(())

    def _build_plan(self, within: tuple[Cadence[Any], ...]) -> FlowPlan:
        if self in within:
            chain = " -> ".join(f.name for f in (*within, self))
            raise ValueError(f"flow {self.name!r} contains itself through child flows: {chain}")
        for index, child in self._children:
            fresh = child._build_plan((*within, self))
            node = self._nodes[index]
            assert isinstance(node, ChildNode)
            if node.plan is not fresh or node.observers is not child._observers:
                self._nodes[index] = dataclasses.replace(
                    node, plan=fresh, observers=child._observers
                )
                self._plan = None
        if self._plan is None:
            self._plan = FlowPlan(
                name=self.name,
                nodes=tuple(self._nodes),
                on_error=self._on_error,
                stop_on_error=self._stop_on_error,
            )
        return self._plan

    @property
    def steps(self) -> list[str]:
        """Names of the top-level steps, in order."""
        return [n.name for n in self._nodes]

    # -- running --------------------------------------------------------------------------
    def run(
        self, score: S | None = None, *, run_id: str | uuid.UUID | int | None = None
    ) -> Coroutine[Any, Any, S]:
        """Run the flow and return the final score (a coroutine function: `await flow.run()`).

        The checkpoint store and run id are those set when `run` is called, so
        `flow.with_checkpoint(store, run_id=key).run(score)` started for several keys at once
        runs each under its own key.

        Args:
            score: This run's score; default: the score given to the constructor (which is
                then mutated in place). Pass a fresh score per run to run one definition
                many times or concurrently.
            run_id: Overrides the checkpoint run id given to `with_checkpoint`.

        Raises:
            NoteError: A step failed (`TimeoutError`, `RetryExhaustedError` and
                `CircuitOpenError` are its kinds). `ParallelNoteError` for a `.sync` task.
        """
        # An async method in all but name (marked as a coroutine function below): the common
        # call returns the run's own coroutine, one frame less per run.
        current = score if score is not None else self.score
        if self._checkpoint is None and current is not None and type(current) in self._checked:
            return _FlowRun(self.plan, self._observers, as_run_id(run_id)).run(current)
        return self._run(current, run_id, self._checkpoint, self._run_id, self._lease_seconds)

    async def _run(
        self,
        current: S | None,
        run_id: str | uuid.UUID | int | None,
        store: CheckpointStore | None,
        default_run_id: str | None,
        lease_seconds: float,
    ) -> S:
        if current is None:
            raise ValueError(
                f"flow {self.name!r} has no score: pass one to Cadence(name, score) or run(score)"
            )
        if type(current) not in self._checked:
            self._check_score_class(type(current))
        if store is not None:
            from cascadence.flow.durable import run_durable

            rid = as_run_id(run_id) or as_run_id(default_run_id) or uuid.uuid4().hex
            result: S = await run_durable(self, current, store, rid, lease_seconds=lease_seconds)
            return result
        final: S = await _FlowRun(self.plan, self._observers, as_run_id(run_id)).run(current)
        return final

    def run_sync(self, score: S | None = None, *, run_id: str | uuid.UUID | int | None = None) -> S:
        """`run` from synchronous code; refuses to run inside a running event loop."""
        if not in_event_loop():
            return run_blocking(self.run(score, run_id=run_id))
        raise RuntimeError(
            "run_sync() cannot be called from a running event loop; use `await run()`"
        )

    async def run_many(self, scores: Iterable[S], *, concurrency: int = 100) -> list[S]:
        """Run the flow once per score, at most `concurrency` at a time; results in order."""
        sem = asyncio.Semaphore(concurrency)

        async def one(s: S) -> S:
            async with sem:
                return await self.run(s)

        return list(await asyncio.gather(*(one(s) for s in scores)))

    # -- composition ----------------------------------------------------------------------
    def as_stage_handler(
        self,
        score: Callable[[Any], Any] | None = None,
        result: Callable[[Any], Any] | None = None,
    ) -> Callable[[Any], Any]:
        """This flow as a cascade stage handler.

        Args:
            score: Builds a score from the stage's `ExecutionContext` (default: the flow's
                score type filled from the input's matching fields).
            result: Turns the final score into the stage result (default: its `result`,
                `confidence` and `data` fields when present, else all fields as `data`).
        """
        make = score or self._score_from_context
        to_result = result or _stage_result

        async def handler(context: Any) -> Any:
            final = await self.run(make(context))
            return to_result(final)

        handler.__name__ = self.name
        return handler

    def _score_from_context(self, context: Any) -> Any:
        template = self.score
        if template is None:
            raise ValueError(f"flow {self.name!r} has no score to build stage runs from")
        data = getattr(context, "data", context)
        fresh = _fresh(template)
        if dataclasses.is_dataclass(fresh) and isinstance(data, Mapping):
            for f in dataclasses.fields(fresh):
                if f.name in data:
                    object.__setattr__(fresh, f.name, data[f.name])
        return fresh

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of this flow."""
        from cascadence.diagrams import to_mermaid

        return to_mermaid(self)

    def to_dot(self) -> str:
        """A Graphviz DOT digraph of this flow."""
        from cascadence.diagrams import to_dot

        return to_dot(self)

    def __repr__(self) -> str:
        return f"Cadence({self.name!r}, steps={self.steps})"


mark_coroutine_function(Cadence.run)


def _stage_result(score: Any) -> Any:
    fields = score_fields(score)
    if isinstance(fields, dict) and "result" in fields:
        data = fields.get("data")
        if not isinstance(data, dict):  # no `data` field of its own: the other fields are
            data = {k: v for k, v in fields.items() if k not in ("result", "confidence")}
        return {"result": fields["result"], "confidence": fields.get("confidence"), "data": data}
    return {"result": fields, "data": fields if isinstance(fields, dict) else {}}
