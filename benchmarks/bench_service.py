"""The Kafka service end to end: throughput, checkpoint cost and tick-to-alert latency.

Starts a private Tansu broker and redis-server (``tests/servers.py``), generates a labelled tape
(``signals.scenarios``; the service gets the scenario's engine config) for JSON and latency, and
a dense high-rate tape (``bench_engine.feed``: 200 instruments, ~20 ticks per instrument-second,
default config) for binary batches, and measures, in one run:

a. **bare loop**: kafka-python ``KafkaConsumer`` (the shared tuning of
   ``consumers.kafka_options``) + ``orjson.loads`` per message, no engine: the ceiling for JSON;
b. **tapewatch run** (a subprocess, ``--exit-when-idle``) on the same JSON topic and on a topic of
   binary batches; its rate is read from ``tapewatch_ticks_total`` on its ``/metrics`` endpoint,
   from the first tick counted to the last (start-up and group join excluded). For batches the
   ceiling is the engine itself: ``Engine.process`` alone over the same tape is printed too;
c. **checkpoint** of 1,000 instruments: ``Engine.snapshot`` + one atomic ``CheckpointStore.write``;
d. **tick-to-alert latency** at a fixed input rate (default 100,000 ticks/s, binary batches):
   ``tapewatch publish``'s ``ticks_per_second`` pacing sends tick ``i`` at ``start + i / rate``;
   a separate process reads the alerts topic and stamps each transition's arrival with the wall
   clock; latency = arrival - scheduled send time of the tick that triggered the transition. The
   tape keeps its own event times (the engine sees a realistic tape) and the scheduled send time
   plays the role of the rebased event time. Also reported without the first seconds, where
   the service's first ``Engine.process`` call (numba cache load, ~1.5 s) leaves a backlog.

Each Kafka measurement (a+b JSON, b batches, d) runs against a fresh in-memory broker holding
only its own topics.

Also printed: the publish rates (kafka-python producer) for both formats.
Targets: JSON >= 150k ticks/s per process and >= 0.8x the bare loop; batches >= 5M ticks/s;
p99 tick-to-alert <= 100 ms at 100k ticks/s.

Run: ``python benchmarks/bench_service.py [--json-ticks 1000000] [--batch-ticks 10000000]
[--latency-rate 100000] [--latency-ticks 1500000]`` (about 3 minutes on 2 cores with the defaults).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from consumers.kafka_options import CONSUMER_TUNING, PRODUCER_TUNING  # noqa: E402
from consumers.publish import publish  # noqa: E402
from consumers.state import CheckpointStore, connect  # noqa: E402
from signals.engine import Engine  # noqa: E402
from signals.config import EngineConfig  # noqa: E402
from signals.scenarios import generate  # noqa: E402
from bench_engine import feed as dense_feed  # noqa: E402
from signals.ticks import TickBatch  # noqa: E402
from tests.servers import free_port, start_broker, start_redis  # noqa: E402

PARTITIONS = 4
WARMUP_SECONDS = 3.0    # latency is also reported without the transitions of the first seconds


def scenario_tape(n: int, seed: int, instruments: int):
    """The first ``n`` ticks (event-time order) of a generated scenario, and its config file text."""
    days = 1
    while True:
        sc = generate(seed=seed, instruments=instruments, days=days)
        if len(sc.ticks) >= n or days >= 30:
            return sc, sc.ticks.select(slice(0, n))
        days = max(days + 1, int(days * n / max(len(sc.ticks), 1)) + 1)


def produce(bootstrap: str, topic: str, batch: TickBatch, fmt: str, **pace):
    producer = KafkaProducer(bootstrap_servers=bootstrap, **{**PRODUCER_TUNING, **pace.pop("tuning", {})})
    try:
        chunks = [batch.select(slice(i, i + 200_000)) for i in range(0, len(batch), 200_000)]
        stats = publish(producer, chunks, topic=topic, fmt=fmt, **pace)
    finally:
        producer.close()
    if stats.failed:
        raise RuntimeError(f"publishing to {topic} failed: {stats.first_error}")
    return stats


def bare_loop(bootstrap: str, topic: str, n_messages: int) -> float:
    """Messages/s of poll + orjson.loads per message, from the first record to the last."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **CONSUMER_TUNING)
    c.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    c.seek_to_beginning()
    loads = orjson.loads
    got, first = 0, None
    deadline = time.monotonic() + 600
    while got < n_messages and time.monotonic() < deadline:
        for recs in c.poll(timeout_ms=500).values():
            if first is None:
                first = time.perf_counter()
            for r in recs:
                loads(r.value)
            got += len(recs)
    elapsed = time.perf_counter() - first
    c.close()
    if got != n_messages:
        raise RuntimeError(f"bare loop read {got} of {n_messages} messages")
    return got / elapsed


