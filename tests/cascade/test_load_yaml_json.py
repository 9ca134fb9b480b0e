"""How cascade files are read: JSON keys located and never silently repeated (also with tabs),
YAML plain values by the 1.2 core schema, and aliases that cannot blow a file up in memory."""

from __future__ import annotations

import json
import math
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from cascade_files import issue_at, line_of, load_error, write

from cascadence.cascade import CascadeConfig
from cascadence.cascade.loader import ALIAS_LIMIT
from cascadence.errors import ConfigError, ConfigWarning


def metadata(tmp_path: Path, body: str) -> dict[str, Any]:
    """The metadata of a one-stage config whose `metadata:` mapping is `body`."""
    text = "name: t\nstages: {A: {}}\nmetadata:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    path = tmp_path / "meta.yaml"
    path.write_text(text, encoding="utf-8")
    return CascadeConfig.from_file(path).metadata


# -- JSON: lines with tabs, duplicate keys -----------------------------------------------------

TAB_JSON = (
    "{\n"
    '\t"name": "t",\n'
    '\t"stages": {\n'
    '\t\t"FAST_CHECK": {"timout_ms": 5},\n'
    '\t\t"MEDIUM_CHECK": {\n'
    '\t\t\t"depends_on": ["FAST_CHEK"]\n'
    "\t\t}\n"
    "\t}\n"
    "}\n"
)


def test_tab_indented_json_is_located_line_by_line(tmp_path: Path) -> None:
    """A JSON file indented with tabs reports each problem at its line and column, with the
    closest name, as a space-indented one does."""
    error, path = load_error(tmp_path, TAB_JSON, name="cascade.json")
    typo = issue_at(error, "stages.FAST_CHECK.timout_ms")
    assert (typo.file, typo.line, typo.column) == (str(path), 4, 18)
    assert typo.suggestion == "timeout_ms"
    unknown = issue_at(error, "stages.MEDIUM_CHECK.depends_on[0]")
    assert (unknown.line, unknown.column) == (6, 19)
    assert unknown.suggestion == "FAST_CHECK"
    assert f"{path}:4:18: stages.FAST_CHECK.timout_ms" in str(error)
    assert f"{path}:6:19: stages.MEDIUM_CHECK.depends_on[0]" in str(error)


@pytest.mark.parametrize("indent", ["\t", "  ", "\t  "])
def test_duplicate_stage_key_in_json_is_an_error_with_both_lines(
    tmp_path: Path, indent: str
) -> None:
    """A stage written twice in a JSON object is an error naming the key and both lines; the
    first definition is not silently dropped, whatever the indentation."""
    text = "\n".join(
        [
            "{",
            f'{indent}"name": "t",',
            f'{indent}"stages": {{',
            f'{indent}{indent}"A": {{"timeout_ms": 5}},',
            f'{indent}{indent}"B": {{}},',
            f'{indent}{indent}"A": {{"timeout_ms": 7}}',
            f"{indent}}}",
            "}",
            "",
        ]
    )
    error, path = load_error(tmp_path, text, name="cascade.json")
    assert len(error.issues) == 1
    issue = issue_at(error, "stages.A")
    assert issue.file == str(path)
    assert issue.line == 6
    assert "duplicate key 'A' (first on line 4)" in issue.message
    assert issue.expected is not None and "each key once" in issue.expected
    assert f"{path}:6" in str(error)


def test_json_duplicates_everywhere_are_all_reported(tmp_path: Path) -> None:
    """Duplicates at the top, inside a stage of a stage list and three times on one line are
    each reported, at the later key, with the first one's line (and column on the same line)."""
    error, path = load_error(
        tmp_path,
        """
        {
          "name": "t",
          "stages": [
            {"name": "A"},
            {"name": "B", "timeout_ms": 5,
             "timeout_ms": 6}
          ],
          "metadata": {"k": 1, "k": 2, "k": 3},
          "name": "u"
        }
        """,
        name="cascade.json",
    )
    top = issue_at(error, "name")
    assert top.line == 9 and "(first on line 2)" in top.message
    inner = issue_at(error, "stages[1].timeout_ms")
    assert inner.line == 6 and "(first on line 5)" in inner.message
    repeated = [i for i in error.issues if i.path == "metadata.k"]
    assert [(i.line, i.column) for i in repeated] == [(8, 24), (8, 32)]
    assert all("(first on line 8, column 16)" in i.message for i in repeated)
    assert len(error.issues) == 4
    assert all(i.file == str(path) for i in error.issues)


