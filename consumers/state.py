"""Redis checkpoint store: per partition, the engine snapshot and the next offset, written atomically.

Keys (one Redis Cluster slot per partition thanks to the ``{...}`` hash tag, no TTL)::

    tapewatch:{<group>:<topic>:<partition>}:state    engine snapshot of the partition's instruments
    tapewatch:{<group>:<topic>:<partition>}:offset   next Kafka offset to read (decimal)
    tapewatch:{<group>:<topic>:<partition>}:epoch    fencing token of the current owner
    tapewatch:{<group>:<topic>:<partition>}:meta     JSON: wall-clock "time", writer "token", and the writer's extras

Fencing: a consumer that is assigned a partition calls :meth:`CheckpointStore.claim`, which
increments the epoch and returns it as the owner's token together with the stored checkpoint
(one Lua script, atomic). :meth:`CheckpointStore.write` runs a Lua script that refuses to write
when the stored epoch is greater than the writer's token, so a zombie that lost the partition
cannot overwrite the new owner's state.

Example
-------
>>> store = CheckpointStore(redis_client, group="tapewatch", topic="ticks")  # doctest: +SKIP
>>> claim = store.claim(0)                                                   # doctest: +SKIP
>>> store.write(0, claim.token, engine.snapshot(names), next_offset)        # doctest: +SKIP
<WriteResult.OK: 1>
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Iterable, Mapping

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from signals.errors import ConfigError, StateError

KEY_PREFIX = "tapewatch"

# KEYS: epoch, state, offset, meta. Returns {token, state, offset, meta} (false where absent).
_CLAIM = """
local token = redis.call('INCR', KEYS[1])
return {token, redis.call('GET', KEYS[2]), redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4])}
"""

# KEYS: epoch, state, offset, meta; ARGV: token, state, offset, meta.
# Returns 0 = refused (a newer owner holds the partition), 1 = written,
# 2 = written but the epoch key was missing (the store lost its data, e.g. a Redis restart
# without persistence): the caller must rewrite every partition it owns.
_WRITE = """
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
local token = tonumber(ARGV[1])
if stored > token then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('SET', KEYS[4], ARGV[4])
if stored == 0 then return 2 end
return 1
"""


class WriteResult(enum.IntEnum):
    """Outcome of a checkpoint write."""

    FENCED = 0      #: refused: a newer owner claimed the partition; drop it
    OK = 1          #: written
    STORE_RESET = 2  #: written, but the store had lost its data: rewrite every owned partition


@dataclass(frozen=True, slots=True)
class Claim:
    """What :meth:`CheckpointStore.claim` returns: the owner's token and the stored checkpoint.

    ``state`` and ``offset`` are None (``meta`` empty) when the partition was never checkpointed.
    """

    partition: int
    token: int
    state: bytes | None
    offset: int | None
    meta: Mapping


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A stored checkpoint as read by :meth:`CheckpointStore.read` (no claim)."""

    partition: int
    state: bytes
    offset: int
    epoch: int
    meta: Mapping


def connect(url: str, *, timeout: float = 5.0) -> redis.Redis:
    """A Redis client for ``url`` with bounded timeouts and one immediate retry (a stale pooled
    connection after a Redis restart); longer outages are retried by the caller with backoff.

    Raises
    ------
    ConfigError
        If ``url`` is not a ``redis://``, ``rediss://`` or ``unix://`` URL.
    """
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"--redis-url {url!r} must look like redis://host:6379/0 (or rediss://, unix://)")
    try:
        return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                    retry=Retry(NoBackoff(), 1), health_check_interval=30)
    except ValueError as e:
        raise ConfigError(f"--redis-url {url!r} is invalid: {e}") from None


