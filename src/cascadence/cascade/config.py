"""The cascade configuration models: what a cascade YAML or JSON file may contain.

A file is read into `CascadeConfig`, which holds `StageConfig`s keyed by name; each stage holds
`RoutingRule`s, and each rule pairs a condition with a `RoutingAction`. A condition is written
either as a structured `Condition` (`field` / `operator` / `value`) or as one expression string
(`"stages.FAST.confidence < 0.8 and amount >= 10000"`); whichever form was written is kept, so
writing a config back produces what was read.

Every model forbids unknown keys, so a misspelt option is an error rather than silently ignored.
Loading (`CascadeConfig.from_file`, `from_dict`, `from_yaml`) and direct construction
(`CascadeConfig(...)`) both check the whole config and raise one `ConfigError` listing every
problem found, each with its file, line, path and the closest valid name. Building a part on
its own (`StageConfig(...)`, `RoutingRule.model_validate(...)`, `Condition(...)`) checks that
part's fields and its conditions (an unknown operator, an expression that does not parse) and
raises the same `ConfigError`, with paths relative to the part; references to other stages are
checked once the part is in a `CascadeConfig`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import Self

from cascadence.errors import ConfigError, ConfigIssue, closest

__all__ = [
    "STAGE_COSTS",
    "ActionType",
    "CascadeConfig",
    "CircuitBreakerConfig",
    "Condition",
    "ConditionSpec",
    "RoutingAction",
    "RoutingRule",
    "RuleType",
    "StageConfig",
]

STAGE_COSTS: dict[str, float] = {
    "RULES": 1.0,
    "STATISTICAL_ML": 5.0,
    "SINGLE_AI": 25.0,
    "POD": 100.0,
    "ADVERSARIAL": 500.0,
}
"""Relative cost of the spec's stage kinds; `cost: SINGLE_AI` in a file means `cost: 25`."""

ActionType = Literal["terminate", "skip_to", "enable_stages", "disable_stages", "set_field"]
RuleType = Literal["precondition", "routing", "postcondition"]
Backoff = Literal["fixed", "exponential"]

ACTION_TYPES: tuple[str, ...] = get_args(ActionType)
RULE_TYPES: tuple[str, ...] = get_args(RuleType)