def test_json_duplicate_spelt_with_an_escape(tmp_path: Path) -> None:
    """`"\\u0041"` is the key `A`, so it repeats `"A"`."""
    error, _ = load_error(
        tmp_path,
        '{"name": "t",\n "stages": {"A": {},\n  "\\u0041": {"timeout_ms": 5}}}\n',
        name="cascade.json",
    )
    issue = issue_at(error, "stages.A")
    assert issue.line == 3 and "(first on line 2)" in issue.message


def test_json_that_yaml_cannot_read_is_still_located(tmp_path: Path) -> None:
    """A key on one line with its colon on the next, and a key longer than YAML's 1,024
    characters, are valid JSON: their problems keep their lines."""
    long_key = "k" * 1500
    error, path = load_error(
        tmp_path,
        '{"name": "t",\n'
        f' "metadata": {{"{long_key}": 1}},\n'
        ' "stages": {"A": {"depends_on": ["Z"]},\n'
        '  "B"\n'
        "  :\n"
        '  {"timout_ms": 1}}}\n',
        name="cascade.json",
    )
    assert issue_at(error, "stages.A.depends_on[0]").line == 3
    typo = issue_at(error, "stages.B.timout_ms")
    assert typo.line == 6 and typo.suggestion == "timeout_ms"
    assert f"{path}:6" in str(error)


def test_from_json_text_reports_duplicates_too() -> None:
    """`from_json` applies the same rule to text, naming the source given."""
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_json(
            '{"name": "t", "stages": {"A": {}}, "stop_on_failure": true,\n'
            ' "stop_on_failure": false}',
            source="api-body",
        )
    (issue,) = info.value.issues
    assert (issue.file, issue.path, issue.line) == ("api-body", "stop_on_failure", 2)
    assert "first on line 1" in issue.message


def test_tab_indented_json_loads_like_any_json(tmp_path: Path) -> None:
    """A valid config written with tabs loads equal to the same config written compactly."""
    config = CascadeConfig.from_dict(
        {
            "name": "t",
            "stages": {
                "A": {"timeout_ms": 5, "custom_properties": {"x": [1, {"y": None}]}},
                "B": {"depends_on": ["A"]},
            },
            "metadata": {"tabs": "a\tb", "": [], "e": {}},
        }
    )
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config.to_dict(), indent="\t"), encoding="utf-8")
    assert CascadeConfig.from_file(path) == config


def test_json_integer_too_long_to_read(tmp_path: Path) -> None:
    """An integer Python refuses to convert is a ConfigError at its line, not a ValueError."""
    error, path = load_error(
        tmp_path,
        '{"name": "t",\n "stages": {"A": {"timeout_ms": ' + "9" * 5000 + "}}}\n",
        name="cascade.json",
    )
    (issue,) = error.issues
    assert (issue.file, issue.line, issue.column) == (str(path), 2, 33)
    assert "5,000 digits" in issue.message


# -- YAML: plain values by the 1.2 core schema -------------------------------------------------


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("[NO, SE, DK]", ["NO", "SE", "DK"]),  # the Norway problem
        ("[yes, no, on, off, y, n, Yes, OFF]", ["yes", "no", "on", "off", "y", "n", "Yes", "OFF"]),
        ("[true, True, TRUE, false, False, FALSE]", [True, True, True, False, False, False]),
        ("[null, Null, NULL, ~]", [None, None, None, None]),
        ("[010, 0o17, 0x1F, -12, +3, 0]", [10, 15, 31, -12, 3, 0]),
        ("[1e3, 1.5E-2, -2.5, .5, 1., +1e+2]", [1000.0, 0.015, -2.5, 0.5, 1.0, 100.0]),
        ("[.inf, -.Inf, +.INF]", [math.inf, -math.inf, math.inf]),
        (
            "[1:30, 0b101, 1_000, 2024-01-01, 0O17, 0X1F]",
            ["1:30", "0b101", "1_000", "2024-01-01", "0O17", "0X1F"],
        ),
        ("['yes', \"010\", '1e3']", ["yes", "010", "1e3"]),
    ],
)
def test_plain_values_follow_yaml_1_2(tmp_path: Path, written: str, value: list[Any]) -> None:
    """Only true/false are booleans and only null/~/nothing is null; `010` is ten and `1e3` a
    number; sexagesimal, binary, underscored numbers and dates stay the text written."""
    assert metadata(tmp_path, f"v: {written}\n")["v"] == value


