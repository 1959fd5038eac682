"""``tapewatch publish`` against a real Tansu broker: what is consumed back is exactly the tape."""
from __future__ import annotations


import numpy as np
import pytest
from kafka import KafkaProducer

from consumers.cli import main
from consumers.kafka_options import PRODUCER_TUNING
from consumers.publish import publish
from consumers.wire import decode
from signals.ticks import TickBatch
from tests.servers import read_topic

pytestmark = pytest.mark.integration

TS0 = 1_747_747_800_000_000_000
SIDES = {1: "B", -1: "S", 0: ""}


def read_all(bootstrap: str, topic: str, n: int) -> list:
    records = read_topic(bootstrap, topic)
    assert len(records) == n, f"{topic}: {len(records)} records, expected {n}"
    return records


def tape(n: int = 3000, seed: int = 7) -> TickBatch:
    rng = np.random.default_rng(seed)
    names = np.array(["UST10Y", "DXY", "USDJPY", "CSI300", "BUND"])[rng.integers(0, 5, n)]
    ts = TS0 + np.cumsum(rng.integers(0, 2_000_000, n))           # 0-2 ms apart: a 3 s tape
    return TickBatch.from_columns(names, ts, np.round(100 + rng.standard_normal(n), 4),
                                  rng.integers(0, 50, n).astype(float), rng.choice([-1, 0, 1], n))


def per_instrument(batch: TickBatch) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for name, t, p, s, d in zip(batch.instrument_names().tolist(), batch.ts.tolist(), batch.price.tolist(),
                                batch.size.tolist(), batch.side.tolist()):
        out.setdefault(name, []).append((t, p, s, d))
    return out


def consumed(records: list) -> tuple[TickBatch, list[tuple[bytes, set]]]:
    """Decode records partition by partition (offset order); also each message key with the names it holds."""
    records = sorted(records, key=lambda r: (r.partition, r.offset))
    d = decode([r.value for r in records])
    assert d.rejects == []
    names = d.batch.instrument_names()
    keys = [(records[m].key, set(names[d.msg_index == m].tolist())) for m in range(len(records))]
    return d.batch, keys


def write_csv(path, batch: TickBatch, extra_lines=()) -> None:
    lines = ["instrument,ts,price,size,side"]
    lines += [f"{n},{t},{p!r},{s!r},{SIDES[d]}" for n, t, p, s, d in
              zip(batch.instrument_names().tolist(), batch.ts.tolist(), batch.price.tolist(),
                  batch.size.tolist(), batch.side.tolist())]
    path.write_text("\n".join([*lines, *extra_lines]) + "\n")


