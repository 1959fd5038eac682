"""What a replay found, as a terminal summary or a self-contained HTML page (inline SVG and CSS).

Pure rendering: :class:`ReportData` in, a string out. The page answers first and explains after:
a verdict per instrument at the top ("UST10Y — steady selling since Tue 20 May 14:00 UTC,
score 4.8"), a timeline of every instrument's regimes, then per instrument the price with the
regime periods shaded, alert markers with their estimated onset, session gaps, and beneath it
the statistics behind the decisions (drift t-statistics with their thresholds, flow z-scores,
volatility ratios) on the same time axis.

Examples
--------
>>> data = ReportData(title="t", source="tape.csv", states=(InstrumentState(name="X", last_ts=0),))
>>> "quiet, no regime on this tape" in render_text(data), render_html(data).startswith("<!DOCTYPE html>")
(True, True)
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Sequence

import numpy as np

from .config import Thresholds
from .engine import STAT_NAMES

_NS = 1_000_000_000
KIND_COLOURS = {"steady_flow": "#2563eb", "burst": "#ea7a0c", "deleveraging": "#c81e1e"}
KIND_WORDS = {"steady_flow": "steady", "burst": "burst", "deleveraging": "deleveraging"}
_SEVERITY = {"deleveraging": 0, "burst": 1, "steady_flow": 2, "quiet": 3}
_COL = {name: i for i, name in enumerate(STAT_NAMES)}

# page geometry (SVG user units = CSS pixels at 100 %)
_WIDTH, _LEFT, _RIGHT = 1180, 78, 16
_PLOT = _WIDTH - _LEFT - _RIGHT
_COLUMNS = _PLOT // 2  # downsampling: one bucket per two pixels


@dataclass(frozen=True, kw_only=True, slots=True)
class InstrumentState:
    """Where an instrument ended: its regime (``quiet`` or a kind), flow side, onset and score."""

    name: str
    last_ts: int
    first_ts: int | None = None
    regime: str = "quiet"
    side: str | None = None
    onset_ts: int | None = None
    score: float | None = None
    ticks: int = 0
    invert: bool = False


@dataclass(frozen=True, slots=True)
class Period:
    """One stretch of a regime: detected at ``start_ts``, estimated to have begun at ``onset_ts``."""

    instrument: str
    id: str
    kind: str
    side: str
    onset_ts: int
    start_ts: int
    end_ts: int | None
    score: float
    resumed: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class ReportData:
    """Everything the report shows.

    Attributes
    ----------
    states : sequence of InstrumentState
        One per instrument, any order (the report orders them by urgency).
    transitions : sequence of dict
        Transitions as ``Transition.to_dict()`` gives them (enter, exit, resume), in time order.
    samples : object, optional
        ``signals.engine.Samples``-like columns ``instrument``, ``ts``, ``stats``, ``regime``,
        ``side``; without them the instrument sections show only the regime periods.
    labels : sequence, optional
        Known episodes (objects or dicts with instrument, kind, side, start_ts, end_ts), drawn
        as a thin band for comparison; kinds other than the regime kinds are drawn grey.
    rows, accepted, reasons, bad_lines
        Row accounting of the tape (see :class:`signals.tape.TapeSummary`).
    """

    title: str
    source: str
    states: Sequence[InstrumentState]
    transitions: Sequence[Mapping[str, Any]] = ()
    samples: Any = None
    labels: Sequence[Any] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    max_gap_seconds: float = 900.0
    rows: int = 0
    accepted: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)
    bad_lines: Sequence[tuple[int, str]] = ()
    elapsed_seconds: float | None = None


# --- words -----------------------------------------------------------------------------------

def when(ts_ns: int) -> str:
    """``Tue 20 May 14:00 UTC``."""
    d = datetime.fromtimestamp(ts_ns / _NS, tz=timezone.utc)
    return f"{d:%a} {d.day} {d:%b %H:%M} UTC"


def duration(seconds: float) -> str:
    """``2d 03h``, ``5h 12m``, ``14m``, ``40s``."""
    s = int(round(seconds))
    if s >= 86400:
        return f"{s // 86400}d {s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m" if s >= 60 else f"{s}s"


def regime_words(kind: str, side: str | None, invert: bool = False) -> str:
    """``steady selling``, ``buying burst``, ``deleveraging (selling)``; yields say which way they move."""
    acting = {"sell": "selling", "buy": "buying"}.get(side or "", "")
    if invert and acting:
        acting += " (yield " + ("rising" if side == "sell" else "falling") + ")"
    if kind == "steady_flow":
        return f"steady {acting}".strip()
    if kind == "burst":
        return f"momentum burst, {acting}" if acting else "momentum burst"
    return f"deleveraging, {acting}" if acting else kind


def verdict(state: InstrumentState, periods: Sequence[Period]) -> str:
    """The one line an analyst reads first: ``UST10Y — steady selling (yield rising) since …, score 4.8``."""
    return f"{state.name} — {_now(state, periods)}"


def _now(state: InstrumentState, periods: Sequence[Period]) -> str:
    if state.regime != "quiet":
        since = f" since {when(state.onset_ts)}" if state.onset_ts else ""
        score = f", score {state.score:.1f}" if state.score is not None else ""
        return f"{regime_words(state.regime, state.side, state.invert)}{since}{score}"
    if not periods:
        return "quiet, no regime on this tape"
    last = periods[-1]
    return (f"quiet now; last {regime_words(last.kind, last.side, state.invert)} "
            f"{when(last.onset_ts)} – {when(last.end_ts or state.last_ts)}")


def periods_of(transitions: Sequence[Mapping[str, Any]]) -> dict[str, list[Period]]:
    """Regime periods per instrument: an enter or resume opens one, an exit (same id) closes it."""
    out: dict[str, list[Period]] = {}
    open_: dict[str, Period] = {}
    for t in transitions:
        name = t["instrument"]
        cur = open_.pop(name, None)
        if cur is not None:
            out.setdefault(name, []).append(_close(cur, t["ts"]))
        if t["event"] in ("enter", "resume"):
            open_[name] = Period(name, t["id"], t["kind"], t["side"], int(t["onset_ts"]), int(t["ts"]), None,
                                 float(t.get("score") or 0.0), t["event"] == "resume")
    for name, cur in open_.items():
        out.setdefault(name, []).append(cur)
    return out


def _close(p: Period, ts: int) -> Period:
    return Period(p.instrument, p.id, p.kind, p.side, p.onset_ts, p.start_ts, int(ts), p.score, p.resumed)


def _ordered(data: ReportData) -> list[InstrumentState]:
    return sorted(data.states, key=lambda s: (_SEVERITY.get(s.regime, 3), -(s.score or 0), s.name))


# --- text ------------------------------------------------------------------------------------

def render_text(data: ReportData) -> str:
    """The end-of-replay summary: per instrument what was entered, time in each regime, the state now."""
    periods = periods_of(data.transitions)
    lines = [_tape_line(data), ""]
    rows = [("instrument", "regimes entered", "time in regime", "now")]
    for st in _ordered(data):
        ps = periods.get(st.name, [])
        entered: dict[tuple[str, str], int] = {}
        spent: dict[str, float] = {}
        for p in ps:
            if not p.resumed:
                entered[(p.kind, p.side)] = entered.get((p.kind, p.side), 0) + 1
            spent[p.kind] = spent.get(p.kind, 0.0) + ((p.end_ts or st.last_ts) - p.start_ts) / _NS
        rows.append((st.name,
                     ", ".join(f"{KIND_WORDS[k]} {s} ×{n}" for (k, s), n in sorted(entered.items())) or "-",
                     ", ".join(f"{KIND_WORDS[k]} {duration(v)}" for k, v in sorted(spent.items())) or "-",
                     _now(st, ps)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3])
    lines.append("")
    lines.append(_rejects_line(data))
    return "\n".join(lines) + "\n"


def _tape_line(data: ReportData) -> str:
    first = [s.first_ts for s in data.states if s.first_ts is not None]
    span = f", {when(min(first))} → {when(max(s.last_ts for s in data.states))}" if first else ""
    took = ""
    if data.elapsed_seconds:
        took = f", {data.elapsed_seconds:.1f} s ({data.rows / max(data.elapsed_seconds, 1e-9):,.0f} rows/s)"
    return (f"{data.source}: {data.rows:,} rows, {data.accepted:,} accepted, {data.rows - data.accepted:,} rejected, "
            f"{len(data.states)} instruments{span}{took}")


def _rejects_line(data: ReportData) -> str:
    if not data.reasons:
        return "rejected rows: none"
    by_reason: dict[str, list[int]] = {}
    for line, reason in data.bad_lines:
        by_reason.setdefault(reason, []).append(line)
    parts = []
    for reason, n in sorted(data.reasons.items(), key=lambda kv: -kv[1]):
        where = by_reason.get(reason)
        parts.append(f"{reason} {n:,}" + (f" (line {', '.join(map(str, where))}{', …' if n > len(where) else ''})"
                                          if where else ""))
    return "rejected rows: " + "; ".join(parts)


# --- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2937;margin:0;background:#f8fafc}
main{max-width:1200px;margin:0 auto;padding:18px 10px 40px}
h1{font-size:20px;margin:0 0 2px}h2{font-size:17px;margin:0}
.sub{color:#64748b;font-size:13px;margin:0 0 14px}
.verdicts{display:grid;gap:6px;margin:0 0 14px}
.v{display:flex;align-items:center;gap:10px;background:#fff;border:1px solid #e2e8f0;border-left:8px solid #cbd5e1;
border-radius:6px;padding:7px 12px;font-size:16px;text-decoration:none;color:inherit}
.v b{min-width:92px}.v .s{margin-left:auto;color:#64748b;font-size:13px;white-space:nowrap}
.card{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:12px 12px 6px;margin:0 0 14px}
.card .head{display:flex;align-items:baseline;gap:12px;flex-wrap:wrap;margin:0 0 4px}
.card .what{color:#475569}
.legend{display:flex;gap:16px;flex-wrap:wrap;color:#475569;font-size:13px;margin:4px 0 10px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin-right:4px}
svg{display:block;width:100%;height:auto}
svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;fill:#475569}
.rej{color:#64748b;font-size:13px}
"""


