"""A handler's result with a misspelt well-known key (`confidnce` for `confidence`) is kept as
written, and the run's `warnings` say which key and what was likely meant; keys that are not
near a well-known key, or that come with it, are not warned about."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import config

from cascadence import CascadeEngine
from cascadence.hooks import CadenceHooks


def handler(result: dict[str, Any]) -> Any:
    async def returns(_ctx: Any) -> dict[str, Any]:
        return dict(result)

    return returns


async def warnings_of(
    returned: dict[str, Any], stage: dict[str, Any] | None = None, **engine_options: Any
) -> list[Any]:
    engine = CascadeEngine(config({"A": stage or {}}), **engine_options)
    engine.register_stage("A", handler(returned))
    result = await engine.execute({})
    return result["warnings"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("returned", "key", "meant"),
    [
        ({"result": "pass", "confidnce": 0.9}, "confidnce", "confidence"),
        ({"result": "pass", "Confidence": 0.9, "data": {}}, "Confidence", "confidence"),
        ({"reslt": "pass", "confidence": 0.9, "data": {}}, "reslt", "result"),
        ({"result": "pass", "confidence": 0.9, "datta": {"x": 1}}, "datta", "data"),
    ],
)
async def test_a_misspelt_key_is_warned_about(
    returned: dict[str, Any], key: str, meant: str
) -> None:
    """One warning at `stages.A.<key>` naming the key, the key meant and what it reads."""
    warnings = await warnings_of(returned)
    assert warnings == [
        {
            "path": f"stages.A.{key}",
            "message": f"stage 'A' returned {key!r}, kept as written, and no {meant!r} (so "
            f"stages.A.{meant} is {'{}' if meant == 'data' else 'None'}); did you mean "
            f"{meant!r}?",
        }
    ]


async def test_the_key_is_kept_and_rules_read_the_well_known_one() -> None:
    """The result keeps the misspelt key; a rule on the real key sees None (the warning is
    why)."""
    engine = CascadeEngine(
        config(
            {
                "A": {
                    "routing_rules": [
                        {
                            "name": "sure",
                            "condition": "stages.A.confidence >= 0.8",
                            "action": {"type": "terminate"},
                        }
                    ]
                },
                "B": {},
            }
        )
    )
    engine.register_stages(
        {"A": handler({"result": "pass", "confidnce": 0.9}), "B": handler({"result": "b"})}
    )
    result = await engine.execute({})
    assert result["stage_results"]["A"]["confidnce"] == 0.9
    assert result["stage_results"]["A"]["confidence"] is None
    assert result["path"] == ["A", "B"]  # the rule did not match
    assert [w["path"] for w in result["warnings"]] == ["stages.A.confidnce"]


@pytest.mark.parametrize(
    "returned",
    [
        {"result": "pass", "confidence": 0.9, "data": {}},
        {"result": "pass", "confidence": 0.9, "data": {}, "reason": "ok", "decison": "x"},
        {"result": "pass", "date": "2024-05-01", "decison": "x", "conf": 0.9},
        {"result": "pass", "confidence": 0.9, "data": {}, "confidnce": 0.8},  # both given
        {"result": "pass"},
    ],
)
async def test_keys_that_are_not_near_a_missing_well_known_key_pass(
    returned: dict[str, Any],
) -> None:
    assert await warnings_of(returned) == []


async def test_every_way_a_stage_runs_warns_the_same() -> None:
    """The hot path, a stage with a policy (retries), with hooks attached, and a parallel
    group all check the keys."""
    returned = {"result": "pass", "confidnce": 0.9}
    expected = ["stages.A.confidnce"]
    assert [w["path"] for w in await warnings_of(returned)] == expected
    retried = await warnings_of(returned, {"max_retries": 2, "retry_delay_ms": 0})
    assert [w["path"] for w in retried] == expected
    hooked = await warnings_of(returned, hooks=[CadenceHooks()])
    assert [w["path"] for w in hooked] == expected
    engine = CascadeEngine(
        config(
            {name: {"can_run_parallel": True, "parallel_group": "g"} for name in ("A", "B", "C")}
        )
    )
    engine.register_stages(
        {
            "A": handler(returned),
            "B": handler({"result": "b", "confidence": 0.5, "data": {}}),
            "C": lambda _ctx: {"reslt": "c"},
        }
    )
    result = await engine.execute({})
    assert sorted(w["path"] for w in result["warnings"]) == ["stages.A.confidnce", "stages.C.reslt"]
