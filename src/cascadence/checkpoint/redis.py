"""`RedisCheckpointStore`: checkpoints in Redis, shared by every replica that can reach it.

Every write is one Lua script, so Redis runs it atomically: two processes acquiring one run
cannot both win, and a step is appended together with its index. Keys, under `prefix`:

- `{prefix}run:{run_id}`: a hash with the run's fields (serialized values as bytes);
- `{prefix}steps:{run_id}`: a hash from step key to `"{index}:{created_at}:{payload}"`;
- `{prefix}runs`: a sorted set of run ids by creation time (for `list_runs`);
- `{prefix}finished`: a sorted set of finished run ids by last update (for `expire`).

Timestamps come from the store's clock and travel as strings, so Lua never rounds them.
Requires the `redis` package (`pip install cascadence[redis]`), imported on first use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from cascadence.checkpoint import serde
from cascadence.checkpoint.base import (
    FINISHED,
    BaseCheckpointStore,
    RunRecord,
    RunStatus,
    StepRecord,
    check_acquire_args,
    check_age,
    check_key,
    check_lease,
    check_writable,
    make_record,
    mismatch_error,
    take_over_or_raise,
)
from cascadence.errors import CheckpointError, RunLockedError
from cascadence.runtime.clock import Clock
from cascadence.runtime.redis_client import blocking_client

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisCheckpointStore"]

T = TypeVar("T")

# KEYS: run, runs, finished, steps. ARGV: run_id, owner, now, lease expiry, kind, name, meta,
# whether meta was given, a dead owner whose unexpired lease may be taken over (or '').
_ACQUIRE = """
local run, st = KEYS[1], redis.call('HGET', KEYS[1], 'status')
if not st then
  redis.call('HSET', run, 'kind', ARGV[5], 'name', ARGV[6], 'status', 'running',
    'owner', ARGV[2], 'lease', ARGV[4], 'created', ARGV[3], 'updated', ARGV[3], 'next', 0,
    'meta', ARGV[7])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  return {'new', redis.call('HGETALL', run), {}}
end
local info = redis.call('HMGET', run, 'kind', 'name', 'owner', 'lease')
if info[1] ~= ARGV[5] or info[2] ~= ARGV[6] then return {'mismatch', info[1], info[2]} end
if st == 'running' and info[3] and info[3] ~= ARGV[2] and info[3] ~= ARGV[9] and info[4]
    and tonumber(info[4]) > tonumber(ARGV[3]) then
  return {'locked', info[3], info[4]}
end
if st ~= 'completed' then
  redis.call('HSET', run, 'status', 'running', 'owner', ARGV[2], 'lease', ARGV[4],
    'updated', ARGV[3])
  redis.call('HDEL', run, 'error')
  if ARGV[8] == '1' then redis.call('HSET', run, 'meta', ARGV[7]) end
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return {st, redis.call('HGETALL', run), redis.call('HGETALL', KEYS[4])}
"""

# KEYS: run, steps. ARGV: owner, now, key, payload.
_SAVE_STEP = """
local info = redis.call('HMGET', KEYS[1], 'status', 'owner', 'lease')
if info[1] ~= 'running' or info[2] ~= ARGV[1] then
  return {'refused', info[1] or '', info[2] or '', info[3] or ''}
end
local idx = redis.call('HINCRBY', KEYS[1], 'next', 1) - 1
redis.call('HSET', KEYS[1], 'updated', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], idx .. ':' .. ARGV[2] .. ':' .. ARGV[4])
return {'ok'}
"""

# KEYS: run, finished. ARGV: owner, now, op, value, lease expiry, run_id.
_UPDATE = """
local info = redis.call('HMGET', KEYS[1], 'status', 'owner', 'lease')
if info[1] ~= 'running' or info[2] ~= ARGV[1] then
  return {'refused', info[1] or '', info[2] or '', info[3] or ''}
end
local op = ARGV[3]
if op == 'renew' then
  redis.call('HSET', KEYS[1], 'lease', ARGV[5], 'updated', ARGV[2])