def render_html(data: ReportData) -> str:
    """The whole page as one string; no external references, no scripts."""
    states = _ordered(data)
    periods = periods_of(data.transitions)
    lo, hi = _time_range(data)
    axis = _Axis(lo, hi)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(data.title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(data.title)}</h1>",
        f'<p class="sub">{_e(_tape_line(data))}</p>',
        '<div class="verdicts">',
    ]
    for st in states:
        colour = KIND_COLOURS.get(st.regime, "#cbd5e1")
        ps = periods.get(st.name, [])
        n_alerts = sum(1 for p in ps if not p.resumed)
        parts.append(f'<a class="v" href="#{_anchor(st.name)}" style="border-left-color:{colour}">'
                     f"<b>{_e(st.name)}</b><span>{_e(_now(st, ps))}</span>"
                     f'<span class="s">{n_alerts} alert{"s" if n_alerts != 1 else ""}</span></a>')
    parts.append("</div>")
    parts.append(_legend(bool(data.labels)))
    parts.append('<div class="card"><div class="head"><h2>Regimes over the tape</h2></div>')
    parts.append(_timeline(states, periods, axis, data))
    parts.append("</div>")
    for st in states:
        parts.append(_section(st, periods.get(st.name, []), axis, data))
    parts.append(f'<p class="rej">{_e(_rejects_line(data))}</p>')
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