def test_nan_and_nothing(tmp_path: Path) -> None:
    """`.nan` (any case YAML allows) is the float NaN; a value left empty is null."""
    data = metadata(tmp_path, "v: [.nan, .NaN, .NAN]\nempty:\n")
    assert len(data["v"]) == 3 and all(isinstance(v, float) and math.isnan(v) for v in data["v"])
    assert data["empty"] is None


def test_global_safe_loader_is_untouched(tmp_path: Path) -> None:
    """Reading a config does not change how PyYAML's own SafeLoader reads other YAML."""
    metadata(tmp_path, "v: [NO, 010]\n")
    assert yaml.safe_load("[yes, NO, 010]") == [True, False, 8]


@pytest.mark.parametrize(
    ("written", "expected"), [("1e3", 1000), ("1.5e3", 1500), ("010", 10), ("0x10", 16)]
)
def test_numbers_in_number_fields(tmp_path: Path, written: str, expected: int) -> None:
    """`timeout_ms: 1e3` is the number the user wrote, not the text "1e3" nor octal."""
    path = write(tmp_path, f"name: t\nstages:\n  A:\n    timeout_ms: {written}\n")
    assert CascadeConfig.from_file(path).stages["A"].timeout_ms == expected


def test_a_number_with_a_fraction_in_an_integer_field(tmp_path: Path) -> None:
    """`1.5e0` where an integer goes is still refused at its line."""
    error, path = load_error(tmp_path, "name: t\nstages:\n  A:\n    timeout_ms: 1.5e0\n")
    issue = issue_at(error, "stages.A.timeout_ms")
    assert (issue.file, issue.line) == (str(path), 4)
    assert "fractional part" in issue.message


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        *[("yes", True), ("no", False), ("on", True), ("off", False), ("y", True), ("n", False)],
        *[("Yes", True), ("OFF", False), ("true", True), ("False", False)],
    ],
)
def test_yes_and_no_still_set_boolean_fields(tmp_path: Path, written: str, expected: bool) -> None:
    """A boolean field still reads `enabled: yes` or `stop_on_failure: off` as a boolean."""
    path = write(
        tmp_path,
        f"""
        name: t
        stop_on_failure: {written}
        stages:
          A:
            enabled: {written}
            can_run_parallel: {written}
            cache_enabled: {written}
            routing_rules:
              - name: r
                enabled: {written}
                condition: "amount > 3"
                action: {{type: terminate}}
        """,
    )
    config = CascadeConfig.from_file(path)
    stage = config.stages["A"]
    assert config.stop_on_failure is expected
    assert stage.enabled is expected and stage.can_run_parallel is expected
    assert stage.cache_enabled is expected
    assert stage.routing_rules[0].enabled is expected


def test_stage_keys_are_the_text_written(tmp_path: Path) -> None:
    """Stage keys `NO`, `ON`, `123`, `010`, `1e3` and `true` name stages as written, and every
    name reads back in the order given (no `[key]` errors, no garbled paths)."""
    path = write(
        tmp_path,
        """
        name: t
        stages:
          NO: {}
          ON: {enabled: off}
          123: {}
          010: {}
          1e3: {}
          true: {}
        execution_order: [NO, ON, "123", "010", "1e3", "true"]
        """,
    )
    config = CascadeConfig.from_file(path)
    assert config.stage_names() == ["NO", "ON", "123", "010", "1e3", "true"]
    assert config.stages["ON"].enabled is False
    assert config.stages["123"].name == "123"


def test_numeric_keys_that_are_the_same_text_are_duplicates(tmp_path: Path) -> None:
    """`123:` and `"123":` are one key written twice; `1:` and `01:` are two keys."""
    error, path = load_error(tmp_path, 'name: t\nstages:\n  123: {}\n  01: {}\n  "123": {}\n')
    (issue,) = error.issues
    assert issue.path == "stages.123"
    assert (issue.file, issue.line) == (str(path), 5)
    assert "first on line 3" in issue.message


