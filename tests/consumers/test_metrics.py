"""consumers.metrics: health metrics, the engine collector (cardinality rule, state set, counters,
exact names and labels) and the HTTP endpoint, scraped by a real Prometheus."""
from __future__ import annotations

import importlib.metadata
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumers.metrics import RECENT_ALERT_SECONDS, EngineCollector, Health, start_exporter
from signals.config import EngineConfig, InstrumentConfig
from signals.engine import KINDS, REGIMES, STAT_NAMES, Engine, EngineView
from signals.ticks import REASONS
from tests.prom import start_prometheus, stop
from tests.stack import TAPE_CONFIG, make_tape

HORIZONS4 = {"60s", "900s", "3600s", "14400s"}
#: family name -> (type, label names) of every per-instrument family; the contract in docs/metrics.md.
PER_INSTRUMENT = {
    "tapewatch_regime": ("gauge", {"instrument", "regime"}),
    "tapewatch_regime_side": ("gauge", {"instrument"}),
    "tapewatch_regime_onset_timestamp_seconds": ("gauge", {"instrument"}),
    "tapewatch_regime_duration_seconds": ("gauge", {"instrument"}),
    "tapewatch_drift_tstat": ("gauge", {"instrument", "horizon"}),
    "tapewatch_flow_imbalance_zscore": ("gauge", {"instrument", "horizon"}),
    "tapewatch_volatility_ratio": ("gauge", {"instrument", "horizon"}),
    "tapewatch_activity_ratio": ("gauge", {"instrument"}),
    "tapewatch_jump_zscore": ("gauge", {"instrument"}),
    "tapewatch_jump_variance_ratio": ("gauge", {"instrument"}),
    "tapewatch_fingerprint_tstat": ("gauge", {"instrument"}),
    "tapewatch_absorption_zscore": ("gauge", {"instrument"}),
    "tapewatch_last_price": ("gauge", {"instrument"}),
    "tapewatch_last_event_timestamp_seconds": ("gauge", {"instrument"}),
    "tapewatch_jumps": ("counter", {"instrument"}),
    "tapewatch_alerts": ("counter", {"instrument", "kind", "side"}),
}
HEALTH = {
    "tapewatch_ticks": ("counter", set()),
    "tapewatch_ticks_rejected": ("counter", {"reason"}),
    "tapewatch_dead_letters": ("counter", set()),
    "tapewatch_batch_duration_seconds": ("histogram", set()),
    "tapewatch_last_processed_timestamp_seconds": ("gauge", set()),
    "tapewatch_consumer_lag_messages": ("gauge", {"topic", "partition"}),
    "tapewatch_assigned_partitions": ("gauge", set()),
    "tapewatch_rebalances": ("counter", set()),
    "tapewatch_checkpoint_duration_seconds": ("histogram", set()),
    "tapewatch_checkpoint_failures": ("counter", set()),
    "tapewatch_last_checkpoint_timestamp_seconds": ("gauge", set()),
    "tapewatch_instruments": ("gauge", set()),
    "tapewatch_build_info": ("gauge", {"version"}),
    "tapewatch_alerts_emitted": ("counter", {"kind"}),
}
SERIES_PER_INSTRUMENT = 4 + 1 + 4 + 5 + 3 + 6 + 1 + 1 + 6       # quiet: no onset/duration


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text: str, name: str) -> dict[tuple, float]:
    """{sorted label items: value} of the samples called ``name``."""
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples if s.name == name}


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


@pytest.fixture(scope="module")
def tape():
    return make_tape()


@pytest.fixture(scope="module")
def engine(tape):
    eng = Engine(TAPE_CONFIG)
    eng.process(tape)
    return eng


@pytest.fixture
def exporter(engine):
    health = Health()
    ex = start_exporter(host="127.0.0.1", port=0, engine_view=engine.view, config=TAPE_CONFIG, health=health)
    yield ex, health
    ex.shutdown()


