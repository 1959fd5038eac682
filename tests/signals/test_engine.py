"""Engine behaviour: batch-boundary invariance, checkpoints, and regimes on synthetic tapes.

The synthetic tapes are built here with numpy from a few plain segments (a Poisson tick clock,
Gaussian log returns with a drift, aggressor sides drawn with a buy probability, an optional
jump), so every test states the regime it plants and checks what the engine makes of it.
"""
from __future__ import annotations

import dataclasses
import doctest
import struct
import numpy as np
import pytest

import signals.engine
from signals import kernels as K
from signals.config import EngineConfig, InstrumentConfig, Thresholds
from signals.engine import STAT_NAMES, Engine
from signals.scenarios import CATALOGUE, NULL_RATES, generate
from signals.errors import StateError, TapewatchError
from signals.ticks import REASON_CODE, TickBatch

from tests.signals.tapes import (S, T0, WARM_S, Seg, given_back_news_tape, noisy_news_tape, sweep_tape, balanced_grind_tape, daily_balanced_grind_tape, lagging_tape, violent_rout_tape, flow_led_rout_tape, zigzag_news_tape, burst_tape, busy_grind_tape, delev_tape, interleave, rout_then_quiet_tape, rout_then_a_day_tape,
                                long_rout_tape, news_then_delev_tape, noisy_slide_tape, rout_then_grind_tape, run, seen_hour_rout_tape, sparse_news_tape, sparse_rout_tape, steady_tape, surge_tape,
                                two_grinds_tape, tape, noisy_quiet_rout_tape)


def test_engine_docstring_examples_run():
    assert doctest.testmod(signals.engine).failed == 0


# ---- batch boundaries ------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed() -> TickBatch:
    """Four instruments, interleaved: steady flow, a burst, deleveraging and a noisy one."""
    rng = np.random.default_rng(11)
    noise = tape(4, [Seg(8 * 3600, rate=2.0, vol=3e-4)], name="N")
    noise = TickBatch.from_columns(["N"] * len(noise), noise.ts, noise.price, noise.size,
                                   rng.choice(np.array([-1, 0, 1], np.int8), len(noise)))
    return interleave(steady_tape(1, name="S"), burst_tape(2, name="B"), delev_tape(3, name="D"), noise)


def test_mixed_tape_has_every_regime(mixed):
    _, res = run(mixed)
    assert {(t.instrument, t.kind) for t in res.alerts} >= {("S", "steady_flow"), ("B", "burst"), ("D", "deleveraging")}


def _split(batch: TickBatch, cuts) -> list[TickBatch]:
    edges = [0, *sorted(set(cuts)), len(batch)]
    return [batch.select(slice(a, b)) for a, b in zip(edges[:-1], edges[1:])]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_boundaries_do_not_change_results(mixed, seed):
    eng1, res1 = run(mixed)
    rng = np.random.default_rng(seed)
    cuts = rng.integers(0, len(mixed), 40 * (seed + 1)).tolist() + [1, 2, 3]      # incl. 1-row batches
    eng2 = Engine()
    transitions, reasons = [], []
    for part in _split(mixed, cuts):
        res = eng2.process(part)
        transitions += res.transitions
        reasons.append(res.reason)
    assert [t.to_dict() for t in transitions] == [t.to_dict() for t in res1.transitions]
    assert np.array_equal(np.concatenate(reasons), res1.reason)
    names = sorted(mixed.instruments)
    assert eng2.snapshot(names) == eng1.snapshot(names)


def test_tiny_output_buffers_give_the_same_results(mixed, monkeypatch):
    """The kernel stops when its event or sample buffer is nearly full and is resumed from that row."""
    eng1, res1 = run(mixed, sample_every_seconds=60)
    monkeypatch.setattr(signals.engine, "_EV_CAP", 2)
    monkeypatch.setattr(signals.engine, "_SM_CAP", 1)
    eng2, res2 = run(mixed, sample_every_seconds=60)
    assert [t.to_dict() for t in res2.transitions] == [t.to_dict() for t in res1.transitions]
    for field in ("instrument", "ts", "stats", "regime", "side"):
        assert np.array_equal(getattr(res2.samples, field), getattr(res1.samples, field))
    assert eng2.snapshot(mixed.instruments) == eng1.snapshot(mixed.instruments)


