"""Local clock of an instrument: minute of day, local date and weekday, DST-aware and vectorised."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
from numba import njit

from .config import Calendar

_NS = 1_000_000_000
_SLOT = 900 * _NS        # UTC offsets change only on 15-minute boundaries in every IANA zone in use
_DENSE_SLOTS = 4 * 24 * 7   # up to a week of slots: offsets by range, not by np.unique


def local_clock(ts: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(minute of local day int32, local day number int32, weekday int8 with Monday = 0).

    >>> ts = np.array([1747747800 * 10**9])          # 2025-05-20 13:30 UTC, 09:30 in New York
    >>> m, d, w = local_clock(ts, "America/New_York")
    >>> int(m[0]) // 60, int(m[0]) % 60, int(w[0])
    (9, 30, 1)
    """
    secs = ts // _NS
    if tz != "UTC" and len(ts):
        slot = ts // _SLOT
        lo, hi = int(slot.min()), int(slot.max())
        if hi - lo <= _DENSE_SLOTS:     # a batch usually spans hours: look up every slot in its range
            offs, inv = _offsets(lo, hi, tz), slot - lo
        else:
            slots, inv = np.unique(slot, return_inverse=True)
            offs = _offsets_of(slots, tz)
        secs += offs[inv]
    day = secs // 86400
    minute = secs - day * 86400
    minute //= 60
    weekday = day + 3
    weekday %= 7                      # 1970-01-01 was a Thursday
    return minute.astype(np.int32), day.astype(np.int32), weekday.astype(np.int8)


def hour_and_day(ts: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """(local hour int64, local day number int64) in one compiled pass: the engine's seasonal
    bucket and day for an always-open calendar. Same result as :func:`local_clock`
    (``minute // 60`` and ``day``), which is its reference.

    >>> h, d = hour_and_day(np.array([1747747800 * 10**9]), "America/New_York")
    >>> int(h[0]), int(d[0]) == int(local_clock(np.array([1747747800 * 10**9]), "America/New_York")[1][0])
    (9, True)
    """
    n = len(ts)
    hour, day = np.empty(n, np.int64), np.empty(n, np.int64)
    if not n:
        return hour, day
    lo = hi = 0
    offs = np.zeros(1, np.int64)
    if tz != "UTC":
        lo, hi = int(ts.min()) // _SLOT, int(ts.max()) // _SLOT
        if hi - lo > _DENSE_SLOTS:
            minute, d, _ = local_clock(ts, tz)
            return (minute // 60).astype(np.int64), d.astype(np.int64)
        offs = _offsets(lo, hi, tz)
    _hour_and_day(ts, lo, offs, tz != "UTC", hour, day)
    return hour, day


@njit(cache=True, nogil=True)
def _hour_and_day(ts, lo, offs, shift, hour, day):
    for i in range(len(ts)):
        local = ts[i] // _NS
        if shift:
            local += offs[ts[i] // _SLOT - lo]
        d = local // 86400
        day[i] = d
        hour[i] = (local - d * 86400) // 3600


def _offsets(lo: int, hi: int, tz: str) -> np.ndarray:
    """UTC offset in seconds of every 15-minute slot from ``lo`` to ``hi``."""
    return _offsets_of(range(lo, hi + 1), tz)


def _offsets_of(slots, tz: str) -> np.ndarray:
    zone = ZoneInfo(tz)
    return np.array([datetime.fromtimestamp(int(s) * 900, tz=timezone.utc).astimezone(zone).utcoffset().total_seconds()
                     for s in (slots.tolist() if isinstance(slots, np.ndarray) else slots)], dtype=np.int64)


def in_session(cal: Calendar, minute: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """True where the local time is inside the calendar's trading hours."""
    days = np.zeros(7, bool)
    days[list(cal.days)] = True
    ok = days[weekday]
    if cal.is_24h:
        return ok
    o, c = cal.open_minute, cal.close_minute
    within = (minute >= o) & (minute < c) if o < c else (minute >= o) | (minute < c)
    return ok & within
