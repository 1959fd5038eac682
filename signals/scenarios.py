"""Labelled synthetic tick tapes: a realistic null process plus known flow episodes.

The null process (what a market looks like when nobody is working a large order):

* **trading hours** in the instrument's time zone: equity-style sessions (with a lunch break where
  the exchange has one) or around-the-clock trading from Sunday evening to Friday, with a daily
  maintenance break for futures; nothing trades while closed and the price **gaps** at each reopening
  (a Student-t gap return whose variance grows with the closed time);
* **volatility clustering**: two log-AR(1) stochastic-volatility factors on the minute grid
  (time scales of one trading day and of 30 minutes); activity follows volatility;
* **fat tails**: each minute's variance is scaled by an inverse-gamma mixing variable, so
  one-minute returns are Student-t with ``DF`` degrees of freedom given the volatility;
* **intraday seasonality**: U-shaped volatility, trade rate and trade size over the main session,
  lower levels outside it;
* **order signs with long memory** (Lillo-Mike-Farmer): trades are split from a few concurrent
  metaorders with Pareto lengths (tail exponent ``SIGN_ALPHA``), so the sign autocorrelation
  decays like a power law; prices respond only to the unpredictable part of each sign, which keeps
  returns uncorrelated while order flow and returns are correlated;
* **bid-ask bounce**: trades print at the bid or the ask around a latent mid on the tick grid;
  the aggressor side is published for some instruments and left empty for others.

Episodes, each with a :class:`Label`:

* ``steady_flow``: a TWAP parent order worked over the same hours for one or several sessions; a
  constant drift of 1.5-5 hourly standard deviations per hour in normal or low volatility, no
  jumps; the children either take liquidity (aggressive: extra aggressor flow on the parent's side)
  or rest in the book (passive: the aggressors are on the *other* side, the price still drifts the
  parent's way);
* ``burst``: a news jump of several local one-minute standard deviations followed by a Hawkes
  (self-exciting) cascade of mostly same-side trades, with momentum, for about 10 s to 3 min;
* ``deleveraging``: 20 min to 3 h of strongly one-sided flow with volatility 3-6 times normal and a
  move of 1.5-8 daily standard deviations;
* controls that should not alert (``kind="control"``): ``quiet_day``, ``vol_spike`` (volatility and
  activity surge, no drift), ``news_day`` (several news events with two-sided flow and small jumps)
  and ``null_day`` (a day with nothing but the null process).

Sides are those of the asset: for an ``invert`` instrument (a yield) a ``sell`` episode makes the
quoted value rise. Everything is deterministic per seed; an instrument's tape depends only on the
seed and its own name and episodes, not on the other instruments.

Examples
--------
>>> sc = generate(seed=1, instruments=["BUND"], days=1, rates={})
>>> sc.ticks.instruments, sc.instrument_days, [lb.style for lb in sc.labels]
(('BUND',), 1.0, ['null_day'])
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from numba import njit

from .config import _DAYS, _HHMM, Calendar, EngineConfig, InstrumentConfig
from .errors import ConfigError
from .ticks import TickBatch, parse_ts

#: Student-t degrees of freedom of one-minute (and gap) returns.
DF = 4.0
#: Tail exponent of metaorder lengths (sign autocorrelation decays like lag ** (1 - SIGN_ALPHA)).
SIGN_ALPHA = 1.5
#: Concurrent metaorders in the sign model.
SIGN_SLOTS = 5
#: Longest metaorder, in trades.
SIGN_MAX_LEN = 20_000
#: Share of the price variance carried by the unpredictable part of order signs (impact).
IMPACT_SHARE = 0.2
#: Overnight variance per closed minute, as a share of an average open minute's variance.
GAP_VARIANCE_PER_MINUTE = 0.06

EPISODE_KINDS = ("steady_flow", "burst", "deleveraging")
CONTROL_KINDS = ("quiet_day", "vol_spike", "news_day")
SIDES = ("sell", "buy")

#: Random episodes per instrument and trading day when ``generate`` places them itself.
DEFAULT_RATES: Mapping[str, float] = {
    "steady_flow": 0.2, "burst": 0.6, "deleveraging": 0.06,
    "quiet_day": 0.05, "vol_spike": 0.1, "news_day": 0.05,
}
#: Rates for control-only tapes (false-alarm calibration).
NULL_RATES: Mapping[str, float] = {"quiet_day": 0.15, "vol_spike": 0.25, "news_day": 0.15}

_NS = 1_000_000_000
_MIN_NS = 60 * _NS
# Reserved time around an episode (before, after) in seconds: nothing else is placed there.
_MARGIN = {"steady_flow": (3600, 7200), "deleveraging": (3600, 7200), "burst": (900, 1800),
           "vol_spike": (3600, 3600), "quiet_day": (3600, 3600), "news_day": (3600, 3600)}


def _minute(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


@dataclass(frozen=True, kw_only=True, slots=True)
class InstrumentSpec:
    """How one synthetic instrument trades.

    Parameters
    ----------
    name : str
        Instrument name written to the tape.
    price : float
        Starting price (or yield, for ``invert`` instruments).
    daily_vol : float
        Standard deviation of the log price over one trading day of open hours.
    tick : float
        Price grid; trades print at a multiple of it.
    rate : float
        Mean trades per second over open hours (before episodes).
    tz : str
        IANA time zone of ``hours``, ``main`` and ``breaks``.
    hours : tuple of str
        Open and close, ``HH:MM`` local. ``open >= close`` means the session opens the evening
        before (around-the-clock trading; weekends stay closed).
    main : tuple of str, optional
        The main session where activity and volatility are U-shaped; default ``hours``.
    breaks : tuple of (str, str)
        Closed periods inside the session, e.g. a lunch break.
    spread_ticks : int
        Quoted spread in ticks in normal conditions.
    lot : float
        Size unit; trade sizes are whole multiples of it.
    mean_lots : float
        Median trade size in lots at the seasonal mean.
    aggressor : bool
        Publish the aggressor side; if false the side column is empty.
    invert : bool
        The price is a yield: a rising value means the asset is being sold. Yields carry no
        aggressor side (a ``B`` would be ambiguous).
    """

    name: str
    price: float
    daily_vol: float
    tick: float
    rate: float
    tz: str
    hours: tuple[str, str]
    main: tuple[str, str] | None = None
    breaks: tuple[tuple[str, str], ...] = ()
    spread_ticks: int = 1
    lot: float = 1.0
    mean_lots: float = 3.0
    aggressor: bool = True
    invert: bool = False

    def __post_init__(self):
        if not self.name or not self.name.strip():
            raise ConfigError("instrument name must be a non-empty string")
        for key in ("price", "daily_vol", "tick", "rate", "lot", "mean_lots"):
            v = getattr(self, key)
            if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
                raise ConfigError(f"instrument {self.name}: {key} must be a number > 0, got {v!r}")
        if self.tick >= self.price:
            raise ConfigError(f"instrument {self.name}: tick {self.tick} must be smaller than price {self.price}")
        if not (isinstance(self.spread_ticks, int) and self.spread_ticks >= 1):
            raise ConfigError(f"instrument {self.name}: spread_ticks must be an integer >= 1, got {self.spread_ticks!r}")
        Calendar(tz=self.tz)  # validates the zone
        for what, pair in (("hours", self.hours), ("main", self.main), *(("breaks", b) for b in self.breaks)):
            if pair is None:
                continue
            if len(pair) != 2 or not all(isinstance(t, str) and _HHMM.match(t) for t in pair):
                raise ConfigError(f"instrument {self.name}: {what} must be two 'HH:MM' times, got {pair!r}")
        if self.main is not None and _minute(self.main[0]) >= _minute(self.main[1]):
            raise ConfigError(f"instrument {self.name}: main session {self.main} must open before it closes")
        if self.invert and self.aggressor:
            raise ConfigError(f"instrument {self.name}: an invert (yield) instrument cannot publish an aggressor side; set aggressor=False")

    @property
    def calendar(self) -> Calendar:
        """The engine calendar: the session for day-session instruments, 24h otherwise."""
        if _minute(self.hours[0]) >= _minute(self.hours[1]):
            return Calendar(tz=self.tz)
        return Calendar(tz=self.tz, open=self.hours[0], close=self.hours[1], days=(0, 1, 2, 3, 4))


#: Built-in instruments. ``generate(instruments=N)`` takes the first N (then repeats with suffixes).
CATALOGUE: Mapping[str, InstrumentSpec] = {s.name: s for s in (
    InstrumentSpec(name="DXY", price=100.9, daily_vol=0.005, tick=0.005, rate=0.5, tz="America/New_York",
                   hours=("18:00", "17:00"), main=("08:00", "17:00"), mean_lots=2.0),
    InstrumentSpec(name="UST10Y", price=4.45, daily_vol=0.0135, tick=0.001, rate=0.5, tz="America/New_York",
                   hours=("18:00", "17:00"), main=("08:20", "15:00"), lot=1.0, mean_lots=10.0,
                   aggressor=False, invert=True),
    InstrumentSpec(name="USDJPY", price=144.5, daily_vol=0.0065, tick=0.005, rate=0.5, tz="America/New_York",
                   hours=("17:00", "17:00"), main=("03:00", "12:00"), lot=1.0, mean_lots=2.0),
    InstrumentSpec(name="BUND", price=130.5, daily_vol=0.004, tick=0.01, rate=0.6, tz="Europe/Berlin",
                   hours=("08:00", "22:00"), main=("09:00", "17:30"), mean_lots=5.0, aggressor=False),
    InstrumentSpec(name="CSI300ETF", price=3.95, daily_vol=0.011, tick=0.001, rate=1.2, tz="Asia/Shanghai",
                   hours=("09:30", "15:00"), breaks=(("11:30", "13:00"),), lot=100.0, mean_lots=50.0),
    InstrumentSpec(name="SPY", price=590.0, daily_vol=0.01, tick=0.01, rate=2.0, tz="America/New_York",
                   hours=("09:30", "16:00"), lot=1.0, mean_lots=100.0),
    InstrumentSpec(name="EURUSD", price=1.125, daily_vol=0.005, tick=0.00005, rate=0.6, tz="America/New_York",
                   hours=("17:00", "17:00"), main=("03:00", "12:00"), mean_lots=1.0, aggressor=False),
    InstrumentSpec(name="UST2Y", price=3.95, daily_vol=0.015, tick=0.001, rate=0.5, tz="America/New_York",
                   hours=("18:00", "17:00"), main=("08:20", "15:00"), mean_lots=20.0, aggressor=False, invert=True),
    InstrumentSpec(name="JGB10Y", price=1.52, daily_vol=0.02, tick=0.0005, rate=0.8, tz="Asia/Tokyo",
                   hours=("08:45", "15:00"), breaks=(("11:00", "12:30"),), mean_lots=10.0, aggressor=False, invert=True),
)}


@dataclass(frozen=True, kw_only=True, slots=True)
class Episode:
    """An episode placed by hand (``generate(episodes=...)``).

    Parameters
    ----------
    instrument : str
        Name of one of the generated instruments.
    kind : str
        ``steady_flow``, ``burst``, ``deleveraging``, or a control: ``quiet_day``, ``vol_spike``,
        ``news_day``.
    start : str or int
        ISO-8601 time with offset, or ns since the epoch. Whole-day controls take the trading day
        that contains it.
    side : str
        ``sell`` or ``buy`` for the three flow kinds (the asset's side), empty for controls.
    minutes : float, optional
        Duration: of each session's working window (``steady_flow``), of the cascade's time scale
        (``burst``), of the episode (``deleveraging``, ``vol_spike``). Drawn at random if omitted.
    sessions : int
        ``steady_flow`` only: the parent works the same hours on this many consecutive sessions.
    strength : float, optional
        ``steady_flow``: hourly drift in hourly standard deviations; ``burst``: jump in local
        one-minute standard deviations; ``deleveraging``: total move in daily standard deviations;
        ``vol_spike`` and ``quiet_day``: volatility multiple; ``news_day``: number of news events.
        Drawn at random if omitted.
    style : str
        ``steady_flow`` only: ``aggressive`` or ``passive`` (empty: drawn at random).
    """

    instrument: str
    kind: str
    start: str | int
    side: str = ""
    minutes: float | None = None
    sessions: int = 1
    strength: float | None = None
    style: str = ""

    def __post_init__(self):
        if self.kind not in EPISODE_KINDS + CONTROL_KINDS:
            raise ConfigError(f"episode kind {self.kind!r} is unknown; use one of {', '.join(EPISODE_KINDS + CONTROL_KINDS)}")
        if self.kind in EPISODE_KINDS and self.side not in SIDES:
            raise ConfigError(f"episode {self.kind} on {self.instrument} needs side 'sell' or 'buy', got {self.side!r}")
        if self.kind in CONTROL_KINDS and self.side:
            raise ConfigError(f"control {self.kind} on {self.instrument} takes no side, got {self.side!r}")
        if self.style not in ("", "aggressive", "passive"):
            raise ConfigError(f"episode style must be 'aggressive' or 'passive', got {self.style!r}")
        if not (isinstance(self.sessions, int) and self.sessions >= 1):
            raise ConfigError(f"episode sessions must be an integer >= 1, got {self.sessions!r}")
        for key in ("minutes", "strength"):
            v = getattr(self, key)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise ConfigError(f"episode {key} must be > 0, got {v!r}")

    @property
    def start_ns(self) -> int:
        if isinstance(self.start, (int, np.integer)):
            return int(self.start)
        ts, ok = parse_ts([self.start])
        if not ok[0]:
            raise ConfigError(f"episode start {self.start!r} is not ISO-8601 with an offset, e.g. '2025-05-20T09:00:00-04:00'")
        return int(ts[0])


@dataclass(frozen=True, kw_only=True, slots=True)
class Label:
    """What really happened on one instrument over ``[start_ts, end_ts]`` (ns, UTC).

    ``kind`` is one of ``steady_flow``, ``burst``, ``deleveraging`` or ``control``; ``side`` is
    ``sell``/``buy`` (empty for controls); ``style`` is ``aggressive``/``passive`` for steady flow
    and the control's type for controls; ``strength`` is in the units of :class:`Episode`;
    ``hours`` is, for steady flow, the open hours the parent order works, summed over its
    sessions (its expected whole-episode drift t-statistic is ``strength * sqrt(hours)``).
    """

    instrument: str
    kind: str
    side: str
    start_ts: int
    end_ts: int
    style: str = ""
    strength: float = 0.0
    hours: float = 0.0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["start_time"] = _iso(self.start_ts)
        d["end_time"] = _iso(self.end_ts)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "Label":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A generated tape with its labels.

    Attributes
    ----------
    ticks : TickBatch
        All instruments, sorted by ``ts``.
    labels : tuple of Label
        Episodes and controls, sorted by instrument then start.
    instrument_days : float
        Trading days summed over instruments (the denominator of false-alarm rates).
    config : EngineConfig
        Per-instrument ``invert`` and calendar for the engine.
    specs : tuple of InstrumentSpec
    start_ts, end_ts : int
        The generated time range, ns.
    """

    ticks: TickBatch
    labels: tuple[Label, ...]
    instrument_days: float
    config: EngineConfig
    specs: tuple[InstrumentSpec, ...]
    start_ts: int
    end_ts: int

    def thinned(self, factor: float, *, seed: int = 0) -> "Scenario":
        """The same market seen by a sparser feed: each tick kept with probability ``1 / factor``.

        Labels, calendars and instrument-days are unchanged; a detector should lose recall on a
        thin tape (there is less evidence), not precision.
        """
        if not factor >= 1:
            raise ValueError(f"thinning factor must be >= 1, got {factor}")
        keep = np.random.default_rng(seed).random(len(self.ticks)) < 1.0 / factor
        return dataclasses.replace(self, ticks=self.ticks.select(keep))

    def write_csv(self, path: str | Path) -> None:
        """Header ``instrument,ts,price,size,side``; ts in int ns; side ``B``, ``S`` or empty."""
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write("instrument,ts,price,size,side\n")
            for lo in range(0, len(self.ticks), 200_000):
                name, ts, price, size, side = self._text_columns(slice(lo, lo + 200_000))
                f.write("".join(f"{a},{b},{c},{d},{e}\n" for a, b, c, d, e in zip(name, ts, price, size, side)))

    def write_jsonl(self, path: str | Path) -> None:
        """One JSON object per tick with the same fields as the CSV (side omitted when unknown)."""
        with open(path, "wb") as f:
            for lo in range(0, len(self.ticks), 200_000):
                name, ts, price, size, side = self._text_columns(slice(lo, lo + 200_000))
                f.write(b"".join(
                    b'{"instrument":"%s","ts":%s,"price":%s,"size":%s%s}\n' % (
                        a.encode(), b.encode(), c.encode(), d.encode(), (b',"side":"%s"' % e.encode()) if e else b"")
                    for a, b, c, d, e in zip(name, ts, price, size, side)))

    def write_labels(self, path: str | Path) -> None:
        """JSON lines: a first ``{"meta": {...}}`` line (instrument_days, range), then one label per line."""
        meta = {"meta": {"instrument_days": self.instrument_days, "start_ts": self.start_ts, "end_ts": self.end_ts,
                         "instruments": [s.name for s in self.specs]}}
        with open(path, "wb") as f:
            f.write(orjson.dumps(meta) + b"\n")
            for lb in self.labels:
                f.write(orjson.dumps(lb.to_dict()) + b"\n")

    def write_config(self, path: str | Path) -> None:
        """The engine config as TOML (the layout of :mod:`signals.config`), for ``tapewatch replay --config``."""
        lines = []
        for name, ic in self.config.instruments.items():
            cal = ic.calendar
            table = "\"24h\"" if cal.is_24h and cal.tz == "UTC" else "{ " + ", ".join(
                [f'tz = "{cal.tz}"'] + ([] if cal.is_24h else [f'open = "{cal.open}"', f'close = "{cal.close}"'])
                + ([] if len(cal.days) == 7 else [f'days = "{",".join(_DAYS[d] for d in cal.days)}"'])) + " }"
            lines += [f"[instruments.{name}]", f"invert = {str(ic.invert).lower()}",
                      f"watch = {str(ic.watch).lower()}", f"calendar = {table}", ""]
        Path(path).write_text("\n".join(lines), encoding="utf-8")

    def _text_columns(self, rows: slice):
        t = self.ticks
        decimals = np.array([_decimals(s.tick) for s in self.specs])
        by_name = {s.name: i for i, s in enumerate(self.specs)}
        dec = decimals[np.array([by_name[n] for n in t.instruments])][t.code[rows]]
        names = np.asarray(t.instruments, dtype=object)[t.code[rows]]
        prices = [f"{p:.{d}f}" for p, d in zip(t.price[rows].tolist(), dec.tolist())]
        sizes = [f"{s:g}" for s in t.size[rows].tolist()]
        sides = np.array(["", "B", "S"], dtype=object)[t.side[rows]]    # index -1 -> "S"
        return names, t.ts[rows].astype(str), prices, sizes, sides


# --------------------------------------------------------------------------------------------
# public entry points


def generate(*, seed: int, instruments: int | Sequence[str | InstrumentSpec] = 6, days: int = 5,
             start: str = "2025-04-07", rates: Mapping[str, float] | None = None,
             episodes: Sequence[Episode] = (), watch: bool = False, tick_scale: float = 1.0) -> Scenario:
    """Generate a labelled tape.

    Parameters
    ----------
    seed : int
        Everything is a function of the seed (and of the other arguments).
    instruments : int or sequence of str / InstrumentSpec
        A count takes the first instruments of :data:`CATALOGUE` (with a suffix when more are asked
        for) and varies their volatility, tick rate and price level with the seed; names take the
        catalogue entries as they are; specs are used as given.
    days : int
        Trading days (Monday to Friday) from ``start``; a weekend start moves to Monday.
    start : str
        First calendar date, ``YYYY-MM-DD``.
    rates : mapping, optional
        Randomly placed episodes and controls per instrument and trading day, by kind (keys of
        :data:`DEFAULT_RATES`). Default: :data:`DEFAULT_RATES` when no ``episodes`` are given, none
        otherwise.
    episodes : sequence of Episode
        Episodes placed by hand (random ones are placed around them).
    watch : bool
        Mark every instrument ``watch = true`` in the returned config.
    tick_scale : float
        Multiply every instrument's tick size: the same market on a coarser price grid (at 5 a
        tick is about two one-minute standard deviations, as on a Treasury future). Labels do
        not change.

    Returns
    -------
    Scenario
    """
    if not (isinstance(days, int) and days >= 1):
        raise ConfigError(f"days must be an integer >= 1, got {days!r}")
    try:
        first = dt.date.fromisoformat(start)
    except (TypeError, ValueError):
        raise ConfigError(f"start {start!r} must be a date YYYY-MM-DD") from None
    rates = dict(DEFAULT_RATES if not episodes else {}) if rates is None else dict(rates)
    unknown = set(rates) - set(DEFAULT_RATES)
    if unknown:
        raise ConfigError(f"rates has unknown kinds {sorted(unknown)}; allowed: {', '.join(DEFAULT_RATES)}")
    if any(not (v >= 0) for v in rates.values()):
        raise ConfigError(f"rates must be >= 0 per instrument-day, got {rates}")
    if not (isinstance(tick_scale, (int, float)) and tick_scale > 0):
        raise ConfigError(f"tick_scale must be a number > 0, got {tick_scale!r}")
    specs = _resolve_instruments(instruments, seed)
    if tick_scale != 1:
        specs = [dataclasses.replace(s, tick=s.tick * tick_scale) for s in specs]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"instrument names must be unique, got {names}")
    for ep in episodes:
        if ep.instrument not in names:
            raise ConfigError(f"episode instrument {ep.instrument!r} is not generated; instruments are {', '.join(names)}")
    while first.weekday() >= 5:
        first += dt.timedelta(days=1)
    trading_days = []
    d = first
    while len(trading_days) < days:
        if d.weekday() < 5:
            trading_days.append(d)
        d += dt.timedelta(days=1)

    parts, labels, grids = [], [], []
    for spec in specs:
        rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
        grid = _Grid(spec, trading_days)
        tape, lbs = _simulate(spec, grid, rng, [e for e in episodes if e.instrument == spec.name], rates)
        parts.append(tape)
        labels += lbs
        grids.append(grid)
    config = EngineConfig(instruments={s.name: InstrumentConfig(invert=s.invert, watch=watch, calendar=s.calendar)
                                       for s in specs})
    return Scenario(ticks=_merge(parts, names),
                    labels=tuple(sorted(labels, key=lambda lb: (lb.instrument, lb.start_ts))),
                    instrument_days=float(len(specs) * len(trading_days)), config=config, specs=tuple(specs),
                    start_ts=min(g.day_span[0][0] for g in grids), end_ts=max(g.day_span[-1][1] for g in grids))