def test_samples_are_at_most_one_per_period_per_instrument(mixed):
    _, res = run(mixed, sample_every_seconds=300)
    sm = res.samples
    assert len(sm.ts) > 100
    for name in mixed.instruments:
        ts = sm.ts[sm.instrument == name]
        assert len(ts) > 0 and np.all(np.diff(ts // (300 * S)) >= 1)


# ---- checkpoints -----------------------------------------------------------------------

@pytest.mark.parametrize("frac", [0.1, 0.5, 0.93])
def test_snapshot_restore_mid_stream_continues_identically(mixed, frac):
    cut = int(len(mixed) * frac)
    whole, res = run(mixed)
    first, res_a = run(mixed.select(slice(0, cut)))
    blob = first.snapshot(first.instruments)
    second = Engine()
    assert sorted(second.restore(blob)) == sorted(first.instruments)
    res_b = second.process(mixed.select(slice(cut, len(mixed))))
    assert [t.to_dict() for t in res_a.transitions + res_b.transitions] == [t.to_dict() for t in res.transitions]
    assert second.snapshot(mixed.instruments) == whole.snapshot(mixed.instruments)
    assert second.status("S") == whole.status("S")


def test_snapshot_skips_unknown_names_and_restore_replaces_state(mixed):
    eng, _ = run(mixed)
    blob = eng.snapshot(["S", "nope"])
    other, _ = run(burst_tape(9, name="S"))
    assert other.restore(blob) == ["S"]
    assert other.snapshot(["S"]) == blob
    assert len(blob) == struct.calcsize("<3sBHHI") + 2 + 1 + 8 * (K.NF + K.NI)


def _blob(mixed) -> bytes:
    eng, _ = run(mixed.select(slice(0, 5000)))
    return eng.snapshot(["B", "S"])


def _corruptions(blob: bytes) -> dict[str, bytes]:
    head = struct.calcsize("<3sBHHI")
    magic, ver, nf, ni, count = struct.unpack_from("<3sBHHI", blob)
    name_end = head + 2 + 1 + 2 + 1
    return {
        "empty": b"",
        "short header": blob[:head - 1],
        "bad magic": b"XYZ" + blob[3:],
        "wrong version": struct.pack("<3sBHHI", magic, ver + 1, nf, ni, count) + blob[head:],
        "wrong float columns": struct.pack("<3sBHHI", magic, ver, nf - 1, ni, count) + blob[head:],
        "wrong int columns": struct.pack("<3sBHHI", magic, ver, nf, ni + 1, count) + blob[head:],
        "count too large": struct.pack("<3sBHHI", magic, ver, nf, ni, count + 1) + blob[head:],
        "truncated in names": blob[:head + 3],
        "truncated in arrays": blob[:name_end + 100],
        "one byte short": blob[:-1],
        "trailing bytes": blob + b"\0",
        "name not utf-8": blob[:head + 2] + b"\xff" + blob[head + 3:],
    }


@pytest.mark.parametrize("what", ["empty", "short header", "bad magic", "wrong version", "wrong float columns",
                                  "wrong int columns", "count too large", "truncated in names",
                                  "truncated in arrays", "one byte short", "trailing bytes", "name not utf-8"])
def test_restore_rejects_corrupt_truncated_and_wrong_version_blobs(mixed, what):
    blob = _corruptions(_blob(mixed))[what]
    eng = Engine()
    with pytest.raises(StateError) as err:
        eng.restore(blob)
    assert isinstance(err.value, TapewatchError) and isinstance(err.value, ValueError)
    assert eng.instruments == ()


def test_drop_resets_an_instrument_to_a_fresh_start(mixed):
    eng, _ = run(mixed)
    eng.drop(["S", "unknown"])
    fresh_F, fresh_I = K.new_rows(1)
    F, I = eng.state_rows("S")
    assert np.array_equal(F, fresh_F[0]) and np.array_equal(I, fresh_I[0])
    assert eng.status("S")["ticks"] == 0 and eng.status("S")["regime"] == "quiet"
    assert eng.status("D")["ticks"] > 0                      # others untouched
    s = steady_tape(1, name="S")
    res = eng.process(s)                                     # S starts over, as in a new engine
    fresh, res_fresh = run(s)
    assert [t.to_dict() for t in res.transitions] == [t.to_dict() for t in res_fresh.transitions]
    assert eng.snapshot(["S"]) == fresh.snapshot(["S"])


# ---- regimes on synthetic tapes --------------------------------------------------------

@pytest.mark.parametrize("direction,side", [(1, "buy"), (-1, "sell")])
@pytest.mark.parametrize("seed", [1, 2])
def test_steady_drift_with_one_sided_flow_alerts_on_its_side(seed, direction, side):
    _, res = run(steady_tape(seed, direction))
    start = T0 + WARM_S * S
    hits = [t for t in res.alerts if t.kind == "steady_flow" and t.side == side and t.ts >= start]
    assert hits, [t.to_dict() for t in res.transitions]
    first = hits[0]
    assert first.ts <= start + 3 * 3600 * S                          # found within 3 h
    assert abs(first.onset_ts - start) <= 3600 * S                    # onset within 1 h of the truth
    assert first.evidence["drift_tstat_3600s"] * direction > 0
    assert not [t for t in res.alerts if t.ts >= start and t.side != side]


def test_steady_flow_ends_after_the_drift_stops():
    _, res = run(steady_tape(1))
    exits = [t for t in res.transitions if t.event == "exit" and t.kind == "steady_flow"]
    assert exits and exits[-1].ts > T0 + (WARM_S + 6 * 3600) * S


@pytest.mark.parametrize("seed", [1, 2])
def test_a_grind_that_starts_again_after_its_episode_ended_is_a_new_alert(seed):
    """Within the 30-h cooldown, but the second grind's move began after the first episode ended."""
    _, res = run(two_grinds_tape(seed, pause_hours=12))
    steady = [t for t in res.transitions if t.kind == "steady_flow"]
    assert [t.event for t in steady] == ["enter", "exit", "enter"], [t.to_dict() for t in steady]
    first, end, second = steady
    assert second.id != first.id and second.onset_ts > end.ts
    restart = T0 + (WARM_S + 16 * 3600) * S
    assert abs(second.onset_ts - restart) <= 3600 * S                # onset within 1 h of the restart


@pytest.mark.parametrize("seed", [1, 2, 5])
def test_a_grind_that_pauses_briefly_resumes_its_episode(seed):
    """A 90-min pause ends the regime, but the move that comes back began before that end."""
    _, res = run(two_grinds_tape(seed, pause_hours=1.5))
    steady = [t for t in res.transitions if t.kind == "steady_flow"]
    assert [t.event for t in steady][:3] == ["enter", "exit", "resume"], [t.to_dict() for t in steady]
    assert sum(t.event == "enter" for t in steady) == 1
    assert {(t.id, t.onset_ts) for t in steady} == {(steady[0].id, steady[0].onset_ts)}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_volatile_slide_under_bid_ask_noise_is_not_steady_flow(seed):
    """Three hours at three times the volatility, sliding with 60% sellers, on a feed whose
    bid-ask bounce dominates 1-s returns: the volatility ratio (noise included) reads about 1.1,
    so without steady_hac_vol_ratio_max the slide is called steady flow within its first hour
    or so. On the noise-free (lag-1 HAC) scale it is three times normal: no steady flow while it
    lasts."""
    end = T0 + 15 * 3600 * S
    off = [t for t in _alerts(noisy_slide_tape(seed), steady_hac_vol_ratio_max=float("inf"))
           if t.kind == "steady_flow"]
    assert off and off[0].ts < end and off[0].evidence["vol_ratio_900s"] < 1.2
    assert not [t for t in _alerts(noisy_slide_tape(seed)) if t.kind == "steady_flow" and t.ts < end]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_strong_grind_with_balanced_trades_needs_no_corroboration(seed):
    """Passive children leave no trace in the signed volume. With the fingerprint's
    corroboration switched off, the 1-h flow |z| stays under steady_flow_z, and the grind is
    called on its drift alone (1-h t at least steady_tstat_strong) within its first 90
    minutes; with steady_tstat_strong off too, nothing is called in that time (later only
    when the balanced flow happens to lean one way)."""
    inf = float("inf")
    th = Thresholds()
    start = T0 + WARM_S * S
    on = [t for t in _alerts(balanced_grind_tape(seed), steady_fingerprint_tstat=inf) if t.kind == "steady_flow"]
    assert on and on[0].side == "sell" and on[0].ts < start + 5400 * S, [t.to_dict() for t in on]
    assert abs(on[0].evidence["flow_z_3600s"]) < th.steady_flow_z
    assert on[0].evidence["drift_tstat_3600s"] <= -th.steady_tstat_strong
    off = _alerts(balanced_grind_tape(seed), steady_fingerprint_tstat=inf, steady_tstat_strong=inf)
    assert not [t for t in off if t.kind == "steady_flow" and t.ts < start + 5400 * S]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_fingerprint_is_past_days_only(seed):
    """A passive grind (balanced trades) at the same hours on two days, with every other path to
    steady flow off (the drift alone, steady_tstat_strong, and the flow, steady_flow_z and
    steady_flow_z_strong), so only the fingerprint can corroborate. On the first day the
    grind's own drift is not its fingerprint: the statistic stays under
    steady_fingerprint_tstat while the 1-h t passes -5, and nothing is called. On the second
    day yesterday's drift at these hours corroborates today's, and the grind is called within
    90 minutes of its restart. (While today's part of the hour counted, the first day's drift
    vouched for itself and was called.)"""
    th, inf = Thresholds(), float("inf")
    day1, day2 = T0 + WARM_S * S, T0 + (WARM_S + 24 * 3600) * S
    only_fp = Thresholds(steady_tstat_strong=inf, steady_flow_z=inf, steady_flow_z_strong=inf)
    res = Engine(EngineConfig(thresholds=only_fp)).process(daily_balanced_grind_tape(seed), sample_every_seconds=60)
    t1h = res.samples.stats[:, STAT_NAMES.index("drift_tstat_3600s")]
    fp = res.samples.stats[:, STAT_NAMES.index("fingerprint_tstat")]
    first = (res.samples.ts >= day1) & (res.samples.ts < day1 + 4 * 3600 * S)
    assert t1h[first].min() <= -5 and np.abs(fp[first]).max() < th.steady_fingerprint_tstat
    steady = [t for t in res.alerts if t.kind == "steady_flow"]
    assert steady and all(day2 <= t.ts < day2 + 5400 * S and t.side == "sell" for t in steady), \
        [t.to_dict() for t in steady]
    assert steady[0].evidence["fingerprint_tstat"] <= -th.steady_fingerprint_tstat


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_rout_is_not_a_habit_of_its_hour(seed):
    """A one-hour rout, then a quiet day. At the rout's hour on the next day the same-hours
    fingerprint stays under steady_fingerprint_tstat: a bar in a burst or deleveraging adds its
    seconds but not its return (only the rout's minutes before deleveraging was entered count).
    With deleveraging off (its three intensity conditions at infinity) the same rout's bars
    count, and the next day's fingerprint passes -10."""
    th, inf = Thresholds(), float("inf")
    b = rout_then_a_day_tape(seed)
    hour = (T0 + (WARM_S + 86400) * S, T0 + (WARM_S + 86400 + 3600) * S)
    fps = []
    for cfg in (EngineConfig(), EngineConfig(thresholds=Thresholds(delev_vol_ratio=inf, delev_activity_ratio=inf,
                                                                         delev_violent_move=inf))):
        res = Engine(cfg).process(b, sample_every_seconds=60)
        fp = res.samples.stats[(res.samples.ts >= hour[0]) & (res.samples.ts < hour[1]), STAT_NAMES.index("fingerprint_tstat")]
        fps.append(fp)
        kinds = {t.kind for t in res.alerts}
        assert ("deleveraging" in kinds) == (cfg.thresholds == th), kinds
    assert np.abs(fps[0]).max() < th.steady_fingerprint_tstat, fps[0].min()
    assert fps[1].min() <= -10


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_new_instrument_whose_first_minutes_print_at_one_price(seed):
    """Two minutes of trades at 3.966, then a normal day. Three equal prices summed and divided
    by three are not 3.966, so the first bars' means differ by about 1e-16; counted as returns,
    they gave the baseline a variance of about 1e-33, every later return was clipped against it
    and read as billions of standard deviations, and the fingerprint of that hour went to about
    -1e10 for weeks. Now no statistic leaves its usual range: the fingerprint stays within 5
    and the 15-min volatility ratio within 3 from ten minutes in."""
    res = Engine().process(tape(seed, [Seg(120, vol=0.0), Seg(28 * 3600)], p0=3.966), sample_every_seconds=60)
    st, later = res.samples.stats, res.samples.ts > T0 + 600 * S
    assert np.abs(st[:, STAT_NAMES.index("fingerprint_tstat")]).max() < 5
    assert st[later, STAT_NAMES.index("vol_ratio_900s")].max() < 3
    assert not res.alerts


@pytest.mark.parametrize("seed", [1, 2])
def test_a_violent_rout_with_a_plain_flow_is_called_before_its_local_t_reaches_delev_tstat(seed):
    """An 18% slide in an hour at eight times the volatility, 80% sellers: within 15 minutes the
    move against normal volatility passes delev_move_tstat and the flow z delev_violent_flow_z
    while the 15-min t (over the rout's own volatility) is still under delev_tstat; it is called
    then. With delev_violent_tstat off, nothing is called in those 15 minutes. (The stronger-flow
    path, which would call it sooner on a smaller move, is off in both runs, and so is the entry
    without a wait, delev_enter_flow_z.)"""
    th = Thresholds()
    start = T0 + (2 * 86400 + WARM_S) * S
    inf = float("inf")
    on = [t for t in _alerts(violent_rout_tape(seed), delev_strong_flow_z=inf, delev_enter_flow_z=inf)
          if t.kind == "deleveraging" and t.ts >= start]
    assert on and on[0].side == "sell" and on[0].ts < start + 900 * S, [t.to_dict() for t in on]
    ev = on[0].evidence
    assert -th.delev_tstat < ev["drift_tstat_900s"] <= -th.delev_violent_tstat
    assert ev["move_tstat_900s"] <= -th.delev_move_tstat
    assert min(ev["flow_z_900s"], ev["flow_z_volume"]) <= -th.delev_violent_flow_z
    off = _alerts(violent_rout_tape(seed), delev_violent_tstat=inf, delev_strong_flow_z=inf, delev_enter_flow_z=inf)
    assert not [t for t in off if t.kind == "deleveraging" and start <= t.ts < start + 900 * S]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_rout_the_ratios_do_not_see_is_called_on_its_move(seed):
    """A 12% slide in 30 minutes, 80% sellers, at 1.4 times the activity, every trade at the bid
    or the ask: the bid-ask bounce keeps the 15-min volatility ratio near 1 and the activity
    ratio under delev_activity_ratio, so neither intensity path holds. Its move against normal
    volatility passes delev_violent_move, which stands in for both; with delev_violent_move off
    the rout is called later, on a chance burst of trades, or not at all."""
    th = Thresholds()
    start = T0 + (2 * 86400 + WARM_S) * S
    on = [t for t in _alerts(noisy_quiet_rout_tape(seed)) if t.kind == "deleveraging" and t.ts >= start]
    assert on and on[0].side == "sell", [t.to_dict() for t in on]
    ev = on[0].evidence
    assert ev["vol_ratio_900s"] < th.delev_vol_ratio and ev["activity_ratio"] < th.delev_activity_ratio
    assert ev["move_tstat_900s"] <= -th.delev_violent_move
    off = [t for t in _alerts(noisy_quiet_rout_tape(seed), delev_violent_move=float("inf"))
           if t.kind == "deleveraging" and t.ts >= start]
    assert not off or off[0].ts > on[0].ts, (on[0].ts - start, off[0].ts - start)


@pytest.mark.parametrize("seed", [2, 3, 5, 8])
def test_a_rout_whose_flow_is_plain_before_its_drift_is_called_sooner(seed):
    """An 11% slide in an hour at four times the volatility, 80% sellers: the flow z passes
    delev_strong_flow_z within minutes, while the 15-min t is under delev_tstat and the move
    under delev_move_tstat (so the violent-move path waits too). With the move at
    delev_strong_flow_move and the t at delev_strong_flow_tstat it is called then; with
    delev_strong_flow_z off, at least five minutes later. (The entry without a wait,
    delev_enter_flow_z, is off in both runs: both wait out delev_enter_seconds.)"""
    th = Thresholds()
    start = T0 + (2 * 86400 + WARM_S) * S
    wait = {"delev_enter_flow_z": float("inf")}
    on = [t for t in _alerts(flow_led_rout_tape(seed), **wait) if t.kind == "deleveraging" and t.ts >= start]
    assert on and on[0].side == "sell", [t.to_dict() for t in on]
    ev = on[0].evidence
    assert -th.delev_tstat < ev["drift_tstat_900s"] <= -th.delev_strong_flow_tstat
    assert -th.delev_move_tstat < ev["move_tstat_900s"] <= -th.delev_strong_flow_move
    assert min(ev["flow_z_900s"], ev["flow_z_volume"]) <= -th.delev_strong_flow_z
    off = [t for t in _alerts(flow_led_rout_tape(seed), delev_strong_flow_z=float("inf"), **wait)
           if t.kind == "deleveraging" and t.ts >= start]
    assert not off or off[0].ts >= on[0].ts + 300 * S, (on[0].ts - start, off[0].ts - start)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize("rout", [delev_tape, flow_led_rout_tape], ids=["rout", "flow-led rout"])
def test_a_rout_with_a_plain_flow_is_entered_without_waiting(rout, seed):
    """80% sellers: when deleveraging's rule first holds, the 15-min or volume-clock flow z is
    past delev_enter_flow_z, so the rout is entered then; with delev_enter_flow_z off it waits
    out delev_enter_seconds."""
    th = Thresholds()
    on = [t for t in _alerts(rout(seed)) if t.kind == "deleveraging"]
    off = [t for t in _alerts(rout(seed), delev_enter_flow_z=float("inf")) if t.kind == "deleveraging"]
    assert on and off and on[0].side == off[0].side == "sell"
    assert min(on[0].evidence["flow_z_900s"], on[0].evidence["flow_z_volume"]) <= -th.delev_enter_flow_z
    assert off[0].ts - on[0].ts >= th.delev_enter_seconds * S


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_rout_that_follows_news_waits_while_the_burst_is_on(seed):
    """A news burst runs into a rout with 80% sellers: deleveraging's rule holds, with a plain
    flow, while the engine is still in the burst. A news cascade reads like a rout for its first
    minutes, so there it waits out delev_enter_seconds: the burst is replaced exactly when it is
    with delev_enter_flow_z off."""
    b = news_then_delev_tape(seed)
    on = [(t.event, t.kind, t.ts) for t in run(b)[1].transitions]
    off = [(t.event, t.kind, t.ts) for t in _alerts(b, delev_enter_flow_z=float("inf"))]
    enter = next(x for x in on if x[:2] == ("enter", "deleveraging"))
    assert ("exit", "burst", enter[2]) in on                 # it replaced the burst
    assert enter in off


@pytest.mark.parametrize("seed", [0, 1, 3, 4, 5])
def test_a_large_news_jump_without_sides_needs_no_flow_from_the_tick_rule(seed):
    """On a feed without aggressor sides, a news jump and a 90-s run the jump's way in a zigzag
    (two up, one down): the tick rule signs its trades alternately, so the cascade's 10-s flow
    z stays under burst_flow_z_tick_rule. After a 0.4% jump (|jump_z| past
    burst_jump_z_tick_rule) it is a burst within 2 minutes, and none with that threshold off;
    after a 0.15% jump (burst-level, |jump_z| under it) it is none, and a burst with the
    threshold at 0. Where the feed gives the same balanced signs as aggressor sides, the 0.4%
    jump is no burst: there the flow is what the trades say."""
    start, inf = T0 + WARM_S * S, float("inf")

    def bursts(jump, sides=False, **th):
        return [t for t in _alerts(zigzag_news_tape(seed, jump, sides=sides), **th)
                if t.kind == "burst" and start <= t.ts < start + 120 * S]

    big = bursts(0.004)
    assert big and big[0].side == "buy"
    assert not bursts(0.004, burst_jump_z_tick_rule=inf)
    assert not bursts(0.0015) and bursts(0.0015, burst_jump_z_tick_rule=0.0)
    assert not bursts(0.004, sides=True)


@pytest.mark.parametrize("seed", [2, 3, 4, 5, 6])
@pytest.mark.parametrize("direction", [1, -1])
def test_a_jump_the_price_gives_back_at_once_is_no_burst(seed, direction):
    """A 0.4% jump, then two minutes of ten times the trades with 80% of the aggressors on its
    side. Where the price holds the jump, or gives back 30% of it, it is a burst within 10 s;
    where it gives back 70% in the next second (a bounce on a coarse grid) it is none, and a
    burst at the same second with burst_jump_hold at 0.25."""
    start = T0 + WARM_S * S
    side = "buy" if direction > 0 else "sell"

    def first(back, **th):
        got = [t for t in _alerts(given_back_news_tape(seed, back, direction), **th)
               if t.kind == "burst" and start <= t.ts < start + 120 * S]
        return (got[0].side, got[0].ts) if got else None

    held = first(0.0)
    assert held is not None and held[0] == side and held[1] < start + 10 * S
    assert first(0.3) == held
    assert first(0.7) is None
    assert first(0.7, burst_jump_hold=0.25) == held


def _noisy_news_bursts(days: int = 0, **th) -> int:
    """How many of eight news cascades under bid-ask noise (four seeds, both sides) are bursts."""
    start = T0 + (days * 86400 + WARM_S) * S
    return sum(any(t.kind == "burst" and start <= t.ts < start + 60 * S
                   for t in _alerts(noisy_news_tape(seed, direction, days), **th))
               for seed in (1, 2, 3, 4) for direction in (1, -1))


def test_a_cascade_under_bid_ask_noise_is_seen_on_the_noise_free_scale():
    """News on a feed whose bid-ask bounce dominates 1-s returns (four seeds, both sides): the
    cascade's 1-min volatility ratio, noise included, reads 1.1-1.4, under burst_vol_ratio at
    the moments the rest of the rule holds, so none of the eight is a burst with
    burst_hac_vol_ratio off; on the noise-free scale its volatility is plain, and at least three
    are (four when measured). On the feed's first day, with the rule for an hour not yet seen
    off (that one is the next test's)."""
    assert _noisy_news_bursts(burst_hac_vol_ratio=float("inf"), burst_unseen_jump_z=0.0) == 0
    assert _noisy_news_bursts(burst_unseen_jump_z=0.0) >= 3


def test_news_in_an_hour_not_yet_seen_needs_a_larger_jump():
    """The same eight cascades: their jumps read a Lee-Mykland statistic of 4.7-6.9 (the bounce
    is in the test's local scale), under burst_unseen_jump_z. On the feed's first day, in an hour
    the seasonal profile has not seen, none is a burst (a busy session's first open passes the
    jump test at such values); with the rule off at least three are, and so are at least three
    of the same cascades a day later, when the hour is seen (four of eight each when measured)."""
    assert _noisy_news_bursts() == 0
    assert _noisy_news_bursts(burst_unseen_jump_z=0.0) >= 3
    assert _noisy_news_bursts(days=1) >= 3


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_grind_hours_after_a_rout_has_its_own_onset(seed, monkeypatch):
    """A 30% rout, 7 h quiet, then a grind on the same side: the grind's onset is its own start
    (within 1 h), because a CUSUM holds at most 4 h of its reference drift. Uncapped (the
    reference implementation with the caps at inf), the rout keeps the slow CUSUM above 0 for
    days and the grind's onset points back to the rout, 8 h early."""
    import signals.reference as reference

    b = rout_then_grind_tape(seed, pause_hours=7)
    start = T0 + (WARM_S + 8 * 3600) * S
    _, res = run(b)
    steady = [t for t in res.alerts if t.kind == "steady_flow"]
    assert [t.side for t in steady] == ["sell"] and abs(steady[0].onset_ts - start) <= 3600 * S
    monkeypatch.setattr(reference, "CUSUM_CAP_SLOW_S", float("inf"))
    monkeypatch.setattr(reference, "CUSUM_CAP_FAST_S", float("inf"))
    uncapped = [t for t in reference.ReferenceEngine(None).process(b).alerts if t.kind == "steady_flow"]
    assert uncapped[0].ts == steady[0].ts and uncapped[0].onset_ts <= start - 7 * 3600 * S


def test_quiet_random_walks_alert_rarely():
    """Eight 2-day random walks (with and without aggressor sides): 32 instrument-days.

    The calibrated rate is about 0.05 false alerts per instrument-day (docs/signals.md); a
    Poisson count with mean 1.6 exceeds 5 with probability under 1%, so more than 5 here
    means the false-alarm rate has at least doubled.
    """
    alerts = []
    for seed in range(4):
        for sides in (True, False):
            _, res = run(tape(seed, [Seg(2 * 86400, rate=1.0)], sides=sides))
            alerts += res.alerts
    assert len(alerts) <= 5, [t.to_dict() for t in alerts]



@pytest.mark.parametrize("seed", [5, 6])
def test_slow_drift_tstats_stay_standard_normal_on_a_coarse_tick_grid(seed):
    """Quiet markets on a tick grid five times coarser than the catalogue's (a tick is about two
    one-minute standard deviations, like a Treasury future). The per-second HAC rate there
    counts noise that persists for minutes, so without the noise scale the 1-h drift
    t-statistic has a standard deviation of about 0.6 and a real grind reads at half its
    strength; with it, 0.90-0.99 (0.77-0.84 while the 1-h t took the old ratio with its margin
    of 1.5, not the own ratio with 1.35), and the 15-min one about 1."""
    names = ("BUND", "DXY", "UST10Y")
    specs = [dataclasses.replace(CATALOGUE[n], tick=CATALOGUE[n].tick * 5) for n in names]
    sc = generate(seed=seed, instruments=specs, days=10, rates={})
    eng = Engine(sc.config)
    parts = [eng.process(sc.ticks.select(slice(lo, lo + 200_000)), sample_every_seconds=60).samples
             for lo in range(0, len(sc.ticks), 200_000)]
    inst = np.concatenate([p.instrument for p in parts])
    ts = np.concatenate([p.ts for p in parts])
    stats = np.concatenate([p.stats for p in parts])
    late = ts > ts.min() + 3 * 86400 * S                 # once the noise scale has its baseline
    for name in names:
        sel = (inst == name) & late
        sd_15m = stats[sel, STAT_NAMES.index("drift_tstat_900s")].std()
        sd_1h = stats[sel, STAT_NAMES.index("drift_tstat_3600s")].std()
        assert 0.85 <= sd_15m <= 1.2 and 0.85 <= sd_1h <= 1.2, (name, sd_15m, sd_1h)

@pytest.mark.parametrize("seed", [1, 2])
def test_slow_drift_tstats_stay_near_standard_normal_where_the_price_lags_its_value(seed):
    """A quiet market whose price follows its value with a 5-s lag: its 1-s returns go on in the
    same direction, the lag-1 HAC rate is a fraction of the variance of 15-min sums, and
    without the noise scale's correction upwards the 15-min and 1-h drift t-statistics have a
    standard deviation of about 2 (a random walk passes for a grind). With it, the 15-min one
    about 1.3 (the margin leaves a factor of up to 1.5 in the variance uncorrected) and the
    1-h one about 1.1: the 1-h and 4-h statistics take the excess in full (1.3 while they too
    kept the margin)."""
    res = Engine().process(lagging_tape(seed, 4 * 24, 5.0), sample_every_seconds=60)
    late = res.samples.ts > T0 + 2 * 86400 * S          # once the noise scale has its baseline
    sd = {name: res.samples.stats[late, STAT_NAMES.index(name)].std()
          for name in ("drift_tstat_900s", "drift_tstat_3600s", "drift_tstat_14400s")}
    assert 0.8 <= sd["drift_tstat_900s"] <= 1.5, sd
    assert 0.85 <= sd["drift_tstat_3600s"] <= 1.2, sd
    assert 0.6 <= sd["drift_tstat_14400s"] <= 1.3, sd       # fewer independent 4-h windows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_slow_drift_tstats_stay_near_standard_normal_where_the_price_lags_its_value_from_the_first_hours(seed):
    """The same lagging price in its first 12 hours, before the 15-min blocks are believed: the
    noise scale on 1-min blocks, believed after an hour, takes the 1-h t-statistic's standard
    deviation from 1.25-1.8 to 0.75-1.1 over hours 2-12 (the 4-h one's from 0.8-1.3 to
    0.5-0.8). It corrects upwards only: on a market whose bounce the lag-1 HAC rate removes
    its factor is about 1 and nothing changes
    (`test_the_fast_noise_scale_leaves_an_ordinary_bounce_alone`, test_kernels.py)."""
    res = Engine().process(lagging_tape(seed, 12, 5.0), sample_every_seconds=60)
    sel = res.samples.ts > T0 + 2 * 3600 * S
    sd_1h = res.samples.stats[sel, STAT_NAMES.index("drift_tstat_3600s")].std()
    sd_4h = res.samples.stats[sel, STAT_NAMES.index("drift_tstat_14400s")].std()
    assert 0.6 <= sd_1h <= 1.15 and sd_4h <= 1.0, (sd_1h, sd_4h)


@pytest.mark.parametrize("cfg", [EngineConfig(instruments={"UST10Y": InstrumentConfig(invert=True)}), EngineConfig()],
                         ids=["configured", "by its name"])
def test_invert_instrument_reports_sell_for_a_rising_yield(cfg):
    up = steady_tape(1, 1, name="UST10Y", p0=4.5, sides=False)           # the yield grinds up
    eng, res = run(up, cfg)
    kinds = {(t.kind, t.side) for t in res.alerts if t.ts >= T0 + WARM_S * S}
    assert ("steady_flow", "sell") in kinds and ("steady_flow", "buy") not in kinds
    as_price = EngineConfig(instruments={"UST10Y": InstrumentConfig(invert=False)})
    plain, res_plain = run(TickBatch.from_columns(["UST10Y"] * len(up), up.ts, up.price, up.size), as_price)
    assert [t.ts for t in res_plain.transitions] == [t.ts for t in res.transitions]
    assert [t.side for t in res_plain.transitions] == [{"buy": "sell", "sell": "buy"}[t.side] for t in res.transitions]
    # exported state speaks in flow sides too: view().side, alerts_total's (kind, sell/buy) columns
    v, vp = eng.view(), plain.view()
    assert np.array_equal(v.side, -vp.side)
    assert np.array_equal(v.alerts_total, vp.alerts_total[:, :, ::-1])
    assert np.array_equal(v.stats, vp.stats)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("direction", [1, -1])
def test_a_jump_swept_through_the_book_without_a_crowd_after_it_is_no_burst(seed, direction):
    """A 0.4% jump printed as 12 fills of one order within 0.2 s, then the quiet market: the
    fills raise the 10-s activity ratio to 2.9-3.3 and, when they counted, the activity CUSUM
    to 15-22, past its level, with a one-sided 10-s flow, so a burst was called 1-4 s after
    the jump. The jump bar's own trades no longer feed the CUSUM: the surge of a burst is the
    trading that follows the jump. (20 fills in the bar still reach the ratio's 4 on the
    ordinary path.)"""
    _, res = run(sweep_tape(seed, direction))
    assert not [t for t in res.alerts if t.kind == "burst"], [t.to_dict() for t in res.alerts]
    _, news = run(burst_tape(seed, direction))
    assert [t for t in news.alerts if t.kind == "burst"]          # a cascade after the jump still is


@pytest.mark.parametrize("direction,side", [(1, "buy"), (-1, "sell")])
def test_jump_with_activity_surge_is_a_burst_from_the_jump(direction, side):
    _, res = run(burst_tape(3, direction))
    start = T0 + 3 * 3600 * S
    hits = [t for t in res.alerts if t.kind == "burst" and t.ts >= start]
    assert hits and hits[0].side == side
    assert hits[0].ts <= start + 240 * S                             # during the cascade
    assert start - S <= hits[0].onset_ts <= hits[0].ts               # onset at a jump of the cascade
    assert not [t for t in res.alerts if t.ts >= start and t.side != side]
    assert [t for t in res.transitions if t.event == "exit" and t.kind == "burst"]


def test_violent_one_sided_slide_is_deleveraging():
    _, res = run(delev_tape(3))
    start = T0 + WARM_S * S
    hits = [t for t in res.alerts if t.kind == "deleveraging"]
    assert hits and hits[0].side == "sell"
    assert start <= hits[0].ts <= start + 1800 * S
    assert start - 900 * S <= hits[0].onset_ts <= hits[0].ts


def _alerts(batch, **thresholds):
    from signals.config import Thresholds

    return run(batch, EngineConfig(thresholds=Thresholds(**thresholds)))[1].alerts


def test_busy_grind_with_normal_volatility_is_steady_flow_not_deleveraging():
    """Five times the activity, 80% sellers, normal volatility: the activity path of deleveraging
    needs the 15-min volatility ratio at delev_activity_vol_ratio too. Without that gate the
    same tape is called deleveraging."""
    b = busy_grind_tape(1)
    got = {(t.kind, t.side) for t in _alerts(b)}
    assert ("steady_flow", "sell") in got and not {k for k, _ in got} & {"deleveraging", "burst"}
    assert {t.kind for t in _alerts(b, delev_activity_vol_ratio=0.0)} == {"deleveraging"}


def test_deleveraging_after_news_waits_out_the_burst():
    """A news jump, its cascade, then an hour-long slide: a burst alert at the jump, and
    deleveraging no sooner than delev_jump_quiet_seconds after it (sooner with the rule off)."""
    b = news_then_delev_tape(1)
    jump_ts = T0 + WARM_S * S
    alerts = _alerts(b)
    assert [(t.kind, t.side) for t in alerts] == [("burst", "sell"), ("deleveraging", "sell")]
    assert alerts[0].ts <= jump_ts + 60 * S
    assert jump_ts + 180 * S <= alerts[1].ts <= jump_ts + 1800 * S
    early = [t for t in _alerts(b, delev_jump_quiet_seconds=0.0) if t.kind == "deleveraging"]
    assert early and early[0].ts < alerts[1].ts


@pytest.mark.parametrize("seed", [1, 2])
def test_a_burst_that_goes_on_for_30_minutes_becomes_deleveraging(seed):
    """The slide's aggressors lean against it, so the 15-min flow never reaches delev_flow_z; the
    burst itself (entered on same-side flow) stands in for it once it has lasted 30 min. The
    strong-drift path (delev_tstat_strong) is off here, so that only the burst path is tested."""
    no_strong = {"delev_tstat_strong": float("inf")}
    _, res = run(long_rout_tape(seed), EngineConfig(thresholds=Thresholds(**no_strong)))
    start = T0 + WARM_S * S
    kinds = [(t.event, t.kind, t.side) for t in res.transitions if t.kind != "steady_flow"]
    assert kinds[:3] == [("enter", "burst", "sell"), ("exit", "burst", "sell"), ("enter", "deleveraging", "sell")], kinds
    delev = next(t for t in res.alerts if t.kind == "deleveraging")
    assert 30 * 60 * S <= delev.ts - start <= 35 * 60 * S
    assert delev.evidence["flow_z_900s"] > -Thresholds().delev_flow_z      # not on the flow path
    off = EngineConfig(thresholds=Thresholds(delev_burst_seconds=float("inf"), **no_strong))
    _, res_off = run(long_rout_tape(seed), off)
    assert "deleveraging" not in {t.kind for t in res_off.alerts}
    assert [t.kind for t in res_off.alerts][:1] == ["burst"]



@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_tail_of_a_rout_is_not_steady_flow(seed):
    """Four quiet hours after a one-hour rout. The deleveraging exit restarts the 1-h and 4-h
    drift sums: on the exit's bar the 1-h t-statistic still reads the rout (beyond
    -steady_tstat), a minute later both slow ones read under 1, and the quiet tail is not
    called steady flow, not even with both waits (steady_after_deleveraging_seconds and
    steady_jump_quiet_seconds) off. (While the rout stayed in the sums, its tail was called
    steady flow on its side with a 30-min wait, and one entry time after the exit with none.)"""
    b = rout_then_quiet_tape(seed)
    th = Thresholds()
    no_wait = Thresholds(steady_after_deleveraging_seconds=0.0, steady_jump_quiet_seconds=0.0)
    for cfg in (EngineConfig(), EngineConfig(thresholds=no_wait)):
        res = Engine(cfg).process(b, sample_every_seconds=60)
        assert [(t.event, t.kind) for t in res.transitions] == [("enter", "deleveraging"), ("exit", "deleveraging")]
    exit_ = res.transitions[-1]
    assert exit_.evidence["drift_tstat_3600s"] <= -th.steady_tstat
    after = np.flatnonzero(res.samples.ts > exit_.ts)[0]
    for name in ("drift_tstat_3600s", "drift_tstat_14400s"):
        assert abs(res.samples.stats[after, STAT_NAMES.index(name)]) < 1.0, name


@pytest.mark.parametrize("seed", [3, 4])
def test_steady_flow_entries_on_a_generated_market_keep_their_rules(seed):
    """Eight instruments over ten days with routs, news and grinds: every steady-flow alert has
    both volatility ratios within steady_vol_ratio_max (the 1-h one lags at a rout's start) and
    comes at least steady_after_deleveraging_seconds after the instrument's last deleveraging
    exit. Both failed on these seeds before the rules (a steady alert on the bar a deleveraging
    exited; steady alerts at 15-min volatility ratios of 1.76 and 1.79)."""
    sc = generate(seed=seed, instruments=8, days=10)
    th = sc.config.thresholds
    eng = Engine(sc.config)
    transitions = []
    for lo in range(0, len(sc.ticks), 1_000_000):
        transitions += eng.process(sc.ticks.select(slice(lo, lo + 1_000_000))).transitions
    last_exit: dict[str, int] = {}
    steady = 0
    for t in transitions:
        if t.kind == "deleveraging" and t.event == "exit":
            last_exit[t.instrument] = t.ts
        if t.kind == "steady_flow" and t.event == "enter":
            steady += 1
            assert max(t.evidence["vol_ratio_900s"], t.evidence["vol_ratio_3600s"]) <= th.steady_vol_ratio_max, t
            if t.instrument in last_exit:
                assert t.ts - last_exit[t.instrument] > th.steady_after_deleveraging_seconds * S, t
    assert steady >= 10 and last_exit                      # the rules were exercised


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_rout_on_a_thin_feed_is_called_on_the_volume_clock(seed):
    """A slide with 60% sellers trading three times the usual size, on a feed with a trade every
    6 s: the 15-min flow z stays under delev_flow_z for minutes, the volume-clock flow z (one
    unit: 15 minutes of usual volume) passes delev_flow_z_volume. With that path off the same
    rout is called later (seed 2: after 53 minutes instead of 6). The violent-move and the
    strong-drift paths (delev_move_tstat, delev_tstat_strong) are off here, so that only the
    volume clock is tested."""
    start = T0 + WARM_S * S
    no_move = {"delev_move_tstat": float("inf"), "delev_tstat_strong": float("inf")}
    _, res = run(sparse_rout_tape(seed), EngineConfig(thresholds=Thresholds(**no_move)))
    delev = [t for t in res.alerts if t.kind == "deleveraging"]
    assert [(t.kind, t.side) for t in delev[:1]] == [("deleveraging", "sell")]
    assert delev[0].ts - start <= 10 * 60 * S
    assert delev[0].evidence["flow_z_900s"] > -Thresholds().delev_flow_z              # on the volume path
    assert delev[0].evidence["flow_z_volume"] <= -Thresholds().delev_flow_z_volume
    off = EngineConfig(thresholds=Thresholds(delev_flow_z_volume=float("inf"), **no_move))
    _, res_off = run(sparse_rout_tape(seed), off)
    later = [t for t in res_off.alerts if t.kind == "deleveraging"]
    assert later and later[0].ts > delev[0].ts

def test_a_rout_without_aggressor_sides_is_called_on_its_violence():
    """A one-hour slide at 3x volatility and 5x activity on a feed without aggressor sides,
    after two quiet days, over 8 seeds. The tick rule signs its flow at a 15-min z of 0.8-2.5;
    its 15-min drift against the instrument's normal volatility (three times its t-statistic)
    is far above delev_move_tstat, and with it a flow z of delev_move_flow_z suffices: every
    rout is called. With that path off, measured: three of the eight are missed and two come
    later (by 8 minutes at most). On a feed's first day, where the rout's hour has not been seen,
    the move counts at half its value and this path changes nothing (the same transitions as
    with delev_move_tstat = inf; the next test shows what the half does there). The strong-drift
    path (delev_tstat_strong) and the entry without a wait (delev_enter_flow_z) are off in every
    run, so that only the violent move is tested."""
    days = 2
    start = T0 + (days * 86400 + WARM_S) * S
    th = Thresholds()
    on = {"delev_tstat_strong": float("inf"), "delev_enter_flow_z": float("inf")}
    off = {**on, "delev_move_tstat": float("inf")}
    missed_off = on_move_path = 0
    for seed in range(1, 9):
        b = seen_hour_rout_tape(seed, days=days, sides=False)
        delev = [t for t in _alerts(b, **on) if t.kind == "deleveraging" and t.ts >= start]
        assert delev and delev[0].side == "sell" and delev[0].ts - start <= 40 * 60 * S, (seed, delev)
        ev = delev[0].evidence
        if ev["flow_z_900s"] > -th.delev_flow_z and ev["flow_z_volume"] > -th.delev_flow_z_volume:
            on_move_path += 1                        # the evidence shows the move that let it in
            assert ev["move_tstat_900s"] <= -th.delev_move_tstat
            assert min(ev["flow_z_900s"], ev["flow_z_volume"]) <= -th.delev_move_flow_z
        later = [t for t in _alerts(b, **off) if t.kind == "deleveraging" and t.ts >= start]
        missed_off += not later
        assert not later or later[0].ts >= delev[0].ts
        first_day = seen_hour_rout_tape(seed, days=0, sides=False)
        assert _alerts(first_day, **on) == _alerts(first_day, **off)
    assert missed_off >= 2 and on_move_path >= 2


def test_a_first_day_rout_is_called_on_half_its_move(monkeypatch):
    """The same tick-rule rout (3x volatility, 5x activity, a 17% slide in an hour, flow z about
    1-2) on a feed's first day, in an hour the profile has not seen: there the long-run
    volatility is that of other hours, so the move counts at half its value. Half of it still
    reaches delev_tstat_strong (6.1-6.6) while the 15-min t does (6.8-7.6), and the rout is
    called on that strong-drift path on five of the six seeds (at 17-58 minutes);
    with the move at 0 in an unseen hour, as before, none of them is (measured on the reference,
    whose weight can be changed at run time; the kernel matches it at the default)."""
    import signals.reference

    start = T0 + WARM_S * S
    called = 0
    for seed in range(1, 7):
        b = seen_hour_rout_tape(seed, days=0, sides=False)
        delev = [t for t in _alerts(b) if t.kind == "deleveraging" and t.ts >= start]
        assert not delev or delev[0].side == "sell"
        called += bool(delev)
    assert called >= 4
    monkeypatch.setattr(signals.reference, "UNSEEN_MOVE_WEIGHT", 0.0)
    for seed in range(1, 7):
        res = signals.reference.ReferenceEngine().process(seen_hour_rout_tape(seed, days=0, sides=False))
        assert not [t for t in res.alerts if t.kind == "deleveraging"], seed


def test_a_cascade_that_runs_the_price_with_balanced_trades_is_a_burst():
    """A news jump, then 4 min of 10x activity, 3x volatility and a price that keeps running the
    jump's way while the aggressor sides stay 50/50 (as a tick-rule feed or a feed that signs a
    cascade poorly can show it): with burst_drift_tstat_strong at 2 the 1-min drift alone (the
    flow not against it) calls it. Measured over these 10 seeds: 8 bursts; at the default (the
    path off) 6, only where the balanced flow happened to lean the jump's way."""
    def news_tape(seed):
        return tape(seed, [Seg(3 * 3600), Seg(240, rate=5.0, vol=3e-4, drift=8e-5, buy=0.5, jump=0.004), Seg(3600)])

    on = sum(any(t.kind == "burst" and t.side == "buy" for t in _alerts(news_tape(s), burst_drift_tstat_strong=2.0))
             for s in range(10))
    off = sum(any(t.kind == "burst" for t in _alerts(news_tape(s))) for s in range(10))
    assert on >= 8 and off <= on - 2


@pytest.mark.parametrize("seed", [4, 5])
def test_a_drift_whose_trades_lean_against_the_jump_is_not_a_burst_on_its_own(seed):
    """The same news with 70% sellers after an up-jump: the 1-min drift t passes 2 within the
    jump's minute, but the flow leans against the jump (a reversal's, not a momentum cascade's),
    so the drift alone (burst_drift_tstat_strong at 2, the joint rule out of reach) calls no
    burst; with buyers (the cascade of burst_tape) it does."""
    cfg = {"burst_flow_z": 100.0, "burst_flow_z_tick_rule": 100.0, "burst_flow_z_strong": float("inf"),
           "burst_drift_tstat_strong": 2.0}
    against = tape(seed, [Seg(3 * 3600), Seg(240, rate=5.0, vol=3e-4, drift=8e-5, buy=0.3, jump=0.004), Seg(3600)])
    _, res = run(against, EngineConfig(thresholds=Thresholds(**cfg)), sample_every_seconds=1)
    jump_minute = (res.samples.ts >= T0 + 3 * 3600 * S) & (res.samples.ts <= T0 + (3 * 3600 + 60) * S)
    assert res.samples.stats[jump_minute, STAT_NAMES.index("drift_tstat_60s")].max() >= 2.0
    assert not [t for t in res.alerts if t.kind == "burst"]
    assert "burst" in {t.kind for t in _alerts(burst_tape(4), **cfg)}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_jump_and_a_few_early_ticks_on_a_sparse_feed_are_not_a_burst(seed):
    """One tick per 20 s, then a jump and 5 same-side trades a second apart: the 10-s rate is
    twenty times the usual one, but five trades are not a cascade (burst_min_ticks). Twenty of
    them are. With the rule off, the five already read as a burst."""
    start = T0 + WARM_S * S
    assert not _alerts(sparse_news_tape(seed, 5))
    assert [t.kind for t in _alerts(sparse_news_tape(seed, 5), burst_min_ticks=0.0)] == ["burst"]
    hits = _alerts(sparse_news_tape(seed, 20))
    assert [(t.kind, t.side) for t in hits] == [("burst", "buy")]
    assert start + 10 * S <= hits[0].ts <= start + 20 * S and hits[0].onset_ts == start


def test_a_volatility_surge_without_news_is_not_a_string_of_jumps():
    """An hour of fat-tailed returns at 8x the volatility and 8x the activity, balanced and
    driftless, in an hour of the day the engine has not seen (a session open on a feed's first
    day). Its moves are measured against the last minute's volatility too, not only against the
    calmer 15 minutes before it, so few of them are jumps and hardly any starts a burst. Measured
    over these 12 seeds: 10 jumps and 1 burst (2 with burst_drift_tstat_strong at 2: a jump the
    next minute's returns happen to follow); with the jump scale of the 15-min and long-run
    variance only, 42 jumps and 7 bursts (under the burst rule of then)."""
    jumps = bursts = 0
    for seed in range(12):
        eng, res = run(surge_tape(seed))
        jumps += int(eng.view().jumps_total[0])
        bursts += sum(t.kind == "burst" for t in res.alerts)
    assert jumps <= 18 and bursts <= 2


def test_status_and_view_agree():
    eng, _ = run(interleave(steady_tape(1, name="S"), burst_tape(2, name="B")))
    v = eng.view()
    assert v.names == eng.instruments and v.stats.shape == (2, len(signals.engine.STAT_NAMES))
    for j, name in enumerate(v.names):
        st = eng.status(name)
        assert st["regime"] == signals.engine.REGIMES[v.regime[j]]
        assert list(st["stats"].values()) == v.stats[j].tolist()
    with pytest.raises(KeyError, match="nope"):
        eng.status("nope")


# ---- known kernel issues (see the report; remove the marker with the fix) ---------------

def test_late_tick_within_tolerance_counts_as_if_stamped_at_the_last_time():
    """A tick up to the tolerance older than the last one is clamped to the last time: the result
    must equal the same tape with that tick stamped at the last time. Across local midnight the
    clamped tick currently drags its bar back to the old day, and the seasonal profile decays
    three times instead of once."""
    base = T0 - T0 % (86400 * S) + 86400 * S                    # a UTC midnight
    secs = np.concatenate([np.arange(-3600, 0), [0.2, 1.1, -0.1, 2.5], np.arange(3, 3600)])
    ts = base + (secs * S).astype(np.int64)
    price = 100 * np.exp(np.cumsum(np.random.default_rng(0).standard_normal(len(ts)) * 1e-4))
    late = 3600 + 2                                             # the tick stamped 23:59:59.9
    fixed = ts.copy()
    fixed[late] = ts[late - 1]
    a, _ = run(TickBatch.from_columns(["X"] * len(ts), ts, price, np.ones(len(ts))))
    b, _ = run(TickBatch.from_columns(["X"] * len(ts), fixed, price, np.ones(len(ts))))
    assert a.snapshot(["X"]) == b.snapshot(["X"])


def test_rejected_rows_do_not_register_instruments():
    b = TickBatch.from_columns(["", "BAD", "A"], [T0, T0, T0], [1.0, -1.0, 1.0], [1.0, 1.0, 1.0])
    eng, res = run(b)
    assert res.reason.tolist() == [REASON_CODE["bad_instrument"], REASON_CODE["bad_price"], 0]
    assert eng.instruments == ("A",)


def test_a_zero_entry_tstat_is_refused_at_start():
    from signals.config import Thresholds
    from signals.errors import ConfigError

    with pytest.raises(ConfigError, match="thresholds.steady_tstat must be > 0"):
        Thresholds(steady_tstat=0.0)


def test_a_handful_of_trades_on_a_thin_feed_is_no_surge_for_deleveraging():
    """One tick in 5 of a control tape (no episodes): deleveraging's activity path reads a
    few trades within seconds as a 2.5-fold surge. With delev_min_ticks at 0, a chance drift and
    flow on the 10-year yield then make a false deleveraging alert; with the default (4 trades
    behind the 10-s ratio) it is gone, and nothing else changes."""
    sc = generate(seed=1001, instruments=8, days=10, rates=NULL_RATES).thinned(5, seed=1001)

    def routs(**th):
        cfg = dataclasses.replace(sc.config, thresholds=dataclasses.replace(sc.config.thresholds, **th))
        return {(t.instrument, t.side, t.ts) for t in run(sc.ticks, cfg)[1].alerts if t.kind == "deleveraging"}

    off, on = routs(delev_min_ticks=0.0), routs()
    assert on < off and {name for name, _, _ in off - on} == {"UST10Y"}, (off, on)
