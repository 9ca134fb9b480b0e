"""The JSON Schema of cascade files: structure, descriptions, and that it accepts real configs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from cascadence.cascade import CascadeConfig, StageConfig

QUICKSTART = Path(__file__).parents[2] / "examples" / "quickstart" / "cascade.yaml"


def conforms(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> bool:
    """A small JSON Schema checker covering the keywords the generated schema uses."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return conforms(value, root["$defs"][name], root) and conforms(value, rest, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            matched = sum(conforms(value, option, root) for option in schema[key])
            if (matched == 0) or (key == "oneOf" and matched != 1):
                return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if kind is not None and not checks[kind](value):
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        if any(name not in value for name in schema.get("required", [])):
            return False
        if len(value) < schema.get("minProperties", 0):
            return False
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                if not conforms(item, props[name], root):
                    return False
            elif extra is False or (isinstance(extra, dict) and not conforms(item, extra, root)):
                return False
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return False
        if "items" in schema and not all(conforms(i, schema["items"], root) for i in value):
            return False
    return not (isinstance(value, str) and len(value) < schema.get("minLength", 0))


def test_schema_header() -> None:
    """The schema declares draft 2020-12 and a title, and is JSON-serializable."""
    schema = CascadeConfig.json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"]
    assert schema["type"] == "object"
    assert schema["required"] == ["name", "stages"]
    json.dumps(schema)


def test_every_stage_field_is_described() -> None:
    """Every StageConfig field appears in the schema with a description for editors."""
    stage = CascadeConfig.json_schema()["$defs"]["StageConfig"]
    assert set(stage["properties"]) == set(StageConfig.model_fields)
    for name, prop in stage["properties"].items():
        assert prop.get("description"), name
    assert stage["additionalProperties"] is False
    assert "name" not in stage.get("required", [])


def test_every_model_field_is_described() -> None:
    """All models carry descriptions on every field and on themselves."""
    schema = CascadeConfig.json_schema()
    for model in [schema, *schema["$defs"].values()]:
        assert model.get("description")
        for name, prop in model["properties"].items():
            assert prop.get("description"), name


def test_schema_accepts_the_quickstart() -> None:
    """The quick-start file, as written, conforms to the schema."""
    schema = CascadeConfig.json_schema()
    assert conforms(yaml.safe_load(QUICKSTART.read_text()), schema, schema)


def test_schema_accepts_the_loaders_spellings() -> None:
    """Stage lists, numeric versions, cost tier names and expression conditions conform."""
    schema = CascadeConfig.json_schema()
    data = {
        "name": "c",
        "version": 2,
        "stages": [
            {
                "name": "A",
                "cost": "SINGLE_AI",
                "routing_rules": [
                    {"name": "r", "condition": "amount > 3", "action": {"type": "terminate"}},
                ],
            }
        ],
    }
    assert conforms(data, schema, schema)


def test_schema_rejects_typos_and_bad_values() -> None:
    """Unknown keys, unknown action types and unknown cost tiers do not conform."""
    schema = CascadeConfig.json_schema()
    base = yaml.safe_load(QUICKSTART.read_text())
    typo = json.loads(json.dumps(base))
    typo["stages"]["FAST_CHECK"]["timout_ms"] = 5
    assert not conforms(typo, schema, schema)
    action = json.loads(json.dumps(base))
    action["stages"]["FAST_CHECK"]["routing_rules"][1]["action"]["type"] = "explode"
    assert not conforms(action, schema, schema)
    cost = json.loads(json.dumps(base))
    cost["stages"]["FAST_CHECK"]["cost"] = "CHEAP"
    assert not conforms(cost, schema, schema)


def test_schema_is_a_fresh_copy() -> None:
    """Changing a returned schema does not change the next one."""
    first = CascadeConfig.json_schema()
    first["$defs"].clear()
    assert CascadeConfig.json_schema()["$defs"]


def test_refs_resolve() -> None:
    """Every $ref points at a definition in $defs."""
    schema = CascadeConfig.json_schema()
    refs = set(re.findall(r'"\$ref": "#/\$defs/(\w+)"', json.dumps(schema)))
    assert refs
    assert refs <= set(schema["$defs"])