def demo_scenario(*, seed: int = 7) -> Scenario:
    """The built-in demo: Mon 19 - Fri 23 May 2025, modelled on the strategist's note.

    * ``UST10Y`` (a yield): Treasuries sold like a TWAP over US hours Tuesday to Thursday (the yield
      grinds up quietly), a selling burst on Monday morning (after the rating downgrade) and a
      buying burst on Friday 07:05 New York (the tariff post);
    * ``DXY``: April-style headline bursts both ways, a two-day quiet dollar selling over US hours
      (Tuesday, Wednesday) that takes it through 100;
    * ``USDJPY``: a deleveraging morning in Tokyo on Wednesday, like 5 August 2024 (sharp fall);
    * ``BUND``: the control: nothing but a data-release volatility spike on Thursday;
    * ``CSI300ETF``: the national team buying the ETF passively every session Monday to Thursday
      (sellers hit its bids, the price still rises).

    About 480k ticks.
    """
    specs = [dataclasses.replace(CATALOGUE["DXY"], rate=0.25),
             dataclasses.replace(CATALOGUE["UST10Y"], rate=0.25),
             dataclasses.replace(CATALOGUE["USDJPY"], rate=0.25),
             dataclasses.replace(CATALOGUE["BUND"], rate=0.25),
             dataclasses.replace(CATALOGUE["CSI300ETF"], rate=0.7)]
    ny, sh, tk, de = "-04:00", "+08:00", "+09:00", "+02:00"
    episodes = [
        Episode(instrument="UST10Y", kind="burst", side="sell", start=f"2025-05-19T08:31:10{ny}", minutes=1.5, strength=6.0),
        Episode(instrument="UST10Y", kind="steady_flow", side="sell", start=f"2025-05-20T10:00:00{ny}",
                minutes=240, sessions=3, strength=1.5, style="aggressive"),
        Episode(instrument="UST10Y", kind="burst", side="buy", start=f"2025-05-23T07:05:00{ny}", minutes=2.0, strength=7.0),
        Episode(instrument="DXY", kind="burst", side="sell", start=f"2025-05-19T02:12:40{ny}", minutes=1.0, strength=5.0),
        Episode(instrument="DXY", kind="burst", side="buy", start=f"2025-05-19T10:30:05{ny}", minutes=0.5, strength=6.0),
        Episode(instrument="DXY", kind="steady_flow", side="sell", start=f"2025-05-20T09:00:00{ny}",
                minutes=300, sessions=2, strength=1.5, style="aggressive"),
        Episode(instrument="DXY", kind="burst", side="buy", start=f"2025-05-22T08:30:00{ny}", minutes=0.7, strength=5.0),
        Episode(instrument="DXY", kind="burst", side="sell", start=f"2025-05-23T07:05:00{ny}", minutes=2.0, strength=8.0),
        Episode(instrument="USDJPY", kind="deleveraging", side="sell", start=f"2025-05-21T09:20:00{tk}",
                minutes=150, strength=5.0),
        Episode(instrument="BUND", kind="vol_spike", start=f"2025-05-22T10:00:00{de}", minutes=45, strength=3.0),
        Episode(instrument="CSI300ETF", kind="steady_flow", side="buy", start=f"2025-05-19T10:30:00{sh}",
                minutes=210, sessions=4, strength=2.5, style="passive"),
    ]
    return generate(seed=seed, instruments=specs, days=5, start="2025-05-19", episodes=episodes, watch=True)


