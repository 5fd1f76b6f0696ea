"""The presence store: live connections, presence deadlines and chat box snapshots.

Two implementations of one contract — Redis for production (shared by every
process, atomic through Lua) and process memory for the embedded mode. The
contract tests in ``tests/presence/test_store.py`` run against both.

Vocabulary:
* a *connection* is one device's live link (a WebSocket, or a REST client
  heartbeating); it holds its last heartbeat time and a *device* tag that
  groups the connections a logout ends (one browser session, one API token);
* ``present_until`` is the instant an operator stops being present if nothing
  more is heard: ``last heartbeat + hold`` while a connection lives (the
  caller computes ``hold`` with ``presence.rules.presence_hold``), ``close
  time + grace`` after the last one closed, *now* after a logout;
* a *snapshot* is the materialised chat box state of an account, with a
  ``version`` bumped only when its content changes.

Times are server-time POSIX seconds (floats) passed in by the caller, so tests
travel time and every process agrees on one clock source per call.
"""

import asyncio
import contextlib
import json
import threading
import time
import uuid
import weakref
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from functools import cache

import redis
import redis.asyncio
from django.conf import settings
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from chatstatus.metrics import STORE_ERRORS
from chatstatus.redis_ha import RedisTarget, async_client, sync_client


@dataclass(frozen=True)
class Connection:
    conn_id: str
    device: str
    last_heartbeat: float


@dataclass(frozen=True)
class OperatorRef:
    account_id: int
    operator_id: int

    @property
    def member(self) -> str:
        return f"{self.account_id}:{self.operator_id}"

    @classmethod
    def parse(cls, member: str | bytes) -> "OperatorRef":
        text = member.decode() if isinstance(member, bytes) else member
        account_id, operator_id = text.split(":")
        return cls(int(account_id), int(operator_id))


@dataclass(frozen=True)
class SnapshotWrite:
    account_id: int
    body: str  # canonical JSON (``dumps``) without ``version``
    due_at: float | None  # when a schedule next changes a box (None: never)


# A claimed operator stays in the sweep's sorted set, due again this many
# seconds after the claim: if the claimer dies before its database update (a
# worker killed mid-sweep), a later sweep claims them again. The claimer
# releases them once done.
CLAIM_LEASE_SECONDS = 60.0

# The device tag a logout gives to end every device of an operator.
ALL_DEVICES = "*"


class StoreUnavailable(Exception):
    """The presence store could not be reached; callers degrade, never crash."""


def _snapshot_full(body: str, version: int) -> str:
    return body[:-1] + f',"version":{version}}}'


