"""The pure-Python reference engine: the estimators of :mod:`signals.estimators`, composed per instrument.

:class:`ReferenceEngine` behaves like :class:`signals.engine.Engine` for the purposes of the
tests (same transitions with the same fields, same statistics and regime state per instrument)
but is written for reading, not speed: one object per statistical idea, plain floats, no numba
and no numpy in the per-tick path. ``tests/signals/test_kernels.py`` holds the kernel to it.

Examples
--------
>>> import numpy as np
>>> from signals.ticks import TickBatch
>>> ref = ReferenceEngine()
>>> ts = np.arange(5) * 10**9 + 1_700_000_000 * 10**9
>>> res = ref.process(TickBatch.from_columns(["X"] * 5, ts, [100.0, 100.1, 100.0, 99.9, 100.0], [1.0] * 5))
>>> res.transitions, ref.status("X")["regime"], ref.status("X")["stats"]["last_price"]
([], 'quiet', 99.9)
"""
from __future__ import annotations

import math

from .calendar import in_session, local_clock
from .config import EngineConfig
from .engine import STAT_NAMES, BatchResult, Transition, alert_id, iso, side_name
from .estimators import (
    HORIZONS, ActivityCusum, ActivityRatio, Baseline, Context, Cusum, DriftTStat, FlowImbalance, JumpShare, JumpTest,
    LagOneHAC, NoiseScale, PreAveragedBars, RegimeMachine, SameHoursFingerprint, SeasonalProfile, TickRule,
    VolatilityRatio, VolumeClockImbalance, absorption_z, truncate,
)
from .kernels import lee_mykland_threshold
from .ticks import REASON_CODE, TickBatch, validate

SEASONAL_KAPPA_S = 1800.0   # pseudo-seconds shrinking a time-of-day bucket toward the all-day mean
BASELINE_CLIP = 25.0        # a bar adds at most this many times the baseline variance to it
VOLUME_CLOCK_S = 900.0      # the volume clock ticks once per this many seconds' normal volume
TRUNCATE_SD = 4.0           # returns are clipped at this many local standard deviations for the drift
SEASONAL_SURGE_CAP = 2.0    # a surge feeds the seasonal profile at most this multiple of the usual level
NOISE_BLOCK_NS = 900 * 10**9  # blocks of the noise scale
NOISE_MARGIN = 1.5          # the noise scale corrects only a clear excess of the HAC rate
NOISE_CLIP = 4.0            # a block pair counts at most this many long-run block variances
NOISE_WARM_S = 43200.0      # baseline seconds before the noise scale is believed
OWN_MARGIN = 1.35           # the own ratio corrects the slowest t-statistics downwards below 1 / this (a coarse grid)
FAST_NOISE_BLOCK_NS = 60 * 10**9  # until then, a noise scale on 1-min blocks ...
FAST_NOISE_WARM_S = 3600.0        # ... believed after an hour, corrects the slow t-statistics upwards
MOVE_SEEN_S = 3600.0        # seconds the profile must hold at this hour before a "violent move" counts in full
UNSEEN_MOVE_WEIGHT = 0.5    # ... before, it counts at this weight (a busy open's variance is several times the all-day one)
BURST_SEEN_S = 1800.0       # a burst in an hour with less trading than this in the profile needs burst_unseen_jump_z
CUSUM_CAP_SLOW_S = 4 * 3600.0  # a CUSUM holds at most this many seconds of its reference drift (slow)
CUSUM_CAP_FAST_S = 3600.0      # ... (fast)


