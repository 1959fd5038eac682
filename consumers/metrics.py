"""Prometheus metrics: pipeline health and the engine's per-instrument state.

Two parts, served together on one ``/metrics`` endpoint by :func:`start_exporter`:

* :class:`Health` -- counters, gauges and histograms about the pipeline itself (no instrument
  label), updated by the service once per batch.
* :class:`EngineCollector` -- one custom collector that renders the engine's numpy arrays at
  scrape time. Only a bounded set of instruments gets series (the cardinality rule): the
  configured watchlist, instruments in a non-quiet regime, and instruments that alerted within
  24 hours of the latest event time. Everything else stays queryable with ``tapewatch status``.

The collector implements the usual ``collect()`` protocol (so ``generate_latest`` on
:attr:`Exporter.registry` works), but the HTTP endpoint uses :meth:`EngineCollector.exposition`,
which formats a whole column of values per metric in one pass instead of one Python sample
object per series: over ten times faster at tens of thousands of series (see
``benchmarks/bench_scrape.py``). The endpoint always answers in the Prometheus text format 0.0.4,
uncompressed.

Metric names, labels and meanings: docs/metrics.md.
"""
from __future__ import annotations

import importlib.metadata
import logging
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlsplit

import numpy as np
from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics,
                               generate_latest)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from signals.config import EngineConfig
from signals.engine import KINDS, REGIMES, STAT_NAMES, EngineView
from signals.ticks import REASONS

__all__ = ["Health", "EngineCollector", "Exporter", "start_exporter", "RECENT_ALERT_SECONDS"]

log = logging.getLogger(__name__)

# No ``*_created`` series: they would double the health series and nothing reads them.
disable_created_metrics()

#: An instrument that alerted this recently (event time) keeps its series after going quiet.
RECENT_ALERT_SECONDS = 86_400

SIDES = ("sell", "buy")     # index 0, 1 of EngineView.alerts_total's last axis
LAST_EVENT = "tapewatch_last_event_timestamp_seconds"
BATCH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CHECKPOINT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _version() -> str:
    try:
        return importlib.metadata.version("tapewatch")
    except importlib.metadata.PackageNotFoundError:     # running from a source tree
        return "unknown"