class MemoryStore:
    """Process-memory store for the embedded mode (one process)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._conns: dict[OperatorRef, dict[str, tuple[float, str]]] = {}
            self._until: dict[OperatorRef, float] = {}
            self._snap: dict[int, tuple[str, int, str]] = {}
            self._due: dict[int, float] = {}
            self._resyncs: set[float] = set()
            self._epoch = False
            self._locks: dict[str, tuple[object, float]] = {}
            self._counters: dict[str, tuple[int, float]] = {}
            self._leases: dict[OperatorRef, float] = {}
            self._timers: dict[str, float] = {}
            self._timers_reseeded_at: float | None = None
            self._visitors: dict[str, float] = {}

    # -- presence ---------------------------------------------------------
    def touch(self, *, ref: OperatorRef, conn_id: str, device: str, now: float, present_until: float) -> bool:
        with self._lock:
            self._leases.pop(ref, None)
            previous = self._until.get(ref)
            self._conns.setdefault(ref, {})[conn_id] = (now, device)
            if previous is None or present_until > previous:
                self._until[ref] = present_until
            return previous is None or previous <= now

    async def atouch(self, *, ref: OperatorRef, conn_id: str, device: str, now: float, present_until: float) -> bool:
        return self.touch(ref=ref, conn_id=conn_id, device=device, now=now, present_until=present_until)

    def disconnect(self, *, ref: OperatorRef, conn_id: str, now: float, ttl: float, hold: float, grace: float) -> int:
        with self._lock:
            conns = self._conns.get(ref, {})
            known = conns.pop(conn_id, None) is not None
            # Only a connection still on record starts a grace period: one that a
            # logout or a sweep already ended must not bring the operator back.
            best, live = (now + grace if known else 0.0), 0
            for other, (heartbeat, _device) in list(conns.items()):
                if heartbeat + ttl > now:
                    live += 1
                    best = max(best, heartbeat + hold)
                else:
                    del conns[other]
            if live or (known and ref in self._until):
                self._until[ref] = best
            return live

    def logout(self, *, ref: OperatorRef, device: str, now: float, ttl: float) -> int:
        with self._lock:
            conns = self._conns.get(ref, {})
            for conn_id, (_heartbeat, tag) in list(conns.items()):
                if device in (tag, ALL_DEVICES):
                    del conns[conn_id]
            live = sum(1 for heartbeat, _tag in conns.values() if heartbeat + ttl > now)
            if not live and ref in self._until:
                self._until[ref] = now
            return live

    def connections(self, *, ref: OperatorRef, now: float, ttl: float) -> list[Connection]:
        with self._lock:
            conns = self._conns.get(ref, {})
            return sorted(
                (Connection(conn_id, device, hb) for conn_id, (hb, device) in conns.items() if hb + ttl > now),
                key=lambda conn: conn.conn_id,
            )

    def present_until_map(self, *, account_id: int) -> dict[int, float]:
        return self.present_until_maps(account_ids=[account_id])[account_id]

    def present_until_maps(self, *, account_ids: Collection[int]) -> dict[int, dict[int, float]]:
        with self._lock:
            maps: dict[int, dict[int, float]] = {account_id: {} for account_id in account_ids}
            for ref, until in self._until.items():
                if ref.account_id in maps:
                    maps[ref.account_id][ref.operator_id] = until
            return maps

    def present_among(self, *, refs: Collection[OperatorRef], now: float) -> set[OperatorRef]:
        with self._lock:
            return {ref for ref in refs if self._until.get(ref, 0.0) > now}

    def seed(self, *, ref: OperatorRef, present_until: float) -> None:
        with self._lock:
            if ref not in self._until:
                self._until[ref] = present_until
                self._leases.pop(ref, None)

    def claim_expired(self, *, now: float, limit: int) -> list[OperatorRef]:
        with self._lock:
            due = [(until, ref.member, ref) for ref, until in self._until.items() if until <= now]
            due += [(lease, ref.member, ref) for ref, lease in self._leases.items() if lease <= now]
            claimed = [ref for _score, _member, ref in sorted(due)[:limit]]
            for ref in claimed:
                self._until.pop(ref, None)
                self._conns.pop(ref, None)
                self._leases[ref] = now + CLAIM_LEASE_SECONDS
            return claimed

    def release_claimed(self, *, refs: Collection[OperatorRef], claimed_at: float) -> None:
        with self._lock:
            for ref in refs:
                # Unless a heartbeat (or a later claim) replaced the lease meanwhile.
                if self._leases.get(ref) == claimed_at + CLAIM_LEASE_SECONDS:
                    del self._leases[ref]

    def ensure_epoch(self) -> bool:
        with self._lock:
            fresh = not self._epoch
            self._epoch = True
            return fresh

    # -- snapshots ----------------------------------------------------------
    def snapshot_store(self, *, account_id: int, body: str, due_at: float | None, now: float) -> int | None:
        with self._lock:
            if due_at is None:
                self._due.pop(account_id, None)
            else:
                self._due[account_id] = due_at
            current = self._snap.get(account_id)
            if current is not None and current[0] == body:
                return None
            version = current[1] + 1 if current else int(now * 1000)
            self._snap[account_id] = (body, version, _snapshot_full(body, version))
            return version

    def snapshot_store_many(self, *, writes: list[SnapshotWrite], now: float) -> list[int | None]:
        return [
            self.snapshot_store(account_id=write.account_id, body=write.body, due_at=write.due_at, now=now)
            for write in writes
        ]

    def snapshot_json(self, *, account_id: int) -> str | None:
        with self._lock:
            current = self._snap.get(account_id)
            return current[2] if current else None

    def snapshots_rebase(self, *, now: float) -> int:
        with self._lock:
            for account_id, (body, version, _full) in list(self._snap.items()):
                rebased = max(version + 1, int(now * 1000))
                self._snap[account_id] = (body, rebased, _snapshot_full(body, rebased))
            return len(self._snap)

    def snapshot_jsons(self, *, account_ids: Collection[int]) -> dict[int, str | None]:
        return {account_id: self.snapshot_json(account_id=account_id) for account_id in account_ids}

    async def asnapshot_json(self, *, account_id: int) -> str | None:
        return self.snapshot_json(account_id=account_id)

    def account_drop(self, *, account_id: int) -> None:
        """Forget everything kept for an account (a deleted one)."""
        with self._lock:
            self._snap.pop(account_id, None)
            self._due.pop(account_id, None)
            for refs in (self._until, self._conns, self._leases):
                for ref in [ref for ref in refs if ref.account_id == account_id]:
                    del refs[ref]

    def due_accounts(self, *, now: float, limit: int) -> list[int]:
        with self._lock:
            return sorted(acc for acc, due in self._due.items() if due <= now)[:limit]

    def resync_schedule(self, *, due_at: Collection[float]) -> None:
        with self._lock:
            self._resyncs.update(due_at)

    def resync_claim(self, *, now: float) -> bool:
        with self._lock:
            due = {at for at in self._resyncs if at <= now}
            self._resyncs -= due
            return bool(due)

    # -- counters ---------------------------------------------------------------
    def count(self, key: str, *, now: float, ttl: int) -> int:
        with self._lock:
            if len(self._counters) >= 10_000:
                self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
            value, expires = self._counters.get(key, (0, 0.0))
            if expires <= now:
                value, expires = 0, now + ttl
            self._counters[key] = (value + 1, expires)
            return value + 1

    async def acount(self, key: str, *, now: float, ttl: int) -> int:
        return self.count(key, now=now, ttl=ttl)

    def count_many(self, counters: list[tuple[str, int]], *, now: float) -> list[int]:
        return [self.count(key, now=now, ttl=ttl) for key, ttl in counters]

    async def acount_many(self, counters: list[tuple[str, int]], *, now: float) -> list[int]:
        return self.count_many(counters, now=now)

    # -- locks ----------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, *, timeout: float, blocking: bool = True) -> Iterator[bool]:
        deadline = time.monotonic() + (timeout if blocking else 0)
        while True:
            with self._lock:
                _owner, held_until = self._locks.get(name, (None, 0.0))
                if held_until <= time.monotonic():
                    token = object()
                    self._locks[name] = (token, time.monotonic() + timeout)
                    break
            if time.monotonic() >= deadline:
                yield False
                return
            time.sleep(0.005)
        try:
            yield True
        finally:
            self._release({name: token})

    @contextlib.contextmanager
    def locks(self, names: Collection[str], *, timeout: float) -> Iterator[set[str]]:
        """Take whichever of ``names`` are free, without waiting; yields those taken."""
        held: dict[str, object] = {}
        with self._lock:
            moment = time.monotonic()
            for name in names:
                if self._locks.get(name, (None, 0.0))[1] <= moment:
                    token = object()
                    self._locks[name] = (token, moment + timeout)
                    held[name] = token
        try:
            yield set(held)
        finally:
            self._release(held)

    def _release(self, held: dict[str, object]) -> None:
        with self._lock:
            for name, token in held.items():
                # Past its timeout the lock may belong to someone else by now.
                if self._locks.get(name, (None, 0.0))[0] is token:
                    del self._locks[name]

    def locks_forget(self, *, prefix: str) -> int:
        with self._lock:
            names = [name for name in self._locks if name.startswith(prefix)]
            for name in names:
                del self._locks[name]
            return len(names)

    # -- timers (automatic messages) ------------------------------------------
    def timer_set(self, *, name: str, due_at: float) -> None:
        with self._lock:
            self._timers[name] = due_at

    async def atimer_set(self, *, name: str, due_at: float) -> None:
        self.timer_set(name=name, due_at=due_at)

    async def atimer_cancel(self, *, name: str) -> None:
        self.timer_cancel(name=name)

    def timer_cancel(self, *, name: str) -> None:
        with self._lock:
            self._timers.pop(name, None)

    def timers_claim(self, *, now: float, limit: int, lease: float) -> list[tuple[str, float]]:
        with self._lock:
            due = sorted((at, name) for name, at in self._timers.items() if at <= now)[:limit]
            for _at, name in due:
                self._timers[name] = now + lease
            return [(name, now + lease) for _at, name in due]

    def timers_done(self, *, names: Collection[tuple[str, float]]) -> None:
        """Drop each (name, claimed_until) still leased by that claim."""
        with self._lock:
            for name, claimed_until in names:
                if self._timers.get(name) == claimed_until:
                    del self._timers[name]

    def timers_reseed_due(self, *, now: float, every: float) -> bool:
        with self._lock:
            if self._timers_reseeded_at is not None and self._timers_reseeded_at + every > now:
                return False
            self._timers_reseeded_at = now
            return True

    # -- visitors' live widgets ------------------------------------------------
    def visitors_seen(self, *, digests: Collection[str], now: float, ttl: float) -> None:
        with self._lock:
            for digest in digests:
                self._visitors[digest] = now + ttl

    async def avisitors_seen(self, *, digests: Collection[str], now: float, ttl: float) -> None:
        self.visitors_seen(digests=digests, now=now, ttl=ttl)

    def visitor_live(self, *, digest: str, now: float) -> bool:
        with self._lock:
            return self._visitors.get(digest, 0.0) > now


_TOUCH = """
local prev = tonumber(redis.call('HGET', KEYS[2], ARGV[5]))
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
local new = tonumber(ARGV[4])
redis.call('EXPIREAT', KEYS[1], math.ceil(new) + 60)
if (not prev) or new > prev then
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[4])
  redis.call('ZADD', KEYS[3], new, ARGV[6])
