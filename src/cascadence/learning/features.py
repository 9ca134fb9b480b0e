"""Features of an execution: what a rule placed after a stage can test.

A rule attached to stage `T` runs after `T`, so it can read the input and the results of `T` and
of the stages before it, and nothing else. `features_at(record, T)` flattens exactly that into
condition paths (`amount`, `user.age`, `stages.RULES.data.risk_points`), and `infer_specs` decides
how each path can be tested:

- `numeric`: `>=` / `<` against a cut point;
- `boolean`: `== true` / `== false`;
- `categorical`: `==` one value, or `IN` a group of values;
- `text`: `MATCHES` a whole word, case-insensitively;
- `hour`: an ISO 8601 timestamp, tested on its hour with `MATCHES` (the condition language has
  no date functions, but the hour is always the two digits after the `T`);
- `count`: a list, tested on its length with `COUNT`.

Each feature also has a family, used to name a pattern's type: `temporal` (timestamps, and
fields named for the time of day, weekday or weekend), `behavioral` (fields named for
frequencies and sequences: velocity, attempts, counts over a window such as `_24h`) or `plain`.
Paths can be put in a family explicitly (`PatternExtractor(temporal=[...], behavioral=[...])`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cascadence.learning.records import ExecutionRecord

__all__ = [
    "BEHAVIORAL_NAMES",
    "Family",
    "FeatureSpec",
    "Kind",
    "REASONING_FIELDS",
    "TEMPORAL_NAMES",
    "features_at",
    "flatten",
    "hour_condition",
    "infer_specs",
    "iso_hour",
    "reasoning_phrases",
    "word_condition",
    "words",
]

Kind = Literal["numeric", "boolean", "categorical", "text", "hour", "count"]
Family = Literal["plain", "temporal", "behavioral"]

TEMPORAL_NAMES = re.compile(
    r"^(?:is_)?(?:hour|hour_of_day|local_hour|minute|time_of_day|day_of_week|weekday|dow|"
    r"weekend|night|night_time|nighttime|month|holiday|business_hours|after_hours)$"
)
"""Last path segments that make a feature temporal (besides ISO timestamps)."""

BEHAVIORAL_NAMES = re.compile(
    r"(?:^|_)(?:velocity|attempts?|frequency|freq|counts?|last|per_hour|per_day|per_minute|"
    r"recent|previous|prior|history|retries|retry|failed|failures?|sequence|streak|repeats?|"
    r"repeated)(?:_|$)|_\d+[mhd]$|_\d+min$"
)
"""Words (between underscores) of the last path segment that make a feature behavioral
(plus lists): `txn_count_24h`, `failed_logins`, `attempts_1h`, but not `country` or
`account_age_days`."""

REASONING_FIELDS: tuple[str, ...] = ("reasoning", "explanation", "rationale", "reason", "reasons")
"""Keys of a stage's `data` read as free-text reasoning."""

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ](\d{2}):")
_ISO_PREFIX = r"^\d{4}-\d{2}-\d{2}[T ]"
_TOKEN = re.compile(r"\w+")
_WORD = re.compile(r"[a-z][a-z0-9]{2,}")
_CLAUSE_SPLIT = re.compile(r"[.;!?\n|]+")
_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_SPACES = re.compile(r"\s+")
_SKIP_STAGE_KEYS = frozenset({"time_ms", "cost", "error", "error_type", "skipped", "cached"})
_STOP_WORDS = frozenset(
    {"the", "and", "for", "with", "from", "this", "that", "was", "are", "has", "have", "not"}
)


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """How one condition path can be tested.

    Attributes:
        path: The condition path (`amount`, `stages.RULES.data.score`).
        kind: How it is tested (see the module docstring).
        family: `temporal`, `behavioral` or `plain`.
    """

    path: str
    kind: Kind
    family: Family


def flatten(value: Any, prefix: str, out: dict[str, Any], depth: int = 0) -> None:
    """Add every leaf of `value` to `out` under its dot path (lists are kept whole).

    Keys that cannot be written as one path segment (empty, or holding a dot) are left out.
    """
    if isinstance(value, Mapping):
        if depth > 4:
            return
        for key, item in value.items():
            if not isinstance(key, str) or not key or "." in key:
                continue
            flatten(item, f"{prefix}.{key}" if prefix else key, out, depth + 1)
    elif prefix and value is not None:
        out[prefix] = value


def features_at(record: ExecutionRecord, stage: str) -> dict[str, Any]:
    """Everything a rule evaluated after `stage` could read on this run, by condition path."""
    out: dict[str, Any] = {}
    for key, item in record.data.items():
        # `stages.` paths read stage results, so an input key of that name is unreachable
        if key != "stages" and isinstance(key, str) and key and "." not in key:
            flatten(item, key, out, 1)
    for name, result in record.stages_through(stage).items():
        if "." in name:
            continue
        base = f"stages.{name}"
        for key, item in result.items():
            if key in _SKIP_STAGE_KEYS or not isinstance(key, str) or "." in key:
                continue
            flatten(item, f"{base}.{key}", out, 2)
    return out


