"""Matching alerts to labels, the metrics, the readers and the evaluate script on hand-built cases."""
from __future__ import annotations

import doctest
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

import signals.evaluation
from signals.errors import InputError
from signals.evaluation import (CEILING_TSTATS, Alert, GRACE_SECONDS, after, check_targets, comovement, format_report,
                                read_alerts, read_labels, score, steady_ceiling)
from signals.scenarios import Label, generate

NS = 1_000_000_000
H = 3600 * NS
ROOT = Path(__file__).resolve().parents[2]


def label(kind="steady_flow", side="sell", start=10 * H, end=14 * H, instrument="UST10Y", **kw):
    return Label(instrument=instrument, kind=kind, side=side, start_ts=start, end_ts=end, **kw)


def one(alerts, labels, kind="steady_flow", days=10.0):
    return score(alerts, labels, instrument_days=days).kinds[kind]


def test_module_examples_run():
    result = doctest.testmod(signals.evaluation)
    assert result.failed == 0 and result.attempted >= 2


def test_true_positive_and_its_delay():
    t = one([Alert("UST10Y", "steady_flow", "sell", 10 * H + 1800 * NS)], [label()])
    assert (t.labels, t.detected, t.alerts, t.false_alerts) == (1, 1, 1, 0)
    assert t.recall == 1.0 and t.precision == 1.0
    assert t.delays == [1800.0] and t.median_delay == 1800.0


def test_late_alert_counts_within_grace_only():
    lb = label(kind="burst", side="buy", start=0, end=30 * NS, instrument="DXY")
    grace = int(GRACE_SECONDS["burst"] * NS)
    in_grace = one([Alert("DXY", "burst", "buy", 30 * NS + grace)], [lb], kind="burst")
    too_late = one([Alert("DXY", "burst", "buy", 30 * NS + grace + 1)], [lb], kind="burst")
    assert in_grace.detected == 1 and in_grace.false_alerts == 0
    assert too_late.detected == 0 and too_late.false_alerts == 1 and too_late.recall == 0.0


def test_alert_before_the_episode_is_false():
    t = one([Alert("UST10Y", "steady_flow", "sell", 10 * H - 1)], [label()])
    assert t.detected == 0 and t.false_alerts == 1


def test_wrong_side_is_a_false_alert_and_counted_apart():
    t = one([Alert("UST10Y", "steady_flow", "buy", 11 * H)], [label()])
    assert t.detected == 0 and t.false_alerts == 1 and t.wrong_side == 1
    assert t.precision == 0.0


def test_wrong_kind_or_instrument_is_false_not_wrong_side():
    report = score([Alert("UST10Y", "burst", "sell", 11 * H), Alert("BUND", "steady_flow", "sell", 11 * H)],
                   [label()], instrument_days=10.0)
    assert report.kinds["burst"].false_alerts == 1 and report.kinds["burst"].wrong_side == 0
    assert report.kinds["steady_flow"].false_alerts == 1 and report.kinds["steady_flow"].wrong_side == 0
    assert report.false_where == {("burst", "in_steady_flow"): 1, ("steady_flow", "elsewhere"): 1}


def test_duplicates_count_against_precision_not_recall():
    alerts = [Alert("UST10Y", "steady_flow", "sell", ts) for ts in (12 * H, 11 * H, 13 * H)]
    t = one(alerts, [label()])
    assert t.detected == 1 and t.duplicates == 2 and t.false_alerts == 0
    assert t.delays == [3600.0]                  # the earliest alert, whatever the input order
    assert t.precision == pytest.approx(1 / 3)
    assert t.false_per_day == 0.0


def test_false_alerts_per_instrument_day_and_where_they_fell():
    control = label(kind="control", side="", start=0, end=24 * H, style="vol_spike")
    alerts = [Alert("UST10Y", "steady_flow", "buy", 2 * H), Alert("UST10Y", "steady_flow", "buy", 30 * H)]
    report = score(alerts, [label(start=40 * H, end=44 * H), control], instrument_days=4.0)
    assert report.kinds["steady_flow"].false_per_day == 0.5
    assert report.false_where == {("steady_flow", "vol_spike"): 1, ("steady_flow", "elsewhere"): 1}
    assert report.kinds["steady_flow"].recall == 0.0


