"""Score alerts against labelled episodes: recall, precision, false alarms, detection delay.

Matching rules
--------------
An alert ``(instrument, kind, side, ts)`` is a **true positive** when it falls inside a labelled
episode of the same instrument, kind and side, in ``[start_ts, end_ts + grace(kind)]``
(:data:`GRACE_SECONDS`). The first such alert of a label gives its **detection delay**
(``alert ts - start_ts``); later ones inside an already detected label are **duplicates** (they
count against precision). Any other alert is a **false alert**; a false alert inside an episode
of the same instrument and kind but the other side is also counted as **wrong side**.

Precision is ``true positives / alerts`` (alerts include duplicates); false alerts are also
reported per instrument-day.

Examples
--------
>>> from signals.scenarios import Label
>>> lb = Label(instrument="X", kind="burst", side="buy", start_ts=0, end_ts=30 * 10**9)
>>> t = score([Alert("X", "burst", "buy", 2 * 10**9)], [lb], instrument_days=1.0).kinds["burst"]
>>> t.recall, t.precision, t.median_delay
(1.0, 1.0, 2.0)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import orjson

from .errors import InputError
from .scenarios import EPISODE_KINDS, Label

#: Time after a label's end during which an alert still counts for it.
GRACE_SECONDS: Mapping[str, float] = {"steady_flow": 3600.0, "burst": 60.0, "deleveraging": 900.0}

#: Targets per kind: (metric, comparison, value). Delays in seconds.
TARGETS: Mapping[str, tuple[tuple[str, str, float], ...]] = {
    "steady_flow": (("recall", ">=", 0.9), ("false_per_day", "<=", 0.05), ("median_delay", "<=", 3600.0)),
    "burst": (("recall", ">=", 0.95), ("precision", ">=", 0.9), ("median_delay", "<=", 5.0)),
    "deleveraging": (("recall", ">=", 1.0), ("precision", ">=", 0.9), ("median_delay", "<=", 600.0)),
}

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert (a regime entry) as the scorer needs it."""

    instrument: str
    kind: str
    side: str
    ts: int

    @classmethod
    def from_dict(cls, d: Mapping) -> "Alert":
        return cls(str(d["instrument"]), str(d["kind"]), str(d["side"]), int(d["ts"]))


