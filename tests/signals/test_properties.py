"""Properties of the engine that hold for every tape (hypothesis).

* Mirroring prices (p -> c / p) turns every buy into a sell: same kinds and times, flipped sides,
  mirrored statistics. Tapes have one tick per bar here (0.1-s bars): a bar's mean of c / p is
  not c over its mean of p (Jensen), so pre-averaged returns of multi-tick bars are not exactly
  mirrored.
* Scaling prices by a power of two changes nothing, bit for bit, except the prices themselves.
* Scaling by any positive factor keeps the transitions.
* No NaN or infinity ever reaches the state, whatever valid ticks come in.
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals import kernels as K
from signals.config import EngineConfig
from signals.engine import STAT_NAMES, Engine
from signals.ticks import TickBatch
from tests.signals.tapes import S, T0, burst_tape, delev_tape, steady_tape

REGIME = settings(max_examples=12, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])

# statistics that change sign with the price direction; the rest are direction-free
ODD = {n for n in STAT_NAMES if n.startswith(("drift_tstat", "flow_z", "jump_z", "fingerprint", "absorption"))}
EVEN = [n for n in STAT_NAMES if n not in ODD and n != "last_price"]
PRICE_F = [K.F_B_SUMP, K.F_PREV_MEAN, K.F_PREV_CLOSE, K.F_LAST_PX, K.F_JUMP_MID, K.F_STATS + STAT_NAMES.index("last_price")]


@st.composite
def regime_tapes(draw) -> TickBatch:
    """A tape with a planted regime (steady flow, burst or deleveraging) on either side."""
    make = draw(st.sampled_from([steady_tape, burst_tape, delev_tape]))
    direction = draw(st.sampled_from([1, -1]))
    sides = draw(st.booleans())
    return make(draw(st.integers(0, 2**16)), direction, sides=sides, one_per=BAR_NS)


def _with(batch: TickBatch, price=None, side=None) -> TickBatch:
    return TickBatch(batch.instruments, batch.code, batch.ts, batch.price if price is None else price,
                     batch.size, batch.side if side is None else side)


BAR_NS = S // 10
FINE = EngineConfig(bar_seconds=BAR_NS / S)


def _run(batch: TickBatch):
    eng = Engine(FINE)
    return eng, eng.process(batch)


@REGIME
@given(regime_tapes())
def test_mirrored_prices_flip_every_side(batch):
    eng, res = _run(batch)
    c = float(batch.price[0]) ** 2
    meng, mres = _run(_with(batch, price=c / batch.price, side=-batch.side))
    assert res.transitions, "the planted regime must show"
    flip = {"buy": "sell", "sell": "buy"}
    assert [(t.event, t.kind, flip[t.side], t.ts, t.onset_ts) for t in res.transitions] == \
           [(t.event, t.kind, t.side, t.ts, t.onset_ts) for t in mres.transitions]
    a, b = eng.status("X")["stats"], meng.status("X")["stats"]
    for name in ODD:
        assert abs(b[name] + a[name]) <= 1e-6 * (1 + abs(a[name])), name
    for name in EVEN:
        assert abs(b[name] - a[name]) <= 1e-6 * (1 + abs(a[name])), name


@REGIME
@given(regime_tapes(), st.integers(-30, 30))
def test_scaling_prices_by_a_power_of_two_changes_nothing(batch, k):
    eng, res = _run(batch)
    f = 2.0 ** k
    seng, sres = _run(_with(batch, price=batch.price * f))
    def unpriced(transitions):
        return [{**t.to_dict(), "evidence": {**t.evidence, "last_price": None}} for t in transitions]

    assert unpriced(sres.transitions) == unpriced(res.transitions)
    F, I = eng.state_rows("X")
    sF, sI = seng.state_rows("X")
    assert np.array_equal(sI, I)
    other = np.setdiff1d(np.arange(K.NF), PRICE_F)
    assert np.array_equal(sF[other], F[other])
    assert np.array_equal(sF[PRICE_F], F[PRICE_F] * f)


@REGIME
@given(regime_tapes(), st.floats(1e-6, 1e6))
def test_scaling_prices_by_any_positive_factor_keeps_the_transitions(batch, f):
    _, res = _run(batch)
    _, sres = _run(_with(batch, price=batch.price * f))
    assert [(t.id, t.event, t.kind, t.side, t.ts, t.onset_ts) for t in sres.transitions] == \
           [(t.id, t.event, t.kind, t.side, t.ts, t.onset_ts) for t in res.transitions]


_gap = st.one_of(st.just(0), st.integers(1, 10**9), st.integers(10**9, 10 * S), st.integers(10 * S, 2000 * S),
                 st.sampled_from([S, S - 1, 900 * S, 901 * S, 86400 * S]))
_tick = st.tuples(st.integers(0, 2), _gap, st.floats(1e-8, 1e8), st.one_of(st.just(0.0), st.floats(0, 1e6)),
                  st.sampled_from([-1, 0, 1]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_tick, min_size=1, max_size=400), st.integers(0, 3 * S))
def test_no_nan_or_infinity_ever_reaches_the_state(ticks, late):
    """Extreme price levels (1e-8..1e8, in any order), zero sizes, identical and late timestamps."""
    which, gaps, price, size, side = zip(*ticks)
    ts = T0 + np.cumsum(np.array(gaps, np.int64))
    ts[1::5] -= late                                       # some ticks late, within or beyond tolerance
    names = np.array(["A", "B", "C"])[list(which)]
    eng = Engine()                                         # default 1-s bars
    res = eng.process(TickBatch.from_columns(names, ts, price, size, np.array(side, np.int8)))
    for name in eng.instruments:
        F, _ = eng.state_rows(name)
        assert np.isfinite(F).all(), name
    assert all(np.isfinite(list(t.evidence.values())).all() and np.isfinite(t.score) for t in res.transitions)
