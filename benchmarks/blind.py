"""What the evaluations on outside generators share: make a tape, replay it through the CLI, score it.

``independent/evaluate.py`` and ``third/evaluate.py`` call :func:`run_seed` once per seed. The
tape goes through ``tapewatch replay TAPE --config CONFIG --alerts-out ALERTS``, the command an
outside evaluator would use, and the alerts are scored with :mod:`signals.evaluation`.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signals.evaluation import Alert, Label, Report, read_alerts, read_labels, score  # noqa: E402


def run_seed(gen_py: Path, seed: int, days: int, out: Path) -> tuple[Report, list[Alert], list[Label]]:
    """Generate ``seed`` with ``gen_py --seed --days --out`` into ``out``, replay and score it; print one line."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(gen_py), "--seed", str(seed), "--days", str(days), "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "consumers.cli", "replay", str(out / "tape.csv"),
                    "--config", str(out / "config.toml"), "--alerts-out", str(out / "alerts.jsonl")],
                   check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    labels, instrument_days = read_labels(out / "labels.jsonl")
    alerts = read_alerts(out / "alerts.jsonl")
    report = score(alerts, labels, instrument_days=instrument_days)
    print(f"seed {seed}: " + ", ".join(
        f"{k} {t.detected}/{t.labels} ({t.false_alerts} false)" for k, t in report.kinds.items()))
    return report, alerts, labels


def parse_args(argv, doc: str, seeds: list[int]) -> argparse.Namespace:
    """The options both evaluations take: ``--seeds`` (default ``seeds``), ``--days``, ``--keep``."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=seeds,
                   help=f"generator seeds (default: {seeds[0]}-{seeds[-1]})")
    p.add_argument("--days", type=int, default=5, help="trading days per tape (default: 5)")
    p.add_argument("--keep", metavar="DIR", help="write the tapes, labels and alerts here (default: a temporary folder)")
    return p.parse_args(argv)
