"""The HTML report and the text summary, from hand-built data."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from signals.engine import STAT_NAMES, Samples
from signals.report import (InstrumentState, ReportData, duration, periods_of, regime_words, render_html,
                            render_text, verdict, when)
from signals.scenarios import Label

H = 3600 * 10**9
T0 = 1_747_699_200 * 10**9  # Tue 20 May 2025 00:00 UTC
VOID = {"meta", "br", "img", "input", "link", "hr", "area", "base", "col", "embed", "source", "track", "wbr"}


def transition(event, instrument, kind, side, ts, onset_ts, score=4.8, id_=None):
    return {"id": id_ or f"{abs(hash((instrument, kind, side, onset_ts))):016x}"[:16], "event": event,
            "instrument": instrument, "kind": kind, "side": side, "ts": ts, "onset_ts": onset_ts,
            "score": score, "evidence": {}}


@pytest.fixture
def data():
    """Three instruments over two days: a yield in a steady sell, a dollar burst that exited and
    resumed, a quiet control; 1-minute samples with an overnight gap; labels."""
    trs = [
        transition("enter", "DXY", "burst", "sell", T0 + 2 * H, T0 + 2 * H - 60 * 10**9, 3.1, "b" * 16),
        transition("exit", "DXY", "burst", "sell", T0 + 3 * H, T0 + 2 * H - 60 * 10**9, 0.0, "b" * 16),
        transition("enter", "UST10Y", "steady_flow", "sell", T0 + 16 * H, T0 + 14 * H, 4.8, "a" * 16),
        transition("resume", "DXY", "burst", "sell", T0 + 20 * H, T0 + 2 * H - 60 * 10**9, 2.0, "b" * 16),
        transition("exit", "DXY", "burst", "sell", T0 + 21 * H, T0 + 2 * H - 60 * 10**9, 0.0, "b" * 16),
    ]
    states = (
        InstrumentState(name="BUND", first_ts=T0, last_ts=T0 + 40 * H, ticks=10),
        InstrumentState(name="DXY", first_ts=T0, last_ts=T0 + 40 * H, ticks=20),
        InstrumentState(name="UST10Y", first_ts=T0, last_ts=T0 + 40 * H, regime="steady_flow", side="sell",
                        onset_ts=T0 + 14 * H, score=4.8, ticks=30, invert=True),
    )
    ts = T0 + np.arange(0, 40 * 60) * 60 * 10**9
    ts = ts[(ts < T0 + 22 * H) | (ts > T0 + 30 * H)]  # closed overnight
    names = np.repeat(np.array(["BUND", "DXY", "UST10Y"], dtype=object), len(ts))
    rng = np.random.default_rng(0)
    stats = rng.normal(size=(len(names), len(STAT_NAMES)))
    stats[:, STAT_NAMES.index("last_price")] = 100 + np.cumsum(rng.normal(size=len(names))) * 0.01
    samples = Samples(names, np.tile(ts, 3), stats, np.zeros(len(names), np.int8), np.zeros(len(names), np.int8))
    labels = (Label(instrument="UST10Y", kind="steady_flow", side="sell", start_ts=T0 + 13 * H, end_ts=T0 + 40 * H),
              Label(instrument="BUND", kind="control", side="", start_ts=T0, end_ts=T0 + 10 * H, style="null_day"))
    return ReportData(title="test <report>", source="tape.csv", states=states, transitions=tuple(trs),
                      samples=samples, labels=labels, rows=1000, accepted=997,
                      reasons={"bad_price": 2, "malformed": 1}, bad_lines=((7, "malformed"), (9, "bad_price"),
                                                                          (12, "bad_price")))


class Checker(HTMLParser):
    """Checks nesting and collects what the tests look at."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors = [], []
        self.sections, self.alerts, self.urls, self.polylines = [], [], [], []
        self.text = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "g" and a.get("class") == "alert":
            self.alerts.append((a["data-kind"], a["data-side"]))
        if tag == "polyline":
            self.polylines.append(len(a["points"].split()))
        self.urls += [v for k, v in attrs if k in ("href", "src", "xlink:href") and v and not v.startswith("#")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, d):
        self.text.append(d)


def parse(page: str) -> Checker:
    c = Checker()
    c.feed(page)
    c.close()
    assert not c.errors and not c.stack, (c.errors, c.stack)
    return c


def test_html_is_well_formed_with_one_section_per_instrument(data):
    page = render_html(data)
    c = parse(page)
    assert sorted(c.sections) == ["i-BUND", "i-DXY", "i-UST10Y"]
    assert "test &lt;report&gt;" in page


