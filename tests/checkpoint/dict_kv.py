"""The dict-backed store of docs/architecture.md ("Writing a store of your own"), verbatim.

`test_kv.py` checks that the docs show exactly this code; the contract suite runs on it.
"""

from __future__ import annotations

import itertools
from typing import Any

from cascadence.checkpoint import KeyValueCheckpointStore

VERSIONS = itertools.count(1)  # never reused, so a key never returns to an earlier version


class DictCheckpointStore(KeyValueCheckpointStore):
    """Runs in a dict of key -> (version, value); stores given one dict share the runs."""

    def __init__(self, data: dict[str, tuple[int, bytes]], **options: Any) -> None:
        super().__init__(**options)
        self.data = data

    async def read(self, key: str) -> tuple[bytes | None, object]:
        version, value = self.data.get(key, (0, None))  # version 0: absent
        return value, version

    async def write(self, key: str, value: bytes, *, version: object) -> bool:
        if self.data.get(key, (0, None))[0] != version:
            return False  # another writer changed the key since it was read
        self.data[key] = (next(VERSIONS), value)
        return True

    async def remove(self, key: str, *, version: object) -> bool:
        if key not in self.data or self.data[key][0] != version:
            return False
        del self.data[key]
        return True

    async def keys(self) -> list[str]:
        return list(self.data)
