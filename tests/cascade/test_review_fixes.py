"""CachePlugin keys as `cache_enabled` does; a stage's recorded error says why its retries were
cut; a config reports every problem of a condition at once; bad plugin options name the closest
valid one; `ConfigWatcher` is exported and the README's hot reload snippet runs."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import cascadence
from cascadence import (
    CachePlugin,
    CascadeConfig,
    CascadeEngine,
    ConfigError,
    ExecutionContext,
    PluginFactory,
    PluginRegistry,
    retry,
    timeout,
)
from cascadence.runtime.invoke import add_note

ROOT = Path(__file__).parents[2]


def _config(stages: dict[str, Any], **top: Any) -> CascadeConfig:
    return CascadeConfig.from_dict({"name": "review", "stages": stages, **top})


# -- 1. CachePlugin keys on the input and the results it could read ----------------------------


def _counting_a(values: list[Any]) -> Any:
    """Stage A: returns the next of `values` on each run."""
    runs = iter(values)

    def a(_ctx: ExecutionContext) -> dict[str, Any]:
        return {"result": next(runs), "confidence": 0.5}

    return a


def _reading_b(calls: list[Any]) -> Any:
    """Stage B: returns A's result, counting its calls."""

    def b(ctx: ExecutionContext) -> dict[str, Any]:
        result = ctx.get("stages.A.result")
        calls.append(result)
        return {"result": result, "confidence": 1.0}

    return b


async def test_cache_plugin_misses_when_an_earlier_result_changes() -> None:
    """The same input after another decision of A is another key: B is not served stale."""
    calls: list[Any] = []
    engine = CascadeEngine(_config({"A": {}, "B": {}}))
    engine.register_stage("A", _counting_a([1, 2, 2]))
    engine.register_stage("B", CachePlugin(_reading_b(calls), ttl_seconds=60))
    finals = [(await engine.execute({"x": 1}))["final_result"] for _ in range(3)]
    assert finals == [1, 2, 2]
    assert calls == [1, 2]  # the third run, same input and same A result, is a hit


@pytest.mark.parametrize(
    "key_fields",
    [None, ["x"], ["stages.A.result"]],
    ids=["whole", "input-field", "stage-field"],
)
async def test_cache_plugin_and_cache_enabled_agree(key_fields: list[str] | None) -> None:
    """A stage wrapped in `CachePlugin` and a stage with `cache_enabled: true` (and the same
    key fields) call their handler on the same runs."""
    runs = [({"x": 1, "y": 1}, 1), ({"x": 1, "y": 2}, 1), ({"x": 1, "y": 2}, 2), ({"x": 2}, 2)]

    async def calls_of(plugin: bool) -> list[Any]:
        calls: list[Any] = []
        b: dict[str, Any] = {}
        if not plugin:
            b = {"cache_enabled": True, "cache_ttl_seconds": 60}
            if key_fields is not None:
                b["cache_key_fields"] = key_fields
        engine = CascadeEngine(_config({"A": {}, "B": b}))
        engine.register_stage("A", _counting_a([result for _, result in runs]))
        handler = _reading_b(calls)
        engine.register_stage(
            "B",
            CachePlugin(handler, ttl_seconds=60, key_fields=key_fields) if plugin else handler,
        )
        for data, _ in runs:
            await engine.execute(data)
        return calls

    assert await calls_of(plugin=True) == await calls_of(plugin=False)


async def test_cache_plugin_outside_a_cascade_keys_on_the_input() -> None:
    """Called with a plain value, the key is that value, whole or its `key_fields`."""
    calls: list[Any] = []

    async def handler(value: Any) -> Any:
        calls.append(value)
        return len(calls)

    cached = CachePlugin(handler, ttl_seconds=60, key_fields=["user.id"])
    assert await cached({"user": {"id": 1}, "n": 1}) == 1
    assert await cached({"user": {"id": 1}, "n": 2}) == 1  # same key field
    assert await cached({"user": {"id": 2}}) == 2
    assert len(calls) == 2


def test_cache_plugin_refuses_key_fields_that_are_not_paths() -> None:
    """A string for the list, or an empty path, says what to write."""
    with pytest.raises(TypeError, match=r"write \['user_id'\]"):
        CachePlugin(lambda ctx: 1, key_fields="user_id")
    with pytest.raises(ValueError, match=r"dot paths such as 'user\.id'"):
        CachePlugin(lambda ctx: 1, key_fields=["user..id"])


# -- 2. a stage's recorded error says why its retries were cut --------------------------------


def _always_fails(_ctx: Any) -> Any:
    raise RuntimeError("service down")


