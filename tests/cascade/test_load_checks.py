"""Load-time checks of stage references and paths: `cache_key_fields` naming a stage that is not
there (or not yet run), malformed `set_field` and `cache_key_fields` paths (errors), and
settings that load but do nothing: a `parallel_group` without `can_run_parallel: true`, a
disabled stage that no rule enables (lints: warnings of `cascadence validate`, silent when a
program builds the config)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from cascade_files import line_of, write
from hypothesis import given
from hypothesis import strategies as st

from cascadence.cascade import CascadeConfig, StageConfig
from cascadence.cascade.loader import LINTING
from cascadence.cli.templates import CASCADE_YAML
from cascadence.errors import ConfigError, ConfigWarning

EXAMPLES = Path(__file__).parents[2] / "examples"


def load_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_file(path)
    return info.value


def config_warnings(load: Any, lint: bool = True) -> list[warnings.WarningMessage]:
    """The `ConfigWarning`s of calling `load()`, with the lints (as `cascadence validate`
    loads) unless `lint` is false; it must load."""
    token = LINTING.set(lint)
    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            load()
    finally:
        LINTING.reset(token)
    return [w for w in seen if w.category is ConfigWarning]


def warned_messages(data: dict[str, Any]) -> list[str]:
    return [str(w.message) for w in config_warnings(lambda: CascadeConfig.from_dict(data))]


def rule(name: str, action: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "condition": "amount > 100", "action": action, **extra}


# -- cache_key_fields --------------------------------------------------------------------------


def test_cache_key_field_of_an_unknown_stage_is_an_error_at_its_line(tmp_path: Path) -> None:
    """`stages.FEATURE.data.vector` in cache_key_fields, with only FEATURES there: an error at
    the item's line, with the stages listed and the closest one."""
    path = write(
        tmp_path,
        """
        name: c
        stages:
          FEATURES: {}
          SCORE:
            depends_on: [FEATURES]
            cache_enabled: true
            cache_key_fields:
              - user.id
              - stages.FEATURE.data.vector
        """,
    )
    error = load_error(path)
    (issue,) = error.issues
    assert issue.path == "stages.SCORE.cache_key_fields[1]"
    assert issue.message == (
        "unknown stage 'FEATURE' in cache_key_fields path 'stages.FEATURE.data.vector'"
    )
    assert issue.expected == "one of: FEATURES, SCORE"
    assert issue.suggestion == "FEATURES"
    assert (issue.file, issue.line) == (str(path), line_of(path, "stages.FEATURE.data"))
    assert f"{path}:{issue.line}" in str(error) and "did you mean 'FEATURES'?" in str(error)


def test_cache_key_field_of_the_stage_itself_or_a_later_stage_is_an_error() -> None:
    """A stage's own result, or that of a stage that runs after it (here by depends_on), is
    never there when its cache key is made; earlier stages and input fields are fine."""
    data = {
        "name": "c",
        "stages": {
            "A": {},
            "B": {
                "cache_enabled": True,
                "cache_key_fields": ["user.id", "stages.A.data.x", "stages.B.result", "stages.C"],
            },
            "C": {"depends_on": ["B"]},
        },
    }
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict(data)
    own, later = info.value.issues
    assert own.path == "stages.B.cache_key_fields[2]"
    assert "reads the result of stage 'B' itself" in own.message
    assert own.expected is not None and "a stage that runs before 'B'" in own.expected
    assert later.path == "stages.B.cache_key_fields[3]"
    assert "reads the result of 'C', which runs after 'B'" in later.message

    # with C first in execution_order, C's result is there
    data["stages"]["C"] = {}
    data["execution_order"] = ["A", "C", "B"]
    data["stages"]["B"]["cache_key_fields"] = ["stages.A.data.x", "stages.C.confidence"]
    assert config_warnings(lambda: CascadeConfig.from_dict(data)) == []


def test_cache_key_field_with_an_empty_segment_is_an_error() -> None:
    """`user..id` in cache_key_fields: refused, with the path without the empty segment; an
    empty path names no field."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict(
            {"name": "c", "stages": {"A": {"cache_key_fields": ["user..id", "ok", ""]}}}
        )
    malformed, empty = info.value.issues
    assert malformed.path == "stages.A.cache_key_fields[0]"
    assert "'user..id' has an empty segment" in malformed.message
    assert malformed.suggestion == "user.id"
    assert empty.path == "stages.A.cache_key_fields[2]"
    assert empty.message == "cache_key_fields path is empty, so it names no field"
    assert empty.suggestion is None


# -- set_field paths ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "suggestion"),
    [("review..required", "review.required"), (".flag", "flag"), ("flag.", "flag"), (".", None)],
)
def test_malformed_set_field_path_is_an_error_at_its_line(
    tmp_path: Path, field: str, suggestion: str | None
) -> None:
    """A set_field path with an empty segment would write a key named "": refused at the line
    of `field:`, with the closest well-formed path."""
    path = write(
        tmp_path,
        f"""
        name: c
        stages:
          A:
            routing_rules:
              - name: flag_it
                condition: "amount > 100"
                action:
                  type: set_field
                  field: "{field}"
                  value: true
        """,
    )
    error = load_error(path)
    (issue,) = error.issues
    assert issue.path == "stages.A.routing_rules[0].action.field"
    assert issue.message == (
        f"set_field path {field!r} has an empty segment (two dots, or a dot at an end)"
    )
    assert issue.expected is not None and "'review.required'" in issue.expected
    assert issue.suggestion == suggestion
    assert (issue.file, issue.line) == (str(path), line_of(path, "field:"))


def test_empty_set_field_path_is_reported_once() -> None:
    """`field: ""` keeps its one error (the field is required), not a second one."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict(
            {
                "name": "c",
                "stages": {"A": {"routing_rules": [rule("r", {"type": "set_field", "field": ""})]}},
            }
        )
    paths = [i.path for i in info.value.issues]
    assert paths.count("stages.A.routing_rules[0].action.field") == 1


