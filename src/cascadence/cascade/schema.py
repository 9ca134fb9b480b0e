"""A JSON Schema for cascade files, so editors check YAML and JSON configs as they are typed.

The schema is generated from the models (field docstrings become descriptions) and then
widened where the loader accepts more than the models' Python types: `stages` as a list,
a stage's `name` left out in a mapping, `version` as a number and `cost` as a tier name.

Rule types, action types and `retry_backoff` stay enums of their lower-case words, the form
`to_yaml` writes: loading also accepts them in any case (`TERMINATE`), but JSON Schema has no
case-insensitive enum, and an editor that suggests the one spelling keeps files consistent.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from cascadence.cascade.config import STAGE_COSTS, CascadeConfig

__all__ = ["SCHEMA_DIALECT", "json_schema"]

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
"""The JSON Schema dialect of the generated schema."""


@functools.cache
def _schema() -> dict[str, Any]:
    schema = CascadeConfig.model_json_schema(mode="validation")
    defs = schema["$defs"]
    stage = defs["StageConfig"]
    stage["required"] = [name for name in stage.get("required", []) if name != "name"]
    cost = stage["properties"]["cost"]
    number = {key: cost.pop(key) for key in ("type", "minimum") if key in cost}
    cost["anyOf"] = [number, {"type": "string", "enum": list(STAGE_COSTS)}]

    props = schema["properties"]
    stages = props["stages"]
    stages.pop("type", None)
    stages.pop("additionalProperties", None)
    stages.pop("minProperties", None)
    ref = {"$ref": "#/$defs/StageConfig"}
    stages["anyOf"] = [
        {
            "type": "object",
            "additionalProperties": {"anyOf": [ref, {"type": "null"}]},
            "minProperties": 1,
        },
        {"type": "array", "items": {**ref, "required": ["name"]}, "minItems": 1},
    ]
    version = props["version"]
    version.pop("type", None)
    version["anyOf"] = [{"type": "string"}, {"type": "number"}]

    _flatten_descriptions(schema)
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "Cascade configuration",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def _flatten_descriptions(node: Any) -> None:
    """Join the wrapped lines of docstrings, so editors show each description as one paragraph."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                node[key] = " ".join(value.split())
            else:
                _flatten_descriptions(value)
    elif isinstance(node, list):
        for item in node:
            _flatten_descriptions(item)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a cascade file, as a new dict each call."""
    return copy.deepcopy(_schema())
