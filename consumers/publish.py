"""``tapewatch publish``: produce a tape file to Kafka, paced in event time or as fast as possible.

Message key = instrument name (UTF-8), so one instrument's ticks stay in one partition and in
order. ``--format json`` sends one JSON object per tick; ``--format batch`` sends binary batches
(``consumers.wire``), each holding ticks of ONE instrument (key = that instrument), at most
``--batch-rows`` ticks per message.

Pacing: with ``--rate X`` a tick is sent when ``(ts - first_ts) / X`` seconds of wall time have
passed since the start (X = 60 replays an hour per minute); ticks are sent in file order (a tick
older than one before it goes out right after it). ``--ticks-per-second N`` sends tick ``i`` at
``i / N`` seconds instead (load tests). Paced ticks go out in groups, at most every 10 ms.
``--rebase-time`` shifts every event time so the first tick is stamped with the wall clock at
start (with ``--rate 1`` event time then tracks the wall clock: live demos and latency
measurements).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from consumers.kafka_options import add_kafka_options, producer_config
from consumers.options import add_flag, add_option, positive
from consumers.wire import encode_batch, encode_json
from signals.ticks import TickBatch

FORMATS = ("json", "batch")
_MAX_SLEEP = 0.05
_MIN_SLEEP = 0.01       # paced ticks go out in groups at most 100 times a second (fewer, larger messages)


@dataclass(slots=True)
class PublishStats:
    """What :func:`publish` sent; ``started_ns`` is the wall clock at the start."""

    started_ns: int = 0
    messages: int = 0
    ticks: int = 0
    failed: int = 0
    first_error: str | None = None
    seconds: float = 0.0
    rejected: dict[str, int] = field(default_factory=dict)

    def summary(self, topic: str) -> str:
        rate = self.ticks / self.seconds if self.seconds > 0 else float("inf")
        text = (f"published {self.ticks:,} ticks in {self.messages:,} messages to {topic} "
                f"in {self.seconds:.2f} s ({rate:,.0f} ticks/s)")
        if self.rejected:
            text += "; skipped bad rows: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.rejected.items()))
        if self.failed:
            text += f"; {self.failed:,} messages FAILED ({self.first_error})"
        return text


class _Sender:
    """Encodes row ranges of a batch and hands them to the producer."""

    def __init__(self, producer, topic: str, fmt: str, batch_rows: int, stats: PublishStats):
        self.producer, self.topic, self.fmt, self.batch_rows, self.stats = producer, topic, fmt, batch_rows, stats
        self._keys: dict[str, bytes] = {}

    def _key(self, name: str) -> bytes:
        key = self._keys.get(name)
        if key is None:
            key = self._keys[name] = name.encode("utf-8")
        return key

    def _failed(self, exc: BaseException) -> None:
        self.stats.failed += 1
        if self.stats.first_error is None:
            self.stats.first_error = f"{type(exc).__name__}: {exc}"

    def send(self, batch: TickBatch) -> None:
        if not len(batch):
            return
        send, topic, errback = self.producer.send, self.topic, self._failed
        if self.fmt == "json":
            keys = [self._key(n) for n in batch.instruments]
            for code, value in zip(batch.code.tolist(), encode_json(batch)):
                send(topic, value=value, key=keys[code]).add_errback(errback)
            self.stats.messages += len(batch)
        else:
            order = np.argsort(batch.code, kind="stable")
            starts = np.flatnonzero(np.diff(batch.code[order], prepend=-1))
            for a, b in zip(starts, [*starts[1:], len(order)]):
                key = self._key(batch.instruments[batch.code[order[a]]])
                for lo in range(a, b, self.batch_rows):
                    value = encode_batch(batch.select(order[lo:min(lo + self.batch_rows, b)]))
                    send(topic, value=value, key=key).add_errback(errback)
                    self.stats.messages += 1
        self.stats.ticks += len(batch)


def publish(producer, batches: Iterable[TickBatch], *, topic: str, fmt: str = "json", rate: float | None = None,
            ticks_per_second: float | None = None, batch_rows: int = 10_000,
            rebase_time: bool = False) -> PublishStats:
    """Produce ``batches`` (in order) to ``topic`` with a kafka-python ``producer``.

    Pacing: ``rate`` (a multiple of event time) or ``ticks_per_second`` (a fixed input rate,
    whatever the event times), or neither (as fast as possible). Flushes the producer before
    returning. Delivery failures are counted in :attr:`PublishStats.failed`, not raised.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    for name, v in (("rate", rate), ("ticks_per_second", ticks_per_second)):
        if v is not None and not v > 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    if rate is not None and ticks_per_second is not None:
        raise ValueError("give rate or ticks_per_second, not both")
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    stats = PublishStats(started_ns=time.time_ns())
    sender = _Sender(producer, topic, fmt, batch_rows, stats)
    start = time.monotonic()
    first_ts = shift = None
    latest = np.iinfo(np.int64).min
    last_send = -np.inf
    for batch in batches:
        if not len(batch):
            continue
        if first_ts is None:
            first_ts = int(batch.ts[0])
            shift = stats.started_ns - first_ts if rebase_time else 0
        if rate is not None:
            # wall time at which each row is due: running max of event time, so file order is kept
            sched = np.maximum.accumulate(np.maximum(batch.ts, latest))
            latest = int(sched[-1])
            due = start + (sched - first_ts) / 1e9 / rate
        elif ticks_per_second is not None:
            due = start + (stats.ticks + np.arange(len(batch))) / ticks_per_second
        if shift:
            batch = TickBatch(batch.instruments, batch.code, batch.ts + shift, batch.price, batch.size, batch.side)
        if rate is None and ticks_per_second is None:
            sender.send(batch)
            continue
        i = 0
        while i < len(batch):
            now = time.monotonic()
            # one group per _MIN_SLEEP at most, also when sending falls behind the schedule: a
            # publisher that sends whatever is due after every send splits the feed into ever
            # smaller messages, each costing the producer and the broker as much as a large one
            wait = max(due[i] - now, last_send + _MIN_SLEEP - now)
            if wait > 0:
                time.sleep(min(wait, _MAX_SLEEP))
                continue
            j = int(np.searchsorted(due, now, side="right"))
            last_send = now
            sender.send(batch.select(slice(i, j)))
            i = j
    producer.flush()
    stats.seconds = time.monotonic() - start
    return stats


