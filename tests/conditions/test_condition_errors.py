"""Every way a condition can fail to parse, and what the error says about it."""

from __future__ import annotations

from typing import Any

import pytest

from cascadence.conditions import (
    ConditionIssue,
    ConditionSyntaxError,
    compile_condition,
    parse_condition,
)


def issues_of(raw: Any) -> list[ConditionIssue]:
    """Parse `raw`, expecting failure, and return the issues."""
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(raw)
    assert isinstance(info.value, ValueError)
    return info.value.issues


def only_issue(raw: Any) -> ConditionIssue:
    """Parse `raw`, expecting exactly one issue."""
    issues = issues_of(raw)
    assert len(issues) == 1, issues
    return issues[0]


# -- structured form --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "suggestion"),
    [
        ("CONTIANS", "CONTAINS"),
        ("gte", ">="),
        ("=", "=="),
        ("match", "MATCHES"),
        ("not in", "NOT_IN"),
        ("average", "AVG"),
        ("isnull", "IS_NULL"),
        ("truthi", "TRUTHY"),
        ("is_true", "TRUTHY"),
    ],
)
def test_unknown_operator_suggests_the_closest(written: str, suggestion: str) -> None:
    """An unknown operator is reported at `operator`, listing valid ones and the likely one."""
    issue = only_issue({"field": "x", "operator": written, "value": 1})
    assert issue.path == "operator"
    assert written in issue.message
    assert issue.suggestion == suggestion
    assert issue.expected is not None
    assert "MATCHES" in issue.expected
    assert "NOT_IN" in issue.expected


@pytest.mark.parametrize(
    ("written", "meant"),
    [("EQULS", "=="), ("not_equls", "!="), ("GRATER_THAN", ">"), ("LES_THAN", "<")],
)
def test_a_misspelt_alias_suggests_the_operator_it_means(written: str, meant: str) -> None:
    """A misspelling of a word people reach for (`EQUALS`) suggests the operator it means,
    also when an unrelated operator looks nearer (`NOT_EQULS` is not `NOT_IN`)."""
    issue = only_issue({"field": "x", "operator": written, "value": 1})
    assert issue.suggestion == meant


def test_unknown_operator_without_a_close_match() -> None:
    """Nonsense gets no suggestion, but still the list of valid operators."""
    issue = only_issue({"field": "x", "operator": "qqqqqqq", "value": 1})
    assert issue.suggestion is None
    assert issue.expected is not None


def test_missing_and_non_string_operator() -> None:
    """`operator` must be present and a string."""
    assert only_issue({"field": "x", "value": 1}).message == "'operator' is required"
    assert "must be a string" in only_issue({"field": "x", "operator": 3}).message


@pytest.mark.parametrize("value", ["FR", 3, {"a": 1}, None])
def test_in_needs_a_list(value: Any) -> None:
    """IN and NOT_IN need a list under `value`."""
    for operator in ("IN", "NOT_IN"):
        issue = only_issue({"field": "x", "operator": operator, "value": value})
        assert issue.path == "value"
        assert "needs a list" in issue.message


def test_in_list_items_must_be_scalars() -> None:
    """Each item of an IN list is checked, and reported by index."""
    issue = only_issue({"field": "x", "operator": "IN", "value": [1, [2], 3]})
    assert issue.path == "value[1]"


def test_bad_regex_is_reported_with_the_regex_error(engine: str) -> None:
    """A pattern that does not compile fails at load time, naming the problem."""
    issue = only_issue({"field": "x", "operator": "MATCHES", "value": "(abc"})
    assert issue.path == "value"
    assert "invalid regular expression" in issue.message
    assert "missing )" in issue.message


def test_matches_needs_a_string() -> None:
    """MATCHES needs its regex as a string."""
    issue = only_issue({"field": "x", "operator": "MATCHES", "value": 5})
    assert "regular expression string" in issue.message


