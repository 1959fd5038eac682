"""Configuration: TOML loading, defaults and inheritance, calendars, and every error naming its key."""
from __future__ import annotations

import dataclasses
import math
import re
import tomllib

import pytest

from signals.config import Calendar, EngineConfig, InstrumentConfig, Thresholds, config_from_dict, load_config
from signals.errors import ConfigError, TapewatchError

FULL = """
[engine]
bar_seconds = 2
max_gap_seconds = 600
out_of_order_tolerance_seconds = 0.5
baseline_seconds = 50000
seasonal_day_decay = 0.9

[thresholds]
steady_tstat = 4
jump_n = 390

[defaults]
calendar = { tz = "Europe/London", open = "08:00", close = "16:30", days = "Mon-Fri" }

[instruments.UST10Y]
invert = true
watch = true
calendar = { tz = "America/New_York", open = "18:00", close = "17:00", days = "Sun-Fri" }

[instruments.VOD]
watch = true

[instruments.BTC]
calendar = "24h"

[service]
anything = "is the consumers' business"
"""


def load(text: str, tmp_path) -> EngineConfig:
    p = tmp_path / "tapewatch.toml"
    p.write_text(text, encoding="utf-8")
    return load_config(p)


def test_full_file_loads(tmp_path):
    cfg = load(FULL, tmp_path)
    assert (cfg.bar_seconds, cfg.max_gap_seconds, cfg.out_of_order_tolerance_seconds) == (2.0, 600.0, 0.5)
    assert (cfg.baseline_seconds, cfg.seasonal_day_decay) == (50000.0, 0.9)
    assert isinstance(cfg.bar_seconds, float)
    assert cfg.thresholds.steady_tstat == 4 and cfg.thresholds.jump_n == 390
    assert cfg.thresholds.burst_activity_ratio == Thresholds().burst_activity_ratio      # untouched default
    london = Calendar(tz="Europe/London", open="08:00", close="16:30", days=(0, 1, 2, 3, 4))
    assert cfg.defaults.calendar == london
    ust = cfg.for_instrument("UST10Y")
    assert ust.invert and ust.watch
    assert ust.calendar == Calendar(tz="America/New_York", open="18:00", close="17:00", days=(0, 1, 2, 3, 4, 6))
    vod = cfg.for_instrument("VOD")
    assert vod.watch and not vod.invert and vod.calendar == london             # inherits the defaults
    assert cfg.for_instrument("BTC").calendar == Calendar()                    # "24h"
    assert cfg.for_instrument("unlisted") == dataclasses.replace(cfg.defaults, invert=False)
    assert cfg.watchlist == ("UST10Y", "VOD")


def test_no_file_and_empty_file_give_the_defaults(tmp_path):
    assert load_config(None) == EngineConfig()
    assert load("", tmp_path) == EngineConfig()


def test_config_is_frozen():
    cfg = config_from_dict({"instruments": {"X": {"invert": True}}})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.bar_seconds = 5.0
    with pytest.raises(TypeError):
        cfg.instruments["Y"] = InstrumentConfig()
    with pytest.raises(TypeError):
        EngineConfig(1.0)                                                      # keyword-only


@pytest.mark.parametrize("days,expected", [
    ("Mon-Fri", (0, 1, 2, 3, 4)),
    ("Sun-Fri", (0, 1, 2, 3, 4, 6)),              # wraps around the week
    ("Fri-Mon", (0, 4, 5, 6)),
    ("mon, wed ,FRI", (0, 2, 4)),
    ("Monday-Tuesday", (0, 1)),
    (["Sat", "Sun"], (5, 6)),
    ("Tue", (1,)),
])
def test_calendar_days(days, expected):
    cfg = config_from_dict({"defaults": {"calendar": {"tz": "UTC", "days": days}}})
    assert cfg.defaults.calendar.days == expected


def test_calendar_minutes():
    cal = Calendar(tz="Asia/Tokyo", open="09:00", close="15:30")
    assert (cal.open_minute, cal.close_minute, cal.is_24h) == (540, 930, False)
    assert Calendar().is_24h and Calendar().open_minute == -1


# ---- every error names its key -----------------------------------------------------------