def test_a_number_where_a_name_goes_says_to_quote_it(tmp_path: Path) -> None:
    """A number as a stage name or in execution_order is refused at its line, saying to quote
    it; a key tagged as a number by hand is named as such."""
    error, path = load_error(
        tmp_path,
        """
        name: t
        stages:
          - name: 123
          - name: B
        execution_order: [B, 123]
        """,
    )
    named = issue_at(error, "stages[0].name")
    assert (named.file, named.line) == (str(path), line_of(path, "name: 123"))
    assert "got the number 123" in named.message
    assert named.expected is not None and "quotes" in named.expected
    order = issue_at(error, "execution_order[1]")
    assert order.line == line_of(path, "execution_order")
    assert "got the number 123" in order.message

    error, _ = load_error(tmp_path, "name: t\nstages:\n  A: {}\n  !!int 5 : {}\n", "tagged.yaml")
    key = issue_at(error, "stages[5]")
    assert key.line == 4 and key.message == "key 5 is a number, not text"
    assert key.expected == "a name written as text: '5'"


@pytest.mark.parametrize(("written", "kept"), [("010", "010"), ("1e3", "1e3"), ("1.10", "1.10")])
def test_version_keeps_the_text_written(tmp_path: Path, written: str, kept: str) -> None:
    """A version written as a number keeps its digits as written."""
    path = write(tmp_path, f"name: t\nversion: {written}\nstages: {{A: {{}}}}\n")
    assert CascadeConfig.from_file(path).version == kept


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("!!float abc", "cannot read 'abc' as float"),
        ("!!int 0b2", "cannot read '0b2' as int"),
        ("!!bool maybe", "cannot read 'maybe' as bool"),
        ("!!timestamp soon", "cannot read 'soon' as timestamp"),
        ("9" * 5000, "cannot read '99999"),
    ],
)
def test_values_a_tag_cannot_read(tmp_path: Path, value: str, shown: str) -> None:
    """A value its tag (or an integer too long) cannot read is a ConfigError at its line."""
    error, path = load_error(tmp_path, f"name: t\nstages:\n  A:\n    timeout_ms: {value}\n")
    (issue,) = error.issues
    assert (issue.file, issue.line) == (str(path), 4)
    assert shown in issue.message


def test_yes_as_a_condition_value_warns_at_its_line(tmp_path: Path) -> None:
    """`value: yes` in a condition or action now compares with (or writes) the text "yes"; a
    config written for YAML 1.1's boolean is warned about at the line, with the boolean to write.
    Quoted text and items of a list (`IN [NO, SE]`) do not warn."""
    path = write(
        tmp_path,
        """
        name: t
        stages:
          A:
            routing_rules:
              - name: active
                condition: {field: user.active, operator: "==", value: yes}
                action: {type: set_field, field: flag, value: off}
              - name: quoted
                condition: {field: user.answer, operator: "==", value: 'no'}
                action: {type: terminate}
              - name: nordic
                condition: {field: country, operator: IN, value: [NO, SE, DK]}
                action: {type: terminate}
        termination_conditions:
          - {field: done, operator: "==", value: Y}
        """,
    )
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        config = CascadeConfig.from_file(path)
    assert config.stages["A"].routing_rules[0].condition.value == "yes"  # type: ignore[union-attr]
    found = {
        w.message.issue.path: w.message.issue
        for w in seen
        if isinstance(w.message, ConfigWarning) and w.message.issue is not None
    }
    assert set(found) == {
        "stages.A.routing_rules[0].condition.value",
        "stages.A.routing_rules[0].action.value",
        "termination_conditions[0].value",
    }
    condition = found["stages.A.routing_rules[0].condition.value"]
    assert (condition.file, condition.line) == (str(path), line_of(path, "value: yes"))
    assert condition.suggestion == "true"
    assert "read as the text 'yes'" in condition.message
    assert found["stages.A.routing_rules[0].action.value"].suggestion == "false"
    assert found["termination_conditions[0].value"].line == line_of(path, "value: Y")


def test_tricky_strings_round_trip_through_to_yaml() -> None:
    """`to_yaml` quotes every string YAML 1.1 or 1.2 would read as something else, so it reads
    back equal (and the same in YAML 1.1 tools)."""
    tricky = ["yes", "NO", "y", "n", "on", "1e3", "010", "0o17", "0x1F", "1:30", ".inf", "~", ""]
    config = CascadeConfig.from_dict(
        {"name": "t", "stages": {"A": {}}, "metadata": {"v": tricky, "n": [1e20, 0.5, -3]}}
    )
    text = config.to_yaml()
    assert CascadeConfig.from_yaml(text) == config
    assert yaml.safe_load(text)["metadata"]["v"] == tricky


