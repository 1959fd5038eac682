"""Fuzzing the tick topic: random and mutated payloads never crash anything; every bad one is
counted and dead-lettered with its original bytes and source partition/offset; every good one
is processed.

Two levels, one payload generator (:func:`payload`, driven by a ``random.Random``):

* decode level, in process: 500 polls of 20 payloads (10,000 payloads), one hypothesis-drawn
  seed per poll (a failure reports its seed);
* service level: 300 payloads produced to a real Tansu broker and consumed by the real
  :class:`consumers.service.Service` (Redis checkpoints, dead-letter topic), then the
  dead-letter topic and the health counters are checked against an independent decode.

Mutations: truncation, bit flips, wrong types, NaN / inf, negative and huge numbers, missing
fields, garbage UTF-8, non-object JSON, null values, batch headers with wrong counts or version.
"""
from __future__ import annotations

import base64
import datetime as dt
import math
import random
import struct
from collections import Counter

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from consumers.deadletter import DeadLetterQueue
from consumers.kafka_options import PRODUCER_TUNING
from consumers.wire import MAGIC, decode, encode_batch
from signals.ticks import REASONS, TickBatch
from tests.servers import read_topic

NAMES = ("UST10Y", "DXY", "USDJPY", "CSI300")
TS0 = 1_747_747_800_000_000_000
NAT = -2**63
DECODER_REASONS = set(REASONS) - {"ok", "out_of_order", "outside_session"}
SIDE_FORMS = {1: ["B", "buy", 1, "b"], -1: ["S", "sell", -1, "-1"], 0: ["", None, 0, ...]}
POLLS, POLL_SIZE = 500, 20


# ------------------------------------------------------------------------------------ generator

def iso(ts: int, rng: random.Random) -> str:
    """ts ns as ISO-8601 with ns digits, in UTC ("Z") or another offset."""
    sec, ns = divmod(ts, 1_000_000_000)
    minutes = rng.choice([0, 0, -240, 330, 540])
    t = dt.datetime.fromtimestamp(sec, dt.timezone(dt.timedelta(minutes=minutes)))
    tail = "Z" if minutes == 0 else t.strftime("%z")[:3] + ":" + t.strftime("%z")[3:]
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}" + tail


def good_tick(rng: random.Random, name: str, ts: int) -> tuple[dict, tuple]:
    """A valid JSON tick in one of the accepted forms, and the row it must decode to."""
    price = round(rng.uniform(0.0001, 5e4), rng.randint(0, 6)) or 1.0
    size = rng.choice([0, rng.randint(1, 10**6), round(rng.uniform(0, 1e3), 3)])
    side = rng.choice([1, -1, 0])
    obj = {"instrument": name, "ts": ts if rng.random() < 0.7 else iso(ts, rng),
           "price": price if rng.random() < 0.9 else repr(price), "size": size}
    form = rng.choice(SIDE_FORMS[side])
    if form is not ...:
        obj["side"] = form
    if rng.random() < 0.1:
        obj["venue"] = "EBS"                                              # extra fields are ignored
    return obj, (name, ts, float(price), float(size), side)


FIELD_MUTATIONS = {
    "missing_field": lambda o, rng: o.pop(rng.choice(["instrument", "ts", "price", "size"])),
    "missing_null": lambda o, rng: o.__setitem__(rng.choice(["instrument", "ts", "price", "size"]),
                                                 rng.choice([None, ""])),
    "bad_instrument": lambda o, rng: o.__setitem__("instrument", rng.choice([5, ["DXY"], {"n": 1}, " \t", True])),
    "bad_ts": lambda o, rng: o.__setitem__("ts", rng.choice([
        "yesterday", "2025-05-20T13:30:00", True, 1.5, 2**64 - 1, "9" * 25, "9999-12-31T23:59:59Z", NAT, "x" * 100,
        "--5", "²", [1], -1e30])),
    "bad_price": lambda o, rng: o.__setitem__("price", rng.choice([
        -abs(o["price"] if isinstance(o["price"], float) else 1.0), 0, "NaN", "inf", "-1", True, [], "abc", -1e308,
        "1e999"])),
    "bad_size": lambda o, rng: o.__setitem__("size", rng.choice([-1, "-inf", {}, "nan", False, -1e-300])),
    "bad_side": lambda o, rng: o.__setitem__("side", rng.choice(["X", 2, True, 0.5, "BUYY", [1], "s" * 40])),
}