async def test_retries_cut_by_the_global_timeout_are_explained() -> None:
    """The next backoff would end past the run's deadline: the error says after which
    attempt, of how many, and which limit stopped them; the run does not wait for it."""
    engine = CascadeEngine(
        _config({"A": {"max_retries": 5, "retry_delay_ms": 1000}}, global_timeout_ms=200)
    )
    engine.register_stage("A", _always_fails)
    started = time.monotonic()
    result = await engine.execute({})
    assert time.monotonic() - started < 0.6
    expected = (
        "service down (no retry after attempt 1 of 6: the next would start 1s from now, "
        "after the cascade's global timeout (0.2s) runs out)"
    )
    assert result["errors"] == [{"stage": "A", "error": expected, "type": "RuntimeError"}]
    assert result["stage_results"]["A"]["error"] == expected
    assert result["stage_results"]["A"]["error_type"] == "RuntimeError"


async def test_retries_cut_after_some_attempts_name_the_last_attempt() -> None:
    """Retries that ran, then stopped before the last attempt, say which attempt was last."""
    engine = CascadeEngine(
        _config(
            {"A": {"max_retries": 5, "retry_delay_ms": 200, "retry_backoff": "fixed"}},
            global_timeout_ms=500,
        )
    )
    engine.register_stage("A", _always_fails)
    result = await engine.execute({})
    error = result["stage_results"]["A"]["error"]
    found = re.fullmatch(
        r"'A' failed after (\d) attempts: RuntimeError\('service down'\) \(no retry after "
        r"attempt (\d) of 6: the next would start 0\.2s from now, after the cascade's global "
        r"timeout \(0\.5s\) runs out\)",
        error,
    )
    assert found is not None, error
    assert found.group(1) == found.group(2) and 1 < int(found.group(1)) < 6
    assert result["errors"][0]["error"] == error
    assert result["errors"][0]["type"] == "RetryExhaustedError"


async def test_retries_cut_by_the_steps_own_time_limit_are_explained() -> None:
    """A note whose `@timeout` covers all its attempts, run as a stage: the step's limit."""

    @timeout(0.2)
    @retry(max_attempts=4, delay=1.0)
    async def flaky(_ctx: Any) -> Any:
        raise ConnectionError("refused")

    engine = CascadeEngine(_config({"A": {}}, global_timeout_ms=None))
    engine.register_stage("A", flaky)
    result = await engine.execute({})
    assert result["stage_results"]["A"]["error"] == (
        "refused (no retry after attempt 1 of 4: the next would start 1s from now, after the "
        "step's time limit (0.2s for all attempts) runs out)"
    )


async def test_errors_without_cut_retries_are_recorded_as_raised() -> None:
    """No retries, or retries that all ran: the error is the exception's message alone."""
    engine = CascadeEngine(
        _config({"A": {}, "B": {"max_retries": 1, "retry_delay_ms": 1}}, global_timeout_ms=5000)
    )
    engine.register_stage("A", _always_fails)
    engine.register_stage("B", _always_fails)
    result = await engine.execute({})
    assert result["stage_results"]["A"]["error"] == "service down"
    assert result["stage_results"]["B"]["error"] == (
        "'B' failed after 2 attempts: RuntimeError('service down')"
    )


def test_add_note_keeps_the_note_where_exceptions_take_none() -> None:
    """Without `BaseException.add_note` (Python 3.10) the note is kept in `__notes__`."""

    class NoNotes(Exception):
        add_note = None  # as exceptions are before Python 3.11

    error = NoNotes("x")
    add_note(error, "first")
    add_note(error, "second")
    assert error.__notes__ == ["first", "second"]


# -- 3. every problem of a condition at once -------------------------------------------------

_CONDITION = {
    "operator": "AND",
    "conditions": [
        {"feild": "x", "operator": "GTE", "value": 1},
        {"field": "y", "operator": "IN", "value": "a"},
    ],
}
_AT = "stages.A.routing_rules[0].condition.conditions"


def _issues(error: ConfigError) -> list[tuple[str, str | None]]:
    return [(issue.path, issue.suggestion) for issue in error.issues]


def test_loading_reports_every_problem_of_a_condition() -> None:
    """A misspelt key no longer hides an unknown operator or a wrong value beside it."""
    rule = {"name": "r", "condition": _CONDITION, "action": {"type": "terminate"}}
    with pytest.raises(ConfigError) as info:
        _config({"A": {"routing_rules": [rule]}})
    assert _issues(info.value) == [
        (f"{_AT}[0].feild", "field"),
        (f"{_AT}[0].operator", ">="),
        (f"{_AT}[1].value", None),
    ]
    text = str(info.value)
    assert "unknown operator 'GTE'" in text and "IN needs a list of values" in text
    assert text.count(".feild:") == 1  # reported once, not by both checks
    assert "Traceback" not in text