ERRORS = [
    ("[engine]\nbar_seconds = 0", "engine.bar_seconds"),
    ("[engine]\nbar_seconds = 61", "engine.bar_seconds"),
    ('[engine]\nbar_seconds = "1"', "engine.bar_seconds must be a number"),
    ("[engine]\nbar_seconds = true", "engine.bar_seconds must be a number"),
    ("[engine]\nmax_gap_seconds = 5", "engine.max_gap_seconds"),
    ("[engine]\nout_of_order_tolerance_seconds = -1", "engine.out_of_order_tolerance_seconds"),
    ("[engine]\nout_of_order_tolerance_seconds = 3601", "engine.out_of_order_tolerance_seconds"),
    ("[engine]\nbaseline_seconds = 100", "engine.baseline_seconds"),
    ("[engine]\nseasonal_day_decay = 0", "engine.seasonal_day_decay"),
    ("[engine]\nseasonal_day_decay = 1.5", "engine.seasonal_day_decay"),
    ("[engine]\nbar_second = 1", "[engine] has unknown keys ['bar_second']"),
    ("engine = 3", "[engine] must be a table"),
    ("[thresholds]\nsteady_tstat = -1", "thresholds.steady_tstat"),
    ('[thresholds]\nsteady_tstat = "3"', "thresholds.steady_tstat must be a number"),
    ("[thresholds]\nsteady_tstat = nan", "thresholds.steady_tstat must be a number"),
    ("[thresholds]\nsteady_tstat = false", "thresholds.steady_tstat must be a number"),
    ("[thresholds]\njump_alpha = 1.0", "thresholds.jump_alpha"),
    ("[thresholds]\njump_alpha = 0", "thresholds.jump_alpha"),
    ("[thresholds]\njump_n = 1", "thresholds.jump_n"),
    ("[thresholds]\nburst_jump_n = 77.5", "thresholds.burst_jump_n"),
    ("[thresholds]\nexit_fraction = 0", "thresholds.exit_fraction"),
    ("[thresholds]\nexit_fraction = 1.01", "thresholds.exit_fraction"),
    ("[thresholds]\nburst_jump_hold = 1.5", "thresholds.burst_jump_hold must be in [0, 1]"),
    ("[thresholds]\nburst_jump_hold = -0.1", "thresholds.burst_jump_hold must be >= 0"),
    ("[thresholds]\nburst_unseen_jump_z = -1", "thresholds.burst_unseen_jump_z must be >= 0"),
    ("[thresholds]\nburst_activity_cusum_ratio = 1", "thresholds.burst_activity_cusum_ratio must be > 1"),
    ("[thresholds]\nsteady_tsat = 3", "[thresholds] has unknown keys ['steady_tsat']"),
    ("thresholds = 1", "[thresholds] must be a table"),
    ("[engines]\nbar_seconds = 1", "unknown config sections ['engines']"),
    ("instruments = 1", "[instruments] must be a table"),
    ("[instruments]\nX = 1", "instruments.X must be a table"),
    ('[instruments.X]\ninvert = "yes"', "instruments.X.invert must be true or false"),
    ("[instruments.X]\nwatch = 1", "instruments.X.watch must be true or false"),
    ("[instruments.X]\ncolour = 1", "instruments.X has unknown keys ['colour']"),
    ('[instruments.X]\ncalendar = "NYSE"', "instruments.X.calendar 'NYSE'"),
    ("[instruments.X]\ncalendar = 5", "instruments.X.calendar must be"),
    ('[instruments.X]\ncalendar = { tz = "UTC", hours = 1 }', "instruments.X.calendar has unknown keys ['hours']"),
    ('[instruments.X]\ncalendar = { tz = "Mars/Olympus" }', "instruments.X: calendar tz 'Mars/Olympus'"),
    ('[instruments.X]\ncalendar = { open = "09:30" }', "instruments.X: calendar needs both 'open' and 'close'"),
    ('[instruments.X]\ncalendar = { open = "9:30", close = "16:00" }', "instruments.X: calendar open '9:30'"),
    ('[instruments.X]\ncalendar = { open = "09:30", close = "24:00" }', "instruments.X: calendar close '24:00'"),
    ('[instruments.X]\ncalendar = { open = "09:30", close = "09:30" }', "instruments.X: calendar open and close"),
    ('[instruments.X]\ncalendar = { days = "Mon-Fry" }', "instruments.X.calendar.days 'Mon-Fry'"),
    ('[instruments.X]\ncalendar = { days = "Funday" }', "instruments.X.calendar.days 'Funday'"),
    ('[instruments.X]\ncalendar = { days = "" }', "instruments.X.calendar.days ''"),
    ("[instruments.X]\ncalendar = { days = 5 }", "instruments.X.calendar.days must be a string"),
    ("[defaults]\ninvert = 1", "defaults.invert must be true or false"),
    ("defaults = 1", "defaults must be a table"),
]


