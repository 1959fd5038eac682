"""Detection quality on tapes from a second generator, written apart from tapewatch's own.

Usage::

    python benchmarks/independent/evaluate.py                 # seeds 1-6, 5 days x 6 instruments each
    python benchmarks/independent/evaluate.py --seeds 1 2 --keep DIR

``gen.py`` in this folder was written without reading ``signals/`` (its model and parameter
ranges: ``README.md`` here). Every tape goes through the CLI an outside evaluator would use,
``tapewatch replay TAPE --config CONFIG --alerts-out ALERTS``, and the alerts are scored with the
matching rules of :mod:`signals.evaluation`. Tapes are scored one by one and the counts added up
(tapes of different seeds may cover the same dates).
"""
from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from signals.evaluation import CEILING_TSTATS, format_report, recall_by_feed  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from blind import parse_args, run_seed  # noqa: E402

sys.path.insert(0, str(HERE))
from gen import TEMPLATES  # noqa: E402


def main(argv=None) -> int:
    args = parse_args(argv, __doc__, [1, 2, 3, 4, 5, 6])

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        total, realized = None, []
        for seed in args.seeds:
            out = root / f"seed{seed}"
            report, _, _ = run_seed(HERE / "gen.py", seed, args.days, out)
            total = report if total is None else total + report
            found = {(o.label.instrument, o.label.start_ts) for o in report.outcomes
                     if o.label.kind == "steady_flow" and o.first_ts is not None}
            with open(out / "truth_detail.jsonl") as f:
                realized += [(d["realized_t"], (d["instrument"], d["start_ts"]) in found)
                             for d in map(json.loads, f) if d["kind"] == "steady_flow"]
    print(f"\n== {len(args.seeds)} tapes")
    print(format_report(total))
    print()
    print(recall_by_feed(total, sided=[t["name"] for t in TEMPLATES if t["side"]]))
    if realized:
        print("\nsteady_flow ceiling: an oracle testing each grind's own window on the (efficient) price finds, at a "
              "whole-episode t of " + " / ".join(f"{t:g}" for t in CEILING_TSTATS) + ", "
              + " / ".join(f"{sum(r >= t for r, _ in realized) / len(realized):.2f}" for t in CEILING_TSTATS)
              + f" of the {len(realized)} grinds (their realized t, truth_detail.jsonl)")
        for lo, hi in ((-math.inf, 3.0), (3.0, 4.0), (4.0, math.inf)):
            sel = [hit for r, hit in realized if lo <= r < hi]
            print(f"  realized t {lo:g} to {hi:g}: tapewatch found {sum(sel)} of {len(sel)}")
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
