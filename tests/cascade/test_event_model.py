"""The Event + Context input model: construction as in the spec, flattening, round trips."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timezone

import pytest

from cascadence import CascadeConfig, CascadeEngine
from cascadence.cascade.event_model import (
    DeviceContext,
    DomainType,
    EventContext,
    EventWithContext,
    HistoricalContext,
    InvalidEventError,
    LocationContext,
    SessionContext,
    UniversalEvent,
)
from cascadence.errors import CascadenceError

WHEN = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)


def finance_event() -> UniversalEvent:
    return UniversalEvent(
        id="txn_123",
        domain=DomainType.FINANCE,
        event_type="transaction",
        timestamp=WHEN,
        primary_entity="user_alice",  # who initiated
        secondary_entity="merchant_xyz",  # target/recipient
        value=250.00,  # amount
        unit="USD",
        domain_data={"card_type": "credit", "merchant_category": "retail"},
    )


def content_event() -> UniversalEvent:
    return UniversalEvent(
        id="post_456",
        domain=DomainType.CONTENT_MODERATION,
        event_type="post",
        timestamp=datetime.now(),
        primary_entity="user_bob",
        secondary_entity="forum_tech",
        value=0,  # no monetary value
        unit="post",
        domain_data={"content": "Hello world", "has_media": False},
    )


def security_event() -> UniversalEvent:
    return UniversalEvent(
        id="login_789",
        domain=DomainType.CYBERSECURITY,
        event_type="login",
        timestamp=datetime.now(),
        primary_entity="employee_carol",
        secondary_entity="internal_database",
        value=0.3,  # risk score
        unit="risk_score",
        domain_data={"resource_type": "database", "requested_permissions": ["read"]},
    )


def spec_context() -> EventContext:
    return EventContext(
        session=SessionContext(
            ip_address="192.168.1.100", is_authenticated=True, auth_method="mfa"
        ),
        device=DeviceContext(device_type="mobile", is_trusted_device=True),
        location=LocationContext(country="US", city="San Francisco", vpn_detected=False),
        historical=HistoricalContext(
            account_age_days=730, previous_events_count=500, trust_score=0.92
        ),
    )


def test_spec_events_construct_as_written() -> None:
    """The spec's finance, content and security events build with the spec's arguments."""
    events = [finance_event(), content_event(), security_event()]
    assert [e.domain for e in events] == [
        DomainType.FINANCE,
        DomainType.CONTENT_MODERATION,
        DomainType.CYBERSECURITY,
    ]
    assert events[2].domain_data["requested_permissions"] == ["read"]


def test_spec_context_constructs_as_written() -> None:
    """The spec's context builds, and unsupplied signals are None or False."""
    context = spec_context()
    assert context.session is not None
    assert context.session.auth_method == "mfa"
    assert context.session.user_agent is None
    assert context.device is not None
    assert context.device.fingerprint is None
    assert context.location is not None
    assert context.location.is_high_risk_country is False
    assert context.historical is not None
    assert context.historical.previous_violations is None
    assert context.custom == {}


def test_flat_dict_has_generic_routing_fields() -> None:
    """trust_score and account_age_days sit at the top level for routing rules."""
    flat = EventWithContext(event=finance_event(), context=spec_context()).to_flat_dict()
    assert flat["trust_score"] == 0.92
    assert flat["account_age_days"] == 730
    assert flat["previous_events_count"] == 500
    assert flat["vpn_detected"] is False
    assert flat["country"] == "US"
    assert flat["device_type"] == "mobile"
    assert flat["is_authenticated"] is True
    assert flat["ip_address"] == "192.168.1.100"