end
if (not prev) or prev <= tonumber(ARGV[2]) then return 1 end
return 0
"""

_DISCONNECT = """
local known = redis.call('HDEL', KEYS[1], ARGV[1]) == 1
local now, ttl, grace, hold = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[7])
local best, live = 0, 0
if known then best = now + grace end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local hb = tonumber(string.match(all[i + 1], '^([^|]+)'))
  if hb + ttl > now then
    live = live + 1
    best = math.max(best, hb + hold)
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
if live > 0 or (known and redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1) then
  redis.call('HSET', KEYS[2], ARGV[5], string.format('%.6f', best))
  redis.call('ZADD', KEYS[3], best, ARGV[6])
end
return live
"""

_LOGOUT = """
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local live = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local hb, device = string.match(all[i + 1], '^([^|]+)|(.*)$')
  if device == ARGV[1] or ARGV[1] == "*" then
    redis.call('HDEL', KEYS[1], all[i])
  elseif tonumber(hb) + ttl > now then
    live = live + 1
  end
end
if live == 0 and redis.call('HEXISTS', KEYS[2], ARGV[4]) == 1 then
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[2])
  redis.call('ZADD', KEYS[3], now, ARGV[5])
end
return live
"""

# Claims expired operators atomically: a heartbeat either lands before (the
# score moved past now, not claimed) or after (a fresh entry), never between.
# A claimed member's score becomes its lease (ARGV[4]).
_CLAIM = """
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(members) do
  redis.call('ZADD', KEYS[1], ARGV[4], member)
  local acc, op = string.match(member, '^(%d+):(%d+)$')
  redis.call('HDEL', ARGV[3] .. ':a:' .. acc .. ':until', op)
  redis.call('DEL', ARGV[3] .. ':a:' .. acc .. ':op:' .. op .. ':conns')