@pytest.mark.parametrize(
    "pattern", ["(a+)+", "(a*)*", "(a|aa)+", "(x+x+)+y", "(.*a){10}", "(a?)+$"]
)
def test_catastrophic_regex_is_rejected_by_the_guarded_engine(
    stdlib_re: None, pattern: str
) -> None:
    """Without re2, patterns that can backtrack exponentially are refused with a rewrite hint."""
    issue = only_issue({"field": "x", "operator": "MATCHES", "value": pattern})
    assert issue.path == "value"
    assert "backtrack catastrophically" in issue.message
    assert issue.expected is not None
    assert "google-re2" in issue.expected


def test_unknown_key_suggests_the_closest() -> None:
    """A misspelt key is reported by name with the key it resembles."""
    issues = issues_of({"feild": "x", "operator": "==", "value": 1})
    unknown = [i for i in issues if i.path == "feild"]
    assert len(unknown) == 1
    assert unknown[0].suggestion == "field"
    assert any(i.path == "field" and "required" in i.message for i in issues)


def test_all_issues_are_collected_with_their_paths() -> None:
    """Every problem of a condition is reported at once, each at its own path."""
    issues = issues_of(
        {
            "operator": "AND",
            "conditions": [
                {"field": "a", "operator": "GRATER", "value": 1},
                {"field": "b", "operator": "IN", "value": "x"},
                {"field": "c", "operator": "==", "value": 1, "vlaue": 2},
                {"operator": "NOT", "conditions": [{"field": "", "operator": "EXISTS"}]},
            ],
        }
    )
    paths = [i.path for i in issues]
    assert paths == [
        "conditions[0].operator",
        "conditions[1].value",
        "conditions[2].vlaue",
        "conditions[3].conditions[0].field",
    ]


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"operator": "==", "value": 1}, "field", "'field' is required"),
        ({"field": 3, "operator": "==", "value": 1}, "field", "must be a string"),
        ({"field": "a..b", "operator": "==", "value": 1}, "field", "empty segment"),
        ({"field": "a.", "operator": "==", "value": 1}, "field", "empty segment"),
        ({"field": "a`b", "operator": "==", "value": 1}, "field", "backtick"),
        ({"field": ".", "operator": "==", "value": 1}, "field", "ALL/ANY/NONE"),
        ({"field": "x", "operator": "=="}, "value", "needs a 'value'"),
        ({"field": "x", "operator": "==", "value": [1]}, "value", "expected a string, number"),
        ({"field": "x", "operator": ">", "value": True}, "value", "cannot compare with bool"),
        ({"field": "x", "operator": "<", "value": None}, "value", "cannot compare with null"),
        ({"field": "x", "operator": "==", "value": float("inf")}, "value", "not a finite number"),
        (
            {"field": "x", "operator": "EXISTS", "value": 1},
            "value",
            "EXISTS takes no value other than true or false",
        ),
        ({"field": "x", "operator": "==", "value": 1, "conditions": []}, "conditions", "takes no"),
        ({"operator": "AND"}, "conditions", "needs 'conditions'"),
        ({"operator": "AND", "conditions": []}, "conditions", "at least one"),
        ({"operator": "OR", "conditions": {"field": "x"}}, "conditions", "must be a list"),
        ({"operator": "AND", "conditions": [], "field": "x"}, "field", "AND takes no 'field'"),
        ({"operator": "NOT", "conditions": ["a > 1", "b > 1"]}, "conditions", "exactly one"),
        ({"operator": "NOT", "condition": "a > 1", "conditions": ["b > 1"]}, "", "not both"),
        ({"field": "x", "operator": "AVG", "value": "high"}, "value", "compares with a number"),
        ({"field": "x", "operator": "AVG", "value": True}, "value", "compares with a number"),
        ({"field": "x", "operator": "SUM"}, "value", "needs a 'value'"),
        ({"field": "x", "operator": "SUM", "compare": "~", "value": 1}, "compare", "unknown"),
        ({"field": "x", "operator": "ANY"}, "value", "or a 'condition'"),
        (
            {"field": "x", "operator": "ANY", "value": 1, "condition": "a > 1"},
            "",
            "not both",
        ),
        ({"field": "x", "operator": "ALL", "compare": ">", "value": None}, "value", "null"),
        ({"operator": "TRUTHY"}, "field", "'field' is required"),
        ({"field": "x", "operator": "TRUTHY", "value": 1}, "value", "true or false"),
        ({"field": "x", "operator": "TRUTHY", "compare": ">"}, "compare", "takes no"),
        ({"field": "x", "operator": "TRUTHY", "conditions": ["a"]}, "conditions", "takes no"),
        (
            {"field": "x", "operator": "ALL", "condition": "a > 1", "conditions": ["b > 1"]},
            "",
            "either 'condition' or 'conditions', not both",
        ),
        (
            {"operator": "ANY", "condition": "a > 1", "conditions": ["b > 1"]},
            "",
            "either 'condition' or 'conditions', not both",
        ),
        (
            {"field": "x", "operator": "NONE", "value": 1, "conditions": ["b > 1"]},
            "",
            "either 'value' or 'conditions', not both",
        ),
        (
            {"field": "x", "operator": "ALL", "compare": ">", "conditions": ["b > 1"]},
            "compare",
            "applies to 'value', not 'conditions'",
        ),
        ({"operator": "ALL", "value": 1, "conditions": ["b"]}, "value", "without 'field'"),
        ({"operator": "ANY", "compare": ">", "conditions": ["b"]}, "compare", "without 'field'"),
        ({"operator": "NONE", "conditions": []}, "conditions", "NONE needs at least one"),
        ({"field": "x", "operator": "ALL", "conditions": []}, "conditions", "at least one"),
        ({"operator": "ANY", "conditions": "a > 1"}, "conditions", "must be a list"),
        ({"operator": "ANY", "condition": "a > 1"}, "field", "'field' is required"),
        ({"operator": "ALL", "conditions": ["."]}, "conditions[0]", "only be used inside"),
        (["a > 1"], "", "expected a condition, got list"),
        (3, "", "expected a condition, got int"),
    ],
)
def test_structured_issue(raw: Any, path: str, fragment: str) -> None:
    """Each malformed condition is reported at the right path with a clear message."""
    issues = issues_of(raw)
    assert any(i.path == path and fragment in i.message for i in issues), issues


