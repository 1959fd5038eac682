"""How the 1-h drift t-statistic and the 1-h flow z move together away from episodes, per instrument.

Usage::

    python benchmarks/evaluate.py --seed 1 --write-scenario DIR     # or a kept tape:
    python benchmarks/third/evaluate.py --seeds 1 --keep DIR           # (DIR/seed1)
    python benchmarks/comovement.py DIR [DIR ...]

Each DIR holds ``tape.csv``, ``config.toml`` and ``labels.jsonl``. The tape is replayed through
the engine with the statistics sampled once a minute; samples in a labelled episode or within
four hours of its end, and in the first 12 hours of the tape, are left out (see
:func:`signals.evaluation.comovement`). Steady flow takes a flow z of 1 either way as
corroboration of a 1-h t of 3.5: a correlation far from 0 here makes that corroboration
weaker evidence than the thresholds assume, and an RMS above 1 makes the t itself too large.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signals import kernels as K  # noqa: E402
from signals.config import load_config  # noqa: E402
from signals.engine import Engine  # noqa: E402
from signals.evaluation import Comovement, comovement, read_labels  # noqa: E402
from signals.tape import iter_tape  # noqa: E402

NS = 1_000_000_000
T1H, Z1H = K.STAT_NAMES.index("drift_tstat_3600s"), K.STAT_NAMES.index("flow_z_3600s")


def measure(folder: Path) -> list[tuple[str, str, Comovement]]:
    """``(instrument, feed, Comovement)`` for every instrument of the tape in ``folder``."""
    engine = Engine(load_config(folder / "config.toml"))
    inst, ts, t, z = [], [], [], []
    for chunk in iter_tape(folder / "tape.csv"):
        s = engine.process(chunk.batch, sample_every_seconds=60).samples
        inst.append(s.instrument)
        ts.append(s.ts)
        t.append(s.stats[:, T1H])
        z.append(s.stats[:, Z1H])
    inst, ts, t, z = (np.concatenate(a) for a in (inst, ts, t, z))
    labels, _ = read_labels(folder / "labels.jsonl")
    rows = []
    for name in engine.instruments:
        _, ints = engine.state_rows(name)
        feed = "sides" if 2 * ints[K.I_SIDED] >= ints[K.I_TICKS] else "tick rule"
        m = inst == name
        episodes = [(lb.start_ts, lb.end_ts) for lb in labels if lb.instrument == name and lb.kind != "control"]
        rows.append((name, feed, comovement(ts[m], t[m], z[m], episodes, skip_ns=12 * 3600 * NS, after_ns=4 * 3600 * NS)))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folders", nargs="+", type=Path, metavar="DIR", help="folders with tape.csv, config.toml, labels.jsonl")
    args = p.parse_args(argv)
    for folder in args.folders:
        for f in ("tape.csv", "config.toml", "labels.jsonl"):
            if not (folder / f).is_file():
                p.error(f"{folder / f} does not exist; write a tape with evaluate.py --write-scenario or --keep")
    print(f"{'tape':<12} {'instrument':<11} {'feed':<10}{'samples':>8}{'t 1h rms':>10}{'corr(t 1h, z 1h)':>18}")
    for folder in args.folders:
        for name, feed, c in measure(folder):
            print(f"{folder.name:<12} {name:<11} {feed:<10}{c.samples:>8}{c.tstat_rms:>10.2f}{c.correlation:>18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