def canonical_word(value: Any, words: tuple[str, ...]) -> Any:
    """`value` as the one of `words` it spells in any case and with whitespace around it
    (`" TERMINATE"` -> `"terminate"`); anything else unchanged, for validation to refuse with
    the closest word."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in words:
            return word
    return value


def _any_case(words: tuple[str, ...]) -> BeforeValidator:
    """Marks a field whose lower-case words are accepted in any case, kept in lower case."""
    return BeforeValidator(lambda value: canonical_word(value, words))


_HANDLER_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")

# Tags of the condition union; they appear in pydantic error locations and are stripped there.
CONDITION_TAGS = frozenset({"structured", "expression"})


def config_error(
    message: str,
    *,
    expected: str | None = None,
    suggestion: str | None = None,
    field: str | None = None,
) -> PydanticCustomError:
    """Build a validation error that the loader turns into a `ConfigIssue` as is.

    Args:
        message: What is wrong.
        expected: What would have been valid.
        suggestion: The closest valid name.
        field: A field of the model being validated that the problem is about, appended to the
            error location so the issue points at that field's line.
    """
    return PydanticCustomError(
        "cascade_config",
        "{message}",
        {"message": message, "expected": expected, "suggestion": suggestion, "field": field},
    )


def _config_error(exc: ValidationError, model: type[BaseModel]) -> ConfigError:
    from cascadence.cascade.loader import validation_error

    # a ConfigError raised by a validator comes back as raised: drop the validator's frames
    return validation_error(exc, model).with_traceback(None)


_IN_WHOLE: ContextVar[bool] = ContextVar("cascadence_config_in_whole", default=False)
"""True while a part validates inside a larger part (or a `CascadeConfig`) that checks the
conditions of the whole once it is built."""

_Part = TypeVar("_Part", bound=BaseModel)
_ConditionPlaces = Callable[[Any], list[tuple[tuple[str | int, ...], Any]]]


def _validate_part(
    data: Any, handler: ModelWrapValidatorHandler[_Part], places: _ConditionPlaces
) -> _Part:
    """Validate a part; when it is built on its own (not inside a larger part), also check its
    conditions as loading a config does, and raise the same `ConfigError` the loader gives
    (the paths relative to the part)."""
    if _IN_WHOLE.get():
        return handler(data)
    token = _IN_WHOLE.set(True)
    try:
        part = handler(data)
    finally:
        _IN_WHOLE.reset(token)
    issues = _condition_issues(places(part))
    if issues:
        raise ConfigError(issues)
    return part


def _condition_issues(places: list[tuple[tuple[str | int, ...], Any]]) -> list[ConfigIssue]:
    """The issues loading a config reports for these conditions (an operator that does not
    exist, a value of the wrong kind, an expression that does not parse), each at its place
    `(location, condition)`; stage references are left to the whole config."""
    from cascadence.cascade.loader import format_loc
    from cascadence.cascade.nesting import plain_data
    from cascadence.cascade.validate import parse_path
    from cascadence.conditions import ConditionSyntaxError, compile_condition

    issues: list[ConfigIssue] = []
    for loc, raw in places:
        if isinstance(raw, Condition):
            raw = plain_data(raw)  # what a file would hold, at any depth
        if not isinstance(raw, (str, Mapping)):
            continue
        try:
            compile_condition(raw if isinstance(raw, str) else dict(raw))
        except ConditionSyntaxError as exc:
            for issue in exc.issues:
                issues.append(
                    ConfigIssue(
                        path=format_loc((*loc, *parse_path(issue.path))),
                        message=issue.message,
                        expected=issue.expected,
                        suggestion=issue.suggestion,
                        column=issue.column,
                        source_line=issue.source if issue.column is not None else None,
                    )
                )
    return issues


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    def __init__(self, /, **data: Any) -> None:
        """Validate `data`; raise one `ConfigError` naming every problem, as loading does."""
        try:
            self.__pydantic_validator__.validate_python(data, self_instance=self)
        except ValidationError as exc:
            raise _config_error(exc, type(self)) from None

    # Marked as pydantic's own initializer, so models nested in another are still validated
    # inside pydantic-core (fast, and with their full location) rather than through this method.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate `obj` like pydantic does, raising `ConfigError` rather than pydantic's error."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise _config_error(exc, cls) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        """Validate JSON text like pydantic does, raising `ConfigError` rather than pydantic's."""
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            raise _config_error(exc, cls) from None

    def to_dict(self) -> dict[str, Any]:
        """The model as plain data, keeping only what was set, so it reloads to an equal model."""
        return self.model_dump(exclude_unset=True)


class Condition(_Model):
    """A structured condition: a comparison, or a logical combination of conditions."""

    field: str | None = None
    """Dot path of the value to test: `amount`, `user.roles`, `items.0.price`,
    `stages.FAST_CHECK.confidence`. Omitted for `AND`/`OR`/`NOT`."""

    operator: str
    """One of `==`, `!=`, `>`, `>=`, `<`, `<=`, `AND`, `OR`, `NOT`, `IN`, `NOT_IN`, `CONTAINS`,
    `MATCHES`, `EXISTS`, `IS_NULL`, `TRUTHY`, `ALL`, `ANY`, `NONE`, `SUM`, `AVG`, `MIN`, `MAX`,
    `COUNT`."""

    value: Any = None
    """The value to compare against: a list for `IN`/`NOT_IN`, a regular expression for
    `MATCHES`, nothing for `EXISTS`/`IS_NULL`."""

    conditions: list[ConditionSpec] | None = None
    """The operands of `AND`, `OR` and `NOT`, each structured or an expression string. For
    `ALL`, `ANY` and `NONE`: with a `field`, the per-item condition is the AND of these; without
    one, all, any or none of these must hold."""

    compare: str | None = None
    """For `SUM`, `AVG`, `MIN`, `MAX` and `COUNT`: the comparison applied to the statistic
    (for example `>` for "average above `value`"); equality when omitted."""

    condition: ConditionSpec | None = None
    """For `ALL`, `ANY` and `NONE`: the condition each list item is tested against, with
    `field` paths relative to the item (structured or an expression string); for `NOT`, its
    one operand."""

    @model_validator(mode="wrap")
    @classmethod
    def _check_alone(cls, data: Any, handler: ModelWrapValidatorHandler[Condition]) -> Condition:
        """Built on its own, the condition is checked as a config file's is: an unknown
        operator fails here, with the loader's message and did-you-mean."""
        return _validate_part(data, handler, lambda part: [((), part)])


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "expression"
    if isinstance(value, (Mapping, Condition)):
        return "structured"
    return None