def _anchor(name: str) -> str:
    return "i-" + "".join(c if c.isalnum() or c in "-_" else f"_{ord(c):x}" for c in name)


def _time_range(data: ReportData) -> tuple[int, int]:
    firsts = [s.first_ts for s in data.states if s.first_ts is not None]
    lasts = [s.last_ts for s in data.states]
    if data.samples is not None and len(data.samples.ts):
        firsts.append(int(data.samples.ts.min()))
        lasts.append(int(data.samples.ts.max()))
    lo = min(firsts) if firsts else min(lasts, default=0)
    hi = max(lasts, default=lo)
    return lo, max(hi, lo + 60 * _NS)


class _Axis:
    """Event time to x pixels, shared by every chart on the page."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def x(self, ts) -> np.ndarray | float:
        return _LEFT + (np.asarray(ts, dtype=np.float64) - self.lo) * (_PLOT / (self.hi - self.lo))

    def ticks(self) -> list[tuple[int, str, bool]]:
        """(ts, label, is_midnight) at a readable step."""
        span = (self.hi - self.lo) / _NS
        step = next((s for s in (900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)
                     if span / s <= 14), 14 * 86400)
        first = (self.lo // (step * _NS) + 1) * step * _NS
        out = []
        for t in range(first, self.hi, step * _NS):
            d = datetime.fromtimestamp(t / _NS, tz=timezone.utc)
            midnight = d.hour == 0 and d.minute == 0
            out.append((t, f"{d:%a} {d.day} {d:%b}" if midnight else f"{d:%H:%M}", midnight))
        return out


def _legend(with_labels: bool) -> str:
    names = {"steady_flow": "steady flow", "burst": "burst", "deleveraging": "deleveraging"}
    items = [f'<span><span class="sw" style="background:{c}"></span>{names[k]}</span>' for k, c in KIND_COLOURS.items()]
    items.append('<span>▼ sell &nbsp;▲ buy (flow side)</span>')
    items.append('<span><span class="sw" style="background:#e2e8f0"></span>no trading</span>')
    items.append('<span>┆ estimated onset &nbsp;▾ alert</span>')
    if with_labels:
        items.append('<span><span class="sw" style="height:4px;background:#64748b"></span>'
                     'known episodes (labels)</span>')
    return '<div class="legend">' + "".join(items) + "</div>"


def _side_mark(side: str) -> str:
    return "▼" if side == "sell" else "▲"


def _timeline(states, periods, axis: _Axis, data: ReportData) -> str:
    row = 22
    h = row * len(states) + 22
    out = [f'<svg viewBox="0 0 {_WIDTH} {h}" role="img" aria-label="regime timeline">']
    out.append(_grid(axis, 0, h - 20))
    for j, st in enumerate(states):
        y = j * row
        out.append(f'<text x="{_LEFT - 6}" y="{y + 15}" text-anchor="end" style="font-weight:600;fill:#1f2937">'
                   f"{_e(st.name)}</text>")
        out.append(f'<rect x="{_LEFT}" y="{y + 4}" width="{_PLOT}" height="{row - 8}" fill="#f1f5f9"/>')
        for p in periods.get(st.name, []):
            out.append(_band(p, axis, y + 4, row - 8, st, opacity=1.0, with_text=True))
        for lb in data.labels:
            if _get(lb, "instrument") == st.name and _get(lb, "kind") in KIND_COLOURS:
                out.append(_label_bar(lb, axis, y + row - 4, height=3))
    out.append(_time_labels(axis, h - 6))
    out.append("</svg>")
    return "\n".join(out)


def _band(p: Period, axis: _Axis, y: float, h: float, st: InstrumentState, *, opacity: float, with_text: bool) -> str:
    colour = KIND_COLOURS[p.kind]
    end = p.end_ts or st.last_ts
    x0, x1 = float(axis.x(p.start_ts)), float(axis.x(end))
    xo = float(axis.x(p.onset_ts))
    tip = (f"{regime_words(p.kind, p.side, st.invert)}: onset {when(p.onset_ts)}, "
           f"{'resumed' if p.resumed else 'alert'} {when(p.start_ts)}, "
           + (f"ended {when(p.end_ts)}" if p.end_ts else "still on at the end of the tape")
           + (f", score {p.score:.1f}" if p.score else ""))
    out = [f"<g><title>{_e(tip)}</title>"]
    if not p.resumed and xo < x0:  # from the estimated onset to the alert
        if with_text:
            out.append(f'<rect x="{xo:.1f}" y="{y + h / 2 - 1.5:.1f}" width="{x0 - xo:.1f}" height="3" '
                       f'fill="{colour}" fill-opacity="0.7"/>')
        else:
            out.append(f'<rect x="{xo:.1f}" y="{y}" width="{x0 - xo:.1f}" height="{h}" fill="{colour}" '
                       f'fill-opacity="{0.5 * opacity:.2f}"/>')
    out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1.5):.1f}" height="{h}" fill="{colour}" '
               f'fill-opacity="{opacity:.2f}"/>')
    if with_text and x1 - x0 > 14:
        out.append(f'<text x="{x0 + 3:.1f}" y="{y + h - 3.5}" style="fill:#fff;font-size:10px;font-weight:600">'
                   f"{_side_mark(p.side)}</text>")
    out.append("</g>")
    return "".join(out)


def _grid(axis: _Axis, y0: float, y1: float) -> str:
    out = []
    for t, _, midnight in axis.ticks():
        x = float(axis.x(t))
        colour = "#cbd5e1" if midnight else "#eef2f7"
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{y1}" stroke="{colour}"/>')
    return "".join(out)


def _time_labels(axis: _Axis, y: float) -> str:
    out = []
    for t, label, midnight in axis.ticks():
        x = float(axis.x(t))
        style = ' style="font-weight:600"' if midnight else ""
        out.append(f'<text x="{x:.1f}" y="{y}" text-anchor="middle"{style}>{_e(label)}</text>')
    return "".join(out)


def _section(st: InstrumentState, periods: list[Period], axis: _Axis, data: ReportData) -> str:
    th = data.thresholds
    what = ("yield (inverted: a rising yield means the bond is being sold)" if st.invert else "price")
    head = (f'<section class="card" id="{_anchor(st.name)}"><div class="head"><h2>{_e(st.name)}</h2>'
            f'<span class="what">{_e(_now(st, periods))}</span>'
            f'<span class="what" style="margin-left:auto">{st.ticks:,} ticks · {_e(what)}</span></div>')
    s = _instrument_samples(data.samples, st.name)
    labels = [lb for lb in data.labels if _get(lb, "instrument") == st.name]
    panels = [("price", 190)] + ([("drift", 100), ("flow", 72), ("vol", 72)] if s is not None else [])
    top = 8 + (14 if data.labels else 0) + 18
    heights = {}
    y = top
    for name, h in panels:
        heights[name] = (y, h)
        y += h + 22
    total = y + 10
    out = [head, f'<svg viewBox="0 0 {_WIDTH} {total}" role="img" aria-label="{_e(st.name)} charts">']
    plot_top, plot_bottom = top, y - 22
    out.append(_grid(axis, plot_top, plot_bottom))
    if data.labels:
        out.append(f'<text x="{_LEFT - 6}" y="{8 + 9}" text-anchor="end">labels</text>')
        for lb in labels:
            out.append(_label_bar(lb, axis, 8 + 3))
    # regime strip right above the price panel
    strip_y = top - 16
    out.append(f'<text x="{_LEFT - 6}" y="{strip_y + 10}" text-anchor="end">regime</text>')
    out.append(f'<rect x="{_LEFT}" y="{strip_y}" width="{_PLOT}" height="12" fill="#f1f5f9"/>')
    py, ph = heights["price"]
    gap = _gap_ns(s, data.max_gap_seconds) if s is not None else 0.0
    for p in periods:
        out.append(_band(p, axis, strip_y, 12, st, opacity=1.0, with_text=True))
        out.append(_band(p, axis, py, ph, st, opacity=0.13, with_text=False))
    # closed market on top of the regime shading: a regime can outlast a session
    for x0, x1 in (_gaps(s, gap, axis) if s is not None else []):
        out.append(f'<rect x="{x0:.1f}" y="{plot_top}" width="{x1 - x0:.1f}" height="{plot_bottom - plot_top}" '
                   f'fill="#e2e8f0" fill-opacity="0.85"><title>no trading</title></rect>')
    if s is not None:
        out.append(_price_panel(s, axis, py, ph, st, gap))
        out.append(_stat_panel(s, axis, gap, *heights["drift"], "drift t-statistic (price direction)",
                               [("drift_tstat_900s", "15m"), ("drift_tstat_3600s", "1h"), ("drift_tstat_14400s", "4h")],
                               [th.steady_tstat_slow, th.steady_tstat, th.delev_tstat], scale="symmetric",
                               haze=("drift_tstat_60s", "1m")))
        out.append(_stat_panel(s, axis, gap, *heights["flow"], "order-flow imbalance z (+ buying)",
                               [("flow_z_900s", "15m"), ("flow_z_3600s", "1h"), ("flow_z_14400s", "4h"),
                                ("flow_z_volume", "volume clock")],
                               [th.steady_flow_z, th.delev_flow_z], scale="symmetric"))
        out.append(_stat_panel(s, axis, gap, *heights["vol"], "volatility ratio (log scale)",
                               [("vol_ratio_900s", "15m"), ("vol_ratio_3600s", "1h")],
                               [th.steady_vol_ratio_max, th.burst_vol_ratio, th.delev_vol_ratio], scale="log",
                               haze=("vol_ratio_60s", "1m")))
    else:
        out.append(f'<text x="{_LEFT + _PLOT / 2}" y="{py + ph / 2}" text-anchor="middle">'
                   "no statistics sampled (replay with --report to record them)</text>")
    for p in periods:
        out.append(_alert_marker(p, axis, py, ph, st))
    out.append(_time_labels(axis, total - 4))
    out.append("</svg></section>")
    return "\n".join(out)


def _get(obj, key):
    return obj[key] if isinstance(obj, Mapping) else getattr(obj, key)


def _label_bar(lb, axis: _Axis, y: float, height: float = 5) -> str:
    kind, side = _get(lb, "kind"), _get(lb, "side") or ""
    colour = KIND_COLOURS.get(kind, "#94a3b8")
    x0, x1 = float(axis.x(_get(lb, "start_ts"))), float(axis.x(_get(lb, "end_ts")))
    words = regime_words(kind, side) if kind in KIND_COLOURS else kind
    tip = f"label: {words}, {when(_get(lb, 'start_ts'))} – {when(_get(lb, 'end_ts'))}"
    return (f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1.5):.1f}" height="{height}" fill="{colour}" '
            f'fill-opacity="{0.9 if kind in KIND_COLOURS else 0.5}"><title>{_e(tip)}</title></rect>')


def _instrument_samples(samples, name: str):
    if samples is None or not len(samples.ts):
        return None
    sel = np.flatnonzero(np.asarray(samples.instrument) == name)
    if not sel.size:
        return None
    order = sel[np.argsort(samples.ts[sel], kind="stable")]
    return _Series(samples.ts[order], samples.stats[order])


@dataclass(frozen=True, slots=True)
class _Series:
    ts: np.ndarray
    stats: np.ndarray


def _gaps(s: _Series, gap_ns: float, axis: _Axis) -> list[tuple[float, float]]:
    """Pixel spans with no trading: longer than the session-break gap, and before/after the data."""
    out = []
    if s.ts[0] > axis.lo:
        out.append((float(axis.x(axis.lo)), float(axis.x(s.ts[0]))))
    d = np.diff(s.ts)
    for i in np.flatnonzero(d > gap_ns):
        out.append((float(axis.x(s.ts[i])), float(axis.x(s.ts[i + 1]))))
    if s.ts[-1] < axis.hi:
        out.append((float(axis.x(s.ts[-1])), float(axis.x(axis.hi))))
    return [(a, b) for a, b in out if b - a >= 0.5]


def _segments(ts: np.ndarray, max_gap_ns: float) -> list[slice]:
    """Index ranges between session gaps (lines are not drawn across a gap)."""
    cut = np.flatnonzero(np.diff(ts) > max_gap_ns) + 1
    edges = [0, *cut.tolist(), len(ts)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _columns(x: np.ndarray, v: np.ndarray):
    """The finite points, and the index where each pixel column's run of points starts."""
    ok = np.isfinite(v)
    x, v = x[ok], v[ok]
    col = ((x - _LEFT) / (_PLOT / _COLUMNS)).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]]) if len(x) else np.zeros(0, np.int64)
    return x, v, starts