def view(names, *, regime=None, alerts=None, last_alert_ts=None, last_ts=None, price=None, stats=None) -> EngineView:
    """A hand-made EngineView (defaults: quiet, never alerted, last tick at 2025-05-19, price 100)."""
    n = len(names)
    st = np.ones((n, len(STAT_NAMES))) if stats is None else stats
    st[:, STAT_NAMES.index("last_price")] = 100.0 if price is None else price
    last = np.full(n, 1_747_612_800 * 10**9) if last_ts is None else np.asarray(last_ts, np.int64)
    reg = np.zeros(n, np.int8) if regime is None else np.asarray(regime, np.int8)
    return EngineView(tuple(names), reg, np.where(reg > 0, -1, 0).astype(np.int8), last - 600 * 10**9, last, st,
                      np.arange(n, dtype=np.int64),
                      np.zeros((n, 3, 2), np.int64) if alerts is None else alerts,
                      np.full(n, -(2**62), np.int64) if last_alert_ts is None else np.asarray(last_alert_ts, np.int64))


def watching(*names) -> EngineConfig:
    return EngineConfig(instruments={n: InstrumentConfig(watch=True) for n in names})


# ---- the tape drives the engine into the regimes the other tests rely on -------------------

def test_tape_ends_with_a_steady_seller_and_a_sell_burst(engine):
    assert engine.status("UST10Y")["regime"] == "steady_flow" and engine.status("UST10Y")["side"] == "sell"
    assert engine.status("DXY")["regime"] == "burst" and engine.status("DXY")["side"] == "sell"


# ---- names, types, labels ------------------------------------------------------------------

def test_every_family_has_its_exact_name_type_and_labels(exporter):
    ex, health = exporter
    health.ticks(10); health.lag("ticks", 0, 5); health.event_time(10**18)
    fams = families(get(ex.url))
    assert set(fams) == set(PER_INSTRUMENT) | set(HEALTH)
    for name, (typ, labels) in {**PER_INSTRUMENT, **HEALTH}.items():
        assert fams[name].type == typ, name
        names = {k for s in fams[name].samples for k in s.labels if k != "le"}
        assert names == labels, name
    assert {s.labels["regime"] for s in fams["tapewatch_regime"].samples} == set(REGIMES)
    assert {s.labels["horizon"] for s in fams["tapewatch_drift_tstat"].samples} == HORIZONS4
    assert {s.labels["horizon"] for s in fams["tapewatch_flow_imbalance_zscore"].samples} == HORIZONS4 | {"volume"}
    assert {s.labels["horizon"] for s in fams["tapewatch_volatility_ratio"].samples} == {"60s", "900s", "3600s"}
    assert {(s.labels["kind"], s.labels["side"]) for s in fams["tapewatch_alerts"].samples} == \
        {(k, s) for k in KINDS for s in ("sell", "buy")}
    assert {s.name for s in fams["tapewatch_alerts"].samples} == {"tapewatch_alerts_total"}


def test_last_event_time_is_one_family_with_the_unlabelled_process_maximum(exporter, engine):
    ex, health = exporter
    health.event_time(1_747_700_000 * 10**9)
    health.event_time(1_747_600_000 * 10**9)            # older: the maximum stays
    text = get(ex.url)
    assert text.count("# TYPE tapewatch_last_event_timestamp_seconds ") == 1
    got = samples(text, "tapewatch_last_event_timestamp_seconds")
    assert got[()] == 1_747_700_000.0
    v = engine.view()
    for i, name in enumerate(v.names):
        assert got[(("instrument", name),)] == pytest.approx(v.last_ts[i] / 1e9)


