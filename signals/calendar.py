"""Local clock of an instrument: minute of day, local date and weekday, DST-aware and vectorised."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np

from .config import Calendar

_NS = 1_000_000_000
_SLOT = 900 * _NS        # UTC offsets change only on 15-minute boundaries in every IANA zone in use


def local_clock(ts: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(minute of local day int32, local day number int32, weekday int8 with Monday = 0).

    >>> ts = np.array([1747747800 * 10**9])          # 2025-05-20 13:30 UTC, 09:30 in New York
    >>> m, d, w = local_clock(ts, "America/New_York")
    >>> int(m[0]) // 60, int(m[0]) % 60, int(w[0])
    (9, 30, 1)
    """
    secs = ts // _NS
    if tz == "UTC":
        local = secs
    else:
        slots, inv = np.unique(ts // _SLOT, return_inverse=True)
        zone = ZoneInfo(tz)
        offs = np.array([
            datetime.fromtimestamp(int(s) * 900, tz=timezone.utc).astimezone(zone).utcoffset().total_seconds()
            for s in slots], dtype=np.int64)
        local = secs + offs[inv]
    day = local // 86400
    minute = (local - day * 86400) // 60
    weekday = (day + 3) % 7           # 1970-01-01 was a Thursday
    return minute.astype(np.int32), day.astype(np.int32), weekday.astype(np.int8)


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
