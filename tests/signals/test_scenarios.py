"""The synthetic tape generator: stylised facts of the null process, episodes, labels, writers.

Statistical checks use fixed seeds and generous bounds: they fail when a feature is missing,
not when a sample is unlucky.
"""
from __future__ import annotations

import csv
import dataclasses

import numpy as np
import orjson
import pytest

from signals.calendar import in_session, local_clock
from signals.config import Calendar, load_config
from signals.errors import ConfigError
from signals.evaluation import read_labels
from signals.scenarios import CATALOGUE, Episode, InstrumentSpec, demo_scenario, generate
from signals.ticks import validate

NS = 1_000_000_000


@pytest.fixture(scope="module")
def null_tape():
    """Four weeks of the null process (no episodes, no controls) on three instruments."""
    return generate(seed=11, instruments=["DXY", "SPY", "CSI300ETF"], days=20, rates={})


@pytest.fixture(scope="module")
def mixed_tape():
    return generate(seed=5, instruments=6, days=10)


def rows(sc, name):
    i = sc.ticks.instruments.index(name)
    return sc.ticks.select(sc.ticks.code == i)


def minute_returns(b):
    """Log returns between the last trades of consecutive clock minutes (gaps skipped)."""
    minute = b.ts // (60 * NS)
    last = np.r_[np.flatnonzero(np.diff(minute)), minute.size - 1]
    m, p = minute[last], np.log(b.price[last])
    step = np.diff(m) == 1
    return np.diff(p)[step], m[1:][step]


def acf(x, lag):
    x = x - x.mean()
    return float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x))


# ---------------------------------------------------------------------------------------------
# stylised facts of the null process

@pytest.mark.parametrize("name", ["DXY", "SPY", "CSI300ETF"])
def test_one_minute_returns_are_fat_tailed(null_tape, name):
    r, _ = minute_returns(rows(null_tape, name))
    kurtosis = np.mean((r - r.mean()) ** 4) / np.var(r) ** 2
    assert kurtosis > 4


@pytest.mark.parametrize("name", ["DXY", "SPY"])
def test_volatility_clusters(null_tape, name):
    r, _ = minute_returns(rows(null_tape, name))
    assert acf(np.abs(r), 10) > 0.05
    assert abs(acf(r, 10)) < 0.05          # while returns themselves stay uncorrelated


def test_intraday_u_shape_of_volatility_activity_and_volume(null_tape):
    b = rows(null_tape, "SPY")                  # 09:30-16:00 New York
    minute, _, _ = local_clock(b.ts, "America/New_York")
    r, m = minute_returns(b)
    r_minute, _, _ = local_clock(m * 60 * NS, "America/New_York")

    def level(lo, hi):
        trades = (minute >= lo) & (minute < hi)
        rets = (r_minute >= lo) & (r_minute < hi)
        return np.mean(np.abs(r[rets])), trades.sum() / (hi - lo), b.size[trades].sum() / (hi - lo)

    open_, mid, close = level(570, 600), level(735, 795), level(930, 960)
    for i in range(3):       # volatility, trades per minute, volume per minute
        assert open_[i] > 1.3 * mid[i]
        assert close[i] > 1.15 * mid[i]


def test_order_signs_have_long_memory(null_tape):
    side = rows(null_tape, "DXY").side.astype(float)
    assert np.all(side != 0)
    x = side - side.mean()
    spectrum = np.fft.rfft(x, 1 << (2 * x.size).bit_length())
    c = np.fft.irfft(spectrum * np.conj(spectrum))[1:101] / np.dot(x, x)
    assert np.all(c > 0)
    # power-law decay: an exponential with this lag-1 value would be ~0 by lag 100
    assert c[99] > 0.15 * c[0]
    assert c[99] / c[9] > 0.2


