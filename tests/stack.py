"""A known tape and a running stack for the end-to-end tests (tests/test_e2e.py, tests/consumers/
test_metrics.py, tests/deploy/test_dashboard_data.py).

The tape (:func:`make_tape`, also used by tests/consumers/test_metrics.py and
tests/deploy/test_dashboard_data.py) is four hours of 1-tick-per-second trading starting Mon
2025-05-19 00:00 UTC, built with numpy from a fixed seed:

* ``UST10Y`` (a yield, ``invert = true``): a random walk, then from 1.5 h a steady grind up of six
  hourly standard deviations per hour with 75% of aggressive trades on the rising side and no change
  in volatility: a steady *seller* of Treasuries (the May 2025 grind).
* ``DXY``: a random walk, then in the last minute a -0.3% headline jump followed by a cascade of
  6 ticks/s at triple volatility, 80% sell-initiated, drifting down: a momentum *sell* burst.
* ``BUND``: the null process (a control).

With the calibrated engine the tape ends with UST10Y in ``steady_flow``/sell and DXY in
``burst``/sell (asserted on the engine directly in tests/consumers/test_metrics.py). The CSV
written by :func:`write_tape` also carries :data:`BAD_ROWS` (skipped and counted by ``tapewatch
publish``) and a few BUND ticks a minute older than their predecessors (rejected by the engine as
``out_of_order``, so the rejected-ticks series have data).

:func:`running_stack` (also used by tests/deploy/test_dashboard_data.py) starts ``tapewatch run``
and a Prometheus scraping it every second; :meth:`Stack.feed_tape` publishes the tape with
``tapewatch publish --as-fast-as-possible`` in two parts, the first hour (no regime yet) and, once
Prometheus has scraped it, the rest, so that ``increase(tapewatch_alerts_total[...])`` sees the
entries and not only the regime state set. The whole test takes about 20 s of wall time.
"""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import yaml

from signals.config import EngineConfig, InstrumentConfig
from signals.ticks import TickBatch
from tests.prom import REPO, start_prometheus, stop
from tests.servers import free_port

T0 = 1_747_612_800 * 10**9          # Mon 2025-05-19 00:00 UTC, in ns
SIGMA = 2e-5                        # log-price volatility per sqrt(second)
TAPE_SEED = 1
#: The engine config of the tape: all three instruments watched, the yield inverted.
TAPE_CONFIG = EngineConfig(instruments={"UST10Y": InstrumentConfig(invert=True, watch=True),
                                        "DXY": InstrumentConfig(watch=True),
                                        "BUND": InstrumentConfig(watch=True)})
TAPE_CONFIG_TOML = """\
[instruments.UST10Y]
invert = true
watch = true

[instruments.DXY]
watch = true

[instruments.BUND]
watch = true
"""
#: CSV rows every tick reader must reject (bad price, negative size, bad side, naive time).
BAD_ROWS = (("BUND", str(T0 + 60 * 10**9), "-1", "5", "B"), ("BUND", str(T0 + 61 * 10**9), "131.0", "-3", "S"),
            ("BUND", str(T0 + 62 * 10**9), "131.0", "5", "X"), ("BUND", "2025-05-19T00:01:03", "131.0", "5", "B"))
OUT_OF_ORDER = 3                    # BUND ticks a minute older than their predecessor


def _walk(rng, seconds: float, sigma: float, rate: float = 1.0):
    """Poisson tick times (s), driftless log returns, 50/50 aggressor sides and sizes."""
    t = np.cumsum(rng.exponential(1 / rate, int(seconds * rate * 1.2) + 10))
    t = t[t < seconds]
    r = rng.standard_normal(t.size) * sigma * np.sqrt(np.diff(t, prepend=0.0))
    return t, r, np.where(rng.random(t.size) < 0.5, 1, -1), np.round(rng.lognormal(2.3, 0.5, t.size))


