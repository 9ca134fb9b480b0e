"""`StageResult`: one step's outcome, readable as a dict and by attribute."""

from __future__ import annotations

from typing import Any

from cascadence.conditions.paths import register_plain_dict

__all__ = ["StageResult", "as_stage_result", "complete"]


class StageResult(dict[str, Any]):
    """A stage's result: `result`, `confidence`, `data`, `time_ms`, `cost`, `error` and any other
    keys the handler returned.

    It is a plain dict (so the run result is JSON-ready) that also reads by attribute:
    `context.get_stage_result("FAST_CHECK").confidence`. A missing key reads as None.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    @property
    def ok(self) -> bool:
        """True when the stage finished without an error."""
        return self.get("error") is None


register_plain_dict(StageResult)  # conditions read its items with `dict.get` directly


def as_stage_result(value: Any) -> StageResult:
    """Turn whatever a handler returned into a `StageResult`.

    A dict (a `StageResult` too) is copied with all its keys; any other value becomes the
    `result`, with no confidence. Either way `result`, `confidence` and `data` are present.
    """
    if isinstance(value, dict):  # a copy: the engine adds time and cost to it
        return complete(StageResult(value))
    return StageResult(result=value, confidence=None, data={})


def complete(sr: StageResult) -> StageResult:
    """Give a stage result the keys every result has: `result`, `confidence` (None) and
    `data` (empty) when the handler left them out."""
    if "result" not in sr:
        sr["result"] = None
    if "confidence" not in sr:
        sr["confidence"] = None
    if "data" not in sr:
        sr["data"] = {}
    return sr