ConditionSpec = Annotated[
    Annotated[Condition, Tag("structured")] | Annotated[str, Tag("expression")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition_type",
        custom_error_message=(
            "a condition must be a mapping (field, operator, value) or an expression string"
        ),
    ),
]
"""A condition as written: the structured form or an expression string."""

Condition.model_rebuild()  # its operands are `ConditionSpec`s, defined after it


class RoutingAction(_Model):
    """What a routing rule does when its condition matches."""

    type: Annotated[ActionType, _any_case(ACTION_TYPES)]
    """`terminate`, `skip_to`, `enable_stages`, `disable_stages` or `set_field` (any case
    loads: `TERMINATE` is kept as `terminate`)."""

    target: str | None = None
    """For `skip_to`: the stage to jump to."""

    stages: list[str] | None = None
    """For `enable_stages` and `disable_stages`: the stages to switch on or off."""

    field: str | None = None
    """For `set_field`: dot path of the input field to set."""

    value: Any = None
    """For `set_field`: the value to write."""

    reason: str | None = None
    """Free text recorded on the result when the action is taken."""

    _PARAMS: ClassVar[dict[str, tuple[str, ...]]] = {
        "terminate": (),
        "skip_to": ("target",),
        "enable_stages": ("stages",),
        "disable_stages": ("stages",),
        "set_field": ("field", "value"),
    }

    @model_validator(mode="after")
    def _check_parameters(self) -> RoutingAction:
        kind = self.type
        if kind == "skip_to" and not self.target:
            raise config_error(
                "skip_to needs a target stage", expected="target: STAGE_NAME", field="target"
            )
        if kind in ("enable_stages", "disable_stages") and not self.stages:
            raise config_error(
                f"{kind} needs a non-empty list of stages",
                expected="stages: [STAGE_NAME, ...]",
                field="stages",
            )
        if kind == "set_field" and not self.field:
            raise config_error(
                "set_field needs the field to set", expected="field: dot.path", field="field"
            )
        if kind == "set_field" and "value" not in self.model_fields_set:
            raise config_error(
                "set_field needs the value to write (write `value: null` to clear the field)",
                expected="value: VALUE",
                field="value",
            )
        allowed = self._PARAMS[kind]
        for name in ("target", "stages", "field", "value"):
            # a parameter written as null is not given (as `model_dump()` writes them all)
            if (
                name in self.model_fields_set
                and name not in allowed
                and getattr(self, name) is not None
            ):
                users = [k for k, params in self._PARAMS.items() if name in params]
                raise config_error(
                    f"{name!r} is not used by a {kind} action (only by {' and '.join(users)})",
                    expected=(
                        f"only {', '.join(allowed)} (and reason)"
                        if allowed
                        else "no parameters besides reason"
                    ),
                    field=name,
                )
        return self


class RoutingRule(_Model):
    """A condition and the action taken when it matches."""

    name: str = Field(min_length=1)
    """Unique name of the rule within its stage."""

    type: Annotated[RuleType, _any_case(RULE_TYPES)] = "routing"
    """When the rule is evaluated: `precondition` before the stage runs (a match can prevent
    it), `routing` after it (controls the flow), `postcondition` after routing (any case
    loads, kept in lower case)."""

    priority: Annotated[int, Number] = 0
    """Rules of one type are evaluated in descending priority. Every rule that matches acts,
    in that order, until a terminal action (terminate, skip_to); after one, only
    postconditions are still evaluated."""

    condition: ConditionSpec
    """The condition: structured (`field`, `operator`, `value`) or an expression string."""

    action: RoutingAction
    """What to do when the condition matches."""

    enabled: bool = True
    """A disabled rule is kept in the config but never evaluated."""

    description: str | None = None
    """Free text for readers of the config."""

    @model_validator(mode="wrap")
    @classmethod
    def _check_alone(
        cls, data: Any, handler: ModelWrapValidatorHandler[RoutingRule]
    ) -> RoutingRule:
        """Built on its own, the rule's condition is checked as a config file's is."""
        return _validate_part(data, handler, lambda part: [(("condition",), part.condition)])


class CircuitBreakerConfig(_Model):
    """A circuit breaker in front of a stage handler."""

    failure_threshold: int = Field(default=5, ge=1)
    """Consecutive failures that open the circuit."""

    reset_timeout_seconds: float = Field(default=60.0, gt=0)
    """Seconds the circuit stays open before one trial call is let through."""