def test_aggregation_conditions_are_named_by_their_path() -> None:
    """Problems inside the `conditions` of ALL/ANY/NONE, with or without a `field`, name their
    path inside the condition, all at once."""
    issues = issues_of(
        {
            "operator": "AND",
            "conditions": [
                {
                    "field": "items",
                    "operator": "ANY",
                    "conditions": [{"field": "price", "operator": "GT", "value": 0}, "qty >"],
                },
                {"operator": "NONE", "conditions": ["ok", {"feild": "x", "operator": "EXISTS"}]},
            ],
        }
    )
    assert [(i.path, i.suggestion) for i in issues] == [
        ("conditions[0].conditions[0].operator", ">"),
        ("conditions[0].conditions[1]", None),
        ("conditions[1].conditions[1].feild", "field"),
        ("conditions[1].conditions[1].field", None),
    ]
    assert issues[1].column == 6


def test_aggregation_without_field_or_value_says_every_way() -> None:
    """ALL/ANY/NONE with neither a list nor conditions says what each way needs."""
    issues = issues_of({"operator": "ANY"})
    assert [i.path for i in issues] == ["field", "value"]
    assert "under 'conditions'" in str(issues[0].expected)
    assert "'conditions'" in issues[1].message


def test_unknown_compare_suggests() -> None:
    """A misspelt `compare` gets a suggestion too."""
    issue = only_issue({"field": "x", "operator": "ANY", "compare": "gt", "value": 1})
    assert issue.path == "compare"
    assert issue.suggestion == ">"


