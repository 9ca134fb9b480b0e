"""What goes wrong with conditions: parse issues (raised, all at once) and evaluation warnings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ConditionIssue", "ConditionSyntaxError", "EvalWarning"]


@dataclass(frozen=True, slots=True)
class ConditionIssue:
    """One problem found while parsing a condition.

    Attributes:
        path: Where inside the condition, relative to its root: `""` for the root itself,
            `"operator"`, `"conditions[1].value"`, ...
        message: What is wrong.
        expected: What would have been valid, when that can be said.
        suggestion: The closest valid name, when the problem is an unknown name.
        column: 1-based column inside an expression string.
        source: The expression string the column points into.
    """

    path: str
    message: str
    expected: str | None = None
    suggestion: str | None = None
    column: int | None = None
    source: str | None = None

    def format(self) -> str:
        """Render the issue as a human-readable, possibly multi-line message."""
        where = self.path or "<condition>"
        text = f"{where}: {self.message}"
        if self.expected:
            text += f"\n    expected: {self.expected}"
        if self.suggestion:
            text += f"\n    did you mean {self.suggestion!r}?"
        if self.source is not None and self.column is not None:
            text += f"\n    {self.source}\n    {' ' * (self.column - 1)}^"
        return text


class ConditionSyntaxError(ValueError):
    """A condition could not be parsed. `issues` lists every problem found, not only the first."""

    def __init__(self, issues: Sequence[ConditionIssue]) -> None:
        self.issues: list[ConditionIssue] = list(issues)
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} in the condition"
        super().__init__(head + ":\n" + "\n".join("  " + i.format() for i in self.issues))


@dataclass(frozen=True, slots=True)
class EvalWarning:
    """A type mismatch seen while evaluating: the leaf was treated as False.

    Attributes:
        path: The field path the leaf read (`items[].price` inside a per-item condition).
        message: What did not fit, e.g. `'>' compares a number with a str`.
    """

    path: str
    message: str
