"""Sliding the cut points of numeric literals: tighten to reach precision, loosen to reach more.

The search starts from cut points at quantiles, which rarely sit on the boundary a stage
actually uses (`amount >= 500`). Two moves fix that, one distinct value at a time:

- `tighten` moves a cut inward, dropping runs, until a condition that is nearly precise enough
  becomes precise enough (the quantile `amount >= 487` holds 4 approvals; `amount >= 500` none);
- `loosen` moves a cut outward while the condition, and the runs it gains, stay precise, so a
  chosen condition decides as many runs as it safely can.

The cut written into the condition is then the roundest number in the gap between the last
value kept and the first value left out (`nice_cut`).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any

from cascadence.learning.literals import Literal, bits_of, nice_cut

__all__ = ["CutMover", "digits"]

_MAX_STEPS = 400


def digits(number: float) -> int:
    """Significant digits of a number as written (`250` -> 2, `0.0491` -> 3)."""
    text = repr(number).lstrip("-").replace(".", "").lstrip("0").rstrip("0")
    return len(text)


def _op(literal: Literal) -> str:
    return str(literal.condition["compare" if literal.kind == "count" else "operator"])


def _with_cut(literal: Literal, cut: float, bits: int) -> Literal:
    if literal.kind == "count":
        cut = math.ceil(cut)
    condition = dict(literal.condition)
    condition["value"] = cut
    return Literal(literal.path, literal.kind, literal.family, literal.slot, condition, bits)


class CutMover:
    """Moves the cut points of numeric literals over one set of training rows.

    Args:
        rows: The training rows' features.
        everything: Bits of all rows.
        max_error_rate: Largest share of wrong decisions a condition may have.
        min_cover: Fewest rows a condition must match.
        min_gain: Fewest target rows a condition must decide.
        penalty: Weight of one wrong decision against one right one when choosing a cut.
    """

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        everything: int,
        max_error_rate: float,
        min_cover: int,
        min_gain: int,
        penalty: float,
    ) -> None:
        self.rows = rows
        self.everything = everything
        self.penalty = penalty
        self.max_error_rate = max_error_rate
        self.min_cover = min_cover
        self.min_gain = min_gain
        self._values: dict[tuple[str, bool], tuple[list[float], list[list[int]]]] = {}
        self._bits: dict[tuple[str, bool, int], int] = {}

    def _groups(self, path: str, counting: bool) -> tuple[list[float], list[list[int]]]:
        key = (path, counting)
        cached = self._values.get(key)
        if cached is None:
            by_value: dict[float, list[int]] = {}
            for i, row in enumerate(self.rows):
                value = row.get(path)
                if counting:
                    if isinstance(value, (list, tuple)):
                        by_value.setdefault(float(len(value)), []).append(i)
                elif value is not None and type(value) in (int, float) and value == value:
                    by_value.setdefault(float(value), []).append(i)
            values = sorted(by_value)
            cached = self._values[key] = (values, [by_value[v] for v in values])
        return cached

    def _group_bits(self, path: str, counting: bool, k: int) -> int:
        key = (path, counting, k)
        bits = self._bits.get(key)
        if bits is None:
            bits = self._bits[key] = bits_of(self._groups(path, counting)[1][k], len(self.rows))
        return bits

    def _cut_position(self, literal: Literal) -> tuple[bool, list[float], str, int]:
        """For a numeric or count literal: whether it counts, the distinct values of its field,
        its operator, and where its cut falls among those values."""
        counting = literal.kind == "count"
        values, _ = self._groups(literal.path, counting)
        start = bisect_left(values, float(literal.condition["value"]))
        return counting, values, _op(literal), start

    def _others(self, literals: Sequence[Literal], skip: int) -> int:
        bits = self.everything
        for j, other in enumerate(literals):
            if j != skip:
                bits &= other.bits
        return bits

    def tighten(
        self, literals: Sequence[Literal], target: int, wrong: int
    ) -> tuple[tuple[Literal, ...], int] | None:
        """The best inward move of one cut that makes the conjunction precise enough.

        Each cut is moved past one distinct value at a time; among the positions where the
        conjunction is precise enough, the one with the best score (target rows decided,
        minus `penalty` per wrong decision) wins.

        Returns:
            The new literals and the conjunction's bits, or None when no move works without
            losing too many target rows.
        """
        best: tuple[float, tuple[Literal, ...], int] | None = None
        penalty = self.penalty
        for i, literal in enumerate(literals):
            if literal.kind not in ("numeric", "count"):
                continue
            counting, values, op, start = self._cut_position(literal)
            if op == ">=":
                order = range(start, min(len(values) - 1, start + _MAX_STEPS))
            else:
                order = range(start - 1, max(0, start - 1 - _MAX_STEPS), -1)
            others = self._others(literals, i)
            bits = literal.bits
            for k in order:
                bits &= ~self._group_bits(literal.path, counting, k)
                conj = others & bits
                cover = conj.bit_count()
                gain = (conj & target).bit_count()
                if cover < self.min_cover or gain < self.min_gain:
                    break
                errors = (conj & wrong).bit_count()
                if errors > self.max_error_rate * cover:
                    continue
                score = gain - penalty * errors
                if best is None or score > best[0]:
                    nxt = k + 1 if op == ">=" else k - 1
                    low, high = (values[k], values[nxt]) if op == ">=" else (values[nxt], values[k])
                    moved = _with_cut(literal, nice_cut(low, high), bits)
                    best = (score, (*literals[:i], moved, *literals[i + 1 :]), conj)
                if errors == 0:
                    break
        return None if best is None else (best[1], best[2])

    def loosen(self, literals: Sequence[Literal], wrong: int) -> tuple[Literal, ...]:
        """Move each cut outward while precision holds, to the best-scoring, roundest cut."""
        current = list(literals)
        max_rate = self.max_error_rate
        for i, literal in enumerate(current):
            if literal.kind not in ("numeric", "count"):
                continue
            counting, values, op, start = self._cut_position(literal)
            if op == ">=":
                order = range(start - 1, max(-1, start - 1 - _MAX_STEPS), -1)
            else:
                order = range(start, min(len(values), start + _MAX_STEPS))
            others = self._others(current, i)
            first = others & literal.bits
            first_cover, first_errors = first.bit_count(), (first & wrong).bit_count()
            bits = literal.bits
            first_score = first_cover - first_errors - self.penalty * first_errors
            valid: list[tuple[float, int, float]] = [
                (literal.condition["value"], bits, first_score)
            ]
            for k in order:
                bits |= self._group_bits(literal.path, counting, k)
                conj = others & bits
                cover = conj.bit_count()
                errors = (conj & wrong).bit_count()
                gained, gained_errors = cover - first_cover, errors - first_errors
                if errors <= max_rate * cover and gained_errors <= max_rate * gained:
                    if op == ">=":
                        cut: float = nice_cut(values[k - 1], values[k]) if k > 0 else values[k]
                    elif k + 1 < len(values):
                        cut = nice_cut(values[k], values[k + 1])
                    else:
                        continue
                    valid.append((cut, bits, cover - errors - self.penalty * errors))
            if len(valid) == 1:
                continue
            # the roundest cut among those scoring nearly as well as the best one
            top = max(v[2] for v in valid)
            floor = top - max(1.0, 0.01 * abs(top))
            cut, bits, _ = min(
                (v for v in valid if v[2] >= floor), key=lambda v: (digits(v[0]), -v[2])
            )
            current[i] = _with_cut(literal, cut, bits)
        return tuple(current)