def metrics(port: int, *names: str) -> list[float | None]:
    """Values of unlabelled samples on the service's ``/metrics`` (None where absent or unreachable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return [None] * len(names)
    found = dict(line.split()[:2] for line in text.splitlines() if line and not line.startswith("#"))
    return [float(found[n]) if n in found else None for n in names]


def metric(port: int, name: str) -> float | None:
    return metrics(port, name)[0]


def start_service(tmp: Path, bootstrap: str, redis_url: str, topic: str, config: Path, tag: str):
    port = free_port()
    log = open(tmp / f"run-{tag}.log", "wb")
    argv = [sys.executable, "-m", "consumers.cli", "run", "--bootstrap-servers", bootstrap, "--topic", topic,
            "--group-id", f"bench-{tag}", "--redis-url", redis_url, "--config", str(config),
            "--alerts-topic", f"alerts-{tag}", "--deadletter-topic", f"dlq-{tag}", "--metrics-host", "127.0.0.1",
            "--metrics-port", str(port), "--exit-when-idle", "3", "--session-timeout-ms", "6000",
            "--heartbeat-interval-ms", "2000", "--offset-reset-policy", "earliest"]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    return proc, port


def run_service(tmp: Path, bootstrap: str, redis_url: str, topic: str, n_ticks: int, config: Path, tag: str) -> float:
    """Ticks/s of ``tapewatch run`` over a topic already holding ``n_ticks`` ticks.

    Between two scrapes: the first that sees ticks counted and the last, each read as the count
    at the service's own wall-clock stamp of its latest batch
    (``tapewatch_last_processed_timestamp_seconds``), so neither the scrape's own delay nor the
    time the service takes to answer it enters the rate (if the first answer came only after half
    the ticks, the rate runs from when that scrape was sent). Scrapes are 20 ms apart until the first
    ticks are counted, then 0.5 s: each scrape renders every instrument's gauges in the service,
    so frequent scrapes would slow what they measure.
    """
    proc, port = start_service(tmp, bootstrap, redis_url, topic, config, tag)
    first = last = asked = None
    try:
        while proc.poll() is None:
            t = time.time()
            v, done_at = metrics(port, "tapewatch_ticks_total", "tapewatch_last_processed_timestamp_seconds")
            if v:
                if first is None:
                    first, asked = (done_at, v), (t, v)
                last = (done_at, v)
                if v >= n_ticks:
                    break
            time.sleep(0.02 if first is None else 0.5)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode not in (0, None):
        raise RuntimeError(f"tapewatch run exited with {proc.returncode}; see {tmp}/run-{tag}.log")
    if last is None or last[1] < n_ticks:
        raise RuntimeError(f"tapewatch run counted {last[1] if last else 0} of {n_ticks} ticks")
    (t0, v0), (t1, v1) = first, last
    if v0 >= n_ticks:
        # no scrape was answered while the service worked (seen once in a dozen runs: one scrape
        # waited about 2 s, the whole run): there is no window to measure
        print(f"({tag}: no scrape answered while tapewatch run worked; no rate)", flush=True)
        return float("nan")
    if v1 - v0 < n_ticks / 2:
        # a busy service answered its first scrape late, after most ticks: measure from when that
        # scrape was sent instead (the rate then errs low)
        (t0, v0) = asked
    return (v1 - v0) / (t1 - t0)


def engine_rate(config, tape: TickBatch, chunk: int = 200_000) -> float:
    """Ticks/s of ``Engine.process`` alone over ``tape`` in chunks: the ceiling for the service."""
    engine = Engine(config)
    t = time.perf_counter()
    for lo in range(0, len(tape), chunk):
        engine.process(tape.select(slice(lo, lo + chunk)))
    return len(tape) / (time.perf_counter() - t)


def checkpoint_cost(redis_url: str, n_instruments: int = 1000, reps: int = 20) -> dict:
    rng = np.random.default_rng(5)
    n = n_instruments * 300
    names = np.array([f"I{i:04d}" for i in range(n_instruments)])[np.tile(np.arange(n_instruments), 300)]
    ts = 1_747_747_800_000_000_000 + np.arange(n) * 3_000_000
    price = 100 * np.exp(np.cumsum(rng.standard_normal(n) * 1e-4))
    engine = Engine()
    engine.process(TickBatch.from_columns(names, ts, price, rng.integers(1, 100, n), rng.choice([-1, 1], n)))
    store = CheckpointStore(connect(redis_url), group="bench", topic="ckpt")
    token = store.claim(0).token
    snap, write = [], []
    for i in range(reps):
        t = time.perf_counter()
        blob = engine.snapshot(engine.instruments)
        snap.append(time.perf_counter() - t)
        t = time.perf_counter()
        store.write(0, token, blob, i)
        write.append(time.perf_counter() - t)
    return {"snapshot_ms": 1e3 * statistics.median(snap), "write_ms": 1e3 * statistics.median(write),
            "mb": len(blob) / 1e6}


def _read_alerts(bootstrap: str, topic: str, out: str, stop) -> None:
    """(child process) every transition on ``topic`` with its arrival time, as JSON lines."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10)
    while not c.partitions_for_topic(topic):
        time.sleep(0.05)
    c.assign([TopicPartition(topic, p) for p in c.partitions_for_topic(topic)])
    c.seek_to_beginning()
    with open(out, "wb") as f:
        while not stop.is_set():
            for recs in c.poll(timeout_ms=50).values():
                now = time.time_ns()
                for r in recs:
                    f.write(orjson.dumps({"arrived": now, "created_ms": r.timestamp, **orjson.loads(r.value)}) + b"\n")
            f.flush()
    c.close()