def test_two_labels_median_and_p90_and_outcomes():
    a, b = label(start=0, end=4 * H), label(start=100 * H, end=104 * H)
    alerts = [Alert("UST10Y", "steady_flow", "sell", 600 * NS), Alert("UST10Y", "steady_flow", "sell", 100 * H + 1800 * NS)]
    report = score(alerts, [a, b, label(start=200 * H, end=201 * H)], instrument_days=10.0)
    t = report.kinds["steady_flow"]
    assert (t.labels, t.detected) == (3, 2)
    assert t.median_delay == 1200.0 and t.p90_delay == pytest.approx(600 + 0.9 * 1200)
    assert [o.delay for o in report.outcomes] == [600.0, 1800.0, None]


def test_reports_of_several_tapes_add_up():
    r1 = score([Alert("UST10Y", "steady_flow", "sell", 11 * H)], [label()], instrument_days=5.0)
    r2 = score([Alert("UST10Y", "steady_flow", "buy", 11 * H)], [label()], instrument_days=5.0)
    t = (r1 + r2).kinds["steady_flow"]
    assert (t.labels, t.detected, t.alerts, t.false_alerts, t.wrong_side) == (2, 1, 2, 1, 1)
    assert t.false_per_day == 0.1 and t.recall == 0.5


def test_targets_pass_fail_and_nan_never_passes():
    report = score([Alert("X", "burst", "buy", 2 * NS)], [label(kind="burst", side="buy", start=0, end=30 * NS, instrument="X")],
                   instrument_days=1.0)
    rows = {(k, m): ok for k, m, _, _, _, ok in check_targets(report.kinds)}
    assert rows[("burst", "recall")] and rows[("burst", "precision")] and rows[("burst", "median_delay")]
    assert not rows[("steady_flow", "recall")]           # no labels: NaN
    assert not rows[("deleveraging", "median_delay")]
    text = format_report(report)
    assert "PASS" in text and "FAIL" in text and "burst" in text


def test_unknown_kinds_are_rejected():
    with pytest.raises(ValueError, match="alert kind 'crash' is unknown"):
        score([Alert("X", "crash", "buy", 0)], [], instrument_days=1.0)
    with pytest.raises(ValueError, match="instrument_days must be > 0"):
        score([], [], instrument_days=0)


def test_perfect_alerts_on_a_generated_tape_score_perfectly():
    sc = generate(seed=8, instruments=4, days=5)
    alerts = [Alert(lb.instrument, lb.kind, lb.side, lb.start_ts + NS) for lb in sc.labels if lb.kind != "control"]
    report = score(alerts, sc.labels, instrument_days=sc.instrument_days)
    for t in report.kinds.values():
        if t.labels:
            assert t.recall == 1.0 and t.precision == 1.0 and t.false_alerts == 0 and t.median_delay == 1.0


def test_steady_ceiling_is_the_chance_that_each_grinds_own_window_reaches_the_t():
    strong = label(strength=2.0, hours=4.0)                 # expected whole-episode t 4
    weak = label(strength=1.0, hours=1.0, start=20 * H)     # 1: out of reach
    skipped = (label(kind="burst", strength=6.0), label(strength=3.0))   # not a grind; no hours
    c = steady_ceiling([strong, weak, *skipped], tstat=3.5)
    assert c.labels == 2
    assert c.recall == pytest.approx((0.691462 + 0.006210) / 2, abs=1e-5)   # (Phi(0.5) + Phi(-2.5)) / 2
    assert c.median_hours == pytest.approx((3.5 / 2.0) ** 2)             # only the grind whose t gets there
    assert steady_ceiling([strong], tstat=3.0).recall > 0.6915 > steady_ceiling([strong], tstat=4.0).recall
    none = steady_ceiling(skipped, tstat=3.5)
    assert none.labels == 0 and math.isnan(none.recall) and math.isnan(none.median_hours)
    with pytest.raises(ValueError, match="tstat must be > 0"):
        steady_ceiling([strong], tstat=0.0)


