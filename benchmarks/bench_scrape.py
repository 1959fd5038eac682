"""Scrape time of ``/metrics``: the tapewatch exporter against labelled prometheus_client Gauges.

For each size (1,000 and 10,000 instruments, 1,000 of them watched, 100 in a non-quiet regime
and 50 that alerted within 24 h, half of those outside the watchlist) it serves the same
series two ways and times ~50 HTTP GETs of each, wall clock, from this process:

* tapewatch: :func:`consumers.metrics.start_exporter` (EngineCollector renders the numpy arrays
  of the engine view at scrape time);
* naive: one ``prometheus_client.Gauge``/``Counter`` per metric with a child per series, set
  from the same view, served by ``prometheus_client.start_http_server``. Timed with the
  ``Accept`` header Prometheus 2.x sends (the client then answers in OpenMetrics) and without
  one (text format 0.0.4, what tapewatch always serves).

The naive figures exclude the cost of keeping the Gauges up to date (printed separately as
"naive update"), which tapewatch does not pay at all. Target: <= 50 ms at 1,000 watched.

Run: ``python benchmarks/bench_scrape.py [--scrapes 50]``
"""
from __future__ import annotations

import argparse
import http.client
import statistics
import time

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from consumers.metrics import EngineCollector, Health, start_exporter
from signals.config import EngineConfig, InstrumentConfig
from signals.engine import REGIMES, STAT_NAMES, EngineView

PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
NOW = 1_747_612_800 * 10**9
WATCHED = 1_000


def make_view(n: int, seed: int = 0) -> EngineView:
    rng = np.random.default_rng(seed)
    regime = np.zeros(n, np.int8)
    active = rng.choice(n, 100, replace=False)
    regime[active] = rng.integers(1, 4, 100)
    alerts = rng.integers(0, 3, (n, 3, 2))
    last_alert = np.full(n, NOW - 3 * 86_400 * 10**9)
    last_alert[rng.choice(n, 50, replace=False)] = NOW - 3600 * 10**9
    stats = rng.normal(size=(n, len(STAT_NAMES)))
    stats[:, STAT_NAMES.index("last_price")] = 100 + rng.random(n)
    return EngineView(tuple(f"INST{i:05d}" for i in range(n)), regime,
                      np.where(regime > 0, rng.choice([-1, 1], n), 0).astype(np.int8),
                      NOW - rng.integers(0, 3600, n) * 10**9, np.full(n, NOW), stats, rng.integers(0, 9, n),
                      alerts, last_alert)


def copies(v: EngineView):
    """What Engine.view() costs: fresh array copies on every call."""
    return lambda: EngineView(v.names, *(getattr(v, f).copy() for f in
                                         ("regime", "side", "onset_ts", "last_ts", "stats", "jumps_total",
                                          "alerts_total", "last_alert_ts")))


def naive_registry(text: str) -> tuple[CollectorRegistry, float]:
    """The same per-instrument series as labelled prometheus_client metrics; returns (registry, seconds to set them)."""
    reg = CollectorRegistry()
    fams = [f for f in text_string_to_metric_families(text) if f.samples and "instrument" in f.samples[-1].labels]
    metrics = {}
    for f in fams:
        labels = [k for k in f.samples[-1].labels]
        cls = Counter if f.type == "counter" else Gauge
        metrics[f.name] = (cls(f.name, f.documentation, labels, registry=reg), labels)
    t = time.perf_counter()
    for f in fams:
        m, labels = metrics[f.name]
        for s in f.samples:
            if s.labels:
                child = m.labels(*(s.labels[k] for k in labels))
                child.inc(s.value) if f.type == "counter" else child.set(s.value)
    return reg, time.perf_counter() - t


def scrape_ms(port: int, n: int, accept: str | None) -> tuple[float, float, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    size = 0
    for _ in range(n + 3):                       # 3 warm-up scrapes
        t = time.perf_counter()
        conn.request("GET", "/metrics", headers={"Accept": accept} if accept else {})
        body = conn.getresponse().read()
        times.append(time.perf_counter() - t)
        size = len(body)
    conn.close()
    times = np.array(times[3:]) * 1e3
    return statistics.median(times), float(np.percentile(times, 99)), size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scrapes", type=int, default=50, help="timed scrapes per configuration (default: 50)")
    args = ap.parse_args()
    print(f"{'instruments':>11} {'exported':>8} {'series':>7} {'MB':>5} | {'tapewatch median/p99 ms':>23} | "
          f"{'naive (Prometheus Accept)':>25} | {'naive (text 0.0.4)':>18} | {'naive update ms':>15} | speed-up")
    for n in (1_000, 10_000):
        v = make_view(n)
        config = EngineConfig(instruments={v.names[i]: InstrumentConfig(watch=True) for i in range(WATCHED)})
        health = Health()
        health.event_time(NOW)
        ex = start_exporter(host="127.0.0.1", port=0, engine_view=copies(v), config=config, health=health)
        try:
            med, p99, size = scrape_ms(ex.port, args.scrapes, PROMETHEUS_ACCEPT)
        finally:
            ex.shutdown()
        text = EngineCollector(lambda: v, config).exposition()
        exported = sum(1 for s in next(f for f in text_string_to_metric_families(text)
                                       if f.name == "tapewatch_regime").samples if s.labels["regime"] == REGIMES[0])
        series = sum(len(f.samples) for f in text_string_to_metric_families(text))
        reg, update_s = naive_registry(text)
        server, thread = start_http_server(0, "127.0.0.1", registry=reg)
        try:
            port = server.server_address[1]
            nmed, np99, _ = scrape_ms(port, args.scrapes, PROMETHEUS_ACCEPT)
            tmed, tp99, _ = scrape_ms(port, args.scrapes, None)
        finally:
            server.shutdown()
            server.server_close()
        print(f"{n:>11,} {exported:>8,} {series:>7,} {size / 1e6:>5.2f} | {med:>10.1f} / {p99:>10.1f} | "
              f"{nmed:>11.1f} / {np99:>11.1f} | {tmed:>7.1f} / {tp99:>8.1f} | {update_s * 1e3:>15.1f} | "
              f"{nmed / med:.1f}x")
        print(f"{'':>11} target: tapewatch median scrape <= 50 ms at {WATCHED:,} watched: "
              f"{'ok' if med <= 50 else 'MISSED'}")


if __name__ == "__main__":
    main()