elseif op == 'state' then
  redis.call('HSET', KEYS[1], 'state', ARGV[4], 'updated', ARGV[2])
else
  local field = op == 'completed' and 'result' or 'error'
  redis.call('HSET', KEYS[1], 'status', op, field, ARGV[4], 'updated', ARGV[2])
  redis.call('HDEL', KEYS[1], 'owner', 'lease')
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
end
return {'ok'}
"""

# KEYS: run. ARGV: owner, now.
_RELEASE = """
local info = redis.call('HMGET', KEYS[1], 'status', 'owner')
if info[1] == 'running' and info[2] == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'owner', 'lease')
  redis.call('HSET', KEYS[1], 'updated', ARGV[2])
end
return 0
"""

# KEYS: run, steps, runs, finished. ARGV: run_id.
_DELETE = """
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
return n
"""

# KEYS: runs, finished. ARGV: prefix, cutoff, statuses... Finished runs are found through the
# `finished` set; RUNNING ones only through `runs` (scored by creation, which precedes any update).
_EXPIRE = """
local wanted = {}
for i = 3, #ARGV do wanted[ARGV[i]] = true end
local source = wanted['running'] and KEYS[1] or KEYS[2]
local ids = redis.call('ZRANGEBYSCORE', source, '-inf', '(' .. ARGV[2])
local cutoff, count = tonumber(ARGV[2]), 0
for _, id in ipairs(ids) do
  local run = ARGV[1] .. 'run:' .. id
  local info = redis.call('HMGET', run, 'status', 'updated')
  if not info[1] then
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
  elseif wanted[info[1]] and tonumber(info[2]) < cutoff then
    redis.call('DEL', run, ARGV[1] .. 'steps:' .. id)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', KEYS[2], id)
    count = count + 1
  end