def test_health_methods_update_their_series():
    h = Health()
    r = h.registry
    h.ticks(100); h.ticks(50)
    h.rejected("bad_price", 3); h.dead_letter(2); h.batch_duration(0.004); h.assigned(3); h.rebalance()
    h.checkpoint(0.02); h.checkpoint_failed(); h.alerts_emitted("burst", 2)
    before = time.time()
    h.processed()
    assert r.get_sample_value("tapewatch_ticks_total") == 150
    assert r.get_sample_value("tapewatch_ticks_rejected_total", {"reason": "bad_price"}) == 3
    assert r.get_sample_value("tapewatch_dead_letters_total") == 2
    assert r.get_sample_value("tapewatch_batch_duration_seconds_bucket", {"le": "0.005"}) == 1
    assert r.get_sample_value("tapewatch_batch_duration_seconds_bucket", {"le": "0.0025"}) == 0
    assert r.get_sample_value("tapewatch_assigned_partitions") == 3
    assert r.get_sample_value("tapewatch_rebalances_total") == 1
    assert r.get_sample_value("tapewatch_checkpoint_duration_seconds_count") == 1
    assert r.get_sample_value("tapewatch_checkpoint_failures_total") == 1
    assert r.get_sample_value("tapewatch_last_checkpoint_timestamp_seconds") >= before - 1
    assert r.get_sample_value("tapewatch_last_processed_timestamp_seconds") >= before
    assert r.get_sample_value("tapewatch_alerts_emitted_total", {"kind": "burst"}) == 2
    assert r.get_sample_value("tapewatch_build_info", {"version": importlib.metadata.version("tapewatch")}) == 1
    # every reason and kind exists from the start, so rate() and dashboards see zeros, not gaps
    for reason in REASONS[1:]:
        assert r.get_sample_value("tapewatch_ticks_rejected_total", {"reason": reason}) is not None
    assert r.get_sample_value("tapewatch_ticks_rejected_total", {"reason": "ok"}) is None
    for kind in KINDS:
        assert r.get_sample_value("tapewatch_alerts_emitted_total", {"kind": kind}) is not None


def test_health_rejects_unknown_labels_with_the_allowed_values():
    h = Health()
    with pytest.raises(ValueError, match="unknown reject reason 'nope'; expected one of malformed, "):
        h.rejected("nope", 1)
    with pytest.raises(ValueError, match="unknown alert kind 'crash'; expected one of steady_flow, burst, delev"):
        h.alerts_emitted("crash", 1)


def test_rebalance_drops_lag_of_partitions_no_longer_owned():
    h = Health()
    h.lag("ticks", 0, 10); h.lag("ticks", 1, 20)
    h.rebalance()
    h.lag("ticks", 1, 7)
    lag = samples(generate_latest(h.registry).decode(), "tapewatch_consumer_lag_messages")
    assert lag == {(("partition", "1"), ("topic", "ticks")): 7.0}


def test_event_time_before_any_batch_exports_no_unlabelled_sample():
    c = EngineCollector(lambda: view(["A"]), watching("A"), health=Health())
    got = samples(c.exposition(), "tapewatch_last_event_timestamp_seconds")
    assert set(got) == {(("instrument", "A"),)}


# ---- cardinality rule ---------------------------------------------------------------------

def test_only_watchlist_non_quiet_and_recent_alerters_are_exported():
    names = [f"I{i:02d}" for i in range(40)]
    now = 1_747_612_800 * 10**9
    day = RECENT_ALERT_SECONDS * 10**9
    regime = np.zeros(40, np.int8)
    regime[[5, 6, 7]] = [1, 2, 3]                       # non-quiet
    alerts = np.zeros((40, 3, 2), np.int64)
    last_alert = np.full(40, -(2**62), np.int64)
    alerts[[10, 11, 12, 13], 1, 0] = 1                 # alerted: 1 h ago, exactly 24 h ago, 24 h + 1 s, 3 days ago
    last_alert[[10, 11, 12, 13]] = [now - 3600 * 10**9, now - day, now - day - 10**9, now - 3 * day]
    price = np.full(40, 100.0)
    price[3] = 0.0                                     # watched but its state was dropped (partition moved)
    last_ts = np.full(40, now - 5 * day)
    last_ts[20] = now                                  # the latest event time comes from a quiet instrument
    v = view(names, regime=regime, alerts=alerts, last_alert_ts=last_alert, price=price, last_ts=last_ts)
    c = EngineCollector(lambda: v, watching("I00", "I01", "I02", "I03", "I05", "NOT_SEEN"))
    text = c.exposition()
    exported = {"I00", "I01", "I02", "I05", "I06", "I07", "I10", "I11"}
    regime_series = samples(text, "tapewatch_regime")
    assert {dict(k)["instrument"] for k in regime_series} == exported
    n_samples = sum(len(f.samples) for f in text_string_to_metric_families(text))
    assert n_samples == len(exported) * SERIES_PER_INSTRUMENT + 3 * 2 + 1   # + onset/duration of 3 active + count
    assert samples(text, "tapewatch_instruments") == {(): 39.0}           # I03's state was dropped