def make_tape(*, seed: int = TAPE_SEED, hours: float = 4.0, steady_from_hours: float = 1.5,
              burst_seconds: float = 60.0) -> TickBatch:
    """The tape described in the module docstring, sorted by time (see :func:`write_tape` for the CSV)."""
    rng = np.random.default_rng(seed)
    total = hours * 3600
    cols = []
    t, r, side, size = _walk(rng, total, SIGMA)
    on = t >= steady_from_hours * 3600
    r[on] += 6 * SIGMA / 60 * np.diff(t, prepend=0.0)[on]          # 6 hourly sds per hour
    side[on] = np.where(rng.random(on.sum()) < 0.75, 1, -1)
    cols.append(("UST10Y", t, 4.40 * np.exp(np.cumsum(r)), size, side))
    burst_at = total - burst_seconds
    t, r, side, size = _walk(rng, burst_at, SIGMA)
    bt, br, _, bsize = _walk(rng, burst_seconds, 3 * SIGMA, rate=6.0)
    br[0] -= 0.003                                                  # the headline jump
    br -= 3 * SIGMA * np.diff(bt, prepend=0.0)
    bside = np.where(rng.random(bt.size) < 0.8, -1, 1)
    cols.append(("DXY", np.concatenate([t, burst_at + bt]), 100.5 * np.exp(np.cumsum(np.concatenate([r, br]))),
                 np.concatenate([size, bsize]), np.concatenate([side, bside])))
    t, r, side, size = _walk(rng, total, SIGMA)
    cols.append(("BUND", t, 131.0 * np.exp(np.cumsum(r)), size, side))
    names = np.concatenate([np.full(c[1].size, c[0]) for c in cols])
    ts = T0 + np.round(np.concatenate([c[1] for c in cols]) * 1e9).astype(np.int64)
    o = np.argsort(ts, kind="stable")
    return TickBatch.from_columns(names[o], ts[o], np.concatenate([c[2] for c in cols])[o],
                                  np.concatenate([c[3] for c in cols])[o], np.concatenate([c[4] for c in cols])[o])


def write_tape(path: Path, batch: TickBatch) -> Path:
    """CSV (instrument,ts,price,size,side) of ``batch``, plus :data:`BAD_ROWS` and :data:`OUT_OF_ORDER` stale ticks."""
    names = batch.instrument_names()
    sides = np.array(["S", "", "B"])[batch.side + 1]
    rows = [[n, str(t), repr(p), repr(s), sd] for n, t, p, s, sd in
            zip(names.tolist(), batch.ts.tolist(), batch.price.tolist(), batch.size.tolist(), sides.tolist())]
    bund = np.flatnonzero(names == "BUND")
    for k in range(OUT_OF_ORDER):                  # mid-file, a minute stale
        i = bund[len(bund) // 2 + 100 * k]
        rows.insert(i + 1 + k, ["BUND", str(int(batch.ts[i]) - 60 * 10**9), repr(float(batch.price[i])), "1.0", "B"])
    rows[10:10] = [list(r) for r in BAD_ROWS]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["instrument", "ts", "price", "size", "side"])
        w.writerows(rows)
    return path


# ---- the running stack -----------------------------------------------------------------------

PHASE1_END = T0 + 3600 * 10**9      # the first hour has no regime: every series is scraped at its start value