def test_nesting_depth_is_bounded() -> None:
    """Absurdly deep nesting is an issue, not a RecursionError."""
    raw: dict[str, Any] = {"field": "x", "operator": "EXISTS"}
    for _ in range(150):
        raw = {"operator": "NOT", "condition": raw}
    issues = issues_of(raw)
    assert "nested more than" in issues[0].message
    with pytest.raises(ConditionSyntaxError, match="nested more than"):
        parse_condition("(" * 300 + "x > 1" + ")" * 300)
    with pytest.raises(ConditionSyntaxError, match="nested more than"):
        parse_condition("not " * 300 + "x > 1")


def test_expression_inside_structured_keeps_its_column() -> None:
    """An expression string nested in a structured condition reports path, column and source."""
    issue = only_issue({"operator": "OR", "conditions": ["a > 1", "b >"]})
    assert issue.path == "conditions[1]"
    assert issue.column == 4
    assert issue.source == "b >"


def test_none_valued_keys_that_do_not_apply_are_ignored() -> None:
    """Keys set to null that the operator does not use are accepted (as serialisers emit)."""
    node = parse_condition(
        {"field": "x", "operator": "EXISTS", "value": None, "conditions": None, "compare": None}
    )
    assert node == parse_condition("exists(x)")


# -- expression form --------------------------------------------------------------------------

EXPRESSION_ERRORS = [
    ("amount >= ", 11, "expected a value after '>='", None),
    ("amount < ", 10, "expected a value after '<'", None),
    ("amount = 5", 8, "unexpected '='", "=="),
    ("a & b", 3, "unexpected '&'", "&&"),
    ("(a > 1", 7, "expected ')' to close the '(' at column 1", None),
    ("a > 1)", 6, "unmatched ')'", None),
    ("a > 1 b", 7, "unexpected 'b'", None),
    ("x like 'a'", 3, "expected an operator after 'x'", "matches"),
    ("x containz 'a'", 3, "expected an operator after 'x'", "contains"),
    ("avgg(x) > 1", 1, "unknown function 'avgg'", "avg"),
    ("'abc", 1, "unterminated string", None),
    ("`x > 1", 1, "unterminated `quoted` path", None),
    ("x in 3", 6, "expected a list after 'in'", None),
    ("x in [1, 2", 11, "expected ',' or ']'", None),
    ("x in [1 2]", 9, "expected ',' or ']'", None),
    ("x matches 5", 11, "expected a quoted regular expression", None),
    ("x matches '(a'", 11, "invalid regular expression", None),
    ("sum(x) 5", 8, "expected a comparison after sum(...)", None),
    ("sum(x) > 'a'", 10, "sum() compares with a number", None),
    ("any(x)", 6, "expected a comparison or ','", None),
    ("exists(x", 9, "expected ')' to close exists(", None),
    ("x > y", 5, "expected a value after '>', got 'y'", None),
    ("x > [1]", 5, "expected a value after '>', got '['", None),
    ("x > true", 5, "'>' orders values and cannot compare with true", None),
    ("x not 3", 7, "expected 'in' after 'not'", None),
    ("x is 3", 6, "expected 'null' after 'is'", None),
    ("a.b. > 1", 4, "empty segment", None),
    (".a > 1", 1, "a path cannot start with '.'", None),
    (". > 1", 1, "only be used inside all(), any() or none()", None),
    ("x > 1e999", 5, "out of range", None),
    ('x == "\\u12"', 7, "\\u needs 4 hex digits", None),
    ("x > -", 5, "unexpected '-'", None),
    ("", 1, "expected a condition at the end of the expression", None),
    ("a > 1 and", 10, "expected a condition at the end", None),
    ("x == 'a' or or", 13, "expected a condition, got 'or'", None),
    # spellings from other languages get the condition language's own
    ("a <> 1", 3, "unexpected '<>'", "!="),
    ("a === 1", 3, "unexpected '==='", "=="),
    ("a !== 1", 3, "unexpected '!=='", "!="),
    ("a > 1 andd b < 2", 7, "unexpected 'andd'", "and"),
    ("a > 1 orr b < 2", 7, "unexpected 'orr'", "or"),
    ("a == None", 6, "expected a value after '==', got 'None'", "null"),
    ("a != nil", 6, "expected a value after '!=', got 'nil'", "null"),
    ("a == Tru", 6, "expected a value after '==', got 'Tru'", "true"),
    ("a is none", 6, "expected 'null' after 'is'", "null"),
    ("a not_in [1]", 3, "expected an operator after 'a'", "not in"),
    ("a gte 3", 3, "expected an operator after 'a'", ">="),
    ("a between 1 and 2", 3, "expected an operator after 'a'", "a >= low and a <= high"),
    ("len(a) > 1", 1, "unknown function 'len'", "count"),
    # a bare path is a truthiness test; a bare literal is not a condition
    ("5", 1, "expected a condition, got '5'", None),
    ("true", 1, "expected a condition, got 'true'", None),
    ("null", 1, "expected a condition, got 'null'", None),
    ("'flag'", 1, "expected a condition, got \"'flag'\"", None),
    ("flag and 0", 10, "expected a condition, got '0'", None),
    ("not false", 5, "expected a condition, got 'false'", None),
    ("flag foo", 6, "expected an operator after 'flag', got 'foo'", None),
    ("flag, other", 5, "expected an operator after 'flag', got ','", None),
    ("flag )", 6, "unmatched ')'", None),
    ("flag not", 9, "expected 'in' after 'not'", None),
    ("all(items, .", 13, "expected ')' to close all(", None),
]


