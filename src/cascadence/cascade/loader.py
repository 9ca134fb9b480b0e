"""Reading cascade configs from files, text and dicts, with every problem placed in its file.

YAML is composed into nodes first, so each key and item keeps the line and column it was
written at; the data is then constructed from the same nodes, by the YAML 1.2 core schema of
`yaml_core` (only `true`/`false` are booleans, `010` is ten, a mapping key is the text it is
written as, aliases may repeat at most `ALIAS_LIMIT` values in all). JSON is parsed with `json`
(its own semantics, duplicate keys refused) and each key located by the scan of `json_marks`.

Field validation (pydantic) and the cross-reference checks of `validate` both run, and all of
their problems are raised together as one `ConfigError`, each issue with the file, the line of
the offending node (or of its nearest written ancestor), the path inside the config, what was
expected and the closest valid name. A config part built on its own (`StageConfig(...)`) has
its pydantic errors turned into the same issues by `validation_error`.

A file that cannot be read raises a `ConfigFileError` that is also the `OSError` subclass the
read raised (`FileNotFoundError`, `IsADirectoryError`, `PermissionError`). Text loaders given a
path (`from_yaml(Path("cascade.yaml"))`, or the one-line `from_yaml("cascade.yaml")`) load the
file as `from_file` does, and `from_file` given text or `from_dict` given a path say which to use.

Input nested deeper than Python's recursion limit (a condition 10,000 levels deep, a YAML
alias that contains itself) is reported as an issue where it gets too deep, never as a
`RecursionError`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import typing
import warnings
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from cascadence.cascade.config import (
    ACTION_TYPES,
    CONDITION_TAGS,
    RULE_TYPES,
    CascadeConfig,
    canonical_word,
    stage_entries,
)
from cascadence.cascade.json_marks import KeyMarks, json_duplicates, json_marks
from cascadence.cascade.nesting import DEEPEST, deep_point, inner_type, plain_data, too_deep
from cascadence.cascade.validate import Loc, Marks, Problem, check_config
from cascadence.cascade.yaml_core import (
    ALIAS_LIMIT,
    AliasLimitError,
    CoreLoader,
    MarkedLoader,
    check_duplicates,
    collect_marks,
    dump_yaml,
    keep_version_text,
)
from cascadence.errors import (
    ConfigError,
    ConfigFileError,
    ConfigFileNotFoundError,
    ConfigIsADirectoryError,
    ConfigIssue,
    ConfigPermissionError,
    ConfigWarning,
    closest,
)

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

__all__ = [
    "ALIAS_LIMIT",
    "EXTENSIONS",
    "check_extension",
    "dump_yaml",
    "format_loc",
    "initialize",
    "load_data",
    "load_file",
    "load_text",
    "parse_json",
    "parse_yaml",
    "validation_error",
]

EXTENSIONS = (".yaml", ".yml", ".json")
"""File extensions a cascade config may have."""


@dataclass
class _Load:
    """Where the data being validated came from."""

    source: str | None = None
    marks: Marks = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    words: list[tuple[Loc, str]] = field(default_factory=list)
    """Plain `yes`/`no`/`on`/`off`/`y`/`n` values, text here but booleans to YAML 1.1."""


# `CascadeConfig.__init__` is the one place a config is validated (pydantic calls it from
# `model_validate` too), so the loader hands it the file's marks through this variable.
_LOAD: ContextVar[_Load | None] = ContextVar("cascadence_config_load", default=None)
LINTING: ContextVar[bool] = ContextVar("cascadence_config_linting", default=False)
"""Set while `cascadence validate` loads a file: configs built then also warn about lints
(legal, sometimes meant, often a slip; see `check_config`)."""


# -- entry points ------------------------------------------------------------------------------


def check_extension(path: str | os.PathLike[str]) -> str:
    """The lower-cased extension of `path`.

    Raises:
        ConfigError: The extension is not one of `EXTENSIONS`.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise ConfigError(
            [
                ConfigIssue(
                    path="",
                    message=f"unsupported file extension {suffix or '(none)'!r}",
                    expected="one of " + ", ".join(EXTENSIONS),
                    suggestion=closest(suffix, EXTENSIONS) if suffix else None,
                    file=os.fspath(path),
                )
            ]
        ) from None
    return suffix


