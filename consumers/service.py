"""``tapewatch run``: the Kafka consumer service, with engine state checkpointed to Redis.

The service runs the same :class:`~signals.engine.Engine` as replay on the batches a consumer
group delivers from the tick topic. Redis holds, per partition, the engine snapshot of the
partition's instruments and the next offset to read, written in one atomic step with a fencing
token (:mod:`consumers.state`); it is the source of truth for where to resume. Offsets are also
committed to Kafka after each checkpoint, only so that lag tools work.

The exact checkpoint sequence and what happens after each kind of failure: docs/recovery.md.

Threads: everything runs on the thread that calls :meth:`Service.run`, except the rebalance
callbacks, which kafka-python 3 runs on its network thread while ``poll()`` waits, and the
metrics exporter, which reads copies through ``engine.view()`` (the engine locks internally).

Example
-------
>>> svc = Service(ServiceConfig(kafka={"bootstrap_servers": ["127.0.0.1:9092"]},
...                             redis_url="redis://127.0.0.1:6379/0"))   # doctest: +SKIP
>>> threading.Thread(target=svc.run).start(); ...; svc.stop()          # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
import orjson
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError, OffsetOutOfRangeError
from kafka.structs import OffsetAndMetadata

from signals.config import EngineConfig, load_config
from signals.engine import Engine, Transition, warm_up
from signals.errors import ConfigError, StateError, TapewatchError

from . import wire
from .deadletter import DeadLetterQueue
from .kafka_options import CONSUMER_TUNING, PRODUCER_TUNING, add_kafka_options, kafka_config
from .metrics import Health, start_exporter
from .options import add_option, positive
from .state import CheckpointStore, Claim, WriteResult, connect

log = logging.getLogger(__name__)

POLICIES = ("fail", "earliest", "latest")
# linger 0: a transition goes out at once (alerts are few; records that pile up while a request is
# in flight still travel together in the next one)
ALERT_PRODUCER = {"enable_idempotence": False, "acks": "all", "max_in_flight_requests_per_connection": 1,
                  "linger_ms": 0}
POLL_MS = 200                   # longest wait in one poll
# kafka-python 3.0 sleeps retry_backoff_ms (100 ms) inside poll() when it finds no buffered records
# and no fetch in flight; a fetch response that completes while poll() sets up its wait hits that
# path and the buffered ticks wait 100 ms (a tenth of the polls at 100k ticks/s). Polling in short
# slices caps that sleep at the slice (only while partitions are owned: see _poll_once).
POLL_SLICE_MS = 5
BACKOFF_MIN, BACKOFF_MAX = 0.2, 10.0   # Redis / broker retry backoff, seconds
FLUSH_TIMEOUT = 10.0            # producer flush before a checkpoint, seconds
REVOKE_FLUSH_TIMEOUT = 2.0      # the same inside a revoke callback (it blocks heartbeats)
MISSING_PARTITION_REJOIN = 3    # lookups that find an assigned partition missing before rejoining the group
FINAL_CHECKPOINT_TIMEOUT = 30.0  # how long shutdown keeps retrying the last checkpoint
REDIS_START_TIMEOUT = 30.0      # how long the start waits for Redis to accept connections
LAG_REFRESH_SECONDS = 5.0       # the lag of owned partitions is also looked up this often
GC_THRESHOLDS = (5_000, 10, 10)   # see tune_gc


class ServiceError(TapewatchError):
    """The service cannot go on safely; the message says why and what to do."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceConfig:
    """Everything ``tapewatch run`` needs, frozen at start.

    ``kafka`` holds kafka-python connection keyword arguments (see
    :func:`consumers.kafka_options.kafka_config`); the consumer and producer throughput tuning is
    added on top. ``metrics_port=None`` runs without the ``/metrics`` endpoint, ``0`` picks a free port.
    """

    kafka: Mapping[str, Any] = field(default_factory=lambda: {"bootstrap_servers": ["127.0.0.1:9092"]})
    topic: str = "ticks"
    group_id: str = "tapewatch"
    redis_url: str = "redis://127.0.0.1:6379/0"
    checkpoint_every_ticks: int = 200_000
    checkpoint_every_seconds: float = 10.0
    max_uncheckpointed_ticks: int = 2_000_000
    offset_reset_policy: str = "earliest"
    alerts_topic: str = "tapewatch.alerts"
    deadletter_topic: str = "tapewatch.deadletter"
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = 9108
    exit_when_idle: float | None = None
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    engine: EngineConfig = field(default_factory=EngineConfig)

    def __post_init__(self):
        object.__setattr__(self, "kafka", MappingProxyType(dict(self.kafka)))
        for name in ("topic", "group_id", "alerts_topic", "deadletter_topic"):
            if not getattr(self, name):
                raise ConfigError(f"--{name.replace('_', '-')} must not be empty")
        if self.topic in (self.alerts_topic, self.deadletter_topic):
            raise ConfigError(f"--topic {self.topic!r} must differ from the alerts and dead-letter topics")
        if self.offset_reset_policy not in POLICIES:
            raise ConfigError(f"--offset-reset-policy must be one of {', '.join(POLICIES)}, got {self.offset_reset_policy!r}")
        for name in ("checkpoint_every_ticks", "max_uncheckpointed_ticks", "checkpoint_every_seconds",
                     "session_timeout_ms", "heartbeat_interval_ms"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        if self.max_uncheckpointed_ticks < self.checkpoint_every_ticks:
            raise ConfigError(f"--max-uncheckpointed-ticks ({self.max_uncheckpointed_ticks}) must be at least "
                              f"--checkpoint-every-ticks ({self.checkpoint_every_ticks})")
        if self.heartbeat_interval_ms * 3 > self.session_timeout_ms:
            raise ConfigError(f"--heartbeat-interval-ms ({self.heartbeat_interval_ms}) must be at most a third of "
                              f"--session-timeout-ms ({self.session_timeout_ms})")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port must be between 0 and 65535, got {self.metrics_port}")
        if self.exit_when_idle is not None and not self.exit_when_idle > 0:
            raise ConfigError(f"--exit-when-idle must be > 0 seconds, got {self.exit_when_idle}")


@dataclass(slots=True)
class _Partition:
    """An owned, restored partition: fencing token, next offset to read, its instruments."""

    token: int
    next_offset: int
    instruments: set[str]
    dirty: bool
    topic_id: str | None


class _Listener(ConsumerRebalanceListener):
    def __init__(self, service: "Service"):
        self._service = service

    def on_partitions_revoked(self, revoked):
        self._service._on_revoked(revoked, lost=False)

    def on_partitions_assigned(self, assigned):
        self._service._on_assigned(assigned)

    def on_partitions_lost(self, lost):
        self._service._on_revoked(lost, lost=True)


class Service:
    """The consumer loop. :meth:`run` blocks until :meth:`stop` (from any thread or a signal
    handler), ``exit_when_idle`` or a fatal error (:class:`ServiceError`, raised after cleanup).

    Parameters
    ----------
    config
        Frozen service configuration.
    health
        Pipeline health metrics (a new :class:`~consumers.metrics.Health` if omitted).
    """

    def __init__(self, config: ServiceConfig, *, health: Health | None = None):
        self.config = config
        self.health = health or Health()
        self.engine = Engine(config.engine)
        self.exporter = None
        self._stop = threading.Event()
        self._leaving = False               # run() is done: leaving the group writes no checkpoint
        self._lock = threading.Lock()       # _parts / _pending are touched by the rebalance callbacks
        self._parts: dict[int, _Partition] = {}
        self._pending: set[int] = set()
        self._home: dict[str, int] = {}     # instrument -> partition whose checkpoint holds it
        self._warned_split: set[str] = set()
        self._inflight: list[tuple[bytes, bytes, Any]] = []     # alerts sent since the last checkpoint
        self._since_checkpoint = 0          # ticks processed since the last full checkpoint
        self._last_checkpoint = time.monotonic()
        self._retry_at = 0.0
        self._backoff = BACKOFF_MIN
        self._restore_at = 0.0
        self._lag_at = 0.0
        self._restore_backoff = BACKOFF_MIN
        self._missing = 0                   # lookups in a row that found an assigned partition missing
        self._backpressure = False
        self._rejoin = False
        self._joined = False                # the first rebalance has completed
        self._rebalances = 0                # rebalance callbacks run so far
        self._consumer: KafkaConsumer | None = None
        self._producer: KafkaProducer | None = None
        self._dlq: DeadLetterQueue | None = None
        self._admin: KafkaAdminClient | None = None
        self._redis = connect(config.redis_url)
        self._store = CheckpointStore(self._redis, group=config.group_id, topic=config.topic)

    @property
    def partitions(self) -> list[int]:
        """Partitions this process owns and has restored (reading them), sorted."""
        with self._lock:
            return sorted(self._parts)

    # ---- lifecycle -------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to finish: final checkpoint, leave the group, return."""
        self._stop.set()

    def run(self) -> int:
        """Consume until stopped; returns 0 after a clean stop, 1 if the final checkpoint failed."""
        cfg = self.config
        try:
            self._open()
            idle_since = time.monotonic()
            while not self._stop.is_set():
                if self._rejoin:
                    self._resubscribe()
                self._restore_pending()
                records = self._poll()
                now = time.monotonic()
                if records:
                    self._handle(records)
                if records or self._pending or self._backpressure or not self._joined:
                    idle_since = now
                elif cfg.exit_when_idle is not None and now - idle_since >= cfg.exit_when_idle:
                    log.info("nothing to read for %.1f s: exiting (--exit-when-idle)", now - idle_since)
                    break
                self._maybe_checkpoint()
                self._refresh_lag()
            return 0 if self._final_checkpoint() else 1
        finally:
            # Leaving the group (the revoke callback in _close) writes nothing: after a clean stop
            # the final checkpoint has, and after an error the engine may be past records whose
            # transitions or dead letters were never sent (a batch that failed half way), so
            # checkpointing its state would lose them for good. The next owner resumes from the
            # last checkpoint and produces them again.
            self._leaving = True
            self._close()

    def _open(self) -> None:
        cfg = self.config
        self._check_redis()
        conn = dict(cfg.kafka)
        # Not idempotent: consumers dedupe alerts by id, and an idempotent producer cannot recover
        # when a broker forgets its producer state (Tansu's in-memory storage after a restart).
        # One request in flight keeps each instrument's transitions in order across retries.
        self._producer = KafkaProducer(**conn, **{**PRODUCER_TUNING, **ALERT_PRODUCER})
        self._dlq = DeadLetterQueue(self._producer, topic=cfg.deadletter_topic)
        warm_up()                                   # load the compiled kernel before the first batch
        try:                                        # so the first alert does not wait for metadata
            self._producer.partitions_for(cfg.alerts_topic)
        except KafkaError as e:
            log.warning("no metadata yet for the alerts topic %s: %s", cfg.alerts_topic, e)
        self._consumer = KafkaConsumer(
            **conn, **CONSUMER_TUNING, group_id=cfg.group_id, enable_auto_commit=False,
            auto_offset_reset="none",       # never reset silently: see start_offset and _poll
            allow_auto_create_topics=False,     # a missing tick topic is not created with default settings
            session_timeout_ms=cfg.session_timeout_ms, heartbeat_interval_ms=cfg.heartbeat_interval_ms)
        self._consumer.subscribe([cfg.topic], listener=_Listener(self))
        if cfg.metrics_port is not None:
            try:
                self.exporter = start_exporter(host=cfg.metrics_host, port=cfg.metrics_port,
                                               engine_view=self.engine.view, config=cfg.engine, health=self.health)
            except OSError as e:
                raise ServiceError(f"cannot serve /metrics on {cfg.metrics_host}:{cfg.metrics_port}: {e.strerror}; "
                                   "choose another --metrics-port, or -1 to run without it") from None
        log.info("consuming %s as group %s; checkpoints in %s", cfg.topic, cfg.group_id, _redact(cfg.redis_url))

    def _check_redis(self) -> None:
        """Fail at start, saying what to fix, when Redis rejects us or cannot be reached for
        :data:`REDIS_START_TIMEOUT` (a Redis that starts a little after the service is waited for)."""
        url = _redact(self.config.redis_url)
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        backoff = BACKOFF_MIN
        while True:
            try:
                self._redis.ping()
                return
            except (redis.ConnectionError, redis.TimeoutError) as e:
                if isinstance(e, redis.AuthenticationError) or time.monotonic() + backoff > deadline:
                    raise ServiceError(f"cannot use Redis at {url}: {e}. Check --redis-url (TAPEWATCH_REDIS_URL) "
                                       "and that Redis is running") from None
                log.warning("Redis at %s does not answer yet (%s); retrying in %.1f s", url, e, backoff)
                time.sleep(backoff)
                backoff = min(2 * backoff, BACKOFF_MAX)
            except redis.RedisError as e:       # an error answer: a database that does not exist
                raise ServiceError(f"cannot use Redis at {url}: {e}. Check --redis-url (TAPEWATCH_REDIS_URL)") from None

    def _close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False)     # leaves the group (the revoke callback writes nothing)
            except Exception as e:      # closing must not hide the real outcome
                log.warning("closing the consumer failed: %s", e)
        if self._producer is not None:
            try:
                self._producer.close(timeout=FLUSH_TIMEOUT)
            except Exception as e:
                log.warning("closing the producer failed: %s", e)
        if self._admin is not None:
            self._admin.close()
        if self.exporter is not None:
            self.exporter.shutdown()
        self._redis.close()

    def _resubscribe(self) -> None:
        """Leave and rejoin the group: after a fenced checkpoint (this process lost a partition), or
        when an assigned partition stays missing from the broker's offsets answers.

        ``unsubscribe()`` drops the assignment without calling the rebalance listener, so the
        partitions are checkpointed and released here, as a revoke would.
        """
        self._rejoin = False
        self._missing = 0
        log.warning("rejoining consumer group %s", self.config.group_id)
        owned = sorted(self._parts)
        for p in owned:         # written even if unchanged: Redis may have lost it (see _on_revoked)
            self._parts[p].dirty = True
        self._checkpoint(owned, commit=False)
        for p in owned:
            self._release(p)
        with self._lock:
            self._pending.clear()
        self._consumer.unsubscribe()
        self._consumer.subscribe([self.config.topic], listener=_Listener(self))

    # ---- rebalance callbacks (kafka-python network thread) ----------------------------
    def _on_assigned(self, assigned) -> None:
        self._rebalances += 1
        mine = [tp for tp in assigned if tp.topic == self.config.topic]
        for tp in mine:     # kept across the rebalance (cooperative): read on from the state in memory
            if tp.partition in self._parts:
                self._consumer.seek(tp, self._parts[tp.partition].next_offset)
        tps = [tp for tp in mine if tp.partition not in self._parts]
        if tps:
            # Not readable until its checkpoint is restored in the poll loop: pause it and give it a
            # placeholder position so the consumer neither fetches nor looks up a Kafka offset.
            self._consumer.pause(*tps)
            for tp in tps:
                self._consumer.seek(tp, 0)
            with self._lock:
                self._pending.update(tp.partition for tp in tps)
            self._restore_at, self._restore_backoff = 0.0, BACKOFF_MIN     # a new assignment: look it up now
        self._joined = True
        self.health.rebalance()
        self.health.assigned(len(self._parts) + len(self._pending))
        log.info("assigned partitions %s", sorted(tp.partition for tp in tps))

    def _on_revoked(self, revoked, *, lost: bool) -> None:
        self._rebalances += 1
        parts = sorted(tp.partition for tp in revoked if tp.topic == self.config.topic)
        if not parts:
            return
        with self._lock:
            self._pending.difference_update(parts)
        owned = [p for p in parts if p in self._parts]
        if owned and not lost and not self._leaving:
            # written even if unchanged since the last checkpoint: Redis may have restarted empty
            # while these partitions were idle (a write is what finds that out), and the next
            # owner would find no checkpoint
            for p in owned:
                self._parts[p].dirty = True
            self._checkpoint(owned, flush_timeout=REVOKE_FLUSH_TIMEOUT, commit=False)
        for p in owned:
            self._release(p)
        self.health.assigned(len(self._parts) + len(self._pending))
        log.info("%s partitions %s", "lost" if lost else "revoked", parts)

    def _release(self, p: int) -> None:
        """Forget a partition: its instruments' engine state and bookkeeping."""
        with self._lock:
            part = self._parts.pop(p, None)
        if part is None:
            return
        self.engine.drop(part.instruments)
        for name in part.instruments:
            if self._home.get(name) == p:
                del self._home[name]

    # ---- restoring assigned partitions -------------------------------------------------
    def _restore_pending(self) -> None:
        with self._lock:
            pending = sorted(self._pending)
        if not pending or time.monotonic() < self._restore_at:
            return
        topic = self.config.topic
        tps = {p: TopicPartition(topic, p) for p in pending}
        try:
            claims = {p: self._store.claim(p) for p in pending}
            begin = self._consumer.beginning_offsets(list(tps.values()))
            end = self._consumer.end_offsets(list(tps.values()))
            topic_id = self._topic_id()
        except (redis.RedisError, KafkaError, KeyError) as e:
            # KeyError: kafka-python 3.0 raises it from beginning_offsets/end_offsets when a
            # partition is missing from the broker's answer, as when the topic was re-created with
            # fewer partitions since the assignment. The answer carries no error, so nothing
            # refreshes the consumer's metadata (every 5 min by default): refresh it now, and the
            # consumer sees the new partition count and rebalances, revoking the missing one. A
            # coordinator that answers the rebalance with the stale assignment (Tansu 0.6 does,
            # when the only member rejoins) would leave it stuck: after a few tries in a row the
            # service leaves the group and joins again as a new member.
            why = f"the broker has no offsets for {e.args[0]}" if isinstance(e, KeyError) else e
            log.warning("cannot restore partitions %s yet (%s); they stay paused, retrying in %.1f s",
                        pending, why, self._restore_backoff)
            if isinstance(e, KeyError):
                self._missing += 1
                if self._missing >= MISSING_PARTITION_REJOIN:
                    log.warning("partition %s is still missing after %d lookups: leaving the group to get a "
                                "new assignment", e.args[0], self._missing)
                    self._rejoin = True
                try:
                    self._consumer.topics()
                except KafkaError as err:
                    log.warning("cannot refresh the topic metadata (%s)", err)
            self._restore_at = time.monotonic() + self._restore_backoff
            self._restore_backoff = min(2 * self._restore_backoff, BACKOFF_MAX)
            return
        self._restore_backoff = BACKOFF_MIN
        self._missing = 0
        for p, claim in claims.items():
            tp = tps[p]
            try:
                names = self.engine.restore(claim.state) if claim.state is not None else []
            except StateError as e:
                raise ServiceError(f"the checkpoint of partition {p} cannot be restored: {e}. Delete the keys "
                                   f"{', '.join(self._store.keys(p))} to rebuild it from the reset policy") from None
            offset = start_offset(claim, begin=begin[tp], end=end[tp], topic_id=topic_id,
                                  policy=self.config.offset_reset_policy, topic=topic, group=self.config.group_id)
            for name in names:
                self._home[name] = p
            self._consumer.seek(tp, offset)
            with self._lock:
                self._pending.discard(p)
                self._parts[p] = _Partition(claim.token, offset, set(names), offset != claim.offset, topic_id)
            if not self._backpressure:
                self._consumer.resume(tp)
            log.info("partition %d: restored %d instruments, reading from offset %d (epoch %d)",
                     p, len(names), offset, claim.token)
        self.health.assigned(len(self._parts) + len(self._pending))

    def _topic_id(self) -> str | None:
        """The tick topic's id: a checkpoint taken on a deleted and re-created topic is not resumed."""
        if self._admin is None:
            self._admin = KafkaAdminClient(**self.config.kafka)
        desc = self._admin.describe_topics([self.config.topic])
        tid = desc[0].get("topic_id") if desc else None
        return None if tid is None or str(tid) == "00000000-0000-0000-0000-000000000000" else str(tid)

    # ---- consuming -------------------------------------------------------------------
    def _poll(self) -> dict:
        """Wait up to :data:`POLL_MS` for records; when some came, poll once more without waiting.

        kafka-python 3 sends the next fetch request at the start of a poll, and only when no
        fetched records are left over. After records that arrived while the poll waited, nothing
        is in flight, so the broker would idle while they are processed. The second poll sends
        that request now (it returns what is already buffered, within ``max_poll_records``).
        """
        records = self._poll_once()
        n = sum(map(len, records.values()))
        limit = CONSUMER_TUNING["max_poll_records"]
        if not 0 < n < limit:
            return records
        rebalances = self._rebalances
        try:
            more = self._consumer.poll(timeout_ms=0, max_records=limit - n)
        except KafkaError:      # the next poll meets it again and handles it
            return records
        if self._rebalances != rebalances:
            # the first records may predate the rebalance (a kept partition was sought back to its
            # next offset): drop both and read on from every owned partition's next offset
            for p, part in self._parts.items():
                self._consumer.seek(TopicPartition(self.config.topic, p), part.next_offset)
            return {}
        for tp, recs in more.items():
            records.setdefault(tp, []).extend(recs)
        return records

    def _poll_once(self) -> dict:
        # Short slices only while partitions are owned (POLL_SLICE_MS). While none are (joining
        # the group, or between a revocation and the next assignment), kafka-python 3.0 completes
        # its in-flight join only inside a poll() that is waiting for it: a join that finishes
        # between two polls is dropped and sent again, and after a rebalance that a change of the
        # topic's partitions started it is never applied, so the consumer sits without partitions.
        # With whole POLL_MS polls the gap between two waits is a small part of the time.
        slice_ms = POLL_SLICE_MS if self._parts or self._pending else POLL_MS
        try:
            deadline = time.monotonic() + POLL_MS / 1e3
            while True:
                records = self._consumer.poll(timeout_ms=slice_ms)
                if records or self._stop.is_set() or time.monotonic() >= deadline:
                    return records
        except OffsetOutOfRangeError as e:
            # a position fell out of retention while consuming (auto_offset_reset is "none")
            positions = e.args[0] if e.args and isinstance(e.args[0], dict) else {}
            tps = [tp for tp in positions if tp.partition in self._parts]
            if tps:
                begin = self._consumer.beginning_offsets(tps)
                end = self._consumer.end_offsets(tps)
                for tp in tps:
                    problem = (f"offset {positions[tp]} of partition {tp.partition} of topic {tp.topic!r} "
                               "went out of retention while consuming")
                    offset = reset_offset(problem, begin=begin[tp], end=end[tp], policy=self.config.offset_reset_policy,
                                          partition=tp.partition, level=logging.CRITICAL)
                    self._consumer.seek(tp, offset)
                    self._parts[tp.partition].next_offset = offset
                    self._parts[tp.partition].dirty = True
            return {}
        except KafkaError as e:
            log.warning("poll failed (%s); retrying", e)
            time.sleep(BACKOFF_MIN)
            return {}

    def _handle(self, records: dict) -> None:
        """Decode, process, publish transitions and dead letters, advance the offsets."""
        t0 = time.perf_counter()
        flat, spans = [], []        # spans: (partition, index in flat of its first record)
        for tp, recs in records.items():
            part = self._parts.get(tp.partition)
            if part is None or not recs:     # not restored (cannot happen: it is paused) or revoked
                continue
            spans.append((tp.partition, len(flat)))
            flat.extend(recs)
            part.next_offset = recs[-1].offset + 1
            part.dirty = True
        if not flat:
            return
        decoded = wire.decode([r.value for r in flat])
        result = self.engine.process(decoded.batch)
        self._track_instruments(decoded, spans)
        rejects = decoded.rejects + decoded.rejects_for(result.reason)
        if rejects:
            for reason, n in Counter(r.reason for r in rejects).items():
                self.health.rejected(reason, n)
            self.health.dead_letter(self._dlq.send_rejects(rejects, flat))
        accepted = int(np.count_nonzero(result.reason == 0))
        self._emit(result.transitions)
        self._since_checkpoint += len(decoded.batch) + sum(1 for r in decoded.rejects if r.row is None)
        self.health.ticks(accepted)
        if len(decoded.batch):
            self.health.event_time(int(decoded.batch.ts.max()))
        self.health.batch_duration(time.perf_counter() - t0)
        self.health.processed()
        for tp in records:
            part = self._parts.get(tp.partition)
            high = self._consumer.highwater(tp)
            if part is not None and high is not None:
                self.health.lag(tp.topic, tp.partition, max(0, high - part.next_offset))

    def _refresh_lag(self) -> None:
        """Every :data:`LAG_REFRESH_SECONDS`, the lag of every owned partition from the broker's end
        offsets: a paused partition (backpressure while Redis is down) fetches nothing, and
        :meth:`_handle`'s lag, from the fetched high watermarks, would stand still."""
        now = time.monotonic()
        if now < self._lag_at or not self._parts:
            return
        self._lag_at = now + LAG_REFRESH_SECONDS
        tps = {p: TopicPartition(self.config.topic, p) for p in list(self._parts)}
        try:
            end = self._consumer.end_offsets(list(tps.values()), timeout_ms=1000)
        except (KafkaError, KeyError) as e:     # the next refresh tries again
            log.debug("cannot look up the end offsets for the lag: %s", e)
            return
        for p, tp in tps.items():
            part = self._parts.get(p)
            if part is not None and tp in end:
                self.health.lag(tp.topic, p, max(0, end[tp] - part.next_offset))

    def _track_instruments(self, decoded: wire.Decoded, spans: list[tuple[int, int]]) -> None:
        """Remember which partition's checkpoint holds each instrument (the first partition it came from).

        ``spans`` lists each partition with the index of its first message; a partition's messages
        are contiguous, and so are their rows in ``decoded.batch``.
        """
        batch = decoded.batch
        if not len(batch):
            return
        starts = np.searchsorted(decoded.msg_index, [first for _, first in spans]).tolist()
        for (p, _), lo, hi in sorted(zip(spans, starts, starts[1:] + [len(batch)])):
            used = np.zeros(len(batch.instruments), bool)
            used[batch.code[lo:hi]] = True
            for c in np.flatnonzero(used).tolist():
                name = batch.instruments[c]
                home = self._home.get(name)
                if home is None:
                    self._home[name] = p
                    self._parts[p].instruments.add(name)
                    if self.config.engine.inverted_by_name([name]):
                        log.info("instrument %r is taken as a yield by its name (a rising value is selling); set "
                                 "invert = false under [instruments.%s] if it is a price", name, name)
                elif home != p and name not in self._warned_split:
                    self._warned_split.add(name)
                    log.warning("instrument %r arrives on partitions %d and %d; its state is checkpointed with "
                                "partition %d. Key tick messages by instrument so each instrument has one "
                                "partition.", name, home, p, home)

    def _emit(self, transitions: list[Transition]) -> None:
        """Produce every transition (key = instrument); alerts are counted by kind."""
        for t in transitions:
            key, value = t.instrument.encode(), orjson.dumps(t.to_dict())
            self._inflight.append((key, value, self._producer.send(self.config.alerts_topic, key=key, value=value)))
        for kind, n in Counter(t.kind for t in transitions if t.event == "enter").items():
            self.health.alerts_emitted(kind, n)

    # ---- checkpoints -----------------------------------------------------------------
    def _flush_outputs(self, timeout: float) -> None:
        """Make sure every alert and dead letter sent so far is acknowledged; re-send failed alerts."""
        self._producer.flush(timeout=timeout)
        self._dlq.flush(timeout=timeout)          # raises KafkaError if a dead letter had to be re-sent
        failed = [(k, v, f.exception) for k, v, f in self._inflight if f.failed()]
        self._inflight = [(k, v, self._producer.send(self.config.alerts_topic, key=k, value=v)) for k, v, _ in failed]
        if failed:
            raise KafkaError(f"{len(failed)} alerts were not delivered ({failed[0][2]}); re-sent")

    def _checkpoint(self, only: list[int] | None = None, *, flush_timeout: float = FLUSH_TIMEOUT,
                    commit: bool = True) -> bool:
        """Write the dirty partitions (all, or ``only``): flush outputs, then one atomic Redis write each.

        Returns True if everything asked for is in Redis (or fenced and dropped).
        """
        with self._lock:
            todo = {p: part for p, part in self._parts.items() if part.dirty and (only is None or p in only)}
        if not todo:
            return True
        t0 = time.perf_counter()
        try:
            self._flush_outputs(flush_timeout)
            items = {p: (part.token, self.engine.snapshot(sorted(part.instruments)), part.next_offset,
                         {"instruments": len(part.instruments), "topic_id": part.topic_id})
                     for p, part in todo.items()}
            results = self._store.write_many(items)
        except (redis.RedisError, KafkaError, KeyError) as e:
            self.health.checkpoint_failed()
            log.warning("checkpoint of partitions %s failed: %s", sorted(todo), e)
            for part in self._parts.values():     # Redis may come back empty: rewrite everything
                part.dirty = True
            return False
        store_reset = False
        written = {}
        for p, res in results.items():
            if res is WriteResult.FENCED:
                log.error("partition %d was claimed by a newer owner (epoch above %d): dropping it and rejoining "
                          "the group", p, todo[p].token)
                self._release(p)
                self._rejoin = True
                continue
            todo[p].dirty = False
            written[p] = todo[p].next_offset
            store_reset |= res is WriteResult.STORE_RESET
        self.health.checkpoint(time.perf_counter() - t0)
        log.debug("checkpoint: next offsets %s", written)
        if commit and written:
            self._consumer.commit_async({TopicPartition(self.config.topic, p): OffsetAndMetadata(o, "", -1)
                                         for p, o in written.items()})
        if store_reset:
            log.warning("the checkpoint store had lost its data (Redis restarted without persistence?): "
                        "rewriting every owned partition")
            for part in self._parts.values():
                part.dirty = True
            return self._checkpoint(only, flush_timeout=flush_timeout, commit=commit)
        return True

    def _maybe_checkpoint(self) -> None:
        """Checkpoint every N ticks / T seconds; retry failures with backoff; apply backpressure."""
        cfg = self.config
        now = time.monotonic()
        due = (self._since_checkpoint >= cfg.checkpoint_every_ticks
               or (now - self._last_checkpoint >= cfg.checkpoint_every_seconds and self._since_checkpoint))
        if not due:
            return
        if now >= self._retry_at:
            if self._checkpoint():
                self._since_checkpoint = 0
                self._last_checkpoint = now
                self._backoff = BACKOFF_MIN
                self._retry_at = 0.0
                if self._backpressure:
                    self._backpressure = False
                    active = [TopicPartition(cfg.topic, p) for p in self._parts]
                    self._consumer.resume(*active)
                    log.info("checkpoint succeeded: resuming %d partitions", len(active))
                return
            self._retry_at = now + self._backoff
            self._backoff = min(2 * self._backoff, BACKOFF_MAX)
        if not self._backpressure and self._since_checkpoint >= cfg.max_uncheckpointed_ticks:
            self._backpressure = True
            self._consumer.pause(*(TopicPartition(cfg.topic, p) for p in self._parts))
            log.warning("%d ticks are not checkpointed (--max-uncheckpointed-ticks %d): pausing all partitions "
                        "until a checkpoint succeeds", self._since_checkpoint, cfg.max_uncheckpointed_ticks)

    def _final_checkpoint(self) -> bool:
        """Write every owned partition before leaving, retrying with backoff for a bounded time."""
        for part in self._parts.values():
            part.dirty = True
        deadline = time.monotonic() + FINAL_CHECKPOINT_TIMEOUT
        backoff = BACKOFF_MIN
        while True:
            if self._checkpoint():
                log.info("final checkpoint written for partitions %s", sorted(self._parts))
                return True
            if time.monotonic() + backoff > deadline:
                log.error("final checkpoint failed for %.0f s; the next owner resumes from the previous one",
                          FINAL_CHECKPOINT_TIMEOUT)
                return False
            time.sleep(backoff)
            backoff = min(2 * backoff, BACKOFF_MAX)