class Health:
    """Pipeline health metrics in a dedicated registry (:attr:`registry`), no instrument labels.

    Every method is a few lock-protected additions: call them once per batch.

    Examples
    --------
    >>> h = Health()
    >>> h.ticks(500); h.rejected("bad_price", 2); h.event_time(1_747_747_800_000_000_000)
    >>> h.registry.get_sample_value("tapewatch_ticks_total"), h.last_event_seconds
    (500.0, 1747747800.0)
    """

    def __init__(self):
        self.registry = r = CollectorRegistry(auto_describe=True)
        self._ticks = Counter("tapewatch_ticks", "Ticks accepted by the engine.", registry=r)
        self._rejected = Counter("tapewatch_ticks_rejected", "Ticks rejected, by reason.", ["reason"], registry=r)
        self._dead = Counter("tapewatch_dead_letters", "Messages sent to the dead-letter topic.", registry=r)
        self._batch = Histogram("tapewatch_batch_duration_seconds", "Wall time to decode and process one batch.",
                                buckets=BATCH_BUCKETS, registry=r)
        self._processed = Gauge("tapewatch_last_processed_timestamp_seconds",
                                "Wall clock time of the last processed batch.", registry=r)
        self._lag = Gauge("tapewatch_consumer_lag_messages", "Messages not yet consumed, per assigned partition.",
                          ["topic", "partition"], registry=r)
        self._assigned = Gauge("tapewatch_assigned_partitions", "Partitions assigned to this process.", registry=r)
        self._rebalances = Counter("tapewatch_rebalances", "Consumer group rebalances seen.", registry=r)
        self._ckpt = Histogram("tapewatch_checkpoint_duration_seconds", "Wall time to write one state checkpoint.",
                               buckets=CHECKPOINT_BUCKETS, registry=r)
        self._ckpt_failed = Counter("tapewatch_checkpoint_failures", "State checkpoints that failed.", registry=r)
        self._ckpt_last = Gauge("tapewatch_last_checkpoint_timestamp_seconds",
                                "Wall clock time of the last successful checkpoint.", registry=r)
        self._emitted = Counter("tapewatch_alerts_emitted", "Alerts (regime entries) published, by kind.",
                                ["kind"], registry=r)
        Info("tapewatch_build", "Build information.", registry=r).info({"version": _version()})
        for reason in REASONS[1:]:          # zeros from the start: rate() and dashboards see every reason
            self._rejected.labels(reason)
        for kind in KINDS:
            self._emitted.labels(kind)
        self._last_event_ns: int | None = None
        self._lock = threading.Lock()

    def ticks(self, n: int) -> None:
        """``n`` ticks were accepted."""
        self._ticks.inc(n)

    def rejected(self, reason: str, n: int) -> None:
        """``n`` ticks were rejected for ``reason`` (a name in :data:`signals.ticks.REASONS`)."""
        if reason not in REASONS[1:]:
            raise ValueError(f"unknown reject reason {reason!r}; expected one of {', '.join(REASONS[1:])}")
        self._rejected.labels(reason).inc(n)

    def dead_letter(self, n: int) -> None:
        """``n`` messages went to the dead-letter topic."""
        self._dead.inc(n)

    def batch_duration(self, seconds: float) -> None:
        """One batch took ``seconds`` of wall time."""
        self._batch.observe(seconds)

    def event_time(self, ts_ns: int) -> None:
        """The batch's latest event time; the exported value is the maximum seen."""
        with self._lock:
            if self._last_event_ns is None or ts_ns > self._last_event_ns:
                self._last_event_ns = int(ts_ns)

    @property
    def last_event_seconds(self) -> float | None:
        """Latest event time seen, in seconds since the epoch; None before the first batch."""
        ns = self._last_event_ns
        return None if ns is None else ns / 1e9

    def processed(self) -> None:
        """A batch was processed now (wall clock)."""
        self._processed.set(time.time())

    def lag(self, topic: str, partition: int, messages: int) -> None:
        """Consumer lag of one assigned partition."""
        self._lag.labels(topic, str(partition)).set(messages)

    def assigned(self, n_partitions: int) -> None:
        """This process now owns ``n_partitions`` partitions."""
        self._assigned.set(n_partitions)

    def rebalance(self) -> None:
        """A rebalance happened; lag series are dropped until re-reported for the new assignment."""
        self._rebalances.inc()
        self._lag.clear()

    def checkpoint(self, seconds: float) -> None:
        """A checkpoint succeeded after ``seconds`` of wall time."""
        self._ckpt.observe(seconds)
        self._ckpt_last.set(time.time())

    def checkpoint_failed(self) -> None:
        """A checkpoint failed."""
        self._ckpt_failed.inc()

    def alerts_emitted(self, kind: str, n: int) -> None:
        """``n`` alerts of ``kind`` were published."""
        if kind not in KINDS:
            raise ValueError(f"unknown alert kind {kind!r}; expected one of {', '.join(KINDS)}")
        self._emitted.labels(kind).inc(n)


@dataclass(frozen=True, slots=True)
class _Family:
    """One per-instrument metric family; ``columns`` holds the extra labels of each of its series."""

    name: str
    type: str
    help: str
    columns: tuple[tuple[tuple[str, str], ...], ...] = ((),)
    stats: tuple[str, ...] = ()     # the EngineView.stats column of each series, for statistics
    active_only: bool = False       # only instruments in a non-quiet regime have this series


def _stat(name: str, help: str, stat: str) -> _Family:
    return _Family(name, "gauge", help, stats=(stat,))


def _by_horizon(name: str, help: str, prefix: str) -> _Family:
    stats = tuple(s for s in STAT_NAMES if s.startswith(prefix))
    return _Family(name, "gauge", help, tuple((("horizon", s[len(prefix):]),) for s in stats), stats)


_STAT_FAMILIES = (
    _by_horizon("tapewatch_drift_tstat", "Drift t-statistic of the price over a horizon (positive: rising).",
                "drift_tstat_"),
    _by_horizon("tapewatch_flow_imbalance_zscore", "Z-score of the aggressor volume imbalance over a horizon "
                "(positive: buyer-initiated; horizon volume: a volume-clock window).", "flow_z_"),
    _by_horizon("tapewatch_volatility_ratio",
                "Realised volatility over a horizon divided by the instrument's baseline volatility.", "vol_ratio_"),
    _stat("tapewatch_activity_ratio", "Tick rate over about a minute divided by the usual rate at this time of day.",
          "activity_ratio"),
    _stat("tapewatch_jump_zscore", "Lee-Mykland jump statistic of the last closed bar's return.", "jump_z"),
    _stat("tapewatch_jump_variance_ratio", "Share of the last hour's realised variance that comes from jumps (0 to 1).",
          "jump_share"),
    _stat("tapewatch_fingerprint_tstat",
          "Drift t-statistic of this time of day across sessions (same-hours TWAP fingerprint).", "fingerprint_tstat"),
    _stat("tapewatch_absorption_zscore", "Order flow against the price drift over 1 h (absorption): signed like the "
          "drift, 0 when flow and drift agree.", "absorption_z"),
    _stat("tapewatch_last_price", "Last trade price.", "last_price"),
)
#: EngineView.stats columns in the order of the statistics' series (a missing name fails at import).
_STAT_INDEX = np.array([STAT_NAMES.index(s) for f in _STAT_FAMILIES for s in f.stats], dtype=np.intp)

