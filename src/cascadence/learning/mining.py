"""Finding conditions under which a cascade's later stages always reach the same decision.

For one stage `T`, the *population* is the runs on which a rule placed after `T` would have been
evaluated (see `records.eligible_stages`); the label of a run is its final decision. Runs are split
once, by a seeded random draw, into training rows and held-out rows.

On the training rows, a beam search over conjunctions of up to `max_conditions` literals looks
for conditions whose decision precision is at least a training target a little above
`min_confidence`; a greedy cover then picks, one after the other, the condition that decides the
most runs not yet decided by an earlier pick. Phrases of the later stages' free-text reasoning
guide a first round: for a phrase that goes with one decision, the search looks for a cheap
condition that picks out the runs carrying that phrase (a REASONING pattern).

Every pick is then measured on the held-out rows, with the compiled condition itself. It is kept
when it matches at least `min_samples` runs in all (training and held-out, of which at least 10
held-out), its held-out precision is at least `min_confidence`, and that precision is
significantly above the decision's base rate: the Wilson lower bound at level `significance`
(Bonferroni-corrected over the picks) must exceed the share of that decision in the held-out
population. Without that test, a condition on pure noise would pass whenever one decision
dominates. When every recorded run reaching the stage has the same decision (every run escalated
past the stage ends in "reject", say), no condition can beat that base rate, and a pattern is
kept when its lower bound is at least `min_confidence`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from cascadence.conditions import compile_condition
from cascadence.learning.cuts import CutMover
from cascadence.learning.features import (
    REASONING_FIELDS,
    features_at,
    infer_specs,
    reasoning_phrases,
)
from cascadence.learning.literals import (
    Literal,
    bits_of,
    build_literals,
    conjunction,
    group_literals,
)
from cascadence.learning.records import ExecutionRecord, stage_cost

__all__ = [
    "MinedRule",
    "MiningSettings",
    "mine_stage",
    "stage_order",
    "stage_shares",
    "unit_costs",
    "wilson_lower",
]


def wilson_lower(successes: int, trials: int, z: float) -> float:
    """Lower end of the Wilson score interval of a proportion (0 when there are no trials)."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    margin = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, (centre - margin) / (1 + z2 / trials))


@dataclass(frozen=True, slots=True)
class MiningSettings:
    """Knobs of the search; `PatternExtractor` exposes them.

    Attributes:
        min_confidence: Held-out precision a pattern needs.
        min_samples: Runs a pattern must match, training and held-out runs together (and at
            least 10 held-out runs, or `min_samples` when smaller).
        max_conditions: Most literals in one condition.
        beam_width: Partial conditions kept per search level.
        n_cuts: Candidate cut points per numeric feature (quantiles).
        max_patterns: Most patterns per stage.
        significance: Chance of accepting a pattern no better than the base rate.
        train_margin: Share of the gap between `min_confidence` and 1 added to the training
            target, so that patterns found on training rows still hold on held-out rows.
        max_categories: Most distinct values of a categorical feature.
        max_words: Most words tried per free-text feature.
        max_phrases: Most reasoning phrases followed per stage.
        reasoning_fields: Keys of a stage's `data` read as free-text reasoning.
        temporal: Paths to treat as temporal features, besides those recognised by name.
        behavioral: Paths to treat as behavioral features, besides those recognised by name.
        ignore: Paths never used in a condition.
        passes: Rounds of search on the runs still undecided.
    """

    min_confidence: float = 0.8
    min_samples: int = 100
    max_conditions: int = 3
    beam_width: int = 24
    n_cuts: int = 16
    max_patterns: int = 20
    significance: float = 0.01
    train_margin: float = 0.5
    max_categories: int = 2000
    max_words: int = 40
    max_phrases: int = 12
    reasoning_fields: tuple[str, ...] = REASONING_FIELDS
    temporal: tuple[str, ...] = ()
    behavioral: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    passes: int = 3


@dataclass(frozen=True, slots=True, eq=False)
class MinedRule:
    """A condition found on training rows and confirmed on held-out rows.

    Attributes:
        stage: The stage the rule goes after.
        condition: The structured condition.
        literals: Its literals.
        decision: The decision the later stages reach when the condition holds.
        phrase: The reasoning phrase that led to it, for REASONING patterns.
        phrase_stage: The stage whose reasoning held the phrase.
        train_support: Training runs matched.
        train_correct: Of those, runs whose decision was `decision`.
        holdout_support: Held-out runs matched.
        holdout_correct: Of those, runs whose decision was `decision`.
        base_rate: Share of `decision` among held-out runs.
        lower_bound: Wilson lower bound of the held-out precision used in the noise test.
        covered: The held-out runs matched.
        population: All held-out runs of the stage.
    """

    stage: str
    condition: dict[str, Any]
    literals: tuple[Literal, ...]
    decision: Hashable
    phrase: str | None
    phrase_stage: str | None
    train_support: int
    train_correct: int
    holdout_support: int
    holdout_correct: int
    base_rate: float
    lower_bound: float
    covered: tuple[ExecutionRecord, ...]
    population: tuple[ExecutionRecord, ...]