def _cmd(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from signals.tape import iter_tape

    rejected: dict[str, int] = {}

    def batches():
        for chunk in iter_tape(args.file, chunk_rows=args.chunk_rows):
            for reason, n in chunk.reasons.items():
                if n:
                    rejected[reason] = rejected.get(reason, 0) + n
            yield chunk.batch

    config = producer_config(args)
    try:
        producer = KafkaProducer(**config)
    except KafkaError as e:
        print(f"tapewatch publish: cannot connect to Kafka at {','.join(config['bootstrap_servers'])}: {e}")
        return 1
    try:
        stats = publish(producer, batches(), topic=args.topic, fmt=args.format,
                        rate=None if args.as_fast_as_possible or args.ticks_per_second else args.rate,
                        ticks_per_second=args.ticks_per_second,
                        batch_rows=args.batch_rows, rebase_time=args.rebase_time)
    finally:
        producer.close()
    stats.rejected = rejected
    print(stats.summary(args.topic), flush=True)
    return 1 if stats.failed else 0


def register(subparsers) -> None:
    p = subparsers.add_parser("publish", help="produce a tape file (CSV or JSON lines) to Kafka",
                              description="Produce a tape file to Kafka (key = instrument), paced in event time or as "
                                          "fast as possible. Wire formats: docs/wire-format.md.")
    p.add_argument("file", help="tape file: CSV with a header row or JSON lines (fields instrument, ts, price, size, side)")
    add_option(p, "--topic", default="ticks", help="topic to produce to")
    add_option(p, "--format", default="json", choices=FORMATS,
               help="json: one object per tick; batch: binary batches of one instrument (docs/wire-format.md)")
    pace = p.add_mutually_exclusive_group()
    add_option(pace, "--rate", type=positive(float), default=1.0,
               help="replay speed as a multiple of event time (60 = an hour per minute)")
    add_option(pace, "--ticks-per-second", type=positive(float),
               help="fixed input rate whatever the event times (load tests)")
    add_flag(pace, "--as-fast-as-possible", help="no pacing: send as fast as the broker takes it")
    add_flag(p, "--rebase-time", help="shift event times so the first tick is stamped with the wall clock at start")
    add_option(p, "--batch-rows", type=positive(int), default=10_000, help="most ticks per batch message (--format batch)")
    add_option(p, "--chunk-rows", type=positive(int), default=100_000, help="rows read from the file at a time")
    add_kafka_options(p)
    p.set_defaults(func=_cmd)