def _envelope(x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A line through each pixel column's minimum and maximum (min-max decimation keeps every extreme)."""
    x, v, starts = _columns(x, v)
    if len(x) <= 2 * _COLUMNS:
        return x, v
    xs = np.repeat(np.add.reduceat(x, starts) / np.diff(np.r_[starts, len(x)]), 2)
    ys = np.column_stack([np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)]).ravel()
    return xs, ys


def _mean_line(x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel column's mean: a smooth line for slow statistics."""
    x, v, starts = _columns(x, v)
    if len(x) <= _COLUMNS:
        return x, v
    n = np.diff(np.r_[starts, len(x)])
    return np.add.reduceat(x, starts) / n, np.add.reduceat(v, starts) / n


def _band_area(x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pixel column's (x, min, max): a haze for a fast, noisy statistic."""
    x, v, starts = _columns(x, v)
    if not len(x):
        return x, v, v
    n = np.diff(np.r_[starts, len(x)])
    return np.add.reduceat(x, starts) / n, np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)


def _polyline(x: np.ndarray, y: np.ndarray, colour: str, width: float = 1.2) -> str:
    if len(x) == 0:
        return ""
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x.tolist(), y.tolist()))
    return f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="{width}" stroke-linejoin="round"/>'


def _price_panel(s: _Series, axis: _Axis, y0: float, h: float, st: InstrumentState, gap_ns: float) -> str:
    price = s.stats[:, _COL["last_price"]]
    fin = price[np.isfinite(price)]
    if not fin.size:
        return ""
    lo, hi = float(fin.min()), float(fin.max())
    pad = (hi - lo) * 0.06 or abs(hi) * 0.001 or 1.0
    lo, hi = lo - pad, hi + pad

    def yv(v):
        return y0 + h - (v - lo) / (hi - lo) * h

    out = [f'<rect x="{_LEFT}" y="{y0}" width="{_PLOT}" height="{h}" fill="none" stroke="#e2e8f0"/>']
    for v in np.linspace(lo + pad, hi - pad, 4):
        out.append(f'<text x="{_LEFT - 6}" y="{yv(v) + 4:.1f}" text-anchor="end">{_fmt(v, hi - lo)}</text>')
        out.append(f'<line x1="{_LEFT}" x2="{_LEFT + _PLOT}" y1="{yv(v):.1f}" y2="{yv(v):.1f}" stroke="#f1f5f9"/>')
    what = "yield" if st.invert else "price"
    out.append(f'<text x="{_LEFT + 4}" y="{y0 + 12}" style="font-weight:600">{what}</text>')
    x = axis.x(s.ts)
    for seg in _segments(s.ts, gap_ns):
        xs, vs = _envelope(x[seg], price[seg])
        out.append(_polyline(xs, yv(vs), "#111827", 1.3))
    return "".join(out)


