"""The Event + Context input model: "what happened" kept apart from "the circumstances".

A `UniversalEvent` describes what happened in any domain (a payment, a post, a login). An
`EventContext` describes the circumstances: the session, the device, the location and the
history of the entity. `EventWithContext` joins the two and flattens them into the input a
cascade runs on:

```python
event_with_context = EventWithContext(event=event, context=context)
result = await engine.execute(event_with_context.to_flat_dict())
```

Routing rules can then use the same generic field names in every domain (`trust_score`,
`account_age_days`, `vpn_detected`, `country`, ...). See `EventWithContext.to_flat_dict` for
the exact layout and for what wins when two sources use one key.

Unknown signals default to None and are left out of the flat dict, so a rule on a field that
was never supplied sees it as missing. The boolean flags shown in the examples
(`is_authenticated`, `is_trusted_device`, `vpn_detected`, `is_high_risk_country`) default to
False.
"""

from __future__ import annotations

import dataclasses
import numbers
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from cascadence._enums import NamedEnum
from cascadence.errors import CascadenceError, closest

__all__ = [
    "DeviceContext",
    "DomainType",
    "EventContext",
    "EventWithContext",
    "HistoricalContext",
    "InvalidEventError",
    "LocationContext",
    "SessionContext",
    "UniversalEvent",
]

_T = TypeVar("_T")

_SECTIONS: tuple[str, ...] = ("session", "device", "location", "historical")
"""The context sections, in the order they are flattened."""


class InvalidEventError(CascadenceError, ValueError):
    """An event or context could not be built from the data given (unknown key, bad value)."""


class DomainType(NamedEnum):
    """The domain an event belongs to. Values are lower-case strings (`"finance"`).

    `DomainType("FINANCE")` and `DomainType("Finance")` also work; an unknown name raises
    `ValueError` with the closest valid value.
    """

    FINANCE = "finance"
    HEALTHCARE = "healthcare"
    CONTENT_MODERATION = "content_moderation"
    CYBERSECURITY = "cybersecurity"
    CUSTOMER_SUPPORT = "customer_support"
    HR = "hr"
    E_COMMERCE = "e_commerce"
    INSURANCE = "insurance"
    GAMING = "gaming"
    LOGISTICS = "logistics"
    LEGAL = "legal"
    GENERIC = "generic"

    @classmethod
    def _what(cls) -> str:
        return "domain"