def flip_bits(v: bytes, rng: random.Random) -> bytes:
    b = bytearray(v)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def json_payload(rng: random.Random, name: str, ts: int):
    """(value, expect): expect is ("ok", rows), ("reject", reason) or None (anything goes)."""
    obj, row = good_tick(rng, name, ts)
    kind = rng.random()
    if kind < 0.4:
        return orjson.dumps(obj), ("ok", [row])
    if kind < 0.7:
        reason = rng.choice(list(FIELD_MUTATIONS))
        FIELD_MUTATIONS[reason](obj, rng)
        return orjson.dumps(obj), ("reject", "missing_field" if reason == "missing_null" else reason)
    v = orjson.dumps(obj)
    how = rng.choice(["truncate", "flip", "utf8", "literal", "wrap", "random", "null"])
    if how == "truncate":
        return v[:rng.randrange(len(v))], ("reject", "malformed")
    if how == "utf8":
        i = rng.randrange(len(v) + 1)
        return v[:i] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c"]) + v[i:], ("reject", "malformed")
    if how == "literal":                      # NaN, Infinity and overflowing numbers are not JSON
        literal = rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
        return orjson.dumps({**obj, "size": "@"}).replace(b'"@"', literal), ("reject", "malformed")
    if how == "wrap":
        return rng.choice([b"[" + v + b"]", v + b"," + v, b'"' + base64.b64encode(v) + b'"']), ("reject", "malformed")
    if how == "null":
        return None, ("reject", "malformed")
    if how == "random":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 40))), None
    return flip_bits(v, rng), None


def batch_payload(rng: random.Random, name: str, ts: int):
    n = rng.randint(1, 12)
    names = (name, rng.choice(NAMES))
    code = np.array([rng.randrange(2) for _ in range(n)], np.int32)
    tsv = ts + np.arange(n, dtype=np.int64) * 1000
    price = np.array([rng.uniform(0.01, 1e4) for _ in range(n)])
    size = np.array([float(rng.randint(0, 100)) for _ in range(n)])
    side = np.array([rng.choice([-1, 0, 1]) for _ in range(n)], np.int8)
    bad: dict[int, str] = {}
    kind = rng.random()
    if 0.4 <= kind < 0.6:                      # a few bad rows; the others must get through
        for r in rng.sample(range(n), rng.randint(1, n)):
            reason = rng.choice(["bad_price", "bad_size", "bad_side", "bad_ts"])
            if reason == "bad_price":
                price[r] = rng.choice([math.nan, -1.0, 0.0, math.inf])
            elif reason == "bad_size":
                size[r] = rng.choice([math.nan, -0.5, -math.inf, math.inf])
            elif reason == "bad_side":
                side[r] = rng.choice([2, -2, 127, -128])
            else:
                tsv[r] = NAT
            bad[r] = reason
    batch = TickBatch(names if names[0] != names[1] else names[:1], np.minimum(code, len(set(names)) - 1),
                      tsv, price, size, side)
    rows = [(batch.instruments[c], int(t), float(p), float(s), int(d))
            for c, t, p, s, d in zip(batch.code, batch.ts, batch.price, batch.size, batch.side)]
    v = encode_batch(batch)
    if kind < 0.6:
        return v, ("rows", [r for i, r in enumerate(rows) if i not in bad], {r: bad[r] for r in sorted(bad)})
    how = rng.choice(["truncate", "rows+", "rows-", "version", "append", "flip", "names"])
    if how == "truncate":
        return v[:rng.randrange(len(v))], ("reject", "malformed")
    if how in ("rows+", "rows-"):
        wrong = n + rng.randint(1, 3) if how == "rows+" or n < 3 else n - rng.randint(1, 3)
        return v[:8] + struct.pack("<I", wrong) + v[12:], ("reject", "malformed")
    if how == "version":
        return v[:4] + bytes([rng.choice([0, 2, 255])]) + v[5:], ("reject", "unknown_version")
    if how == "append":
        return v + b"\0" * rng.randint(1, 9), ("reject", "malformed")
    if how == "names":
        return v[:12] + struct.pack("<I", rng.choice([0, 3, 7, 2**31])) + v[16:], None
    return flip_bits(v, rng), None


