"""Engine throughput: numba engine vs the pure-Python reference vs a river pipeline, same run.

Usage: python benchmarks/bench_engine.py [--ticks N] [--instruments M]

Two feeds are measured for the engine: a dense one (about 20 ticks per 1-s bar per instrument,
a liquid market) and the worst case (every tick closes a bar, so every estimator and the regime
machine run on every tick). Baselines run on a slice and are reported as ticks/s.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

from signals.engine import Engine
from signals.ticks import TickBatch


def feed(n: int, instruments: int, ticks_per_bar: float, seed: int = 0) -> TickBatch:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, instruments, n)
    span_s = n / instruments / ticks_per_bar
    ts = 1_750_000_000 * 10**9 + np.sort(rng.integers(0, int(span_s * 1e9), n))
    steps = rng.standard_t(4, n) * 2e-5
    price = 100.0 * np.exp(np.cumsum(steps))
    side = rng.choice(np.array([-1, 0, 1], np.int8), n)
    names = np.array([f"I{i:05d}" for i in range(instruments)])
    return TickBatch.from_columns(names[ids], ts, price, rng.integers(1, 100, n).astype(float), side)


def rate(fn, n: int, repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def engine_rate(batch: TickBatch, chunk: int = 1_000_000) -> float:
    def go():
        eng = Engine()
        for s in range(0, len(batch), chunk):
            eng.process(batch.select(slice(s, s + chunk)))
    return rate(go, len(batch))


def river_rate(batch: TickBatch) -> float:
    """What a Python user would write with river: per instrument, EW mean/var of returns and
    EW mean of signed volume at the same four horizons, updated tick by tick."""
    from river import stats

    names = batch.instrument_names()
    ts, price, size, side = batch.ts.tolist(), batch.price.tolist(), batch.size.tolist(), batch.side.tolist()

    def go():
        state: dict = {}
        for j in range(len(ts)):
            st = state.get(names[j])
            if st is None:
                st = state[names[j]] = ([stats.EWMean(fading_factor=a) for a in (0.05, 0.01, 0.002, 0.0005)],
                                        [stats.EWVar(fading_factor=a) for a in (0.05, 0.01, 0.002, 0.0005)],
                                        [stats.EWMean(fading_factor=a) for a in (0.05, 0.01, 0.002, 0.0005)],
                                        [price[j]])
            r = math.log(price[j] / st[3][0])
            st[3][0] = price[j]
            q = side[j] * size[j]
            for k in range(4):
                st[0][k].update(r)
                st[1][k].update(r)
                st[2][k].update(q)
    return rate(go, len(ts), repeat=1)


def reference_rate(batch: TickBatch) -> float:
    from signals.reference import ReferenceEngine

    return rate(lambda: ReferenceEngine().process(batch), len(batch), repeat=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ticks", type=int, default=10_000_000)
    ap.add_argument("--instruments", type=int, default=1000)
    ap.add_argument("--baseline-ticks", type=int, default=200_000)
    a = ap.parse_args()
    Engine().process(feed(1000, 10, 20))           # compile (cached on disk after the first run)
    dense = feed(a.ticks, a.instruments, 20.0)
    sparse = feed(a.ticks // 5, a.instruments, 0.2, seed=1)
    small = dense.select(slice(0, a.baseline_ticks))
    rows = [
        ("engine (numba), dense feed, ~20 ticks/bar", engine_rate(dense)),
        ("engine (numba), worst case, 1 tick/bar", engine_rate(sparse)),
        ("engine (numba), dense feed, baseline slice", engine_rate(small, chunk=len(small))),
        ("pure-Python reference, baseline slice", reference_rate(small)),
        ("river pipeline (12 EW stats/tick), baseline slice", river_rate(small)),
    ]
    ref = rows[3][1]
    print(f"{'what':52s} {'ticks/s':>14s} {'x reference':>12s}")
    for name, r in rows:
        print(f"{name:52s} {r:14,.0f} {r / ref:12.1f}")


if __name__ == "__main__":
    main()