class CheckpointStore:
    """Checkpoints of one consumer group on one topic.

    Parameters
    ----------
    client
        A ``redis.Redis`` client (see :func:`connect`).
    group
        Kafka consumer group id.
    topic
        Tick topic name.

    Redis errors (``redis.RedisError``: connection refused, timeout, ...) propagate; the
    service retries them with backoff.
    """

    def __init__(self, client: redis.Redis, *, group: str, topic: str):
        if not group or not topic:
            raise ConfigError("checkpoint store needs a non-empty group id and topic")
        for name, v in (("group id", group), ("topic", topic)):
            if any(c in v for c in "{}*?[]"):
                raise ConfigError(f"{name} {v!r} must not contain any of {{ }} * ? [ ] (used in Redis key patterns)")
        self.client = client
        self.group = group
        self.topic = topic
        self._claim = client.register_script(_CLAIM)
        self._write = client.register_script(_WRITE)

    def keys(self, partition: int) -> list[str]:
        """``[epoch, state, offset, meta]`` keys of ``partition`` (all in one cluster slot)."""
        base = f"{KEY_PREFIX}:{{{self.group}:{self.topic}:{int(partition)}}}"
        return [f"{base}:epoch", f"{base}:state", f"{base}:offset", f"{base}:meta"]

    def claim(self, partition: int) -> Claim:
        """Take ownership of ``partition``: bump its epoch and read its checkpoint, atomically."""
        token, state, offset, meta = self._claim(keys=self.keys(partition))
        return Claim(partition, int(token), state, None if offset is None else int(offset),
                     self._meta(partition, meta))

    def write(self, partition: int, token: int, state: bytes, offset: int, meta: Mapping | None = None) -> WriteResult:
        """Write the snapshot and next offset of ``partition`` in one atomic step, unless fenced."""
        return self.write_many({partition: (token, state, offset, meta or {})})[partition]

    def write_many(self, items: Mapping[int, tuple[int, bytes, int, Mapping]]) -> dict[int, WriteResult]:
        """Write several partitions in one round trip (each partition atomically).

        ``items`` maps partition -> ``(token, state, next_offset, meta)``; ``meta`` is a JSON-ready
        mapping stored beside the state (``time`` and ``token`` are added).
        """
        if not items:
            return {}
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for p, (token, state, offset, meta) in items.items():
            if offset < 0:
                raise ValueError(f"next offset of partition {p} must be >= 0, got {offset}")
            blob = orjson.dumps({**meta, "time": now, "token": int(token)})
            self._write(keys=self.keys(p), args=[int(token), state, int(offset), blob], client=pipe)
        results = pipe.execute()
        return {p: WriteResult(int(r)) for p, r in zip(items, results)}

    def read(self, partition: int) -> Checkpoint | None:
        """The stored checkpoint of ``partition`` without claiming it (for ``tapewatch status``)."""
        epoch, state, offset, meta = self.client.mget(self.keys(partition))
        if state is None or offset is None:
            return None
        return Checkpoint(partition, state, int(offset), int(epoch or 0), self._meta(partition, meta))

    def _meta(self, partition: int, raw: bytes | None) -> dict:
        try:
            return orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise StateError(f"checkpoint meta of partition {partition} is not JSON; delete {self.keys(partition)[3]}") from None

    def partitions(self) -> list[int]:
        """Partitions that have a stored checkpoint, sorted."""
        pattern = f"{KEY_PREFIX}:{{{self.group}:{self.topic}:*}}:state"
        found = set()
        for key in self.client.scan_iter(match=pattern, count=1000):
            inner = key.decode().split("{", 1)[1].rsplit("}", 1)[0]
            tail = inner.rsplit(":", 1)[1]
            if tail.isdigit():
                found.add(int(tail))
        return sorted(found)

    def read_all(self, partitions: Iterable[int] | None = None) -> list[Checkpoint]:
        """Stored checkpoints of ``partitions`` (default: all that exist)."""
        parts = self.partitions() if partitions is None else partitions
        return [c for c in (self.read(p) for p in parts) if c is not None]