class Instrument:
    """All estimators of one instrument, updated tick by tick in the kernel's order."""

    def __init__(self, config: EngineConfig):
        th = config.thresholds
        memory = config.baseline_seconds
        self.tolerance_ns = int(round(config.out_of_order_tolerance_seconds * 1e9))
        self.ticks = 0
        self.last_ts = 0
        self.warm = 0.0            # trading seconds seen (bars after the first)
        self.tick_rule = TickRule()
        self.bars = PreAveragedBars(config.bar_seconds, config.max_gap_seconds)
        self.seasonal = SeasonalProfile(SEASONAL_KAPPA_S, config.seasonal_day_decay, SEASONAL_SURGE_CAP)
        self.hac = LagOneHAC()
        self.baseline = Baseline(memory, BASELINE_CLIP)
        self.noise = NoiseScale(memory, NOISE_BLOCK_NS, NOISE_MARGIN, NOISE_WARM_S, clip=NOISE_CLIP, own=True,
                                own_margin=OWN_MARGIN)
        self.fast_noise = NoiseScale(memory, FAST_NOISE_BLOCK_NS, 1.0, FAST_NOISE_WARM_S, clip=NOISE_CLIP)
        self.jumps = JumpTest(lee_mykland_threshold(th.jump_alpha, th.jump_n),
                              lee_mykland_threshold(th.jump_alpha, th.burst_jump_n), th.warmup_seconds,
                              th.burst_jump_window_seconds, th.jump_minute_sd, th.burst_jump_hold)
        self.jump_share = JumpShare()
        # the 1-min drift is not believed below the long-run volatility, slower ones below half of it
        self.drift = [DriftTStat(h, 1.0 if h == 60.0 else 0.25) for h in HORIZONS]
        self.vol_ratio = [VolatilityRatio(h) for h in HORIZONS[:3]]
        self.flow = [FlowImbalance(h, memory) for h in HORIZONS]
        self.volume_clock = VolumeClockImbalance(VOLUME_CLOCK_S, memory)
        self.activity = ActivityRatio()
        self.activity_cusum = ActivityCusum(th.burst_activity_cusum_ratio, 2.0 * th.burst_activity_cusum)
        self.flow10 = FlowImbalance(10.0, memory)       # the burst rule's cascade flow
        self.fingerprint = SameHoursFingerprint(config.seasonal_day_decay)
        # CUSUM drifts: half the drift rate (sigma units per second) that the entry t-statistic
        # implies at its horizon, t = mu / sigma * sqrt(2 h)
        slow = th.steady_tstat / math.sqrt(2 * 3600.0) / 2
        fast = th.delev_tstat / math.sqrt(2 * 900.0) / 2
        self.cusums = [Cusum(slow, 1.0, CUSUM_CAP_SLOW_S), Cusum(slow, -1.0, CUSUM_CAP_SLOW_S),
                       Cusum(fast, 1.0, CUSUM_CAP_FAST_S), Cusum(fast, -1.0, CUSUM_CAP_FAST_S)]
        self.regime = RegimeMachine(th)
        self.stats = dict.fromkeys(STAT_NAMES, 0.0)
        self.move = 0.0            # 15-min drift against the long-run volatility (evidence, not state)

    def update(self, ts: int, price: float, size: float, side: int, bucket: int, day: int):
        """One tick; returns the regime events it triggered, or ``None`` if it is out of order."""
        if self.ticks > 0:
            if ts < self.last_ts - self.tolerance_ns:
                return None
            if ts < self.last_ts:             # a little late: counted at the last time seen, in its bar
                ts, bucket, day = self.last_ts, self.bars.bucket, self.bars.day
        s = self.tick_rule.update(price, side).get()
        open_bucket, open_day = self.bars.bucket, self.bars.day
        bar = self.bars.update(ts, price, s * size, size, bucket, day).get()
        events = self._close(bar, ts) if bar is not None else []
        if bar is not None and (bucket != open_bucket or day != open_day):
            self.fingerprint.end_visit()          # the next bar is in another bucket or day
        self.last_ts = ts
        self.ticks += 1
        return events

    def _close(self, bar, ts: int) -> list:
        stats = self.stats
        stats["last_price"] = bar.close
        if bar.first:
            return []
        if bar.new_day:
            self.seasonal.new_day()
            self.fingerprint.new_day()
        dt = bar.dt
        f, usual_rate = self.seasonal.get(bar.bucket)
        usual_volume = self.seasonal.volume_factor(bar.bucket)
        sf = math.sqrt(f)
        r = bar.r / sf                          # deseasonalised pre-averaged return
        y = r * r                               # volatility level (noise included)
        # jump-robust return for the drift, the long-run variance, the CUSUMs and the fingerprint
        r = truncate(r, TRUNCATE_SD, max(self.jumps.local_variance(), self.baseline.get()), dt)
        x = self.hac.update(r * sf, f).get()    # long-run (noise-free) variance contribution
        rc = bar.rc / sf
        vb = self.baseline.update(y, x, dt).get()
        vh = self.baseline.long_run()
        self.warm += dt
        seconds = self.baseline.seconds
        nscale = self.noise.update(r, dt, bar.start, bar.prev_start, vh, seconds, x, vb).get(vh, seconds)
        self.fast_noise.update(r, dt, bar.start, bar.prev_start, vh, seconds)
        # the 1-h and 4-h t-statistics: before the 15-min blocks are believed, the 1-min ones
        # correct an excess (a price that lags its value), and nothing else
        nslow = self.noise.get_slow(vh, seconds) if seconds >= NOISE_WARM_S else self.fast_noise.excess(vh, seconds)
        # the efficient price's scale for a burst's jump: long-run, local 15-min or the last
        # minute's, the largest
        efficient = max(vh, self.drift[1].local_variance()) if self.drift[1].var_seconds > 0.0 else vh
        if self.drift[0].var_seconds > 0.0:
            efficient = max(efficient, self.drift[0].local_variance())
        stats["jump_z"] = self.jumps.update(rc, dt, bar.brk, self.warm, bar.start, efficient,
                                            bar.mean * math.exp(-bar.r), bar.rc).get()
        stats["jump_share"] = self.jump_share.update(rc, dt).get()
        for k, h in enumerate(HORIZONS):
            stats[f"drift_tstat_{h:.0f}s"] = self.drift[k].update(r, x, dt, vh, (1.0, nscale, nslow, nslow)[k]).get()
            if k < 3:
                stats[f"vol_ratio_{h:.0f}s"] = self.vol_ratio[k].update(y, dt, vb).get()
            stats[f"flow_z_{h:.0f}s"] = self.flow[k].update(bar.signed_volume, bar.volume, dt).get()
        stats["flow_z_volume"] = self.volume_clock.update(bar.signed_volume, bar.volume, dt, usual_volume).get()
        stats["activity_ratio"] = self.activity.update(bar.ticks, dt, usual_rate).get()
        # a bar that holds a burst-level jump adds no trades: a jump printed as one order sweeping
        # the book is many fills, and the surge of a burst is the crowd that follows the jump
        self.activity_cusum.update(0.0 if self.jumps.last_ts == bar.start else bar.ticks, dt, usual_rate)
        self.flow10.update(bar.signed_volume, bar.volume, dt)
        vr = stats["vol_ratio_900s"]
        self.seasonal.update(bar.bucket, self.baseline.clipped * f, bar.ticks, bar.volume, dt,
                             vr * vr, self.activity.slow_ratio(usual_rate))
        u = r / math.sqrt(vh) if vh > 0.0 else 0.0
        event = self.regime.regime in ("burst", "deleveraging")
        stats["fingerprint_tstat"] = self.fingerprint.update(bar.bucket, u, dt, event).get(bar.bucket)
        for c in self.cusums:
            c.update(u, dt, bar.start)
        stats["absorption_z"] = absorption_z(stats["drift_tstat_3600s"], stats["flow_z_3600s"])
        seen = self.seasonal.seconds[bar.bucket] >= MOVE_SEEN_S
        self.move = self.drift[1].normal_tstat(vh, nscale) * (1.0 if seen else UNSEEN_MOVE_WEIGHT)
        local = max(0.0, *(self.drift[k].local_variance() for k in (1, 2)))
        local60 = max(0.0, self.drift[0].local_variance())
        ctx = Context(bar.start, self.warm, tuple(c.get() for c in self.cusums), tuple(c.tau for c in self.cusums),
                      self.jumps.last_ts, self.jumps.last_sign, self.jumps.last_big_ts, self.flow10.get(),
                      self.activity.ticks, self.move, self.tick_rule.has_sides(self.ticks + 1),
                      math.sqrt(local / vh) if vh > 0.0 else 0.0, self.activity_cusum.get(), self.jumps.last_abs,
                      self.jumps.last_mid, bar.mean,
                      math.sqrt(local60 / vh) if vh > 0.0 else 0.0,
                      self.seasonal.seconds[bar.bucket] >= BURST_SEEN_S)
        events = self.regime.update(ts, stats, ctx).get()
        if any(e.event == "exit" and e.kind == "deleveraging" for e in events):
            for k in (2, 3):                # the rout's move does not stay in the slow windows
                self.drift[k].restart()
        return events

    def snapshot(self) -> dict:
        """The instrument's whole state as a plain (JSON-ready) dict."""
        out = {"ticks": self.ticks, "last_ts": self.last_ts, "warm": self.warm, "stats": dict(self.stats)}
        for name, est in self._estimators():
            out[name] = est.snapshot()
        return out

    def restore(self, state: dict) -> None:
        self.ticks, self.last_ts, self.warm = state["ticks"], state["last_ts"], state["warm"]
        self.stats = dict(state["stats"])
        for name, est in self._estimators():
            est.restore(state[name])

    def _estimators(self):
        yield from (("tick_rule", self.tick_rule), ("bars", self.bars), ("seasonal", self.seasonal),
                    ("hac", self.hac), ("baseline", self.baseline), ("noise", self.noise), ("fast_noise", self.fast_noise),
                    ("jumps", self.jumps),
                    ("jump_share", self.jump_share), ("volume_clock", self.volume_clock),
                    ("activity", self.activity), ("activity_cusum", self.activity_cusum), ("flow10", self.flow10),
                    ("fingerprint", self.fingerprint), ("regime", self.regime))
        for k in range(len(HORIZONS)):
            yield f"drift{k}", self.drift[k]
            yield f"flow{k}", self.flow[k]
        for k, v in enumerate(self.vol_ratio):
            yield f"vol_ratio{k}", v
        for k, c in enumerate(self.cusums):
            yield f"cusum{k}", c


