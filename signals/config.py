"""Engine configuration: keyword-only, frozen at start, validated with messages that say what to fix.

A TOML file looks like this (every key optional)::

    [engine]
    bar_seconds = 1.0                 # pre-averaging bar width
    max_gap_seconds = 900             # a longer silence is a session break
    out_of_order_tolerance_seconds = 2.0
    baseline_seconds = 100000         # memory of the volatility and flow baselines (trading time)
    seasonal_day_decay = 0.8          # weight of yesterday in the time-of-day profile

    [thresholds]                      # see docs/calibration.md
    steady_tstat = 3.5

    [defaults]                        # applies to instruments not listed below
    calendar = "24h"
    # invert unset: a name like UST10Y, DE10Y, GB10YR or ...YIELD is taken as a yield

    [instruments.UST10Y]
    invert = true                     # a yield: rising = bond selling
    watch = true                      # always exported to Prometheus
    calendar = { tz = "America/New_York", open = "08:20", close = "17:00", days = "Mon-Fri" }
"""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: Names taken as yields where ``invert`` is not set: a tenor at the end (UST10Y, DE10Y, GB10YR)
#: or YIELD / YLD. Set ``invert = false`` for an instrument (or under [defaults]) to turn it off.
YIELD_NAME = re.compile(r"(?:\d+YR?|YIELD|YLD)$", re.IGNORECASE)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, kw_only=True, slots=True)
class Calendar:
    """When an instrument trades. ``open``/``close`` None means around the clock.

    Time-of-day seasonality buckets and the trading date are taken in ``tz``.
    """

    tz: str = "UTC"
    open: str | None = None
    close: str | None = None
    days: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)

    def __post_init__(self):
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"calendar tz {self.tz!r} is not an IANA time zone; write e.g. 'America/New_York' or 'UTC'") from None
        if (self.open is None) != (self.close is None):
            raise ConfigError("calendar needs both 'open' and 'close' (HH:MM), or neither for 24h trading")
        for key in ("open", "close"):
            v = getattr(self, key)
            if v is not None and not _HHMM.match(v):
                raise ConfigError(f"calendar {key} {v!r} must be HH:MM in 24-hour time, e.g. '09:30'")
        if self.open is not None and self.open_minute == self.close_minute:
            raise ConfigError("calendar open and close are equal; omit both for 24h trading")
        if not self.days or any(d not in range(7) for d in self.days):
            raise ConfigError("calendar days must be a non-empty range like 'Mon-Fri' or a list of Mon..Sun")

    @property
    def is_24h(self) -> bool:
        return self.open is None

    @property
    def open_minute(self) -> int:
        return -1 if self.open is None else int(self.open[:2]) * 60 + int(self.open[3:])

    @property
    def close_minute(self) -> int:
        return -1 if self.close is None else int(self.close[:2]) * 60 + int(self.close[3:])


@dataclass(frozen=True, kw_only=True, slots=True)
class InstrumentConfig:
    """Per-instrument settings.

    invert   the price is a yield or rate: a rising value means the asset is being sold.
             Unset (None): decided by the name, :data:`YIELD_NAME` (see
             :meth:`EngineConfig.for_instrument`).
    watch    always export this instrument's statistics to Prometheus, even when quiet.
    """

    invert: bool | None = None
    watch: bool = False
    calendar: Calendar = field(default_factory=Calendar)