@dataclass
class Tally:
    """Counts for one kind; tallies of several scenarios add up with ``+``."""

    labels: int = 0
    detected: int = 0
    alerts: int = 0
    duplicates: int = 0
    false_alerts: int = 0
    wrong_side: int = 0
    instrument_days: float = 0.0
    delays: list[float] = field(default_factory=list)

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)})

    @property
    def recall(self) -> float:
        return self.detected / self.labels if self.labels else float("nan")

    @property
    def precision(self) -> float:
        return self.detected / self.alerts if self.alerts else float("nan")

    @property
    def false_per_day(self) -> float:
        return self.false_alerts / self.instrument_days if self.instrument_days else float("nan")

    @property
    def median_delay(self) -> float:
        return float(np.median(self.delays)) if self.delays else float("nan")

    @property
    def p90_delay(self) -> float:
        return float(np.quantile(self.delays, 0.9)) if self.delays else float("nan")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one label: the first matching alert (or None) and the duplicates."""

    label: Label
    first_ts: int | None
    duplicates: int

    @property
    def delay(self) -> float | None:
        return None if self.first_ts is None else (self.first_ts - self.label.start_ts) / _NS


@dataclass
class Report:
    """Per-kind tallies, per-label outcomes, and where the false alerts fell."""

    kinds: dict[str, Tally]
    outcomes: list[Outcome]
    #: false alerts by (kind, where): where is a control style, "other_kind" or "elsewhere"
    false_where: dict[tuple[str, str], int]

    def __add__(self, other: "Report") -> "Report":
        where = dict(self.false_where)
        for k, v in other.false_where.items():
            where[k] = where.get(k, 0) + v
        return Report({k: self.kinds[k] + other.kinds[k] for k in self.kinds}, self.outcomes + other.outcomes, where)


def score(alerts: Iterable[Alert], labels: Sequence[Label], *, instrument_days: float) -> Report:
    """Match alerts to labels (rules in the module docstring) and count per kind.

    Parameters
    ----------
    alerts : iterable of Alert
        Regime entries of any detector; kinds must be in ``EPISODE_KINDS``.
    labels : sequence of Label
        Episodes (``kind`` in ``EPISODE_KINDS``) and controls (``kind == "control"``).
    instrument_days : float
        Trading days summed over instruments, the denominator of false alerts per instrument-day.
    """
    if not instrument_days > 0:
        raise ValueError(f"instrument_days must be > 0, got {instrument_days}")
    episodes: dict[tuple[str, str], list[Label]] = {}
    others: dict[str, list[Label]] = {}
    for lb in sorted(labels, key=lambda x: x.start_ts):
        if lb.kind in EPISODE_KINDS:
            episodes.setdefault((lb.instrument, lb.kind), []).append(lb)
        elif lb.kind != "control":
            raise ValueError(f"label kind {lb.kind!r} is unknown; use one of {', '.join(EPISODE_KINDS)} or 'control'")
        others.setdefault(lb.instrument, []).append(lb)
    kinds = {k: Tally(instrument_days=float(instrument_days)) for k in EPISODE_KINDS}
    first: dict[Label, int] = {}
    dups: dict[Label, int] = {}
    where: dict[tuple[str, str], int] = {}
    for a in sorted(alerts, key=lambda x: x.ts):
        if a.kind not in kinds:
            raise ValueError(f"alert kind {a.kind!r} is unknown; use one of {', '.join(EPISODE_KINDS)}")
        t = kinds[a.kind]
        t.alerts += 1
        grace = int(GRACE_SECONDS[a.kind] * _NS)
        inside = [lb for lb in episodes.get((a.instrument, a.kind), ()) if lb.start_ts <= a.ts <= lb.end_ts + grace]
        same = [lb for lb in inside if lb.side == a.side]
        fresh = [lb for lb in same if lb not in first]
        if fresh:
            first[fresh[0]] = a.ts
            t.detected += 1
            t.delays.append((a.ts - fresh[0].start_ts) / _NS)
        elif same:
            dups[same[0]] = dups.get(same[0], 0) + 1
            t.duplicates += 1
        else:
            t.false_alerts += 1
            t.wrong_side += bool(inside)
            key = (a.kind, _where(a, others.get(a.instrument, ())))
            where[key] = where.get(key, 0) + 1
    for lb in labels:
        if lb.kind in kinds:
            kinds[lb.kind].labels += 1
    outcomes = [Outcome(lb, first.get(lb), dups.get(lb, 0)) for lb in labels if lb.kind in kinds]
    return Report(kinds, outcomes, where)


def after(alerts: Iterable[Alert], labels: Iterable[Label], cut_ts: int) -> tuple[list[Alert], list[Label]]:
    """What to score when the part of a tape before ``cut_ts`` (ns) was history.

    Kept: the labels that start at or after the cut (controls that are still running too: they
    say where false alerts fell), and the alerts at or after the cut except those inside an
    episode of their instrument and kind that began before it (that episode's first alert may
    have come earlier; it is scored neither way).

    Examples
    --------
    >>> from signals.scenarios import Label
    >>> s = 10**9
    >>> old = Label(instrument="X", kind="burst", side="buy", start_ts=0, end_ts=50 * s)
    >>> new = Label(instrument="X", kind="burst", side="buy", start_ts=200 * s, end_ts=250 * s)
    >>> alerts = [Alert("X", "burst", "buy", t * s) for t in (10, 60, 210)]  # 60 s: in old's grace time
    >>> kept, lbs = after(alerts, [old, new], cut_ts=55 * s)
    >>> [a.ts // s for a in kept], [lb.start_ts // s for lb in lbs]
    ([210], [200])
    """
    labels = list(labels)
    before = [lb for lb in labels if lb.kind in EPISODE_KINDS and lb.start_ts < cut_ts]

    def inside_before(a: Alert) -> bool:
        grace = int(GRACE_SECONDS[a.kind] * _NS)
        return any(lb.instrument == a.instrument and lb.kind == a.kind and lb.start_ts <= a.ts <= lb.end_ts + grace
                   for lb in before)

    kept = [a for a in alerts if a.ts >= cut_ts and not inside_before(a)]
    return kept, [lb for lb in labels if lb.start_ts >= cut_ts or (lb.kind == "control" and lb.end_ts >= cut_ts)]


#: Whole-episode t-statistics at which the evaluation scripts print the steady-flow ceiling.
CEILING_TSTATS: tuple[float, ...] = (3.0, 3.5, 4.0)


@dataclass(frozen=True, slots=True)
class Ceiling:
    """What a detector that knew each grind's window could find (see :func:`steady_ceiling`)."""

    tstat: float
    labels: int
    recall: float
    median_hours: float


def steady_ceiling(labels: Iterable[Label], *, tstat: float) -> Ceiling:
    """The steady-flow recall and delay of an oracle that knows when each grind starts and ends.

    A grind of ``strength`` s (hourly drift over hourly standard deviation) worked for ``hours``
    H of trading has an expected whole-episode drift t-statistic of s·√H, and a realized one of
    that plus a standard normal error. An oracle that tests each grind's own window, and only
    that window, finds it with probability Φ(s·√H − ``tstat``); its expected t-statistic reaches
    ``tstat`` after (``tstat`` / s)² open hours. A detector that does not know the windows
    scans all of them, so to hold the same false-alarm rate it needs a larger ``tstat``: these
    figures are what a test of the price alone could reach if it knew the windows.

    Parameters
    ----------
    labels : iterable of Label
        Steady-flow labels with ``hours`` (other labels, and those without hours, are skipped).
    tstat : float
        The whole-episode t-statistic the oracle needs.

    Returns
    -------
    Ceiling
        Labels counted, expected recall, and the median open hours until the expected
        t-statistic reaches ``tstat`` among the grinds where it does (NaN if none).

    Examples
    --------
    >>> from signals.scenarios import Label
    >>> grind = Label(instrument="X", kind="steady_flow", side="sell", start_ts=0, end_ts=1, strength=2.0, hours=4.0)
    >>> c = steady_ceiling([grind], tstat=3.5)        # expected t 4: found with probability 0.69
    >>> round(c.recall, 2), c.median_hours
    (0.69, 3.0625)
    """
    if not tstat > 0:
        raise ValueError(f"tstat must be > 0, got {tstat}")
    found, hours = [], []
    for lb in labels:
        if lb.kind != "steady_flow" or not (lb.hours > 0 and lb.strength > 0):
            continue
        t = lb.strength * math.sqrt(lb.hours)
        found.append(0.5 * (1.0 + math.erf((t - tstat) / math.sqrt(2.0))))
        if t >= tstat:
            hours.append((tstat / lb.strength) ** 2)
    return Ceiling(tstat=float(tstat), labels=len(found), recall=float(np.mean(found)) if found else math.nan,
                   median_hours=float(np.median(hours)) if hours else math.nan)


def recall_by_feed(report: Report, sided: Iterable[str]) -> str:
    """Recall per kind on instruments whose feed gives the aggressor side, and on the others.

    The flow statistics of a feed without sides come from the tick rule, which signs a burst's
    cascade poorly; this split shows how much of what is missed is there.

    Parameters
    ----------
    report : Report
        A scored set.
    sided : iterable of str
        The instruments whose trades come with an aggressor side.

    Examples
    --------
    >>> from signals.scenarios import Label
    >>> lbs = [Label(instrument=i, kind="burst", side="buy", start_ts=0, end_ts=10**9) for i in ("A", "B", "C")]
    >>> r = score([Alert("A", "burst", "buy", 0), Alert("B", "burst", "buy", 0)], lbs, instrument_days=1.0)
    >>> print(recall_by_feed(r, sided={"A"}))
    recall by feed: with aggressor sides / tick rule only
      burst        1/1 (1.00) / 1/2 (0.50)
    """
    sided = set(sided)
    lines = ["recall by feed: with aggressor sides / tick rule only"]
    for kind in EPISODE_KINDS:
        of_kind = [o for o in report.outcomes if o.label.kind == kind]
        if not of_kind:
            continue
        parts = []
        for has_sides in (True, False):
            sel = [o for o in of_kind if (o.label.instrument in sided) == has_sides]
            hit = sum(o.first_ts is not None for o in sel)
            parts.append(f"{hit}/{len(sel)} ({_num(hit / len(sel)) if sel else '-'})")
        lines.append(f"  {kind:<13}{parts[0]} / {parts[1]}")
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Comovement:
    """How a drift t-statistic and a flow z move together away from episodes (:func:`comovement`)."""

    samples: int
    tstat_rms: float
    correlation: float


def comovement(ts: np.ndarray, tstat: np.ndarray, flow_z: np.ndarray, episodes: Iterable[tuple[int, int]], *,
               skip_ns: int, after_ns: int) -> Comovement:
    """The spread of a drift t-statistic and its correlation with the flow z, away from episodes.

    Steady flow takes a signed flow on the drift's side (aggressive children) or against it
    (absorption) as corroboration of the drift. That is evidence only if the two are close to
    independent where there is no parent order. Where the price moves with the flow (price
    impact; a tick rule that reads the price's own steps as signs) a flow z of 1 comes with most
    drifts, and a random walk's wander passes for a corroborated grind more often than the
    thresholds were set for. This measures both on sampled statistics of one instrument.

    Parameters
    ----------
    ts, tstat, flow_z : numpy.ndarray
        Sample times (ns) and the two statistics at those times, in time order.
    episodes : iterable of (int, int)
        ``(start_ts, end_ts)`` of the instrument's labelled episodes; samples in
        ``[start_ts, end_ts + after_ns]`` are left out.
    skip_ns : int
        Samples in the first ``skip_ns`` after the first sample are left out (a cold start).
    after_ns : int
        How long an episode's trace is left out after its end.

    Returns
    -------
    Comovement
        Samples kept, the root mean square of the t-statistic (1 for a standard normal one) and
        the Pearson correlation of the two (NaN under 3 samples). Samples where both statistics
        are exactly 0 (nothing computed yet) are not counted.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ts = np.arange(20_000) * 60 * 10**9
    >>> t = rng.standard_normal(20_000)
    >>> z = 0.8 * t + 0.6 * rng.standard_normal(20_000)      # a flow that follows the price
    >>> t[10_000:10_100] += 6                                  # an episode, left out below
    >>> c = comovement(ts, t, z, [(ts[10_000], ts[10_099])], skip_ns=0, after_ns=0)
    >>> c.samples, round(c.tstat_rms, 1), round(c.correlation, 1)
    (19900, 1.0, 0.8)
    """
    ts, tstat, flow_z = np.asarray(ts), np.asarray(tstat, dtype=float), np.asarray(flow_z, dtype=float)
    if not (ts.shape == tstat.shape == flow_z.shape):
        raise ValueError(f"ts, tstat and flow_z must have one shape, got {ts.shape}, {tstat.shape}, {flow_z.shape}")
    if skip_ns < 0 or after_ns < 0:
        raise ValueError(f"skip_ns and after_ns must be >= 0, got {skip_ns} and {after_ns}")
    keep = (tstat != 0.0) | (flow_z != 0.0)
    if len(ts):
        keep &= ts >= ts[0] + skip_ns
    for start, end in episodes:
        keep &= ~((ts >= start) & (ts <= end + after_ns))
    t, z = tstat[keep], flow_z[keep]
    n = int(keep.sum())
    rms = float(np.sqrt(np.mean(t * t))) if n else math.nan
    corr = float(np.corrcoef(t, z)[0, 1]) if n >= 3 and t.std() > 0 and z.std() > 0 else math.nan
    return Comovement(samples=n, tstat_rms=rms, correlation=corr)


def _where(a: Alert, labels: Iterable[Label]) -> str:
    """Where a false alert fell: a control's style, inside another episode, or elsewhere."""
    for lb in labels:
        grace = int(GRACE_SECONDS.get(lb.kind, 0.0) * _NS)
        if lb.start_ts <= a.ts <= lb.end_ts + grace:
            if lb.kind == "control":
                return lb.style
            if lb.kind == a.kind:
                return "wrong_side"
            return "in_" + lb.kind
    return "elsewhere"


def check_targets(kinds: Mapping[str, Tally], targets=TARGETS) -> list[tuple[str, str, float, str, float, bool]]:
    """``(kind, metric, value, comparison, target, passed)`` for every target; NaN never passes."""
    rows = []
    for kind, checks in targets.items():
        for metric, op, goal in checks:
            v = getattr(kinds[kind], metric)
            ok = (v >= goal) if op == ">=" else (v <= goal)
            rows.append((kind, metric, v, op, goal, bool(ok)))
    return rows


def format_report(report: Report, *, targets=TARGETS) -> str:
    """A plain-text table per kind, then the targets with PASS/FAIL."""
    head = (f"{'kind':<13}{'labels':>7}{'detected':>9}{'recall':>8}{'alerts':>7}{'precision':>10}"
            f"{'false/inst-day':>15}{'median delay':>13}{'p90 delay':>11}{'duplicates':>11}{'wrong side':>11}")
    lines = [head, "-" * len(head)]
    for kind, t in report.kinds.items():
        lines.append(f"{kind:<13}{t.labels:>7}{t.detected:>9}{_num(t.recall):>8}{t.alerts:>7}{_num(t.precision):>10}"
                     f"{_num(t.false_per_day, 3):>15}{_dur(t.median_delay):>13}{_dur(t.p90_delay):>11}"
                     f"{t.duplicates:>11}{t.wrong_side:>11}")
    if report.false_where:
        lines.append("")
        lines.append("false alerts by where they fell: " + ", ".join(
            f"{k}@{w}={n}" for (k, w), n in sorted(report.false_where.items())))
    if targets:
        lines += ["", "targets"]
        for kind, metric, v, op, goal, ok in check_targets(report.kinds, targets):
            shown = _dur(v) if "delay" in metric else _num(v, 3)
            want = _dur(goal) if "delay" in metric else f"{goal:g}"
            lines.append(f"  {kind:<13}{metric:<15}{shown:>10}  {op} {want:<10}{'PASS' if ok else 'FAIL'}")
    return "\n".join(lines)


def _num(v: float, digits: int = 2) -> str:
    return "-" if v != v else f"{v:.{digits}f}"


def _dur(seconds: float) -> str:
    if seconds != seconds:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def read_alerts(path: str | Path) -> list[Alert]:
    """Alerts from JSON lines as ``tapewatch replay --alerts-out`` writes them (non-"enter" events skipped)."""
    out = []
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            d = orjson.loads(line)
            if d.get("event", "enter") != "enter":
                continue
            out.append(Alert.from_dict(d))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"{path}: line {n} is not an alert object with instrument, kind, side, ts: {e}") from None
    return out


def read_labels(path: str | Path) -> tuple[list[Label], float | None]:
    """Labels from :meth:`Scenario.write_labels` JSON lines; also the ``instrument_days`` of its meta line."""
    labels, days = [], None
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            d = orjson.loads(line)
            if "meta" in d:
                days = float(d["meta"]["instrument_days"])
                continue
            labels.append(Label.from_dict(d))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise InputError(f"{path}: line {n} is not a label object with instrument, kind, side, start_ts, end_ts: {e}") from None
    return labels, days


def _lines(path: str | Path) -> list[bytes]:
    try:
        return Path(path).read_bytes().splitlines()
    except OSError as e:
        raise InputError(f"cannot read {str(path)!r}: {e.strerror}") from None
