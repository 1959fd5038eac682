"""Detection quality of tapewatch on labelled synthetic tapes, against the targets.

Usage::

    python benchmarks/evaluate.py                    # generated scenario set -> engine -> table per kind
    python benchmarks/evaluate.py --null             # control tapes only: false alerts per instrument-day
    python benchmarks/evaluate.py --thin 5           # the same markets through a feed with 1 tick in 5
    python benchmarks/evaluate.py --tick-scale 5     # the same markets on a price grid 5x coarser
    python benchmarks/evaluate.py --days 1 --history-days 1
                                                     # one scored day after a day of history (replay --history)
    python benchmarks/evaluate.py --alerts A.jsonl --labels L.jsonl [--instrument-days N]
                                                     # score any detector's alerts (replay --alerts-out)
    python benchmarks/evaluate.py --write-scenario DIR --seed 3
                                                     # tape.csv, labels.jsonl, config.toml for `tapewatch replay`

The default set is ``--scenarios`` tapes with random episodes (seeds ``--seed``, ``--seed + 1``, ...)
plus ``--null-scenarios`` control-only tapes, each ``--instruments`` instruments over ``--days``
trading days. Matching rules: :mod:`signals.evaluation`.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signals.evaluation import (CEILING_TSTATS, Alert, Report, after, format_report, read_alerts,  # noqa: E402
                                read_labels, recall_by_feed, score, steady_ceiling)
from signals.scenarios import CATALOGUE, NULL_RATES, Scenario, generate  # noqa: E402

CHUNK_ROWS = 200_000


def run_engine(sc: Scenario) -> tuple[list[Alert], float]:
    """Feed the tape to a fresh engine in chunks; return its alerts and the engine's seconds."""
    from signals.engine import Engine

    engine = Engine(sc.config)
    alerts: list[Alert] = []
    t0 = time.perf_counter()
    for lo in range(0, len(sc.ticks), CHUNK_ROWS):
        res = engine.process(sc.ticks.select(slice(lo, lo + CHUNK_ROWS)))
        alerts += [Alert(a.instrument, a.kind, a.side, a.ts) for a in res.alerts]
    return alerts, time.perf_counter() - t0


def evaluate_set(seeds, *, instruments: int, days: int, rates=None, thin: float = 1.0,
                 tick_scale: float = 1.0, history_days: int = 0) -> tuple[Report, dict]:
    """Generate, replay and score each seed's tape; with ``history_days`` the tape has that many
    more days in front, which the engine sees first and the scores leave out (``replay --history``)."""
    report, stats = None, Counter()
    for seed in seeds:
        t0 = time.perf_counter()
        sc = generate(seed=seed, instruments=instruments, days=days + history_days, rates=rates, tick_scale=tick_scale)
        if thin > 1:
            sc = sc.thinned(thin, seed=seed)
        stats["generate_s"] += time.perf_counter() - t0
        alerts, secs = run_engine(sc)
        stats["engine_s"] += secs
        stats["ticks"] += len(sc.ticks)
        labels, idays = sc.labels, sc.instrument_days
        if history_days:
            # the tapes start on a Monday (at 21:00 UTC the evening before), so up to four days
            # of history end before the weekend and each day is 24 hours
            alerts, labels = after(alerts, labels, sc.start_ts + history_days * 86_400 * 10**9)
            idays = sc.instrument_days * days / (days + history_days)
        stats["instrument_days"] += idays
        stats.update(lb.style for lb in labels if lb.kind == "control")
        r = score(alerts, labels, instrument_days=idays)
        report = r if report is None else report + r
    return report, stats


def print_set(title: str, report: Report, stats: dict) -> None:
    print(f"\n== {title}: {stats['ticks']:,} ticks, {stats['instrument_days']:.0f} instrument-days; "
          f"generated at {stats['ticks'] / stats['generate_s'] / 1e6:.2f} M ticks/s, "
          f"engine at {stats['ticks'] / stats['engine_s'] / 1e6:.2f} M ticks/s")
    controls = {k: stats.get(k, 0) for k in ("null_day", "quiet_day", "news_day", "vol_spike")}
    print("   controls: " + ", ".join(f"{k} {v}" for k, v in controls.items()))


def breakdown(report: Report) -> str:
    """Steady-flow recall by strength and by style, burst recall by jump size, and recall by feed
    (aggressor sides or the tick rule) for the catalogue's instruments."""
    rows = []
    steady = [o for o in report.outcomes if o.label.kind == "steady_flow"]
    if steady:
        rows.append("steady_flow recall by strength (hourly drift / hourly sd) and style:")
        for lo, hi in ((1.5, 2.2), (2.2, 3.3), (3.3, 5.01)):
            sel = [o for o in steady if lo <= o.label.strength < hi]
            rows.append(f"  strength {lo:.1f}-{hi:.1f}: {_hits(sel)}")
        for style in ("aggressive", "passive"):
            rows.append(f"  {style:<10}: {_hits([o for o in steady if o.label.style == style])}")
        ceilings = [steady_ceiling([o.label for o in steady], tstat=t) for t in CEILING_TSTATS]
        if ceilings[0].labels:
            rows.append("  ceiling: an oracle testing each grind's own window on the price finds, at a whole-episode t of "
                        + " / ".join(f"{c.tstat:g}" for c in ceilings) + ", "
                        + " / ".join(f"{c.recall:.2f}" for c in ceilings) + " of them, its expected t reaching that after "
                        + " / ".join(f"{c.median_hours:.1f}" for c in ceilings) + " open hours (median)")
    bursts = [o for o in report.outcomes if o.label.kind == "burst"]
    if bursts:
        rows.append("burst recall by jump size (local 1-min sd):")
        for lo, hi in ((3, 5), (5, 7), (7, 10.01)):
            rows.append(f"  jump {lo}-{hi:.0f}: {_hits([o for o in bursts if lo <= o.label.strength < hi])}")
    if all(o.label.instrument in CATALOGUE for o in report.outcomes):
        rows.append(recall_by_feed(report, sided=[n for n, spec in CATALOGUE.items() if spec.aggressor]))
    return "\n".join(rows)