def payload(rng: random.Random, name: str, ts: int):
    return (batch_payload if rng.random() < 0.25 else json_payload)(rng, name, ts)


# ----------------------------------------------------------------------------------- invariants

def row_tuples(batch: TickBatch, idx) -> list[tuple]:
    names = batch.instrument_names()
    return [(names[i], int(batch.ts[i]), float(batch.price[i]), float(batch.size[i]), int(batch.side[i])) for i in idx]


def check_decoded(values: list, expects: list) -> None:
    """The invariants every decode must keep, plus the known outcome of each payload."""
    d = decode(values)
    b = d.batch
    # accepted rows honour the tick contract
    assert np.all(np.isfinite(b.price) & (b.price > 0))
    assert np.all(np.isfinite(b.size) & (b.size >= 0))
    assert np.all(np.isin(b.side, [-1, 0, 1])) and not np.any(b.ts == NAT)
    assert all(isinstance(n, str) and n.strip() for n in b.instruments)
    assert np.bincount(b.code, minlength=len(b.instruments)).all()             # no unused names
    assert {r.reason for r in d.rejects} <= DECODER_REASONS
    rejects_of = {}
    for r in d.rejects:
        rejects_of.setdefault(r.message_index, []).append(r)
    for m, (value, expect) in enumerate(zip(values, expects)):
        mine = np.flatnonzero(d.msg_index == m)
        rej = rejects_of.get(m, [])
        is_batch = value is not None and value[:4] == MAGIC
        if not is_batch:                                   # one tick per JSON message: accepted xor rejected
            assert (len(mine), len(rej)) in ((1, 0), (0, 1)), (value, rej)
            assert d.msg_row[mine].tolist() in ([], [0]) and all(r.row in (None, 0) for r in rej)
        elif any(r.row is None for r in rej):              # a whole batch rejected, nothing accepted
            assert len(rej) == 1 and len(mine) == 0
        else:                                              # every row of the batch accounted for once
            n_rows = struct.unpack_from("<I", value, 8)[0]
            assert sorted(d.msg_row[mine].tolist() + [r.row for r in rej]) == list(range(n_rows))
        if expect is None:
            continue
        if expect[0] == "ok":
            assert row_tuples(b, mine) == expect[1] and not rej
        elif expect[0] == "reject":
            assert len(mine) == 0 and [r.reason for r in rej] == [expect[1]], (value, rej)
        else:
            _, ok_rows, bad = expect
            assert row_tuples(b, mine) == ok_rows
            assert {r.row: r.reason for r in rej} == bad
    # the same answer as decoding message by message (the bulk and per-message paths agree)
    alone = [decode([v]) for v in values]
    assert row_tuples(b, range(len(b))) == [t for a in alone for t in row_tuples(a.batch, range(len(a.batch)))]
    assert [(r.message_index, r.row, r.reason, r.error) for r in d.rejects] == \
        [(m, r.row, r.reason, r.error) for m, a in enumerate(alone) for r in a.rejects]


def test_decode_fuzz_10000_payloads():
    counted = []

    @settings(max_examples=POLLS, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(0, 2**64))       # a seed: drawing every byte through hypothesis is 5x slower
    def poll(seed):
        rng = random.Random(seed)
        values, expects = [], []
        for i in range(POLL_SIZE):
            v, e = payload(rng, rng.choice(NAMES), TS0 + rng.randrange(10**12))
            values.append(v)
            expects.append(e)
        check_decoded(values, expects)
        counted.append(len(values))

    poll()
    assert sum(counted) >= POLLS * POLL_SIZE


# ---------------------------------------------------------------------------------- the service

N_SERVICE = 300


