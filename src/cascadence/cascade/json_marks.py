"""Where each key and item of JSON text is written, and the keys written twice in an object.

`json` gives data without positions, so `json_marks` scans the same text once for the line and
column of every key and item (the locations `collect_marks` gives for YAML), and of each time a
key is written; `json_duplicates` turns the keys `json` saw twice into problems at those lines.
"""

from __future__ import annotations

import bisect
import json
import re
from typing import Any

from cascadence.cascade.validate import Loc, Marks, Problem

__all__ = ["KeyMarks", "json_duplicates", "json_marks"]

KeyMarks = dict[Loc, list[tuple[int, int]]]
"""1-based (line, column) of each time a key is written, by its location."""


_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_ATOM = re.compile(
    r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null|NaN|-?Infinity"
)


def json_marks(text: str) -> tuple[Marks, KeyMarks]:
    """The (line, column) of every key and item of JSON text that `json` has read, as
    `collect_marks` gives them for YAML, and of each time a key is written (more than once
    when it is written again in its object).

    A scan of the tokens with a stack, so any nesting depth; a key is decoded by `json`, so
    `"\\u0041"` and `"A"` are the same key as in the data.
    """
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(starts, pos)
        return line, pos - starts[line - 1] + 1

    def skip(pos: int) -> int:
        match = _JSON_SPACE.match(text, pos)
        return match.end() if match else pos

    marks: Marks = {}
    key_marks: KeyMarks = {}

    def read_key(pos: int, parent: Loc) -> tuple[int, Loc]:
        """The key at `pos` (a string): recorded; the position of its value and its loc."""
        string = _JSON_STRING.match(text, pos)
        if string is None:
            raise ValueError(f"expected a key at {pos}")
        loc: Loc = (*parent, json.loads(string.group()))
        end = string.end()
        mark = where(pos)
        marks[loc] = mark
        key_marks.setdefault(loc, []).append(mark)
        end = skip(end)
        if text[end] != ":":
            raise ValueError(f"expected ':' at {end}")
        return skip(end + 1), loc

    open_: list[tuple[Loc, bool, int]] = []  # (loc, is an object, index of the current item)
    pos = skip(0)
    loc: Loc = ()
    marks[loc] = where(pos)
    while True:
        # a value starts at `pos`, located at `loc`
        char = text[pos]
        if char in "{[":
            pos = skip(pos + 1)
            if text[pos] not in "}]":
                open_.append((loc, char == "{", 0))
                if char == "{":
                    pos, loc = read_key(pos, loc)
                else:
                    loc = (*loc, 0)
                    marks[loc] = where(pos)
                continue
            pos = skip(pos + 1)  # an empty object or array
        elif char == '"':
            string = _JSON_STRING.match(text, pos)
            if string is None:
                raise ValueError(f"unterminated string at {pos}")
            pos = skip(string.end())
        else:
            atom = _JSON_ATOM.match(text, pos)
            if atom is None:
                raise ValueError(f"unexpected {char!r} at {pos}")
            pos = skip(atom.end())
        # the value ended: the next item, or the end of its object or array
        while open_:
            parent, is_object, index = open_[-1]
            if text[pos] == ",":
                pos = skip(pos + 1)
                if is_object:
                    pos, loc = read_key(pos, parent)
                else:
                    open_[-1] = (parent, False, index + 1)
                    loc = (*parent, index + 1)
                    marks[loc] = where(pos)
                break
            open_.pop()
            pos = skip(pos + 1)
        else:
            return marks, key_marks


def json_duplicates(
    data: Any,
    repeats: list[tuple[dict[str, Any], list[str]]],
    key_marks: KeyMarks,
) -> list[Problem]:
    """A problem for each key written again in its object, at that line when known."""
    if not repeats:
        return []
    repeated = {id(mapping): keys for mapping, keys in repeats}
    problems: list[Problem] = []
    stack: list[tuple[Any, Loc]] = [(data, ())]
    while stack:  # JSON data is a tree: each object is met once
        value, loc = stack.pop()
        if isinstance(value, dict):
            for key in dict.fromkeys(repeated.get(id(value), ())):
                written = key_marks.get((*loc, key), [])
                count = repeated[id(value)].count(key)
                known = len(written) == count + 1
                for n in range(count):
                    line, column = written[n + 1] if known else (None, None)
                    first = ""
                    if known:
                        first = f" (first on line {written[0][0]}"
                        first += f", column {written[0][1]})" if written[0][0] == line else ")"
                    problems.append(
                        Problem(
                            (*loc, key),
                            f"duplicate key {key!r}{first}",
                            "each key once in an object; a key written again replaces the "
                            "earlier value",
                            line=line,
                            column=column,
                        )
                    )
            stack.extend((item, (*loc, key)) for key, item in value.items())
        elif isinstance(value, list):
            stack.extend((item, (*loc, index)) for index, item in enumerate(value))
    return problems