@pytest.mark.parametrize(
    ("source", "column", "fragment", "suggestion"),
    EXPRESSION_ERRORS,
    ids=[e[0] or "<empty>" for e in EXPRESSION_ERRORS],
)
def test_malformed_expression_points_at_the_column(
    source: str, column: int, fragment: str, suggestion: str | None
) -> None:
    """A syntax error names the problem and the 1-based column where it is."""
    issue = only_issue(source)
    assert issue.path == ""
    assert issue.source == source
    assert issue.column == column
    assert fragment in issue.message
    assert issue.suggestion == suggestion


def test_catastrophic_regex_in_an_expression(stdlib_re: None) -> None:
    """An unsafe pattern in an expression is rejected at the column of the string."""
    issue = only_issue('email matches "(a+)+@x"')
    assert issue.column == 15
    assert "backtrack" in issue.message


def test_error_message_draws_a_caret() -> None:
    """The exception text shows the expression with a caret under the column."""
    with pytest.raises(ConditionSyntaxError) as info:
        compile_condition("amount >= ")
    lines = str(info.value).splitlines()
    assert lines[0] == "1 problem in the condition:"
    source_line, caret_line = lines[-2:]
    assert source_line.strip() == "amount >="
    assert caret_line.index("^") == source_line.index("amount") + 10


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("is_not_null", "EXISTS"),
        ("NOT_NULL", "EXISTS"),
        ("not_exists", "IS_NULL"),
        ("!==", "!="),
        ("not_equals", "!="),
        ("GREATER", ">"),
        ("greater_than", ">"),
        ("LESS_THAN", "<"),
        ("≥", ">="),
        ("≤", "<="),
    ],
)
def test_a_near_spelling_of_the_opposite_operator_is_not_suggested(
    written: str, meant: str
) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition({"field": "a", "operator": written, "value": 1})
    assert f"did you mean {meant!r}?" in str(info.value)


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("is_not_null(a)", "exists"),
        ("not_exists(a)", "is_null"),
        ("a is_not_null", "is not null"),
        ("a not_exists", "is null"),
    ],
)
def test_expression_spellings_suggest_what_they_mean(written: str, meant: str) -> None:
    with pytest.raises(ConditionSyntaxError) as info:
        parse_condition(written)
    assert f"did you mean {meant!r}?" in str(info.value)