def test_selection_is_recomputed_when_instruments_appear():
    state = {"v": view(["A", "B"])}
    c = EngineCollector(lambda: state["v"], watching("A", "C"))
    assert {dict(k)["instrument"] for k in samples(c.exposition(), "tapewatch_last_price")} == {"A"}
    state["v"] = view(["A", "B", "C"])
    assert {dict(k)["instrument"] for k in samples(c.exposition(), "tapewatch_last_price")} == {"A", "C"}


# ---- values ---------------------------------------------------------------------------------

def test_state_set_side_onset_and_stats_match_the_engine(exporter, engine):
    ex, _ = exporter
    text = get(ex.url)
    regime = samples(text, "tapewatch_regime")
    side = samples(text, "tapewatch_regime_side")
    onset = samples(text, "tapewatch_regime_onset_timestamp_seconds")
    duration = samples(text, "tapewatch_regime_duration_seconds")
    drift = samples(text, "tapewatch_drift_tstat")
    price = samples(text, "tapewatch_last_price")
    v = engine.view()
    for i, name in enumerate(v.names):
        st = engine.status(name)
        ones = [r for r in REGIMES if regime[(("instrument", name), ("regime", r))] == 1.0]
        assert ones == [st["regime"]]
        assert sum(regime[(("instrument", name), ("regime", r))] for r in REGIMES) == 1.0
        assert side[(("instrument", name),)] == {"sell": -1.0, "buy": 1.0, None: 0.0}[st["side"]]
        key = (("instrument", name),)
        if st["regime"] == "quiet":
            assert key not in onset and key not in duration
        else:
            assert onset[key] == v.onset_ts[i] / 1e9
            assert duration[key] == pytest.approx((v.last_ts[i] - v.onset_ts[i]) / 1e9)
            assert 0 < duration[key] < 4 * 3600
        assert price[key] == st["stats"]["last_price"]
        assert drift[(("horizon", "3600s"), ("instrument", name))] == st["stats"]["drift_tstat_3600s"]
    assert regime[(("instrument", "UST10Y"), ("regime", "steady_flow"))] == 1.0
    assert side[(("instrument", "DXY"),)] == -1.0


def test_fast_exposition_equals_prometheus_client_rendering(exporter):
    ex, health = exporter
    health.event_time(1_747_700_000 * 10**9); health.ticks(3); health.rejected("malformed", 1)

    def canon(text):
        return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                      for f in text_string_to_metric_families(text) for s in f.samples)

    served = get(ex.url)
    assert canon(served) == canon(generate_latest(ex.registry).decode())
    assert len(canon(served)) > 3 * SERIES_PER_INSTRUMENT


def test_label_values_are_escaped_and_non_finite_values_spelled_for_go():
    odd = 'we"ird\\name\nx'
    stats = np.zeros((1, len(STAT_NAMES)))
    stats[0, :3] = [np.nan, np.inf, -np.inf]
    c = EngineCollector(lambda: view([odd], stats=stats), watching(odd))
    text = c.exposition()
    assert 'horizon="60s"} NaN\n' in text and "} +Inf\n" in text and "} -Inf\n" in text
    drift = samples(text, "tapewatch_drift_tstat")
    assert np.isnan(drift[(("horizon", "60s"), ("instrument", odd))])
    assert drift[(("horizon", "900s"), ("instrument", odd))] == np.inf
    assert drift[(("horizon", "3600s"), ("instrument", odd))] == -np.inf