def start_offset(claim: Claim, *, begin: int, end: int, topic_id: str | None, policy: str, topic: str,
                 group: str) -> int:
    """Where to start reading a newly assigned partition: its checkpointed offset when usable,
    otherwise what ``policy`` says (see :func:`reset_offset`).

    A checkpoint is unusable when there is none, when it was taken on a topic of the same name that
    has since been deleted and re-created (``topic_id`` differs), or when its offset is below
    ``begin``, the earliest offset the broker still has (out of retention).
    """
    p = claim.partition
    where = f"partition {p} of topic {topic!r} (group {group!r})"
    stored_id = claim.meta.get("topic_id")
    if claim.offset is None:
        problem, level = f"no checkpoint in Redis for {where}", logging.WARNING
    elif topic_id and stored_id and stored_id != topic_id:
        problem, level = (f"topic {topic!r} was deleted and re-created since the checkpoint of {where} "
                          f"(topic id {stored_id} -> {topic_id})"), logging.CRITICAL
    elif claim.offset < begin:
        problem, level = (f"the checkpointed offset {claim.offset} of {where} is out of retention "
                          f"(earliest available: {begin})"), logging.CRITICAL
    else:
        return claim.offset
    return reset_offset(problem, begin=begin, end=end, policy=policy, partition=p, level=level)