@pytest.mark.integration
def test_service_fuzz_dead_letters_every_bad_message(kafka_broker, redis_server, unique_name):
    from consumers.service import Service, ServiceConfig

    topic, dlq_topic, alerts = unique_name("ticks"), unique_name("dlq"), unique_name("alerts")
    kafka_broker.create_topic(topic, partitions=2)
    kafka_broker.create_topic(dlq_topic)
    kafka_broker.create_topic(alerts)
    rng = random.Random(20250522)
    # good ticks: instruments G0..G3, increasing time per instrument; the fuzzed ones use their own
    # names, so a mutation can never make a good tick look out of order
    sent = []
    clock = {}
    for i in range(N_SERVICE):
        if rng.random() < 0.3:
            name = f"G{rng.randrange(4)}"
            clock[name] = clock.get(name, TS0) + rng.randint(1, 10**9)
            obj, _ = good_tick(rng, name, clock[name])
            value, key = orjson.dumps(obj), name.encode()
        else:
            name = f"FZ{i:04d}"
            value, _ = payload(rng, name, TS0 + rng.randrange(10**12))
            key = name.encode()
        sent.append((key, value))
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, **PRODUCER_TUNING)
    futures = [producer.send(topic, key=k, value=v) for k, v in sent]
    producer.flush()
    meta = [f.get(timeout=10) for f in futures]
    producer.close()
    where = {(m.partition, m.offset): i for i, m in enumerate(meta)}

    svc = Service(ServiceConfig(
        kafka={"bootstrap_servers": [kafka_broker.bootstrap]}, topic=topic, group_id=unique_name("group"),
        redis_url=redis_server.url, alerts_topic=alerts, deadletter_topic=dlq_topic, metrics_port=None,
        exit_when_idle=1.0, session_timeout_ms=3000, heartbeat_interval_ms=1000))
    assert svc.run() == 0

    # what the decoder alone says about each message (in its partition, like the service sees it)
    expected_bad = {}
    accepted = 0
    for i, (key, value) in enumerate(sent):
        d = decode([value])
        accepted += len(d.batch)
        if d.rejects:
            expected_bad[i] = d.rejects
    health = svc.health.registry.get_sample_value
    n_dead = int(health("tapewatch_dead_letters_total"))
    records = read_topic(kafka_broker.bootstrap, dlq_topic)
    assert len(records) == n_dead
    rows_by_reason = Counter()
    seen = set()
    for rec in records:
        body = orjson.loads(rec.value)
        i = where[(body["partition"], body["offset"])]
        assert i not in seen                                               # one dead letter per message
        seen.add(i)
        key, value = sent[i]
        assert body["topic"] == topic and rec.key == key
        assert (None if body["original"] is None else base64.b64decode(body["original"])) == value
        assert body["key"] == base64.b64encode(key).decode()
        assert dict(rec.headers)["reason"].decode() == body["reason"]
        assert dict(rec.headers)["source"].decode() == f"{topic}/{body['partition']}/{body['offset']}"
        assert not key.startswith(b"G"), "a good tick was dead-lettered"
        rows = body["rows"] or [{"row": None, "reason": body["reason"]}]
        rows_by_reason.update(r["reason"] for r in rows)
        if i in expected_bad:                     # the decoder's rejects are all there (engine ones may add)
            assert {(r.row, r.reason) for r in expected_bad[i]} <= \
                {(r["row"], r["reason"]) for r in rows} | ({(0, body["reason"])} if body["rows"] is None else set())
        else:                                     # decoded fine, refused by the engine
            assert {r["reason"] for r in rows} <= {"out_of_order", "outside_session"}
    assert set(expected_bad) <= seen                                        # every bad message dead-lettered
    engine_rejected = sum(n for r, n in rows_by_reason.items() if r in ("out_of_order", "outside_session"))
    # every good (decodable, in-order) tick processed, every bad one counted by reason
    assert health("tapewatch_ticks_total") == accepted - engine_rejected
    for reason, n in rows_by_reason.items():
        assert health("tapewatch_ticks_rejected_total", {"reason": reason}) == n, reason
    assert len(expected_bad) > 100 and accepted > 100