def test_alert_markers_one_per_entry(data):
    c = parse(render_html(data))
    assert sorted(c.alerts) == [("burst", "sell"), ("steady_flow", "sell")]


def test_no_external_references_or_scripts(data):
    page = render_html(data)
    c = parse(page)
    assert c.urls == []
    assert "<script" not in page and "url(" not in page and "@import" not in page
    assert not re.search(r"(?:https?:)?//[a-z]", page.replace("http://www.w3.org", ""))


def test_verdict_strip_comes_first_and_says_what_since_when(data):
    page = render_html(data)
    text = " ".join(parse(page).text)
    first = text.index("steady selling (yield rising) since Tue 20 May 14:00 UTC, score 4.8")
    assert first < text.index("Regimes over the tape")
    assert "quiet now; last momentum burst, selling Tue 20 May 01:59 UTC – Tue 20 May 21:00 UTC" in text
    assert "quiet, no regime on this tape" in text
    # the active instrument comes first
    assert page.index('href="#i-UST10Y"') < page.index('href="#i-BUND"')
    assert "yield (inverted" in page


def test_charts_are_downsampled(data):
    c = parse(render_html(data))
    # 2,400 one-minute samples per instrument; no line is drawn with more than ~2 points per pixel
    assert c.polylines and max(c.polylines) <= 2 * 1100


def test_envelope_keeps_the_extremes(data):
    s = data.samples
    col = STAT_NAMES.index("last_price")
    sel = np.flatnonzero(s.instrument == "BUND")
    s.stats[sel[1234], col] = 150.0   # a spike must survive downsampling
    page = render_html(data)
    section = page[page.index('id="i-BUND"'):]
    price_line = re.search(r'<polyline points="([^"]+)" fill="none" stroke="#111827"', section).group(1)
    ys = [float(p.split(",")[1]) for p in price_line.split()]
    assert min(ys) < 60  # the spike reaches the top of the price panel


def test_names_are_escaped(data):
    weird = InstrumentState(name='A<&>"B', last_ts=T0 + H, first_ts=T0)
    page = render_html(ReportData(title="t", source="s", states=(weird,)))
    c = parse(page)
    assert 'A<&>"B' not in page and 'A&lt;&amp;&gt;&quot;B' in page and len(c.sections) == 1


def test_report_without_samples_or_transitions():
    st = InstrumentState(name="X", last_ts=T0 + H, first_ts=T0)
    c = parse(render_html(ReportData(title="t", source="s", states=(st,))))
    assert c.sections == ["i-X"] and c.alerts == []


def test_periods_pair_entries_exits_and_resumes(data):
    ps = periods_of(data.transitions)
    dxy = ps["DXY"]
    assert [(p.start_ts, p.end_ts, p.resumed) for p in dxy] == [(T0 + 2 * H, T0 + 3 * H, False),
                                                               (T0 + 20 * H, T0 + 21 * H, True)]
    assert ps["UST10Y"][0].end_ts is None and ps["UST10Y"][0].onset_ts == T0 + 14 * H


def test_text_summary(data):
    text = render_text(data)
    lines = {ln.split()[0]: ln for ln in text.splitlines() if ln.split()}
    assert "burst sell ×1" in lines["DXY"] and "burst 2h 00m" in lines["DXY"]
    assert "steady sell ×1" in lines["UST10Y"] and "steady 1d 00h" in lines["UST10Y"]
    assert lines["BUND"].split()[1:3] == ["-", "-"]
    assert "rejected rows: bad_price 2 (line 9, 12); malformed 1 (line 7)" in text
    assert text.startswith("tape.csv: 1,000 rows, 997 accepted, 3 rejected, 3 instruments")


def test_words():
    assert when(T0 + 14 * H) == "Tue 20 May 14:00 UTC"
    assert [duration(s) for s in (40, 14 * 60, 5 * 3600 + 720, 2 * 86400 + 3 * 3600)] == [
        "40s", "14m", "5h 12m", "2d 03h"]
    assert regime_words("deleveraging", "sell") == "deleveraging, selling"
    assert regime_words("steady_flow", "buy", invert=True) == "steady buying (yield falling)"
    st = InstrumentState(name="UST10Y", last_ts=0, regime="burst", side="buy", onset_ts=T0, score=2.0)
    assert verdict(st, []) == "UST10Y — momentum burst, buying since Tue 20 May 00:00 UTC, score 2.0"
