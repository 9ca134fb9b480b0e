"""`ConditionEvaluator`: evaluate conditions of the condition language, compiling each once.

The engine compiles a cascade's conditions when its plan is built (through an evaluator, so a
condition written on several rules is compiled once). Use an evaluator directly to test a
condition against a document, for example in a handler, a test or a notebook::

    evaluator = ConditionEvaluator()
    evaluator.evaluate("amount >= 10000 and user.tier == 'gold'", {"amount": 20000, ...})
    evaluator.evaluate({"field": "stages.FAST.confidence", "operator": "<", "value": 0.8},
                       context)  # an ExecutionContext: its data and its stage results

Evaluation never raises (a missing field makes a test false; a type mismatch makes it false and
is reported as a warning); a condition that does not parse raises `ConditionSyntaxError` with
every problem found.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from cascadence.conditions.compiler import CompiledCondition
from cascadence.conditions.issues import EvalWarning
from cascadence.conditions.tree import Node

__all__ = ["ConditionEvaluator"]


def _source(condition: Any) -> Mapping[str, Any] | str | Node:
    """What a condition is written as: a string, a mapping, a tree, or a config model."""
    if isinstance(condition, (str, Mapping, Node)):
        return condition
    to_dict = getattr(condition, "to_dict", None)  # a `cascadence.Condition`
    if callable(to_dict):
        written: Mapping[str, Any] = to_dict()
        return written
    raise TypeError(
        "a condition is an expression string, a mapping such as "
        "{'field': 'amount', 'operator': '>', 'value': 100}, or a Condition; "
        f"got {type(condition).__name__}"
    )


def _operands(context: Any, stage_results: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """The document and the stage results a condition reads from `context`."""
    results = getattr(context, "stage_results", None)
    if isinstance(results, Mapping) and hasattr(context, "data"):  # an ExecutionContext
        return context.data, stage_results if stage_results is not None else results
    to_flat = getattr(context, "to_flat_dict", None)  # an EventWithContext
    if callable(to_flat):
        return to_flat(), stage_results
    return context, stage_results


class ConditionEvaluator:
    """Evaluates routing conditions; each distinct condition is parsed and compiled once.

    Conditions are cached by their expression string or, for the structured form, by their
    parsed tree, so the two spellings of one condition share a compiled closure. The cache
    keeps the `max_cached` most recently added conditions. Safe to share between threads.

    Args:
        max_cached: How many compiled conditions to keep.
    """

    def __init__(self, max_cached: int = 4096) -> None:
        if max_cached < 1:
            raise ValueError(f"max_cached must be at least 1, got {max_cached}")
        self.max_cached = max_cached
        self._by_text: dict[str, CompiledCondition] = {}
        # keyed by the tree's repr: trees compare `True == 1`, which the language tells apart
        self._by_tree: dict[str, CompiledCondition] = {}
        # the texts cached for each tree (and each text's tree), so evicting either drops what
        # goes with it without a scan
        self._texts: dict[str, list[str]] = {}
        self._tree_of: dict[str, str] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_tree)

    def compile(self, condition: Any) -> CompiledCondition:
        """The compiled form of `condition` (from the cache after the first time).

        Args:
            condition: An expression string, a condition mapping, a parsed tree or a
                `cascadence.Condition`.

        Raises:
            ConditionSyntaxError: The condition does not parse (every problem is listed).
            TypeError: `condition` is none of the above.
        """
        source = _source(condition)
        if isinstance(source, str):
            cached = self._by_text.get(source)
            if cached is not None:
                return cached
        from cascadence.conditions import parse_condition, to_dict  # the package imports us

        node = parse_condition(source)
        written: Mapping[str, Any] | str = to_dict(node) if isinstance(source, Node) else source
        key = repr(node)
        with self._lock:
            compiled = self._by_tree.get(key)
            if compiled is None:
                compiled = CompiledCondition.from_node(node, written)
                if len(self._by_tree) >= self.max_cached:
                    self._evict()
                self._by_tree[key] = compiled
            elif compiled.source is not written and compiled.source != written:
                # the same condition spelled another way: share the closure, keep the spelling
                fields, refs, fn = compiled.fields, compiled.stage_refs, compiled.fn
                compiled = CompiledCondition(node, written, fields, refs, fn)
            if isinstance(source, str) and source not in self._by_text:
                if len(self._by_text) >= self.max_cached:
                    text = next(iter(self._by_text))
                    del self._by_text[text]
                    self._forget_text(text)
                self._by_text[source] = compiled
                self._texts.setdefault(key, []).append(source)
                self._tree_of[source] = key
        return compiled

    def _forget_text(self, text: str) -> None:
        key = self._tree_of.pop(text, None)
        texts = self._texts.get(key) if key is not None else None
        if texts is not None:
            texts.remove(text)
            if not texts:
                del self._texts[key]  # type: ignore[arg-type]

    def _evict(self) -> None:
        oldest = next(iter(self._by_tree))
        del self._by_tree[oldest]
        for text in self._texts.pop(oldest, ()):
            self._by_text.pop(text, None)
            self._tree_of.pop(text, None)

    def evaluate(
        self,
        condition: Any,
        context: Any,
        stage_results: Mapping[str, Any] | None = None,
        *,
        warnings: list[EvalWarning] | None = None,
    ) -> bool:
        """Whether `condition` holds for `context`.

        Args:
            condition: What `compile` accepts.
            context: An `ExecutionContext` (its data, and its stage results for `stages.`
                paths), an `EventWithContext` (its flat fields), or any document.
            stage_results: Stage results for `stages.` paths (overrides the context's).
            warnings: A list that receives an `EvalWarning` per type mismatch seen.
        """
        data, results = _operands(context, stage_results)
        return self.compile(condition).fn(data, results, warnings)

    def explain(
        self, condition: Any, context: Any, stage_results: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Why `condition` holds or not: for every node, what it read and what it decided
        (see `CompiledCondition.explain`)."""
        data, results = _operands(context, stage_results)
        return self.compile(condition).explain(data, results)

    def clear(self) -> None:
        """Forget every compiled condition."""
        with self._lock:
            self._by_text.clear()
            self._by_tree.clear()

    def __repr__(self) -> str:
        return f"ConditionEvaluator({len(self)} compiled, max_cached={self.max_cached})"