def test_no_trades_while_closed_and_gaps_at_reopening(null_tape):
    b = rows(null_tape, "CSI300ETF")            # 09:30-15:00 Shanghai, lunch 11:30-13:00
    minute, day, weekday = local_clock(b.ts, "Asia/Shanghai")
    cal = Calendar(tz="Asia/Shanghai", open="09:30", close="15:00", days=(0, 1, 2, 3, 4))
    assert in_session(cal, minute, weekday).all()
    assert not ((minute >= 690) & (minute < 780)).any()
    logp = np.log(b.price)
    new_day = np.flatnonzero(np.diff(day)) + 1
    assert new_day.size == 19
    overnight = np.abs(logp[new_day] - logp[new_day - 1])
    intraday = np.abs(np.diff(logp)[np.diff(day) == 0])
    assert np.median(overnight) > 5 * np.mean(intraday)

    fx = rows(null_tape, "DXY")                 # around the clock, Sunday 18:00 to Friday 17:00 New York
    minute, _, weekday = local_clock(fx.ts, "America/New_York")
    assert not (weekday == 5).any()
    assert not ((weekday == 6) & (minute < 18 * 60)).any()
    assert not ((weekday == 4) & (minute >= 17 * 60)).any()
    assert np.count_nonzero(np.diff(fx.ts) > 40 * 3600 * NS) == 3     # three weekends


def test_aggressor_side_only_where_published(mixed_tape):
    for spec in mixed_tape.specs:
        side = rows(mixed_tape, spec.name).side
        assert (side != 0).all() if spec.aggressor else (side == 0).all()


def test_tape_is_sorted_valid_and_on_the_tick_grid(mixed_tape):
    t = mixed_tape.ticks
    assert np.all(np.diff(t.ts) >= 0)
    good, reason = validate(t)
    assert len(good) == len(t) and not reason.any()
    for spec in mixed_tape.specs:
        p = rows(mixed_tape, spec.name).price
        assert np.allclose(p / spec.tick, np.round(p / spec.tick), atol=1e-6)