def reset_offset(problem: str, *, begin: int, end: int, policy: str, partition: int, level: int) -> int:
    """Apply the offset reset policy: ``fail`` raises :class:`ServiceError` with ``problem`` in its
    message; ``earliest`` / ``latest`` return ``begin`` / ``end`` and log ``problem`` at ``level``."""
    if policy == "fail":
        raise ServiceError(f"{problem}; not guessing where to start (--offset-reset-policy fail). "
                           "Use --offset-reset-policy earliest or latest to accept the gap and reset.")
    target = begin if policy == "earliest" else end
    log.log(level, "%s; resetting partition %d to the %s offset %d (--offset-reset-policy %s)",
            problem, partition, policy, target, policy)
    return target


def tune_gc() -> None:
    """Garbage collector settings for a process that runs the service (``tapewatch run``).

    Loads the compiled kernel, then freezes every object that exists (modules, the kernel, the
    clients: they live as long as the process) so no collection walks them again; a full
    collection of that heap takes ~70 ms, a latency spike every few seconds at high rates.

    The thresholds keep each collection small. kafka-python leaves cyclic garbage behind at a
    steady rate whatever the tick rate (every timed-out wait inside ``poll`` builds an exception
    with its traceback and frames; ~16-19k objects/s measured at 100k ticks/s), so with large
    thresholds (50,000 / 20 / 100, tried first) each older-generation collection had a lot to walk
    and took 80-190 ms: the p99 tick-to-alert latency was 80-160 ms. With 5,000 / 10 / 10 the
    collections are frequent and short; ``python benchmarks/bench_service.py`` gave p99 39-66 ms
    in 10 of 11 runs (one at 227 ms), with JSON throughput no lower.
    """
    warm_up()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def _redact(url: str) -> str:
    """A Redis URL without its password."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


# ---- command line ---------------------------------------------------------------------------

def register(subparsers) -> None:
    """Add ``tapewatch run``."""
    p = subparsers.add_parser(
        "run", help="consume ticks from Kafka, publish regime alerts, checkpoint state to Redis",
        description="Consume the tick topic in a consumer group, run the regime engine, produce every "
                    "transition to the alerts topic and checkpoint engine state + offsets to Redis.")
    add_option(p, "--config", help="engine TOML file (thresholds, instruments, calendars)")
    add_kafka_options(p)
    g = p.add_argument_group("service")
    d = ServiceConfig.__dataclass_fields__
    add_option(g, "--topic", default=d["topic"].default, help="tick topic to consume")
    add_option(g, "--group-id", default=d["group_id"].default, help="Kafka consumer group id")
    add_option(g, "--alerts-topic", default=d["alerts_topic"].default, help="topic the transitions are produced to")
    add_option(g, "--deadletter-topic", default=d["deadletter_topic"].default,
               help="topic rejected messages are produced to, with their original bytes")
    add_option(g, "--session-timeout-ms", type=positive(int), default=d["session_timeout_ms"].default,
               help="consumer group session timeout")
    add_option(g, "--heartbeat-interval-ms", type=positive(int), default=d["heartbeat_interval_ms"].default,
               help="consumer group heartbeat interval (at most a third of the session timeout)")
    add_option(g, "--offset-reset-policy", choices=POLICIES, default=d["offset_reset_policy"].default,
               help="where to start a partition without a usable checkpoint (none yet, or its offset fell out "
                    "of retention): fail = exit with an error; earliest/latest = reset and log it")
    add_option(g, "--exit-when-idle", type=positive(float),
               help="exit cleanly (final checkpoint) after this many seconds with nothing to read")
    c = p.add_argument_group("checkpoints")
    add_option(c, "--redis-url", default=d["redis_url"].default, help="Redis holding the checkpoints")
    add_option(c, "--checkpoint-every-ticks", type=positive(int), default=d["checkpoint_every_ticks"].default,
               help="checkpoint after this many ticks")
    add_option(c, "--checkpoint-every-seconds", type=positive(float), default=d["checkpoint_every_seconds"].default,
               help="checkpoint at least this often while ticks arrive")
    add_option(c, "--max-uncheckpointed-ticks", type=positive(int), default=d["max_uncheckpointed_ticks"].default,
               help="pause consuming when this many ticks are not checkpointed (Redis down)")
    m = p.add_argument_group("metrics")
    add_option(m, "--metrics-host", default=d["metrics_host"].default, help="address of the /metrics endpoint")
    add_option(m, "--metrics-port", type=int, default=d["metrics_port"].default,
               help="port of the /metrics endpoint; 0 picks a free port, -1 disables it")
    p.set_defaults(func=main)


def config_from_args(args: argparse.Namespace) -> ServiceConfig:
    """The frozen :class:`ServiceConfig` of a parsed ``tapewatch run`` command line."""
    return ServiceConfig(
        kafka=kafka_config(args), topic=args.topic, group_id=args.group_id, redis_url=args.redis_url,
        checkpoint_every_ticks=args.checkpoint_every_ticks, checkpoint_every_seconds=args.checkpoint_every_seconds,
        max_uncheckpointed_ticks=args.max_uncheckpointed_ticks, offset_reset_policy=args.offset_reset_policy,
        alerts_topic=args.alerts_topic, deadletter_topic=args.deadletter_topic, metrics_host=args.metrics_host,
        metrics_port=None if args.metrics_port == -1 else args.metrics_port, exit_when_idle=args.exit_when_idle,
        session_timeout_ms=args.session_timeout_ms, heartbeat_interval_ms=args.heartbeat_interval_ms,
        engine=load_config(args.config))


def main(args: argparse.Namespace) -> int:
    """``tapewatch run``: SIGTERM / SIGINT stop the service cleanly (final checkpoint, leave the group)."""
    config = config_from_args(args)
    service = Service(config)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: service.stop())
    tune_gc()
    try:
        return service.run()
    except KafkaError as e:
        print(f"tapewatch run: cannot use Kafka at {','.join(config.kafka['bootstrap_servers'])}: {e}", file=sys.stderr)
        return 1
