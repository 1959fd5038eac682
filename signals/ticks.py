"""The tick contract: a columnar batch of trades and the reasons a row can be rejected.

Every input path (CSV, JSON lines, Kafka JSON, Kafka binary batches) ends in a
:class:`TickBatch`; :func:`validate` applies the same static checks to all of them, so a
bad tick is rejected for the same reason whichever way it arrived.

Columns
-------
instrument : str        instrument name (any non-empty string)
ts         : int64      event time, ns since the Unix epoch, UTC
price      : float64    trade price, > 0
size       : float64    traded quantity, >= 0
side       : int8       aggressor side: +1 buy, -1 sell, 0 unknown (tick rule is used)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

SIDE_BUY = 1
SIDE_SELL = -1
SIDE_UNKNOWN = 0

#: Reject reasons. Code 0 means accepted; the index in this tuple is the reason code.
REASONS: tuple[str, ...] = (
    "ok",
    "malformed",          # not parseable at all (bad JSON, wrong column count, bad batch header)
    "missing_field",      # a required field is absent or empty
    "bad_instrument",     # instrument is not a non-empty string
    "bad_ts",             # time not an integer ns or ISO-8601 with offset
    "bad_price",          # NaN, inf, not a number or <= 0
    "bad_size",           # NaN, inf, not a number or < 0
    "bad_side",           # side not one of B/S/buy/sell/1/-1/empty
    "out_of_order",       # older than the instrument's last tick by more than the tolerance
    "outside_session",    # outside the instrument's trading hours
    "unknown_version",    # binary batch with an unknown format version
)
REASON_CODE: dict[str, int] = {r: i for i, r in enumerate(REASONS)}

_SIDE_WORDS = {
    "": 0, "b": 1, "buy": 1, "1": 1, "+1": 1, "s": -1, "sell": -1, "-1": -1,
    "0": 0, "u": 0, "unknown": 0, "none": 0, "null": 0,
}


@dataclass(frozen=True, slots=True)
class TickBatch:
    """A batch of ticks in columns; ``code`` indexes ``instruments``.

    Examples
    --------
    >>> b = TickBatch.from_columns(["A", "B", "A"], [1, 2, 3], [10.0, 20.0, 10.5], [1, 1, 2])
    >>> b.instruments, b.code.tolist(), len(b)
    (('A', 'B'), [0, 1, 0], 3)
    """

    instruments: tuple[str, ...]
    code: np.ndarray
    ts: np.ndarray
    price: np.ndarray
    size: np.ndarray
    side: np.ndarray

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @classmethod
    def from_columns(cls, instrument, ts, price, size, side=None) -> "TickBatch":
        """Build a batch from per-row columns (instrument names repeated per row)."""
        names = np.asarray(instrument)
        if names.dtype.kind not in "UO":
            names = names.astype(str)
        cats, code = np.unique(names, return_inverse=True) if len(names) else (np.array([], dtype=str), np.zeros(0, np.int64))
        n = len(names)
        side_arr = np.zeros(n, np.int8) if side is None else np.asarray(side, dtype=np.int8)
        return cls(
            instruments=tuple(str(c) for c in cats),
            code=np.ascontiguousarray(code, dtype=np.int32),
            ts=np.ascontiguousarray(ts, dtype=np.int64),
            price=np.ascontiguousarray(price, dtype=np.float64),
            size=np.ascontiguousarray(size, dtype=np.float64),
            side=np.ascontiguousarray(side_arr, dtype=np.int8),
        )

    @classmethod
    def empty(cls) -> "TickBatch":
        return cls.from_columns([], np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    def select(self, mask_or_index) -> "TickBatch":
        """Rows chosen by a boolean mask or an index array (instrument categories kept)."""
        return TickBatch(self.instruments, self.code[mask_or_index], self.ts[mask_or_index],
                         self.price[mask_or_index], self.size[mask_or_index], self.side[mask_or_index])

    def instrument_names(self) -> np.ndarray:
        """Per-row instrument names (object array); for reports and tests, not the hot path."""
        return np.asarray(self.instruments, dtype=object)[self.code] if len(self) else np.zeros(0, object)

    @staticmethod
    def concat(batches: Sequence["TickBatch"]) -> "TickBatch":
        """Concatenate batches, merging their instrument categories."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return TickBatch.empty()
        names: dict[str, int] = {}
        codes = []
        for b in batches:
            remap = np.array([names.setdefault(n, len(names)) for n in b.instruments], dtype=np.int32)
            codes.append(remap[b.code])
        return TickBatch(tuple(names), np.concatenate(codes),
                         np.concatenate([b.ts for b in batches]),
                         np.concatenate([b.price for b in batches]),
                         np.concatenate([b.size for b in batches]),
                         np.concatenate([b.side for b in batches]))