_FAMILIES = (
    _Family("tapewatch_regime", "gauge", "Current regime as a state set: 1 for the current regime, else 0.",
            tuple((("regime", r),) for r in REGIMES)),
    _Family("tapewatch_regime_side", "gauge",
            "Flow side of the current regime: -1 sell, 0 none, 1 buy (invert=true: a rising yield is selling)."),
    _Family("tapewatch_regime_onset_timestamp_seconds", "gauge",
            "Estimated start of the current non-quiet regime (event time).", active_only=True),
    _Family("tapewatch_regime_duration_seconds", "gauge",
            "Event-time seconds from the current non-quiet regime's onset to the instrument's last tick.",
            active_only=True),
    *_STAT_FAMILIES,
    _Family(LAST_EVENT, "gauge", "Latest event time: without labels the process-wide maximum, "
            "with an instrument label that instrument's last tick."),
    _Family("tapewatch_jumps_total", "counter", "Jumps detected."),
    _Family("tapewatch_alerts_total", "counter", "Regime entries (alerts), by kind and side.",
            tuple((("kind", k), ("side", s)) for k in KINDS for s in SIDES)),
)
#: Index of each family's first column in the values matrix built by :func:`_columns`.
_FIRST_COLUMN = np.cumsum([0] + [len(f.columns) for f in _FAMILIES])[:-1].tolist()
_LAST_PRICE = STAT_NAMES.index("last_price")
_INSTRUMENTS_HELP = "Instruments whose state this process holds (exported or not)."


def _columns(v: EngineView, rows: np.ndarray) -> np.ndarray:
    """Values of the selected instruments, one column per series in ``_FAMILIES`` order."""
    k = rows.size
    onset, last = v.onset_ts[rows], v.last_ts[rows]
    return np.hstack([
        v.regime[rows][:, None] == np.arange(len(REGIMES)),
        v.side[rows][:, None],
        onset[:, None] / 1e9,
        (last - onset)[:, None] / 1e9,
        v.stats[rows][:, _STAT_INDEX],
        last[:, None] / 1e9,
        v.jumps_total[rows][:, None],
        v.alerts_total[rows].reshape(k, len(KINDS) * len(SIDES)),
    ], dtype=np.float64)


def _go_floats(col: np.ndarray) -> list[str]:
    """Values as exposition strings: shortest round-trip repr, Go spelling for NaN and infinities."""
    out = list(map(repr, col.tolist()))
    for i in np.flatnonzero(~np.isfinite(col)).tolist():
        out[i] = "NaN" if col[i] != col[i] else ("+Inf" if col[i] > 0 else "-Inf")
    return out


def _go_float(x: float) -> str:
    return _go_floats(np.array([x], np.float64))[0]