def test_flat_dict_event_fields_and_domain_data() -> None:
    """Event fields are flat with the domain as a string, the timestamp in ISO 8601."""
    flat = EventWithContext(event=finance_event(), context=spec_context()).to_flat_dict()
    assert flat["id"] == "txn_123"
    assert flat["domain"] == "finance"
    assert type(flat["domain"]) is str
    assert flat["timestamp"] == "2024-05-01T12:30:00+00:00"
    assert (flat["primary_entity"], flat["secondary_entity"]) == ("user_alice", "merchant_xyz")
    assert (flat["value"], flat["unit"]) == (250.0, "USD")
    assert flat["card_type"] == "credit"
    assert flat["domain_data"] == {"card_type": "credit", "merchant_category": "retail"}
    assert json.loads(json.dumps(flat)) == flat


def test_flat_dict_namespaces_and_omits_none() -> None:
    """Sections appear as nested dicts; None fields are missing at both levels."""
    flat = EventWithContext(event=finance_event(), context=spec_context()).to_flat_dict()
    assert flat["session"] == {
        "ip_address": "192.168.1.100",
        "is_authenticated": True,
        "auth_method": "mfa",
    }
    assert flat["historical"]["trust_score"] == 0.92
    assert "previous_violations" not in flat
    assert "user_agent" not in flat
    assert "previous_violations" not in flat["historical"]


def test_flat_dict_without_context() -> None:
    """An event alone flattens; absent sections leave no keys, None event fields stay."""
    event = dataclasses.replace(finance_event(), secondary_entity=None, value=None)
    flat = EventWithContext(event=event).to_flat_dict()
    assert "session" not in flat
    assert "trust_score" not in flat
    assert flat["secondary_entity"] is None
    assert flat["value"] is None
    assert flat["custom"] == {}


def test_flat_dict_collisions_follow_the_documented_order() -> None:
    """Event fields beat context fields, which beat domain_data, which beats custom."""
    event = dataclasses.replace(
        finance_event(),
        domain_data={"id": "shadow", "country": "FR", "mcc": 5411, "session": "x", "only": 1},
    )
    context = EventContext(
        location=LocationContext(country="US"),
        session=SessionContext(session_id="s1"),
        custom={"mcc": 1, "country": "DE", "extra": True, "value": -1},
    )
    flat = EventWithContext(event, context).to_flat_dict()
    assert flat["id"] == "txn_123"
    assert flat["country"] == "US"
    assert flat["mcc"] == 5411
    assert flat["value"] == 250.0
    assert flat["extra"] is True
    assert flat["only"] == 1
    assert flat["session"] == {"session_id": "s1", "is_authenticated": False}
    assert flat["custom"]["country"] == "DE"


def test_event_data_never_stands_in_for_the_context() -> None:
    """A `domain_data` key named like a context field stays out of the top level even when
    the context leaves the field unset: an event cannot bring its own trust score."""
    event = dataclasses.replace(
        finance_event(), domain_data={"trust_score": 0.99, "account_age_days": 4000, "x": 1}
    )
    context = EventContext(historical=HistoricalContext(account_age_days=3))
    flat = EventWithContext(event, context).to_flat_dict()
    assert "trust_score" not in flat
    assert flat["account_age_days"] == 3
    assert flat["x"] == 1
    assert flat["domain_data"]["trust_score"] == 0.99  # still readable by its full path
    config = CascadeConfig.from_dict(
        {
            "name": "trust",
            "stages": {
                "FIRST": {
                    "routing_rules": [
                        {
                            "name": "high_trust_approve",
                            "condition": {"field": "trust_score", "operator": ">=", "value": 0.95},
                            "action": {"type": "terminate"},
                        }
                    ]
                },
                "DEEP_ANALYSIS": {},
            },
        }
    )
    engine = CascadeEngine(config)
    engine.register_stage("FIRST", lambda ctx: {"result": "review", "confidence": 0.5})
    engine.register_stage("DEEP_ANALYSIS", lambda ctx: {"result": "ok", "confidence": 0.9})
    result = engine.execute_sync(flat)
    assert result["path"] == ["FIRST", "DEEP_ANALYSIS"]


