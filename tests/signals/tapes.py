"""Synthetic one-instrument tapes for the engine tests, built with numpy from plain segments.

A Poisson tick clock, Gaussian log returns with a drift, aggressor sides drawn with a buy
probability and an optional jump: every test states the regime it plants.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from signals.config import EngineConfig
from signals.engine import Engine
from signals.ticks import TickBatch

T0 = 1_750_000_000 * 10**9      # 2025-06-15 15:06:40 UTC
S = 10**9
WARM_S = 6 * 3600               # quiet warm-up before a planted regime


class Seg(NamedTuple):
    """A stretch of tape: ``seconds`` long, ``rate`` ticks/s, ``vol`` per sqrt(s), ``drift`` per s."""

    seconds: float
    rate: float = 0.5
    vol: float = 1e-4
    drift: float = 0.0
    buy: float = 0.5          # probability that a trade's aggressor is a buyer
    jump: float = 0.0         # log jump at the segment's first tick
    even: bool = False        # exactly seconds * rate ticks, evenly spaced (else a Poisson clock)
    df: float = 0.0           # Student-t returns with this many degrees of freedom (unit variance); 0: Gaussian


def grind(seconds: float, direction: int) -> Seg:
    """A steady drift (t about 5 at 1 h) with 65% aggressors on its side."""
    return Seg(seconds, drift=direction * 6e-6, buy=0.5 + 0.15 * direction)


def news(seconds: float, direction: int) -> Seg:
    """A 0.4% news jump, then ``seconds`` of 10x activity, 3x volatility, momentum and 80% same-side flow."""
    return Seg(seconds, rate=5.0, vol=3e-4, drift=direction * 8e-5, buy=0.5 + 0.3 * direction, jump=direction * 0.004)


def slide(direction: int, buy: float) -> Seg:
    """1 h at 4x volatility and 5x activity with a 30% slide; ``buy`` is the aggressor mix."""
    return Seg(3600, rate=2.5, vol=4e-4, drift=direction * 1e-4, buy=buy)


def tape(seed: int, segments, *, name: str = "X", t0: int = T0, p0: float = 100.0, sides: bool = True,
         one_per: int = 0, half_spread: float = 0.0) -> TickBatch:
    """A one-instrument tape from segments; ``one_per`` (ns) keeps at most one tick per bar that
    wide; ``half_spread`` (relative) puts each trade at the ask (buyer) or the bid (seller)."""
    rng = np.random.default_rng(seed)
    ts, rets, sds = [], [], []
    t = 0.0
    for g in segments:
        if g.even:
            n = int(round(g.seconds * g.rate))
            tt = t + np.arange(n) / g.rate
        else:
            n = rng.poisson(g.seconds * g.rate)
            tt = t + np.sort(rng.uniform(0, g.seconds, n))
        dt = np.diff(tt, prepend=t)
        eps = rng.standard_t(g.df, n) * np.sqrt((g.df - 2) / g.df) if g.df else rng.standard_normal(n)
        r = g.drift * dt + g.vol * np.sqrt(dt) * eps
        if n:
            r[0] += g.jump
        ts.append(tt)
        rets.append(r)
        sds.append(np.where(rng.random(n) < g.buy, 1, -1))
        t += g.seconds
    stamp = t0 + (np.concatenate(ts) * S).astype(np.int64)
    price = p0 * np.exp(np.cumsum(np.concatenate(rets)))
    side = np.concatenate(sds).astype(np.int8)
    price = price * (1.0 + half_spread * side)
    size = rng.exponential(5.0, len(stamp)).round(2)
    if one_per:
        keep = np.diff(stamp // one_per, prepend=-1) != 0
        stamp, price, side, size = stamp[keep], price[keep], side[keep], size[keep]
    return TickBatch.from_columns([name] * len(stamp), stamp, price, size, side if sides else None)


def steady_tape(seed: int, direction: int = 1, **kw) -> TickBatch:
    """6 h quiet, then 6 h of a steady drift (t about 5 at 1 h) with 65% aggressors on its side, then 4 h quiet."""
    return tape(seed, [Seg(WARM_S), grind(6 * 3600, direction), Seg(4 * 3600)], **kw)


def balanced_grind_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """6 h quiet, then 6 h of a drift twice steady_tape's (t about 10 at 1 h) whose trades are
    balanced (half the aggressors buy: passive children), then 3 h quiet."""
    return tape(seed, [Seg(WARM_S), Seg(6 * 3600, drift=direction * 1.2e-5), Seg(3 * 3600)], **kw)


def daily_balanced_grind_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """balanced_grind_tape's drift worked at the same hours on two days: 6 h quiet, 4 h of it,
    20 h quiet, 4 h of it again, 2 h quiet."""
    g = Seg(4 * 3600, drift=direction * 1.2e-5)
    return tape(seed, [Seg(WARM_S), g, Seg(20 * 3600), g, Seg(2 * 3600)], **kw)


def lagging_tape(seed: int, hours: float, lag_s: float, name: str = "X", spikes=()) -> TickBatch:
    """A quiet market whose price follows its value with a lag: a trade a second (jittered)
    at the value's exponential average over ``lag_s`` seconds (quotes that catch up, a market
    that trades after another one). Its 1-s returns go on in the same direction for seconds,
    so the lag-1 HAC rate is far under the variance of 15-min sums. ``spikes``: (first hour,
    hours, factor) stretches where the value's volatility is ``factor`` times higher."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600)
    vol = np.full(n, 1e-4)
    for first, length, factor in spikes:
        vol[int(first * 3600):int((first + length) * 3600)] *= factor
    value = np.cumsum(vol * rng.standard_normal(n))
    a = np.exp(-1.0 / lag_s)
    seen = np.empty(n)
    acc = value[0]
    for k in range(n):
        acc = a * acc + (1.0 - a) * value[k]
        seen[k] = acc
    stamp = T0 + np.arange(n, dtype=np.int64) * S + rng.integers(0, S // 2, n)
    return TickBatch.from_columns([name] * n, stamp, 100.0 * np.exp(seen), np.ones(n))


def two_grinds_tape(seed: int, pause_hours: float, direction: int = 1, **kw) -> TickBatch:
    """6 h quiet, 4 h of the steady drift of steady_tape, ``pause_hours`` flat, 4 h more of it, 1 h quiet."""
    return tape(seed, [Seg(WARM_S), grind(4 * 3600, direction), Seg(pause_hours * 3600), grind(4 * 3600, direction),
                       Seg(3600)], **kw)


def rout_then_grind_tape(seed: int, pause_hours: float, **kw) -> TickBatch:
    """6 h quiet, a 1-h rout down (4x volatility, 80% sellers, a 30% slide), ``pause_hours``
    quiet, then 6 h of the steady downward drift of steady_tape and 1 h quiet."""
    return tape(seed, [Seg(WARM_S), slide(-1, 0.2), Seg(pause_hours * 3600), grind(6 * 3600, -1), Seg(3600)], **kw)


def noisy_slide_tape(seed: int, **kw) -> TickBatch:
    """A feed whose bid-ask bounce (0.05% half-spread, a trade a second) is 50 times the
    efficient variance of a 1-s return: 12 h quiet, then 3 h at three times the volatility
    with a slow slide (60% sellers), then 1 h quiet."""
    return tape(seed, [Seg(12 * 3600, rate=1.0), Seg(3 * 3600, rate=1.5, vol=3e-4, drift=-1.3e-5, buy=0.4),
                       Seg(3600, rate=1.0)], half_spread=5e-4, **kw)


def sweep_tape(seed: int, direction: int = 1, fills: int = 12, **kw) -> TickBatch:
    """6 h quiet, then a 0.4% jump printed as one order sweeping the book: ``fills`` trades on
    its side within 0.2 s, walking the price another 0.1%, and no cascade after it (30 min of
    the quiet market)."""
    sweep = Seg(0.2, rate=fills / 0.2, even=True, vol=0.0, drift=direction * 5e-3, jump=direction * 0.004,
                buy=1.0 if direction > 0 else 0.0)
    return tape(seed, [Seg(WARM_S), sweep, Seg(1800)], **kw)


def burst_tape(seed: int, direction: int = 1, **kw) -> TickBatch:
    """3 h quiet, then a 0.4% jump and 4 min of 10x activity, 3x volatility, momentum and 80% same-side flow."""
    return tape(seed, [Seg(3 * 3600), news(240, direction), Seg(3600)], **kw)


def sparse_news_tape(seed: int, cascade_ticks: int, direction: int = 1, **kw) -> TickBatch:
    """A feed with one tick per 20 s: 6 h quiet, a 0.4% jump and ``cascade_ticks`` same-side
    trades one second apart, then 1 h quiet."""
    return tape(seed, [Seg(WARM_S, rate=0.05), Seg(cascade_ticks, rate=1.0, vol=2e-4, drift=direction * 2e-4,
                                                   buy=0.5 + 0.5 * direction, jump=direction * 0.004, even=True),
                       Seg(3600, rate=0.05)], **kw)


def surge_tape(seed: int, **kw) -> TickBatch:
    """6 h quiet, then 1 h of fat-tailed returns (Student-t, 3 degrees of freedom) at 8x the
    volatility and 8x the activity, balanced flow, no drift and no news: a session opening in an
    hour of the day the engine has not seen yet (a feed's first day), then 30 min quiet."""
    return tape(seed, [Seg(WARM_S), Seg(3600, rate=4.0, vol=8e-4, df=3.0), Seg(1800)], **kw)


def delev_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """6 h quiet, then 1 h at 4x volatility, 5x activity, 80% sellers and a 30% slide, then 30 min quiet."""
    return tape(seed, [Seg(WARM_S), slide(direction, buy=0.5 + 0.3 * direction), Seg(1800)], **kw)


def seen_hour_rout_tape(seed: int, direction: int = -1, days: int = 2, **kw) -> TickBatch:
    """``days`` days and 6 h quiet (the engine has seen the rout's hour of the day before: the
    violent-move path of deleveraging waits for that), then 1 h at 3x volatility and 5x activity
    with a 17% slide, then 30 min quiet. Without aggressor sides (``sides=False``) the tick rule
    signs its flow at a 15-min z of about 1-2."""
    return tape(seed, [Seg(days * 86400 + WARM_S), Seg(3600, rate=2.5, vol=3e-4, drift=direction * 5e-5),
                       Seg(1800)], **kw)


def violent_rout_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """Two days and 6 h quiet (the hour is seen), then 1 h at 8x volatility and 5x activity with
    80% of the aggressors on its side and an 18% slide, then 30 min quiet: the 15-min drift t,
    measured against the rout's own volatility, stays under 3 for minutes after the move
    against normal volatility and the flow are plain."""
    return tape(seed, [Seg(2 * 86400 + WARM_S), Seg(3600, rate=2.5, vol=8e-4, drift=direction * 5e-5,
                                                     buy=0.5 + 0.3 * direction), Seg(1800)], **kw)


def noisy_quiet_rout_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """Two days and 6 h quiet (the hour is seen), then 30 min at 3x volatility and 1.4 times the
    activity with 80% of the aggressors on its side and a 12% slide, then 30 min quiet; every
    trade at the bid or the ask, 0.05% from the mid. The bid-ask bounce dominates 1-s returns,
    so the 15-min volatility ratio reads little above 1, and the activity ratio under
    delev_activity_ratio: the rout is violent only against the instrument's normal volatility."""
    kw.setdefault("half_spread", 5e-4)
    return tape(seed, [Seg(2 * 86400 + WARM_S), Seg(1800, rate=0.7, vol=3e-4, drift=direction * 7e-5,
                                                     buy=0.5 + 0.3 * direction), Seg(1800)], **kw)


def flow_led_rout_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """Two days and 6 h quiet (the hour is seen), then 1 h at 4x volatility and 5x activity with
    80% of the aggressors on its side and an 11% slide, then 30 min quiet: the one-sided flow is
    plain within minutes, while the drift is still under 3 against the rout's own volatility
    and under 8 against the normal one."""
    return tape(seed, [Seg(2 * 86400 + WARM_S), Seg(3600, rate=2.5, vol=4e-4, drift=direction * 3e-5,
                                                     buy=0.5 + 0.3 * direction), Seg(1800)], **kw)


def busy_grind_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """6 h quiet, then 1 h at 5x activity and 80% sellers with normal volatility: a one-sided
    grind of 5% (its 15-min move stays under delev_violent_move), then 30 min quiet. Busy,
    one-sided and persistent, but not violent."""
    return tape(seed, [Seg(WARM_S), Seg(3600, rate=2.5, vol=1e-4, drift=direction * 1.5e-5, buy=0.5 + 0.3 * direction),
                       Seg(1800)], **kw)


def news_then_delev_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """6 h quiet, a 0.4% news jump with 2 min of cascade, then the deleveraging of delev_tape."""
    return tape(seed, [Seg(WARM_S), news(120, direction), slide(direction, buy=0.5 + 0.3 * direction), Seg(1800)], **kw)


def long_rout_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """6 h quiet, a 0.4% news jump with 2 min of same-side cascade, then 1 h of the violent slide
    of delev_tape whose aggressors lean the other way (65% against it: buyers catching the
    falling knife), then 30 min quiet. The 15-min flow never looks like a rout's."""
    return tape(seed, [Seg(WARM_S), news(120, direction), slide(direction, buy=0.5 - 0.15 * direction), Seg(1800)], **kw)


def rout_then_quiet_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """6 h quiet, then 1 h at 2.5x volatility, 5x activity, 70% sellers and a 14% slide, then 4 h
    of a quiet random walk: nothing after the rout is a grind."""
    return tape(seed, [Seg(WARM_S), Seg(3600, rate=2.5, vol=2.5e-4, drift=direction * 4e-5, buy=0.5 + 0.2 * direction),
                       Seg(4 * 3600)], **kw)


def rout_then_a_day_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """rout_then_quiet_tape's rout, then a day and two hours of a quiet random walk: the next
    day's hour of the rout is quiet."""
    return tape(seed, [Seg(WARM_S), Seg(3600, rate=2.5, vol=2.5e-4, drift=direction * 4e-5, buy=0.5 + 0.2 * direction),
                       Seg(26 * 3600)], **kw)


def sparse_rout_tape(seed: int, direction: int = -1, **kw) -> TickBatch:
    """A thin feed (one trade every 6 s), then the violent slide of delev_tape at a third of its
    rate, with 60% of the aggressors on its side and trades three times the usual size, then
    30 min quiet. Its one-sided volume shows within minutes on the volume clock; the 15-min flow
    z, diluted by the quiet minutes before and built on few trades, lags far behind."""
    b = tape(seed, [Seg(WARM_S, rate=0.5 / 3), Seg(3600, rate=2.5 / 3, vol=4e-4, drift=direction * 1e-4,
                                                   buy=0.5 + 0.1 * direction), Seg(1800, rate=0.5 / 3)], **kw)
    rout = (b.ts >= T0 + WARM_S * S) & (b.ts < T0 + (WARM_S + 3600) * S)
    return TickBatch.from_columns([kw.get("name", "X")] * len(b), b.ts, b.price,
                                  np.where(rout, 3 * b.size, b.size), b.side if kw.get("sides", True) else None)


def zigzag_news_tape(seed: int, jump: float, direction: int = 1, sides: bool = False, **kw) -> TickBatch:
    """6 h quiet, a news jump of ``jump`` (log), then 90 s at 5 trades a second whose price runs
    the jump's way in a zigzag (two up, one down, in steps of 2e-4), then 30 min quiet. The
    tick rule signs the zigzag's trades alternately: a cascade whose price runs while its
    tick-rule flow is balanced. With ``sides`` the feed gives the same signs as aggressor sides."""
    w = tape(seed, [Seg(WARM_S)], sides=sides, **kw)
    start = T0 + WARM_S * S
    n = 90 * 5
    ts = start + (np.arange(n + 1) * S // 5).astype(np.int64)
    steps = np.where(np.arange(n) % 2 == 0, 2e-4, -1e-4) * direction
    price = float(w.price[-1]) * np.exp(direction * jump + np.concatenate([[0.0], np.cumsum(steps)]))
    sign = np.concatenate([[direction], np.sign(steps)]).astype(np.int8)
    run_ = TickBatch.from_columns([kw.get("name", "X")] * len(ts), ts, price, np.full(len(ts), 5.0),
                                  sign if sides else None)
    tail = tape(seed + 1, [Seg(1800)], sides=sides, t0=int(ts[-1]) + S, p0=float(price[-1]), **kw)
    return TickBatch.concat([w, run_, tail])


def given_back_news_tape(seed: int, back: float, direction: int = 1, **kw) -> TickBatch:
    """6 h quiet, a 0.4% news jump, then 2 min of ten times the trades with 80% of the aggressors
    on its side, whose first trade takes back ``back`` of the jump (on a coarse grid a one-tick
    move of the mid and a trade at the other side read as a jump and go back within a second),
    then 30 min quiet."""
    j = direction * 0.004
    side = 0.5 + 0.3 * direction
    return tape(seed, [Seg(WARM_S), Seg(1.0, rate=5.0, buy=side, jump=j, even=True),
                       Seg(120, rate=5.0, vol=1e-6, buy=side, jump=-back * j), Seg(1800)], **kw)


def noisy_news_tape(seed: int, direction: int = 1, days: int = 0, **kw) -> TickBatch:
    """A feed whose bid-ask bounce (0.2% half-spread, a trade a second) dominates 1-s returns:
    ``days`` days and 6 h quiet, a 1% news jump, then 2 min of five times the trades at three
    times the volatility with 80% of the aggressors on its side, then 30 min quiet. The bounce
    is in the jump test's local scale too: the jump's Lee-Mykland statistic reads 4.7-6.9."""
    return tape(seed, [Seg(days * 86400 + WARM_S, rate=1.0), Seg(120, rate=5.0, vol=3e-4, drift=direction * 4e-5,
                                                   buy=0.5 + 0.3 * direction, jump=direction * 0.01),
                       Seg(1800, rate=1.0)], half_spread=2e-3, **kw)


def interleave(*batches: TickBatch) -> TickBatch:
    """Merge tapes of different instruments in time order (stable: equal times keep tape order)."""
    b = TickBatch.concat(list(batches))
    return b.select(np.argsort(b.ts, kind="stable"))


def run(batch: TickBatch, config: EngineConfig | None = None, **kw):
    eng = Engine(config)
    return eng, eng.process(batch, **kw)