def test_comovement_leaves_out_episodes_their_trace_and_the_cold_start():
    rng = np.random.default_rng(7)
    n = 30_000
    ts = np.arange(n) * 60 * NS
    t = rng.standard_normal(n)
    z = -0.5 * t + math.sqrt(0.75) * rng.standard_normal(n)      # a flow that leans against the price
    t[:720] = 0.0
    z[:720] = 0.0                                                  # nothing computed yet: not counted
    t[5000:5200] = 8.0
    z[5000:5200] = 8.0                                             # an episode and its trace
    t[5200:5440] = 5.0
    z[5200:5440] = 5.0
    t[720:1000] *= 3.0                                             # a cold start
    c = comovement(ts, t, z, [(ts[5000], ts[5199])], skip_ns=1000 * 60 * NS, after_ns=240 * 60 * NS)
    assert c.samples == n - 1000 - 440
    assert c.tstat_rms == pytest.approx(1.0, abs=0.02)
    assert c.correlation == pytest.approx(-0.5, abs=0.02)
    kept = comovement(ts, t, z, [], skip_ns=0, after_ns=0)          # all of it: the episode dominates
    assert kept.samples == n - 720 and kept.tstat_rms > 1.2 and kept.correlation > 0.0
    none = comovement(ts[:10], t[:10], z[:10], [], skip_ns=0, after_ns=0)
    assert none.samples == 0 and math.isnan(none.tstat_rms) and math.isnan(none.correlation)
    with pytest.raises(ValueError, match="one shape"):
        comovement(ts, t[:-1], z, [], skip_ns=0, after_ns=0)
    with pytest.raises(ValueError, match="must be >= 0"):
        comovement(ts, t, z, [], skip_ns=-1, after_ns=0)


def test_comovement_script_reads_written_tapes(tmp_path):
    sc = generate(seed=13, instruments=["UST10Y", "DXY"], days=3)
    sc.write_csv(tmp_path / "tape.csv")
    sc.write_labels(tmp_path / "labels.jsonl")
    sc.write_config(tmp_path / "config.toml")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "comovement.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[1]: line.split() for line in out.stdout.splitlines()[1:]}
    assert set(rows) == {"UST10Y", "DXY"}
    assert rows["DXY"][2] == "sides" and rows["UST10Y"][2:4] == ["tick", "rule"]     # the yield has no sides
    for row in rows.values():
        samples, rms, corr = int(row[-3]), float(row[-2]), float(row[-1])
        assert samples > 1000 and 0.5 < rms < 2.0 and -1.0 <= corr <= 1.0
    missing = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "comovement.py"), str(tmp_path / "nowhere")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "tape.csv does not exist" in missing.stderr


def test_after_a_cut_only_what_started_after_it_is_scored():
    cut = 24 * H
    early = label(start=20 * H, end=26 * H)                       # a grind running across the cut
    late = label(start=30 * H, end=34 * H)
    other_side = label(side="buy", start=40 * H, end=44 * H)
    rout = label(kind="deleveraging", start=23 * H, end=cut - 10 * 60 * NS)   # ended; its grace time has not
    spike = label(kind="control", side="", start=cut - H, end=cut + H, style="vol_spike")
    gone = label(kind="control", side="", start=2 * H, end=3 * H, style="null_day")
    alerts = [Alert("UST10Y", "steady_flow", "sell", t) for t in (21 * H, 25 * H, 31 * H, 41 * H)] + [
        Alert("UST10Y", "deleveraging", "sell", cut + 2 * 60 * NS),      # inside the rout's grace time
        Alert("UST10Y", "deleveraging", "sell", cut + 20 * 60 * NS),     # after it: false
        Alert("UST10Y", "steady_flow", "sell", cut - 1)]                 # history
    kept, labels = after(alerts, [early, late, other_side, rout, spike, gone], cut)
    assert [(a.kind, a.ts) for a in kept] == [("steady_flow", 31 * H), ("steady_flow", 41 * H),
                                               ("deleveraging", cut + 20 * 60 * NS)]
    assert labels == [late, other_side, spike]
    steady = one(kept, labels)
    assert (steady.labels, steady.detected, steady.false_alerts, steady.wrong_side) == (2, 1, 1, 1)
    assert one(kept, labels, kind="deleveraging").false_alerts == 1


