"""`MATCHES`: regular expressions checked at load time and safe to run on untrusted input.

Two engines:

- **re2** (`pip install cascadence[re2]`, the `google-re2` package): matching takes linear time
  whatever the pattern, so every pattern re2 accepts is used as is.
- **guarded `re`**: used when re2 is not installed, and for the patterns re2 cannot compile
  (backreferences, lookaround). Before such a pattern is accepted, its parse tree is checked for
  the shapes that make a backtracking engine take exponential time (a repeated group that itself
  contains a variable repeat, like `(a+)+`, or a repeated alternation whose branches can start
  with the same character, like `(a|aa)+`). Patterns whose worst case still grows as a power of
  the subject's length (`foo.*bar.*baz` searched anywhere is cubic) get a cap on subject
  length that bounds that worst case (`subject_limit`): a longer subject goes to re2 when it
  is installed, and otherwise does not match (and a warning is recorded).

Both engines give `re.search` semantics: the pattern may match anywhere; anchor it with `^`/`$`.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "HAVE_RE2",
    "MAX_SUBJECT_LENGTH",
    "CompiledPattern",
    "RegexRejected",
    "USE_RE2",
    "compile_pattern",
    "subject_limit",
]

MAX_SUBJECT_LENGTH: Final = 10_000
"""Strings longer than this never match a pattern run by the guarded `re` engine (patterns
whose backtracking grows faster with the subject have lower caps: see `subject_limit`)."""

HAVE_RE2: Final = importlib.util.find_spec("re2") is not None
"""Whether the `google-re2` package is installed (it is imported on first use)."""

USE_RE2: bool = HAVE_RE2
"""Whether patterns are compiled with re2 when it can (set False to force the guarded `re`)."""

_sre: Any
try:
    _sre = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - Python 3.10
    _sre = importlib.import_module("sre_parse")
_c: Any = importlib.import_module("re._constants" if hasattr(re, "_constants") else "sre_constants")

_REPEATS = frozenset(op for op in (_c.MAX_REPEAT, _c.MIN_REPEAT) if op is not None)
_MAXREPEAT: int = _c.MAXREPEAT
_POSSESSIVE = getattr(_c, "POSSESSIVE_REPEAT", object())
_ATOMIC = getattr(_c, "ATOMIC_GROUP", object())


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    """A checked, compiled pattern.

    Attributes:
        search: `search(text)` returns something truthy exactly when the pattern matches
            somewhere in `text` (a match object or True).
        engine: `"re2"` or `"re"`.
        limit: The longest subject `search` may be given (the guarded `re` engine's cap), or
            None when there is no limit.
    """

    search: Callable[[str], object]
    engine: str
    limit: int | None
    long_search: Callable[[str], object] | None = None
    """re2's search for subjects over `limit`, when re2 is installed and accepts the pattern."""

    def matches(self, text: str) -> bool:
        """Whether the pattern matches `text`; a subject over the limit matches only via re2."""
        if self.limit is not None and len(text) > self.limit:
            return bool(self.long_search(text)) if self.long_search is not None else False
        return bool(self.search(text))


class RegexRejected(ValueError):
    """A pattern cannot be used: it does not compile, or it could backtrack catastrophically.

    Attributes:
        hint: How to fix the pattern, when there is advice to give.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def compile_pattern(pattern: str, *, use_re2: bool | None = None) -> CompiledPattern:
    """Check and compile `pattern`.

    Args:
        pattern: The regular expression.
        use_re2: Force the engine choice; defaults to the module switch `USE_RE2`.


    Raises:
        RegexRejected: The pattern is invalid, or unsafe for a backtracking engine.
    """
    return _compile(pattern, USE_RE2 if use_re2 is None else use_re2)


@functools.lru_cache(maxsize=512)
def _compile(pattern: str, use_re2: bool) -> CompiledPattern:
    # Python's own engine first: its semantics are what users expect (Unicode classes, `$`)
    # and it matches ~4x faster through its binding. A pattern the backtracking guard rejects
    # goes to re2 (linear time) when it is installed.
    re2 = _load_re2() if use_re2 else None
    # Only a yes/no answer is needed, and `.*X` matches somewhere exactly when `X` does: a
    # leading `.*` only multiplies the backtracking, so the re engine runs without it.
    reduced = _LEADING_ANY.sub(r"\1", pattern, count=1)
    try:
        search = _guarded_re_search(reduced, pattern)
    except RegexRejected:
        if re2 is not None:
            searcher = _re2_searcher(re2, pattern)
            if searcher is not None:
                return CompiledPattern(searcher, "re2", None)
        raise
    long_search = _re2_searcher(re2, pattern) if re2 is not None else None
    return CompiledPattern(search, "re", subject_limit(reduced), long_search)


_LEADING_ANY: Final = re.compile(r"^(\(\?[aiLmsux]+\))?\.\*\??(?![*+?{])")
"""A leading `.*` or `.*?` (after inline flags), not made possessive or further repeated."""


@functools.lru_cache(maxsize=1)
def _load_re2() -> Any:
    if not HAVE_RE2:
        return None
    try:
        return importlib.import_module("re2")
    except ImportError:  # pragma: no cover - a broken installation
        return None


def _re2_searcher(_re2: Any, pattern: str) -> Callable[[str], bool] | None:
    options = _re2.Options()
    options.log_errors = False
    options.never_capture = True  # only a yes/no answer is needed; capturing costs time
    try:
        compiled = _re2.compile(pattern, options)
    except Exception:
        return None  # not re2 syntax (e.g. a backreference): try the guarded engine
    regexp = getattr(compiled, "_regexp", None)
    unanchored = getattr(getattr(_re2, "_Anchor", None), "UNANCHORED", None)
    if regexp is None or unanchored is None or not hasattr(regexp, "Match"):
        public_search = compiled.search

        def search_public(text: str) -> bool:
            return public_search(text) is not None

        return search_public
    match = regexp.Match
    no_match = -1

    # The wrapper's `search` builds match objects and offset tables we never read; asking the
    # compiled program for the first span is several times faster for a yes/no answer.
    def search_re2(text: str) -> bool:
        try:
            data = text.encode()
        except UnicodeEncodeError:  # lone surrogates: pass them through as bytes
            data = text.encode("utf-8", "surrogatepass")
        return bool(match(unanchored, data, 0, len(data))[0][0] != no_match)

    return search_re2


_WORK_BUDGET: Final = 16_000_000
"""Backtracking steps a subject may cost in the worst case (about a tenth of a second)."""
_MIN_LIMIT: Final = 32


def subject_limit(pattern: str) -> int:
    """The longest subject the guarded `re` engine runs `pattern` on.

    A pattern without nested repeats still backtracks polynomially when unbounded repeats
    follow one another over characters they share: `a.*a.*b` tries every way of splitting a
    run of `a`s among its two `.*`s, from every start position, so a string of 10,000 `a`s costs
    10^12 steps. The worst case is about n**degree steps (see `_degree`), so the cap keeps it
    near `_WORK_BUDGET`: `MAX_SUBJECT_LENGTH` characters at degree 1 (no repeat, or one in a
    pattern anchored with `^`), 4,000 at degree 2 (`\\w+@` searched anywhere), 251 at degree 3
    (`foo.*bar.*baz`), 63 at degree 4. Longer subjects go to re2 when it is installed.
    """
    parsed = _sre.parse(pattern)
    degree, divisor = _cost(parsed, bool(parsed.state.flags & re.IGNORECASE))
    if degree <= 1:
        return MAX_SUBJECT_LENGTH
    limit = int((_WORK_BUDGET * divisor) ** (1 / degree))
    return max(_MIN_LIMIT, min(MAX_SUBJECT_LENGTH, limit))


def _refuse_misplaced_flags(pattern: str) -> None:
    """Refuse global flags past the start, as Python 3.11+ does (3.10 warns and goes on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            _sre.parse(pattern)
        except DeprecationWarning as warning:
            raise RegexRejected(
                f"invalid regular expression: global flags not at the start of the "
                f"expression ({warning})"
            ) from None
        except Exception:  # any other problem: reported by the compile that follows
            return


def _guarded_re_search(pattern: str, written: str | None = None) -> Callable[[str], object]:
    """Check and compile `pattern` for the re engine (`written`: as the user wrote it, for
    messages)."""
    shown = pattern if written is None else written
    if sys.version_info < (3, 11):  # 3.10's re only warns about misplaced global flags
        _refuse_misplaced_flags(shown)
    try:
        if written is not None and written != pattern:
            re.compile(written)  # the pattern as written must be valid (flags placement too)
        parsed = _sre.parse(pattern)
        compiled = re.compile(pattern)
    except re.error as exc:
        raise RegexRejected(f"invalid regular expression {pattern!r}: {exc}") from None
    except (RecursionError, OverflowError, ValueError) as exc:
        raise RegexRejected(f"invalid regular expression {pattern!r}: {exc}") from None
    reason = _danger(parsed, bool(parsed.state.flags & re.IGNORECASE))
    if reason is not None:
        hint = (
            "rewrite it without nesting repeats (for example '(a+)+' -> 'a+', "
            "'(a|aa)+' -> 'a+'), or install google-re2 (cascadence[re2]), which runs any "
            "pattern it accepts in linear time"
        )
        raise RegexRejected(f"pattern {shown!r} can backtrack catastrophically: {reason}", hint)
    return compiled.search


# --- catastrophic-backtracking check over the sre parse tree -------------------------------


_MANY: Final = 10
"""A repeat that may run this many times or more is checked like an unbounded one."""


_FEW: Final = 4
"""A variable repeat inside groups repeated this many times in all is refused: the ways to
split a subject among the copies grow like a power of its length (`(?:.{0,9}){0,9}x`)."""


def _danger(sub: Any, ignore_case: bool, outer: int = 1) -> str | None:
    """Return why `sub` is unsafe for a backtracking engine, or None.

    `outer` is how many times the enclosing repeats may run in all (1 outside any repeat;
    `_MANY` or more stands for "many"). A variable repeat is refused inside groups repeated
    `_FEW` times or more, and an unbounded one (or one of `_MANY` or more) inside any group
    that repeats (`{1,1000}` backtracks like `+`: `(a{1,10}){1,10}b` has 10^10 ways to fail).
    """
    for op, av in sub:
        if op in _REPEATS:
            low, high, body = av
            _width_low, width_high = body.getwidth()
            variable = high > low and width_high > 0
            if outer > 1 and variable and (outer >= _FEW or high >= _MANY):
                return "a repeat inside a repeated group (like '(a+)+')"
            inner = min(outer * max(high, 1), _MANY * _MANY)
            if _delimited(body, ignore_case):
                inner = outer  # each copy starts with a character nothing else in it matches
            if high >= _MANY:
                overlap = _overlapping_branch(body, ignore_case)
                if overlap:
                    return overlap
            reason = _danger(body, ignore_case, inner)
            if reason:
                return reason
        elif op is _c.SUBPATTERN:
            reason = _danger(av[-1], ignore_case, outer)
            if reason:
                return reason
        elif op is _c.BRANCH:
            for alternative in av[1]:
                reason = _danger(alternative, ignore_case, outer)
                if reason:
                    return reason
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            reason = _danger(av[1], ignore_case, outer)
            if reason:
                return reason
        elif op is _c.GROUPREF_EXISTS:
            for branch in av[1:]:
                if branch is not None:
                    reason = _danger(branch, ignore_case, outer)
                    if reason:
                        return reason
        elif op is _POSSESSIVE or op is _ATOMIC:
            # These never give back what they matched, so an enclosing repeat cannot re-split
            # it; only what happens inside them matters.
            body = av[2] if op is _POSSESSIVE else av
            reason = _danger(body, ignore_case, 1)
            if reason:
                return reason
    return None


def _delimited(body: Any, ignore_case: bool) -> bool:
    """Whether each copy of a repeated group must start with a character that nothing else in
    the group can match (`(-[a-z]+)*`, `(,\\d+)*`): the copies then split a subject one way
    only, however variable their insides."""
    items = list(body)
    while len(items) == 1 and items[0][0] is _c.SUBPATTERN:
        items = list(items[0][1][-1])
    if len(items) < 2 or items[0][0] not in (_c.LITERAL, _c.IN):
        return False
    head = _chars(items[:1], ignore_case)
    rest = _chars(items[1:], ignore_case)
    return not _overlaps(head, rest)


def _overlapping_branch(sub: Any, ignore_case: bool) -> str | None:
    """Find an alternation directly under a repeat whose branches can start alike."""
    for op, av in sub:
        if op is _c.SUBPATTERN:
            found = _overlapping_branch(av[-1], ignore_case)
            if found:
                return found
        elif op is _c.BRANCH:
            firsts = [_first_chars(alt, ignore_case) for alt in av[1]]
            for i, left in enumerate(firsts):
                for right in firsts[i + 1 :]:
                    if left is None or right is None or left & right:
                        return "a repeated alternation whose branches overlap (like '(a|aa)+')"
    return None


def _first_chars(sub: Any, ignore_case: bool) -> frozenset[int] | None:
    """Characters `sub` can start with, or None when unknown or when it can match empty."""
    for op, av in sub:
        if op is _c.LITERAL:
            return _fold(frozenset((av,)), ignore_case)
        if op is _c.IN:
            chars: set[int] = set()
            for item_op, item in av:
                if item_op is _c.LITERAL:
                    chars.add(item)
                elif item_op is _c.RANGE and item[1] - item[0] <= 256:
                    chars.update(range(item[0], item[1] + 1))
                else:
                    return None
            return _fold(frozenset(chars), ignore_case)
        if op is _c.SUBPATTERN:
            return _first_chars(av[-1], ignore_case)
        if op in _REPEATS and av[0] >= 1:
            return _first_chars(av[2], ignore_case)
        return None
    return None


def _fold(chars: frozenset[int], ignore_case: bool) -> frozenset[int]:
    if not ignore_case:
        return chars
    folded: set[int] = set()
    for code in chars:
        if code < 0:  # `_HIGH`
            folded.add(code)
            continue
        char = chr(code)
        folded.update(ord(c) for c in (char.lower(), char.upper()) if len(c) == 1)
    return frozenset(folded)


# --- polynomial backtracking: chains of repeats that share characters ------------------------


class _Item:
    """One element of a flattened sequence: its characters, whether it can match nothing, and
    whether it is a repeat that can run unboundedly often."""

    __slots__ = ("chars", "empty", "literal", "unbounded")

    def __init__(
        self, chars: frozenset[int], empty: bool, unbounded: bool, literal: int | None = None
    ) -> None:
        self.chars = chars
        self.empty = empty
        self.unbounded = unbounded
        self.literal = literal  # the one character a plain literal matches


def _degree(sub: Any, ignore_case: bool) -> int:
    return _cost(sub, ignore_case)[0]


def _cost(sub: Any, ignore_case: bool) -> tuple[int, int]:
    """Estimate the exponent of a pattern's worst-case backtracking time.

    It is the longest chain of unbounded repeats in one sequence where each next repeat shares
    characters with the previous one and everything between them could be made of those
    characters (or match nothing), plus one for the start positions an unanchored search tries.
    A repeat that ends the pattern does not count: nothing after it can fail and send the
    engine back into it. Lookarounds count by their own chains, as they run at every position
    the search tries. Nested repeats are `_danger`'s business. The estimate errs on the high
    side.

    Returns:
        (degree, divisor): the worst case is about `n**degree / divisor` steps. Repeats linked
        by a literal can only split where the literal occurs, at most every `period` characters
        (its shortest repeat: 7 for `timeout`, 1 for `aaa`), which divides the count.
    """
    lookarounds: list[Any] = []
    items = _flatten(sub, ignore_case, lookarounds)
    if items and items[-1].unbounded and sub.data and sub.data[-1][0] in _REPEATS:
        items = items[:-1]  # nothing follows it, not even `$`: it cannot be made to fail
    first = sub.data[0] if sub.data else None
    anchored = (
        first is not None
        and first[0] is _c.AT
        and first[1] in _STARTS
        # with MULTILINE, `^` matches at the start of every line
        and (first[1] is not _c.AT_BEGINNING or not sub.state.flags & re.MULTILINE)
    )
    best = _chain(items)
    for body in lookarounds:
        best = max(best, _chain(_flatten(body, ignore_case, lookarounds)), key=_worse)
    return best[0] + (0 if anchored else 1), best[1]


def _worse(cost: tuple[int, int]) -> tuple[int, int]:
    return cost[0], -cost[1]


def _chain(items: list[_Item]) -> tuple[int, int]:
    """The longest chain of unbounded repeats that can share a split, and its divisor (see
    `_cost`); of equally long chains, the one with the smallest divisor."""
    longest: list[tuple[int, int]] = [(0, 1)] * len(items)
    best = (0, 1)
    for i, item in enumerate(items):
        if not item.unbounded:
            continue
        longest[i] = (1, 1)
        for j in range(i - 1, -1, -1):
            earlier = items[j]
            if not earlier.unbounded or not longest[j][0]:
                continue
            shared = _meet(earlier.chars, item.chars)
            if not shared:
                continue
            between = items[j + 1 : i]
            if all(b.empty or _overlaps(b.chars, shared) for b in between):
                link = (longest[j][0] + 1, longest[j][1] * _period(between))
                longest[i] = max(longest[i], link, key=_worse)
        best = max(best, longest[i], key=_worse)
    return best


def _period(items: list[_Item]) -> int:
    """How far apart two occurrences of a run of plain literals can be at least: its shortest
    period (`timeout`: 7, `abab`: 2, `aaa`: 1); 1 for anything but plain literals."""
    codes = [item.literal for item in items]
    if not codes or any(code is None for code in codes):
        return 1
    size = len(codes)
    for period in range(1, size):
        if all(codes[k] == codes[k + period] for k in range(size - period)):
            return period
    return size


_STARTS: Final = frozenset(
    at
    for at in (getattr(_c, "AT_BEGINNING", None), getattr(_c, "AT_BEGINNING_STRING", None))
    if at is not None
)


def _flatten(sub: Any, ignore_case: bool, lookarounds: list[Any]) -> list[_Item]:
    """The elements of a sequence, with plain groups opened up and every other compound
    element summarised as one item (an alternation counts as unbounded when a branch has an
    unbounded repeat). Lookaround bodies met on the way are added to `lookarounds`."""
    items: list[_Item] = []
    for op, av in sub:
        if op in _REPEATS or op is _POSSESSIVE:
            low, high, body = av
            width_low, width_high = body.getwidth()
            if width_high > 1 and high < _MANY:
                # a group repeated a few times (or optional): its elements, copied out, so
                # that repeats inside it take part in chains (`(?:.*,)?(?:.*,)?.*;`)
                for copy in range(high):
                    for item in _flatten(body, ignore_case, lookarounds):
                        if copy >= low:
                            item = _Item(item.chars, True, item.unbounded)
                        items.append(item)
                continue
            # a variable repeat splits its characters with its neighbours (`.{0,9}.{0,9}x`)
            variable = high > low and high >= 2 and width_high > 0
            _collect_lookarounds(body, lookarounds)
            items.append(_Item(_chars(body, ignore_case), low == 0 or width_low == 0, variable))
        elif op is _ATOMIC:  # backtracking still happens inside the group
            items.extend(_flatten(av, ignore_case, lookarounds))
        elif op is _c.SUBPATTERN:
            items.extend(_flatten(av[-1], ignore_case, lookarounds))
        elif op is _c.AT:
            continue  # zero-width: neither matches characters nor separates repeats
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            lookarounds.append(av[1])  # zero-width here; its own chains count
        elif op is _c.BRANCH:
            branches = [_flatten(alt, ignore_case, lookarounds) for alt in av[1]]
            items.append(
                _Item(
                    _union([_chars(alt, ignore_case) for alt in av[1]]),
                    any(all(i.empty for i in b) for b in branches),
                    any(i.unbounded for b in branches for i in b),
                )
            )
        elif op is _c.LITERAL and not ignore_case:
            items.append(_Item(frozenset((av,)), False, False, av))
        else:
            low, _high = sub.__class__(sub.state, [(op, av)]).getwidth()
            items.append(_Item(_chars([(op, av)], ignore_case), low == 0, False))
    return items


def _collect_lookarounds(sub: Any, found: list[Any]) -> None:
    for op, av in sub:
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            found.append(av[1])
        elif op is _c.SUBPATTERN:
            _collect_lookarounds(av[-1], found)
        elif op in _REPEATS:
            _collect_lookarounds(av[2], found)
        elif op is _c.BRANCH:
            for alt in av[1]:
                _collect_lookarounds(alt, found)


_LOW: Final = range(256)

# Characters above U+00FF are not listed one by one: a set holds a negative marker standing
# for "those of them that pass this test" instead.
_HIGH: Final = -1
_HIGH_TESTS: Final[dict[int, Callable[[str], bool]]] = {
    _HIGH: lambda c: True,
    -2: str.isdecimal,
    -3: lambda c: c.isalnum() or c == "_",
    -4: str.isspace,
    -5: lambda c: not c.isdecimal(),
    -6: lambda c: not (c.isalnum() or c == "_"),
    -7: lambda c: not c.isspace(),
}
_HIGH_SAMPLE: Final = "".join(map(chr, range(256, 0x3001)))
"""Where two markers are checked for a shared character: the scripts and spaces in common use."""


@functools.cache
def _markers_meet(a: int, b: int) -> bool:
    test_a, test_b = _HIGH_TESTS[a], _HIGH_TESTS[b]
    return any(test_a(c) and test_b(c) for c in _HIGH_SAMPLE)


_CATEGORY_MARKERS: Final = (("digit", -2), ("word", -3), ("space", -4))


def _category(code: Any) -> frozenset[int]:
    """A `\\d`, `\\w` or `\\s` class (or its negation): its Latin-1 members and a marker."""
    name = str(code).lower()
    marker = next((m for word, m in _CATEGORY_MARKERS if word in name), None)
    if marker is None:
        return frozenset(_LOW) | {_HIGH}
    test = _HIGH_TESTS[marker]
    members = {c for c in _LOW if test(chr(c))}
    if "not" in name:
        return frozenset(set(_LOW) - members) | {marker - 3}
    return frozenset(members) | {marker}


def _chars(sub: Any, ignore_case: bool) -> frozenset[int]:
    """The characters `sub` can match: exact below U+0100 and for listed characters, with
    `_HIGH` standing for any others above U+00FF (so overlaps are never missed)."""
    found: set[int] = set()
    for op, av in sub:
        if op is _c.LITERAL:
            found.add(av)
        elif op is _c.NOT_LITERAL:
            found.update(c for c in _LOW if c != av)
            found.add(_HIGH)
        elif op is _c.ANY:  # with or without DOTALL: a newline counts, to err on the safe side
            found.update(_LOW)
            found.add(_HIGH)
        elif op is _c.IN:
            found.update(_class(av))
        elif op in _REPEATS:
            found.update(_chars(av[2], ignore_case))
        elif op is _c.SUBPATTERN:
            found.update(_chars(av[-1], ignore_case))
        elif op is _c.BRANCH:
            for alt in av[1]:
                found.update(_chars(alt, ignore_case))
        elif op is _c.AT:
            continue
        else:  # backreferences, lookaround, conditionals: anything
            found.update(_LOW)
            found.add(_HIGH)
    return _fold(frozenset(found), ignore_case)


def _class(items: Any) -> set[int]:
    found: set[int] = set()
    negate = False
    for item_op, item in items:
        if item_op is _c.NEGATE:
            negate = True
        elif item_op is _c.LITERAL:
            found.add(item)
        elif item_op is _c.RANGE:
            low, high = item
            found.update(range(low, min(high, 255) + 1))
            if high > 255:
                found.add(_HIGH)
                found.update(range(max(low, 256), min(high, low + 256) + 1))
        elif item_op is _c.CATEGORY:
            found.update(_category(item))
        else:
            found.update(_LOW)
            found.add(_HIGH)
    if negate:
        return {c for c in _LOW if c not in found} | {_HIGH}
    return found


def _union(sets: list[frozenset[int]]) -> frozenset[int]:
    return frozenset().union(*sets)


def _meet(a: frozenset[int], b: frozenset[int]) -> frozenset[int]:
    """Characters both sets may hold (a character above U+00FF that one set lists is shared
    when it passes a marker of the other; two markers share theirs when their tests agree on
    some character)."""
    shared = {c for c in a & b if c >= 0}
    marks_a = [m for m in a if m < 0]
    marks_b = [m for m in b if m < 0]
    for marks, other in ((marks_a, b), (marks_b, a)):
        for m in marks:
            test = _HIGH_TESTS[m]
            shared.update(c for c in other if c > 255 and test(chr(c)))
    for ma in marks_a:
        for mb in marks_b:
            if _markers_meet(ma, mb):
                shared.add(ma if mb == _HIGH else mb)
    return frozenset(shared)


def _overlaps(a: frozenset[int], b: frozenset[int]) -> bool:
    return bool(_meet(a, b))