def _escape(label_value: str) -> str:
    return label_value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class EngineCollector:
    """Per-instrument series rendered from an :class:`~signals.engine.EngineView` at scrape time.

    Parameters
    ----------
    engine_view
        Called once per scrape; returns an EngineView (copies, safe from the scrape thread).
    config
        Its :attr:`~signals.config.EngineConfig.watchlist` is always exported.
    health
        If given, its :attr:`Health.last_event_seconds` becomes the unlabelled sample of
        ``tapewatch_last_event_timestamp_seconds``, in the same family as the per-instrument ones.

    Notes
    -----
    Exported instruments (the cardinality rule), among those this process holds state for
    (``last_price > 0``: an instrument dropped after a partition moved to another replica is
    exported by that replica only): the watchlist, plus ``regime != quiet``, plus any that
    alerted at ``last_alert_ts >= max(last_ts) - 24 h``. The onset and duration series exist
    only while the instrument is in a non-quiet regime.
    """

    def __init__(self, engine_view: Callable[[], EngineView], config: EngineConfig, *, health: Health | None = None):
        self._engine_view = engine_view
        self._watchlist = frozenset(config.watchlist)
        self._health = health
        # (names, watched mask, escaped names), replaced as a whole: scrapes may run concurrently
        self._cache: tuple[tuple[str, ...], np.ndarray, np.ndarray] = ((), np.zeros(0, bool), np.zeros(0, object))

    def _series(self) -> tuple[EngineView, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """The view, the exported rows, their escaped names, values (one column per series), the
        non-quiet mask and the number of instruments held (a dropped one keeps its name, no state)."""
        v = self._engine_view()
        names, watched, escaped = self._cache
        if v.names != names:        # new instruments
            watched = np.fromiter((n in self._watchlist for n in v.names), bool, len(v.names))
            escaped = np.array([_escape(n) for n in v.names], dtype=object)
            self._cache = (v.names, watched, escaped)
        held = v.stats[:, _LAST_PRICE] > 0
        keep = watched | (v.regime != 0)
        if held.any():
            alerted = v.alerts_total.reshape(len(v.names), -1).any(axis=1)
            keep |= alerted & (v.last_alert_ts >= v.last_ts[held].max() - RECENT_ALERT_SECONDS * 10**9)
        rows = np.flatnonzero(keep & held)
        return v, rows, escaped[rows], _columns(v, rows), v.regime[rows] != 0, int(np.count_nonzero(held))

    def _unlabelled_last_event(self) -> float | None:
        return None if self._health is None else self._health.last_event_seconds

    def exposition(self) -> str:
        """The collector's families in the Prometheus text format 0.0.4 (what ``/metrics`` serves)."""
        v, _, escaped, values, active, n_held = self._series()
        out = []
        for fam, j in zip(_FAMILIES, _FIRST_COLUMN):
            out.append(f"# HELP {fam.name} {fam.help}\n# TYPE {fam.name} {fam.type}\n")
            if fam.name == LAST_EVENT and (t := self._unlabelled_last_event()) is not None:
                out.append(f"{fam.name} {_go_float(t)}\n")
            pick = active if fam.active_only else slice(None)
            names = escaped[pick].tolist()
            head = f'{fam.name}{{instrument="'
            for c, extra in enumerate(fam.columns):
                tail = '"' + "".join(f',{k}="{lv}"' for k, lv in extra) + "} "
                out.append("".join([f"{head}{n}{tail}{x}\n" for n, x in zip(names, _go_floats(values[pick, j + c]))]))
        out.append(f"# HELP tapewatch_instruments {_INSTRUMENTS_HELP}\n# TYPE tapewatch_instruments gauge\n"
                   f"tapewatch_instruments {n_held}\n")
        return "".join(out)

    def collect(self) -> list[Metric]:
        """The same series as :meth:`exposition`, as prometheus_client metric families."""
        v, rows, _, values, active, n_held = self._series()
        all_names = np.array([v.names[i] for i in rows.tolist()], dtype=object)
        out: list[Metric] = []
        for fam, j in zip(_FAMILIES, _FIRST_COLUMN):
            cls = CounterMetricFamily if fam.type == "counter" else GaugeMetricFamily
            m = cls(fam.name, fam.help, labels=["instrument", *(k for k, _ in fam.columns[0])])
            if fam.name == LAST_EVENT and (t := self._unlabelled_last_event()) is not None:
                m.add_metric([], t)
            pick = active if fam.active_only else slice(None)
            names = all_names[pick].tolist()
            for c, extra in enumerate(fam.columns):
                for name, x in zip(names, values[pick, j + c].tolist()):
                    m.add_metric([name, *(lv for _, lv in extra)], x)
            out.append(m)
        out.append(GaugeMetricFamily("tapewatch_instruments", _INSTRUMENTS_HELP, value=n_held))
        return out


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_GET(self):
        if urlsplit(self.path).path != "/metrics":
            self.send_error(404, "metrics are at /metrics")
            return
        try:
            body = self.server.render()
        except Exception:
            log.exception("rendering /metrics failed")
            self.send_error(500, "rendering metrics failed; see the tapewatch log")
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_PLAIN_0_0_4)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):     # one line per scrape is noise
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, health: Health, collector: EngineCollector):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.health, self.collector = health, collector

    def render(self) -> bytes:
        return generate_latest(self.health.registry) + self.collector.exposition().encode()


class Exporter:
    """A running ``/metrics`` endpoint; :meth:`shutdown` stops it and frees the port."""

    def __init__(self, server: _Server, thread: threading.Thread):
        self._server, self._thread = server, thread
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(server.health.registry)
        self.registry.register(server.collector)

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def start_exporter(*, host: str, port: int, engine_view: Callable[[], EngineView], config: EngineConfig,
                   health: Health) -> Exporter:
    """Serve ``health`` and the engine's series on ``http://host:port/metrics`` from a daemon thread.

    ``port=0`` picks a free port (see :attr:`Exporter.port`).
    """
    collector = EngineCollector(engine_view, config, health=health)
    server = _Server((host, port), health, collector)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="tapewatch-metrics",
                              daemon=True)
    thread.start()
    log.info("metrics on http://%s:%d/metrics", host, server.server_address[1])
    return Exporter(server, thread)
