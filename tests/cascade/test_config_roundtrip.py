"""Property: every valid config survives to_dict/from_dict, to_yaml/from_yaml and JSON."""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascadence.cascade import STAGE_COSTS, CascadeConfig

NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,11}", fullmatch=True)
IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | TEXT
    | st.floats(allow_nan=False, allow_infinity=False)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(IDENT, inner, max_size=3),
    max_leaves=8,
)
NUMBER = st.integers(-1000, 1000) | st.floats(-1e6, 1e6, allow_nan=False)
FIELD = (
    st.lists(IDENT, min_size=1, max_size=3)
    .map(".".join)
    .filter(lambda f: not f.startswith("stages"))
)


def leaf(stages: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """A structured comparison that the condition language accepts."""
    field = FIELD | (
        st.sampled_from(stages).map(lambda s: f"stages.{s}.confidence") if stages else FIELD
    )
    return st.one_of(
        st.builds(
            lambda f, o, v: {"field": f, "operator": o, "value": v},
            field,
            st.sampled_from(["==", "!=", ">", ">=", "<", "<="]),
            NUMBER,
        ),
        st.builds(
            lambda f, v: {"field": f, "operator": "IN", "value": v},
            field,
            st.lists(NUMBER | IDENT, max_size=3),
        ),
        st.builds(lambda f: {"field": f, "operator": "EXISTS"}, field),
        st.builds(lambda f, v: {"field": f, "operator": "CONTAINS", "value": v}, field, IDENT),
    )


@functools.cache
def condition(stages: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """A valid condition, structured or an expression string (built once per stage names)."""
    structured = st.recursive(
        leaf(stages),
        lambda inner: st.builds(
            lambda o, c: {"operator": o, "conditions": c},
            st.sampled_from(["AND", "OR"]),
            st.lists(inner, min_size=1, max_size=3),
        ),
        max_leaves=4,
    )
    expression = st.builds(
        lambda f, o, n: f"{f} {o} {n}",
        FIELD,
        st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
        st.integers(-1000, 1000),
    )
    return structured | expression


@st.composite
def action(draw: st.DrawFn, later: list[str]) -> dict[str, Any]:
    kinds = ["terminate", "set_field"]
    if later:  # what a rule can still reach: the stages after its own
        kinds += ["skip_to", "enable_stages", "disable_stages"]
    kind = draw(st.sampled_from(kinds))
    out: dict[str, Any] = {"type": kind}
    if kind == "skip_to":
        out["target"] = draw(st.sampled_from(later))
    elif kind in ("enable_stages", "disable_stages"):
        out["stages"] = draw(st.lists(st.sampled_from(later), min_size=1, max_size=3))
    elif kind == "set_field":
        out["field"] = draw(FIELD)
        out["value"] = draw(JSON)  # required, null included
    if draw(st.booleans()):
        out["reason"] = draw(TEXT)
    return out


def optional(
    draw: st.DrawFn, out: dict[str, Any], key: str, strategy: st.SearchStrategy[Any]
) -> None:
    if draw(st.booleans()):
        out[key] = draw(strategy)


@st.composite
def stage(draw: st.DrawFn, name: str, earlier: list[str], names: list[str]) -> dict[str, Any]:
    later = names[names.index(name) + 1 :]
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["name"] = name
    optional(draw, out, "enabled", st.booleans())
    optional(draw, out, "handler_type", st.none() | IDENT)
    optional(draw, out, "handler", st.builds(lambda m, f: f"{m}.mod:{f}", IDENT, IDENT))
    optional(draw, out, "timeout_ms", st.none() | st.integers(1, 10**6))
    optional(draw, out, "max_retries", st.integers(0, 10))
    optional(draw, out, "retry_delay_ms", st.integers(0, 10**5))
    optional(draw, out, "retry_backoff", st.sampled_from(["fixed", "exponential"]))
    optional(draw, out, "retry_backoff_multiplier", st.floats(1, 10))
    optional(draw, out, "retry_max_delay_ms", st.none() | st.integers(0, 10**6))
    optional(draw, out, "can_run_parallel", st.booleans())
    optional(draw, out, "parallel_group", st.none() | IDENT)
    if earlier:
        optional(draw, out, "depends_on", st.lists(st.sampled_from(earlier), unique=True))
    optional(draw, out, "cache_enabled", st.booleans())
    optional(draw, out, "cache_ttl_seconds", st.integers(1, 10**6))  # 0 with a cache is refused
    optional(draw, out, "cache_key_fields", st.none() | st.lists(FIELD, max_size=3))
    optional(
        draw,
        out,
        "circuit_breaker",
        st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "failure_threshold": st.integers(1, 10),
                "reset_timeout_seconds": st.floats(0.1, 600),
            },
        ),
    )
    optional(draw, out, "cost", st.floats(0, 1000) | st.sampled_from(list(STAGE_COSTS)))
    optional(draw, out, "stop_on_failure", st.booleans())
    optional(draw, out, "custom_properties", st.dictionaries(IDENT, JSON, max_size=3))
    optional(draw, out, "description", st.none() | TEXT)
    rule_names = draw(st.lists(IDENT, unique=True, max_size=3))
    rules: list[dict[str, Any]] = []
    for rule_name in rule_names:
        kind = draw(st.sampled_from([None, "precondition", "routing", "postcondition"]))
        # a rule reads the results of earlier stages, and of its own once it ran (not in a
        # precondition, which runs before it)
        readable = (*earlier, name) if kind != "precondition" else tuple(earlier)
        rule: dict[str, Any] = {
            "name": rule_name,
            "condition": draw(condition(readable)),
            "action": draw(action(later)),
        }
        if kind is not None:
            rule["type"] = kind
        optional(draw, rule, "priority", st.integers(-100, 100))
        optional(draw, rule, "enabled", st.booleans())
        optional(draw, rule, "description", st.none() | TEXT)
        rules.append(rule)
    keep_empty: bool = draw(st.booleans())
    if rules or keep_empty:
        out["routing_rules"] = rules
    return out


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(NAMES, min_size=1, max_size=4, unique=True))
    stages = {name: draw(stage(name, names[:i], names)) for i, name in enumerate(names)}
    out: dict[str, Any] = {"name": draw(IDENT)}
    if draw(st.booleans()):
        out["stages"] = stages
    else:
        out["stages"] = [{**body, "name": name} for name, body in stages.items()]
    optional(draw, out, "version", st.sampled_from(["1.0", "2", "2024.01"]))
    optional(draw, out, "description", st.none() | TEXT)
    optional(draw, out, "execution_order", st.just(names))
    optional(draw, out, "global_timeout_ms", st.none() | st.integers(1, 10**7))
    optional(draw, out, "max_parallel_stages", st.integers(1, 100))
    optional(draw, out, "termination_conditions", st.lists(condition(tuple(names)), max_size=2))
    optional(draw, out, "stop_on_failure", st.booleans())
    optional(draw, out, "metadata", st.dictionaries(IDENT, JSON, max_size=3))
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_valid_configs_round_trip(data: dict[str, Any]) -> None:
    """Valid configs reload equal from to_dict, to_yaml and to_json, and to_dict is stable."""
    config = CascadeConfig.from_dict(data)
    again = CascadeConfig.from_dict(config.to_dict())
    assert again == config
    assert again.to_dict() == config.to_dict()
    assert CascadeConfig.from_yaml(config.to_yaml()) == config
    assert CascadeConfig.from_json(config.to_json()) == config