SEGMENT = st.text(st.characters(exclude_characters=".", codec="utf-8"), min_size=1, max_size=4)


@given(st.lists(st.sampled_from(["", "x"]) | SEGMENT, min_size=1, max_size=5))
def test_set_field_paths_are_refused_exactly_when_a_segment_is_empty(parts: list[str]) -> None:
    """Any path of non-empty segments loads; any other is refused, suggesting the path of its
    non-empty segments."""
    field = ".".join(parts)
    data = {
        "name": "c",
        "stages": {
            "A": {"routing_rules": [rule("r", {"type": "set_field", "field": field, "value": 1})]}
        },
    }
    if field == "" or (all(parts) and parts[0] == "stages"):
        return  # a field error of its own; a stage result, which rules cannot write
    if all(parts):
        CascadeConfig.from_dict(data)
        return
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_dict(data)
    (issue,) = info.value.issues
    assert issue.path == "stages.A.routing_rules[0].action.field"
    assert issue.suggestion == (".".join(p for p in parts if p) or None)


# -- parallel_group without can_run_parallel ---------------------------------------------------


def test_parallel_group_without_can_run_parallel_warns_at_its_line(tmp_path: Path) -> None:
    """The group does nothing for a stage that cannot run in parallel: a warning at the line of
    `parallel_group`, naming the members it would run with and the fix."""
    path = write(
        tmp_path,
        """
        name: c
        stages:
          A: {can_run_parallel: true, parallel_group: fetch}
          B:
            parallel_group: fetch
          C: {can_run_parallel: true, parallel_group: fetch}
        """,
    )
    (warned,) = config_warnings(lambda: CascadeConfig.from_file(path))
    assert (warned.filename, warned.lineno) == (str(path), line_of(path, "    parallel_group"))
    assert str(warned.message) == (
        "stages.B.parallel_group: parallel_group 'fetch' has no effect: stage 'B' does not have "
        "can_run_parallel: true, so it never runs in parallel with 'A', 'C'; write "
        "can_run_parallel: true to run it in the group, or remove parallel_group"
    )
    assert isinstance(warned.message, ConfigWarning)
    issue = warned.message.issue
    assert issue is not None and issue.expected == "can_run_parallel: true beside parallel_group"


@pytest.mark.parametrize(
    ("stage", "warns"),
    [
        ({"parallel_group": "g"}, True),
        ({"parallel_group": "g", "can_run_parallel": False}, True),  # the spec's field listing
        ({"parallel_group": "g", "can_run_parallel": "no"}, True),
        ({"parallel_group": "g", "can_run_parallel": True}, False),
        ({"parallel_group": "g", "can_run_parallel": "yes"}, False),
        ({"parallel_group": None}, False),
        ({"can_run_parallel": True}, False),  # the default group
        ({}, False),
    ],
)
def test_parallel_group_warns_only_without_can_run_parallel(
    stage: dict[str, Any], warns: bool
) -> None:
    messages = warned_messages({"name": "c", "stages": {"A": stage}})
    assert len(messages) == warns
    assert all("has no effect" in m for m in messages)


def test_lints_are_silent_when_a_program_builds_the_config(tmp_path: Path) -> None:
    """The spec's StageConfig reference writes `can_run_parallel=False` beside a
    `parallel_group`, and a stage may be switched off on purpose: a program building such a
    config gets no warning (only `cascadence validate` reports them)."""
    config = lambda: CascadeConfig(  # noqa: E731
        name="c",
        stages=[
            StageConfig(name="A", can_run_parallel=False, parallel_group="group_a"),
            StageConfig(name="B", enabled=False),
        ],
    )
    assert config_warnings(config, lint=False) == []
    assert len(config_warnings(config)) == 2
    path = write(tmp_path, "name: c\nstages:\n  A: {parallel_group: g}\n  B: {enabled: false}\n")
    assert config_warnings(lambda: CascadeConfig.from_file(path), lint=False) == []


# -- disabled stages that never run ------------------------------------------------------------