def _not_bool(value: Any) -> Any:
    """Refuse `true`/`false` where a number is expected (pydantic would read them as 1/0)."""
    if isinstance(value, bool):
        raise config_error(
            f"expected a number, got the boolean {str(value).lower()}", expected="a number"
        )
    return value


Number = BeforeValidator(_not_bool)
"""Marks a numeric field that must not take a boolean."""


def _cost_from_name(value: Any) -> Any:
    _not_bool(value)
    if isinstance(value, str):
        cost = STAGE_COSTS.get(value.strip().upper())
        if cost is not None:
            return cost
        try:
            return float(value)
        except ValueError:
            raise config_error(
                f"unknown stage cost {value!r}",
                expected="a number >= 0 or one of " + ", ".join(STAGE_COSTS),
                suggestion=closest(value.upper(), STAGE_COSTS),
            ) from None
    return value


class StageConfig(_Model):
    """One stage of a cascade: its handler, resilience settings and routing rules."""

    name: str = Field(min_length=1)
    """Unique stage identifier; in a `stages` mapping it defaults to the key."""

    enabled: bool = True
    """Initial enabled state; a disabled stage runs only if a routing rule enables it."""

    handler_type: str | None = None
    """Free-form kind of handler (`rules`, `ml`, `llm`, `custom`...), for readers and reports."""

    handler: str | None = None
    """Import path of the handler, `package.module:function`, so the cascade runs without
    glue code. A handler registered in code takes precedence."""

    timeout_ms: Annotated[int | None, Number] = Field(default=30000, gt=0)
    """Milliseconds one attempt may take before it is cancelled; null for no limit."""

    max_retries: Annotated[int, Number] = Field(default=0, ge=0)
    """Retries after the first failed attempt."""

    retry_delay_ms: Annotated[int, Number] = Field(default=1000, ge=0)
    """Delay between retries, in milliseconds (before the first retry, under exponential
    backoff)."""

    retry_backoff: Annotated[Backoff, _any_case(get_args(Backoff))] = "fixed"
    """`fixed` waits `retry_delay_ms` between every two attempts; `exponential` multiplies the
    delay by `retry_backoff_multiplier` after each retry (as `RetryPlugin` does). Any case
    loads, kept in lower case."""

    retry_backoff_multiplier: Annotated[float, Number] = Field(default=2.0, ge=1.0)
    """Growth factor of the retry delay under exponential backoff."""

    retry_max_delay_ms: Annotated[int | None, Number] = Field(default=None, ge=0)
    """Upper bound of one retry delay in milliseconds; null for no bound."""

    can_run_parallel: bool = False
    """Whether the stage may run concurrently with others of its `parallel_group`."""

    parallel_group: str | None = None
    """Stages sharing a group, all parallel and with dependencies met, run concurrently."""

    depends_on: list[str] = Field(default_factory=list)
    """Stages that must have run before this one."""

    routing_rules: list[RoutingRule] = Field(default_factory=list)
    """Rules evaluated around this stage; see `RoutingRule.type`."""

    cache_enabled: bool = False
    """Cache the stage's result per input and per what the stages before it decided (their
    `result` and `confidence`; name `stages.NAME.data...` in `cache_key_fields` when a
    handler reads an earlier stage's data)."""

    cache_ttl_seconds: Annotated[int, Number] = Field(default=3600, ge=0)
    """Seconds a cached result stays valid."""

    cache_key_fields: list[str] | None = None
    """Dot paths that make up the cache key: input fields, or earlier stages' results
    (`stages.FEATURES.data.vector`); the whole input and the earlier decisions when null."""

    circuit_breaker: CircuitBreakerConfig | None = None
    """A circuit breaker for the handler; none when null."""

    cost: Annotated[float, Field(ge=0, allow_inf_nan=False), BeforeValidator(_cost_from_name)] = 1.0
    """Relative cost of running the stage: a number, or one of RULES (1), STATISTICAL_ML (5),
    SINGLE_AI (25), POD (100), ADVERSARIAL (500). Every result reports the cost spent. When
    omitted: the cost of the stage kind its name is (a stage named `SINGLE_AI` costs 25), else
    1."""

    stop_on_failure: bool = False
    """Stop the whole cascade when this stage fails (after its retries)."""

    custom_properties: dict[str, Any] = Field(default_factory=dict)
    """Domain-specific properties, passed through untouched."""

    description: str | None = None
    """Free text for readers of the config."""

    @model_validator(mode="after")
    def _cost_of_named_kind(self) -> StageConfig:
        if "cost" not in self.model_fields_set:
            kind_cost = STAGE_COSTS.get(self.name.upper())
            if kind_cost is not None:
                object.__setattr__(self, "cost", kind_cost)
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _check_alone(
        cls, data: Any, handler: ModelWrapValidatorHandler[StageConfig]
    ) -> StageConfig:
        """Built on its own, the stage's rule conditions are checked as a config file's are."""
        return _validate_part(
            data,
            handler,
            lambda part: [
                (("routing_rules", index, "condition"), rule.condition)
                for index, rule in enumerate(part.routing_rules)
            ],
        )

    @field_validator("handler")
    @classmethod
    def _check_handler(cls, value: str | None) -> str | None:
        if value is not None and not _HANDLER_PATH.fullmatch(value):
            raise config_error(
                f"{value!r} is not an import path",
                expected="an import path like 'package.module:function'",
            )
        return value