end
return members
"""

# Drops the claimed members whose score is still the claim's lease (a
# heartbeat since then set a score of its own).
_RELEASE = """
for i = 2, #ARGV do
  if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[i])) == tonumber(ARGV[1]) then
    redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return 0
"""

# Which of the given members are present after ARGV[2] (one round trip for a
# sweep's whole batch).
_PRESENT = """
local now, present = tonumber(ARGV[2]), {}
for i = 3, #ARGV do
  local acc, op = string.match(ARGV[i], '^(%d+):(%d+)$')
  local until_ = tonumber(redis.call('HGET', ARGV[1] .. ':a:' .. acc .. ':until', op))
  if until_ and until_ > now then table.insert(present, ARGV[i]) end
end
return present
"""

_TIMERS_CLAIM = """
local names = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, name in ipairs(names) do redis.call('ZADD', KEYS[1], ARGV[3], name) end
return names
"""

_COUNT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

_SEED = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
end
return 0
"""

_SNAPSHOT = """
if ARGV[3] == '' then redis.call('ZREM', KEYS[2], ARGV[2]) else redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2]) end
local body = redis.call('HGET', KEYS[1], 'body')
if body == ARGV[1] then return 0 end
local version = tonumber(redis.call('HGET', KEYS[1], 'version'))
if version then version = version + 1 else version = tonumber(ARGV[4]) end
local full = string.sub(ARGV[1], 1, -2) .. ',"version":' .. string.format('%d', version) .. '}'
redis.call('HSET', KEYS[1], 'body', ARGV[1], 'version', string.format('%d', version), 'full', full)
return version
"""

# Each of KEYS (snapshots) gets the version max(version + 1, ARGV[1]), its body kept.
_REBASE = """
local floor = tonumber(ARGV[1])
local n = 0
for _, key in ipairs(KEYS) do
  local body = redis.call('HGET', key, 'body')
  local version = tonumber(redis.call('HGET', key, 'version'))
  if body and version then
    version = math.max(version + 1, floor)
    local full = string.sub(body, 1, -2) .. ',"version":' .. string.format('%d', version) .. '}'
    redis.call('HSET', key, 'version', string.format('%d', version), 'full', full)
    n = n + 1
  end
end
return n
"""

# Releases the locks of ``locks`` still held with this token (one that timed
# out may be someone else's by now).
_UNLOCK = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""


class _CountedRetry(Retry):
    """The store's retry policy, counting each failed attempt (``chatstatus_store_errors_total``)."""

    def call_with_retry(self, do, fail, *args, **kwargs):
        def counted_fail(*failure: object) -> None:
            STORE_ERRORS.labels(client="sync").inc()
            fail(*failure)

        return super().call_with_retry(do, counted_fail, *args, **kwargs)


class _CountedAsyncRetry(AsyncRetry):
    """``_CountedRetry`` for the asyncio clients."""

    async def call_with_retry(self, do, fail, *args, **kwargs):
        async def counted_fail(*failure: object) -> None:
            STORE_ERRORS.labels(client="async").inc()
            await fail(*failure)

        return await super().call_with_retry(do, counted_fail, *args, **kwargs)


# How long the first widget status read of an account waits for others to share
# its round trip (RedisStore.asnapshot_json).
SNAPSHOT_READ_WINDOW = 0.001