# -- YAML: aliases -----------------------------------------------------------------------------

LAUGHS = """\
name: t
stages: {A: {}}
metadata:
  a: &a [x, x, x, x, x, x, x, x, x]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
"""


def test_billion_laughs_is_refused_quickly_at_the_alias(tmp_path: Path) -> None:
    """Aliases nested 7 deep (4.8 million values from a few hundred bytes) are refused at the
    alias that passes the limit, naming the file, line, path and what is allowed."""
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS, encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_file(path)
    assert time.perf_counter() - started < 2
    (issue,) = info.value.issues
    # a..e repeat 74,718 values; the first *e (66,430 more) passes 100,000
    assert (issue.file, issue.line, issue.column) == (str(path), 9, 10)
    assert issue.path == "metadata.f[0]"
    assert "alias *e repeats 66,430 values" in issue.message
    assert "141,148" in issue.message and f"{ALIAS_LIMIT:,}" in issue.message
    assert issue.expected is not None and f"at most {ALIAS_LIMIT:,} values" in issue.expected
    assert issue.source_line == "  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]"
    assert f"{path}:9: metadata.f[0]: alias *e" in str(info.value)


def test_laughs_through_merge_keys_are_refused(tmp_path: Path) -> None:
    """Merge keys count as aliases too."""
    levels = ["  l0: &l0 {" + ", ".join(f"k{i}: x" for i in range(20)) + "}"]
    for n in range(1, 6):
        refs = ", ".join(f"*l{n - 1}" for _ in range(20))
        levels.append(f"  l{n}: &l{n} {{<<: [{refs}], own: x}}")
    path = tmp_path / "merge.yaml"
    path.write_text("name: t\nstages: {A: {}}\nmetadata:\n" + "\n".join(levels) + "\n")
    with pytest.raises(ConfigError) as info:
        CascadeConfig.from_file(path)
    (issue,) = info.value.issues
    assert issue.file == str(path) and issue.line is not None and issue.line > 4
    assert "alias *l" in issue.message


def test_the_limit_counts_what_aliases_repeat(tmp_path: Path) -> None:
    """An anchor of 1,000 values may be repeated 100 times, not 101."""
    items = ", ".join(["x"] * 999)
    for copies, ok in ((100, True), (101, False)):
        refs = "".join("    - *big\n" for _ in range(copies))
        text = f"name: t\nstages: {{A: {{}}}}\nmetadata:\n  big: &big [{items}]\n  refs:\n{refs}"
        path = tmp_path / f"refs{copies}.yaml"
        path.write_text(text, encoding="utf-8")
        if ok:
            assert len(CascadeConfig.from_file(path).metadata["refs"]) == copies
        else:
            with pytest.raises(ConfigError) as info:
                CascadeConfig.from_file(path)
            (issue,) = info.value.issues
            assert (issue.file, issue.path) == (str(path), "metadata.refs[100]")
            assert (issue.line, issue.column) == (6 + 100, 7)


def test_anchors_for_reuse_keep_working_and_keep_lines(tmp_path: Path) -> None:
    """Defaults merged with `<<: *defaults`, a shared rule and an aliased stage load as
    written, and a problem in a stage that merges defaults is still reported at its line."""
    path = write(
        tmp_path,
        """
        name: t
        metadata:
          defaults: &defaults {timeout_ms: 100, max_retries: 2}
          stop_rule: &stop {name: stop, condition: "amount > 3", action: {type: terminate}}
        stages:
          A:
            <<: *defaults
            routing_rules: [*stop]
          B:
            <<: *defaults
            timeout_ms: 5
            routing_rules: [*stop]
          C: *defaults
        """,
    )
    config = CascadeConfig.from_file(path)
    assert [s.timeout_ms for s in config.stages.values()] == [100, 5, 100]
    assert all(s.max_retries == 2 for s in config.stages.values())
    assert config.stages["B"].routing_rules[0].name == "stop"

    error, path = load_error(
        tmp_path,
        """
        name: t
        metadata:
          defaults: &defaults {timeout_ms: 100}
        stages:
          A:
            <<: *defaults
            timout_ms: 5
        """,
        "typo.yaml",
    )
    issue = issue_at(error, "stages.A.timout_ms")
    assert (issue.file, issue.line, issue.suggestion) == (str(path), 7, "timeout_ms")
