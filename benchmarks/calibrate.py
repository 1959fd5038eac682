"""Threshold calibration: false alerts per instrument-day on control tapes vs. recall and delay.

Usage: python benchmarks/calibrate.py [--kind steady_flow|burst|deleveraging] [--set key=v1,v2,...]...

Generates the control-only set and the labelled set once, then replays both under each
combination of threshold values and prints one row per combination: false alerts per
instrument-day (controls), recall, precision and median delay (labelled set) for the kind.
The defaults in signals/config.py are the lightest thresholds whose control false-alarm rate is
within the target (steady flow 0.05, burst and deleveraging 0.02 per instrument-day); see
docs/calibration.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signals.config import EngineConfig  # noqa: E402
from signals.evaluation import Alert, score  # noqa: E402
from signals.scenarios import NULL_RATES, generate  # noqa: E402


def replay(sc, config: EngineConfig) -> list[Alert]:
    from signals.engine import Engine

    eng = Engine(config)
    out = []
    for lo in range(0, len(sc.ticks), 500_000):
        out += [Alert(a.instrument, a.kind, a.side, a.ts) for a in eng.process(sc.ticks.select(slice(lo, lo + 500_000))).alerts]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kind", default="steady_flow", choices=["steady_flow", "burst", "deleveraging"])
    p.add_argument("--set", action="append", default=[], metavar="KEY=V1,V2", help="threshold values to sweep")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--days", type=int, default=10)
    p.add_argument("--instruments", type=int, default=8)
    p.add_argument("--first-seed", type=int, default=1,
                   help="first labelled seed (default 1); e.g. 21 keeps the sweep off evaluate.py's seeds 1-4")
    p.add_argument("--thin", type=float, default=1.0, metavar="K", help="keep one tick in K at random (default: 1)")
    p.add_argument("--tick-scale", type=float, default=1.0, metavar="K",
                   help="multiply every tick size by K (a coarser price grid; default: 1)")
    a = p.parse_args(argv)
    grid = {}
    for item in a.set:
        key, _, vals = item.partition("=")
        grid[key] = [float(v) for v in vals.split(",")]
    nulls = [generate(seed=99 + a.first_seed + s, instruments=a.instruments, days=a.days, rates=NULL_RATES,
                      tick_scale=a.tick_scale) for s in range(a.seeds)]
    labelled = [generate(seed=a.first_seed + s, instruments=a.instruments, days=a.days, tick_scale=a.tick_scale)
                for s in range(a.seeds)]
    if a.thin > 1:
        nulls = [sc.thinned(a.thin, seed=i) for i, sc in enumerate(nulls)]
        labelled = [sc.thinned(a.thin, seed=100 + i) for i, sc in enumerate(labelled)]
    keys = list(grid)
    print(" ".join(f"{k:>22s}" for k in keys) + f" {'false/day':>10s} {'recall':>7s} {'precision':>9s} {'delay':>9s}")
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        changes = dict(zip(keys, combo))
        rows = []
        for group in (nulls, labelled):
            rep = None
            for sc in group:
                th = dataclasses.replace(sc.config.thresholds, **changes)
                cfg = dataclasses.replace(sc.config, thresholds=th)
                r = score(replay(sc, cfg), sc.labels, instrument_days=sc.instrument_days)
                rep = r if rep is None else rep + r
            rows.append(rep.kinds[a.kind])
        null, lab = rows
        delay = f"{lab.median_delay / 60:.1f}m" if lab.median_delay == lab.median_delay else "-"
        print(" ".join(f"{v:>22g}" for v in combo) +
              f" {null.false_per_day:>10.3f} {lab.recall:>7.2f} {lab.precision:>9.2f} {delay:>9s}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