def validate(batch: TickBatch) -> tuple[TickBatch, np.ndarray]:
    """Static checks on every row; returns (accepted rows, reason code per input row).

    Ordering checks need the engine's state and are made by the engine.

    >>> b = TickBatch.from_columns(["A", "A"], [1, 2], [10.0, -1.0], [1, 1])
    >>> good, reason = validate(b)
    >>> len(good), [REASONS[r] for r in reason]
    (1, ['ok', 'bad_price'])
    """
    reason = np.zeros(len(batch), np.int8)
    bad_size = ~np.isfinite(batch.size) | (batch.size < 0)
    reason[bad_size] = REASON_CODE["bad_size"]
    bad_price = ~np.isfinite(batch.price) | ~(batch.price > 0)
    reason[bad_price] = REASON_CODE["bad_price"]
    bad_side = (batch.side < -1) | (batch.side > 1)
    reason[bad_side] = REASON_CODE["bad_side"]
    bad_names = np.array([not n or not n.strip() for n in batch.instruments], dtype=bool)
    if bad_names.any():
        reason[bad_names[batch.code]] = REASON_CODE["bad_instrument"]
    ok = reason == 0
    return (batch if ok.all() else batch.select(ok)), reason


def parse_side(values: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Aggressor sides from words or numbers; returns (side int8, ok bool).

    >>> s, ok = parse_side(["B", "sell", "", "-1", "x"])
    >>> s.tolist(), ok.tolist()
    ([1, -1, 0, -1, 0], [True, True, True, True, False])
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "iuf":
        f = arr.astype(np.float64)
        nan = np.isnan(f)
        ok = nan | (f == 1) | (f == -1) | (f == 0)
        return np.where(ok & ~nan, f, 0).astype(np.int8), ok
    uniq, inv = np.unique(arr.astype(str), return_inverse=True)
    mapped = np.array([_SIDE_WORDS.get(u.strip().lower(), 9) for u in uniq], dtype=np.int8)
    s = mapped[inv] if len(arr) else np.zeros(0, np.int8)
    ok = s != 9
    return np.where(ok, s, 0).astype(np.int8), ok


def parse_ts(values: Iterable) -> tuple[np.ndarray, np.ndarray]:
    """Event times as int64 ns UTC from integers (ns) or ISO-8601 strings with an offset.

    Returns (ts int64, ok bool). A string without an explicit offset (``Z`` or ``+hh:mm``)
    is rejected: a naive time is ambiguous.

    >>> ts, ok = parse_ts(["2025-05-20T13:30:00Z", "2025-05-20T09:30:00-04:00", "2025-05-20T13:30:00", "17"])
    >>> ts.tolist()[:2] == [1747747800000000000] * 2, ok.tolist()
    (True, [True, True, False, True])
    """
    arr = np.asarray(values)
    n = arr.shape[0]
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64), np.ones(n, bool)
    if arr.dtype.kind == "f":
        ok = np.isfinite(arr) & (arr == np.floor(arr)) & (np.abs(arr) < 9.2e18)
        return np.where(ok, arr, 0).astype(np.int64), ok
    s = np.char.strip(arr.astype(str))
    ts = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    body = np.char.lstrip(s, "-")
    blen = np.char.str_len(body)
    # at most one minus sign and no int64 overflow (19-digit strings compare as numbers)
    digits = (_ascii_digits(body, blen) & (np.char.str_len(s) - blen <= 1)
              & ((blen < 19) | ((blen == 19) & (body <= "9223372036854775807"))))
    if digits.any():
        ts[digits] = s[digits].astype(np.int64)
        ok[digits] = True
    rest = np.flatnonzero(~digits)
    if rest.size:
        fast_ts, fast_ok = _iso_canonical(s[rest])
        ts[rest[fast_ok]] = fast_ts[fast_ok]
        ok[rest[fast_ok]] = True
        rest = rest[~fast_ok]
    if rest.size:
        sub = s[rest]
        uniq, inv = np.unique(sub, return_inverse=True)
        parsed = np.array([_iso_to_ns(u) for u in uniq], dtype=object)
        vals = parsed[inv]
        good = np.array([v is not None for v in vals], dtype=bool)
        ts[rest[good]] = np.array([v for v in vals[good]], dtype=np.int64) if good.any() else 0
        ok[rest[good]] = True
    return ts, ok


