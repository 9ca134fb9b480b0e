"""Patterns and the `PatternExtractor` that finds them in recorded cascade runs.

A `Pattern` says: "when this condition holds after stage `T`, the cascade's later stages end in
decision `D`, with precision `confidence` over `support` held-out runs". Migrating it means
adding a rule after `T` that decides `D` at once (see `RuleGenerator`). A pattern of runs that
`T` decided itself (`Pattern.self_decided`) says which inputs `T` decides `D`: its rule goes
before `T`, so those runs never pay for `T`.

```python
extractor = PatternExtractor()
for data in workload:
    extractor.observe(data, await engine.execute(data))
candidates = extractor.get_migration_candidates(min_confidence=0.99, min_samples=100)
```
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import warnings
from collections import deque
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from cascadence.conditions import compile_condition, to_expression
from cascadence.conditions import parse_condition as _parse
from cascadence.errors import CascadenceWarning, closest
from cascadence.learning.features import REASONING_FIELDS
from cascadence.learning.mining import (
    MinedRule,
    MiningSettings,
    mine_stage,
    stage_order,
    stage_shares,
    unit_costs,
)
from cascadence.learning.records import DEFAULT_DECISION_FIELD, ExecutionRecord, decision_of
from cascadence.runtime.clock import SYSTEM_CLOCK, Clock
from cascadence.runtime.context import ExecutionContext
from cascadence.runtime.result import RUN_LINKS, StageResult, run_of

__all__ = ["Pattern", "PatternExtractor", "PatternType"]

_UNSET: Any = object()
_COST_KEYS = ("cost", "time_ms", "cached")
"""What is kept of a stage's result when that stage decided the run itself (its cost)."""
_REMINE_GROWTH = (0.25, 2000, 0.5)
"""`learn_from_failure` mines a stage again once its runs have grown by a quarter, and by half
from 2,000 runs on: often while mining is cheap, at a bounded cost per call later on."""


class PatternType(str, Enum):
    """What kind of regularity a pattern captures."""

    def __str__(self) -> str:  # the value, as in f-strings and logs, on every Python version
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    THRESHOLD = "THRESHOLD"
    """One feature against a cut point or a set of values (`amount >= 10000`)."""
    CORRELATION = "CORRELATION"
    """A combination of features (`new_user and high_amount and night_time`)."""
    REASONING = "REASONING"
    """Found by following a phrase of an expensive stage's free-text reasoning."""
    TEMPORAL = "TEMPORAL"
    """Time of day, weekday or weekend only (`weekend transactions`)."""
    BEHAVIORAL = "BEHAVIORAL"
    """Frequencies and sequences only (`3 attempts in 1 hour`)."""


