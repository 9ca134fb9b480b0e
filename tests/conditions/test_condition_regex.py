"""MATCHES under both regex engines: search semantics, fallbacks, and the backtracking guard."""

from __future__ import annotations

import sys

import pytest

from cascadence.conditions import EvalWarning, compile_condition, regex
from cascadence.conditions.regex import (
    MAX_SUBJECT_LENGTH,
    RegexRejected,
    compile_pattern,
    subject_limit,
)

NEEDS_311_RE = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="atomic groups and possessive repeats are Python 3.11+ re"
)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("admin", "superadmin", True),
        ("^admin", "superadmin", False),
        ("@trusted\\.com$", "a@trusted.com", True),
        ("@trusted\\.com$", "a@trusted.com.evil", False),
        ("[0-9]{3}-[0-9]{4}", "call 555-1234 now", True),
        ("(?i)ADMIN", "the admin", True),
        ("^$", "", True),
        ("é+", "café", True),
    ],
)
def test_search_semantics(engine: str, pattern: str, text: str, expected: bool) -> None:
    """MATCHES finds the pattern anywhere (re.search), under every engine."""
    condition = compile_condition({"field": "s", "operator": "MATCHES", "value": pattern})
    assert condition({"s": text}) is expected


def test_engine_choice(engine: str) -> None:
    """The guarded re compiles what it accepts (Python semantics, fastest); re2 takes only
    the patterns the guard refuses, when it is installed."""
    assert compile_pattern("a+b").engine == "re"
    assert compile_pattern(r"(a)\1").engine == "re"
    if engine == "re2":
        assert compile_pattern("(a+)+$").engine == "re2"


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        (r"(\w)\1", "hello", True),
        (r"(\w)\1", "helo", False),
        (r"foo(?=bar)", "foobar", True),
        (r"foo(?!bar)", "foobar", False),
        (r"(?<=@)example", "a@example", True),
    ],
)
def test_patterns_only_re_supports_still_work(
    engine: str, pattern: str, text: str, expected: bool
) -> None:
    """Backreferences and lookaround fall back to the guarded re engine, even with re2."""
    condition = compile_condition({"field": "s", "operator": "MATCHES", "value": pattern})
    assert condition({"s": text}) is expected


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a*)*b", "(a|aa)+$", "(\\w+\\s?)*$"])
def test_re2_accepts_what_the_guard_refuses(pattern: str) -> None:
    """Patterns re2 runs in linear time are accepted with re2 and refused by the guarded re."""
    if regex.HAVE_RE2:
        compiled = compile_pattern(pattern, use_re2=True)
        assert compiled.engine == "re2"
        assert compiled.limit is None
        assert compiled.matches("a" * 5000 + "!") in (True, False)
    with pytest.raises(RegexRejected, match="backtrack catastrophically") as info:
        compile_pattern(pattern, use_re2=False)
    assert info.value.hint is not None


@pytest.mark.parametrize(
    "pattern",
    [
        "(ab|cd)+",
        "(?:foo|bar)*baz",
        "(\\d{3})+",
        "^[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}$",
        "a+b+c+",
        "(a|b)+",
        "(?:x(?:y|z))+",
        ".*@trusted-domain\\.com$",
        "(a+)?",
        "(\\d+)",
        "^(\\d{1,3}\\.){3}\\d{1,3}$",
        "(ab|cd){2,4}",
    ],
)
def test_guard_accepts_ordinary_patterns(pattern: str) -> None:
    """Common, safe patterns pass the backtracking check."""
    compiled = compile_pattern(pattern, use_re2=False)
    assert compiled.engine == "re"
    assert compiled.limit is not None and compiled.limit >= 4000


@pytest.mark.parametrize(
    ("pattern", "limit", "compiled_limit"),
    [
        (
            "^(\\d{1,3}\\.){3}\\d{1,3}$",
            MAX_SUBJECT_LENGTH,
            MAX_SUBJECT_LENGTH,
        ),  # no unbounded repeat
        ("^\\w+@", MAX_SUBJECT_LENGTH, MAX_SUBJECT_LENGTH),  # one repeat, anchored
        ("b", MAX_SUBJECT_LENGTH, MAX_SUBJECT_LENGTH),
        ("\\w+@\\w+", 4000, 4000),  # searched from every start: quadratic
        ("\\w+\\s+\\w+", 4000, 4000),  # \\s+ in between: the \\w+ cannot share a split
        ("\\d+\\D+\\d+", 4000, 4000),
        ("a.*b", 4000, 4000),
        ("a*a*b", 251, 251),  # cubic: the two a* can split a run of a's in every way
        ("[a-z]+[0-9]*[a-z]+!", 251, 251),  # the optional [0-9]* does not separate them
        ("(?i)[A-Z]+[a-z]+!", 251, 251),  # nor does case
        ("[ā-ž]+\\w+x", 251, 251),  # letters above U+00FF are word characters
        ("\\d+\\w+x", 251, 251),
        ("foo.*bar.*baz", 363, 363),  # 'bar' occurs at most every 3 characters
        ("(?s).*\\n.*\\n.*x", 63, 251),  # with DOTALL, '.' matches the newlines too
        ("^(?=.*a.*b.*c.*d)", 63, 63),  # a lookahead's own chain counts
        ("a*a*a*b", 63, 63),
        # a leading .* does not change whether a pattern matches: re runs without it
        (".*a.*b", 251, 4000),
        (".*.*.*=", 63, 251),
        ("(?i).*error.*timeout.*", 251, 4000),  # a final .* cannot fail: it does not count
        # ... but one followed by `$` can: cubic, 19 s on 4,000 characters before
        ("^\\S+@\\S+\\.\\S+$", 251, 251),
        ("\\w+.*$", 251, 251),
        ("\\w+\\w+\\w+$", 63, 63),
        # repeats inside optional or atomic groups, and bounded ones, take part in chains
        ("(?:.*,)?(?:.*,)?.*;", 63, 63),
        pytest.param("(?>x.*x.*x.*y)", 63, 63, marks=NEEDS_311_RE),
        (".{0,9}.{0,9}.{0,9}.{0,9}.{0,9}.{0,9}x", 32, 32),
        ("^[a-z]+(-[a-z]+)*$", 4000, 4000),  # delimited copies: accepted
    ],
)
def test_subject_cap_follows_the_backtracking_degree(
    pattern: str, limit: int, compiled_limit: int
) -> None:
    """Unbounded repeats in a row over shared characters backtrack polynomially: the cap on
    subject length shrinks with the degree, so the worst case stays bounded."""
    assert subject_limit(pattern) == limit
    assert compile_pattern(pattern, use_re2=False).limit == compiled_limit


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        (".*x", "abx", True),
        (".*?x", "abx", True),
        (".*", "", True),
        ("(?i).*X$", "abx", True),
        pytest.param(".*+x", "abx", False, marks=NEEDS_311_RE),  # possessive: kept as written
        (".*(a)\\1", "xaa", True),
        (".*^b", "a\nb", False),
        ("(?m).*^b", "a\nb", True),
    ],
)
def test_dropping_a_leading_any_keeps_the_answer(pattern: str, text: str, expected: bool) -> None:
    """The re engine runs `.*X` as `X`: the same yes/no as Python's own search."""
    import re

    assert bool(re.search(pattern, text)) is expected
    assert compile_pattern(pattern, use_re2=False).matches(text) is expected


