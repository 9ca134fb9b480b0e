"""Fixtures for the condition tests (`tests/strategies.py` is importable through the
`pythonpath` setting in pyproject.toml)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cascadence.conditions import regex


@pytest.fixture(params=["re2", "re"] if regex.HAVE_RE2 else ["re"])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run a test once per available regex engine (re2 when installed, and the guarded re)."""
    previous = regex.USE_RE2
    regex.USE_RE2 = request.param == "re2"
    try:
        yield str(request.param)
    finally:
        regex.USE_RE2 = previous


@pytest.fixture
def stdlib_re() -> Iterator[None]:
    """Force the guarded stdlib `re` engine for the duration of a test."""
    previous = regex.USE_RE2
    regex.USE_RE2 = False
    try:
        yield
    finally:
        regex.USE_RE2 = previous
