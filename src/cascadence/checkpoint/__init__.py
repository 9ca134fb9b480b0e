"""Durable runs: checkpoint stores that let a killed flow or cascade resume where it stopped.

```python
from cascadence.checkpoint import InMemoryCheckpointStore, store_from_url

store = InMemoryCheckpointStore()                # tests, single process
store = store_from_url("sqlite:///runs.db")      # the embedded default
store = store_from_url("redis://127.0.0.1:6379/0")
store = store_from_url("postgresql://127.0.0.1:5432/app")
```

Every store implements `CheckpointStore` (see `cascadence.checkpoint.base` for the lease rules)
and serializes values with `cascadence.checkpoint.serde`. Redis and PostgreSQL drivers are
imported only when those stores are first used. To keep runs in another backend, subclass
`KeyValueCheckpointStore` and give it a read, a compare-and-set write, a remove and a key
listing.
"""

from __future__ import annotations

from cascadence.checkpoint.base import (
    FINISHED,
    BaseCheckpointStore,
    CheckpointStore,
    RunNotFoundError,
    RunRecord,
    RunStatus,
    StepRecord,
    default_owner,
)
from cascadence.checkpoint.kv import KeyValueCheckpointStore
from cascadence.checkpoint.memory import InMemoryCheckpointStore
from cascadence.checkpoint.postgres import PostgresCheckpointStore
from cascadence.checkpoint.redis import RedisCheckpointStore
from cascadence.checkpoint.serde import SerializationError, register_type
from cascadence.checkpoint.sqlite import SQLiteCheckpointStore
from cascadence.checkpoint.url import register_store_scheme, store_from_url
from cascadence.errors import CheckpointError, RunLockedError

__all__ = [
    "BaseCheckpointStore",
    "CheckpointError",
    "CheckpointStore",
    "FINISHED",
    "InMemoryCheckpointStore",
    "KeyValueCheckpointStore",
    "PostgresCheckpointStore",
    "RedisCheckpointStore",
    "RunLockedError",
    "RunNotFoundError",
    "RunRecord",
    "RunStatus",
    "SQLiteCheckpointStore",
    "SerializationError",
    "StepRecord",
    "default_owner",
    "register_store_scheme",
    "register_type",
    "store_from_url",
]
