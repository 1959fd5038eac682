"""Local clocks across daylight-saving changes, and trading sessions (incl. overnight ones)."""
from __future__ import annotations

import doctest
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

import signals.calendar
from signals.calendar import hour_and_day, in_session, local_clock
from signals.config import Calendar

S = 10**9


def utc(*args) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp()) * S


def test_module_examples_run():
    assert doctest.testmod(signals.calendar).failed == 0


@pytest.mark.parametrize("when,local_hhmm,weekday", [
    # spring forward, Sun 2025-03-09: 02:00 EST becomes 03:00 EDT (07:00 UTC)
    (utc(2025, 3, 9, 6, 59, 59), (1, 59), 6),
    (utc(2025, 3, 9, 7, 0, 0), (3, 0), 6),
    (utc(2025, 3, 9, 13, 30), (9, 30), 6),
    # fall back, Sun 2025-11-02: 02:00 EDT becomes 01:00 EST (06:00 UTC); 01:xx happens twice
    (utc(2025, 11, 2, 5, 30), (1, 30), 6),
    (utc(2025, 11, 2, 6, 30), (1, 30), 6),
    (utc(2025, 11, 2, 14, 30), (9, 30), 6),
    # the evening before, still EDT: 23:59 Saturday
    (utc(2025, 11, 2, 3, 59), (23, 59), 5),
])
def test_new_york_dst_transitions(when, local_hhmm, weekday):
    minute, day, wd = local_clock(np.array([when], np.int64), "America/New_York")
    assert (int(minute[0]) // 60, int(minute[0]) % 60) == local_hhmm
    assert int(wd[0]) == weekday
    local = datetime.fromtimestamp(when // S, tz=ZoneInfo("America/New_York"))
    assert int(day[0]) == (local.date() - datetime(1970, 1, 1).date()).days


def test_the_nyse_open_is_0930_local_in_winter_and_summer():
    cal = Calendar(tz="America/New_York", open="09:30", close="16:00", days=(0, 1, 2, 3, 4))
    ts = np.array([utc(2025, 1, 15, 14, 30), utc(2025, 1, 15, 13, 30),      # winter: 09:30, 08:30
                   utc(2025, 7, 15, 13, 30), utc(2025, 7, 15, 20, 0),       # summer: 09:30, 16:00 (closed)
                   utc(2025, 3, 10, 13, 30), utc(2025, 11, 3, 14, 30)])     # the Mondays after each change
    minute, _, wd = local_clock(ts, cal.tz)
    assert in_session(cal, minute, wd).tolist() == [True, False, True, False, True, True]


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/London", "Asia/Kathmandu", "Australia/Lord_Howe",
                                "America/St_Johns", "Asia/Tokyo", "UTC"])
def test_local_clock_matches_zoneinfo_tick_by_tick(tz):
    """Offsets are looked up per 15-minute slot; check against zoneinfo around the year's changes
    (Lord Howe shifts by 30 min, Kathmandu sits at +05:45, St John's at -03:30/-02:30)."""
    rng = np.random.default_rng(0)
    ts = np.sort(np.concatenate([rng.integers(utc(2025, 1, 1), utc(2026, 1, 1), 3000),
                                 utc(2025, 3, 9, 7) + rng.integers(-3 * 3600 * S, 3 * 3600 * S, 500),
                                 utc(2025, 4, 5, 15) + rng.integers(-3 * 3600 * S, 3 * 3600 * S, 500)]))
    minute, day, wd = local_clock(ts, tz)
    zone = ZoneInfo(tz)
    for j, t in enumerate(ts.tolist()):
        loc = datetime.fromtimestamp(t // S, tz=zone)
        assert int(minute[j]) == loc.hour * 60 + loc.minute
        assert int(wd[j]) == loc.weekday()
        assert int(day[j]) == (loc.date() - datetime(1970, 1, 1).date()).days


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"])
@pytest.mark.parametrize("span_hours", [6, 24 * 400])     # within a week (slot range) and beyond (np.unique)
def test_compiled_hour_and_day_equal_the_reference_clock(tz, span_hours):
    """``hour_and_day`` (numba, the engine's fast path) against ``local_clock`` (numpy), incl.
    a daylight-saving change inside the batch and ticks before 1970 (negative ns)."""
    rng = np.random.default_rng(span_hours)
    start = utc(2025, 3, 9, 4) if span_hours < 24 else utc(1969, 6, 1)
    ts = start + rng.integers(0, span_hours * 3600 * S, 4000)
    hour, day = hour_and_day(ts, tz)
    minute, ref_day, _ = local_clock(ts, tz)
    assert hour.dtype == day.dtype == np.int64
    assert (hour == minute // 60).all() and (day == ref_day).all()
    assert hour_and_day(ts[:0], tz)[0].shape == (0,)


def test_overnight_session():
    """18:00-17:00 (futures-style): open across midnight, closed one hour a day; days are the
    local calendar day of the tick."""
    cal = Calendar(tz="America/Chicago", open="18:00", close="17:00", days=(0, 1, 2, 3, 4, 6))
    hhmm = [(17, 0), (17, 59), (18, 0), (23, 59), (0, 0), (9, 0), (16, 59)]
    minute = np.array([h * 60 + m for h, m in hhmm], np.int32)
    assert in_session(cal, minute, np.full(len(hhmm), 2, np.int8)).tolist() == \
        [False, False, True, True, True, True, True]
    assert not in_session(cal, minute, np.full(len(hhmm), 5, np.int8)).any()          # Saturday
    sunday_evening = in_session(cal, np.array([18 * 60 + 30], np.int32), np.array([6], np.int8))
    assert sunday_evening.tolist() == [True]


def test_day_session_and_around_the_clock():
    cal = Calendar(tz="Asia/Tokyo", open="09:00", close="15:30", days=(0, 1, 2, 3, 4))
    minute = np.array([539, 540, 929, 930], np.int32)
    assert in_session(cal, minute, np.zeros(4, np.int8)).tolist() == [False, True, True, False]
    weekend = Calendar(days=(5, 6))
    assert in_session(weekend, np.array([0, 1439], np.int32), np.array([5, 4], np.int8)).tolist() == [True, False]