@dataclass(frozen=True)
class _AsyncRedis:
    """A RedisStore's asyncio client for one event loop, with its scripts, and
    the snapshot reads waiting to be sent (account id → their shared answer)."""

    client: "redis.asyncio.Redis"
    touch: object
    count: object
    snapshot_reads: dict = field(default_factory=dict)
    senders: set = field(default_factory=set)


class RedisStore:
    """Redis store shared by every web, worker and beat process."""

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        sentinels: tuple[tuple[str, int], ...] = (),
        sentinel_master: str | None = None,
    ) -> None:
        self.prefix = prefix
        self.url = url
        # One server at ``url``, or the master the sentinels name (each new
        # connection asks them, so after a failover a retry reaches the new one).
        self.target = RedisTarget(url=url, sentinels=sentinels, master=sentinel_master)
        # event loop → its _AsyncRedis: an asyncio client is bound to its loop.
        self._async: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.client = sync_client(
            self.target,
            socket_timeout=5,
            socket_connect_timeout=2,
            health_check_interval=15,
            retry=_CountedRetry(ExponentialBackoff(cap=1, base=0.05), retries=3),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        self._touch = self.client.register_script(_TOUCH)
        self._disconnect = self.client.register_script(_DISCONNECT)
        self._logout = self.client.register_script(_LOGOUT)
        self._claim = self.client.register_script(_CLAIM)
        self._seed = self.client.register_script(_SEED)
        self._snapshot = self.client.register_script(_SNAPSHOT)
        self._rebase = self.client.register_script(_REBASE)
        self._unlock = self.client.register_script(_UNLOCK)
        self._present = self.client.register_script(_PRESENT)
        self._count = self.client.register_script(_COUNT)
        self._release = self.client.register_script(_RELEASE)
        self._timers_claim = self.client.register_script(_TIMERS_CLAIM)

    def _keys(self, ref: OperatorRef) -> list[str]:
        p = self.prefix
        return [f"{p}:a:{ref.account_id}:op:{ref.operator_id}:conns", f"{p}:a:{ref.account_id}:until", f"{p}:until"]

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def reset(self) -> None:
        with self._errors():
            for key in self.client.scan_iter(match=f"{self.prefix}:*", count=1000):
                self.client.delete(key)

    # -- presence ---------------------------------------------------------
    def touch(self, *, ref: OperatorRef, conn_id: str, device: str, now: float, present_until: float) -> bool:
        with self._errors():
            args = [conn_id, repr(now), device, repr(present_until), ref.operator_id, ref.member]
            return bool(self._touch(keys=self._keys(ref), args=args))

    async def atouch(self, *, ref: OperatorRef, conn_id: str, device: str, now: float, present_until: float) -> bool:
        """``touch`` from an event loop, without a hop to a thread: the
        operator sockets' heartbeats, thousands a second per process."""
        args = [conn_id, repr(now), device, repr(present_until), ref.operator_id, ref.member]
        try:
            return bool(await self._async_client().touch(keys=self._keys(ref), args=args))
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def asnapshot_json(self, *, account_id: int) -> str | None:
        """``snapshot_json`` from an event loop (every widget status read).

        Reads of one account share one round trip: the first starts a read that
        goes out ``SNAPSHOT_READ_WINDOW`` later, and every read of that account
        arriving until it goes out gets the same answer. Each caller still gets
        the store as it was after its own call began (the read is sent after
        all of them arrived), at the price of at most a millisecond; the
        thousand readers of a busy account cost one round trip a millisecond
        instead of a thousand."""
        entry = self._async_client()
        answer = entry.snapshot_reads.get(account_id)
        if answer is None:
            answer = asyncio.get_running_loop().create_future()
            # A failure every caller gave up on is not "never retrieved".
            answer.add_done_callback(lambda done: done.cancelled() or done.exception())
            entry.snapshot_reads[account_id] = answer
            sender = asyncio.ensure_future(self._snapshot_read(entry, account_id, answer))
            entry.senders.add(sender)
            sender.add_done_callback(entry.senders.discard)
        # Shielded: a caller that gives up (its client left) leaves the others' answer alone.
        return await asyncio.shield(answer)

    async def _snapshot_read(self, entry: _AsyncRedis, account_id: int, answer: asyncio.Future) -> None:
        def close_batch() -> None:
            # From here on the read is on its way: later callers start the next one.
            if entry.snapshot_reads.get(account_id) is answer:
                del entry.snapshot_reads[account_id]

        try:
            await asyncio.sleep(SNAPSHOT_READ_WINDOW)
            close_batch()
            raw = await entry.client.hget(f"{self.prefix}:a:{account_id}:snap", "full")
        except redis.RedisError as exc:
            answer.set_exception(StoreUnavailable(str(exc)))
        except BaseException as exc:  # cancelled with its loop: its callers fail, none waits forever
            answer.set_exception(StoreUnavailable(repr(exc)))
            raise
        else:
            answer.set_result(raw.decode() if raw is not None else None)
        finally:
            close_batch()

    def _async_client(self) -> "_AsyncRedis":
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            # Bounded: a burst waits for a connection rather than opening hundreds.
            client = async_client(
                self.target,
                max_connections=32,
                timeout=5,
                socket_timeout=5,
                socket_connect_timeout=2,
                health_check_interval=15,
                retry=_CountedAsyncRetry(ExponentialBackoff(cap=1, base=0.05), retries=3),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
            entry = _AsyncRedis(client, client.register_script(_TOUCH), client.register_script(_COUNT))
            self._async[loop] = entry
        return entry

    def disconnect(self, *, ref: OperatorRef, conn_id: str, now: float, ttl: float, hold: float, grace: float) -> int:
        with self._errors():
            args = [conn_id, repr(now), ttl, grace, ref.operator_id, ref.member, hold]
            return int(self._disconnect(keys=self._keys(ref), args=args))

    def logout(self, *, ref: OperatorRef, device: str, now: float, ttl: float) -> int:
        with self._errors():
            args = [device, repr(now), ttl, ref.operator_id, ref.member]
            return int(self._logout(keys=self._keys(ref), args=args))

    def connections(self, *, ref: OperatorRef, now: float, ttl: float) -> list[Connection]:
        with self._errors():
            raw = self.client.hgetall(self._keys(ref)[0])
        result = []
        for conn_id, value in raw.items():
            heartbeat, _, device = value.decode().partition("|")
            if float(heartbeat) + ttl > now:
                result.append(Connection(conn_id.decode(), device, float(heartbeat)))
        return sorted(result, key=lambda conn: conn.conn_id)

    def present_until_map(self, *, account_id: int) -> dict[int, float]:
        return self.present_until_maps(account_ids=[account_id])[account_id]

    def present_until_maps(self, *, account_ids: Collection[int]) -> dict[int, dict[int, float]]:
        ids = list(account_ids)
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for account_id in ids:
                pipe.hgetall(f"{self.prefix}:a:{account_id}:until")
            raws = pipe.execute()
        return {
            account_id: {int(op): float(until) for op, until in raw.items()}
            for account_id, raw in zip(ids, raws, strict=True)
        }

    def present_among(self, *, refs: Collection[OperatorRef], now: float) -> set[OperatorRef]:
        refs = list(refs)
        present: set[OperatorRef] = set()
        with self._errors():
            for start in range(0, len(refs), 10_000):
                chunk = refs[start : start + 10_000]
                members = self._present(args=[self.prefix, repr(now), *(ref.member for ref in chunk)])
                present.update(OperatorRef.parse(member) for member in members)
        return present

    def seed(self, *, ref: OperatorRef, present_until: float) -> None:
        with self._errors():
            keys = self._keys(ref)[1:]
            self._seed(keys=keys, args=[ref.operator_id, repr(present_until), ref.member])

    def claim_expired(self, *, now: float, limit: int) -> list[OperatorRef]:
        args = [repr(now), limit, self.prefix, repr(now + CLAIM_LEASE_SECONDS)]
        with self._errors():
            members = self._claim(keys=[f"{self.prefix}:until"], args=args)
        return [OperatorRef.parse(member) for member in members]

    def release_claimed(self, *, refs: Collection[OperatorRef], claimed_at: float) -> None:
        refs = list(refs)
        with self._errors():
            for start in range(0, len(refs), 10_000):
                members = [ref.member for ref in refs[start : start + 10_000]]
                self._release(keys=[f"{self.prefix}:until"], args=[repr(claimed_at + CLAIM_LEASE_SECONDS), *members])

    def ensure_epoch(self) -> bool:
        with self._errors():
            return bool(self.client.set(f"{self.prefix}:epoch", "1", nx=True))

    # -- snapshots ----------------------------------------------------------
    def snapshot_store(self, *, account_id: int, body: str, due_at: float | None, now: float) -> int | None:
        write = SnapshotWrite(account_id=account_id, body=body, due_at=due_at)
        return self.snapshot_store_many(writes=[write], now=now)[0]

    def snapshot_store_many(self, *, writes: list[SnapshotWrite], now: float) -> list[int | None]:
        p = self.prefix
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for write in writes:
                due = "" if write.due_at is None else repr(write.due_at)
                self._snapshot(
                    keys=[f"{p}:a:{write.account_id}:snap", f"{p}:due"],
                    args=[write.body, write.account_id, due, int(now * 1000)],
                    client=pipe,
                )
            versions = pipe.execute()
        return [int(version) or None for version in versions]

    def snapshots_rebase(self, *, now: float) -> int:
        """Give every snapshot a version above any it may have had: ``max(version
        + 1, now in ms)``, content unchanged. After a failover: a write the old
        master acknowledged but never replicated gave some readers a version
        the new master does not know; its next writes would reuse that number
        for other content, and a reader that keeps the highest version seen
        (widget.js) would ignore them. Versions begin at the moment a snapshot
        is first written, in ms, and rise by one a change: far slower than the
        clock, so ``now`` is above any version written before. Returns how
        many snapshots."""
        p = self.prefix
        with self._errors():
            keys = list(self.client.scan_iter(match=f"{p}:a:*:snap", count=1000))
            return sum(
                int(self._rebase(keys=keys[start : start + 500], args=[int(now * 1000)]))
                for start in range(0, len(keys), 500)
            )

    def snapshot_json(self, *, account_id: int) -> str | None:
        with self._errors():
            raw = self.client.hget(f"{self.prefix}:a:{account_id}:snap", "full")
        return raw.decode() if raw is not None else None

    def snapshot_jsons(self, *, account_ids: Collection[int]) -> dict[int, str | None]:
        ids = list(account_ids)
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for account_id in ids:
                pipe.hget(f"{self.prefix}:a:{account_id}:snap", "full")
            raws = pipe.execute()
        return {account_id: raw and raw.decode() for account_id, raw in zip(ids, raws, strict=True)}

    def account_drop(self, *, account_id: int) -> None:
        """Forget everything kept for an account (a deleted one): its snapshot,
        its schedule deadline, its operators' presence and connections."""
        p = self.prefix
        with self._errors():
            operator_ids = [int(raw) for raw in self.client.hkeys(f"{p}:a:{account_id}:until")]
            conns = list(self.client.scan_iter(match=f"{p}:a:{account_id}:op:*:conns", count=1000))
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(f"{p}:a:{account_id}:snap", f"{p}:a:{account_id}:until", *conns)
            pipe.zrem(f"{p}:due", account_id)
            if operator_ids:
                pipe.zrem(f"{p}:until", *(OperatorRef(account_id, op).member for op in operator_ids))
            pipe.execute()

    def due_accounts(self, *, now: float, limit: int) -> list[int]:
        with self._errors():
            raw = self.client.zrangebyscore(f"{self.prefix}:due", "-inf", repr(now), start=0, num=limit)
        return [int(acc) for acc in raw]

    # Moments when every account's truth is to be published again (a sorted
    # set, scored by when). Removing the due ones is one command, so of two
    # processes checking at once only one gets them.
    def resync_schedule(self, *, due_at: Collection[float]) -> None:
        with self._errors():
            self.client.zadd(f"{self.prefix}:resync", {repr(at): at for at in due_at})

    def resync_claim(self, *, now: float) -> bool:
        with self._errors():
            return bool(self.client.zremrangebyscore(f"{self.prefix}:resync", "-inf", repr(now)))

    # -- counters ---------------------------------------------------------------
    def count(self, key: str, *, now: float, ttl: int) -> int:
        """Add one to counter ``key`` and return it; a new counter lives ``ttl`` seconds."""
        with self._errors():
            return int(self._count(keys=[f"{self.prefix}:n:{key}"], args=[ttl]))

    def count_many(self, counters: list[tuple[str, int]], *, now: float) -> list[int]:
        """``count`` for several ``(key, ttl)`` counters in one round trip."""
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for key, ttl in counters:
                self._count(keys=[f"{self.prefix}:n:{key}"], args=[ttl], client=pipe)
            return [int(n) for n in pipe.execute()]

    async def acount(self, key: str, *, now: float, ttl: int) -> int:
        """``count`` from an event loop (every widget socket's connect)."""
        try:
            return int(await self._async_client().count(keys=[f"{self.prefix}:n:{key}"], args=[ttl]))
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def acount_many(self, counters: list[tuple[str, int]], *, now: float) -> list[int]:
        """``count_many`` from an event loop (a visitor's message served there)."""
        try:
            entry = self._async_client()
            pipe = entry.client.pipeline(transaction=False)
            for key, ttl in counters:
                await entry.count(keys=[f"{self.prefix}:n:{key}"], args=[ttl], client=pipe)
            return [int(n) for n in await pipe.execute()]
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    # -- locks ----------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, name: str, *, timeout: float, blocking: bool = True) -> Iterator[bool]:
        key = f"{self.prefix}:lock:{name}"
        lock = self.client.lock(key, timeout=timeout, blocking=blocking, blocking_timeout=timeout)
        token = uuid.uuid4().hex.encode()
        with self._errors():
            acquired = lock.acquire(token=token)
            if not acquired and self.client.get(key) == token:
                # Our own SET NX whose answer was lost (a stalled Redis, a
                # failover) and that the client's retry then found taken:
                # the lock is ours.
                lock.local.token = token
                acquired = True
        try:
            yield acquired
        finally:
            if acquired:
                with contextlib.suppress(redis.RedisError):
                    lock.release()

    @contextlib.contextmanager
    def locks(self, names: Collection[str], *, timeout: float) -> Iterator[set[str]]:
        """Take whichever of ``names`` are free, without waiting; yields those
        taken. The same keys and tokens as ``lock``: the two exclude each other."""
        names = list(names)
        token = uuid.uuid4().hex
        keys = [f"{self.prefix}:lock:{name}" for name in names]
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, token, nx=True, px=int(timeout * 1000))
            taken = pipe.execute()
        held = [key for key, ok in zip(keys, taken, strict=True) if ok]
        try:
            yield {name for name, ok in zip(names, taken, strict=True) if ok}
        finally:
            if held:
                with contextlib.suppress(redis.RedisError):
                    self._unlock(keys=held, args=[token])

    def locks_forget(self, *, prefix: str) -> int:
        """Drop every lock whose name starts with ``prefix``, held or not; how
        many there were. For locks that may have lost their holder's release:
        after a failover, a lock taken on the old master (and replicated) whose
        release went to the dead one would be held to its timeout."""
        with self._errors():
            keys = list(self.client.scan_iter(match=f"{self.prefix}:lock:{prefix}*", count=1000))
            for start in range(0, len(keys), 1000):
                self.client.unlink(*keys[start : start + 1000])
        return len(keys)

    # -- timers (automatic messages) ------------------------------------------
    # One sorted set of named timers (score: when due). A claim moves a due
    # timer's score to the end of its lease: a worker that dies before
    # ``timers_done`` leaves it to be claimed again once the lease is over.
    def timer_set(self, *, name: str, due_at: float) -> None:
        with self._errors():
            self.client.zadd(f"{self.prefix}:timers", {name: due_at})

    async def atimer_set(self, *, name: str, due_at: float) -> None:
        try:
            await self._async_client().client.zadd(f"{self.prefix}:timers", {name: due_at})
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def atimer_cancel(self, *, name: str) -> None:
        try:
            await self._async_client().client.zrem(f"{self.prefix}:timers", name)
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def timer_cancel(self, *, name: str) -> None:
        with self._errors():
            self.client.zrem(f"{self.prefix}:timers", name)

    def timers_claim(self, *, now: float, limit: int, lease: float) -> list[tuple[str, float]]:
        with self._errors():
            names = self._timers_claim(keys=[f"{self.prefix}:timers"], args=[repr(now), limit, repr(now + lease)])
        return [(name.decode() if isinstance(name, bytes) else name, now + lease) for name in names]

    def timers_done(self, *, names: Collection[tuple[str, float]]) -> None:
        """Drop each (name, claimed_until) still leased by that claim (a
        timer set again since keeps its new moment); one pipeline."""
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for name, claimed_until in names:
                self._release(keys=[f"{self.prefix}:timers"], args=[repr(claimed_until), name], client=pipe)
            pipe.execute()

    def timers_reseed_due(self, *, now: float, every: float) -> bool:
        """True at most once per ``every`` seconds across processes, and at once
        after the store lost its data (a Redis restart): time to rebuild the
        timers from the database."""
        with self._errors():
            return bool(self.client.set(f"{self.prefix}:timers:reseeded", repr(now), nx=True, px=int(every * 1000)))

    # -- visitors' live widgets ------------------------------------------------
    # A key per visitor with a live widget socket somewhere, refreshed by the
    # widget hub of each process while the socket lasts.
    def visitors_seen(self, *, digests: Collection[str], now: float, ttl: float) -> None:
        with self._errors():
            pipe = self.client.pipeline(transaction=False)
            for digest in digests:
                pipe.set(f"{self.prefix}:visitor:{digest}", "1", px=int(ttl * 1000))
            pipe.execute()

    async def avisitors_seen(self, *, digests: Collection[str], now: float, ttl: float) -> None:
        try:
            pipe = self._async_client().client.pipeline(transaction=False)
            for digest in digests:
                pipe.set(f"{self.prefix}:visitor:{digest}", "1", px=int(ttl * 1000))
            await pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def visitor_live(self, *, digest: str, now: float) -> bool:
        with self._errors():
            return bool(self.client.exists(f"{self.prefix}:visitor:{digest}"))


PresenceStore = MemoryStore | RedisStore


@cache
def get_store() -> PresenceStore:
    if settings.REDIS_URL:
        return RedisStore(
            settings.REDIS_URL,
            settings.REDIS_PREFIX,
            sentinels=getattr(settings, "REDIS_SENTINELS", ()),
            sentinel_master=getattr(settings, "REDIS_SENTINEL_MASTER", None),
        )
    return MemoryStore()


def dumps(data: object) -> str:
    """Canonical JSON, so equal snapshots compare equal as strings."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