def test_datetime_context_fields_flatten_to_iso() -> None:
    """Datetime context fields become ISO strings in the flat dict."""
    context = EventContext(historical=HistoricalContext(last_event_at=WHEN))
    flat = EventWithContext(finance_event(), context).to_flat_dict()
    assert flat["last_event_at"] == WHEN.isoformat()


def test_context_field_names_are_unique_across_sections_and_event() -> None:
    """No two sections (or a section and the event) share a field name."""
    names: list[str] = [f.name for f in dataclasses.fields(UniversalEvent)]
    for cls in (SessionContext, DeviceContext, LocationContext, HistoricalContext):
        names.extend(f.name for f in dataclasses.fields(cls))
    assert len(names) == len(set(names))


def test_json_round_trip() -> None:
    """to_dict -> JSON -> from_dict rebuilds an equal EventWithContext."""
    original = EventWithContext(
        event=security_event(),
        context=EventContext(
            session=SessionContext(session_started_at=WHEN, session_duration_seconds=12.5),
            historical=HistoricalContext(trust_score=0.5, last_event_at=WHEN),
            custom={"tier": "gold"},
        ),
    )
    text = json.dumps(original.to_dict())
    restored = EventWithContext.from_dict(json.loads(text))
    assert restored == original
    assert restored.to_flat_dict() == original.to_flat_dict()


def test_round_trip_of_spec_example() -> None:
    """The spec's event and context survive a JSON round trip."""
    original = EventWithContext(event=finance_event(), context=spec_context())
    assert EventWithContext.from_dict(json.loads(json.dumps(original.to_dict()))) == original


def test_from_dict_accepts_z_suffix_and_string_domain() -> None:
    """A 'Z' timestamp and a domain string in any case are accepted."""
    event = UniversalEvent.from_dict(
        {
            "id": "e",
            "domain": "Finance",
            "event_type": "t",
            "timestamp": "2024-05-01T12:30:00Z",
            "primary_entity": "p",
        }
    )
    assert event.domain is DomainType.FINANCE
    assert event.timestamp == WHEN


def test_unknown_keys_name_the_closest_field() -> None:
    """An unknown key in a section raises InvalidEventError with a did-you-mean."""
    with pytest.raises(InvalidEventError, match="did you mean 'trust_score'"):
        EventContext.from_dict({"historical": {"trust_scor": 1}})
    with pytest.raises(InvalidEventError, match="did you mean 'context'"):
        EventWithContext.from_dict({"event": finance_event().to_dict(), "contxt": {}})
    with pytest.raises(InvalidEventError, match="'event' key is required"):
        EventWithContext.from_dict({})


def test_bad_values_are_rejected_clearly() -> None:
    """A bad timestamp, domain, or missing field raises an error that says what was expected."""
    data = finance_event().to_dict()
    with pytest.raises(InvalidEventError, match="ISO 8601"):
        UniversalEvent.from_dict({**data, "timestamp": "yesterday"})
    with pytest.raises(ValueError, match="did you mean 'finance'"):
        UniversalEvent.from_dict({**data, "domain": "finanse"})
    with pytest.raises(InvalidEventError, match="primary_entity"):
        UniversalEvent.from_dict({k: v for k, v in data.items() if k != "primary_entity"})
    with pytest.raises(InvalidEventError, match="domain_data"):
        dataclasses.replace(finance_event(), domain_data=["not", "a", "dict"])  # type: ignore[arg-type]
    assert issubclass(InvalidEventError, CascadenceError)


def test_domain_type_values_are_lower_case_strings() -> None:
    """DomainType members are str with lower-case values and str() gives the value."""
    as_text: str = DomainType.FINANCE
    assert as_text == "finance"
    assert str(DomainType.E_COMMERCE) == "e_commerce"
    assert DomainType("HR") is DomainType.HR
    assert all(member.value == member.value.lower() for member in DomainType)