def load_file(cls: type[CascadeConfig], path: str | os.PathLike[str]) -> CascadeConfig:
    """Load a config file, chosen by extension; see `CascadeConfig.from_file`."""
    if isinstance(path, str) and (
        "\n" in path or (path.lstrip().startswith("{") and not path.lower().endswith(EXTENSIONS))
    ):
        raise ConfigError(
            [
                ConfigIssue(
                    path="",
                    message="from_file takes the path of a file, got text",
                    expected=(
                        "the path of a .yaml, .yml or .json file; "
                        "CascadeConfig.from_yaml loads YAML text"
                    ),
                )
            ]
        ) from None
    source = os.fspath(path)
    suffix = check_extension(path)
    text = _read(source)
    config = _load_text(cls, text, source=source, json_text=suffix == ".json")
    config._source_file = source
    return config


_UNREADABLE: dict[type[OSError], tuple[type[ConfigFileError], str, str]] = {
    FileNotFoundError: (
        ConfigFileNotFoundError,
        "the file does not exist",
        "the path of an existing .yaml, .yml or .json file",
    ),
    IsADirectoryError: (
        ConfigIsADirectoryError,
        "the path is a folder, not a file",
        "the path of a .yaml, .yml or .json file",
    ),
    PermissionError: (
        ConfigPermissionError,
        "cannot read the file: permission denied",
        "a file the process may read",
    ),
}


def _read(source: str) -> str:
    """The text of the file `source`.

    Raises:
        ConfigFileError: The file cannot be read (the subclass matching the `OSError`).
        ConfigError: The file is not UTF-8 text.
    """
    try:
        return Path(source).read_text(encoding="utf-8-sig")
    except OSError as exc:
        kind, message, expected = (
            ConfigFileError,
            f"cannot read the file: {exc}",
            "a readable UTF-8 text file",
        )
        for base, known in _UNREADABLE.items():
            if isinstance(exc, base):
                kind, message, expected = known
                break
        raise _file_error(kind, exc, source, message, expected) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                ConfigIssue(
                    path="",
                    message=f"cannot read the file: {exc}",
                    expected="a readable UTF-8 text file",
                    file=source,
                )
            ]
        ) from None


def _file_error(
    kind: type[ConfigFileError], exc: OSError | None, source: str, message: str, expected: str
) -> ConfigFileError:
    if not os.path.isabs(source):  # name the folder it was looked for in
        message += f" (looked for {os.path.abspath(source)!r})"
    return kind(
        [ConfigIssue(path="", message=message, expected=expected, file=source)],
        exc.errno if exc else errno.ENOENT,
        exc.strerror if exc else os.strerror(errno.ENOENT),
        source,
    )


def load_text(
    cls: type[CascadeConfig],
    text: str | os.PathLike[str],
    *,
    source: str | None = None,
    json_text: bool = False,
) -> CascadeConfig:
    """Load YAML or JSON text, or the file a path names; see `CascadeConfig.from_yaml`.

    A path (`os.PathLike`, or a one-line `str` that is no mapping or list, names a `.yaml`,
    `.yml` or `.json` file and comes without `source`) is loaded as `load_file` loads it.

    Raises:
        ConfigFileNotFoundError: The text is one line ending in `.yaml`, `.yml` or `.json`,
            read as a file name, and there is no such file.
        ConfigError: The text cannot be parsed, or the config is invalid.
    """
    if isinstance(text, os.PathLike):
        return load_file(cls, text)
    name = _file_name(text) if source is None else None
    if name is None:
        return _load_text(cls, text, source=source, json_text=json_text)
    try:
        data, load = parse_json(text, source) if json_text else parse_yaml(text, source)
    except ConfigError:
        pass  # `from_json("cascade.json")`: not JSON, but a file name
    else:
        if isinstance(data, (Mapping, list)):
            return _build(cls, data, load)
    if os.path.isfile(name):
        return load_file(cls, name)
    method = "from_json" if json_text else "from_yaml"
    raise _file_error(
        ConfigFileNotFoundError,
        None,
        name,
        f"{method} read {name!r} as a file name, and the file does not exist",
        f"{'JSON' if json_text else 'YAML'} text or the path of an existing file "
        f"({method} takes either; CascadeConfig.from_file loads a file)",
    ) from None