def test_counters_never_decrease_while_the_tape_is_processed(tape):
    eng = Engine(TAPE_CONFIG)
    c = EngineCollector(eng.view, TAPE_CONFIG)
    seen: dict[tuple, float] = {}
    for chunk in np.array_split(np.arange(len(tape)), 12):
        eng.process(tape.select(chunk))
        text = c.exposition()
        for name in ("tapewatch_jumps_total", "tapewatch_alerts_total"):
            for labels, value in samples(text, name).items():
                assert value >= seen.get((name, labels), 0.0), (name, labels)
                seen[(name, labels)] = value
    assert seen[("tapewatch_alerts_total", (("instrument", "DXY"), ("kind", "burst"), ("side", "sell")))] == 1
    assert seen[("tapewatch_alerts_total", (("instrument", "UST10Y"), ("kind", "steady_flow"), ("side", "sell")))] == 1
    assert seen[("tapewatch_jumps_total", (("instrument", "DXY"),))] >= 1


# ---- HTTP ----------------------------------------------------------------------------------

def test_endpoint_serves_only_metrics_and_shutdown_frees_the_port(engine):
    ex = start_exporter(host="127.0.0.1", port=0, engine_view=engine.view, config=TAPE_CONFIG, health=Health())
    port = ex.port
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=5)
    assert e.value.code == 404
    ex.shutdown()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
    again = start_exporter(host="127.0.0.1", port=port, engine_view=engine.view, config=TAPE_CONFIG, health=Health())
    assert "tapewatch_regime{" in get(again.url)
    again.shutdown()


def test_a_failing_engine_view_gives_500_and_the_server_keeps_serving():
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return view(["A"])

    ex = start_exporter(host="127.0.0.1", port=0, engine_view=flaky, config=watching("A"), health=Health())
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(ex.url, timeout=5)
        assert e.value.code == 500
        assert 'tapewatch_last_price{instrument="A"} 100.0' in get(ex.url)
    finally:
        ex.shutdown()


# ---- a real Prometheus scrapes it -----------------------------------------------------------

def prom_query(url: str, expr: str) -> list:
    q = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{url}/api/v1/query?{q}", timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_for(fn, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


@pytest.mark.integration
def test_prometheus_scrapes_the_exporter_and_queries_return_the_values(tmp_path, exporter, engine):
    ex, health = exporter
    health.event_time(int(engine.view().last_ts.max())); health.ticks(1234)
    url, proc = start_prometheus(tmp_path, scrape_targets=[f"127.0.0.1:{ex.port}"])
    try:
        assert wait_for(lambda: prom_query(url, 'tapewatch_regime{instrument="DXY",regime="burst"} == 1'))
        assert prom_query(url, 'tapewatch_regime{instrument="UST10Y",regime="steady_flow"}')[0]["value"][1] == "1"
        assert prom_query(url, 'tapewatch_regime_side{instrument="UST10Y"}')[0]["value"][1] == "-1"
        assert prom_query(url, "tapewatch_ticks_total")[0]["value"][1] == "1234"
        unl = prom_query(url, 'tapewatch_last_event_timestamp_seconds{instrument=""}')
        assert len(unl) == 1 and float(unl[0]["value"][1]) == pytest.approx(engine.view().last_ts.max() / 1e9)
        assert len(prom_query(url, "tapewatch_last_event_timestamp_seconds")) == 4
        assert prom_query(url, 'count(tapewatch_flow_imbalance_zscore{instrument="BUND"})')[0]["value"][1] == "5"
        price = prom_query(url, 'tapewatch_last_price{instrument="DXY"}')[0]["value"][1]
        assert float(price) == engine.status("DXY")["stats"]["last_price"]
        up = prom_query(url, "up")
        assert [r["value"][1] for r in up] == ["1"]
    finally:
        stop(proc)
