"""The notifier's memory in Redis: alert states, the outbox, the notification log and
the rate limits.

Keys (``<app_id>:alerts:`` first):

- ``state:<cycle>``: the cycle's :class:`~slawatch.alerting.escalation.AlertState`
  (kept ``retention_s`` after the cycle ends, so a replay of ``sla-events`` within that
  window sends nothing again; ``OPEN_STATE_TTL_S`` after its last change while open);
- ``wake:<partition>``: sorted set of cycles by the time their state next waits for
  (a delayed step or a repeat), one per ``sla-events`` partition;
- ``outbox:<receiver>``: sorted set of notification ids by the time each may next be
  tried; ``notes:<receiver>``: hash of their bodies (with attempts so far);
- ``log:<notification id>``: the notification log: ``delivered`` or ``dead``, kept
  ``retention_s``; a notification in it is never sent again;
- ``bucket:<receiver>``: the receiver's token bucket; ``dead``: the last 10,000 dead
  letters (JSON, newest first).

A batch of plans is written by one script (atomic, like a transaction): the new states, their wake
times and their notifications land together or not at all. A sender *claims* due
notifications with a script that moves their time a lease ahead (so two notifiers never
hold the same one, and one that dies holding it lets it go when the lease ends), and
skips any already in the log. Times are the notifier's clock, in epoch milliseconds.

Scripts touch keys they build from a prefix: this is for a single Redis (or a primary
with replicas), not Redis Cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from slawatch.alerting.codec import CodecError, decode_state, encode_note, encode_state
from slawatch.alerting.escalation import AlertState, Notification

#: Dead letters kept in ``dead`` (newest first).
MAX_DEAD_LETTERS = 10_000
#: How long the state of a cycle still open is kept after its last change: a cycle
#: open longer without any SLA event is forgotten (its resolve would not be sent).
OPEN_STATE_TTL_S = 90 * 86_400
#: How long a repeat stays in the notification log (the state knows the latest slot;
#: the log only has to outlast a replay of the last day's events).
REPEAT_LOG_S = 86_400

_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
local logged = 0
for _, id in ipairs(ids) do
  if redis.call('EXISTS', ARGV[4] .. id) == 1 then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    logged = logged + 1
  else
    local body = redis.call('HGET', KEYS[2], id)
    if body then
      redis.call('ZADD', KEYS[1], ARGV[3], id)
      table.insert(out, id)
      table.insert(out, body)
    else
      redis.call('ZREM', KEYS[1], id)
    end
  end
end
return {logged, out}
"""

_COMMIT = """
local prefix = ARGV[1]
local ttl = ARGV[2]
local open_ttl = ARGV[3]
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  local cycle, body, open, part, wake = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  if open == '1' then
    redis.call('SET', prefix .. 'state:' .. cycle, body, 'EX', open_ttl)
  else
    redis.call('SET', prefix .. 'state:' .. cycle, body, 'EX', ttl)
  end
  if wake == '' then
    redis.call('ZREM', prefix .. 'wake:' .. part, cycle)
  else
    redis.call('ZADD', prefix .. 'wake:' .. part, wake, cycle)
  end
end
local queued = tonumber(ARGV[i])
i = i + 1
for _ = 1, queued do
  local receiver, id, body, at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  redis.call('HSETNX', prefix .. 'notes:' .. receiver, id, body)
  redis.call('ZADD', prefix .. 'outbox:' .. receiver, 'NX', at, id)
end
return queued
"""

_LEAVE_DIGEST = """
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[1], ARGV[1])
return redis.call('SCARD', KEYS[1])
"""

_TAKE = """
local cap = tonumber(ARGV[3])
local per_ms = tonumber(ARGV[2])
local now = tonumber(ARGV[1])
local tokens = tonumber(redis.call('HGET', KEYS[1], 't') or ARGV[3])
local last = tonumber(redis.call('HGET', KEYS[1], 'at') or ARGV[1])
if now > last then
  tokens = math.min(cap, tokens + (now - last) * per_ms)
  last = now
end
local granted = math.min(tonumber(ARGV[4]), math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', tostring(last))
redis.call('PEXPIRE', KEYS[1], 3600000)
local wait = 0
if tokens < 1 then
  wait = math.ceil((1 - tokens) / per_ms)
end
return {granted, wait}
"""


@dataclass(frozen=True, slots=True)
class PlannedCycle:
    """One cycle's new state and what it sends: a unit of :meth:`AlertStore.commit`."""

    state: AlertState
    partition: int
    notifications: Sequence[Notification]


@dataclass(frozen=True, slots=True)
class Claimed:
    """Notifications a sender now holds (id and stored body) and how many due ones were
    dropped because the log already had them."""

    items: list[tuple[str, bytes]]
    already_logged: int


