"""Fixtures building every checkpoint store on a fresh, isolated location.

Redis and PostgreSQL are the real servers on 127.0.0.1; when one is unreachable the tests using
it fail (they never skip), so a missing server cannot pass unnoticed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from checkpoint_backends import BACKENDS, Backend, make_backend

from cascadence.checkpoint.base import BaseCheckpointStore
from cascadence.testing import FakeClock


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """A fresh location on each backend, cleaned up afterwards."""
    made = make_backend(request.param, tmp_path)
    try:
        yield made
    finally:
        await made.cleanup()


@pytest.fixture
def store(backend: Backend) -> BaseCheckpointStore:
    """A store on the fresh location, driven by `backend.clock` (a FakeClock)."""
    return backend.store()


@pytest.fixture
def clock(backend: Backend) -> FakeClock:
    """The fake clock every store of this backend reads."""
    return backend.clock