def test_readers(tmp_path):
    rows = [
        {"id": "a", "event": "enter", "instrument": "UST10Y", "kind": "steady_flow", "side": "sell", "ts": 11 * H,
         "onset_ts": 10 * H, "time": "", "onset_time": "", "score": 3.0, "evidence": {}},
        {"id": "a", "event": "exit", "instrument": "UST10Y", "kind": "steady_flow", "side": "sell", "ts": 15 * H},
    ]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n\n")
    assert read_alerts(tmp_path / "a.jsonl") == [Alert("UST10Y", "steady_flow", "sell", 11 * H)]
    (tmp_path / "bad.jsonl").write_bytes(orjson.dumps(rows[0]) + b"\n{not json\n")
    with pytest.raises(InputError, match="line 2 is not an alert"):
        read_alerts(tmp_path / "bad.jsonl")
    with pytest.raises(InputError, match="cannot read"):
        read_alerts(tmp_path / "missing.jsonl")
    (tmp_path / "l.jsonl").write_bytes(orjson.dumps({"meta": {"instrument_days": 7}}) + b"\n"
                                       + orjson.dumps(label().to_dict()) + b"\n")
    assert read_labels(tmp_path / "l.jsonl") == ([label()], 7.0)


def test_evaluate_script_scores_files(tmp_path):
    sc = generate(seed=13, instruments=["UST10Y", "DXY"], days=3)     # a grind, bursts, a rout
    sc.write_labels(tmp_path / "labels.jsonl")
    episodes = [lb for lb in sc.labels if lb.kind != "control"]
    alerts = [{"event": "enter", "instrument": lb.instrument, "kind": lb.kind, "side": lb.side, "ts": lb.start_ts + 5 * NS}
              for lb in episodes]
    alerts.append({"event": "enter", "instrument": "DXY", "kind": "burst", "side": "buy", "ts": sc.start_ts})
    (tmp_path / "alerts.jsonl").write_bytes(b"\n".join(orjson.dumps(a) for a in alerts))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "evaluate.py"), "--alerts", str(tmp_path / "alerts.jsonl"),
                          "--labels", str(tmp_path / "labels.jsonl")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    burst_row = next(line for line in out.stdout.splitlines() if line.startswith("burst "))
    n_burst = sum(lb.kind == "burst" for lb in episodes)
    assert burst_row.split()[1:4] == [str(n_burst), str(n_burst), "1.00"]
    assert f"{1 / sc.instrument_days:.3f}" in burst_row
    assert "targets" in out.stdout
    ceiling = next(line for line in out.stdout.splitlines() if "ceiling" in line)
    recalls = re.search(r"([\d.]+) / ([\d.]+) / ([\d.]+) of them", ceiling).groups()
    assert recalls == tuple(f"{steady_ceiling(episodes, tstat=t).recall:.2f}" for t in CEILING_TSTATS)
    # DXY's feed gives the aggressor side, UST10Y's does not (the tick rule)
    feed = out.stdout.split("recall by feed")[1].splitlines()
    n_dxy = sum(lb.kind == "burst" and lb.instrument == "DXY" for lb in episodes)
    assert 0 < n_dxy < n_burst
    burst_feed = next(line for line in feed if line.strip().startswith("burst"))
    assert burst_feed.split()[1:] == [f"{n_dxy}/{n_dxy}", "(1.00)", "/", f"{n_burst - n_dxy}/{n_burst - n_dxy}", "(1.00)"]


def test_evaluate_script_leaves_the_history_days_out_of_the_scores():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import evaluate
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    report, stats = evaluate.evaluate_set([13], instruments=["UST10Y", "DXY"], days=1, history_days=1)
    whole = generate(seed=13, instruments=["UST10Y", "DXY"], days=2)
    cut = whole.start_ts + 24 * H
    assert stats["instrument_days"] == 2.0
    assert any(lb.kind != "control" and lb.start_ts < cut for lb in whole.labels)
    scored = sorted((o.label.kind, o.label.start_ts) for o in report.outcomes)
    assert scored and scored == sorted((lb.kind, lb.start_ts) for lb in whole.labels
                                       if lb.kind != "control" and lb.start_ts >= cut)
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "evaluate.py"), "--history-days", "5"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--history-days must be 0-4" in out.stderr