def _parse_datetime(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    raise InvalidEventError(f"{where}: expected a datetime or an ISO 8601 string, got {value!r}")


_NAMES: dict[type, tuple[str, ...]] = {}
_DATETIMES: dict[type, frozenset[str]] = {}


def _names(cls: type) -> tuple[str, ...]:
    try:
        return _NAMES[cls]
    except KeyError:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
        return names


def _datetime_names(cls: type) -> frozenset[str]:
    try:
        return _DATETIMES[cls]
    except KeyError:
        hints = typing.get_type_hints(cls)
        found = frozenset(
            name
            for name in _names(cls)
            if hints[name] is datetime or datetime in typing.get_args(hints[name])
        )
        _DATETIMES[cls] = found
        return found


def _check_keys(cls: type, data: Mapping[str, Any], where: str) -> None:
    if not isinstance(data, Mapping):
        raise InvalidEventError(f"{where}: expected a mapping, got {type(data).__name__}")
    valid = _names(cls)
    for key in data:
        if key not in valid:
            suggestion = closest(str(key), valid)
            hint = f"; did you mean {suggestion!r}?" if suggestion else ""
            raise InvalidEventError(
                f"{where}: unknown field {key!r} for {cls.__name__}{hint} "
                f"(fields: {', '.join(valid)})"
            )


class _Section:
    """Shared conversions for the four context sections."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """Every field, with datetimes as ISO 8601 strings (JSON-ready)."""
        cls = type(self)
        stamps = _datetime_names(cls)
        out: dict[str, Any] = {}
        for name in _names(cls):
            value = getattr(self, name)
            out[name] = value.isoformat() if name in stamps and value is not None else value
        return out

    def _flat(self) -> dict[str, Any]:
        """Fields that are not None, with datetimes as ISO 8601 strings."""
        out: dict[str, Any] = {}
        for name in _names(type(self)):
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out

    @classmethod
    def from_dict(cls: type[_T], data: Mapping[str, Any]) -> _T:
        """Build the section from `to_dict()` output; ISO strings become datetimes.

        Raises:
            InvalidEventError: An unknown key (the message names the closest field) or a
                datetime that cannot be parsed.
        """
        where = cls.__name__
        _check_keys(cls, data, where)
        values = dict(data)
        for name in _datetime_names(cls):
            if values.get(name) is not None:
                values[name] = _parse_datetime(values[name], f"{where}.{name}")
        return cls(**values)


@dataclass(slots=True)
class SessionContext(_Section):
    """The session the event happened in."""

    session_id: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    is_authenticated: bool = False
    auth_method: str | None = None
    """How the user authenticated, e.g. `"password"`, `"mfa"`, `"sso"`."""
    session_started_at: datetime | None = None
    session_duration_seconds: float | None = None
    failed_login_attempts: int | None = None


@dataclass(slots=True)
class DeviceContext(_Section):
    """The device the event came from."""

    device_id: str | None = None
    device_type: str | None = None
    """E.g. `"mobile"`, `"desktop"`, `"tablet"`, `"server"`."""
    os: str | None = None
    os_version: str | None = None
    browser: str | None = None
    fingerprint: str | None = None
    is_trusted_device: bool = False
    is_new_device: bool | None = None
    is_emulator: bool | None = None


@dataclass(slots=True)
class LocationContext(_Section):
    """Where the event came from."""

    country: str | None = None
    """ISO 3166 country code, e.g. `"US"`."""
    region: str | None = None
    city: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    timezone: str | None = None
    vpn_detected: bool = False
    proxy_detected: bool | None = None
    is_high_risk_country: bool = False
    distance_from_usual_km: float | None = None


@dataclass(slots=True)
class HistoricalContext(_Section):
    """What is known about the primary entity from before this event."""

    account_age_days: int | None = None
    previous_events_count: int | None = None
    previous_violations: int | None = None
    trust_score: float | None = None
    """0.0 (untrusted) to 1.0 (fully trusted)."""
    average_value: float | None = None
    max_value: float | None = None
    events_last_24h: int | None = None
    last_event_at: datetime | None = None


_SECTION_TYPES: dict[str, type[_Section]] = {
    "session": SessionContext,
    "device": DeviceContext,
    "location": LocationContext,
    "historical": HistoricalContext,
}


def _check_event_fields(event: UniversalEvent) -> None:
    fields: dict[str, object] = {
        "id": event.id,
        "event_type": event.event_type,
        "primary_entity": event.primary_entity,
        "secondary_entity": event.secondary_entity,
        "unit": event.unit,
    }
    for name, given in fields.items():
        optional = name in ("secondary_entity", "unit")
        if isinstance(given, str) or (optional and given is None):
            continue
        if name in ("id", "primary_entity") and type(given) is int:
            continue  # numeric ids are kept as given
        expected = "a str" + (" or None" if optional else "")
        if name in ("id", "primary_entity"):
            expected = "a str or an int"
        raise InvalidEventError(
            f"UniversalEvent.{name}: expected {expected}, got {type(given).__name__} {given!r:.60}"
        )
    value: object = event.value
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, numbers.Number)
        or isinstance(value, complex)
    ):
        hint = "; write the number itself, not as text" if isinstance(value, str) else ""
        raise InvalidEventError(
            f"UniversalEvent.value: expected a number or None, got {type(value).__name__} "
            f"{value!r:.60}{hint}"
        )


@dataclass(slots=True)
class UniversalEvent:
    """What happened, in any domain.

    Attributes:
        id: Unique id of the event.
        domain: The domain; a `DomainType` or its string value.
        event_type: What kind of event, e.g. `"transaction"`, `"post"`, `"login"`.
        timestamp: When it happened (a `datetime`; an ISO 8601 string is parsed).
        primary_entity: Who or what initiated it.
        secondary_entity: Its target or recipient, if any.
        value: A magnitude: an amount, a risk score; 0 when there is none.
        unit: The unit of `value`, e.g. `"USD"`.
        domain_data: Anything specific to the domain.
    """

    id: str
    domain: DomainType
    event_type: str
    timestamp: datetime
    primary_entity: str
    secondary_entity: str | None = None
    value: float | None = None
    unit: str | None = None
    domain_data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Coerce a string domain and an ISO timestamp; reject fields of the wrong type here
        (a text `value` would make every numeric rule on it false), not in a rule."""
        # Values typed loosely at run time (from JSON, YAML) are checked here.
        _check_event_fields(self)
        domain: object = self.domain
        if not isinstance(domain, DomainType):
            self.domain = DomainType(domain)
        timestamp: object = self.timestamp
        if not isinstance(timestamp, datetime):
            self.timestamp = _parse_datetime(timestamp, "UniversalEvent.timestamp")
        domain_data: object = self.domain_data
        if not isinstance(domain_data, dict):
            raise InvalidEventError(
                f"UniversalEvent.domain_data: expected a dict, got {type(domain_data).__name__}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready: the domain as its string, the timestamp as ISO 8601."""
        return {
            "id": self.id,
            "domain": self.domain.value,
            "event_type": self.event_type,
            "timestamp": self.timestamp.isoformat(),
            "primary_entity": self.primary_entity,
            "secondary_entity": self.secondary_entity,
            "value": self.value,
            "unit": self.unit,
            "domain_data": dict(self.domain_data),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UniversalEvent:
        """Build an event from `to_dict()` output.

        Raises:
            InvalidEventError: An unknown key (with the closest field name), a missing
                required field, or a bad timestamp.
            ValueError: An unknown domain (with the closest valid value).
        """
        _check_keys(cls, data, "event")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidEventError(f"event: {exc}") from None


_CONTEXT_NAMES: frozenset[str] = frozenset(
    name
    for section in (SessionContext, DeviceContext, LocationContext, HistoricalContext)
    for name in _names(section)
)
"""Every context section's field names: at the top of a flat dict they come from the context."""


@dataclass(slots=True)
class EventContext:
    """The circumstances of an event. Every section is optional.

    Attributes:
        session: The session it happened in.
        device: The device it came from.
        location: Where it came from.
        historical: What is known about the primary entity.
        custom: Any other circumstance, by name.
    """

    session: SessionContext | None = None
    device: DeviceContext | None = None
    location: LocationContext | None = None
    historical: HistoricalContext | None = None
    custom: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """A section given as a mapping is read into its section type (unknown keys refused
        with the closest field); anything else that is not the section type, and a
        non-mapping `custom`, is refused here rather than when the context is flattened."""
        for name, section_type in _SECTION_TYPES.items():
            section: object = getattr(self, name)
            if section is None or isinstance(section, section_type):
                continue
            if isinstance(section, Mapping):
                setattr(self, name, section_type.from_dict(section))
                continue
            raise InvalidEventError(
                f"EventContext.{name}: expected a {section_type.__name__}, a mapping of its "
                f"fields, or None, got {type(section).__name__}"
            )
        custom: object = self.custom
        if not isinstance(custom, Mapping):
            raise InvalidEventError(
                f"EventContext.custom: expected a dict, got {type(custom).__name__}"
            )
        if not isinstance(custom, dict):
            self.custom = dict(custom)

    def to_dict(self) -> dict[str, Any]:
        """Every section as a dict (None when absent) and `custom`, JSON-ready."""
        out: dict[str, Any] = {}
        for name in _SECTIONS:
            section: _Section | None = getattr(self, name)
            out[name] = None if section is None else section.to_dict()
        out["custom"] = dict(self.custom)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventContext:
        """Build a context from `to_dict()` output.

        Raises:
            InvalidEventError: An unknown key anywhere (with the closest field name).
        """
        _check_keys(cls, data, "context")
        values: dict[str, Any] = {}
        for name, section_type in _SECTION_TYPES.items():
            raw = data.get(name)
            if raw is not None:
                values[name] = section_type.from_dict(raw)
        custom = data.get("custom")
        if custom is not None:
            if not isinstance(custom, Mapping):
                raise InvalidEventError(
                    f"context.custom: expected a mapping, got {type(custom).__name__}"
                )
            values["custom"] = dict(custom)
        return cls(**values)


@dataclass(slots=True)
class EventWithContext:
    """An event together with its context: the input of a domain-agnostic cascade."""

    event: UniversalEvent
    context: EventContext = field(default_factory=EventContext)

    def __post_init__(self) -> None:
        """An event or context given as a mapping (as `to_dict()` writes it) is read into its
        type; anything else of the wrong type is refused here rather than when flattened."""
        event: object = self.event
        if isinstance(event, Mapping):
            self.event = UniversalEvent.from_dict(event)
        elif not isinstance(event, UniversalEvent):
            raise InvalidEventError(
                "EventWithContext.event: expected a UniversalEvent or a mapping of its fields, "
                f"got {type(event).__name__}"
            )
        context: object = self.context
        if context is None:
            self.context = EventContext()
        elif isinstance(context, Mapping):
            self.context = EventContext.from_dict(context)
        elif not isinstance(context, EventContext):
            raise InvalidEventError(
                "EventWithContext.context: expected an EventContext or a mapping of its "
                f"sections, got {type(context).__name__}"
            )

    def to_flat_dict(self) -> dict[str, Any]:
        """Flatten event and context into one dict for a cascade's conditions.

        Layout:

        * The event's fields at the top level: `id`, `domain` (its string value),
          `event_type`, `timestamp` (ISO 8601), `primary_entity`, `secondary_entity`,
          `value`, `unit`. These are always present, None or not.
        * Every context field that is not None at the top level under its own name
          (`trust_score`, `account_age_days`, `vpn_detected`, `country`, `device_type`,
          `is_authenticated`, ...), datetimes as ISO strings. None fields are left out, so a
          condition on them sees a missing field.
        * Each `domain_data` key, and each `context.custom` key, at the top level.
        * Namespaced copies: `domain_data` and `custom` whole, and one dict per present
          section under `session`, `device`, `location`, `historical` (None fields left out),
          so `session.ip_address` and `historical.trust_score` work as paths.

        When two sources use one top-level key, the first of these wins: the namespace keys
        (`domain_data`, `custom`, and each present section's name); the event's own fields;
        the context sections' fields; `domain_data`; `custom`. So an event field always beats a
        `domain_data` key of the same name, and the generic context names can be relied on:
        a `domain_data` key named like a context field (`trust_score`, `account_age_days`,
        `country`, ...) is never copied to the top level, even when the context leaves that
        field unset, so what an event carries cannot pass for its context (it stays readable
        as `domain_data.trust_score`).

        Returns:
            A new dict; the event's `domain_data` and `custom` values are not copied deeply.
        """
        event = self.event
        context = self.context
        data = event.domain_data
        custom = context.custom
        sections: dict[str, dict[str, Any]] = {}
        fields_flat: dict[str, Any] = {}
        for name in _SECTIONS:
            section: _Section | None = getattr(context, name)
            if section is not None:
                flat_section = section._flat()
                sections[name] = flat_section
                fields_flat.update(flat_section)
        own_data = {k: v for k, v in data.items() if k not in _CONTEXT_NAMES} if data else data
        return {
            **custom,
            **own_data,
            **fields_flat,
            "id": event.id,
            "domain": event.domain.value,
            "event_type": event.event_type,
            "timestamp": event.timestamp.isoformat(),
            "primary_entity": event.primary_entity,
            "secondary_entity": event.secondary_entity,
            "value": event.value,
            "unit": event.unit,
            "domain_data": dict(data),
            "custom": dict(custom),
            **sections,
        }

    def to_dict(self) -> dict[str, Any]:
        """A nested, JSON-ready dict: `{"event": {...}, "context": {...}}`."""
        return {"event": self.event.to_dict(), "context": self.context.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventWithContext:
        """Rebuild from `to_dict()` output (for example after a JSON round trip).

        Raises:
            InvalidEventError: A missing `event`, or an unknown key anywhere.
        """
        _check_keys(cls, data, "event_with_context")
        if data.get("event") is None:
            raise InvalidEventError("event_with_context: the 'event' key is required")
        context = data.get("context")
        return cls(
            event=UniversalEvent.from_dict(data["event"]),
            context=EventContext() if context is None else EventContext.from_dict(context),
        )