def test_tick_rates_are_modest(mixed_tape):
    for spec in mixed_tape.specs:
        b = rows(mixed_tape, spec.name)
        open_seconds = len(np.unique(b.ts // (60 * NS))) * 60
        assert 0.3 < len(b) / open_seconds < 6


# ---------------------------------------------------------------------------------------------
# episodes

def one_episode(ep, *, spec="DXY", seed=3, days=1):
    sc = generate(seed=seed, instruments=[spec], days=days, start="2025-05-20", episodes=[ep])
    (label,) = [lb for lb in sc.labels if lb.kind != "control" or lb.style == ep.kind]
    return sc, rows(sc, label.instrument), label


def window(b, lo, hi):
    return b.select((b.ts >= lo) & (b.ts < hi))


def realised_vol(b):
    r, _ = minute_returns(b)
    return np.sqrt(np.mean(r ** 2))


@pytest.mark.parametrize("style, imbalance_sign", [("aggressive", -1), ("passive", 1)])
def test_steady_seller_drifts_down_in_normal_volatility(style, imbalance_sign):
    drift, vol_ratio, imbalance = [], [], []
    for seed in range(4):                     # order flow has long memory: average a few episodes
        ep = Episode(instrument="DXY", kind="steady_flow", side="sell", start="2025-05-20T09:00:00-04:00",
                     minutes=300, strength=3.0, style=style)
        _, b, label = one_episode(ep, seed=seed)
        assert label.kind == "steady_flow" and label.side == "sell" and label.style == style
        assert (label.end_ts - label.start_ts) == 300 * 60 * NS
        inside = window(b, label.start_ts, label.end_ts)
        without = window(generate(seed=seed, instruments=["DXY"], days=1, start="2025-05-20", rates={}).ticks,
                         label.start_ts, label.end_ts)
        hourly_sd = realised_vol(inside) * np.sqrt(60)
        drift.append(np.log(inside.price[-1] / inside.price[0]) / 5 / hourly_sd)
        vol_ratio.append(realised_vol(inside) / realised_vol(without))
        imbalance.append(inside.side.mean())
    assert np.mean(drift) < -1.5 and max(drift) < 0      # about -3 hourly sd per hour
    assert np.mean(vol_ratio) < 1.15                      # normal or low volatility
    # aggressive children add flow on their side; passive ones are hit by the other side (absorption)
    assert imbalance_sign * np.mean(imbalance) > 0.05


def test_steady_flow_on_a_yield_moves_the_yield_up_and_repeats_each_session():
    ep = Episode(instrument="UST10Y", kind="steady_flow", side="sell", start="2025-05-20T10:00:00-04:00",
                 minutes=240, sessions=3, strength=2.5)
    sc, b, label = one_episode(ep, spec="UST10Y", days=4)
    assert sc.config.for_instrument("UST10Y").invert
    assert (label.end_ts - label.start_ts) == (2 * 24 + 4) * 3600 * NS
    assert label.hours == 12.0                  # the open hours it works, for its whole-episode t
    for d in range(3):
        lo = label.start_ts + d * 24 * 3600 * NS
        w = window(b, lo, lo + 240 * 60 * NS)
        assert w.price[-1] > w.price[0]


def test_burst_is_a_jump_then_a_same_side_cascade():
    ep = Episode(instrument="DXY", kind="burst", side="buy", start="2025-05-20T10:30:00-04:00", minutes=1.0, strength=6.0)
    _, b, label = one_episode(ep)
    before = window(b, label.start_ts - 600 * NS, label.start_ts)
    inside = window(b, label.start_ts, label.end_ts)
    seconds = (label.end_ts - label.start_ts) / NS
    assert 10 <= seconds <= 180
    assert len(inside) / seconds > 3 * len(before) / 600          # activity surge
    assert inside.side.mean() > 0.25                              # same-side cascade
    per_trade = np.std(np.diff(np.log(before.price)))
    assert np.log(inside.price[2] / before.price[-1]) > 3 * per_trade   # the jump
    assert inside.price[-1] > before.price[-1]


def test_deleveraging_is_violent_and_one_sided():
    ep = Episode(instrument="USDJPY", kind="deleveraging", side="sell", start="2025-05-21T09:20:00+09:00",
                 minutes=120, strength=5.0)
    _, b, label = one_episode(ep, spec="USDJPY", days=2)
    inside = window(b, label.start_ts, label.end_ts)
    before = window(b, label.start_ts - 4 * 3600 * NS, label.start_ts)
    assert realised_vol(inside) > 2.5 * realised_vol(before)
    assert len(inside) / 120 > 2.5 * len(before) / 240
    assert inside.side.mean() < -0.25
    assert np.log(inside.price[-1] / inside.price[0]) < -2 * CATALOGUE["USDJPY"].daily_vol


def test_volatility_spike_control_raises_volatility_only():
    ep = Episode(instrument="BUND", kind="vol_spike", start="2025-05-20T10:00:00+02:00", minutes=60, strength=4.0)
    _, b, label = one_episode(ep, spec="BUND")
    assert label.kind == "control" and label.side == "" and label.style == "vol_spike"
    inside = window(b, label.start_ts, label.end_ts)
    before = window(b, label.start_ts - 3 * 3600 * NS, label.start_ts)
    assert realised_vol(inside) > 2 * realised_vol(before)


def test_labels_are_consistent_and_inside_the_generated_range(mixed_tape):
    sc = mixed_tape
    kinds = {lb.kind for lb in sc.labels}
    assert {"steady_flow", "burst", "control"} <= kinds
    by_instrument = {}
    for lb in sc.labels:
        assert sc.start_ts <= lb.start_ts < lb.end_ts <= sc.end_ts
        assert lb.instrument in sc.ticks.instruments
        assert (lb.side in ("sell", "buy")) == (lb.kind != "control")
        by_instrument.setdefault(lb.instrument, []).append(lb)
    assert sc.ticks.ts[0] >= sc.start_ts and sc.ticks.ts[-1] <= sc.end_ts
    for labels in by_instrument.values():      # episodes never overlap on one instrument
        eps = sorted((lb for lb in labels if lb.kind != "control"), key=lambda lb: lb.start_ts)
        assert all(a.end_ts < b.start_ts for a, b in zip(eps, eps[1:]))
    assert sc.instrument_days == 6 * 10


def test_both_sides_and_all_kinds_over_a_few_seeds():
    seen = set()
    for seed in range(3):
        sc = generate(seed=seed, instruments=4, days=10)
        seen |= {(lb.kind, lb.side or lb.style) for lb in sc.labels}
    for kind in ("steady_flow", "burst", "deleveraging"):
        assert {(kind, "sell"), (kind, "buy")} <= seen
    assert {("control", s) for s in ("null_day", "quiet_day", "vol_spike", "news_day")} <= seen


# ---------------------------------------------------------------------------------------------
# determinism, API, writers

def test_deterministic_per_seed_and_per_instrument():
    a = generate(seed=2, instruments=["DXY", "BUND"], days=2)
    b = generate(seed=2, instruments=["DXY", "BUND"], days=2)
    c = generate(seed=3, instruments=["DXY", "BUND"], days=2)
    alone = generate(seed=2, instruments=["DXY"], days=2)
    for f in ("ts", "price", "size", "side", "code"):
        assert np.array_equal(getattr(a.ticks, f), getattr(b.ticks, f))
    assert a.labels == b.labels
    assert not np.array_equal(a.ticks.price[:1000], c.ticks.price[:1000])
    dxy = rows(a, "DXY")
    assert np.array_equal(dxy.price, alone.ticks.price) and np.array_equal(dxy.ts, alone.ticks.ts)


def test_demo_scenario():
    sc = demo_scenario()
    assert sc.ticks.instruments == ("BUND", "CSI300ETF", "DXY", "USDJPY", "UST10Y")
    assert 200_000 < len(sc.ticks) < 500_000
    kinds = {(lb.instrument, lb.kind, lb.side) for lb in sc.labels}
    assert {("UST10Y", "steady_flow", "sell"), ("UST10Y", "burst", "sell"), ("DXY", "burst", "buy"),
            ("DXY", "burst", "sell"), ("USDJPY", "deleveraging", "sell"), ("CSI300ETF", "steady_flow", "buy")} <= kinds
    assert not any(lb.instrument == "BUND" and lb.kind != "control" for lb in sc.labels)
    assert sc.config.for_instrument("UST10Y").invert
    assert sc.config.for_instrument("CSI300ETF").calendar.tz == "Asia/Shanghai"
    assert all(c.watch for c in sc.config.instruments.values())
    dxy = rows(sc, "DXY").price
    assert dxy.max() > 100 > dxy.min()             # the key level is in play
    ust = rows(sc, "UST10Y").price
    assert ust[-1] > ust[0]                        # Treasuries sold: the yield ends the week higher


def test_writers_round_trip(tmp_path):
    sc = generate(seed=4, instruments=["DXY", "UST10Y"], days=1)
    sc.write_csv(tmp_path / "t.csv")
    sc.write_jsonl(tmp_path / "t.jsonl")
    sc.write_labels(tmp_path / "l.jsonl")
    sc.write_config(tmp_path / "c.toml")
    with open(tmp_path / "t.csv", newline="") as f:
        got = list(csv.reader(f))
    assert got[0] == ["instrument", "ts", "price", "size", "side"]
    assert len(got) == len(sc.ticks) + 1
    names = sc.ticks.instrument_names()
    for i in (1, len(got) // 2, len(got) - 1):
        name, ts, price, size, side = got[i]
        assert name == names[i - 1] and int(ts) == sc.ticks.ts[i - 1]
        assert float(price) == sc.ticks.price[i - 1] and float(size) == sc.ticks.size[i - 1]
        assert side == {1: "B", -1: "S", 0: ""}[int(sc.ticks.side[i - 1])]
    lines = (tmp_path / "t.jsonl").read_bytes().splitlines()
    assert len(lines) == len(sc.ticks)
    first = orjson.loads(lines[0])
    assert first["ts"] == sc.ticks.ts[0] and first["price"] == sc.ticks.price[0]
    labels, days = read_labels(tmp_path / "l.jsonl")
    assert tuple(labels) == sc.labels and days == sc.instrument_days
    cfg = load_config(tmp_path / "c.toml")
    assert dict(cfg.instruments) == dict(sc.config.instruments)


def test_bad_arguments_name_what_to_fix():
    with pytest.raises(ConfigError, match="kind 'crash' is unknown"):
        Episode(instrument="DXY", kind="crash", side="sell", start=0)
    with pytest.raises(ConfigError, match="needs side 'sell' or 'buy'"):
        Episode(instrument="DXY", kind="burst", start=0)
    with pytest.raises(ConfigError, match="outside trading hours"):
        generate(seed=1, instruments=["SPY"], days=1, start="2025-05-20",
                 episodes=[Episode(instrument="SPY", kind="burst", side="buy", start="2025-05-20T03:00:00-04:00")])
    with pytest.raises(ConfigError, match="not generated"):
        generate(seed=1, instruments=["SPY"], days=1, episodes=[Episode(instrument="X", kind="burst", side="buy", start=0)])
    with pytest.raises(ConfigError, match="cannot publish an aggressor side"):
        dataclasses.replace(CATALOGUE["UST10Y"], aggressor=True)
    with pytest.raises(ConfigError, match="rates has unknown kinds"):
        generate(seed=1, instruments=1, rates={"crash": 1.0})
    with pytest.raises(ConfigError, match="tick 200.0 must be smaller than price 100.0"):
        InstrumentSpec(name="X", price=100.0, daily_vol=0.01, tick=200.0, rate=1.0, tz="UTC", hours=("00:00", "00:00"))


def test_thinned_keeps_a_share_of_the_ticks_and_every_label(mixed_tape):
    thin = mixed_tape.thinned(5, seed=3)
    n, m = len(mixed_tape.ticks), len(thin.ticks)
    assert abs(m - n / 5) < 4 * np.sqrt(n / 5)
    assert np.all(np.diff(thin.ticks.ts) >= 0)
    assert np.isin(thin.ticks.ts, mixed_tape.ticks.ts).all()
    assert thin.labels == mixed_tape.labels and thin.instrument_days == mixed_tape.instrument_days
    assert np.array_equal(mixed_tape.thinned(5, seed=3).ticks.ts, thin.ticks.ts)
    with pytest.raises(ValueError, match="thinning factor must be >= 1, got 0.5"):
        mixed_tape.thinned(0.5)


def test_tick_scale_puts_the_same_market_on_a_coarser_grid():
    fine = generate(seed=3, instruments=["BUND", "DXY"], days=2)
    coarse = generate(seed=3, instruments=["BUND", "DXY"], days=2, tick_scale=5)
    assert coarse.labels == fine.labels and np.array_equal(coarse.ticks.ts, fine.ticks.ts)
    for k, spec in enumerate(coarse.specs):
        assert spec.tick == pytest.approx(5 * CATALOGUE[spec.name].tick)
        px = coarse.ticks.price[coarse.ticks.code == k]
        assert np.allclose(px / spec.tick, np.round(px / spec.tick), atol=1e-6)
        assert len(np.unique(px)) < len(np.unique(fine.ticks.price[fine.ticks.code == k])) / 2
    with pytest.raises(ConfigError, match="tick_scale must be a number > 0, got 0"):
        generate(seed=1, instruments=1, tick_scale=0)