def iso_hour(value: Any) -> int | None:
    """The hour of an ISO 8601 timestamp string (`2024-05-01T23:10:00` -> 23), else None."""
    if type(value) is not str:
        return None
    match = _ISO.match(value)
    if match is None:
        return None
    hour = int(match.group(1))
    return hour if hour < 24 else None


def hour_condition(path: str, hours: Iterable[int]) -> dict[str, Any]:
    """A condition true when the timestamp at `path` falls in one of `hours`."""
    alternatives = "|".join(f"{h:02d}" for h in sorted(set(hours)))
    return {"field": path, "operator": "MATCHES", "value": f"{_ISO_PREFIX}(?:{alternatives}):"}


def words(text: str) -> set[str]:
    """Lower-case ASCII words of three characters or more (starting with a letter), without
    common stop words.

    Words are whole `\\w+` runs, as `\\b` in a pattern sees them: `01T03` holds no word `t03`.
    """
    return {w for w in _TOKEN.findall(text.lower()) if _WORD.fullmatch(w) and w not in _STOP_WORDS}


def word_condition(path: str, word: str) -> dict[str, Any]:
    """A condition true when the text at `path` contains `word` as a whole word, in any case."""
    return {"field": path, "operator": "MATCHES", "value": rf"(?i)\b{re.escape(word)}\b"}


def reasoning_phrases(
    stage_result: Mapping[str, Any], fields: Sequence[str] = REASONING_FIELDS
) -> set[str]:
    """Normalized clauses of a stage's free-text reasoning (`data.reasoning` and the like).

    Clauses are split at sentence punctuation, lower-cased, with numbers replaced by `#`, so
    `"Velocity spike: 12 payments in 24h."` gives `"velocity spike: # payments in #h"`.
    """
    data = stage_result.get("data")
    if not isinstance(data, Mapping):
        return set()
    phrases: set[str] = set()
    for field in fields:
        value = data.get(field)
        texts: Iterable[Any] = (
            value if isinstance(value, (list, tuple)) else (value,) if value else ()
        )
        for text in texts:
            if not isinstance(text, str):
                continue
            for clause in _CLAUSE_SPLIT.split(text.lower()):
                clause = _SPACES.sub(" ", _DIGITS.sub("#", clause)).strip(" ,:-")
                if len(clause) >= 3:
                    phrases.add(clause)
    return phrases


def _family(path: str, kind: Kind, temporal: frozenset[str], behavioral: frozenset[str]) -> Family:
    if path in temporal or kind == "hour":
        return "temporal"
    if path in behavioral:
        return "behavioral"
    last = path.rsplit(".", 1)[-1].lower()
    if TEMPORAL_NAMES.match(last):
        return "temporal"
    if BEHAVIORAL_NAMES.search(last):
        return "behavioral"
    return "plain"


def infer_specs(
    rows: Sequence[Mapping[str, Any]],
    *,
    max_categories: int = 2000,
    temporal: Iterable[str] = (),
    behavioral: Iterable[str] = (),
    ignore: Iterable[str] = (),
) -> list[FeatureSpec]:
    """Decide how each path seen in `rows` can be tested.

    A path whose present values mix types (say numbers and strings) is left out, as is a
    string path with a distinct value in nearly every row (an id) or more than
    `max_categories` values, unless it holds free text or timestamps.
    """
    seen: dict[str, set[type]] = {}
    values: dict[str, set[Any]] = {}
    spaced: dict[str, int] = {}
    counts: dict[str, int] = {}
    skip = set(ignore)
    cap = max_categories + 1
    for row in rows:
        for path, value in row.items():
            if path in skip:
                continue
            kind = type(value)
            if kind is int:
                kind = float
            types = seen.get(path)
            if types is None:
                types = seen[path] = set()
                values[path] = set()
                spaced[path] = 0
                counts[path] = 0
            types.add(kind)
            counts[path] += 1
            if kind is str:
                distinct = values[path]
                if len(distinct) < cap:
                    distinct.add(value)
                if " " in value:
                    spaced[path] += 1
    temporal_set = frozenset(temporal)
    behavioral_set = frozenset(behavioral)
    specs: list[FeatureSpec] = []
    for path in sorted(seen):
        types = seen[path]
        if len(types) != 1:
            continue
        (kind,) = types
        spec_kind: Kind | None = None
        if kind is float:
            spec_kind = "numeric"
        elif kind is bool:
            spec_kind = "boolean"
        elif kind in (list, tuple):
            spec_kind = "count"
        elif kind is str:
            distinct = values[path]
            sample = list(distinct)[:50]
            if sample and all(iso_hour(v) is not None for v in sample):
                spec_kind = "hour"
            elif spaced[path] * 2 > counts[path]:
                spec_kind = "text"
            elif len(distinct) <= max_categories and len(distinct) * 2 <= counts[path]:
                spec_kind = "categorical"
        if spec_kind is not None:
            specs.append(
                FeatureSpec(path, spec_kind, _family(path, spec_kind, temporal_set, behavioral_set))
            )
    return specs