def _file_name(text: str) -> str | None:
    """`text` stripped, when it could be a file name: one line ending in a config extension."""
    name = text.strip()
    if "\n" in name or "\r" in name or "\0" in name or not name.lower().endswith(EXTENSIONS):
        return None
    return name


def _load_text(
    cls: type[CascadeConfig], text: str, *, source: str | None, json_text: bool
) -> CascadeConfig:
    data, load = parse_json(text, source) if json_text else parse_yaml(text, source)
    return _build(cls, data, load)


def load_data(cls: type[CascadeConfig], data: Any, *, source: str | None = None) -> CascadeConfig:
    """Validate plain data; see `CascadeConfig.from_dict`."""
    return _build(cls, data, _Load(source))


def _build(cls: type[CascadeConfig], data: Any, load: _Load) -> CascadeConfig:
    if not isinstance(data, Mapping):
        what = "nothing (the document is empty)" if data is None else type(data).__name__
        expected = "a mapping with at least 'name' and 'stages'"
        shown = os.fspath(data) if isinstance(data, (str, os.PathLike)) else "\n"
        if "\n" not in shown and len(shown) <= 200:
            what += f" {shown!r}"
            expected += (
                "; to load a file, pass its path to CascadeConfig.from_file "
                "(from_yaml and from_json also take a pathlib.Path)"
            )
        raise ConfigError(
            [
                _issue(
                    Problem((), f"a cascade config must be a mapping, got {what}", expected),
                    {},
                    load,
                )
            ]
        ) from None
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(key, str):
            kwargs[key] = value
        else:
            load.problems.append(
                Problem((key,), f"key {key!r} is not a string", "field names of a cascade config")
            )
    token = _LOAD.set(load)
    try:
        return cls(**kwargs)
    finally:
        _LOAD.reset(token)


_WARNED: dict[Any, Any] = {}
"""`warnings.warn_explicit`'s registry for config warnings: each place warns once."""


def initialize(config: CascadeConfig, data: dict[str, Any], init: Callable[..., None]) -> None:
    """Run `init(**data)` (pydantic's own initializer) and every cross-reference check.

    Raises:
        ConfigError: With every problem found by either, located in the source file when the
            data came from one.
    """
    load = _LOAD.get() or _Load()
    _LOAD.set(None)  # a config built while this one validates is not from the same file
    problems = list(load.problems)
    plain = plain_data(data)
    _canonical_types(plain)
    try:
        init(**data)
    except ValidationError as exc:
        problems.extend(_from_pydantic(exc, CascadeConfig))
    doubts: list[Problem] = []
    lints: list[Problem] | None = [] if LINTING.get() else None
    problems.extend(
        check_config(plain, known=[p.loc for p in problems], warnings=doubts, lints=lints)
    )
    doubts.extend(lints or ())
    doubts.extend(_word_doubts(load.words, plain))
    if problems:
        issues = [_issue(p, plain, load) for p in problems]
        issues.sort(key=lambda i: (i.line is None, i.line or 0, i.column or 0))
        raise ConfigError(issues) from None
    for doubt in doubts:
        issue = _issue(doubt, plain, load)
        text = f"{issue.path}: {issue.message}" if issue.path else issue.message
        if issue.suggestion:
            text += f"; did you mean {issue.suggestion!r}?"
        # placed at the file and line, as Python shows a warning: once per place
        warnings.warn_explicit(
            ConfigWarning(text, issue),
            ConfigWarning,
            issue.file or "<config>",
            issue.line or 0,
            registry=_WARNED,
        )


def _canonical_types(plain: Any) -> None:
    """Write the rule and action types of `plain` in lower case where they are valid in any
    case (`TERMINATE`), as the models keep them, so the cross-reference checks read them."""
    stages = plain.get("stages") if isinstance(plain, Mapping) else None
    if isinstance(stages, Mapping):
        stages = list(stages.values())
    for stage in stages if isinstance(stages, list) else ():
        rules = stage.get("routing_rules") if isinstance(stage, dict) else None
        for rule in rules if isinstance(rules, list) else ():
            if not isinstance(rule, dict):
                continue
            if "type" in rule:
                rule["type"] = canonical_word(rule["type"], RULE_TYPES)
            action = rule.get("action")
            if isinstance(action, dict) and "type" in action:
                action["type"] = canonical_word(action["type"], ACTION_TYPES)


