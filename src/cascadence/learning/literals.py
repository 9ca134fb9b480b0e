"""Literals: the atomic tests a learned condition is made of, each with its training bitset.

A literal is one test of the condition language (`amount >= 250`, `country IN ["NG", "RO"]`,
`memo MATCHES "(?i)\\bgift\\b"`) together with the set of training rows it holds on, kept as the
bits of a Python `int`. Conjunctions are then bitwise ANDs and counts are `int.bit_count()`, which
makes searching thousands of candidate conditions over tens of thousands of rows cheap in pure
Python.

The Python predicate used to fill a bitset follows the condition language's semantics for the
values involved (a missing value makes every test false, booleans are not numbers); held-out
measurements are made with the compiled condition itself, so any difference would show there.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cascadence.learning.features import (
    Family,
    FeatureSpec,
    Kind,
    hour_condition,
    iso_hour,
    word_condition,
    words,
)

__all__ = [
    "Literal",
    "bits_of",
    "build_literals",
    "conjunction",
    "group_literals",
    "nice_cut",
]


@dataclass(frozen=True, slots=True, eq=False)
class Literal:
    """One test on one feature, and the training rows it holds on.

    Attributes:
        path: The condition path tested.
        kind: The feature's kind.
        family: The feature's family (`temporal`, `behavioral`, `plain`).
        slot: Two literals with the same slot never appear in one conjunction (a second
            `amount >= x` adds nothing; `amount >= x` with `amount < y` is a range and allowed).
        condition: The structured condition.
        bits: Training rows where the test holds.
        hours: For timestamp literals, the hours of day accepted.
    """

    path: str
    kind: Kind
    family: Family
    slot: tuple[str, str]
    condition: dict[str, Any]
    bits: int
    hours: frozenset[int] | None = None


_TAILS = (0.005, 0.01, 0.02, 0.035, 0.965, 0.98, 0.99, 0.995)


def bits_of(indices: Iterable[int], size: int) -> int:
    """An `int` whose bit `i` is set for every `i` in `indices` (all below `size`)."""
    buffer = bytearray((size + 7) >> 3)
    for i in indices:
        buffer[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(buffer, "little")


def nice_cut(low: float, high: float) -> float | int:
    """The number with the fewest significant digits in `(low, high]`.

    A cut point between two observed values is free anywhere in that gap; a round number
    (`250` rather than `247.38`) reads better in a rule and tests the same rows.
    """
    if high <= low or not (math.isfinite(low) and math.isfinite(high)):
        return high
    span = max(abs(low), abs(high), 1e-12)
    exponent = math.floor(math.log10(span)) + 1
    for k in range(min(exponent, 300), exponent - 16, -1):
        step = 10.0**k
        candidate = math.floor(high / step) * step
        rounded: float = (
            round(candidate) if k >= 0 and abs(candidate) < 1e15 else round(candidate, max(0, -k))
        )
        if low < rounded <= high:
            return rounded
    return high


def _numeric(
    spec: FeatureSpec, values: Sequence[Any], size: int, n_cuts: int, min_cover: int
) -> list[Literal]:
    present: list[tuple[float, int]] = []
    count_kind = spec.kind == "count"
    for i, value in enumerate(values):
        if count_kind:
            if isinstance(value, (list, tuple)):
                present.append((float(len(value)), i))
        elif value is not None and type(value) in (int, float) and value == value:
            present.append((float(value), i))
    if len(present) < 2 * min_cover:
        return []
    present.sort()
    distinct = sorted({v for v, _ in present})
    if len(distinct) < 2:
        return []
    if len(distinct) <= n_cuts + 1:
        highs = distinct[1:]
    else:
        n = len(present)
        picks = {present[(k * n) // (n_cuts + 1)][0] for k in range(1, n_cuts + 1)}
        # rules often live in the tails (large amounts, rare bursts): cut there too
        picks.update(present[min(n - 1, int(q * n))][0] for q in _TAILS)
        highs = sorted(p for p in picks if p > distinct[0])
    if not highs:
        return []
    buckets: list[list[int]] = [[] for _ in range(len(highs) + 1)]
    for value, i in present:
        buckets[bisect_right(highs, value)].append(i)
    bins = [bits_of(b, size) for b in buckets]
    suffix = [0] * (len(bins) + 1)
    for j in range(len(bins) - 1, -1, -1):
        suffix[j] = suffix[j + 1] | bins[j]
    literals: list[Literal] = []
    below = 0
    path = spec.path
    for j, high in enumerate(highs):
        below |= bins[j]
        above = suffix[j + 1]
        if not math.isfinite(high):
            continue
        position = bisect_left(distinct, high)
        cut = nice_cut(distinct[position - 1], high)
        if count_kind:
            cut = math.ceil(cut)
        for op, bits in ((">=", above), ("<", below)):
            if bits.bit_count() < min_cover:
                continue
            if count_kind:
                condition = {"field": path, "operator": "COUNT", "compare": op, "value": int(cut)}
            else:
                condition = {"field": path, "operator": op, "value": cut}
            literals.append(Literal(path, spec.kind, spec.family, (path, op), condition, bits))
    return literals


def _hours(spec: FeatureSpec, values: Sequence[Any], size: int, min_cover: int) -> list[Literal]:
    by_hour: list[list[int]] = [[] for _ in range(24)]
    for i, value in enumerate(values):
        hour = iso_hour(value)
        if hour is not None:
            by_hour[hour].append(i)
    bins = [bits_of(b, size) for b in by_hour]
    literals: list[Literal] = []
    for cut in range(1, 24):
        for direction, hours in (("ge", range(cut, 24)), ("lt", range(cut))):
            bits = 0
            for h in hours:
                bits |= bins[h]
            if bits.bit_count() >= min_cover:
                accepted = frozenset(hours)
                literals.append(
                    Literal(
                        spec.path,
                        "hour",
                        spec.family,
                        (spec.path, direction),
                        hour_condition(spec.path, accepted),
                        bits,
                        accepted,
                    )
                )
    return literals


def _text(
    spec: FeatureSpec, values: Sequence[Any], size: int, min_cover: int, max_words: int
) -> list[Literal]:
    rows: dict[str, list[int]] = {}
    for i, value in enumerate(values):
        if type(value) is str:
            for word in words(value):
                rows.setdefault(word, []).append(i)
    common = sorted(
        (w for w, r in rows.items() if min_cover <= len(r) < size), key=lambda w: -len(rows[w])
    )
    return [
        Literal(
            spec.path,
            "text",
            spec.family,
            (spec.path, f"word:{w}"),
            word_condition(spec.path, w),
            bits_of(rows[w], size),
        )
        for w in common[:max_words]
    ]


def build_literals(
    specs: Sequence[FeatureSpec],
    rows: Sequence[Mapping[str, Any]],
    *,
    n_cuts: int,
    min_cover: int,
    max_words: int,
) -> tuple[list[Literal], dict[str, dict[Hashable, int]]]:
    """Every single-feature test worth trying on `rows`.

    Returns:
        The literals (two with the same rows are kept once), and for each categorical path the
        rows of each of its values, from which `group_literals` builds `IN` tests per label.
    """
    size = len(rows)
    literals: list[Literal] = []
    categories: dict[str, dict[Hashable, int]] = {}
    for spec in specs:
        path = spec.path
        values = [row.get(path) for row in rows]
        kind = spec.kind
        if kind in ("numeric", "count"):
            literals.extend(_numeric(spec, values, size, n_cuts, min_cover))
        elif kind == "hour":
            literals.extend(_hours(spec, values, size, min_cover))
        elif kind == "text":
            literals.extend(_text(spec, values, size, min_cover, max_words))
        else:
            by_value: dict[Hashable, list[int]] = {}
            for i, value in enumerate(values):
                if value is not None and (kind != "boolean" or type(value) is bool):
                    by_value.setdefault(value, []).append(i)
            if len(by_value) < 2:
                continue
            value_bits = {v: bits_of(r, size) for v, r in by_value.items()}
            if kind == "categorical":
                categories[path] = value_bits
            for value, bits in value_bits.items():
                if bits.bit_count() >= min_cover:
                    condition = {"field": path, "operator": "==", "value": value}
                    literals.append(Literal(path, kind, spec.family, (path, "eq"), condition, bits))
    unique: dict[int, Literal] = {}
    for literal in literals:
        unique.setdefault(literal.bits, literal)
    return list(unique.values()), categories


def group_literals(
    categories: Mapping[str, Mapping[Hashable, int]],
    label: int,
    thresholds: Sequence[float],
    families: Mapping[str, Family],
    *,
    min_cover: int,
    max_values: int = 64,
) -> list[Literal]:
    """`IN` tests grouping the values of a categorical path that lean towards `label`.

    For each threshold, the values with at least three rows of which that share or more are in
    `label` form one group (`merchant_id IN [...]` for the merchants a stage always declines).
    """
    literals: list[Literal] = []
    for path, value_bits in categories.items():
        rates: list[tuple[float, int, Hashable, int]] = []
        for value, bits in value_bits.items():
            count = bits.bit_count()
            if count >= 3:
                rates.append(((bits & label).bit_count() / count, count, value, bits))
        if not rates:
            continue
        rates.sort(key=lambda r: (-r[0], -r[1]))
        seen: set[frozenset[Hashable]] = set()
        for threshold in thresholds:
            chosen = [r for r in rates if r[0] >= threshold][:max_values]
            if len(chosen) < 2 or len(chosen) == len(value_bits):
                continue
            values = frozenset(r[2] for r in chosen)
            if values in seen:
                continue
            seen.add(values)
            bits = 0
            for r in chosen:
                bits |= r[3]
            if bits.bit_count() < min_cover:
                continue
            condition = {
                "field": path,
                "operator": "IN",
                "value": sorted(values, key=lambda v: (type(v).__name__, str(v))),
            }
            literals.append(
                Literal(
                    path, "categorical", families.get(path, "plain"), (path, "eq"), condition, bits
                )
            )
    return literals


def conjunction(literals: Sequence[Literal]) -> dict[str, Any]:
    """The structured condition of a conjunction, in a canonical order.

    Timestamp literals on one path are merged into one hour test.
    """
    hours: dict[str, frozenset[int]] = {}
    parts: list[tuple[str, str, dict[str, Any]]] = []
    for literal in literals:
        if literal.hours is not None:
            previous = hours.get(literal.path)
            hours[literal.path] = literal.hours if previous is None else previous & literal.hours
        else:
            parts.append((literal.path, str(literal.condition.get("operator")), literal.condition))
    for path, accepted in hours.items():
        parts.append((path, "MATCHES", hour_condition(path, accepted)))
    parts.sort(key=lambda p: (p[0], p[1], repr(p[2].get("value"))))
    conditions = [p[2] for p in parts]
    if len(conditions) == 1:
        return dict(conditions[0])
    return {"operator": "AND", "conditions": [dict(c) for c in conditions]}