def _ascii_digits(body: np.ndarray, length: np.ndarray) -> np.ndarray:
    """True where a string is non-empty and only ASCII 0-9 (``str.isdigit`` also takes '²' and '１')."""
    if not len(body):
        return np.zeros(0, bool)
    width = max(body.dtype.itemsize // 4, 1)
    code = np.ascontiguousarray(body, dtype=f"U{width}").view(np.uint32).reshape(len(body), width)
    return ((code == 0) | ((code >= 48) & (code <= 57))).all(axis=1) & (length > 0)


def _iso_to_ns(text: str):
    """One ISO-8601 timestamp with offset to ns, or None. Sub-microsecond digits are kept."""
    from datetime import datetime

    t = text.strip()
    if not t or not (t.endswith("Z") or t.endswith("z") or _has_offset(t)):
        return None
    frac_ns = 0
    core = t[:-1] + "+00:00" if t[-1] in "Zz" else t
    dot = core.find(".")
    if dot != -1:
        end = dot + 1
        while end < len(core) and core[end].isdigit():
            end += 1
        digits = core[dot + 1:end]
        if not digits:
            return None
        frac_ns = int((digits + "000000000")[:9])
        core = core[:dot] + core[end:]
    try:
        dt = datetime.fromisoformat(core)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    ns = int(dt.timestamp()) * 1_000_000_000 + frac_ns
    return ns if -2**63 <= ns < 2**63 else None


_ISO_WIDTH = 40
_ISO_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]


def _iso_canonical(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The common shape ``YYYY-MM-DDTHH:MM:SS[.digits](Z|z|+hh:mm|-hh:mm)`` parsed with array arithmetic.

    Gives exactly what :func:`_iso_to_ns` gives for the strings it accepts (ok True) and leaves
    every other string to it, so a tape of ISO times parses at array speed.
    """
    n = len(s)
    ts = np.zeros(n, np.int64)
    length = np.char.str_len(s) if n else np.zeros(0, np.int64)
    cand = np.flatnonzero((length >= 20) & (length <= _ISO_WIDTH))
    if not cand.size:
        return ts, np.zeros(n, bool)
    width = min(max(s.dtype.itemsize // 4, 29), _ISO_WIDTH)
    code = np.ascontiguousarray(s[cand], dtype=f"U{width}").view(np.uint32).reshape(-1, width)
    m = code.astype(np.uint8)
    m[code >= 128] = 0  # non-ASCII characters fail every test below
    L = length[cand]
    rows = np.arange(len(cand))
    d = m - np.uint8(48)  # digit values (wraps around for characters below '0')
    isd = d <= 9
    ok = isd[:, _ISO_DIGITS].all(axis=1)
    ok &= (m[:, 4] == 45) & (m[:, 7] == 45) & (m[:, 10] == 84) & (m[:, 13] == 58) & (m[:, 16] == 58)
    last = m[rows, L - 1]
    zulu = (last == 90) | (last == 122)
    sign = m[rows, L - 6]
    offset = (~zulu & ((sign == 43) | (sign == 45)) & (m[rows, L - 3] == 58)
              & isd[rows, L - 5] & isd[rows, L - 4] & isd[rows, L - 2] & isd[rows, L - 1])
    ok &= zulu | offset
    core = np.where(zulu, L - 1, L - 6)  # length without the zone
    cols = np.arange(width)
    frac = (cols >= 20) & (cols < core[:, None])
    ok &= (core == 19) | ((core >= 21) & (m[:, 19] == 46) & (isd | ~frac).all(axis=1))
    year = d[:, 0:4].astype(np.int64) @ np.array([1000, 100, 10, 1])
    month, day, hour, minute, second = (d[:, p:p + 2].astype(np.int64) @ np.array([10, 1]) for p in (5, 8, 11, 14, 17))
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    mdays = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok &= (year >= 1678) & (year <= 2261) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= mdays)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    tail = d[rows[:, None], L[:, None] - np.array([5, 4, 2, 1])].astype(np.int64)
    off_h, off_m = tail[:, 0] * 10 + tail[:, 1], tail[:, 2] * 10 + tail[:, 3]
    ok &= zulu | ((off_h <= 23) & (off_m <= 59))
    # days since 1970-01-01 (proleptic Gregorian, H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    fraction = (d[:, 20:29].astype(np.int64) * np.where(frac[:, 20:29], 10 ** np.arange(8, -1, -1), 0)).sum(axis=1)
    offset_s = np.where(zulu, 0, np.where(sign == 45, -1, 1) * (off_h * 3600 + off_m * 60))
    value = ((days * 86400 + hour * 3600 + minute * 60 + second - offset_s) * 1_000_000_000 + fraction)
    ts[cand[ok]] = value[ok]
    good = np.zeros(n, bool)
    good[cand[ok]] = True
    return ts, good


def _has_offset(t: str) -> bool:
    tail = t[-6:]
    return len(tail) == 6 and tail[0] in "+-" and tail[3] == ":" and "T" in t.upper()