def _stages_input(value: Any) -> Any:
    """Accept a list of stages and key it by name; default each mapped stage's name to its key."""
    if isinstance(value, Mapping):
        keyed: dict[Any, Any] = {}
        for key, stage in value.items():
            if stage is None:
                stage = {"name": key}
            elif isinstance(stage, Mapping) and "name" not in stage:
                stage = {"name": key, **stage}
            keyed[key] = stage
        return keyed
    if isinstance(value, list):
        return {key: stage for key, _, stage in stage_entries(value)}
    return value


def stage_entries(stages: list[Any]) -> list[tuple[str, int, Any]]:
    """Key the items of a stage list: `(key, index, item)`.

    The key is the stage's name, or `#index` when the item has no usable name or repeats an
    earlier one, so every item is still validated and reported on.
    """
    entries: list[tuple[str, int, Any]] = []
    seen: set[str] = set()
    for index, stage in enumerate(stages):
        if isinstance(stage, StageConfig):
            name: Any = stage.name
        elif isinstance(stage, Mapping):
            name = stage.get("name")
        else:
            name = None
        key = name if isinstance(name, str) and name and name not in seen else f"#{index}"
        seen.add(key)
        entries.append((key, index, stage))
    return entries


def _version_input(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


class CascadeConfig(_Model):
    """A whole cascade: its stages, their order and the global limits."""

    name: str = Field(min_length=1)
    """Name of the cascade."""

    version: Annotated[str, BeforeValidator(_version_input)] = "1.0"
    """Version of this config; a number in YAML is kept as written, as a string."""

    description: str | None = None
    """Free text for readers of the config."""

    stages: Annotated[dict[str, StageConfig], BeforeValidator(_stages_input)] = Field(min_length=1)
    """The stages, keyed by name (a list of stages with names is accepted too)."""

    execution_order: list[str] | None = None
    """Explicit order of the stages; every stage exactly once, after the stages it depends on.
    When null, stages run in declaration order, each moved after its dependencies and after
    the stages its routing needs first (a stage a rule enables, disables or skips to runs after
    the rule's stage)."""

    global_timeout_ms: Annotated[int | None, Number] = Field(default=30000, gt=0)
    """Milliseconds the whole run may take; null for no limit."""

    max_parallel_stages: Annotated[int, Number] = Field(default=10, ge=1)
    """Most stages running at the same time."""

    termination_conditions: list[ConditionSpec] = Field(default_factory=list)
    """Checked after every stage; the first that matches ends the run."""

    stop_on_failure: bool = False
    """Stop the whole cascade when any stage fails (after its retries)."""

    metadata: dict[str, Any] = Field(default_factory=dict)
    """Free-form data about the cascade, passed through untouched."""

    _source_file: str | None = PrivateAttr(default=None)

    def __init__(self, /, **data: Any) -> None:
        """Validate every field and every cross-reference; raise one `ConfigError` if any fails."""
        from cascadence.cascade.loader import initialize

        # pydantic's own initializer, past `_Model`'s: `initialize` reads its errors itself,
        # to add the cross-reference problems and the lines of the file (its conditions among
        # them, so the parts inside do not check their own)
        token = _IN_WHOLE.set(True)
        try:
            initialize(self, data, super(_Model, self).__init__)
        finally:
            _IN_WHOLE.reset(token)

    def __eq__(self, other: object) -> bool:
        """Equal when every field is equal; where the config was loaded from does not count."""
        if not isinstance(other, CascadeConfig):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    @property
    def source_file(self) -> str | None:
        """The file this config was loaded from, if any."""
        return self._source_file

    # -- loading -------------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CascadeConfig:
        """Load a `.yaml`, `.yml` or `.json` file.

        Raises:
            ConfigFileNotFoundError: The file does not exist (also a `FileNotFoundError`; a
                folder or a file that may not be read raises the `ConfigFileError` that is
                also an `IsADirectoryError` or a `PermissionError`).
            ConfigError: The file cannot be parsed or the config is invalid; every issue
                carries the file and line it was found at.
        """
        from cascadence.cascade.loader import load_file

        return load_file(cls, path)

    @classmethod
    def from_yaml(cls, text: str | os.PathLike[str], *, source: str | None = None) -> CascadeConfig:
        """Load YAML (or JSON) text; `source` names it in error messages.

        A path is loaded as `from_file` loads it: an `os.PathLike` (`Path("cascade.yaml")`),
        or, when no `source` is given, a one-line text ending in `.yaml`, `.yml` or `.json`
        that is not a YAML mapping or list (`"cascade.yaml"`). Pass `source` to have text
        always read as YAML.

        Raises:
            ConfigFileNotFoundError: The path, or the one-line text read as a file name, names
                no file (also a `FileNotFoundError`).
            ConfigError: The text cannot be parsed or the config is invalid.
        """
        from cascadence.cascade.loader import load_text

        return load_text(cls, text, source=source)

    @classmethod
    def from_json(cls, text: str | os.PathLike[str], *, source: str | None = None) -> CascadeConfig:
        """Load JSON text; `source` names it in error messages.

        A path is loaded as `from_file` loads it, as for `from_yaml`.

        Raises:
            ConfigFileNotFoundError: The path, or the one-line text read as a file name, names
                no file (also a `FileNotFoundError`).
            ConfigError: The text is not JSON or the config is invalid.
        """
        from cascadence.cascade.loader import load_text

        return load_text(cls, text, source=source, json_text=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> CascadeConfig:
        """Load plain data, as parsed from YAML or JSON (a path or text is refused, naming
        `from_file`).

        Raises:
            ConfigError: The config is invalid; every issue names its path.
        """
        from cascadence.cascade.loader import load_data

        return load_data(cls, data, source=source)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """A JSON Schema (draft 2020-12) for cascade files, for editors to validate them."""
        from cascadence.cascade.schema import json_schema

        return json_schema()

    # -- writing -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data; `from_dict(config.to_dict()) == config`.

        Options left at their defaults are omitted, and conditions keep the form they were
        written in.
        """
        return self.model_dump(exclude_unset=True)

    def to_yaml(self) -> str:
        """The config as YAML text; `from_yaml(config.to_yaml()) == config`."""
        from cascadence.cascade.loader import dump_yaml

        return dump_yaml(self.to_dict())

    def to_json(self, *, indent: int | None = 2) -> str:
        """The config as JSON text; values JSON cannot hold (dates) become strings."""
        return json.dumps(
            self.model_dump(mode="json", exclude_unset=True), indent=indent, ensure_ascii=False
        )

    def to_file(self, path: str | os.PathLike[str]) -> None:
        """Write the config to a `.yaml`, `.yml` or `.json` file, chosen by extension."""
        from cascadence.cascade.loader import check_extension

        text = self.to_json() + "\n" if check_extension(path) == ".json" else self.to_yaml()
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)

    # -- reading -------------------------------------------------------------------------------

    def stage_names(self) -> list[str]:
        """Names of all stages, in declaration order."""
        return list(self.stages)

    def stage(self, name: str) -> StageConfig:
        """The stage called `name`.

        Raises:
            KeyError: No such stage; the message names the closest one.
        """
        try:
            return self.stages[name]
        except KeyError:
            hint = closest(name, self.stages)
            raise KeyError(
                f"no stage {name!r} in cascade {self.name!r}"
                + (f"; did you mean {hint!r}?" if hint else "")
            ) from None

    def ordered_stage_names(self) -> list[str]:
        """The order stages are considered in, as the engine runs them: `execution_order` if
        given, else declaration order, each stage moved after its dependencies and after the
        stages its routing needs first (see `cascadence.cascade.order.run_order`)."""
        if self.execution_order is not None:
            return list(self.execution_order)
        from cascadence.cascade.order import run_order

        return run_order(self.stages)