def _word_doubts(words: list[tuple[Loc, str]], plain: Any) -> list[Problem]:
    """A doubt for each plain `yes`/`no`/`on`/`off`/`y`/`n` written as the value of a condition
    or action: YAML 1.1 made it a boolean, so a config written for that would now compare with
    (or write) the text. Fields that are booleans read these words as booleans themselves."""
    doubts: list[Problem] = []
    stages = plain.get("stages") if isinstance(plain, Mapping) else None
    names = {i: k for k, i, _ in stage_entries(stages)} if isinstance(stages, list) else {}
    for loc, word in words:
        in_rule = len(loc) > 3 and loc[0] == "stages" and loc[2] == "routing_rules"
        if not loc or loc[-1] != "value" or not (in_rule or loc[0] == "termination_conditions"):
            continue
        if in_rule and isinstance(loc[1], int) and loc[1] in names:
            loc = ("stages", names[loc[1]], *loc[2:])
        boolean = "true" if word.lower() in ("y", "yes", "on") else "false"
        doubts.append(
            Problem(
                loc,
                f"{word} is read as the text {word!r}, not as the boolean {boolean} "
                "(YAML 1.2 reads only true and false as booleans)",
                f"{boolean} for the boolean, or {word!r} in quotes for the text",
                boolean,
            )
        )
    return doubts


def validation_error(exc: ValidationError, model: type[BaseModel]) -> ConfigError:
    """The `ConfigError` for pydantic's errors validating `model` on its own (`StageConfig(...)`,
    `RoutingRule.model_validate(...)`): the issues `from_dict` reports, with paths relative to
    the model. A `ConfigError` that pydantic wrapped (from `CascadeConfig.__init__`) is returned
    as it was raised."""
    for error in exc.errors(include_url=False):
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError):
            return cause
    return ConfigError([_issue(p, None, _Load()) for p in _from_pydantic(exc, model)])


# -- parsing with marks ------------------------------------------------------------------------