def _hits(outcomes) -> str:
    if not outcomes:
        return "-"
    hit = [o for o in outcomes if o.first_ts is not None]
    med = np.median([o.delay for o in hit]) / 60 if hit else float("nan")
    return f"{len(hit)}/{len(outcomes)} detected, median delay {med:.1f} min"


def null_table(report: Report, days: float) -> str:
    lines = [f"{'kind':<13}{'false alerts':>13}{'per instrument-day':>20}"]
    for kind, t in report.kinds.items():
        lines.append(f"{kind:<13}{t.false_alerts:>13}{t.false_per_day:>20.3f}")
    where = Counter()
    for (kind, w), n in report.false_where.items():
        where[w] += n
    lines.append("by where they fell: " + (", ".join(f"{w} {n}" for w, n in sorted(where.items())) or "none"))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--alerts", help="JSON lines of alerts (tapewatch replay --alerts-out) to score")
    p.add_argument("--labels", help="labels JSON lines (Scenario.write_labels) for --alerts")
    p.add_argument("--instrument-days", type=float, help="override the labels file's instrument-days")
    p.add_argument("--seed", type=int, default=1, help="first seed (default: 1)")
    p.add_argument("--scenarios", type=int, default=4, help="tapes with episodes (default: 4)")
    p.add_argument("--null-scenarios", type=int, default=2, help="control-only tapes (default: 2)")
    p.add_argument("--days", type=int, default=10, help="trading days per tape (default: 10)")
    p.add_argument("--instruments", type=int, default=8, help="instruments per tape (default: 8)")
    p.add_argument("--thin", type=float, default=1.0, metavar="K",
                   help="keep one tick in K at random (a sparser feed of the same market; default: 1)")
    p.add_argument("--tick-scale", type=float, default=1.0, metavar="K",
                   help="multiply every tick size by K (a coarser price grid of the same market; default: 1)")
    p.add_argument("--history-days", type=int, default=0, metavar="K",
                   help="put K more days (1-4) in front of each tape: the engine sees them first, the scores "
                        "leave them out (what `tapewatch replay --history` does; default: 0)")
    p.add_argument("--null", action="store_true", help="control tapes only: false alerts per instrument-day per kind")
    p.add_argument("--write-scenario", metavar="DIR", help="write tape.csv, labels.jsonl, config.toml for --seed and exit")
    args = p.parse_args(argv)
    if not 0 <= args.history_days <= 4:
        p.error(f"--history-days must be 0-4 (history ends before the tapes' first weekend), got {args.history_days}")

    if args.write_scenario:
        out = Path(args.write_scenario)
        out.mkdir(parents=True, exist_ok=True)
        sc = generate(seed=args.seed, instruments=args.instruments, days=args.days, tick_scale=args.tick_scale)
        if args.thin > 1:
            sc = sc.thinned(args.thin, seed=args.seed)
        sc.write_csv(out / "tape.csv")
        sc.write_labels(out / "labels.jsonl")
        sc.write_config(out / "config.toml")
        print(f"wrote {len(sc.ticks):,} ticks and {len(sc.labels)} labels to {out}/ (tape.csv, labels.jsonl, config.toml)")
        return 0

    if args.alerts or args.labels:
        if not (args.alerts and args.labels):
            p.error("--alerts and --labels go together")
        labels, days = read_labels(args.labels)
        days = args.instrument_days or days
        if not days:
            p.error(f"{args.labels} has no meta line with instrument_days; pass --instrument-days")
        report = score(read_alerts(args.alerts), labels, instrument_days=days)
        print(format_report(report))
        print()
        print(breakdown(report))
        return 0

    started = time.perf_counter()
    null_seeds = range(args.seed + 1000, args.seed + 1000 + args.null_scenarios)
    null_report, null_stats = evaluate_set(null_seeds, instruments=args.instruments, days=args.days, rates=NULL_RATES,
                                            thin=args.thin, tick_scale=args.tick_scale, history_days=args.history_days)
    print_set("control tapes", null_report, null_stats)
    print(null_table(null_report, null_stats["instrument_days"]))
    if not args.null:
        seeds = range(args.seed, args.seed + args.scenarios)
        report, stats = evaluate_set(seeds, instruments=args.instruments, days=args.days, thin=args.thin,
                                     tick_scale=args.tick_scale, history_days=args.history_days)
        print_set("episode tapes", report, stats)
        report = report + null_report
        print("\n== all tapes (false alerts per instrument-day over both sets)")
        print(format_report(report))
        print()
        print(breakdown(report))
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