def test_a_misspelt_key_stands_for_the_key_it_misspells() -> None:
    """`operater` is one problem (not also "'operator' is required"); a sibling's is added."""
    condition = {
        "operator": "OR",
        "conditions": [
            {"field": "amount", "operater": "<", "value": 3},
            {"field": "y", "operator": "IN", "value": "a"},
        ],
    }
    rule = {"name": "r", "condition": condition, "action": {"type": "terminate"}}
    with pytest.raises(ConfigError) as info:
        _config({"A": {"routing_rules": [rule]}})
    assert _issues(info.value) == [(f"{_AT}[0].operater", "operator"), (f"{_AT}[1].value", None)]


def test_termination_conditions_report_every_problem() -> None:
    """The same holds for a termination condition."""
    with pytest.raises(ConfigError) as info:
        _config({"A": {}}, termination_conditions=[_CONDITION])
    assert [path for path, _ in _issues(info.value)] == [
        "termination_conditions[0].conditions[0].feild",
        "termination_conditions[0].conditions[0].operator",
        "termination_conditions[0].conditions[1].value",
    ]


def test_condition_problems_carry_their_file_and_line(tmp_path: Path) -> None:
    """From a file, each problem is placed at its own line."""
    path = tmp_path / "cascade.yaml"
    path.write_text(
        "name: review\n"
        "stages:\n"
        "  A:\n"
        "    routing_rules:\n"
        "      - name: r\n"
        "        condition:\n"
        "          operator: AND\n"
        "          conditions:\n"
        "            - feild: x\n"
        "              operator: GTE\n"
        "              value: 1\n"
        "            - field: y\n"
        "              operator: IN\n"
        "              value: a\n"
        "        action: {type: terminate}\n"
    )
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_file(path)
    assert [(i.path, i.file, i.line) for i in info.value.issues] == [
        (f"{_AT}[0].feild", str(path), 9),
        (f"{_AT}[0].operator", str(path), 10),
        (f"{_AT}[1].value", str(path), 14),
    ]
    assert f"{path}:10:" in str(info.value)


# -- 4. plugin options: the closest valid name ------------------------------------------------


async def test_a_misspelt_plugin_option_names_the_closest_and_the_valid_ones() -> None:
    """The message names where the option was given, the closest option and all of them."""

    async def handler(_ctx: Any) -> Any:
        return {"result": 1}

    with pytest.raises(ValueError) as info:
        await PluginFactory.wrap_handler(handler, ["retry"], {"retry": {"max_retires": 3}})
    assert str(info.value) == (
        "invalid options for plugin 'retry': config['retry']['max_retires'] is not an option "
        "of RetryPlugin; did you mean 'max_retries'? (valid options: backoff, clock, delay_ms, "
        "max_retries)"
    )
    assert info.value.__cause__ is None and info.value.__context__ is None


def test_plugin_options_must_be_a_mapping() -> None:
    """Options that are not a mapping say so, naming the plugin's entry."""
    with pytest.raises(ValueError, match=r"config\['cache'\] must be a mapping .* got int"):
        PluginRegistry().wrap(lambda ctx: 1, ["cache"], {"cache": 60})  # type: ignore[dict-item]


def test_a_plugin_taking_any_keyword_gets_its_options_unchecked() -> None:
    """A registered plugin with `**options` decides itself what it takes."""
    seen: dict[str, Any] = {}

    def tagging(handler: Any, **options: Any) -> Any:
        seen.update(options)
        return handler

    registry = PluginRegistry()
    registry.register_plugin("tagging", tagging)
    registry.wrap(lambda ctx: 1, ["tagging"], {"tagging": {"anything": 1}})
    assert seen == {"anything": 1}


# -- 5. ConfigWatcher is public, and the README's hot reload snippet runs ----------------------


def test_config_watcher_is_exported() -> None:
    """`from cascadence import ConfigWatcher` is the file watcher, listed in `__all__`."""
    from cascadence.cascade.reload import ConfigWatcher

    assert cascadence.ConfigWatcher is ConfigWatcher
    assert "ConfigWatcher" in cascadence.__all__


def test_readme_hot_reload_snippet_runs() -> None:
    """The README's hot reload example runs as written and prints the new version."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Hot reload") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    out = subprocess.run(
        [sys.executable, "-c", found.group(1)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "2"