def _gap_ns(s: _Series, max_gap_seconds: float) -> float:
    """A session break: silence longer than the engine's gap, and well above the sampling step."""
    typical = float(np.median(np.diff(s.ts))) if len(s.ts) > 2 else 0.0
    return max(max_gap_seconds * _NS, 3 * typical)


def _fmt(v: float, span: float) -> str:
    digits = max(0, min(6, int(np.ceil(-np.log10(span / 4))) + 1)) if span > 0 else 2
    return f"{v:.{digits}f}"


_LINE_COLOURS = ("#60a5fa", "#2563eb", "#1e3a8a", "#0d9488")
_HAZE = "#cbd5e1"


def _stat_panel(s: _Series, axis: _Axis, gap_ns: float, y0: float, h: float, title: str, series,
                thresholds, *, scale: str, haze: tuple[str, str] | None = None) -> str:
    """One statistics panel: ``haze`` drawn as a min-max band, ``series`` as lines, thresholds dashed.

    ``scale`` is ``"symmetric"`` (linear around 0, thresholds mirrored) or ``"log"`` (ratios).
    """
    names = [name for name, _ in ([haze] if haze else []) + list(series)]
    values = np.concatenate([s.stats[:, _COL[n]] for n in names])
    values = values[np.isfinite(values)]
    top_thr = max(thresholds)
    if scale == "log":
        lo, hi = np.log2(0.25), np.log2(max(4 * top_thr, 8.0))
        fwd = lambda v: np.log2(np.maximum(v, 1e-9))  # noqa: E731
    else:
        extreme = float(np.percentile(np.abs(values), 99.5)) if values.size else 0.0
        hi = max(top_thr * 1.3, min(extreme, 3 * top_thr))
        lo = -hi
        fwd = lambda v: np.asarray(v, np.float64)  # noqa: E731

    def yv(v):
        return y0 + h - (np.clip(fwd(v), lo, hi) - lo) / (hi - lo) * h

    out = [f'<rect x="{_LEFT}" y="{y0}" width="{_PLOT}" height="{h}" fill="none" stroke="#e2e8f0"/>',
           f'<text x="{_LEFT}" y="{y0 - 4}" style="font-weight:600;fill:#1f2937">{_e(title)}</text>']
    base = 1.0 if scale == "log" else 0.0
    out.append(f'<line x1="{_LEFT}" x2="{_LEFT + _PLOT}" y1="{yv(base):.1f}" y2="{yv(base):.1f}" stroke="#94a3b8"/>'
               f'<text x="{_LEFT - 6}" y="{yv(base) + 4:.1f}" text-anchor="end">{base:g}</text>')
    levels = sorted(set(thresholds))
    marks = [(v, yv(v)) for v in levels] + ([(-v, yv(-v)) for v in levels] if scale != "log" else [])
    labelled: list[float] = [float(yv(base))]
    for v, y in sorted(marks, key=lambda m: -abs(m[0])):
        out.append(f'<line x1="{_LEFT}" x2="{_LEFT + _PLOT}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#ef4444" stroke-opacity="0.6" stroke-dasharray="4 3"/>')
        if all(abs(y - other) >= 10 for other in labelled):
            labelled.append(float(y))
            out.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" style="fill:#dc2626">{v:g}</text>')
    x = axis.x(s.ts)
    segments = _segments(s.ts, gap_ns)
    if haze:
        col = s.stats[:, _COL[haze[0]]]
        for seg in segments:
            xs, vlo, vhi = _band_area(x[seg], col[seg])
            if len(xs):
                pts = np.r_[np.column_stack([xs, yv(vhi)]), np.column_stack([xs[::-1], yv(vlo)[::-1]])]
                out.append(f'<polygon points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in pts.tolist())}" '
                           f'fill="{_HAZE}" stroke="{_HAZE}" stroke-width="0.6"/>')
    for (name, _), colour in zip(series, _LINE_COLOURS):
        col = s.stats[:, _COL[name]]
        for seg in segments:
            xs, vs = _mean_line(x[seg], col[seg])
            out.append(_polyline(xs, yv(vs), colour, 1.2))
    keys = ([(_HAZE, haze[1])] if haze else []) + [(c, label) for (_, label), c in zip(series, _LINE_COLOURS)]
    lx = _LEFT + _PLOT
    for colour, label in reversed(keys):
        lx -= 26 + 6.5 * len(label)
        out.append(f'<rect x="{lx:.0f}" y="{y0 - 9}" width="12" height="4" fill="{colour}"/>'
                   f'<text x="{lx + 15:.0f}" y="{y0 - 4}">{_e(label)}</text>')
    return "".join(out)


def _alert_marker(p: Period, axis: _Axis, y0: float, h: float, st: InstrumentState) -> str:
    if p.resumed:
        return ""
    colour = KIND_COLOURS[p.kind]
    xa, xo = float(axis.x(p.start_ts)), float(axis.x(p.onset_ts))
    tip = (f"alert: {regime_words(p.kind, p.side, st.invert)} at {when(p.start_ts)} "
           f"(onset {when(p.onset_ts)}), score {p.score:.1f}")
    return (f'<g class="alert" data-kind="{p.kind}" data-side="{p.side}"><title>{_e(tip)}</title>'
            f'<line x1="{xo:.1f}" x2="{xo:.1f}" y1="{y0}" y2="{y0 + h}" stroke="{colour}" stroke-dasharray="2 2"/>'
            f'<line x1="{xa:.1f}" x2="{xa:.1f}" y1="{y0}" y2="{y0 + h}" stroke="{colour}" stroke-width="1.5"/>'
            f'<path d="M{xa - 6:.1f},{y0 - 1} L{xa + 6:.1f},{y0 - 1} L{xa:.1f},{y0 + 9} Z" fill="{colour}"/></g>')