@dataclass
class Stack:
    """``tapewatch run`` (a subprocess) and a Prometheus scraping it; :meth:`publish` feeds the tape."""

    prometheus: str
    bootstrap: str
    topic: str
    tmp_path: Path
    service: subprocess.Popen
    service_log: Path

    def publish(self, path: Path) -> None:
        out = subprocess.run([sys.executable, "-m", "consumers.cli", "publish", str(path), "--topic", self.topic,
                              "--bootstrap-servers", self.bootstrap, "--as-fast-as-possible"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr

    def query(self, expr: str) -> list:
        """Instant query; the result list (asserts the query itself succeeded)."""
        q = urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(f"{self.prometheus}/api/v1/query?{q}", timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def wait(self, what: str, fn, timeout: float = 60.0):
        """Poll ``fn`` until it returns something truthy; fail with the service log otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            got = fn()
            if got:
                return got
            if self.service.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what} (service exit code {self.service.poll()}); service log:\n"
                            + self.service_log.read_text(errors="replace")[-4000:])
            time.sleep(0.25)

    def feed_tape(self) -> None:
        """Publish the tape in two parts: the regime-free first hour, then (once Prometheus has scraped
        every instrument at its start values, so ``increase()`` sees the entries) the rest."""
        batch = make_tape()
        first = batch.ts < PHASE1_END
        self.publish(write_tape(self.tmp_path / "tape-1.csv", batch.select(first)))
        self.wait("the first hour to be scraped", lambda: self.query(
            f'tapewatch_last_event_timestamp_seconds{{instrument=""}} >= {PHASE1_END / 1e9 - 60}'
            " and on() count(tapewatch_alerts_total) == 18"))
        self.publish(write_tape(self.tmp_path / "tape-2.csv", batch.select(~first)))
        self.wait("the DXY burst to be scraped", lambda: self.query(
            'tapewatch_regime{instrument="DXY",regime="burst"} == 1'
            ' and on() sum(tapewatch_alerts_total{instrument="DXY",kind="burst"}) == 1'))


@contextmanager
def running_stack(tmp_path: Path, broker, redis_server, unique_name, *, rule_files=(),
                  alertmanager_url: str | None = None) -> Iterator[Stack]:
    """Topics on ``broker``, ``tapewatch run`` checkpointing to ``redis_server``, and a Prometheus scraping it."""
    topic, alerts, dead = unique_name("ticks"), unique_name("alerts"), unique_name("dead")
    broker.create_topic(topic, 2)
    broker.create_topic(alerts, 1)
    broker.create_topic(dead, 1)
    config = tmp_path / "tapewatch.toml"
    config.write_text(TAPE_CONFIG_TOML)
    port = free_port()
    log_path = tmp_path / "service.log"
    with log_path.open("wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "consumers.cli", "run", "--config", str(config),
             "--bootstrap-servers", broker.bootstrap, "--topic", topic, "--alerts-topic", alerts,
             "--deadletter-topic", dead, "--group-id", unique_name("group"),
             "--redis-url", redis_server.url, "--metrics-host", "127.0.0.1", "--metrics-port", str(port),
             "--session-timeout-ms", "6000", "--heartbeat-interval-ms", "1000", "--checkpoint-every-seconds", "0.5"],
            stdout=log, stderr=subprocess.STDOUT)
    prom = None
    try:
        prom_url, prom = start_prometheus(tmp_path, scrape_targets=[f"127.0.0.1:{port}"], rule_files=rule_files,
                                          alertmanager_url=alertmanager_url)
        stack = Stack(prom_url, broker.bootstrap, topic, tmp_path, service, log_path)
        stack.wait("the service to be scraped", lambda: stack.query('up{job="tapewatch"} == 1'))
        yield stack
    finally:
        if prom is not None:
            stop(prom)
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


# ---- the end-to-end test ---------------------------------------------------------------------

class Webhook:
    """An HTTP server that records the JSON bodies Alertmanager posts to it, by path."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> set[tuple]:
        """(receiver path, alertname, instrument, side, status) of every alert delivered so far."""
        return {(path, a["labels"]["alertname"], a["labels"].get("instrument"), a["labels"].get("side"), a["status"])
                for path, body in list(self.received) for a in body["alerts"]}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def alertmanager_config(webhook_url: str) -> str:
    """The shipped Alertmanager config with every webhook pointed at ``webhook_url`` and 1 s group waits."""
    doc = yaml.safe_load((REPO / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in doc["receivers"]:
        for hook in receiver.get("webhook_configs", ()):
            hook["url"] = webhook_url + urllib.parse.urlsplit(hook["url"]).path
    routes = [doc["route"]]
    while routes:
        route = routes.pop()
        if "group_wait" in route:
            route["group_wait"] = "1s"
        routes.extend(route.get("routes", ()))
    return yaml.safe_dump(doc)


def compressed_rules(tmp_path: Path) -> Path:
    """The shipped rules with every ``for:`` shortened 100 times (tools/rules.py); ranges unchanged."""
    out = tmp_path / "tapewatch.rules.yml"
    subprocess.run([sys.executable, str(REPO / "tools" / "rules.py"), "--for-scale", "0.01", str(out)], check=True)
    return out