# --------------------------------------------------------------------------------------------
# the trading-time grid


def _local_ns(day: dt.date, hhmm: str, tz: ZoneInfo) -> int:
    t = dt.datetime.combine(day, dt.time(int(hhmm[:2]), int(hhmm[3:])), tzinfo=tz)
    return int(t.timestamp()) * _NS


class _Grid:
    """Open minutes of one instrument: start ns, main-session position, closed time before."""

    def __init__(self, spec: InstrumentSpec, trading_days):
        tz = ZoneInfo(spec.tz)
        wrap = _minute(spec.hours[0]) >= _minute(spec.hours[1])
        main = spec.main or spec.hours
        starts, pos, first = [], [], []
        self.day_span = []       # (open ns, close ns) per trading day
        self.main_span = []      # (main open ns, main close ns) per trading day
        for day in trading_days:
            lo = _local_ns(day - dt.timedelta(days=1) if wrap else day, spec.hours[0], tz)
            hi = _local_ns(day, spec.hours[1], tz)
            m_lo, m_hi = _local_ns(day, main[0], tz), _local_ns(day, main[1], tz)
            self.day_span.append((lo, hi))
            self.main_span.append((m_lo, m_hi))
            cuts = [(lo, hi)]
            for b0, b1 in spec.breaks:
                x0, x1 = _local_ns(day, b0, tz), _local_ns(day, b1, tz)
                cuts = [piece for a, b in cuts for piece in ((a, min(b, x0)), (max(a, x1), b)) if piece[1] > piece[0]]
            for a, b in cuts:
                t = np.arange(a, b - _MIN_NS + 1, _MIN_NS, dtype=np.int64)
                starts.append(t)
                p = (t + _MIN_NS // 2 - m_lo) / (m_hi - m_lo)
                pos.append(np.where((p >= 0) & (p <= 1), p, -1.0))
                f = np.zeros(t.size, bool)
                f[0] = True
                first.append(f)
        self.start = np.concatenate(starts)
        self.pos = np.concatenate(pos)
        reopening = np.concatenate(first)
        reopening[0] = False
        # closed minutes before each minute (non-zero only at a reopening)
        closed = np.zeros(self.start.size)
        closed[1:] = (np.diff(self.start) - _MIN_NS) / _MIN_NS
        self.closed = np.where(reopening, closed, 0.0)
        self.per_day = self.start.size / len(trading_days)

    def __len__(self):
        return int(self.start.size)

    def index(self, ts: np.ndarray) -> np.ndarray:
        """Minute index of each time, -1 where the market is closed."""
        k = np.searchsorted(self.start, ts, side="right") - 1
        ok = (k >= 0) & (ts < self.start[np.maximum(k, 0)] + _MIN_NS)
        return np.where(ok, k, -1)

    def minutes(self, lo_ns: int, hi_ns: int) -> np.ndarray:
        return np.flatnonzero((self.start >= lo_ns) & (self.start < hi_ns))


def _u_shape(pos: np.ndarray, open_amp: float, close_amp: float, off: float) -> np.ndarray:
    inside = pos >= 0
    p = np.clip(pos, 0, 1)
    return np.where(inside, 1 + open_amp * np.exp(-p / 0.08) + close_amp * np.exp(-(1 - p) / 0.08), off)


# --------------------------------------------------------------------------------------------
# numba recursions


@njit(cache=True)
def _ar1(eps: np.ndarray, phi: float) -> np.ndarray:
    """x[i] = phi * x[i-1] + eps[i], started from the stationary distribution."""
    out = np.empty_like(eps)
    x = eps[0] / np.sqrt(1.0 - phi * phi)
    out[0] = x
    for i in range(1, eps.size):
        x = phi * x + eps[i]
        out[i] = x
    return out


@njit(cache=True)
def _lmf_signs(slot_u, len_u, sign_u, n_slots, alpha, max_len):
    """Lillo-Mike-Farmer signs; also the expected sign given the metaorders (for impact)."""
    n = slot_u.size
    signs = np.empty(n, np.int8)
    expect = np.empty(n, np.float64)
    rem = np.empty(n_slots, np.int64)
    sgn = np.empty(n_slots, np.int64)
    j = 0
    total = 0
    for s in range(n_slots):
        rem[s] = min(max_len, int(len_u[j] ** (-1.0 / alpha)))
        sgn[s] = 1 if sign_u[j] < 0.5 else -1
        total += sgn[s]
        j += 1
    for i in range(n):
        expect[i] = total / n_slots
        s = min(int(slot_u[i] * n_slots), n_slots - 1)
        signs[i] = sgn[s]
        rem[s] -= 1
        if rem[s] <= 0:
            total -= sgn[s]
            rem[s] = min(max_len, int(len_u[j] ** (-1.0 / alpha)))
            sgn[s] = 1 if sign_u[j] < 0.5 else -1
            total += sgn[s]
            j += 1
    return signs, expect


def _hawkes_offsets(rng, *, a0: float, tau: float, branching: float, kernel_mean: float, t_max: float) -> np.ndarray:
    """Event times (s) of a Hawkes process with exponential kernel and a decaying exogenous rate.

    Simulated by its cluster (branching) representation; always contains the news trade at 0.
    """
    mass = a0 * tau * (1 - np.exp(-t_max / tau))
    m = rng.poisson(mass)
    gen = -tau * np.log1p(-rng.random(m) * (1 - np.exp(-t_max / tau)))
    gen = np.concatenate([[0.0], gen])
    out = [gen]
    while gen.size:
        parent = np.repeat(gen, rng.poisson(branching, gen.size))
        gen = parent + rng.exponential(kernel_mean, parent.size)
        gen = gen[gen < t_max]
        out.append(gen)
    return np.sort(np.concatenate(out))


# --------------------------------------------------------------------------------------------
# simulation of one instrument


def _loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


class _Effects:
    """Per-minute modifiers and injected cascades for one instrument."""

    def __init__(self, n: int):
        self.vol = np.ones(n)
        self.act = np.ones(n)
        self.size = np.ones(n)
        self.drift = np.zeros(n)            # log price per second
        self.override_p = np.zeros(n)       # share of trades whose sign is forced
        self.override_sign = np.zeros(n, np.int8)
        self.cascades = []                  # (t0 ns, offsets s, sign prob, direction, jump, momentum, noise sd)


def _simulate(spec: InstrumentSpec, grid: _Grid, rng, episodes: list[Episode], rates: Mapping[str, float]):
    n_min = len(grid)
    # seasonality (normalised over the open minutes) and stochastic volatility
    s_vol = _u_shape(grid.pos, 1.2, 0.8, 0.5)
    s_vol /= np.sqrt(np.mean(s_vol ** 2))
    s_act = _u_shape(grid.pos, 2.0, 1.2, 0.3)
    s_act /= s_act.mean()
    s_size = _u_shape(grid.pos, 0.3, 0.8, 0.8)
    s_size /= s_size.mean()
    sd_slow, sd_fast = 0.25, 0.3
    phi_slow, phi_fast = np.exp(-1 / grid.per_day), np.exp(-1 / 30)
    h = (_ar1(rng.standard_normal(n_min) * sd_slow * np.sqrt(1 - phi_slow ** 2), phi_slow)
         + _ar1(rng.standard_normal(n_min) * sd_fast * np.sqrt(1 - phi_fast ** 2), phi_fast))
    v = sd_slow ** 2 + sd_fast ** 2
    sigma_base = spec.daily_vol / np.sqrt(grid.per_day)      # one average open minute
    sigma = sigma_base * s_vol * np.exp(h - v)                # E[sigma^2] = sigma_base^2 * s_vol^2
    lam = spec.rate * s_act * np.exp(h - v / 2)               # trades per second
    fx = _Effects(n_min)
    labels = _place(spec, grid, rng, episodes, rates, fx, sigma, lam)

    sigma_e = sigma * fx.vol
    lam_e = lam * fx.act
    # base trades: Poisson counts per open minute, uniform inside it
    counts = rng.poisson(lam_e * 60)
    k = np.repeat(np.arange(n_min), counts)
    off = rng.random(k.size) * 60
    n_base = k.size
    # cascades (bursts and news)
    c_k, c_off, c_sign, c_step = [k], [off], [np.zeros(n_base, np.int8)], [np.zeros(n_base)]
    for t0, offs, q, direction, jump, momentum, noise in fx.cascades:
        ts = t0 + (offs * _NS).astype(np.int64)
        kk = grid.index(ts)
        keep = kk >= 0
        kk, ts, offs = kk[keep], ts[keep], offs[keep]
        if not kk.size:
            continue
        sign = np.where(rng.random(kk.size) < q, direction, -direction).astype(np.int8)
        n_jump = min(kk.size, int(rng.integers(1, 4)))
        step = np.zeros(kk.size)
        step[:n_jump] = direction * jump / n_jump
        sign[:n_jump] = direction
        rest = sign[n_jump:].astype(float)
        net = max(1.0, float(direction * rest.sum()))
        step[n_jump:] = momentum / net * rest + noise * rng.standard_normal(rest.size)
        c_k.append(kk)
        c_off.append((ts - grid.start[kk]) / _NS)
        c_sign.append(sign)
        c_step.append(step)
    k = np.concatenate(c_k)
    off = np.concatenate(c_off)
    forced = np.concatenate(c_sign)
    step = np.concatenate(c_step)
    clock = k * 60.0 + off
    order = np.argsort(clock, kind="stable")
    k, off, forced, step, clock = k[order], off[order], forced[order], step[order], clock[order]
    n = k.size
    if n == 0:
        return (np.zeros(0, np.int64), np.zeros(0), np.zeros(0), np.zeros(0, np.int8)), labels

    # order signs: long-memory metaorders, then forced signs (cascades, parent orders)
    signs, expect = _lmf_signs(rng.random(n), rng.random(n + SIGN_SLOTS), rng.random(n + SIGN_SLOTS),
                               SIGN_SLOTS, SIGN_ALPHA, SIGN_MAX_LEN)
    surprise = signs - expect
    by_parent = rng.random(n) < fx.override_p[k]
    signs = np.where(by_parent, fx.override_sign[k], signs)
    cascade = forced != 0
    signs = np.where(cascade, forced, signs).astype(np.int8)
    surprise[by_parent | cascade] = 0.0

    # latent mid: diffusion with t-mixing per minute, drift, impact, gaps, cascades
    mix = (DF - 2) / rng.chisquare(DF, n_min)
    dclock = np.diff(clock, prepend=0.0)
    rate_now = np.maximum(lam_e[k], 1e-3)
    diffusion = sigma_e[k] * np.sqrt(mix[k] * dclock / 60 * (1 - IMPACT_SHARE)) * rng.standard_normal(n)
    impact = sigma_e[k] * np.sqrt(IMPACT_SHARE / (60 * rate_now * (1 - 1 / SIGN_SLOTS))) * surprise
    gap_min = np.flatnonzero(grid.closed > 0)
    gap = np.zeros(n)
    at = np.searchsorted(k, gap_min)
    ok = at < n
    tdraw = rng.standard_t(DF, gap_min.size) / np.sqrt(DF / (DF - 2))
    gap_sd = sigma_base * np.sqrt(GAP_VARIANCE_PER_MINUTE * grid.closed[gap_min])
    np.add.at(gap, at[ok], (gap_sd * tdraw)[ok])
    x = np.log(spec.price) + np.cumsum(diffusion + fx.drift[k] * dclock + impact + gap + step)
    mid = np.exp(x)

    # prices at the bid or the ask; the spread widens with volatility and in cascades
    spread = spec.spread_ticks * np.maximum(1, np.rint(np.sqrt(fx.vol[k]))) * np.where(cascade, 2, 1)
    bid = np.floor(mid / spec.tick - spread / 2)
    price = np.round((bid + (signs > 0) * spread) * spec.tick, _decimals(spec.tick))
    price = np.maximum(price, spec.tick)
    sizes = spec.lot * np.maximum(1, np.rint(np.exp(rng.normal(np.log(spec.mean_lots * s_size[k] * fx.size[k]), 1.0, n))))
    ts = grid.start[k] + np.minimum((off * _NS).astype(np.int64), _MIN_NS - 1)
    side = signs if spec.aggressor else np.zeros(n, np.int8)
    return (ts, price, sizes, side), labels


_STEADY_SESSIONS = (1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4)   # sessions a random parent order works


def _place(spec, grid: _Grid, rng, episodes, rates, fx: _Effects, sigma, lam) -> list[Label]:
    """Apply hand-placed then random episodes to ``fx``; return their labels and the null days."""
    taken: list[tuple[int, int]] = []
    labels: list[Label] = []

    def free(lo, hi, kind):
        before, after = _MARGIN[kind]
        a, b = lo - before * _NS, hi + after * _NS
        return all(b <= x or a >= y for x, y in taken), (a, b)

    for ep in episodes:
        plan = _plan(ep.kind, spec, grid, rng, ep)
        taken.append(free(plan["lo"], plan["hi"], ep.kind)[1])
        labels.append(_apply(plan, spec, grid, rng, fx, sigma, lam))
    ndays = len(grid.day_span)
    for kind in ("deleveraging", "steady_flow", "quiet_day", "news_day", "burst", "vol_spike"):
        for _ in range(rng.poisson(rates.get(kind, 0.0) * ndays)):
            for _attempt in range(40):
                plan = _plan(kind, spec, grid, rng, None)
                if plan is None:
                    continue
                ok, span = free(plan["lo"], plan["hi"], kind)
                if ok:
                    taken.append(span)
                    labels.append(_apply(plan, spec, grid, rng, fx, sigma, lam))
                    break
    for lo, hi in grid.day_span:
        if all(hi <= x or lo >= y for x, y in taken):
            labels.append(Label(instrument=spec.name, kind="control", side="", start_ts=lo, end_ts=hi, style="null_day"))
    return labels


def _day_of(grid: _Grid, ts: int, what: str) -> int:
    for i, (lo, hi) in enumerate(grid.day_span):
        if lo <= ts < hi:
            return i
    raise ConfigError(f"{what}: start {_iso(ts)} is outside the generated trading days")


def _open_window(grid: _Grid, lo: int, hi: int) -> bool:
    """True when every minute of [lo, hi) is open."""
    return grid.minutes(lo, hi).size == (hi - lo) // _MIN_NS and grid.index(np.array([lo]))[0] >= 0


def _plan(kind, spec, grid: _Grid, rng, ep: Episode | None):
    """Where and how strong an episode is: drawn at random, or completed from ``ep``."""
    ndays = len(grid.day_span)
    what = f"{kind} on {spec.name}"
    side = ep.side if ep is not None else str(rng.choice(SIDES)) if kind in EPISODE_KINDS else ""
    start = ep.start_ns if ep is not None else None
    minutes = ep.minutes if ep is not None else None
    strength = ep.strength if ep is not None else None
    plan = {"kind": kind, "side": side}
    if kind == "steady_flow":
        sessions = ep.sessions if ep is not None else int(rng.choice(_STEADY_SESSIONS))
        if start is None:
            d0 = int(rng.integers(0, ndays - sessions + 1)) if sessions <= ndays else None
            if d0 is None:
                return None
            m_lo, m_hi = grid.main_span[d0]
            length = min(_loguniform(rng, 120, 360), (m_hi - m_lo) / _MIN_NS)
            offset = int(rng.uniform(0, (m_hi - m_lo) / _MIN_NS - length)) * _MIN_NS
        else:
            d0 = _day_of(grid, start, what)
            length = minutes if minutes is not None else _loguniform(rng, 120, 360)
            offset = start - grid.main_span[d0][0]
        windows = []
        for d in range(d0, min(ndays, d0 + sessions)):
            lo = grid.main_span[d][0] + offset
            idx = grid.minutes(lo, lo + int(length) * _MIN_NS)     # trimmed to open minutes
            if idx.size:
                windows.append((int(grid.start[idx[0]]), int(grid.start[idx[-1]]) + _MIN_NS))
        if not windows or (ep is None and min(grid.minutes(a, b).size for a, b in windows) < 90):
            if ep is not None:
                raise ConfigError(f"{what}: the window starting {_iso(start)} has no open minutes")
            return None
        plan.update(windows=windows, lo=windows[0][0], hi=windows[-1][1],
                    style=(ep.style if ep is not None and ep.style else str(rng.choice(("aggressive", "passive")))),
                    strength=strength if strength is not None else _loguniform(rng, 1.5, 5.0))
        return plan
    if kind == "burst":
        if start is None:
            d = int(rng.integers(0, ndays))
            lo, hi = grid.main_span[d] if rng.random() < 0.8 else grid.day_span[d]
            start = int(rng.integers(lo, hi))
        if grid.index(np.array([start]))[0] < 0:
            if ep is not None:
                raise ConfigError(f"{what}: start {_iso(start)} is outside trading hours")
            return None
        seconds = minutes * 60 if minutes is not None else _loguniform(rng, 10, 180)
        plan.update(lo=start, hi=start + int(seconds * _NS), seconds=seconds,
                    strength=strength if strength is not None else _loguniform(rng, 3.0, 10.0))
        return plan
    if kind in ("deleveraging", "vol_spike"):
        lo_min, hi_min = (20, 180) if kind == "deleveraging" else (20, 120)
        length = int(minutes if minutes is not None else _loguniform(rng, lo_min, hi_min))
        if start is None:
            d = int(rng.integers(0, ndays))
            lo, hi = grid.day_span[d]
            if hi - lo <= length * _MIN_NS:
                return None
            start = lo + int(rng.integers(0, (hi - lo) // _MIN_NS - length)) * _MIN_NS
        start -= start % _MIN_NS
        end = start + length * _MIN_NS
        if not _open_window(grid, start, end):
            if ep is not None:
                raise ConfigError(f"{what}: [{_iso(start)}, {_iso(end)}) is not entirely inside trading hours")
            return None
        plan.update(lo=start, hi=end, strength=strength)
        return plan
    # whole-day controls
    d = _day_of(grid, start, what) if start is not None else int(rng.integers(0, ndays))
    lo, hi = grid.day_span[d]
    plan.update(lo=lo, hi=hi, day=d, strength=strength)
    return plan


def _apply(plan, spec, grid: _Grid, rng, fx: _Effects, sigma, lam) -> Label:
    """Write one planned episode into the per-minute effects; return its label."""
    kind, side = plan["kind"], plan["side"]
    direction = (1 if side == "buy" else -1) * (-1 if spec.invert else 1)
    style, strength, open_hours = "", plan.get("strength"), 0.0
    lo, hi = plan["lo"], plan["hi"]
    if kind == "steady_flow":
        style = plan["style"]
        calm = rng.uniform(0.6, 1.05)
        part = rng.uniform(0.1, 0.3)
        for a, b in plan["windows"]:
            idx = grid.minutes(a, b)
            if not idx.size:
                continue
            open_hours += idx.size / 60
            fx.vol[idx] *= calm
            fx.act[idx] *= 1 + part
            fx.override_p[idx] = part / (1 + part)
            fx.override_sign[idx] = direction if style == "aggressive" else -direction
            sigma_hour = np.sqrt(60 * np.mean((sigma[idx] * fx.vol[idx]) ** 2))
            fx.drift[idx] += direction * strength * sigma_hour / 3600
    elif kind == "burst":
        k0 = grid.index(np.array([lo]))[0]
        seconds = plan["seconds"]
        tau = seconds / 3
        # news draws the whole market in: the cascade is sized on the busier of now and the average
        offs = _hawkes_offsets(rng, a0=max(_loguniform(rng, 6, 20) * max(lam[k0], spec.rate), 8 / tau), tau=tau,
                               branching=rng.uniform(0.5, 0.8), kernel_mean=seconds / 6, t_max=3 * seconds)
        jump = strength * sigma[k0]
        surge = rng.uniform(2, 5)
        noise = sigma[k0] * np.sqrt((surge ** 2 - 1) * seconds / 60 / offs.size)
        fx.cascades.append((lo, offs, rng.uniform(0.75, 0.95), direction, jump, rng.uniform(0.3, 1.0) * jump, noise))
        hi = lo + int(max(10.0, float(np.quantile(offs, 0.95))) * _NS)
    elif kind == "deleveraging":
        idx = grid.minutes(lo, hi)
        hours = idx.size / 60
        surge = rng.uniform(3, 6)
        if strength is None:
            sigma_hour = np.sqrt(60 * np.mean(sigma[idx] ** 2))
            move = rng.uniform(2.5, 6) * surge * sigma_hour * hours
            strength = float(np.clip(move / spec.daily_vol, 1.5, 8.0))
        fx.vol[idx] *= surge
        fx.act[idx] *= rng.uniform(3, 8)
        fx.size[idx] *= 1.5
        fx.override_p[idx] = rng.uniform(0.35, 0.7)
        fx.override_sign[idx] = direction
        fx.drift[idx] += direction * strength * spec.daily_vol / (hours * 3600)
    else:
        kind, style = "control", kind
        if style == "vol_spike":
            idx = grid.minutes(lo, hi)
            strength = strength if strength is not None else rng.uniform(2.5, 5)
            fx.vol[idx] *= strength
            fx.act[idx] *= rng.uniform(1.5, 3)
        elif style == "quiet_day":
            idx = grid.minutes(lo, hi)
            strength = strength if strength is not None else rng.uniform(0.55, 0.75)
            fx.vol[idx] *= strength
            fx.act[idx] *= rng.uniform(0.6, 0.8)
        else:  # news_day: several news events, small jumps either way, two-sided flow
            m_lo, m_hi = grid.main_span[plan["day"]]
            strength = strength if strength is not None else float(rng.integers(4, 11))
            for t0 in np.sort(rng.integers(m_lo, m_hi, int(strength))):
                k0 = grid.index(np.array([t0]))[0]
                if k0 < 0:
                    continue
                seconds = rng.uniform(20, 120)
                offs = _hawkes_offsets(rng, a0=max(_loguniform(rng, 3, 10) * max(lam[k0], spec.rate), 8 * 3 / seconds),
                                       tau=seconds / 3,
                                       branching=rng.uniform(0.5, 0.8), kernel_mean=seconds / 6, t_max=3 * seconds)
                noise = sigma[k0] * np.sqrt((rng.uniform(2, 4) ** 2 - 1) * seconds / 60 / offs.size)
                fx.cascades.append((int(t0), offs, 0.5, int(rng.choice((-1, 1))), rng.uniform(0.5, 2.0) * sigma[k0], 0.0, noise))
    return Label(instrument=spec.name, kind=kind, side=side, start_ts=int(lo), end_ts=int(hi), style=style,
                 strength=round(float(strength or 0.0), 3), hours=round(open_hours, 3))


def _decimals(tick: float) -> int:
    """Decimal places of a tick size: 0.005 -> 3, 0.25 -> 2, 1 -> 0."""
    return len(f"{tick:.10f}".rstrip("0").split(".")[1])


def _merge(parts, names) -> TickBatch:
    code = np.concatenate([np.full(p[0].size, i, np.int32) for i, p in enumerate(parts)])
    ts = np.concatenate([p[0] for p in parts])
    order = np.argsort(ts, kind="stable")
    used = sorted(set(names))
    remap = np.array([used.index(nm) for nm in names], np.int32)
    return TickBatch(instruments=tuple(used), code=remap[code[order]], ts=ts[order],
                     price=np.concatenate([p[1] for p in parts])[order],
                     size=np.concatenate([p[2] for p in parts])[order],
                     side=np.concatenate([p[3] for p in parts])[order].astype(np.int8))


def _resolve_instruments(instruments, seed) -> list[InstrumentSpec]:
    if isinstance(instruments, (int, np.integer)):
        if instruments < 1:
            raise ConfigError(f"instruments must be >= 1, got {instruments}")
        base = list(CATALOGUE.values())
        rng = np.random.default_rng([seed, 0x5EED])
        out = []
        for i in range(int(instruments)):
            s = base[i % len(base)]
            out.append(dataclasses.replace(
                s, name=s.name if i < len(base) else f"{s.name}_{i // len(base) + 1}",
                daily_vol=s.daily_vol * rng.uniform(0.7, 1.4), rate=s.rate * rng.uniform(0.6, 1.5),
                price=s.price * rng.uniform(0.9, 1.1)))
        return out
    out = []
    for s in instruments:
        if isinstance(s, InstrumentSpec):
            out.append(s)
        elif s in CATALOGUE:
            out.append(CATALOGUE[s])
        else:
            raise ConfigError(f"instrument {s!r} is not in the catalogue ({', '.join(CATALOGUE)}); pass an InstrumentSpec")
    if not out:
        raise ConfigError("instruments is empty")
    return out


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns // _NS, tz=dt.timezone.utc).isoformat().replace("+00:00", "Z")
