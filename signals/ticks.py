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
    digits = (np.char.isdigit(body) & (np.char.str_len(s) - blen <= 1)
              & ((blen < 19) | ((blen == 19) & (body <= "9223372036854775807"))))
    if digits.any():
        ts[digits] = s[digits].astype(np.int64)
        ok[digits] = True
    rest = np.flatnonzero(~digits)
    if rest.size:
        sub = s[rest]
        uniq, inv = np.unique(sub, return_inverse=True)
        parsed = np.array([_iso_to_ns(u) for u in uniq], dtype=object)
        vals = parsed[inv]
        good = np.array([v is not None for v in vals], dtype=bool)
        ts[rest[good]] = np.array([v for v in vals[good]], dtype=np.int64) if good.any() else 0
        ok[rest[good]] = True
    return ts, ok


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
    return int(dt.timestamp()) * 1_000_000_000 + frac_ns


def _has_offset(t: str) -> bool:
    tail = t[-6:]
    return len(tail) == 6 and tail[0] in "+-" and tail[3] == ":" and "T" in t.upper()