def parse_yaml(text: str, source: str | None = None) -> tuple[Any, _Load]:
    """Parse YAML into plain data and the line of every key and item.

    Raises:
        ConfigError: The text is not valid YAML, or its aliases repeat more than
            `ALIAS_LIMIT` values.
    """
    load = _Load(source)
    try:
        loader = CoreLoader(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            [
                ConfigIssue(
                    path="",
                    message=f"invalid YAML: {exc}",
                    expected="well-formed YAML",
                    file=source,
                )
            ]
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, load
        load.words = loader.words
        check_duplicates(loader, node, (), load.problems)
        data = loader.construct_document(node)
        collect_marks(loader, node, (), load.marks, set())
        keep_version_text(node, data)
    except AliasLimitError as exc:
        raise _alias_limit_error(exc, text, source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise ConfigError(
            [
                ConfigIssue(
                    path="",
                    message=f"invalid YAML: {message}",
                    expected="well-formed YAML",
                    file=source,
                    line=mark.line + 1 if mark else None,
                    column=mark.column + 1 if mark else None,
                    source_line=_line_of(text, mark.line) if mark else None,
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            [
                ConfigIssue(
                    path="",
                    message=f"invalid YAML: {exc}",
                    expected="well-formed YAML",
                    file=source,
                )
            ]
        ) from None
    except RecursionError:  # the composer recurses once per nested collection
        raise _too_deep_text(text, source) from None
    finally:
        loader.dispose()
    return data, load


def _alias_limit_error(exc: AliasLimitError, text: str, source: str | None) -> ConfigError:
    mark = exc.mark
    return ConfigError(
        [
            ConfigIssue(
                path=format_loc(exc.loc),
                message=(
                    f"alias *{exc.anchor} repeats {exc.size:,} values, which brings the values "
                    f"repeated by aliases to {exc.total:,}, more than the {ALIAS_LIMIT:,} "
                    "allowed: the document would take too long and too much memory to load"
                ),
                expected=(
                    f"aliases that repeat at most {ALIAS_LIMIT:,} values in all; reusing a few "
                    "small anchors (`<<: *defaults`) is fine"
                ),
                file=source,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
                source_line=_line_of(text, mark.line) if mark else None,
            )
        ]
    )


def _too_deep_text(text: str, source: str | None) -> ConfigError:
    """The error for a text nested too deeply to read, placed where it first nests too deeply."""
    chain = deep_point(text, MarkedLoader, DEEPEST) or [(None, None)]
    loc: Loc = tuple(part for part, _ in chain[1:])
    problem = too_deep(loc, CascadeConfig)
    line, column = chain[min(len(problem.loc), len(chain) - 1)][1] or (None, None)
    located = Problem(problem.loc, problem.message, problem.expected, line=line, column=column)
    return ConfigError([_issue(located, None, _Load(source))])


def parse_json(text: str, source: str | None = None) -> tuple[Any, _Load]:
    """Parse JSON into plain data and the line of every key and item.

    A key written twice in one object is a problem (with both lines), not a value lost.

    Raises:
        ConfigError: The text is not valid JSON.
    """
    repeats: list[tuple[dict[str, Any], list[str]]] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        again: list[str] = []
        for key, value in items:
            if key in out:
                again.append(key)
            out[key] = value  # the last one, as `json` keeps it
        if again:
            repeats.append((out, again))
        return out

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            [
                ConfigIssue(
                    path="",
                    message=f"invalid JSON: {exc.msg}",
                    expected="well-formed JSON",
                    file=source,
                    line=exc.lineno,
                    column=exc.colno,
                    source_line=_line_of(text, exc.lineno - 1),
                )
            ]
        ) from None
    except RecursionError:
        raise _too_deep_text(text, source) from None
    except ValueError:  # an integer too long for Python to convert (`sys.int_info`)
        raise _long_number_error(text, source) from None
    load = _Load(source)
    key_marks: KeyMarks = {}
    try:
        load.marks, key_marks = json_marks(text)
    except (ValueError, IndexError, AttributeError):  # never for text `json` read; no lines then
        load.marks = {}
    load.problems.extend(json_duplicates(data, repeats, key_marks))
    return data, load


def _long_number_error(text: str, source: str | None) -> ConfigError:
    limit: int = getattr(sys, "get_int_max_str_digits", lambda: 4300)() or 4300
    long = re.search(f"[0-9]{{{limit + 1},}}", text)
    where = (None, None) if long is None else _position(text, long.start())
    digits = f"{len(long.group()):,} digits" if long else "too many digits"
    return ConfigError(
        [
            ConfigIssue(
                path="",
                message=f"invalid JSON: an integer of {digits} cannot be read",
                expected=f"integers of at most {limit:,} digits",
                file=source,
                line=where[0],
                column=where[1],
            )
        ]
    )


def _position(text: str, index: int) -> tuple[int, int]:
    """The 1-based (line, column) of `text[index]`, lines ending at each newline as in `json`."""
    return text.count("\n", 0, index) + 1, index - text.rfind("\n", 0, index)


def _line_of(text: str, index: int) -> str | None:
    lines = text.splitlines()
    return lines[index] if 0 <= index < len(lines) else None


# -- pydantic errors to problems ---------------------------------------------------------------


def _strip_tags(loc: tuple[int | str, ...]) -> Loc:
    """Drop the tags pydantic adds to a location inside the condition union: after a
    `condition` (of a rule, or of ALL/ANY/NONE/NOT) and after an item of `conditions` or
    `termination_conditions` (`condition.structured.conditions.0.expression`)."""
    out: list[str | int] = []
    for index, part in enumerate(loc):
        if part in CONDITION_TAGS and index >= 1:
            before = loc[index - 1]
            if before == "condition" or (
                isinstance(before, int)
                and index >= 2
                and loc[index - 2] in ("conditions", "termination_conditions")
            ):
                continue
        out.append(part)
    return tuple(out)


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class validating the data at `loc`, if a model does."""
    tp: Any = root
    for part in loc:
        tp = inner_type(tp)
        if tp is None:
            return None
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            info = tp.model_fields.get(part) if isinstance(part, str) else None
            if info is None:
                return None
            tp = info.annotation
        else:
            tp = typing.get_args(tp)[-1]
    tp = inner_type(tp)
    return tp if isinstance(tp, type) else None


def _describe(model: type[BaseModel] | None, name: str) -> str | None:
    info = model.model_fields.get(name) if model else None
    if info is None or not info.description:
        return None
    text = " ".join(info.description.split())
    return text if len(text) <= 160 else text[:157] + "..."


def _from_pydantic(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    errors = exc.errors(include_url=False)
    extras: dict[Loc, list[str]] = {}
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc = _strip_tags(error["loc"])
            extras.setdefault(loc[:-1], []).append(str(loc[-1]))
    problems: list[Problem] = []
    for error in errors:
        problem = _problem(error, root, extras)
        if problem is not None:
            problems.append(problem)
    return problems


def _problem(
    error: ErrorDetails, root: type[BaseModel], extras: dict[Loc, list[str]]
) -> Problem | None:
    loc = _strip_tags(error["loc"])
    kind = error["type"]
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    if kind == "cascade_config":
        if ctx.get("field"):
            loc = (*loc, ctx["field"])
        return Problem(loc, ctx["message"], ctx.get("expected"), ctx.get("suggestion"))
    if kind == "missing":
        name = str(loc[-1])
        model = _model_at(root, loc[:-1])
        fields = list(model.model_fields) if model else []
        misspelt = [e for e in extras.get(loc[:-1], ()) if closest(e, fields) == name]
        if misspelt:
            return None  # the unknown-field problem already says "did you mean {name}"
        return Problem(loc, f"missing required field {name!r}", _describe(model, name))
    if kind == "extra_forbidden":
        name = str(loc[-1])
        model = _model_at(root, loc[:-1])
        fields = list(model.model_fields) if model else []
        where = f" of {model.__name__}" if model else ""
        return Problem(
            loc,
            f"unknown field {name!r}{where}",
            "one of: " + ", ".join(fields) if fields else None,
            closest(name, fields),
        )
    if kind in ("recursion_depth_exceeded", "recursion_loop"):
        return too_deep(loc, root, cycle=kind == "recursion_loop")
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        choices = [c.strip().strip("'\"") for c in expected.replace(" or ", ", ").split(", ")]
        given = error["input"]
        # the words are lower case and accepted in any case: `TERMINTE` is one letter off too
        suggestion = closest(str(given), choices) or closest(str(given).strip().lower(), choices)
        return Problem(loc, f"invalid value {given!r}", "one of " + expected, suggestion)
    given = error.get("input")
    if loc and loc[-1] == "[key]":  # a mapping key that is not text (`!!int 5:`, from_dict)
        kind = _kind_of(given) if isinstance(given, (int, float, bool)) else type(given).__name__
        return Problem(
            loc[:-1],
            f"key {given!r} is a {kind}, not text",
            f"a name written as text: {str(given)!r}",
        )
    message = error["msg"]
    if kind == "string_type" and isinstance(given, (int, float, bool)):
        return Problem(
            loc,
            f"{message}, got the {_kind_of(given)} {given!r}",
            "text; put the value in quotes to keep it as written",
        )
    if kind not in ("condition_type",) and isinstance(given, (str, int, float, bool)):
        message += f", got {given!r}"
    return Problem(loc, message)


def _kind_of(value: int | float | bool) -> str:
    return "boolean" if isinstance(value, bool) else "number"


# -- locating problems -------------------------------------------------------------------------


def _stage_keys(plain: Any) -> dict[str, int] | None:
    """For a list of stages: key -> index; None when stages are a mapping."""
    stages = plain.get("stages") if isinstance(plain, Mapping) else None
    if not isinstance(stages, list):
        return None
    return {key: index for key, index, _ in stage_entries(stages)}


_PLAIN_KEY = re.compile(r"[\w-]+")


def format_loc(loc: Loc) -> str:
    """`("stages", "FAST", "routing_rules", 0)` -> `stages.FAST.routing_rules[0]`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def _issue(problem: Problem, plain: Any, load: _Load) -> ConfigIssue:
    loc = problem.loc
    keys = _stage_keys(plain)
    display = loc
    raw = loc
    if keys is not None and len(loc) >= 2 and loc[0] == "stages":
        index = keys.get(loc[1]) if isinstance(loc[1], str) else loc[1]
        if isinstance(index, int):
            raw = ("stages", index, *loc[2:])
            if isinstance(loc[1], str) and loc[1].startswith("#"):
                display = raw
    line, column = problem.line, None
    if line is None:
        for size in range(len(raw), -1, -1):
            mark = load.marks.get(raw[:size])
            if mark is not None:
                line, column = mark
                break
    if problem.column is not None:
        column = problem.column
    return ConfigIssue(
        path=format_loc(display),
        message=problem.message,
        expected=problem.expected,
        suggestion=problem.suggestion,
        file=load.source,
        line=line,
        column=column,
        source_line=problem.source_line,
    )
