"""Exact, tagged-JSON serialization for checkpointed values.

`dumps` turns a value into UTF-8 JSON bytes and `loads` turns them back into an equal value of the
same types. Plain JSON is used wherever it is exact (str, int, finite float, bool, None, lists,
dicts with string keys); everything else is written as a tagged object `{"$t": TAG, ...}`:

| Python value                         | tag                          |
|--------------------------------------|------------------------------|
| tuple, set, frozenset                | `tuple`, `set`, `frozenset`  |
| dict with a non-str key or a `"$t"`  | `dict` (a list of pairs)     |
| float nan / inf / -inf               | `float`                      |
| bytes, bytearray                     | `bytes`, `bytearray` (base64)|
| datetime, date, time, timedelta      | `datetime`, `date`, ...      |
| Decimal, UUID                        | `decimal`, `uuid`            |
| Enum member                          | `enum` (class path + name)   |
| dataclass instance                   | `dc` (class path + fields)   |
| NamedTuple instance                  | `ntuple` (class path)        |
| pydantic `BaseModel`                 | `model` (class path + dump)  |
| `Atomic`, `AtomicList`, `AtomicDict` | `cascadence.atomic...`       |
| anything given to `register_type`    | the registered tag           |

Classes are recorded as `"module:QualName"` and imported again on load, so they must be defined at
module level. A dataclass (a flow score included) is restored the way `pickle` and `copy` restore
objects: the instance is created with `cls.__new__(cls)`, without calling `__init__` or
`__post_init__`, and every field (`init=False` ones too) is set to its stored value with
`object.__setattr__`, so frozen and slotted dataclasses and `ImmutableScore`s work and a
`__post_init__` that builds fresh containers (`self.results = AtomicList()`) does not wipe the
restored contents. A field missing from the stored value (added to the class after the checkpoint
was written) gets its dataclass default (`default` or `default_factory()`); a missing field with
no default fails to load with a `CheckpointError` naming it. Stored values of fields the class no
longer has are ignored. Only fields are stored: an attribute that `__post_init__` sets outside
the fields is not there after a restore. A pydantic model is rebuilt with
`model_validate(model_dump())`. Time zones are kept: `zoneinfo` zones by key, fixed
offsets (`datetime.timezone`) by offset and name; any other `tzinfo` is stored as the fixed offset
it had for that value.

A value that cannot be written raises `SerializationError` naming its path inside the value
(`$.score.client`) and its type. Stored checkpoints are trusted data: `loads` imports the modules
they name.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import enum
import importlib
import json
import math
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, NamedTuple

from cascadence.errors import CheckpointError

__all__ = [
    "SerializationError",
    "dumps",
    "loads",
    "register_type",
]

_TAG = "$t"

Encoder = Callable[[Any], Any]


class SerializationError(CheckpointError, TypeError):
    """A value cannot be checkpointed (or a stored checkpoint cannot be read back).

    Attributes:
        path: Where the value sits inside the checkpointed object, e.g. `$.score.client`.
        type_name: The qualified name of the offending type.
    """

    def __init__(self, path: str, type_name: str, reason: str | None = None) -> None:
        self.path = path
        self.type_name = type_name
        self.reason = reason
        detail = reason or (
            f"cannot checkpoint a value of type {type_name}; keep it out of the checkpointed "
            "value or teach checkpoints about it with cascadence.checkpoint.serde.register_type"
        )
        super().__init__(f"{path}: {detail}")


class _Unsupported(Exception):
    """Raised deep inside the encoder; collects the path on its way up."""

    def __init__(self, obj: Any, reason: str | None = None) -> None:
        self.type_name = _type_name(type(obj))
        self.reason = reason
        self.parts: list[str] = []


class _Registered(NamedTuple):
    tag: str
    path: str
    encode: Encoder
    decode: Callable[[Any], Any]


def _type_name(cls: type) -> str:
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


# --------------------------------------------------------------------------- class paths

_PATHS: dict[type, str] = {}


def _class_path(cls: type, obj: Any) -> str:
    """Return "module:QualName" for `cls`, checking once that it can be imported back."""
    path = _PATHS.get(cls)
    if path is not None:
        return path
    qualname = cls.__qualname__
    if "<locals>" in qualname:
        raise _Unsupported(
            obj,
            f"cannot checkpoint an instance of {cls.__module__}.{qualname}: classes defined "
            "inside a function cannot be imported on load; define it at module level",
        )
    path = f"{cls.__module__}:{qualname}"
    try:
        found = _import_path(path)
    except CheckpointError:
        found = None
    if found is not cls:
        raise _Unsupported(
            obj,
            f"cannot checkpoint an instance of {path}: the class is not importable by that name",
        )
    _PATHS[cls] = path
    return path


_IMPORTED: dict[str, Any] = {}


def _import_path(path: str) -> Any:
    found = _IMPORTED.get(path)
    if found is not None:
        return found
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = sys.modules.get(module_name) or importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(
            f"cannot load checkpoint: class {path!r} is not importable ({exc})"
        ) from exc
    _IMPORTED[path] = obj
    return obj


# --------------------------------------------------------------------------- registration

_REGISTERED: dict[type, _Registered] = {}
_REGISTERED_TAGS: dict[str, _Registered] = {}
_BUILTIN_TAGS = frozenset(
    {
        "tuple", "set", "frozenset", "dict", "float", "bytes", "bytearray", "datetime",
        "date", "time", "timedelta", "decimal", "uuid", "enum", "dc", "ntuple", "model",
    }
)  # fmt: skip


def register_type(
    cls: type, encode: Encoder, decode: Callable[[Any], Any], tag: str | None = None
) -> None:
    """Teach checkpoints to store instances of `cls` (and its subclasses).

    `encode(obj)` returns any value `dumps` can write (it is encoded recursively); `decode(value)`
    receives that value, decoded, and returns the instance. The class is recorded with the value,
    and its module is imported on load, so a module that registers its types at import time works
    in a fresh process too.

    Args:
        cls: The class to support; must be importable at module level.
        encode: Turns an instance into a serializable value.
        decode: Turns the decoded value back into an instance.
        tag: A stable name for the stored form; defaults to `"module:QualName"` of `cls`.

    Raises:
        ValueError: If `tag` is one of the built-in tags or already names another class.
    """
    path = f"{cls.__module__}:{cls.__qualname__}"
    tag = tag or path
    if tag in _BUILTIN_TAGS:
        raise ValueError(f"tag {tag!r} is reserved for a built-in type; choose another tag")
    previous = _REGISTERED_TAGS.get(tag)
    if previous is not None and previous.path != path:
        raise ValueError(f"tag {tag!r} is already registered for {previous.path}")
    entry = _Registered(tag, path, encode, decode)
    _REGISTERED[cls] = entry
    _REGISTERED_TAGS[tag] = entry
    # Subclass lookups are cached in the dispatch table; start again from the new registry.
    _ENCODERS.clear()
    _ENCODERS.update(_BASE_ENCODERS)


_ATOMIC_MODULE = "cascadence.flow.atomic"
_ATOMICS_READY = False


def _register_atomics() -> None:
    """Teach checkpoints the flow's `Atomic`, `AtomicList` and `AtomicDict` (on first sight).

    They are stored by content; a restored container has a fresh lock.
    """
    global _ATOMICS_READY
    _ATOMICS_READY = True
    from cascadence.flow import atomic

    def decoder(cls: type) -> Callable[[Any], Any]:
        def decode(value: Any) -> Any:
            obj: Any = object.__new__(cls)
            obj.__setstate__({"value": value})
            return obj

        return decode

    for cls, tag in (
        (atomic.Atomic, "cascadence.atomic"),
        (atomic.AtomicList, "cascadence.atomic_list"),
        (atomic.AtomicDict, "cascadence.atomic_dict"),
    ):
        register_type(cls, lambda o: o.__getstate__()["value"], decoder(cls), tag)


# --------------------------------------------------------------------------- encoding


def _enc_list(obj: list[Any]) -> list[Any]:
    out: list[Any] = []
    append = out.append
    for i, item in enumerate(obj):
        enc = _ENCODERS.get(type(item))
        try:
            append(item if enc is None and type(item) in _PLAIN else _encode(item, enc))
        except _Unsupported as exc:
            exc.parts.append(f"[{i}]")
            raise
    return out


def _enc_dict(obj: dict[Any, Any]) -> Any:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if type(key) is not str or key == _TAG:
            return _enc_dict_pairs(obj)
        try:
            out[key] = _encode(value, _ENCODERS.get(type(value)))
        except _Unsupported as exc:
            exc.parts.append(f".{key}" if key.isidentifier() else f"[{key!r}]")
            raise
    return out


def _enc_dict_pairs(obj: dict[Any, Any]) -> dict[str, Any]:
    pairs = []
    for key, value in obj.items():
        try:
            k = _encode(key, _ENCODERS.get(type(key)))
        except _Unsupported as exc:
            exc.parts.append(f"<key {key!r}>")
            raise
        try:
            pairs.append([k, _encode(value, _ENCODERS.get(type(value)))])
        except _Unsupported as exc:
            exc.parts.append(f"[{key!r}]")
            raise
    return {_TAG: "dict", "v": pairs}


def _enc_seq(tag: str) -> Encoder:
    def encode(obj: Any) -> dict[str, Any]:
        out: list[Any] = []
        for i, item in enumerate(obj):
            try:
                out.append(_encode(item, _ENCODERS.get(type(item))))
            except _Unsupported as exc:
                exc.parts.append(f"[{i}]")
                raise
        return {_TAG: tag, "v": out}

    return encode


def _enc_float(obj: float) -> Any:
    if math.isfinite(obj):
        return obj
    return {_TAG: "float", "v": "nan" if obj != obj else ("inf" if obj > 0 else "-inf")}


def _enc_tz(tz: _dt.tzinfo | None, value: Any) -> Any:
    if tz is None:
        return None
    key = getattr(tz, "key", None)
    if isinstance(key, str) and type(tz).__module__ == "zoneinfo":
        return {"zone": key}
    offset = value.utcoffset()
    if offset is None:
        raise _Unsupported(
            value,
            f"cannot checkpoint a {type(value).__name__} whose tzinfo "
            f"{tz!r} has no fixed UTC offset",
        )
    micros = offset // _dt.timedelta(microseconds=1)
    if type(tz) is _dt.timezone:
        name = tz.tzname(None)
        if name != _dt.timezone(offset).tzname(None):
            return {"offset": micros, "name": name}
    return {"offset": micros}


def _enc_datetime(obj: _dt.datetime) -> dict[str, Any]:
    out: dict[str, Any] = {
        _TAG: "datetime",
        "v": [obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second, obj.microsecond],
    }
    if obj.tzinfo is not None:
        out["tz"] = _enc_tz(obj.tzinfo, obj)
    if obj.fold:
        out["fold"] = 1
    return out


def _enc_time(obj: _dt.time) -> dict[str, Any]:
    out: dict[str, Any] = {_TAG: "time", "v": [obj.hour, obj.minute, obj.second, obj.microsecond]}
    if obj.tzinfo is not None:
        out["tz"] = _enc_tz(obj.tzinfo, obj)
    if obj.fold:
        out["fold"] = 1
    return out


_BASE_ENCODERS: dict[type, Encoder] = {
    list: _enc_list,
    dict: _enc_dict,
    tuple: _enc_seq("tuple"),
    set: _enc_seq("set"),
    frozenset: _enc_seq("frozenset"),
    float: _enc_float,
    bytes: lambda o: {_TAG: "bytes", "v": base64.b64encode(o).decode("ascii")},
    bytearray: lambda o: {_TAG: "bytearray", "v": base64.b64encode(o).decode("ascii")},
    _dt.datetime: _enc_datetime,
    _dt.date: lambda o: {_TAG: "date", "v": [o.year, o.month, o.day]},
    _dt.time: _enc_time,
    _dt.timedelta: lambda o: {_TAG: "timedelta", "v": [o.days, o.seconds, o.microseconds]},
    Decimal: lambda o: {_TAG: "decimal", "v": str(o)},
    uuid.UUID: lambda o: {_TAG: "uuid", "v": o.hex},
}
_ENCODERS: dict[type, Encoder] = dict(_BASE_ENCODERS)
_PLAIN = frozenset({str, int, bool, type(None)})


def _encode(obj: Any, enc: Encoder | None) -> Any:
    if enc is not None:
        return enc(obj)
    cls = type(obj)
    if cls in _PLAIN:
        return obj
    enc = _encoder_for(cls, obj)
    _ENCODERS[cls] = enc
    return enc(obj)


def _encoder_for(cls: type, obj: Any) -> Encoder:
    """Build (once per class) the encoder for a type that is not in the dispatch table."""
    if cls.__module__ == _ATOMIC_MODULE and not _ATOMICS_READY:
        _register_atomics()
    for base in cls.__mro__:
        entry = _REGISTERED.get(base)
        if entry is not None:
            return _registered_encoder(entry, cls, obj)
    if issubclass(cls, enum.Enum):
        path = _class_path(cls, obj)
        members = cls.__members__

        def encode_enum(o: Any) -> dict[str, Any]:
            name = o.name
            if name is not None and members.get(name) is o:
                return {_TAG: "enum", "c": path, "n": name}
            # Composite flags have no member name of their own: store the value.
            value = o.value
            return {_TAG: "enum", "c": path, "v": _encode(value, _ENCODERS.get(type(value)))}

        return encode_enum
    if dataclasses.is_dataclass(cls):
        reported = obj.__class__
        if reported is not cls and issubclass(cls, reported):
            # A proxy subclass standing for its parent (a score snapshot): store the parent.
            return _dataclass_encoder(reported, obj)
        return _dataclass_encoder(cls, obj)
    if issubclass(cls, tuple) and hasattr(cls, "_fields"):
        path = _class_path(cls, obj)
        seq = _enc_seq("ntuple")

        def encode_ntuple(o: Any) -> dict[str, Any]:
            out: dict[str, Any] = seq(o)
            out["c"] = path
            return out

        return encode_ntuple
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        path = _class_path(cls, obj)

        def encode_model(o: Any) -> dict[str, Any]:
            return {_TAG: "model", "c": path, "v": _encode(o.model_dump(), _enc_dict)}

        return encode_model
    raise _Unsupported(obj)


def _registered_encoder(entry: _Registered, cls: type, obj: Any) -> Encoder:
    tag, _, encode, _ = entry
    path = entry.path

    def encode_registered(o: Any) -> dict[str, Any]:
        value = encode(o)
        return {_TAG: tag, "c": path, "v": _encode(value, _ENCODERS.get(type(value)))}

    return encode_registered


def _dataclass_encoder(cls: type, obj: Any) -> Encoder:
    path = _class_path(cls, obj)
    names = tuple(f.name for f in dataclasses.fields(cls))

    def encode_dataclass(o: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for name in names:
            value = getattr(o, name)
            enc = _ENCODERS.get(type(value))
            try:
                fields[name] = (
                    value if enc is None and type(value) in _PLAIN else _encode(value, enc)
                )
            except _Unsupported as exc:
                exc.parts.append(f".{name}")
                raise
        return {_TAG: "dc", "c": path, "v": fields}

    return encode_dataclass


def dumps(value: Any, *, root: str = "$") -> bytes:
    """Serialize `value` to tagged JSON bytes that `loads` turns back into an equal value.

    Args:
        value: The value to write (see the module docstring for the supported types).
        root: How the value is named in error paths (`$` by default, so `$.score.client`).

    Raises:
        SerializationError: A value inside `value` has an unsupported type; the message names
            its path and type.
    """
    try:
        data = _encode(value, _ENCODERS.get(type(value)))
    except _Unsupported as exc:
        path = root + "".join(reversed(exc.parts))
        raise SerializationError(path, exc.type_name, exc.reason) from None
    except RecursionError:
        raise SerializationError(
            root,
            _type_name(type(value)),
            "value nests too deeply or refers to itself; checkpointed values must be finite trees",
        ) from None
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped, it reads back exactly
        return json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode()


# --------------------------------------------------------------------------- decoding


def _dec_tz(data: Any) -> _dt.tzinfo | None:
    if data is None:
        return None
    zone = data.get("zone")
    if zone is not None:
        import zoneinfo

        return zoneinfo.ZoneInfo(zone)
    offset = _dt.timedelta(microseconds=data["offset"])
    name = data.get("name")
    if not offset and name is None:
        return _dt.timezone.utc
    return _dt.timezone(offset, name) if name is not None else _dt.timezone(offset)


def _dec_datetime(d: dict[str, Any]) -> _dt.datetime:
    y, mo, day, h, mi, sec, us = d["v"]
    return _dt.datetime(y, mo, day, h, mi, sec, us, _dec_tz(d.get("tz")), fold=d.get("fold", 0))


def _dec_time(d: dict[str, Any]) -> _dt.time:
    h, mi, sec, us = d["v"]
    return _dt.time(h, mi, sec, us, _dec_tz(d.get("tz")), fold=d.get("fold", 0))


_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


_Plan = tuple[tuple[str, Any, Any], ...]
_DC_PLANS: dict[type, _Plan] = {}
_MISSING = dataclasses.MISSING


def _dec_dataclass(d: dict[str, Any]) -> Any:
    """Restore a dataclass like pickle does: no `__init__`, no `__post_init__`."""
    cls = _import_path(d["c"])
    plan = _DC_PLANS.get(cls)
    if plan is None:
        plan = _DC_PLANS[cls] = _dataclass_plan(cls)
    values: dict[str, Any] = d["v"]
    try:
        obj = cls.__new__(cls)
    except TypeError as exc:
        raise CheckpointError(
            f"cannot load checkpoint: {d['c']} cannot be created without arguments "
            f"by {cls.__qualname__}.__new__ ({exc})"
        ) from exc
    set_field = object.__setattr__
    for name, default, factory in plan:
        if name in values:
            value = values[name]
        elif factory is not _MISSING:
            value = factory()
        elif default is not _MISSING:
            value = default
        else:
            raise CheckpointError(
                f"cannot load checkpoint: field {name!r} of {d['c']} is not in the stored "
                "value and has no default; give the field a default (or a default_factory)"
            )
        set_field(obj, name, value)
    return obj


def _dataclass_plan(cls: type) -> _Plan:
    """`(name, default, default_factory)` for every field of `cls`, in definition order."""
    if not isinstance(cls, type) or not dataclasses.is_dataclass(cls):
        raise CheckpointError(f"cannot load checkpoint: {cls!r} is not a dataclass")
    return tuple((f.name, f.default, f.default_factory) for f in dataclasses.fields(cls))


def _dec_registered(d: dict[str, Any]) -> Any:
    tag = d[_TAG]
    entry = _REGISTERED_TAGS.get(tag)
    if entry is None and tag.startswith("cascadence.atomic"):
        _register_atomics()
        entry = _REGISTERED_TAGS.get(tag)
    if entry is None and "c" in d:
        # Importing the class's module runs its register_type call.
        _import_path(d["c"])
        entry = _REGISTERED_TAGS.get(tag)
    if entry is None:
        raise CheckpointError(
            f"cannot load checkpoint: unknown type tag {tag!r}; import the module that "
            "registers it with register_type before loading"
        )
    return entry.decode(d["v"])


def _dec_enum(d: dict[str, Any]) -> Any:
    cls = _import_path(d["c"])
    name = d.get("n")
    return cls[name] if name is not None else cls(d["v"])


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "tuple": lambda d: tuple(d["v"]),
    "set": lambda d: set(d["v"]),
    "frozenset": lambda d: frozenset(d["v"]),
    "dict": lambda d: dict(d["v"]),
    "float": lambda d: _FLOATS[d["v"]],
    "bytes": lambda d: base64.b64decode(d["v"]),
    "bytearray": lambda d: bytearray(base64.b64decode(d["v"])),
    "datetime": _dec_datetime,
    "date": lambda d: _dt.date(*d["v"]),
    "time": _dec_time,
    "timedelta": lambda d: _dt.timedelta(*d["v"]),
    "decimal": lambda d: Decimal(d["v"]),
    "uuid": lambda d: uuid.UUID(hex=d["v"]),
    "enum": _dec_enum,
    "dc": _dec_dataclass,
    "ntuple": lambda d: _import_path(d["c"])(*d["v"]),
    "model": lambda d: _import_path(d["c"]).model_validate(d["v"]),
}


def _object_hook(d: dict[str, Any]) -> Any:
    tag = d.get(_TAG)
    if tag is None:
        return d
    decode = _DECODERS.get(tag)
    return decode(d) if decode is not None else _dec_registered(d)


_decoder = json.JSONDecoder(object_hook=_object_hook)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Read a value written by `dumps`.

    Raises:
        CheckpointError: The data is not a checkpoint, or names a class that cannot be imported.
    """
    if not isinstance(data, str):
        data = bytes(data).decode()
    try:
        return _decoder.decode(data)
    except CheckpointError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"cannot load checkpoint: corrupt or foreign data ({exc})") from exc