@dataclass(frozen=True, kw_only=True, slots=True)
class Thresholds:
    """Regime thresholds. Defaults come from the calibration in docs/calibration.md.

    t-statistics are in standard-normal units (drift-burst form); ratios are against the
    instrument's own deseasonalised baseline; durations are event-time seconds.
    """

    # jumps (Lee-Mykland): family-wise level and the number of tests it covers. A jump counted
    # in tapewatch_jumps_total (and that blocks steady flow) is significant over a session of
    # 1-s bars; a jump that can start a burst, over a day of 5-min bars (4.067 at 1%). Either
    # must also move the price by jump_minute_sd one-minute standard deviations of the
    # efficient price: on 1-s bars the test's own scale is mostly microstructure noise and tick
    # discreteness, so a statistically clear jump can be a one-tick move.
    jump_alpha: float = 0.01
    jump_n: int = 23400
    burst_jump_n: int = 78
    jump_minute_sd: float = 2.0
    # burst: a news jump, then an activity surge and a cascade of trades and drift on its side
    burst_activity_ratio: float = 4.0
    # ... or, sooner, the activity CUSUM (the Poisson log-likelihood ratio of a rate
    # burst_activity_cusum_ratio times the usual one) at this level, with the 10-s flow then at
    # burst_flow_z_strong until the ratio has caught up (inf: the ratio alone; docs/calibration.md,
    # "A sixth pass: the surge on a CUSUM")
    burst_activity_cusum: float = 14.0
    burst_activity_cusum_ratio: float = 8.0
    # ... with this many trades behind the surge (10-s exponentially weighted tick count): on a
    # sparse feed, two or three ticks that come early already read as a fourfold rate
    burst_min_ticks: float = 8.0
    burst_vol_ratio: float = 1.3
    # ... or the same on the noise-free scale (the 1-min local lag-1 HAC volatility over the
    # long-run one) at this level: where bid-ask noise dominates 1-s returns a cascade's
    # volatility ratio reads little above 1 (docs/calibration.md, "A twenty-second pass"; inf: off)
    burst_hac_vol_ratio: float = 1.6
    burst_flow_z: float = 0.5
    # ... where fewer than half the trades came with an aggressor side. The tick rule signs a
    # cascade's trades poorly: 0.25 finds more bursts there, at a cost in precision on balanced
    # news (docs/calibration.md, "A second generator"); the default keeps burst_flow_z's level
    burst_flow_z_tick_rule: float = 0.5
    # ... and there, after a burst-level jump whose Lee-Mykland statistic is at least this (five
    # times the 1% critical value), the cascade's 10-s flow z need only be 0 or more (not against
    # the jump): news that large does not need the tick rule to vouch for its cascade (inf: off)
    burst_jump_z_tick_rule: float = 20.0
    # ... and at entry the bar's mean price still holds this share of the jump (from the mean
    # before it): news moves the price to a new level, while on a coarse grid a one-tick move of
    # the mid plus a trade at the other side reads as a jump and goes back within seconds
    # (docs/calibration.md, "A twenty-first pass: a jump that holds"; 0: not back beyond its start)
    burst_jump_hold: float = 0.5
    # ... and in an hour of the day the seasonal profile has not yet seen (half an hour of trading
    # at that hour: a feed's first day), the jump's Lee-Mykland statistic is at least this. A busy
    # session's first open, not yet learned, reads as a surge of trades and volatility, and its
    # opening moves pass the jump test at 5-9, where news jumps read 8-40 (docs/calibration.md,
    # "A twenty-third pass: news in an hour not yet seen"; 0: off)
    burst_unseen_jump_z: float = 7.0
    burst_drift_tstat: float = 0.5         # jump-robust 60-s drift on the jump's side (the cascade)
    # either half of the cascade this strong needs no help from the other: the 10-s flow z, or
    # the 1-min drift on the jump's side with the 10-s flow at least not against it (where the
    # tick rule hides a cascade's flow). The drift alone is off by default: at 2 it finds more
    # bursts on tick-rule feeds but lets balanced news days through (precision under 0.9 on
    # three of four held-out sets, docs/calibration.md "A second pass on the second generator")
    burst_drift_tstat_strong: float = math.inf
    burst_flow_z_strong: float = 1.0
    burst_jump_window_seconds: float = 60.0
    burst_enter_seconds: float = 0.0
    burst_exit_seconds: float = 120.0
    burst_cooldown_seconds: float = 60.0
    # deleveraging: sustained fast one-sided move with high volatility or activity, one-sided flow
    delev_tstat: float = 3.0
    delev_vol_ratio: float = 2.0
    delev_activity_ratio: float = 2.5
    # ... with this many trades behind that ratio (10-s exponentially weighted tick count): on a
    # thin feed a handful of trades reads as a surge (docs/calibration.md, "A twelfth pass: a
    # handful of trades is no surge")
    delev_min_ticks: float = 4.0
    # ... and the activity path still needs the 15-min volatility somewhat above normal (or a
    # violent move, delev_move_tstat, where bid-ask noise hides the volatility): a busy steady
    # grind (aggressive children raise activity, not volatility) is not deleveraging
    delev_activity_vol_ratio: float = 1.2
    # ... or neither, where the move (the 15-min drift against the long-run volatility) is this
    # violent: where bid-ask noise dominates 1-s returns and a rout trades only about twice the
    # usual rate, its volatility and activity ratios read 1-2 (docs/calibration.md, "A fifteenth
    # pass: a rout the ratios do not see"); a grind moves at most steady_move_tstat_max (inf: off)
    delev_violent_move: float = 10.0
    # not entered this soon after a burst-level jump: the cascade that follows news is a burst
    delev_jump_quiet_seconds: float = 180.0
    # ... and a burst on the side that has lasted this long stands in for the 15-min flow
    # condition: news cascades last minutes, a one-sided rout tens of minutes (inf: off)
    delev_burst_seconds: float = 1800.0
    delev_flow_z: float = 2.0
    # ... or the same on the volume clock (flow_z_volume: one unit is 15 minutes' usual volume;
    # a rout trades several times that, and a sparse feed's 15-min flow z is noisy; inf: off)
    delev_flow_z_volume: float = 2.5
    # ... or a violent move with a weaker flow: the 15-min drift against the instrument's
    # *normal* (long-run) volatility at least delev_move_tstat (a steady grind reads at most
    # about 4 there, a rout several times that) with the 15-min or volume-clock flow z at least
    # delev_move_flow_z. Where the feed has no aggressor side the tick rule signs a rout's
    # flow too weakly to reach delev_flow_z (inf: off)
    delev_move_tstat: float = 8.0
    delev_move_flow_z: float = 1.5
    # ... or no flow condition at all when the 15-min drift reaches this against both the local
    # (surging) and the long-run volatility: a move that strong is one-sided whatever the tick
    # rule makes of the flow (inf: off)
    delev_tstat_strong: float = 6.0
    # ... and a violent move (move at least delev_move_tstat) with a strong one-sided flow (15-min
    # or volume-clock z at least delev_violent_flow_z) needs a 15-min drift t of only
    # delev_violent_tstat: its denominator is the rout's own surging volatility (inf: off)
    delev_violent_tstat: float = 2.0
    delev_violent_flow_z: float = 2.5
    # ... and a stronger flow still (15-min or volume-clock z at least delev_strong_flow_z) needs
    # only delev_strong_flow_tstat with a move of delev_strong_flow_move: in a rout's first
    # minutes its one-sided flow is plain long before its drift is (inf: off)
    delev_strong_flow_z: float = 3.5
    delev_strong_flow_tstat: float = 1.5
    delev_strong_flow_move: float = 5.0
    delev_enter_seconds: float = 120.0
    # ... except where the rout's one-sided flow is this plain (15-min or volume-clock flow z on
    # the side): then it is entered as soon as its rule holds, unless the instrument is in a
    # burst (a news cascade reads like a rout for its first minutes; inf: always wait)
    delev_enter_flow_z: float = 2.5
    delev_exit_seconds: float = 1200.0
    delev_cooldown_seconds: float = 7200.0
    # steady flow: slow persistent drift in normal or low volatility
    steady_tstat: float = 3.5
    steady_tstat_slow: float = 2.5
    steady_vol_ratio_max: float = 1.6      # on the 15-min and the 1-h volatility ratio
    # ... and the same on the noise-free scale: the 15-min and 1-h local lag-1 HAC volatility
    # over the long-run HAC one. Where bid-ask noise dominates 1-s returns a rout's volatility
    # ratio (noise included) reads little above 1; this one does not (inf: off)
    steady_hac_vol_ratio_max: float = 1.5
    # ... and the 15-min move against the long-run volatility (move_tstat_900s) at most this: a
    # grind of 5 hourly standard deviations per hour reads about 3.5 there, a rout far more, also
    # where its volatility on 1-s bars hides under bid-ask noise (inf: off)
    steady_move_tstat_max: float = 6.0
    steady_flow_z: float = 1.0
    # a 1-h t this strong (with the 4-h one at steady_tstat_slow) needs no corroboration from
    # the flow or the fingerprint: passive children that neither take liquidity nor lean
    # against it leave no trace in the signed volume (inf: corroboration always needed; 5
    # until the fingerprint stopped counting today's drift, see docs/calibration.md)
    steady_tstat_strong: float = 4.0
    steady_tstat_flow: float = 3.0          # drift t needed when |flow z| >= steady_flow_z_strong
    steady_flow_z_strong: float = 2.0
    steady_fingerprint_tstat: float = 2.0
    steady_jump_quiet_seconds: float = 1800.0
    # ... and this long after a deleveraging exit (the 1-h and 4-h drift sums restart there, so
    # the rout's move is not in them; the same quiet time as after a jump)
    steady_after_deleveraging_seconds: float = 1800.0
    steady_enter_seconds: float = 300.0
    steady_exit_seconds: float = 1800.0
    steady_cooldown_seconds: float = 108000.0
    # no regime before this much trading time has been seen (baselines must exist first)
    warmup_seconds: float = 1800.0
    steady_warmup_seconds: float = 3600.0
    # hysteresis: a regime is kept while its statistic stays above this share of the entry level
    exit_fraction: float = 0.5

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
                raise ConfigError(f"thresholds.{f.name} must be a number, got {v!r}")
            if v < 0:
                raise ConfigError(f"thresholds.{f.name} must be >= 0, got {v}")
        if not 0 < self.jump_alpha < 1:
            raise ConfigError(f"thresholds.jump_alpha must be in (0, 1), got {self.jump_alpha}")
        for key in ("jump_n", "burst_jump_n"):   # the Gumbel approximation needs enough tests
            if getattr(self, key) < 30 or getattr(self, key) != int(getattr(self, key)):
                raise ConfigError(f"thresholds.{key} must be a whole number >= 30, got {getattr(self, key)}")
        for key in ("steady_tstat", "steady_tstat_flow", "delev_tstat", "burst_activity_ratio"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"thresholds.{key} must be > 0, got {getattr(self, key)}")
        if not self.burst_activity_cusum_ratio > 1:
            raise ConfigError("thresholds.burst_activity_cusum_ratio must be > 1 (the surge's rate over the usual one), "
                              f"got {self.burst_activity_cusum_ratio}")
        if not 0 < self.exit_fraction <= 1:
            raise ConfigError(f"thresholds.exit_fraction must be in (0, 1], got {self.exit_fraction}")
        if self.burst_jump_hold > 1.0:
            raise ConfigError(f"thresholds.burst_jump_hold must be in [0, 1] (the share of the jump the price still "
                              f"holds at a burst's entry), got {self.burst_jump_hold}")


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineConfig:
    """Everything the engine needs; identical in replay and in the service."""

    bar_seconds: float = 1.0
    max_gap_seconds: float = 900.0
    out_of_order_tolerance_seconds: float = 2.0
    baseline_seconds: float = 100_000.0
    seasonal_day_decay: float = 0.8
    thresholds: Thresholds = field(default_factory=Thresholds)
    defaults: InstrumentConfig = field(default_factory=InstrumentConfig)
    instruments: Mapping[str, InstrumentConfig] = field(default_factory=dict)

    def __post_init__(self):
        for key in ("bar_seconds", "max_gap_seconds", "out_of_order_tolerance_seconds", "baseline_seconds",
                    "seasonal_day_decay"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
                raise ConfigError(f"engine.{key} must be a finite number, got {v!r}")
        if not (0.01 <= self.bar_seconds <= 60):
            raise ConfigError(f"engine.bar_seconds must be between 0.01 and 60, got {self.bar_seconds}")
        if self.max_gap_seconds < 10 * self.bar_seconds:
            raise ConfigError(f"engine.max_gap_seconds must be at least 10 bars ({10 * self.bar_seconds} s), got {self.max_gap_seconds}")
        if not (0 <= self.out_of_order_tolerance_seconds <= 3600):
            raise ConfigError(f"engine.out_of_order_tolerance_seconds must be between 0 and 3600, got {self.out_of_order_tolerance_seconds}")
        if self.baseline_seconds < 3600:
            raise ConfigError(f"engine.baseline_seconds must be at least 3600 (one hour of trading), got {self.baseline_seconds}")
        if not (0 < self.seasonal_day_decay <= 1):
            raise ConfigError(f"engine.seasonal_day_decay must be in (0, 1], got {self.seasonal_day_decay}")
        object.__setattr__(self, "instruments", MappingProxyType(dict(self.instruments)))

    def for_instrument(self, name: str) -> InstrumentConfig:
        """The settings of ``name``: its table, else ``[defaults]``; ``invert`` always decided.

        Where neither sets ``invert``, a name like a yield's (:data:`YIELD_NAME`) is inverted: a
        tape of UST10Y whose rising values were called buying would be wrong on every side.
        """
        ic = self.instruments.get(name, self.defaults)
        if ic.invert is None:
            ic = dataclasses.replace(ic, invert=bool(YIELD_NAME.search(name)))
        return ic

    def inverted_by_name(self, names) -> list[str]:
        """Those of ``names`` inverted only because of their name (no ``invert`` set for them)."""
        return [n for n in names if self.instruments.get(n, self.defaults).invert is None and YIELD_NAME.search(n)]

    @property
    def watchlist(self) -> tuple[str, ...]:
        return tuple(n for n, c in self.instruments.items() if c.watch)


def _parse_days(v: Any, where: str) -> tuple[int, ...]:
    if isinstance(v, str):
        parts = [p.strip() for p in v.split(",")]
        out: list[int] = []
        for p in parts:
            if "-" in p:
                a, b = (x.strip().title()[:3] for x in p.split("-", 1))
                if a not in _DAYS or b not in _DAYS:
                    raise ConfigError(f"{where}.days {v!r}: use day names like 'Mon-Fri' or 'Sun-Fri'")
                i, j = _DAYS.index(a), _DAYS.index(b)
                out.extend(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
            else:
                d = p.title()[:3]
                if d not in _DAYS:
                    raise ConfigError(f"{where}.days {v!r}: use day names like 'Mon-Fri' or 'Sun-Fri'")
                out.append(_DAYS.index(d))
        return tuple(sorted(set(out)))
    if isinstance(v, list):
        return _parse_days(",".join(map(str, v)), where)
    raise ConfigError(f"{where}.days must be a string like 'Mon-Fri', got {v!r}")


def _calendar(v: Any, where: str) -> Calendar:
    if v == "24h":
        return Calendar()
    if isinstance(v, str):
        raise ConfigError(f"{where}.calendar {v!r}: write \"24h\" or a table {{ tz = ..., open = \"HH:MM\", close = \"HH:MM\", days = \"Mon-Fri\" }}")
    if not isinstance(v, dict):
        raise ConfigError(f"{where}.calendar must be \"24h\" or a table, got {v!r}")
    unknown = set(v) - {"tz", "open", "close", "days"}
    if unknown:
        raise ConfigError(f"{where}.calendar has unknown keys {sorted(unknown)}; allowed: tz, open, close, days")
    kw: dict[str, Any] = {k: v[k] for k in ("tz", "open", "close") if k in v}
    if "days" in v:
        kw["days"] = _parse_days(v["days"], f"{where}.calendar")
    try:
        return Calendar(**kw)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _instrument(v: Any, where: str, base: InstrumentConfig | None = None) -> InstrumentConfig:
    if not isinstance(v, dict):
        raise ConfigError(f"{where} must be a table, got {v!r}")
    unknown = set(v) - {"invert", "watch", "calendar"}
    if unknown:
        raise ConfigError(f"{where} has unknown keys {sorted(unknown)}; allowed: invert, watch, calendar")
    base = base or InstrumentConfig()
    kw: dict[str, Any] = {}
    for k in ("invert", "watch"):
        if k in v:
            if not isinstance(v[k], bool):
                raise ConfigError(f"{where}.{k} must be true or false, got {v[k]!r}")
            kw[k] = v[k]
    if "calendar" in v:
        kw["calendar"] = _calendar(v["calendar"], where)
    return dataclasses.replace(base, **kw)


def _section(cls, data: Any, name: str, allowed_extra: dict | None = None):
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"[{name}] must be a table")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"[{name}] has unknown keys {sorted(unknown)}; allowed: {', '.join(sorted(names))}")
    return dict(data)


