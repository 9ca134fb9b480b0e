"""User code that `mypy --strict` checks along with the package (see `[tool.mypy] files`).

It is never run. Each `assert_type` pins a type the public API must give; each
`# type: ignore[code]` marks a mistake the API must catch (strict mode reports an ignore that
is not needed, so these fail the check if the types stop catching them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from typing_extensions import assert_type

from cascadence import (
    AtomicDict,
    Cadence,
    CascadeConfig,
    CascadeEngine,
    ExecutionContext,
    NoteError,
    Score,
    circuit_breaker,
    fallback,
    note,
    retry,
    timeout,
)
from cascadence.policies.circuit_breaker import CircuitBreaker


@dataclass
class OrderScore(Score):
    order_id: str = ""
    total: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass
class PaymentScore(Score):
    paid: bool = False


@fallback
async def status(score: OrderScore) -> None: ...


@circuit_breaker
async def fragile(score: OrderScore) -> None: ...


@circuit_breaker(failure_threshold=5, recovery_timeout=30.0)
@note
async def guarded(score: OrderScore) -> None: ...


@note(retry=3, timeout=15.0)
async def call_service(score: OrderScore) -> None: ...


@retry(3)
@timeout(5.0)
@fallback("unknown", field="order_id")
def sync_note(score: OrderScore) -> None: ...


async def handle_error(score: OrderScore, error: Exception) -> None:
    if isinstance(error, NoteError):
        score.errors.append(f"{error.note_name}: {error}")


async def charge(score: PaymentScore) -> None: ...


async def any_score(score: Any) -> None: ...


async def base_score(score: Score) -> None: ...


engine = CascadeEngine(CascadeConfig.from_dict({"name": "x", "stages": {"A": {}}}))


@engine.stage("A")
async def stage_a(context: ExecutionContext) -> dict[str, Any]:
    return {"result": "ok"}


async def main() -> None:
    # decorators keep the function's signature, bare or with arguments
    order = OrderScore()
    for kept in (status, fragile, guarded, call_service):
        assert_type(await kept(order), None)
    await status(PaymentScore())  # type: ignore[arg-type]
    assert_type(sync_note(order), None)
    assert_type(await stage_a(ExecutionContext({})), dict[str, Any])
    assert_type(engine.breaker("A"), CircuitBreaker | None)

    flow = (
        Cadence("checkout", OrderScore())
        .then("status", status)
        .then("any", any_score)
        .then("base", base_score)
        .then("cascade", engine)
        .sync("together", [status, fragile, any_score])
        .split("route", lambda s: s.total > 10, if_true=[status], if_false=fragile)
        .split("by_rule", "total > 10", status)
        .on_error(handle_error, stop=False)
    )
    assert_type(await flow.run(), OrderScore)
    assert_type(flow.run_sync(), OrderScore)

    # mistakes the types catch
    Cadence("o", OrderScore()).then("charge", charge)  # type: ignore[arg-type]
    Cadence("o", OrderScore()).split("r", lambda s: s.paid, status)  # type: ignore[attr-defined]

    cache: AtomicDict[str, int] = AtomicDict()
    assert_type(cache.get("k"), int | None)
    assert_type(cache.get("k", 0), int)
    assert_type(cache.pop("k"), int)
    assert_type(cache.pop("k", None), int | None)
