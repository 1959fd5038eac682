"""Detection quality on tapes from a third generator: a limit order book, written blind.

Usage::

    python benchmarks/third/evaluate.py                 # seeds 1-3, 5 days x 6 instruments each
    python benchmarks/third/evaluate.py --seeds 4 5 --keep DIR

``gen.py`` in this folder was written without reading ``signals/`` or the other generators (its
model: ``README.md`` here). Every tape goes through the CLI an outside evaluator would use,
``tapewatch replay TAPE --config CONFIG --alerts-out ALERTS``, and the alerts are scored with
the matching rules of :mod:`signals.evaluation`.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from signals.evaluation import GRACE_SECONDS, format_report  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from blind import parse_args, run_seed  # noqa: E402

#: controls and background events in truth.jsonl that are not labels
NOT_LABELS = ("bg_shift",)


def where(alert, truth: list[dict]) -> str:
    """The truth record (label or control) a false alert fell in, with 30 minutes of grace."""
    for t in truth:
        if t["instrument"] == alert.instrument and t["kind"] not in NOT_LABELS \
                and t["start_ts"] <= alert.ts <= t["end_ts"] + int(max(1800.0, GRACE_SECONDS.get(t["kind"], 0.0)) * 1e9):
            return t["kind"] if t["kind"] != alert.kind else "wrong_side"
    return "elsewhere"


def main(argv=None) -> int:
    args = parse_args(argv, __doc__, [1, 2, 3])

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        total, places = None, Counter()
        for seed in args.seeds:
            out = root / f"seed{seed}"
            report, alerts, labels = run_seed(HERE / "gen.py", seed, args.days, out)
            total = report if total is None else total + report
            with open(out / "truth.jsonl") as f:
                truth = [d for d in map(json.loads, f) if "meta" not in d]
            first_day = min(lb.start_ts for lb in labels) // 86_400_000_000_000
            for a in alerts:
                hit = any(lb.kind == a.kind and lb.side == a.side and lb.instrument == a.instrument
                          and lb.start_ts <= a.ts <= lb.end_ts + int(GRACE_SECONDS.get(a.kind, 0.0) * 1e9)
                          for lb in labels)
                if not hit:
                    day0 = a.ts // 86_400_000_000_000 < first_day
                    places[(a.kind, "first day (no episodes)" if day0 else where(a, truth))] += 1
    print(f"\n== {len(args.seeds)} tapes")
    print(format_report(total))
    print("\nfalse alerts by what they fell in (30 min grace): "
          + ", ".join(f"{k}@{w}={n}" for (k, w), n in sorted(places.items())))
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
