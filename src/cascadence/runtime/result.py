"""`StageResult`: one step's outcome, readable as a dict and by attribute."""

from __future__ import annotations

from typing import Any

from cascadence.conditions.paths import register_plain_dict

__all__ = ["RUN_LINKS", "StageResult", "as_stage_result", "complete", "run_of"]


class StageResult(dict[str, Any]):
    """A stage's result: `result`, `confidence`, `data`, `time_ms`, `cost`, `error` and any other
    keys the handler returned.

    It is a plain dict (so the run result is JSON-ready) that also reads by attribute:
    `context.get_stage_result("FAST_CHECK").confidence`. A missing key reads as None.
    """

    __slots__ = ("_run",)
    _run: dict[str, Any]
    # `_run`: for a stage the run went on from (marked `escalated`), the result dict of its
    # run, so `PatternExtractor.learn_from_failure` finds the later stages from the stage's
    # result alone. Not an item: it is not in the dict, in JSON or in a copy. Set only once
    # a `PatternExtractor` exists (`RUN_LINKS`): the link is a reference cycle, which the
    # garbage collector, not reference counting, then frees, at a cost on every run.

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.get(name)

    @property
    def ok(self) -> bool:
        """True when the stage finished without an error."""
        return self.get("error") is None

    def __reduce__(self) -> tuple[Any, ...]:
        return (StageResult, (dict(self),))  # the items only (not the run it came from)


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


class _RunLinks:
    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False


RUN_LINKS = _RunLinks()
"""`RUN_LINKS.on`: results link the stages a run went on from to the run (see `StageResult`);
switched on by the first `PatternExtractor`."""

_RUN: Any = StageResult.__dict__["_run"]  # the slot's descriptor


def run_of(result: Any) -> dict[str, Any] | None:
    """The result dict of the run that `result` (a stage result the run went on from) came
    from; None for any other value."""
    if type(result) is not StageResult:
        return None
    try:
        run: dict[str, Any] = _RUN.__get__(result)
    except AttributeError:
        return None
    return run