def latency(tmp: Path, broker, redis_url: str, tape: TickBatch, config: Path, rate: float) -> dict:
    topic, tag = "latency-ticks", "latency"
    broker.create_topic(topic, PARTITIONS)
    broker.create_topic(f"alerts-{tag}", 1)
    proc, port = start_service(tmp, broker.bootstrap, redis_url, topic, config, tag)
    out = tmp / "alerts.jsonl"
    stop = mp.Event()
    reader = mp.Process(target=_read_alerts, args=(broker.bootstrap, f"alerts-{tag}", str(out), stop))
    reader.start()
    try:
        while (metric(port, "tapewatch_assigned_partitions") or 0) < PARTITIONS:
            if proc.poll() is not None:
                raise RuntimeError(f"tapewatch run exited with {proc.returncode}; see {tmp}/run-{tag}.log")
            time.sleep(0.1)
        time.sleep(1.0)                                  # partitions restored and being polled
        stats = produce(broker.bootstrap, topic, tape, "batch", ticks_per_second=rate, tuning={"linger_ms": 1})
        proc.wait(timeout=120)
        time.sleep(0.5)
    finally:
        stop.set()
        reader.join(timeout=10)
        if proc.poll() is None:
            proc.kill()
    names = tape.instrument_names()
    first_row = {}                                         # (instrument, ts) -> first row with them
    for i in range(len(tape) - 1, -1, -1):
        first_row[(names[i], int(tape.ts[i]))] = i
    lat, sched, kinds, svc = [], [], [], []
    for line in out.read_bytes().splitlines():
        t = orjson.loads(line)
        sched.append(first_row[(t["instrument"], t["ts"])] / rate)          # seconds after the start
        lat.append((t["arrived"] - stats.started_ns) / 1e6 - sched[-1] * 1e3)
        # the alert record's timestamp is set when the service hands it to its producer
        svc.append(t["created_ms"] - stats.started_ns / 1e6 - sched[-1] * 1e3)
        kinds.append(t["event"])
    if not lat:
        raise RuntimeError("no transitions arrived on the alerts topic")
    lat, sched, svc = np.array(lat), np.array(sched), np.array(svc)
    if os.environ.get("BENCH_DUMP"):
        np.savetxt(os.environ["BENCH_DUMP"], np.c_[sched, lat, svc], fmt="%.3f")
    steady = lat[sched >= WARMUP_SECONDS]
    enter = lat[np.array(kinds) == "enter"]
    return {"n": len(lat), "alerts": len(enter), "p50": np.percentile(lat, 50), "p99": np.percentile(lat, 99),
            "max": lat.max(), "svc_p50": np.percentile(svc, 50), "svc_p99": np.percentile(svc, 99),
            "alerts_p99": np.percentile(enter, 99) if len(enter) else float("nan"),
            "steady_n": len(steady), "steady_p50": np.percentile(steady, 50), "steady_p99": np.percentile(steady, 99),
            "achieved_rate": stats.ticks / stats.seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json-ticks", type=int, default=1_000_000)
    ap.add_argument("--batch-ticks", type=int, default=10_000_000)
    ap.add_argument("--latency-rate", type=float, default=100_000.0)
    ap.add_argument("--latency-ticks", type=int, default=1_500_000)
    ap.add_argument("--parts", default="abcd", help="which measurements to run (default: abcd; b needs a)")
    args = ap.parse_args()
    parts = set(args.parts) | ({"a"} if "b" in args.parts else set())

    tmp = Path(tempfile.mkdtemp(prefix="bench-service-"))
    load0 = os.getloadavg()[0]
    print("generating tapes ...", flush=True)
    sc_small, small = scenario_tape(max(args.json_ticks, args.latency_ticks), seed=11, instruments=20)
    json_tape, latency_tape = small.select(slice(0, args.json_ticks)), small.select(slice(0, args.latency_ticks))
    cfg_small = tmp / "small.toml"
    sc_small.write_config(cfg_small)
    Engine().process(json_tape.select(slice(0, 1000)))     # numba compile/load outside any timing

    # every Kafka measurement gets a fresh broker: Tansu keeps topics in memory and serves fetches
    # more slowly while it holds the 1M-message JSON topic (batch runs measured 3.5M ticks/s
    # beside it, 5.2M without it), which a disk-backed Kafka would not do
    redis = start_redis(tmp)
    broker = None

    def fresh_broker():
        nonlocal broker
        if broker is not None:
            broker.stop()
        broker = start_broker(tmp)
        return broker

    try:
        if "a" in parts:
            fresh_broker().create_topic("bench-json", PARTITIONS)
            print(f"publishing {len(json_tape):,} JSON ticks ...", flush=True)
            pj = produce(broker.bootstrap, "bench-json", json_tape, "json")
            print("(a) bare loop ...", flush=True)
            bare = bare_loop(broker.bootstrap, "bench-json", pj.messages)
        if "b" in parts:
            print("(b) tapewatch run, JSON ...", flush=True)
            run_json = run_service(tmp, broker.bootstrap, redis.url, "bench-json", len(json_tape), cfg_small, "json")
            # batches are for high-rate feeds: a dense tape (about 20 ticks per instrument per
            # 1-s bar, 200 instruments), default engine config
            batch_tape = dense_feed(args.batch_ticks, 200, 20.0)
            cfg_big = tmp / "big.toml"
            cfg_big.write_text("")
            engine_alone = engine_rate(EngineConfig(), batch_tape)
            fresh_broker().create_topic("bench-batch", PARTITIONS)
            print(f"publishing {len(batch_tape):,} ticks in batches ...", flush=True)
            pb = produce(broker.bootstrap, "bench-batch", batch_tape, "batch")
            print("(b) tapewatch run, batches ...", flush=True)
            run_batch = run_service(tmp, broker.bootstrap, redis.url, "bench-batch", len(batch_tape), cfg_big, "batch")
        if "c" in parts:
            print("(c) checkpoint ...", flush=True)
            ck = checkpoint_cost(redis.url)
        if "d" in parts:
            print(f"(d) latency at {args.latency_rate:,.0f} ticks/s ...", flush=True)
            lt = latency(tmp, fresh_broker(), redis.url, latency_tape, cfg_small, args.latency_rate)
    finally:
        if broker is not None:
            broker.stop()
        redis.stop()

    print(f"\n{'measurement':44s} {'ticks/s':>12s} {'vs bare':>8s}  target")
    rows = []
    if "a" in parts:
        rows += [("publish, JSON (kafka-python producer)", pj.ticks / pj.seconds, None, ""),
                 ("(a) bare loop: poll + orjson.loads, JSON", bare, 1.0, "")]
    if "b" in parts:
        rows += [("(b) tapewatch run, JSON", run_json, run_json / bare, ">= 150,000 and >= 0.8x bare"),
                 ("publish, batches", pb.ticks / pb.seconds, None, ""),
                 ("engine alone on the dense batch tape (in process)", engine_alone, engine_alone / bare, ""),
                 ("(b) tapewatch run, batches", run_batch, run_batch / bare,
                  f">= 5,000,000 ({run_batch / engine_alone:.2f}x the engine alone)")]
    for name, value, ratio, target in rows:
        print(f"{name:44s} {value:12,.0f} {'' if ratio is None else f'{ratio:7.2f}x':>8s}  {target}")
    if "c" in parts:
        print(f"\n(c) checkpoint of 1,000 instruments: snapshot {ck['snapshot_ms']:.1f} ms + Redis write "
              f"{ck['write_ms']:.1f} ms = {ck['snapshot_ms'] + ck['write_ms']:.1f} ms ({ck['mb']:.2f} MB), median of 20")
    if "d" in parts:
        print(f"(d) tick-to-transition latency at {args.latency_rate:,.0f} ticks/s (achieved "
              f"{lt['achieved_rate']:,.0f}): p50 {lt['p50']:.1f} ms, p99 {lt['p99']:.1f} ms, max {lt['max']:.1f} ms "
              f"over {lt['n']} transitions (tick to the service's produce call: p50 {lt['svc_p50']:.1f} ms, "
              f"p99 {lt['svc_p99']:.1f} ms); alerts only ({lt['alerts']}): p99 {lt['alerts_p99']:.1f} ms; "
              f"after the first {WARMUP_SECONDS:.0f} s ({lt['steady_n']} transitions): p50 {lt['steady_p50']:.1f} ms, "
              f"p99 {lt['steady_p99']:.1f} ms  [target p99 <= 100 ms]")
    print(f"\nmachine: {os.cpu_count()} cores shared by broker, redis-server, service and publisher; load average "
          f"{load0:.1f} at start, {os.getloadavg()[0]:.1f} at end (other work on the machine skews every figure). "
          f"Logs: {tmp}")


if __name__ == "__main__":
    main()