@pytest.mark.parametrize("fmt", ["json", "batch"])
def test_publish_round_trip(kafka_broker, unique_name, fmt):
    topic = unique_name("ticks")
    kafka_broker.create_topic(topic, partitions=3)
    b = tape()
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, **PRODUCER_TUNING)
    try:
        chunks = [b.select(slice(i, i + 700)) for i in range(0, len(b), 700)]   # chunk edges inside the tape
        stats = publish(producer, chunks, topic=topic, fmt=fmt, batch_rows=250)
    finally:
        producer.close()
    assert (stats.ticks, stats.failed) == (len(b), 0)
    if fmt == "json":
        assert stats.messages == len(b)
    else:   # one instrument per message, at most 250 rows, per chunk
        assert stats.messages == sum(-(-n // 250) for c in chunks for n in np.bincount(c.code) if n)
    got, keys = consumed(read_all(kafka_broker.bootstrap, topic, stats.messages))
    assert per_instrument(got) == per_instrument(b)                    # same ticks, same order per instrument
    assert all(names == {key.decode()} for key, names in keys)        # key = the one instrument inside


def test_publish_command_reads_a_tape_file(kafka_broker, unique_name, tmp_path, capsys, monkeypatch):
    topic = unique_name("ticks")
    kafka_broker.create_topic(topic, partitions=2)
    b = tape(500)
    path = tmp_path / "tape.csv"
    write_csv(path, b, extra_lines=["UST10Y,1747747800000000000,-4.5,1,S", "DXY,not-a-time,99,1,B"])
    monkeypatch.setenv("TAPEWATCH_BOOTSTRAP_SERVERS", kafka_broker.bootstrap)   # the env var is honoured
    code = main(["publish", str(path), "--topic", topic, "--format", "batch", "--as-fast-as-possible"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"published 500 ticks in 5 messages to {topic}" in out
    assert "skipped bad rows: bad_price 1, bad_ts 1" in out
    got, keys = consumed(read_all(kafka_broker.bootstrap, topic, 5))
    assert per_instrument(got) == per_instrument(b)


@pytest.mark.parametrize("pace", [{"rate": 4.0}, {"ticks_per_second": 80.0}])
def test_publish_paces(kafka_broker, unique_name, pace):
    """41 ticks spanning 2 s of event time, at 4x event time or 80 ticks/s: the last tick goes out
    >= 0.5 s after the first. With rebased time the event times are the wall clock at the start
    plus the tape's own offsets."""
    topic = unique_name("ticks")
    kafka_broker.create_topic(topic)
    n = 41
    b = TickBatch.from_columns(["DXY"] * n, TS0 + np.arange(n) * 50_000_000, np.full(n, 99.0), np.ones(n))
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, **{**PRODUCER_TUNING, "linger_ms": 0})
    try:
        stats = publish(producer, [b.select(slice(0, 20)), b.select(slice(20, None))], topic=topic,
                        rebase_time=True, **pace)
    finally:
        producer.close()
    assert stats.seconds >= 0.5 and stats.ticks == n
    records = read_all(kafka_broker.bootstrap, topic, n)
    sent_ms = [r.timestamp for r in records]                          # producer CreateTime
    assert sent_ms[-1] - sent_ms[0] >= 490
    assert sent_ms[20] - sent_ms[0] >= 240                             # the second chunk is paced too
    got = decode([r.value for r in records]).batch
    assert np.array_equal(np.diff(got.ts), np.diff(b.ts))
    assert got.ts[0] == stats.started_ns


def test_paced_ticks_go_out_in_groups_at_most_every_10ms(kafka_broker, unique_name):
    """400 ticks of one instrument at 4,000 ticks/s (0.1 s) in batch format: at most one message
    per 10 ms, however fast the producer returns, and every tick arrives in order."""
    topic = unique_name("ticks")
    kafka_broker.create_topic(topic)
    n = 400
    b = TickBatch.from_columns(["DXY"] * n, TS0 + np.arange(n) * 1_000_000, np.full(n, 99.0), np.ones(n))
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, **{**PRODUCER_TUNING, "linger_ms": 0})
    try:
        stats = publish(producer, [b], topic=topic, fmt="batch", ticks_per_second=4000.0)
    finally:
        producer.close()
    assert stats.ticks == n and 2 <= stats.messages <= 12, stats.messages
    records = read_all(kafka_broker.bootstrap, topic, stats.messages)
    sent_ms = [r.timestamp for r in records]
    assert min(np.diff(sent_ms)) >= 9
    assert np.array_equal(decode([r.value for r in records]).batch.ts, b.ts)


def test_publish_reports_connection_failure(capsys):
    from tests.servers import free_port

    address = f"127.0.0.1:{free_port()}"
    code = main(["publish", "/dev/null", "--bootstrap-servers", address, "--bootstrap-timeout", "0.5"])
    assert code == 1
    assert f"cannot connect to Kafka at {address}" in capsys.readouterr().out


def test_publish_argument_errors():
    with pytest.raises(ValueError, match="fmt must be one of json, batch"):
        publish(None, [], topic="t", fmt="avro")
    with pytest.raises(ValueError, match="rate must be > 0"):
        publish(None, [], topic="t", rate=0)
    with pytest.raises(ValueError, match="give rate or ticks_per_second, not both"):
        publish(None, [], topic="t", rate=1, ticks_per_second=1)
    with pytest.raises(SystemExit):
        main(["publish", "x.csv", "--rate", "2", "--as-fast-as-possible"])   # mutually exclusive