@pytest.mark.integration
def test_dead_letter_record_layout(kafka_broker, unique_name):
    """One record per bad message: JSON body, source key, reason/source headers, rows for a batch."""
    from types import SimpleNamespace

    dlq_topic = unique_name("dlq")
    kafka_broker.create_topic(dlq_topic)
    good = TickBatch.from_columns(["DXY", "DXY"], [1, 2], [99.0, -1.0], [1, 1])
    values = [b'{"instrument": "DXY"', encode_batch(good), None]
    records = [SimpleNamespace(topic="ticks", partition=3, offset=10 + i, key=b"DXY", value=v) for i, v in enumerate(values)]
    d = decode(values)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, **PRODUCER_TUNING)
    dlq = DeadLetterQueue(producer, topic=dlq_topic)
    assert dlq.send_rejects(d.rejects, records) == 3
    dlq.flush(timeout=10)
    producer.close()
    got = sorted(read_topic(kafka_broker.bootstrap, dlq_topic), key=lambda r: r.offset)
    assert len(got) == 3
    bodies = [orjson.loads(r.value) for r in got]
    assert bodies[0] == {"reason": "malformed", "error": bodies[0]["error"], "topic": "ticks", "partition": 3,
                         "offset": 10, "key": "RFhZ", "rows": None, "original": base64.b64encode(values[0]).decode()}
    assert bodies[0]["error"].startswith("invalid JSON")
    assert bodies[1]["rows"] == [{"row": 1, "reason": "bad_price",
                                  "error": "price -1.0: price must be a finite number > 0"}]
    assert base64.b64decode(bodies[1]["original"]) == values[1]
    assert (bodies[2]["original"], bodies[2]["error"]) == (None, "null message value")
    assert [dict(r.headers) for r in got] == [
        {"reason": b"malformed", "source": b"ticks/3/10"}, {"reason": b"bad_price", "source": b"ticks/3/11"},
        {"reason": b"malformed", "source": b"ticks/3/12"}]
    assert all(r.key == b"DXY" for r in got)


@pytest.mark.integration
def test_a_dead_letter_too_large_for_a_record_names_its_source_instead(kafka_broker, unique_name):
    """A bad message of megabytes, or a batch of thousands of bad rows, still gives one dead letter
    that fits a default Kafka record (1 MB): the source is identified, not copied."""
    import hashlib
    from types import SimpleNamespace

    from consumers.deadletter import MAX_ORIGINAL_BYTES, MAX_ROWS

    dlq_topic = unique_name("dlq")
    kafka_broker.create_topic(dlq_topic)
    huge = b'{"instrument": "' + b"X" * (2 * 1024 * 1024) + b'"'        # 2 MB of malformed JSON
    n_bad = 3 * MAX_ROWS
    bad_rows = TickBatch.from_columns(["DXY"] * n_bad, np.arange(1, n_bad + 1), np.full(n_bad, -1.0), np.ones(n_bad))
    values = [huge, encode_batch(bad_rows)]
    assert len(values[1]) < MAX_ORIGINAL_BYTES          # copied whole; only its rows are cut
    records = [SimpleNamespace(topic="ticks", partition=0, offset=i, key=b"DXY", value=v) for i, v in enumerate(values)]
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, **PRODUCER_TUNING)
    dlq = DeadLetterQueue(producer, topic=dlq_topic)
    assert dlq.send_rejects(decode(values).rejects, records) == 2
    dlq.flush(timeout=10)
    producer.close()
    got = sorted(read_topic(kafka_broker.bootstrap, dlq_topic), key=lambda r: orjson.loads(r.value)["offset"])
    assert all(len(r.value) < 1_000_000 for r in got)
    first, second = (orjson.loads(r.value) for r in got)
    assert (first["reason"], first["original"], first["original_bytes"]) == ("malformed", None, len(huge))
    assert first["original_sha256"] == hashlib.sha256(huge).hexdigest()
    assert (first["topic"], first["partition"], first["offset"]) == ("ticks", 0, 0)
    assert base64.b64decode(second["original"]) == values[1] and "original_sha256" not in second
    assert second["rows_total"] == n_bad and len(second["rows"]) == MAX_ROWS
    assert second["rows"][0] == {"row": 0, "reason": "bad_price", "error": "price -1.0: price must be a finite number > 0"}
