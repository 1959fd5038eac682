"""Dead-letter queue: every rejected message goes to a Kafka topic with its original bytes.

One dead-letter record per bad source message. Its value is JSON::

    {"reason": "bad_price", "error": "price -1: price must be a finite number > 0",
     "topic": "ticks", "partition": 3, "offset": 12345, "key": "VVNUMTBZ",
     "rows": null, "original": "<base64 of the message value>"}

``key`` and ``original`` are base64 (``null`` when the source had none). ``rows`` is ``null``
when the whole message was rejected; for a binary batch with some bad rows it lists them as
``{"row": 7, "reason": ..., "error": ...}`` and ``reason`` is that of the first bad row.

A dead letter must fit a Kafka record (1 MB by default on a broker), and one that does not would
stop the consumer (``send`` raises) or be re-sent forever. So a source value longer than
:data:`MAX_ORIGINAL_BYTES` is not copied: ``original`` is ``null`` and ``original_bytes`` and
``original_sha256`` identify it in the source topic (``topic``, ``partition``, ``offset``), which
still holds it; and ``rows`` lists at most :data:`MAX_ROWS` rows, ``rows_total`` counting them all.
The record key is the source key, and the headers carry ``reason`` and
``source`` (``topic/partition/offset``) so tools can filter without parsing the value.

Counting is the caller's job (``health.rejected(reason, n)`` per rejected row,
``health.dead_letter(n)`` per record sent). Call :meth:`DeadLetterQueue.flush` before
committing the source offsets, so a crash never loses a rejected message.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any, Sequence

import orjson
from kafka.errors import KafkaError

from consumers.wire import MAGIC, Reject

DEFAULT_TOPIC = "tapewatch.deadletter"
MAX_ORIGINAL_BYTES = 256 * 1024     # larger source values are identified, not copied
MAX_ROWS = 1_000                    # bad rows listed per dead letter


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


class DeadLetterQueue:
    """Produces rejected messages to ``topic`` through a ``kafka.KafkaProducer``.

    Parameters
    ----------
    producer
        A kafka-python ``KafkaProducer`` without value/key serializers (bytes in, bytes out).
    topic
        The dead-letter topic.
    """

    def __init__(self, producer, *, topic: str = DEFAULT_TOPIC):
        if not topic:
            raise ValueError("dead-letter topic must be a non-empty string")
        self.producer = producer
        self.topic = topic
        self._failed: list[tuple[bytes | None, bytes, list, BaseException]] = []

    def send(self, *, original: bytes | None, key: bytes | None, topic: str, partition: int, offset: int,
             reason: str, error: str, rows: Sequence[dict[str, Any]] | None = None):
        """Produce one dead-letter record; returns the producer's future."""
        doc = {"reason": reason, "error": error, "topic": topic, "partition": partition, "offset": offset,
               "key": _b64(key), "rows": None if rows is None else list(rows[:MAX_ROWS]), "original": _b64(original)}
        if rows is not None and len(rows) > MAX_ROWS:
            doc["rows_total"] = len(rows)
        if original is not None and len(original) > MAX_ORIGINAL_BYTES:
            doc.update(original=None, original_bytes=len(original), original_sha256=hashlib.sha256(original).hexdigest())
        value = orjson.dumps(doc)
        headers = [("reason", reason.encode()), ("source", f"{topic}/{partition}/{offset}".encode())]
        return self._send(key, value, headers)

    def _send(self, key: bytes | None, value: bytes, headers: list):
        future = self.producer.send(self.topic, value=value, key=key, headers=headers)
        future.add_errback(lambda exc: self._failed.append((key, value, headers, exc)))
        return future

    def send_rejects(self, rejects: Sequence[Reject], records: Sequence) -> int:
        """Dead-letter the messages behind ``rejects``; returns the number of records sent.

        ``records`` are the consumed records (``.topic``, ``.partition``, ``.offset``, ``.key``,
        ``.value``) that were decoded, in the same order, so ``Reject.message_index`` indexes them.
        """
        by_message: dict[int, list[Reject]] = {}
        for r in rejects:
            by_message.setdefault(r.message_index, []).append(r)
        for m, group in by_message.items():
            group.sort(key=lambda r: r.row or 0)
            rec, first = records[m], group[0]
            whole = first.row is None or rec.value[:4] != MAGIC      # a JSON message is one row
            rows = None if whole else [{"row": r.row, "reason": r.reason, "error": r.error} for r in group]
            self.send(original=rec.value, key=rec.key, topic=rec.topic, partition=rec.partition, offset=rec.offset,
                      reason=first.reason, error=first.error, rows=rows)
        return len(by_message)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every record sent so far is acknowledged; re-send the ones that failed.

        Raises
        ------
        kafka.errors.KafkaError
            Some records had failed (they were sent again): do not commit the source offsets yet,
            call ``flush`` again later.
        """
        self.producer.flush(timeout=timeout)
        failed, self._failed = self._failed, []
        for key, value, headers, _ in failed:
            self._send(key, value, headers)
        if failed:
            raise KafkaError(f"{len(failed)} dead letters were not delivered ({failed[0][3]}); sent again")