class AlertStore:
    """The notifier's Redis keys, read and written as described in the module."""

    def __init__(self, client: aioredis.Redis, app_id: str, *, retention_s: int) -> None:
        self.redis = client
        self.prefix = f"{app_id}:alerts:"
        self.retention_s = retention_s
        self._claim = client.register_script(_CLAIM)
        self._commit = client.register_script(_COMMIT)
        self._leave = client.register_script(_LEAVE_DIGEST)
        self._take = client.register_script(_TAKE)

    # --- keys -----------------------------------------------------------------------------

    def state_key(self, cycle_id: str) -> str:
        return f"{self.prefix}state:{cycle_id}"

    def wake_key(self, partition: int) -> str:
        return f"{self.prefix}wake:{partition}"

    def outbox_key(self, receiver: str) -> str:
        return f"{self.prefix}outbox:{receiver}"

    def notes_key(self, receiver: str) -> str:
        return f"{self.prefix}notes:{receiver}"

    def log_key(self, note_id: str) -> str:
        return f"{self.prefix}log:{note_id}"

    # --- states ---------------------------------------------------------------------------

    async def states(self, cycle_ids: Sequence[str]) -> dict[str, AlertState]:
        """The stored state of each cycle that has one (unreadable ones are absent)."""
        if not cycle_ids:
            return {}
        values = await self.redis.mget([self.state_key(c) for c in cycle_ids])
        out = {}
        for cycle_id, value in zip(cycle_ids, values, strict=True):
            if not isinstance(value, bytes):
                continue
            try:
                out[cycle_id] = decode_state(value)
            except CodecError:
                continue
        return out

    async def commit(self, planned: Iterable[PlannedCycle], now_ms: int) -> int:
        """Write states, wake times and notifications at once (one script: all or
        nothing); the number of notifications queued.

        Each notification's time is ``now_ms`` (or when its receiver's hours start) plus
        a thousandth of a millisecond per notification before it in the batch, so the
        outbox hands them out in the order they were planned (equal times would go in
        the order of their ids: a cycle's resolve before its trigger)."""
        states: list[str | bytes | int] = []
        notes: list[str | bytes | int] = []
        cycles = 0
        for p in planned:
            wake = p.state.next_wake_ms
            states += [
                p.state.cycle_id,
                encode_state(p.state),
                1 if p.state.open else 0,
                p.partition,
                "" if wake is None else wake,
            ]
            cycles += 1
            for note in p.notifications:
                at = max(now_ms, note.not_before_ms or 0) + min(len(notes) // 4, 999_999) / 1000
                notes += [note.receiver, note.id, encode_note(note, queued_ms=now_ms), repr(at)]
        if not cycles:
            return 0
        queued = await self._commit(
            args=[
                self.prefix,
                self.retention_s,
                OPEN_STATE_TTL_S,
                cycles,
                *states,
                len(notes) // 4,
                *notes,
            ]
        )
        return int(queued)

    async def due_cycles(self, partition: int, now_ms: int, limit: int) -> list[str]:
        """Cycles of ``partition`` whose wake time has come, earliest first."""
        ids = await self.redis.zrangebyscore(self.wake_key(partition), "-inf", now_ms, 0, limit)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    # --- the outbox -----------------------------------------------------------------------

    async def claim(self, receiver: str, now_ms: int, limit: int, lease_ms: int) -> Claimed:
        logged, flat = await self._claim(
            keys=[self.outbox_key(receiver), self.notes_key(receiver)],
            # Due: up to the end of the millisecond (times carry an order in their fraction).
            args=[f"({now_ms + 1}", limit, now_ms + lease_ms, f"{self.prefix}log:"],
        )
        items = [
            (flat[i].decode() if isinstance(flat[i], bytes) else flat[i], flat[i + 1])
            for i in range(0, len(flat), 2)
        ]
        return Claimed(items, int(logged))

    async def delivered(self, receiver: str, note_ids: Sequence[str]) -> None:
        """Log ``note_ids`` as delivered and take them out of the outbox."""
        await self._settle(receiver, note_ids, "delivered")

    async def dead(self, receiver: str, note_ids: Sequence[str], letters: Sequence[dict]) -> None:
        """Log ``note_ids`` as dead, out of the outbox, with a dead letter each."""
        await self._settle(receiver, note_ids, "dead", letters)

    async def _settle(
        self,
        receiver: str,
        note_ids: Sequence[str],
        outcome: str,
        letters: Sequence[dict] = (),
    ) -> None:
        if not note_ids:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for note_id in note_ids:
                ttl = min(self.retention_s, REPEAT_LOG_S) if "|repeat-" in note_id else None
                pipe.set(self.log_key(note_id), outcome, ex=ttl or self.retention_s)
            pipe.zrem(self.outbox_key(receiver), *note_ids)
            pipe.hdel(self.notes_key(receiver), *note_ids)
            if letters:
                pipe.lpush(f"{self.prefix}dead", *(orjson.dumps(x) for x in letters))
                pipe.ltrim(f"{self.prefix}dead", 0, MAX_DEAD_LETTERS - 1)
            await pipe.execute()

    async def reschedule(
        self, receiver: str, items: Sequence[tuple[str, bytes | None, float]]
    ) -> None:
        """Put claimed notifications back, each to be tried at its time (with its new
        body, e.g. one more attempt counted, when given)."""
        if not items:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            for note_id, body, at_ms in items:
                if body is not None:
                    pipe.hset(self.notes_key(receiver), note_id, body)
                pipe.zadd(self.outbox_key(receiver), {note_id: at_ms}, xx=True)
            await pipe.execute()

    async def waiting(self, receivers: Iterable[str]) -> dict[str, int]:
        """Notifications in each receiver's outbox."""
        names = list(receivers)
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.zcard(self.outbox_key(name))
            counts = await pipe.execute()
        return dict(zip(names, (int(c) for c in counts), strict=True))

    async def renew(self, receiver: str, note_ids: Sequence[str], until_ms: int) -> None:
        """Extend the lease of claimed notifications still held (a long round)."""
        if note_ids:
            await self.redis.zadd(
                self.outbox_key(receiver), dict.fromkeys(note_ids, until_ms), xx=True
            )

    async def waiting_at(self, receiver: str, note_ids: Sequence[str]) -> dict[str, float]:
        """Of ``note_ids``, those still in the receiver's outbox, with their times."""
        if not note_ids:
            return {}
        scores = await self.redis.zmscore(self.outbox_key(receiver), list(note_ids))
        return {i: float(s) for i, s in zip(note_ids, scores, strict=True) if s is not None}

    async def next_due_ms(self, receiver: str) -> int | None:
        """When the receiver's earliest notification may be tried; None when none waits."""
        first = await self.redis.zrange(self.outbox_key(receiver), 0, 0, withscores=True)
        return int(first[0][1]) if first else None

    async def dead_letters(self, limit: int = 100) -> list[dict]:
        raw = await self.redis.lrange(f"{self.prefix}dead", 0, limit - 1)
        return [orjson.loads(x) for x in raw]

    # --- PagerDuty digests ----------------------------------------------------------------

    def _thread_key(self, receiver: str, cycle_id: str) -> str:
        return f"{self.prefix}thread:{receiver}:{cycle_id}"

    def _digest_key(self, receiver: str, key: str) -> str:
        return f"{self.prefix}digest:{receiver}:{key}"

    async def threads(self, receiver: str, cycle_ids: Sequence[str]) -> dict[str, str]:
        """The digest incident each of ``cycle_ids`` went into at ``receiver``, if any."""
        if not cycle_ids:
            return {}
        values = await self.redis.mget([self._thread_key(receiver, c) for c in cycle_ids])
        return {
            c: v.decode() if isinstance(v, bytes) else str(v)
            for c, v in zip(cycle_ids, values, strict=True)
            if v is not None
        }

    async def open_digest(self, receiver: str, key: str, cycle_ids: Sequence[str]) -> None:
        """Record that ``cycle_ids`` went to ``receiver`` in the digest incident ``key``."""
        if not cycle_ids:
            return
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self._digest_key(receiver, key), *cycle_ids)
            pipe.expire(self._digest_key(receiver, key), self.retention_s)
            for cycle_id in cycle_ids:
                pipe.set(self._thread_key(receiver, cycle_id), key, ex=self.retention_s)
            await pipe.execute()

    async def leave_digest(self, receiver: str, key: str, cycle_id: str) -> int:
        """Take ``cycle_id`` (ended) out of the digest ``key``; the cycles still in it."""
        left = await self._leave(
            keys=[self._digest_key(receiver, key), self._thread_key(receiver, cycle_id)],
            args=[cycle_id],
        )
        return int(left)

    # --- rate limits ----------------------------------------------------------------------

    async def take_tokens(
        self, receiver: str, want: int, now_ms: int, rate_per_minute: int, capacity: int
    ) -> tuple[int, int]:
        """Take up to ``want`` tokens from the receiver's bucket: (granted, ms until one
        more token)."""
        granted, wait = await self._take(
            keys=[f"{self.prefix}bucket:{receiver}"],
            args=[now_ms, repr(rate_per_minute / 60_000), capacity, want],
        )
        return int(granted), int(wait)