@dataclass(frozen=True)
class Pattern:
    """A condition under which a cascade's later stages reach one decision.

    Attributes:
        id: Stable identifier, derived from the stage, condition and decision.
        pattern_type: The kind of pattern.
        target_stage: The stage a rule for it goes after (where the decision can move to).
        source_stage: The stage that made the decision on most matched runs.
        condition: The structured condition (condition language).
        decision: The decision reached when the condition holds.
        confidence: Precision on held-out runs: share of matched runs with that decision.
        support: Held-out runs matched.
        coverage: Share of the held-out runs reaching `target_stage` that match.
        population: Held-out runs reaching `target_stage`.
        base_rate: Share of `decision` among those runs.
        lower_bound: Wilson lower bound of `confidence` used to reject noise.
        train_confidence: Precision on the training runs it was found on.
        train_support: Training runs matched.
        features: Paths the condition reads.
        stage_order: The cascade's stages in the order runs took them.
        stage_share: For matched runs, the share that ran each stage.
        stage_cost: For matched runs, each stage's mean cost when it ran.
        population_stage_share: The same share over all runs reaching `target_stage`.
        population_stage_cost: The same mean costs over all runs reaching `target_stage`.
        decision_field: The field a generated rule writes the decision to.
        evidence: Extra facts: `lift`, and for REASONING patterns `phrase` and `phrase_stage`.
        created_at: Wall-clock time the pattern was found.
        stage_unit_cost: Each stage's cost when it ran in full: the most a run reaching
            `target_stage` spent on it (a result served from the cache costs nothing, and
            pulls the mean costs down, not this).
        self_decided: Most matched runs were decided by `target_stage` itself, with no later
            stage (`learn_from_failure` given no later stage's result): the pattern says what
            `target_stage` decides, and its rule goes *before* that stage (a precondition),
            so matched runs skip it. `source_stage` is then `target_stage`.
    """

    id: str
    pattern_type: PatternType
    target_stage: str
    source_stage: str
    condition: dict[str, Any]
    decision: Any
    confidence: float
    support: int
    coverage: float
    population: int
    base_rate: float
    lower_bound: float
    train_confidence: float
    train_support: int
    features: tuple[str, ...]
    stage_order: tuple[str, ...]
    stage_share: dict[str, float]
    stage_cost: dict[str, float]
    population_stage_share: dict[str, float]
    population_stage_cost: dict[str, float]
    decision_field: str = DEFAULT_DECISION_FIELD
    evidence: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    stage_unit_cost: dict[str, float] = field(default_factory=dict)
    self_decided: bool = False

    __hash__ = None  # type: ignore[assignment]

    @property
    def expression(self) -> str:
        """The condition as one expression string."""
        return to_expression(_parse(self.condition))

    @property
    def samples(self) -> int:
        """Held-out runs matched (same as `support`)."""
        return self.support

    def cost_through(self, stage: str, costs: Mapping[str, float] | None = None) -> float:
        """Mean cost per matched run of the stages up to and including `stage`."""
        return self._cost(self.stage_share, self.stage_cost, costs, stop=stage)

    @property
    def avg_cost(self) -> float:
        """Mean cost of a matched run as the cascade runs today."""
        return self._cost(self.stage_share, self.stage_cost, None, stop=None)

    def cost_before(self, stage: str, costs: Mapping[str, float] | None = None) -> float:
        """Mean cost per matched run of the stages that run before `stage`."""
        return self.cost_through(stage, {**(costs or {}), stage: 0.0})

    @property
    def avg_saved_cost(self) -> float:
        """Mean cost a matched run would save if decided after `target_stage` (before it, for
        a `self_decided` pattern)."""
        if self.self_decided:
            return self.avg_cost - self.cost_before(self.target_stage)
        return self.avg_cost - self.cost_through(self.target_stage)

    @property
    def population_avg_cost(self) -> float:
        """Mean cost of a run reaching `target_stage`, as the cascade runs today."""
        return self._cost(self.population_stage_share, self.population_stage_cost, None, None)

    def _cost(
        self,
        share: Mapping[str, float],
        cost: Mapping[str, float],
        override: Mapping[str, float] | None,
        stop: str | None,
    ) -> float:
        total = 0.0
        for name in self.stage_order:
            unit = override[name] if override and name in override else cost.get(name, 0.0)
            total += share.get(name, 0.0) * unit
            if name == stop:
                break
        return total

    @property
    def description(self) -> str:
        """One readable sentence."""
        # a stage that decided its runs itself (learn_from_failure with no later stage)
        where = "" if self.source_stage == self.target_stage else f"after {self.target_stage}, "
        return (
            f"{where}when {self.expression}: {self.source_stage} decides "
            f"{self.decision!r} ({self.confidence:.1%} of {self.support} held-out runs, "
            f"{self.coverage:.1%} of runs reaching {self.target_stage})"
        )

    def matches(self, data: Any, stages: Mapping[str, Any] | None = None) -> bool:
        """Whether the condition holds for an input and the stage results so far."""
        return bool(compile_condition(self.condition).fn(data, stages or {}, None))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; `Pattern.from_dict(p.to_dict()) == p`."""
        return {
            "id": self.id,
            "pattern_type": self.pattern_type.value,
            "target_stage": self.target_stage,
            "source_stage": self.source_stage,
            "condition": self.condition,
            "decision": self.decision,
            "confidence": self.confidence,
            "support": self.support,
            "coverage": self.coverage,
            "population": self.population,
            "base_rate": self.base_rate,
            "lower_bound": self.lower_bound,
            "train_confidence": self.train_confidence,
            "train_support": self.train_support,
            "features": list(self.features),
            "stage_order": list(self.stage_order),
            "stage_share": dict(self.stage_share),
            "stage_cost": dict(self.stage_cost),
            "population_stage_share": dict(self.population_stage_share),
            "population_stage_cost": dict(self.population_stage_cost),
            "decision_field": self.decision_field,
            "evidence": dict(self.evidence),
            "created_at": self.created_at,
            "stage_unit_cost": dict(self.stage_unit_cost),
            "self_decided": self.self_decided,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pattern:
        """Rebuild a pattern from `to_dict()` output."""
        values = dict(data)
        values["pattern_type"] = PatternType(values["pattern_type"])
        values["features"] = tuple(values.get("features", ()))
        values["stage_order"] = tuple(values.get("stage_order", ()))
        return cls(**values)


def pattern_id(
    stage: str, condition: Mapping[str, Any], decision: Any, *, before: bool = False
) -> str:
    """A stable id: the same stage, condition and decision always give the same id (another
    one for a rule `before` the stage, so its rule's name differs from one after it)."""
    key: list[Any] = [stage, condition, decision]
    if before:
        key.append("before")
    text = json.dumps(key, sort_keys=True, default=str)
    return "pat_" + hashlib.sha1(text.encode()).hexdigest()[:10]


def _classify(rule: MinedRule) -> PatternType:
    if rule.phrase is not None:
        return PatternType.REASONING
    paths = {lit.path for lit in rule.literals}
    families = {lit.family for lit in rule.literals}
    if families == {"temporal"}:
        return PatternType.TEMPORAL
    if families == {"behavioral"}:
        return PatternType.BEHAVIORAL
    if len(paths) == 1:
        return PatternType.THRESHOLD
    return PatternType.CORRELATION


_OWN_ARGUMENTS = ("decision_field", "holdout", "seed", "max_records", "clock")
_COUNTS: tuple[str, ...] = ("max_conditions", "beam_width", "n_cuts", "max_patterns")
_COUNTS += ("max_categories", "max_words", "max_phrases", "passes")
_PATH_LISTS = ("reasoning_fields", "temporal", "behavioral", "ignore")


def _check_options(options: dict[str, Any]) -> None:
    """Refuse unknown search options (naming the closest) and values the search cannot use;
    a single path given for a list of paths counts as a list of one."""
    known = set(MiningSettings.__dataclass_fields__) - {"min_confidence", "min_samples"}
    for name in options:
        if name in ("min_confidence", "min_samples"):
            raise TypeError(
                f"{name} is not a PatternExtractor option: pass it to "
                f"get_migration_candidates({name}=...)"
            )
        if name not in known:
            hint = closest(name, [*known, *_OWN_ARGUMENTS])
            raise TypeError(
                f"unknown PatternExtractor option {name!r}"
                + (f"; did you mean {hint!r}?" if hint else "")
            )
    for name in _COUNTS:
        value = options.get(name)
        if value is not None and (type(value) is not int or value < 1):
            raise ValueError(f"{name} is a whole number >= 1, got {value!r}")
    significance = options.get("significance")
    if significance is not None and not (
        isinstance(significance, (int, float)) and 0.0 < significance < 1.0
    ):
        raise ValueError(f"significance is a probability between 0 and 1, got {significance!r}")
    margin = options.get("train_margin")
    if margin is not None and not (isinstance(margin, (int, float)) and 0.0 <= margin < 1.0):
        raise ValueError(f"train_margin is a share from 0 up to 1 (exclusive), got {margin!r}")
    for name in _PATH_LISTS:
        if name in options:
            value = options[name]
            paths = (value,) if isinstance(value, str) else tuple(value)
            if not all(isinstance(path, str) and path for path in paths):
                raise TypeError(f"{name} is a list of field paths, got {value!r}")
            options[name] = paths


@dataclass(frozen=True, slots=True)
class _Found:
    """The patterns of one stage `learn_from_failure` answers with, until `due` runs."""

    thresholds: tuple[float, int]
    due: int
    tests: tuple[tuple[Pattern, Any], ...]


class PatternExtractor:
    """Learns, from recorded runs, decisions that expensive stages keep making for cheap reasons.

    Feed it runs with `observe(data, result)` (or `fit(runs)`), or stage by stage with the
    spec's `learn_from_failure` (which returns each run's pattern as soon as one is found),
    then ask for `get_migration_candidates`.

    Args:
        decision_field: The field learned rules write their decision to; a run's decision is
            read from it when set, else from its `final_result`.
        holdout: Share of runs kept aside to measure patterns (never used to find them).
        seed: Seed of the train / held-out draw, so the same runs give the same patterns.
        max_records: Keep only the latest runs (a sliding window); all when None.
        clock: Time source for `Pattern.created_at`.
        **options: Search settings, see `MiningSettings` (`max_conditions`, `beam_width`,
            `n_cuts`, `max_patterns`, `significance`, `train_margin`, `max_categories`,
            `max_words`, `max_phrases`, `reasoning_fields`, `temporal`, `behavioral`,
            `ignore`, `passes`).
    """

    def __init__(
        self,
        *,
        decision_field: str = DEFAULT_DECISION_FIELD,
        holdout: float = 0.3,
        seed: int = 0,
        max_records: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
        **options: Any,
    ) -> None:
        if not 0.0 < holdout < 1.0:
            raise ValueError(f"holdout must be between 0 and 1 (exclusive), got {holdout!r}")
        if not isinstance(decision_field, str) or not decision_field:
            raise ValueError(
                f"decision_field names the field rules write their decision to, such as "
                f"{DEFAULT_DECISION_FIELD!r}; got {decision_field!r}"
            )
        if max_records is not None and (type(max_records) is not int or max_records < 1):
            raise ValueError(f"max_records is a number of runs >= 1, or None; got {max_records!r}")
        _check_options(options)
        if "reasoning_fields" not in options:
            options["reasoning_fields"] = REASONING_FIELDS
        self.decision_field = decision_field
        self.holdout = holdout
        self.clock = clock
        self._settings = MiningSettings(**options)
        # A stream of its own: `random.Random(seed)` would repeat the draws of an application
        # (or a test) that generated its data with the same seed, and correlate the split with
        # the data.
        self._rng = random.Random(f"cascadence.learning.holdout:{seed}")
        self._records: deque[ExecutionRecord] = deque(maxlen=max_records)
        self._version = 0
        self._cache: dict[tuple[Any, ...], list[Pattern]] = {}
        # what `learn_from_failure` answers with: the thresholds of the last
        # `get_migration_candidates` (the defaults until then), the runs ever recorded per
        # stage, and per stage the patterns last mined (with their compiled conditions)
        self._thresholds: tuple[float, int] = (0.8, 100)
        self._seen: dict[str, int] = {}
        self._found: dict[str, _Found] = {}
        self._warned: set[str] = set()  # misuses of learn_from_failure already reported
        # from now on, results link the stages a run went on from to the run, so the spec's
        # `learn_from_failure(input, stage_name, stage_result)` finds the later stages
        RUN_LINKS.on = True

    # -- recording ---------------------------------------------------------------------------
    @property
    def records(self) -> tuple[ExecutionRecord, ...]:
        """The runs recorded so far."""
        return tuple(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def _add(self, record: ExecutionRecord) -> ExecutionRecord:
        record.holdout = self._rng.random() < self.holdout
        results = record.stage_results
        if any(run_of(r) is not None for r in results.values()):
            # keep the stage results' items, not the whole run each one leads to
            record.stage_results = {
                name: dict(r) if run_of(r) is not None else r for name, r in results.items()
            }
        self._records.append(record)
        self._version += 1
        seen = self._seen
        for stage in record.eligible:
            seen[stage] = seen.get(stage, 0) + 1
        return record

    def observe(self, data: Mapping[str, Any], result: Mapping[str, Any]) -> ExecutionRecord | None:
        """Record one run: its input and the result `CascadeEngine.execute` returned.

        Returns:
            The record, or None when the run cannot teach anything (it failed, timed out, or
            its decision is not a hashable value).
        """
        if not isinstance(data, Mapping) or not isinstance(result, Mapping):
            raise TypeError(
                "observe takes a run's input and the result dict CascadeEngine.execute returned "
                f"for it, got {type(data).__name__} and {type(result).__name__}"
            )
        record = ExecutionRecord.from_result(data, result, decision_field=self.decision_field)
        if record is None:
            decision = decision_of(result, self.decision_field)
            if decision is not None and not isinstance(decision, Hashable):
                self._warn_once(
                    "unhashable decision",
                    f"runs whose decision is a {type(decision).__name__} are not recorded: "
                    "rules learn decisions that are single values (a string, number or bool); "
                    f"write one to {self.decision_field!r} or return it as the result",
                )
            return None
        return self._add(record)

    def fit(
        self, runs: Iterable[ExecutionRecord | tuple[Mapping[str, Any], Mapping[str, Any]]]
    ) -> PatternExtractor:
        """Record many runs: `ExecutionRecord`s or `(input, result)` pairs. Returns self."""
        for run in runs:
            if isinstance(run, ExecutionRecord):
                self._add(replace(run))
            elif isinstance(run, (tuple, list)) and len(run) == 2:
                self.observe(run[0], run[1])
            else:
                raise TypeError(
                    "fit takes ExecutionRecords or (input, result) pairs, got "
                    f"{type(run).__name__}: {run!r:.60}"
                )
        return self

    def learn_from_failure(
        self,
        context: ExecutionContext | Mapping[str, Any],
        stage_name: str,
        result: Mapping[str, Any],
        *,
        decision: Any = _UNSET,
    ) -> Pattern | None:
        """Record that `stage_name` could not decide a run (it escalated), as in the spec.

        When `context` holds no result of a stage after `stage_name` (a context built by hand
        from the input, say), the stage decided the run itself: its own `result` (or
        `decision=`) is the run's decision. The run is then learned from the input and the
        stages before `stage_name`, never from the stage's own output (the answer to predict).

        Args:
            context: The run: its input, its `ExecutionContext`, or the result dict
                `CascadeEngine.execute` returned (which holds the input). With the input, the
                later stages are found from `result` when it is the stage's result from that
                execution result (as in the spec's loop over `stage_results`).
            stage_name: The stage that escalated.
            result: That stage's result.
            decision: The run's final decision, when it is not the `result` of the last
                stage that ran after `stage_name` (a field that stage wrote, say). For an
                execution result, `decision_of(result)` (a learned rule's decision included).

        Returns:
            The pattern the run falls under: the best pattern for rules after `stage_name`
            whose condition holds on the run, preferring one with the run's decision (another
            only when the run is one of its exceptions). Patterns for `stage_name` are mined
            as runs arrive: once it has `min_samples` recorded runs, then each time its runs
            have grown by a quarter (by half from 2,000 runs on), with the thresholds of the
            last `get_migration_candidates` call (`min_confidence=0.8, min_samples=100` until
            then), so a call costs little on average. None while the stage has fewer runs
            than that, when no pattern found covers the run, or when nothing was recorded.
            Nothing is recorded (and a warning says so once) when there is no decision to
            learn: no later stage, and the stage's result has no `result`, or is an engine's
            stage result given with the input alone (its run may have gone on to stages not
            given, so its answer may be provisional).
        """
        run = run_of(result)  # the run this stage result came from, if the engine made it
        if isinstance(context, ExecutionContext):
            data: Any = context.data
            stages: Mapping[str, Any] = context.stage_results
            if run is not None and stage_name not in stages:  # a context made for the call
                stages, context = run["stage_results"], run
        elif isinstance(context, Mapping) and "stage_results" in context:
            data = context.get("input", context.get("data"))
            if not data:
                self._warn_once(
                    "no_input",
                    "learn_from_failure: `context` has stage results but no input, so the run "
                    "is recorded without features and no pattern can come from it; pass "
                    "{'input': data, 'stage_results': result['stage_results']} or the run's "
                    "ExecutionContext",
                )
                data = {}
            stages = context["stage_results"]
        elif isinstance(context, Mapping):
            data, stages = context, {}
            if run is not None:  # the run's input: its stages come with the stage's result
                stages, context = run["stage_results"], run
        else:
            raise TypeError(
                "learn_from_failure expects an ExecutionContext or a mapping, "
                f"got {type(context).__name__}"
            )
        if not isinstance(result, Mapping):
            raise TypeError(
                f"learn_from_failure takes the stage's result dict as `result`, got "
                f"{type(result).__name__}: {result!r:.60}"
            )
        ordered = {n: r for n, r in stages.items() if not (r or {}).get("skipped")}
        given = stage_name in ordered  # the run's own results hold the stage's
        if not given:
            ordered[stage_name] = result
        path = tuple(ordered)
        later = path[path.index(stage_name) + 1 :]
        if later:
            if decision is _UNSET:
                if isinstance(context, Mapping) and "final_result" in context:
                    decision = decision_of(context, self.decision_field)  # an execution result
                else:
                    decision = ordered[later[-1]].get("result")
        elif (
            decision is _UNSET
            and not given
            and (isinstance(result, StageResult) or "time_ms" in result)
        ):
            # An engine's stage result given with the input alone: the run may have gone on
            # to stages not given, and this stage's answer may be provisional ("review").
            self._warn_once(
                "no_later_stage",
                "learn_from_failure: nothing recorded: `context` holds no result of a stage "
                f"after {stage_name!r}, and this result came from an engine run that may have "
                "gone on to later stages; pass the result dict CascadeEngine.execute returned "
                "as `context` (or make the PatternExtractor before the runs: their stage "
                "results then lead to the run)",
            )
            return None
        else:  # the stage decided the run itself
            own = ordered[stage_name] or {}
            if decision is _UNSET:
                if isinstance(context, Mapping) and "final_result" in context:
                    decision = decision_of(context, self.decision_field)
                else:
                    decision = own.get("result")
            if decision is None:
                self._warn_once(
                    "no_decision",
                    "learn_from_failure: nothing recorded: `context` holds no result of a "
                    f"stage after {stage_name!r}, and its result holds no `result` to use as "
                    "the decision; pass decision=..., or the result dict CascadeEngine.execute "
                    "returned as `context`",
                )
                return None
            ordered[stage_name] = {key: own[key] for key in _COST_KEYS if key in own}
        if decision is None or not isinstance(decision, Hashable) or not isinstance(data, Mapping):
            return None
        record = self._add(
            ExecutionRecord(
                data, ordered, path, decision, frozenset({stage_name}), self_decided=not later
            )
        )
        return self._covering(record, stage_name)

    def _covering(self, record: ExecutionRecord, stage: str) -> Pattern | None:
        """The best pattern after `stage` covering `record`, one with its decision first."""
        found = self._found.get(stage)
        if (
            found is None
            or found.thresholds != self._thresholds
            or self._seen.get(stage, 0) >= found.due
        ):
            found = self._mine_at(stage)
        if not found.tests:
            return None
        through = record.stages_through(stage)
        exception = None
        for pattern, test in found.tests:
            if test(record.data, through, None):
                if pattern.decision == record.decision:
                    return pattern
                if exception is None:
                    exception = pattern
        return exception

    def _mine_at(self, stage: str) -> _Found:
        """Mine `stage` again with the current thresholds, and say when to mine it next."""
        records = list(self._records)
        population = sum(1 for r in records if stage in r.eligible)
        patterns: list[Pattern] = []
        if population >= self._thresholds[1] and any(
            stage in r.eligible and (r.path[-1] != stage or r.self_decided) for r in records
        ):
            patterns = self._mine(records, [stage], *self._thresholds)
        return self._publish(stage, population, patterns)

    def _publish(self, stage: str, population: int, patterns: Iterable[Pattern]) -> _Found:
        """Keep `patterns` (mined with the current thresholds over `population` runs of
        `stage`) for `learn_from_failure`, until the stage's runs reach `min_samples` or have
        grown by the share `_REMINE_GROWTH` gives."""
        small, large_from, large = _REMINE_GROWTH
        growth = small if population < large_from else large
        step = max(1, self._thresholds[1] - population, math.ceil(population * growth))
        found = _Found(
            self._thresholds,
            self._seen.get(stage, 0) + step,
            tuple((p, compile_condition(p.condition).fn) for p in patterns),
        )
        self._found[stage] = found
        return found

    def _warn_once(self, key: str, message: str) -> None:
        """Warn about a misuse of `learn_from_failure` once per extractor (runs come in bulk)."""
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, CascadenceWarning, stacklevel=3)

    def clear(self) -> None:
        """Forget every recorded run and every pattern found."""
        self._records.clear()
        self._cache.clear()
        self._seen.clear()
        self._found.clear()
        self._version += 1

    # -- learning ----------------------------------------------------------------------------
    def stages(self) -> list[str]:
        """Stages some recorded run could have been decided after, in cascade order."""
        seen = {s for r in self._records for s in r.eligible if r.path[-1] != s or r.self_decided}
        return [s for s in stage_order(list(self._records)) if s in seen]

    def get_migration_candidates(
        self,
        min_confidence: float = 0.8,
        min_samples: int = 100,
        *,
        target_stage: str | None = None,
    ) -> list[Pattern]:
        """Patterns whose decision could move earlier, the biggest expected saving first.

        Every pattern returned matched at least `min_samples` recorded runs (training and
        held-out together, at least 10 of them held-out), and was measured on held-out runs
        only: a precision of at least `min_confidence`, significantly above the decision's
        base rate (so noise yields nothing).

        Args:
            min_confidence: Least held-out precision, between 0 and 1.
            min_samples: Least number of runs the pattern matches.
            target_stage: Only patterns for rules after this stage; every stage when None.

        Raises:
            ValueError: A bad threshold, or an unknown `target_stage` (with the closest one).
        """
        if not 0.0 < min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in (0, 1], got {min_confidence!r}")
        if min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {min_samples!r}")
        stages = self.stages()
        if target_stage is not None:
            known = {s for r in self._records for s in r.path}
            if target_stage not in known:
                hint = closest(target_stage, known)
                raise ValueError(
                    f"no recorded run went through stage {target_stage!r}"
                    + (f"; did you mean {hint!r}?" if hint else "")
                )
            stages = [target_stage] if target_stage in stages else []
        key = (min_confidence, min_samples, target_stage, self._version)
        cached = self._cache.get(key)
        if cached is None:
            records = list(self._records)
            cached = self._mine(records, stages, min_confidence, min_samples)
            self._cache = {key: cached}
            # what learn_from_failure answers with from now on
            self._thresholds = (min_confidence, min_samples)
            population: dict[str, int] = {}
            for record in records:
                for stage in record.eligible:
                    population[stage] = population.get(stage, 0) + 1
            for stage in stages:
                mined = [p for p in cached if p.target_stage == stage]
                self._publish(stage, population.get(stage, 0), mined)
        return list(cached)

    def _mine(
        self,
        records: list[ExecutionRecord],
        stages: Iterable[str],
        min_confidence: float,
        min_samples: int,
    ) -> list[Pattern]:
        """The patterns of `stages`, the biggest expected saving first."""
        settings = replace(self._settings, min_confidence=min_confidence, min_samples=min_samples)
        order = stage_order(records)
        now = self.clock.time()
        found = [
            self._pattern(rule, order, now)
            for stage in stages
            for rule in mine_stage(records, stage, settings)
        ]
        found.sort(key=lambda p: (-p.coverage * p.avg_saved_cost * p.population, p.id))
        return found

    def _pattern(self, rule: MinedRule, order: tuple[str, ...], now: float) -> Pattern:
        finals: dict[str, int] = {}
        for record in rule.covered:
            finals[record.path[-1]] = finals.get(record.path[-1], 0) + 1
        source = max(sorted(finals), key=lambda n: finals[n]) if finals else rule.stage
        own = sum(1 for record in rule.covered if record.self_decided)
        self_decided = 2 * own > len(rule.covered)
        if self_decided:
            source = rule.stage
        share, cost = stage_shares(rule.covered)
        pop_share, pop_cost = stage_shares(rule.population)
        confidence = rule.holdout_correct / rule.holdout_support
        evidence: dict[str, Any] = {"lift": confidence / rule.base_rate if rule.base_rate else None}
        if rule.phrase is not None:
            evidence["phrase"] = rule.phrase
            evidence["phrase_stage"] = rule.phrase_stage
        return Pattern(
            id=pattern_id(rule.stage, rule.condition, rule.decision, before=self_decided),
            pattern_type=_classify(rule),
            target_stage=rule.stage,
            source_stage=source,
            condition=rule.condition,
            decision=rule.decision,
            confidence=confidence,
            support=rule.holdout_support,
            coverage=rule.holdout_support / len(rule.population),
            population=len(rule.population),
            base_rate=rule.base_rate,
            lower_bound=rule.lower_bound,
            train_confidence=rule.train_correct / rule.train_support,
            train_support=rule.train_support,
            features=tuple(sorted({lit.path for lit in rule.literals})),
            stage_order=order,
            stage_share=share,
            stage_cost=cost,
            population_stage_share=pop_share,
            population_stage_cost=pop_cost,
            decision_field=self.decision_field,
            evidence=evidence,
            created_at=now,
            stage_unit_cost=unit_costs(rule.population),
            self_decided=self_decided,
        )