end
return count
"""

_FIELDS = (b"kind", b"name", b"status", b"owner", b"lease", b"created", b"updated",
           b"result", b"error", b"meta", b"state")  # fmt: skip


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _row(run_id: str, values: list[Any]) -> tuple[Any, ...]:
    """Turn hash values (in `_FIELDS` order) into the row `make_record` reads."""
    kind, name, status, owner, lease, created, updated, result, error, meta, state = values
    return (
        run_id, kind.decode(), name.decode(), status.decode(), _text(owner),
        None if lease is None else float(lease), float(created), float(updated),
        result, _text(error), meta, state,
    )  # fmt: skip


def _hash_row(run_id: str, flat: list[bytes]) -> tuple[Any, ...]:
    fields = dict(zip(flat[::2], flat[1::2]))
    return _row(run_id, [fields.get(f) for f in _FIELDS])


def _steps(run_id: str, flat: list[bytes] | dict[bytes, bytes]) -> list[StepRecord]:
    items = flat.items() if isinstance(flat, dict) else zip(flat[::2], flat[1::2])
    out = []
    loads = serde.loads
    for key, value in items:
        idx, created, payload = value.split(b":", 2)
        out.append(StepRecord(run_id, key.decode(), int(idx), loads(payload), float(created)))
    out.sort(key=lambda s: s.index)
    return out


class RedisCheckpointStore(BaseCheckpointStore):
    """Checkpoints in Redis.

    Args:
        url: A `redis://` or `rediss://` URL (database number in the path).
        prefix: Prepended to every key, so several applications can share one database.
        clock: Source of wall-clock time for leases and timestamps.
        client: An existing `redis.asyncio.Redis` (binary responses) to use instead of `url`;
            the store does not close it.
        **client_options: Passed to `redis.asyncio.BlockingConnectionPool.from_url`. The pool
            holds at most `max_connections` (default 100) connections; a call made while all
            are busy waits for one, up to `timeout` seconds (default 30), rather than failing,
            so any number of concurrent runs can share one store.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "cascadence:",
        clock: Clock | None = None,
        client: Redis | None = None,
        **client_options: Any,
    ) -> None:
        super().__init__(clock)
        self.url = url
        self.prefix = prefix
        self._options = client_options
        self._client = client
        self._owns_client = client is None
        self._scripts: dict[str, AsyncScript] = {}
        self._runs_key = f"{prefix}runs"
        self._finished_key = f"{prefix}finished"

    def __repr__(self) -> str:
        return f"RedisCheckpointStore({self.url!r}, prefix={self.prefix!r})"

    def _redis(self) -> Redis:
        client = self._client
        if client is None:
            client = self._client = blocking_client(self.url, **self._options)
        return client

    def _script(self, source: str) -> AsyncScript:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._redis().register_script(source)
        return script

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        from redis.exceptions import RedisError

        try:
            return await make()
        except (RedisError, OSError) as exc:
            raise CheckpointError(f"Redis checkpoint store {self.url} failed: {exc}") from exc

    async def _eval(self, source: str, keys: list[str], args: list[Any]) -> Any:
        script = self._script(source)
        return await self._call(lambda: script(keys=keys, args=args))

    def _run_key(self, run_id: str) -> str:
        return f"{self.prefix}run:{run_id}"

    def _steps_key(self, run_id: str) -> str:
        return f"{self.prefix}steps:{run_id}"

    async def close(self) -> None:
        """Close the connection pool (unless the client was passed in)."""
        client, self._client = self._client, None
        self._scripts.clear()
        if client is not None and self._owns_client:
            await client.aclose()

    # ------------------------------------------------------------------ writes

    async def acquire(
        self,
        run_id: str,
        *,
        owner: str,
        lease_seconds: float,
        kind: str,
        name: str,
        meta: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Create or take over a run (see `CheckpointStore.acquire`)."""
        check_acquire_args(run_id, owner, lease_seconds, kind, name)
        meta_bytes = b"{}" if meta is None else serde.dumps(meta, root="meta")
        keys = [self._run_key(run_id), self._runs_key, self._finished_key,
                self._steps_key(run_id)]  # fmt: skip
        dead = ""  # the holder found dead on the previous attempt, replaced only if still there
        while True:
            now = self.clock.time()
            reply = await self._eval(
                _ACQUIRE,
                keys,
                [run_id, owner, repr(now), repr(now + lease_seconds), kind, name, meta_bytes,
                 "0" if meta is None else "1", dead],
            )  # fmt: skip
            outcome = reply[0]
            if outcome == b"mismatch":
                raise mismatch_error(run_id, kind, name, reply[1].decode(), reply[2].decode())
            if outcome != b"locked":
                return make_record(_hash_row(run_id, reply[1]), _steps(run_id, reply[2]))
            holder, expires = reply[1].decode(), float(reply[2])
            if holder == dead:  # pragma: no cover - the script takes a dead holder's run
                raise RunLockedError(run_id, holder, expires)
            take_over_or_raise(run_id, holder, expires)
            dead = holder

    def _refused(self, run_id: str, owner: str, reply: list[bytes], action: str) -> None:
        status, current, lease = (v.decode() for v in reply[1:4])
        check_writable(
            run_id, RunStatus(status) if status else None, current or None, owner,
            float(lease) if lease else None, action,
        )  # fmt: skip

    async def _update(
        self, run_id: str, owner: str, op: str, value: Any, expires: str, action: str
    ) -> None:
        reply = await self._eval(
            _UPDATE,
            [self._run_key(run_id), self._finished_key],
            [owner, repr(self.clock.time()), op, value, expires, run_id],
        )
        if reply[0] != b"ok":
            self._refused(run_id, owner, reply, action)

    async def renew(self, run_id: str, *, owner: str, lease_seconds: float) -> None:
        """Extend the lease (see `CheckpointStore.renew`)."""
        check_lease(lease_seconds)
        expires = repr(self.clock.time() + lease_seconds)
        await self._update(run_id, owner, "renew", b"", expires, "renew the lease")

    async def save_step(self, run_id: str, key: str, payload: Any, *, owner: str) -> None:
        """Append a finished step (see `CheckpointStore.save_step`)."""
        check_key(key)
        data = serde.dumps(payload)
        reply = await self._eval(
            _SAVE_STEP,
            [self._run_key(run_id), self._steps_key(run_id)],
            [owner, repr(self.clock.time()), key, data],
        )
        if reply[0] != b"ok":
            self._refused(run_id, owner, reply, f"save step {key!r}")

    async def save_state(self, run_id: str, state: Any, *, owner: str) -> None:
        """Replace the state snapshot (see `CheckpointStore.save_state`)."""
        data = serde.dumps(state, root="state")
        await self._update(run_id, owner, "state", data, "", "save state")

    async def complete(self, run_id: str, result: Any, *, owner: str) -> None:
        """Finish the run successfully (see `CheckpointStore.complete`)."""
        data = serde.dumps(result, root="result")
        await self._update(run_id, owner, "completed", data, "", "complete the run")

    async def fail(self, run_id: str, error: str, *, owner: str) -> None:
        """Finish the run with an error (see `CheckpointStore.fail`)."""
        await self._update(run_id, owner, "failed", str(error), "", "fail the run")

    async def release(self, run_id: str, *, owner: str) -> None:
        """Give up the lease (see `CheckpointStore.release`)."""
        await self._eval(_RELEASE, [self._run_key(run_id)], [owner, repr(self.clock.time())])

    # ------------------------------------------------------------------ reads

    async def load(self, run_id: str) -> RunRecord | None:
        """Return the run with its steps, or None."""
        client = self._redis()

        async def fetch() -> list[Any]:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hmget(self._run_key(run_id), list(_FIELDS))
                pipe.hgetall(self._steps_key(run_id))
                return await pipe.execute()

        values, steps = await self._call(fetch)
        if values[0] is None:
            return None
        return make_record(_row(run_id, values), _steps(run_id, steps))

    async def list_runs(
        self, *, status: RunStatus | None = None, name: str | None = None, limit: int = 100
    ) -> list[RunRecord]:
        """Return runs without steps, newest first."""
        client = self._redis()
        want_status = None if status is None else RunStatus(status).value.encode()
        want_name = None if name is None else name.encode()
        out: list[RunRecord] = []
        start, chunk = 0, max(limit, 50)
        while len(out) < limit:

            async def page(first: int = start) -> list[bytes]:
                return await client.zrevrange(  # type: ignore[return-value]
                    self._runs_key, first, first + chunk - 1
                )

            ids = await self._call(page)
            if not ids:
                break

            async def fetch(batch: list[bytes] = ids) -> list[Any]:
                async with client.pipeline(transaction=False) as pipe:
                    for rid in batch:
                        pipe.hmget(self._run_key(rid.decode()), list(_FIELDS))
                    return await pipe.execute()

            for rid, values in zip(ids, await self._call(fetch)):
                if values[0] is None:
                    continue
                if (want_status is None or values[2] == want_status) and (
                    want_name is None or values[1] == want_name
                ):
                    out.append(make_record(_row(rid.decode(), values)))
                    if len(out) >= limit:
                        break
            start += chunk
        return out

    async def history(self, run_id: str) -> list[StepRecord]:
        """Return the run's steps ordered by index."""
        client = self._redis()
        flat: dict[bytes, bytes] = await self._call(
            lambda: client.hgetall(self._steps_key(run_id))  # type: ignore[arg-type,return-value]
        )
        return _steps(run_id, flat)

    async def delete(self, run_id: str) -> bool:
        """Delete a run; return whether it existed."""
        n = await self._eval(
            _DELETE,
            [self._run_key(run_id), self._steps_key(run_id), self._runs_key, self._finished_key],
            [run_id],
        )
        return bool(n)

    async def expire(
        self, *, older_than_seconds: float, statuses: Iterable[RunStatus] = FINISHED
    ) -> int:
        """Delete finished runs not updated for `older_than_seconds`."""
        older_than_seconds = check_age(older_than_seconds)
        wanted = sorted({RunStatus(s).value for s in statuses})
        if not wanted:
            return 0
        cutoff = repr(self.clock.time() - older_than_seconds)
        n = await self._eval(
            _EXPIRE, [self._runs_key, self._finished_key], [self.prefix, cutoff, *wanted]
        )
        return int(n)
