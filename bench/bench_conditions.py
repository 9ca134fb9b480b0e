"""Evaluations per second of a compiled condition next to the same logic written by hand.

Run: `python bench/bench_conditions.py [--seconds 1.0]`

The condition has five leaves (a comparison, IN, MATCHES, EXISTS and AVG over ten numbers)
under AND/OR, and the documents are chosen so that every leaf runs on every call. The
hand-written function does the same work the way one would write it directly in Python, with the
same answers for missing fields and wrong types (it is checked against the compiled condition on
every document before timing). The compiled condition is timed once with each regex engine
available: re2 (the default when google-re2 is installed) and the guarded stdlib `re`, which is
the engine the hand-written function uses.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cascadence.conditions import compile_condition
from cascadence.conditions import regex as regex_engine

EXPRESSION = (
    "stages.FAST.confidence < 0.8"
    ' and (user.country in ["NG", "RU", "KP", "IR", "SY"]'
    ' or user.email matches "@(mail\\.example|corp\\.example)\\.com$")'
    " and exists(user.verified_at)"
    " and avg(history.amounts) > 5000"
)


@dataclass(frozen=True, slots=True)
class StageResult:
    """A stage result as the runtime hands it over: an object with attributes."""

    result: Any
    confidence: float


_HIGH_RISK = frozenset(("NG", "RU", "KP", "IR", "SY"))
_EMAIL = re.compile(r"@(mail\.example|corp\.example)\.com$").search


def handwritten(data: Any, stages: Any, warnings: Any = None) -> bool:
    """The condition written out directly, with the same missing-field and type rules."""
    fast = stages.get("FAST") if stages else None
    confidence: Any = getattr(fast, "confidence", None)
    if type(confidence) not in (int, float) or not confidence < 0.8:
        return False
    user = data.get("user")
    if not isinstance(user, dict):
        return False
    country = user.get("country")
    if not (isinstance(country, (str, int, float)) and country in _HIGH_RISK):
        email = user.get("email")
        if not (isinstance(email, str) and _EMAIL(email) is not None):
            return False
    if user.get("verified_at") is None:
        return False
    history = data.get("history")
    amounts = history.get("amounts") if isinstance(history, dict) else None
    if not isinstance(amounts, list) or not amounts:
        return False
    for amount in amounts:
        kind = type(amount)
        if kind is not int and kind is not float:
            return False
    return sum(amounts) / len(amounts) > 5000


def _document(i: int) -> dict[str, Any]:
    return {
        "user": {
            "country": "FR",
            "email": f"user{i}@mail.example.com",
            "verified_at": "2024-05-01T10:00:00Z",
        },
        # the mean is above 5000 for half of the documents, so both outcomes are timed
        "history": {"amounts": [3800 + 250 * j + 20 * i for j in range(10)]},
        "transaction": {"amount": 12000 + i},
    }


DOCUMENTS = [_document(i) for i in range(8)]
STAGES = {"FAST": StageResult(result="review", confidence=0.42)}


def best_rates(fns: dict[str, Callable[[Any, Any, Any], bool]], seconds: float) -> dict[str, float]:
    """Calls per second of each function over the documents.

    The functions are timed in interleaved short batches and each keeps its best batch, so a
    burst of load on the machine penalises none of them more than the others.
    """
    docs = DOCUMENTS
    stages = STAGES
    batch = 1000
    calls = batch * len(docs)
    best = dict.fromkeys(fns, 0.0)
    deadline = time.perf_counter() + seconds * len(fns)
    while time.perf_counter() < deadline:
        for label, fn in fns.items():
            start = time.perf_counter()
            for _ in range(batch):
                for doc in docs:
                    fn(doc, stages, None)
            elapsed = time.perf_counter() - start
            best[label] = max(best[label], calls / elapsed)
    return best


def _nothing(data: Any, stages: Any, warnings: Any) -> bool:
    return True


def main() -> None:
    """Check that both agree, then time them and print the rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    args = parser.parse_args()

    engines = ["re2", "re"] if regex_engine.HAVE_RE2 else ["re"]
    compiled = {}
    for engine in engines:
        regex_engine.USE_RE2 = engine == "re2"
        compiled[engine] = compile_condition(EXPRESSION)
    regex_engine.USE_RE2 = regex_engine.HAVE_RE2

    for doc in DOCUMENTS:
        expected = handwritten(doc, STAGES)
        for engine, condition in compiled.items():
            assert condition(doc, STAGES) == expected, (engine, doc)
    matches = sum(handwritten(doc, STAGES) for doc in DOCUMENTS)

    print(f"condition: {EXPRESSION}")
    print(f"documents: {len(DOCUMENTS)} ({matches} match); every leaf runs on every call")
    fns: dict[str, Callable[[Any, Any, Any], bool]] = {"hand-written (stdlib re)": handwritten}
    for engine, condition in compiled.items():
        fns[f"compiled [{engine}] .fn(data, stages, None)"] = condition.fn
        fns[f"compiled [{engine}] (data, stages, None)"] = condition
    fns["empty function (loop overhead)"] = _nothing
    rates = best_rates(fns, args.seconds)
    base = rates["hand-written (stdlib re)"]
    for label, measured in rates.items():
        ratio = "" if label.startswith(("hand", "empty")) else f"   ratio {base / measured:.2f}"
        print(f"{label:<40}{measured:>12,.0f} evals/s{ratio}")
    print("ratio = hand-written rate / compiled rate (lower is better; 1.00 = as fast)")


if __name__ == "__main__":
    main()