def test_disabled_stage_that_no_rule_enables_warns_at_its_line(tmp_path: Path) -> None:
    """`enabled: false` with no enable_stages (nor skip_to) naming the stage: it never runs. A
    warning at the line of `enabled:`; the config still loads."""
    path = write(
        tmp_path,
        """
        name: c
        stages:
          FAST:
            routing_rules:
              - name: unsure
                condition: "stages.FAST.confidence < 0.8"
                action: {type: enable_stages, stages: [MEDIUM]}
          MEDIUM:
            enabled: false
          DEEP:
            enabled: false
        """,
    )
    (warned,) = config_warnings(lambda: CascadeConfig.from_file(path))
    assert (warned.filename, warned.lineno) == (str(path), line_of(path, "enabled: false") + 2)
    assert str(warned.message) == (
        "stages.DEEP.enabled: stage 'DEEP' never runs: it is disabled (enabled: false) and no "
        "routing rule enables it (enable_stages or skip_to); enable it from a rule of a stage "
        "that runs before it (enable_stages: [DEEP]), or remove it if it is switched off for good"
    )
    assert isinstance(warned.message, ConfigWarning)
    issue = warned.message.issue
    assert issue is not None and issue.path == "stages.DEEP.enabled"
    assert issue.expected is not None and "enable_stages action naming 'DEEP'" in issue.expected


def test_disabled_stage_enabled_only_by_disabled_rules_warns() -> None:
    messages = warned_messages(
        {
            "name": "c",
            "stages": {
                "A": {
                    "routing_rules": [
                        rule("r", {"type": "enable_stages", "stages": ["B"]}, enabled=False)
                    ]
                },
                "B": {"enabled": False},
            },
        }
    )
    assert messages == [
        "stages.B.enabled: stage 'B' never runs: it is disabled (enabled: false) and the only "
        "rules that enable it are disabled (stages.A.routing_rules[0]); enable it from a rule of "
        "a stage that runs before it (enable_stages: [B]), or remove it if it is switched off "
        "for good"
    ]


def test_disabled_stage_enabled_only_by_a_stage_that_never_runs_warns_too() -> None:
    """B is never enabled, so its rule enabling C never applies: both warn."""
    messages = warned_messages(
        {
            "name": "c",
            "stages": {
                "A": {},
                "B": {
                    "enabled": False,
                    "routing_rules": [rule("r", {"type": "enable_stages", "stages": ["C"]})],
                },
                "C": {"enabled": False},
            },
        }
    )
    assert [m.split(":")[0] for m in messages] == ["stages.B.enabled", "stages.C.enabled"]
    assert (
        "only rules of stages that never run enable it (stages.B.routing_rules[0])" in (messages[1])
    )


@pytest.mark.parametrize(
    "stages",
    [
        # enabled by a rule of an earlier stage
        {
            "A": {"routing_rules": [rule("r", {"type": "enable_stages", "stages": ["B"]})]},
            "B": {"enabled": False},
        },
        # the target of a skip_to runs, disabled or not
        {
            "A": {"routing_rules": [rule("r", {"type": "skip_to", "target": "C"})]},
            "B": {},
            "C": {"enabled": False},
        },
        # a chain: A enables B, whose rule enables C
        {
            "A": {"routing_rules": [rule("r", {"type": "enable_stages", "stages": ["B"]})]},
            "B": {
                "enabled": "off",
                "routing_rules": [rule("r", {"type": "enable_stages", "stages": ["C"]})],
            },
            "C": {"enabled": 0},
        },
        # a precondition of C enables D; a rule of E enables B, which runs after E
        {
            "A": {},
            "B": {"enabled": False},
            "C": {
                "routing_rules": [
                    rule("r", {"type": "enable_stages", "stages": ["D"]}, type="precondition")
                ]
            },
            "D": {"enabled": False},
            "E": {
                "routing_rules": [rule("p", {"type": "enable_stages", "stages": ["B"]})],
            },
        },
    ],
)
def test_disabled_stages_that_a_rule_can_enable_do_not_warn(stages: dict[str, Any]) -> None:
    if "E" in stages:
        data = {"name": "c", "stages": stages, "execution_order": ["A", "C", "D", "E", "B"]}
    else:
        data = {"name": "c", "stages": stages}
    assert warned_messages(data) == []


# -- the examples ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.rglob("*.yaml")), ids=lambda p: str(p.relative_to(EXAMPLES))
)
def test_the_examples_load_without_errors_or_warnings(path: Path) -> None:
    """The example cascades (the quick start is the spec's own) are clean: their disabled
    stages are enabled by rules and they use no group without can_run_parallel."""
    assert config_warnings(lambda: CascadeConfig.from_file(path)) == []


def test_the_generated_cascade_loads_without_warnings() -> None:
    text = CASCADE_YAML.substitute(
        name="risk", file="cascade.yaml", module="risk.handlers", events="events.jsonl"
    )
    assert config_warnings(lambda: CascadeConfig.from_yaml(text)) == []
