"""Fixtures for the condition tests.

`tests/strategies.py` is shared by the whole suite; this directory has no `__init__.py`, so the
`tests` directory is put on `sys.path` here to make `import strategies` work however pytest is
started.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from cascadence.conditions import regex  # noqa: E402


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