def test_global_flags_must_be_at_the_start_as_written() -> None:
    """Dropping a leading .* never makes a pattern re refuses valid: flags stay where written."""
    for pattern in (".*(?i)abc", ".*?(?s)a.b"):
        with pytest.raises(RegexRejected, match="global flags"):
            compile_pattern(pattern, use_re2=False)


def test_a_nested_bounded_repeat_is_refused() -> None:
    """`(?:.{0,9}){0,9}x` splits a subject in exponentially many ways: refused by the guard."""
    with pytest.raises(RegexRejected):
        compile_pattern("(?:.{0,9}){0,9}x", use_re2=False)
    assert compile_pattern("^(\\d{1,3}\\.){3}\\d{1,3}$", use_re2=False).engine == "re"


def test_a_cubic_pattern_past_its_cap(engine: str) -> None:
    """Past a polynomial pattern's cap the subject goes to re2, or (without it) does not match
    and a warning says why."""
    condition = compile_condition({"field": "s", "operator": "MATCHES", "value": "foo.*bar.*baz"})
    text = "foo" + "x" * 1000 + "bar" + "y" * 1000 + "baz"
    warnings: list[EvalWarning] = []
    expected = engine == "re2"
    assert condition({"s": text}, None, warnings) is expected
    assert len(warnings) == (0 if expected else 1)
    assert condition({"s": "foo bar baz"}) is True


@pytest.mark.parametrize(
    "pattern",
    [
        "(?i)(a|Aa)+$",
        "(a|a?)+",
        "(?:a|)+",
        "((a+)b)+",
        "(?:a|a){1,1000}b",
        "^(a{1,10}){1,10}b",
        "(a{0,2}){0,1000}b",
    ],
)
def test_guard_rejects_overlapping_or_nested_shapes(pattern: str) -> None:
    """Case-folded overlaps, empty alternatives, repeats nested at depth, and the same shapes
    under a bounded repeat that may run many times are refused."""
    with pytest.raises(RegexRejected):
        compile_pattern(pattern, use_re2=False)


def test_invalid_pattern_is_rejected_by_both_engines(engine: str) -> None:
    """A pattern neither engine compiles is refused with the re error message."""
    with pytest.raises(RegexRejected, match="invalid regular expression"):
        compile_pattern("(unclosed")


def test_long_subject_is_refused_by_the_guarded_engine(stdlib_re: None) -> None:
    """The guarded re engine does not run on strings past the cap: False plus a warning."""
    condition = compile_condition({"field": "s", "operator": "MATCHES", "value": "b"})
    warnings: list[EvalWarning] = []
    assert condition({"s": "a" * MAX_SUBJECT_LENGTH + "b"}, None, warnings) is False
    assert len(warnings) == 1
    assert warnings[0].path == "s"
    assert str(MAX_SUBJECT_LENGTH) in warnings[0].message
    assert condition({"s": "a" * (MAX_SUBJECT_LENGTH - 1) + "b"}) is True


@pytest.mark.skipif(not regex.HAVE_RE2, reason="google-re2 is not installed")
def test_re2_has_no_subject_cap() -> None:
    """With re2 installed, subjects too long for the guarded re are searched in full by re2."""
    compiled = compile_pattern("b$", use_re2=True)
    assert compiled.long_search is not None
    assert compiled.matches("a" * (MAX_SUBJECT_LENGTH * 3) + "b") is True
    condition = compile_condition({"field": "s", "operator": "MATCHES", "value": "b$"})
    warnings: list[EvalWarning] = []
    assert condition({"s": "a" * (MAX_SUBJECT_LENGTH * 3) + "b"}, None, warnings) is True
    assert warnings == []


def test_surrogates_do_not_break_matching(engine: str) -> None:
    """Strings that are not valid UTF-8 (lone surrogates) are matched without raising."""
    condition = compile_condition({"field": "s", "operator": "MATCHES", "value": "x"})
    warnings: list[EvalWarning] = []
    assert condition({"s": "a\ud800x"}, None, warnings) in (True, False)