@dataclass(slots=True, eq=False)
class _Candidate:
    literals: tuple[Literal, ...]
    bits: int
    cover: int
    errors: int
    decision: Hashable = None
    label: int = 0
    phrase: str | None = None
    phrase_stage: str | None = None
    gain: int = field(default=0)


class _Search:
    """Beam search over conjunctions, for one population and one training target."""

    def __init__(
        self,
        settings: MiningSettings,
        rows: Sequence[Mapping[str, Any]],
        min_cover: int,
        min_gain: int,
    ) -> None:
        size = len(rows)
        self.settings = settings
        self.all = (1 << size) - 1
        self.min_cover = min_cover
        self.min_gain = min_gain
        target = settings.min_confidence + (1 - settings.min_confidence) * settings.train_margin
        self.max_error_rate = 1.0 - target
        self.penalty = min(target / max(1e-9, 1.0 - target), 1e6)
        self.mover = CutMover(
            rows, self.all, self.max_error_rate, min_cover, min_gain, self.penalty
        )

    def run(self, literals: Sequence[Literal], target: int, wrong: int) -> list[_Candidate]:
        """Valid conjunctions (precision and support met) that decide runs in `target`."""
        min_cover, min_gain = self.min_cover, self.min_gain
        max_rate, penalty = self.max_error_rate, self.penalty
        usable = [
            lit
            for lit in literals
            if lit.bits != self.all and (lit.bits & target).bit_count() >= min_gain
        ]
        pool: list[_Candidate] = []
        beam: list[_Candidate] = [_Candidate((), self.all, self.all.bit_count(), 0)]
        width = max(3, self.settings.beam_width // 3)
        for _depth in range(self.settings.max_conditions):
            level: dict[int, _Candidate] = {}
            for parent in beam:
                pbits = parent.bits
                slots = {lit.slot for lit in parent.literals}
                for lit in usable:
                    if lit.slot in slots:
                        continue
                    bits = pbits & lit.bits
                    if bits == pbits or bits in level:
                        continue
                    cover = bits.bit_count()
                    if cover < min_cover:
                        continue
                    gain = (bits & target).bit_count()
                    if gain < min_gain:
                        continue
                    errors = (bits & wrong).bit_count()
                    level[bits] = _Candidate(
                        (*parent.literals, lit), bits, cover, errors, gain=gain
                    )
            if not level:
                break
            impure: list[_Candidate] = []
            for cand in level.values():
                if cand.errors <= max_rate * cand.cover:
                    pool.append(cand)
                if cand.errors:
                    impure.append(cand)
            # nearly precise conditions often only need a cut moved past a few stray runs
            near = [c for c in impure if c.errors <= 5 * max_rate * c.cover]
            near.sort(key=lambda c: -c.gain)
            for cand in near[:width]:
                moved = self.mover.tighten(cand.literals, target, wrong)
                if moved is not None:
                    lits, bits = moved
                    pool.append(
                        _Candidate(
                            lits,
                            bits,
                            bits.bit_count(),
                            (bits & wrong).bit_count(),
                            gain=(bits & target).bit_count(),
                        )
                    )
            chosen: dict[int, _Candidate] = {}
            for key in (
                lambda c: c.gain - penalty * c.errors,
                lambda c: c.gain - c.errors,
                lambda c: (c.cover - c.errors + 1) / (c.cover + 2),
            ):
                for cand in sorted(impure, key=key, reverse=True)[:width]:
                    chosen[cand.bits] = cand
            beam = list(chosen.values())
            if not beam:
                break
        return pool

    def refine(self, cand: _Candidate, wrong: int) -> _Candidate:
        """Loosen each numeric cut of a chosen condition as far as precision allows."""
        literals = self.mover.loosen(cand.literals, wrong)
        bits = self.all
        for lit in literals:
            bits &= lit.bits
        return _Candidate(
            literals,
            bits,
            bits.bit_count(),
            (bits & wrong).bit_count(),
            cand.decision,
            cand.label,
            cand.phrase,
            cand.phrase_stage,
        )

    def prune(self, cand: _Candidate, wrong: int) -> _Candidate:
        """Drop literals that the condition does not need to stay precise (it then decides more)."""
        literals = list(cand.literals)
        changed = True
        while changed and len(literals) > 1:
            changed = False
            for i in range(len(literals)):
                rest = literals[:i] + literals[i + 1 :]
                bits = self.all
                for lit in rest:
                    bits &= lit.bits
                cover = bits.bit_count()
                errors = (bits & wrong).bit_count()
                if errors <= self.max_error_rate * cover:
                    literals = rest
                    cand = _Candidate(
                        tuple(rest),
                        bits,
                        cover,
                        errors,
                        cand.decision,
                        cand.label,
                        cand.phrase,
                        cand.phrase_stage,
                    )
                    changed = True
                    break
        return cand


def _phrases(
    train: Sequence[ExecutionRecord], stage: str, fields: tuple[str, ...]
) -> dict[tuple[str, str], list[int]]:
    """Rows carrying each reasoning phrase of the stages that ran after `stage`."""
    rows: dict[tuple[str, str], list[int]] = {}
    for i, record in enumerate(train):
        after = False
        for name in record.path:
            if after:
                result = record.stage_results.get(name)
                if result is not None:
                    for phrase in reasoning_phrases(result, fields):
                        rows.setdefault((name, phrase), []).append(i)
            elif name == stage:
                after = True
    return rows


_MIN_HOLDOUT = 10
"""Fewest held-out runs a pattern must match for its held-out precision to mean anything."""


def mine_stage(
    records: Sequence[ExecutionRecord], stage: str, settings: MiningSettings
) -> list[MinedRule]:
    """Patterns for rules placed after `stage`, confirmed on held-out runs, best first."""
    population = [r for r in records if stage in r.eligible]
    train = [r for r in population if not r.holdout]
    held = [r for r in population if r.holdout]
    min_samples = max(1, settings.min_samples)
    if len(population) < min_samples or len(held) < _MIN_HOLDOUT or not train:
        return []
    size = len(train)
    # a pattern matching `min_samples` runs in all matches about this share of them in training
    min_cover = max(3, math.ceil(min_samples * size / len(population) * 0.8))
    min_gain = max(2, math.ceil(min_cover / 4))

    by_decision: dict[Hashable, list[int]] = {}
    for i, record in enumerate(train):
        by_decision.setdefault(record.decision, []).append(i)
    labels = {d: bits_of(ix, size) for d, ix in by_decision.items() if len(ix) >= min_gain}
    if not labels:
        return []
    rows = [features_at(r, stage) for r in train]
    search = _Search(settings, rows, min_cover, min_gain)
    everything = search.all
    specs = infer_specs(
        rows,
        max_categories=settings.max_categories,
        temporal=settings.temporal,
        behavioral=settings.behavioral,
        ignore=settings.ignore,
    )
    families = {s.path: s.family for s in specs}
    base, categories = build_literals(
        specs, rows, n_cuts=settings.n_cuts, min_cover=min_cover, max_words=settings.max_words
    )
    target_precision = 1.0 - search.max_error_rate

    def thresholds(label: int) -> list[float]:
        rate = label.bit_count() / size
        return [target_precision, rate + (1 - rate) / 2, rate + (1 - rate) / 8]

    uncovered = everything
    selected: list[_Candidate] = []

    def take(cand: _Candidate, wrong: int) -> None:
        nonlocal uncovered
        cand = search.refine(search.prune(cand, wrong), wrong)
        if any(c.bits == cand.bits for c in selected):
            return
        selected.append(cand)
        uncovered &= ~cand.bits

    # Reasoning first: phrases of the later stages that go with one decision.
    # Phrases always written together (same runs) are one lead, named by the longest.
    grouped: dict[tuple[str, int], list[str]] = {}
    for (phrase_stage, phrase), prows in _phrases(train, stage, settings.reasoning_fields).items():
        if len(prows) >= min_cover:
            grouped.setdefault((phrase_stage, bits_of(prows, size)), []).append(phrase)
    leads: list[tuple[int, str, str, Hashable, int]] = []
    for (phrase_stage, pbits), phrases in grouped.items():
        phrase = max(sorted(phrases), key=len)
        count = pbits.bit_count()
        for decision, label in labels.items():
            hits = (pbits & label).bit_count()
            if hits >= target_precision * count and hits <= 0.8 * label.bit_count():
                leads.append((hits, phrase_stage, phrase, decision, pbits & label))
    leads.sort(key=lambda lead: (-lead[0], lead[1], lead[2]))
    for _hits, phrase_stage, phrase, decision, focus in leads[: settings.max_phrases]:
        target = focus & uncovered
        if target.bit_count() < min_gain or len(selected) >= settings.max_patterns:
            continue
        wrong = everything & ~labels[decision]
        literals = base + group_literals(
            categories, focus, [target_precision], families, min_cover=min_gain
        )
        found = search.run(literals, target, wrong)
        if found:
            best = max(found, key=lambda c: (c.gain, -len(c.literals), -c.errors))
            best.decision, best.label = decision, labels[decision]
            # a REASONING pattern is one the phrase explains: most runs it decides carry it
            if (best.bits & focus).bit_count() * 2 >= (best.bits & best.label).bit_count():
                best.phrase, best.phrase_stage = phrase, phrase_stage
            take(best, wrong)

    # Then a greedy cover of what is left, decision by decision.
    pool: list[_Candidate] = []
    for _round in range(settings.passes):
        for decision, label in labels.items():
            target = label & uncovered
            if target.bit_count() < min_gain:
                continue
            literals = base + group_literals(
                categories, label, thresholds(label), families, min_cover=min_cover
            )
            for cand in search.run(literals, target, everything & ~label):
                cand.decision, cand.label = decision, label
                pool.append(cand)
        added = False
        while len(selected) < settings.max_patterns and pool:
            best = max(  # most new runs decided; then fewest wrong ones, fewest tests
                pool,
                key=lambda c: (
                    (c.bits & c.label & uncovered).bit_count(),
                    -c.errors,
                    -len(c.literals),
                ),
            )
            if (best.bits & best.label & uncovered).bit_count() < min_gain:
                break
            before = len(selected)
            take(best, everything & ~best.label)
            pool.remove(best)
            added = added or len(selected) > before
        if not added:
            break
    one_decision = len({r.decision for r in population}) == 1
    return _validate(selected, held, stage, settings, one_decision)


def _validate(
    selected: Sequence[_Candidate],
    held: Sequence[ExecutionRecord],
    stage: str,
    settings: MiningSettings,
    one_decision: bool = False,
) -> list[MinedRule]:
    if not selected:
        return []
    z = NormalDist().inv_cdf(1.0 - settings.significance / len(selected))
    views = [(r, r.stages_through(stage)) for r in held]
    counts: dict[Hashable, int] = {}
    for record in held:
        counts[record.decision] = counts.get(record.decision, 0) + 1
    population = tuple(held)
    mined: list[MinedRule] = []
    for cand in selected:
        condition = conjunction(cand.literals)
        test = compile_condition(condition).fn
        covered = tuple(r for r, stages in views if test(r.data, stages, None))
        support = len(covered)
        correct = sum(1 for r in covered if r.decision == cand.decision)
        base_rate = counts.get(cand.decision, 0) / len(held)
        lower = wilson_lower(correct, support, z)
        if (
            cand.cover + support < settings.min_samples
            or support < min(_MIN_HOLDOUT, settings.min_samples)
            or correct < settings.min_confidence * support
            or (lower <= base_rate and not (one_decision and lower >= settings.min_confidence))
        ):
            continue
        mined.append(
            MinedRule(
                stage=stage,
                condition=condition,
                literals=cand.literals,
                decision=cand.decision,
                phrase=cand.phrase,
                phrase_stage=cand.phrase_stage,
                train_support=cand.cover,
                train_correct=cand.cover - cand.errors,
                holdout_support=support,
                holdout_correct=correct,
                base_rate=base_rate,
                lower_bound=lower,
                covered=covered,
                population=population,
            )
        )
    return mined


def stage_shares(records: Sequence[ExecutionRecord]) -> tuple[dict[str, float], dict[str, float]]:
    """For a set of runs: the share that ran each stage, and each stage's mean cost when it ran."""
    runs: dict[str, int] = {}
    spent: dict[str, float] = {}
    for record in records:
        for name, result in record.stage_results.items():
            runs[name] = runs.get(name, 0) + 1
            spent[name] = spent.get(name, 0.0) + stage_cost(name, result)
    total = max(1, len(records))
    return (
        {name: count / total for name, count in runs.items()},
        {name: spent[name] / count for name, count in runs.items()},
    )


def unit_costs(records: Sequence[ExecutionRecord]) -> dict[str, float]:
    """Each stage's cost when it ran in full: the most any of `records` spent on it."""
    most: dict[str, float] = {}
    for record in records:
        for name, result in record.stage_results.items():
            cost = stage_cost(name, result)
            if cost > most.get(name, -1.0):
                most[name] = cost
    return most


def stage_order(records: Sequence[ExecutionRecord]) -> tuple[str, ...]:
    """Stage names in the order runs took them (first appearance along the longest paths)."""
    order: list[str] = []
    for record in sorted(records, key=lambda r: -len(r.path))[:200]:
        for name in record.path:
            if name not in order:
                order.append(name)
    return tuple(order)