@pytest.mark.parametrize("text,key", ERRORS, ids=[e[1] for e in ERRORS])
def test_every_config_error_names_its_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as err:
        load(text, tmp_path)
    assert key in str(err.value)
    assert isinstance(err.value, TapewatchError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("cls,kw,key", [
    (EngineConfig, {"bar_seconds": 0.001}, "engine.bar_seconds"),
    (EngineConfig, {"bar_seconds": 1.0, "max_gap_seconds": 9.0}, "engine.max_gap_seconds"),
    (Thresholds, {"warmup_seconds": -5}, "thresholds.warmup_seconds"),
    (Thresholds, {"jump_n": 10**6 + 0.5}, "thresholds.jump_n"),
])
def test_python_construction_validates_too(cls, kw, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        cls(**kw)


@pytest.mark.parametrize("kw,key", [
    ({"tz": "Nowhere/Town"}, "calendar tz 'Nowhere/Town'"),
    ({"open": "09:00"}, "'open' and 'close'"),
    ({"close": "17:00"}, "'open' and 'close'"),
    ({"open": "25:00", "close": "17:00"}, "calendar open '25:00'"),
    ({"open": "09:00", "close": "17:60"}, "calendar close '17:60'"),
    ({"days": ()}, "calendar days"),
    ({"days": (7,)}, "calendar days"),
])
def test_calendar_errors_name_the_field(kw, key):
    with pytest.raises(ConfigError) as err:
        Calendar(**kw)
    assert key in str(err.value)


@pytest.mark.parametrize("key", [
    "bar_seconds", "out_of_order_tolerance_seconds", "seasonal_day_decay",
    "max_gap_seconds", "baseline_seconds",
])
def test_engine_numbers_must_not_be_nan(tmp_path, key):
    """``nan`` is valid TOML; a NaN baseline_seconds would make every statistic NaN."""
    with pytest.raises(ConfigError, match=f"engine.{key}"):
        load(f"[engine]\n{key} = nan", tmp_path)


@pytest.mark.parametrize("text,key", [("engine = 0", "[engine]"), ("defaults = false", "defaults"),
                                      ('instruments = ""', "[instruments]")])
def test_falsy_sections_are_not_tables(tmp_path, text, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        load(text, tmp_path)


def test_file_problems_name_the_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="cannot read config file .*nope.toml"):
        load_config(missing)
    with pytest.raises(ConfigError, match="tapewatch.toml.* is not valid TOML"):
        load("[engine\nbar_seconds = 1", tmp_path)


def test_the_documented_example_is_valid():
    import signals.config

    doc = signals.config.__doc__
    text = doc[doc.index("[engine]"):].rstrip().rstrip('"')
    cfg = config_from_dict(tomllib.loads(text))
    ust = cfg.for_instrument("UST10Y")
    assert ust.invert and ust.watch and ust.calendar.tz == "America/New_York"
    assert cfg.thresholds.steady_tstat == 3.5 and not math.isnan(cfg.baseline_seconds)


@pytest.mark.parametrize("name,inverted", [("UST10Y", True), ("US2Y", True), ("GB10YR", True), ("ust30y", True),
                                           ("DE10Y_YIELD", True), ("JGB.YLD", True), ("USDJPY", False),
                                           ("SPY", False), ("CSI300ETF", False), ("BUND", False), ("DXY", False)])
def test_an_instrument_named_like_a_yield_is_inverted_where_invert_is_not_set(name, inverted):
    assert EngineConfig().for_instrument(name).invert is inverted
    listed = config_from_dict({"instruments": {name: {"watch": True}}})
    assert listed.for_instrument(name).invert is inverted and listed.for_instrument(name).watch
    assert listed.inverted_by_name([name]) == ([name] if inverted else [])


def test_a_set_invert_wins_over_the_name():
    cfg = config_from_dict({"instruments": {"UST10Y": {"invert": False}, "SPY": {"invert": True}}})
    assert not cfg.for_instrument("UST10Y").invert and cfg.for_instrument("SPY").invert
    off = config_from_dict({"defaults": {"invert": False}})
    assert not off.for_instrument("UST10Y").invert and off.inverted_by_name(["UST10Y"]) == []
    assert cfg.inverted_by_name(["UST10Y", "SPY", "DE10Y"]) == ["DE10Y"]