class ReferenceEngine:
    """Slow, obviously-correct twin of :class:`signals.engine.Engine` (``process`` and ``status``).

    Parameters
    ----------
    config : EngineConfig, optional
    """

    def __init__(self, config: EngineConfig | None = None):
        self.config = config or EngineConfig()
        self.instruments: dict[str, Instrument] = {}

    def process(self, batch: TickBatch) -> BatchResult:
        """Advance over ``batch``; transitions and reject reasons as :meth:`Engine.process` gives them."""
        _, reason = validate(batch)
        names = batch.instrument_names().tolist()
        accepted = [j for j in range(len(batch)) if reason[j] == 0]
        # local clock of every accepted row (vectorised per calendar, before the per-tick loop)
        bucket, day, ok = {}, {}, {}
        by_calendar: dict = {}
        for j in accepted:
            by_calendar.setdefault(self.config.for_instrument(names[j]).calendar, []).append(j)
        for cal, rows in by_calendar.items():
            minute, d, wd = local_clock(batch.ts[rows], cal.tz)
            inside = in_session(cal, minute, wd)
            for n, j in enumerate(rows):
                bucket[j], day[j], ok[j] = int(minute[n]) // 60, int(d[n]), bool(inside[n])
        ts, price, size, side = batch.ts.tolist(), batch.price.tolist(), batch.size.tolist(), batch.side.tolist()
        transitions = []
        for j in accepted:
            if not ok[j]:
                reason[j] = REASON_CODE["outside_session"]
                continue
            name = names[j]
            inst = self.instruments.get(name)
            if inst is None:
                inst = self.instruments[name] = Instrument(self.config)
            events = inst.update(ts[j], price[j], size[j], side[j], bucket[j], day[j])
            if events is None:
                reason[j] = REASON_CODE["out_of_order"]
                continue
            for ev in events:
                transitions.append(self._transition(name, inst, ev))
        return BatchResult(transitions, reason)

    def _transition(self, name: str, inst: Instrument, ev) -> Transition:
        side = side_name(ev.direction, self.config.for_instrument(name).invert)
        return Transition(
            id=alert_id(name, ev.kind, side, ev.alert_ts), event=ev.event, instrument=name, kind=ev.kind,
            side=side, ts=ev.ts, onset_ts=ev.onset_ts,
            score=round(ev.score, 4), evidence={k: float(f"{v:.6g}") for k, v in
                                                 [*inst.stats.items(), ("move_tstat_900s", inst.move),
                                                  ("activity_cusum", inst.activity_cusum.get())]})

    def status(self, instrument: str) -> dict:
        """One instrument's regime and statistics, in the shape of :meth:`Engine.status`."""
        if instrument not in self.instruments:
            raise KeyError(f"unknown instrument {instrument!r}")
        inst = self.instruments[instrument]
        rm = inst.regime
        out = {"instrument": instrument, "regime": rm.regime, "side": None, "since": None, "score": None,
               "last_time": iso(inst.last_ts) if inst.ticks else None, "ticks": inst.ticks,
               "stats": dict(inst.stats)}
        if rm.regime != "quiet":
            out.update(side=side_name(rm.direction, self.config.for_instrument(instrument).invert),
                       since=iso(rm.onset_ts), score=round(rm.score, 4))
        return out