def config_from_dict(data: Mapping[str, Any]) -> EngineConfig:
    """Build an :class:`EngineConfig` from the parsed TOML layout shown in the module docstring."""
    unknown = set(data) - {"engine", "thresholds", "defaults", "instruments", "service"}
    if unknown:
        raise ConfigError(f"unknown config sections {sorted(unknown)}; allowed: engine, thresholds, defaults, instruments, service")
    for key in ("engine", "thresholds", "instruments"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"[{key}] must be a table, got {data[key]!r}")
    eng = data.get("engine") or {}
    if not isinstance(eng, dict):
        raise ConfigError("[engine] must be a table")
    allowed = {"bar_seconds", "max_gap_seconds", "out_of_order_tolerance_seconds", "baseline_seconds",
               "seasonal_day_decay"}
    if set(eng) - allowed:
        raise ConfigError(f"[engine] has unknown keys {sorted(set(eng) - allowed)}; allowed: {', '.join(sorted(allowed))}")
    for k, v in eng.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ConfigError(f"engine.{k} must be a number, got {v!r}")
    th = Thresholds(**_section(Thresholds, data.get("thresholds"), "thresholds"))
    defaults = _instrument(data["defaults"] if "defaults" in data else {}, "defaults")
    inst_raw = data.get("instruments") or {}
    if not isinstance(inst_raw, dict):
        raise ConfigError("[instruments] must be a table of instrument names")
    instruments = {str(k): _instrument(v, f"instruments.{k}", defaults) for k, v in inst_raw.items()}
    return EngineConfig(thresholds=th, defaults=defaults, instruments=instruments,
                        **{k: float(v) for k, v in eng.items()})


def load_config(path: str | Path | None) -> EngineConfig:
    """Read a TOML config file; ``None`` gives the defaults."""
    if path is None:
        return EngineConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config file {str(p)!r}: {e.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {e}") from None
    return config_from_dict(data)
