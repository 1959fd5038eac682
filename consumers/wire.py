"""Kafka message values on the ``ticks`` topic: JSON per tick and binary batches.

Pure decoding and encoding, no broker needed. See ``docs/wire-format.md`` for the byte layout.

* JSON: one tick object per message, ``{"instrument", "ts", "price", "size", "side"}``.
* Binary batch: many ticks (of any instruments) per message, ``b"TWB1"`` + version + columns.

:func:`decode` turns a poll's worth of values into one :class:`~signals.ticks.TickBatch` of the
accepted rows, which message (and row within it) each came from, and a :class:`Reject` for
every bad message or row, with a reason from :data:`signals.ticks.REASONS`. Nothing raises on
bad input.

Examples
--------
>>> from signals.ticks import TickBatch
>>> b = TickBatch.from_columns(["UST10Y", "UST10Y"], [1, 2], [4.5, 4.51], [10, 5], [-1, 1])
>>> d = decode([encode_batch(b), b'{"instrument": "DXY", "ts": 3, "price": 100.1, "size": 1}', b"{oops"])
>>> d.batch.instrument_names().tolist(), d.msg_index.tolist()
(['UST10Y', 'UST10Y', 'DXY'], [0, 0, 1])
>>> [(r.message_index, r.reason) for r in d.rejects]
[(2, 'malformed')]
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from itertools import repeat
from typing import Literal, Sequence

import numpy as np
import orjson

from signals.ticks import REASON_CODE, REASONS, TickBatch, parse_side, parse_ts, validate

MAGIC = b"TWB1"
VERSION = 1
FORMATS = ("json", "batch", "auto")

_HEADER = struct.Struct("<4sB3sII")     # magic, version, reserved (zero), n_rows, n_instruments
_NAME_LEN = struct.Struct("<H")
_ROW_BYTES = 8 + 8 + 8 + 4 + 1          # ts, price, size, code, side
_MAX_NAME_BYTES = 0xFFFF
_NAT = -2**63                           # numpy's "not a time": rejected as bad_ts in both formats
_MAX_TS_CHARS = 64                      # longer strings are not timestamps (and would widen numpy arrays)
_MAX_SIDE_CHARS = 16
_UNPARSED = object()                    # placeholder for a value that is not JSON at all

_MISSING = REASON_CODE["missing_field"]

#: What a rejected field should have been, for the dead-letter error text.
_EXPECTED = {
    "missing_field": "a required field is absent, null or empty",
    "bad_instrument": "instrument must be a non-empty string",
    "bad_ts": "ts must be integer ns since the epoch or ISO-8601 with an offset",
    "bad_price": "price must be a finite number > 0",
    "bad_size": "size must be a finite number >= 0",
    "bad_side": "side must be B/S, buy/sell, 1/-1 or empty",
    "out_of_order": "older than the instrument's last tick by more than the tolerance",
    "outside_session": "outside the instrument's trading hours",
}
_FIELD = {"bad_instrument": "instrument", "bad_ts": "ts", "bad_price": "price", "bad_size": "size",
          "bad_side": "side"}
_SIDE_TEXT = {1: "B", -1: "S", 0: ""}


@dataclass(frozen=True, slots=True)
class Reject:
    """One rejected message (``row is None``) or one rejected row of a message."""

    message_index: int
    row: int | None
    reason: str
    error: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """The result of :func:`decode`.

    Attributes
    ----------
    batch : TickBatch
        Accepted rows, in message order and, within a batch message, in row order.
    msg_index : int64 array
        For each accepted row, the index of the message it came from.
    msg_row : int32 array
        For each accepted row, its row number inside that message (always 0 for JSON).
    rejects : list of Reject
        Every bad message or row.
    """

    batch: TickBatch
    msg_index: np.ndarray
    msg_row: np.ndarray
    rejects: list[Reject]

    def rejects_for(self, reason: np.ndarray) -> list[Reject]:
        """Rejects for accepted rows that a later stage refused, e.g. the engine's ``BatchResult.reason``.

        ``reason`` holds one code of :data:`signals.ticks.REASONS` per row of :attr:`batch`.
        """
        reason = np.asarray(reason)
        if reason.shape != (len(self.batch),):
            raise ValueError(f"reason must have one code per accepted row ({len(self.batch)}), got shape {reason.shape}")
        out = []
        for i in np.flatnonzero(reason):
            name = REASONS[reason[i]]
            out.append(Reject(int(self.msg_index[i]), int(self.msg_row[i]), name,
                              f"{self.batch.instruments[self.batch.code[i]]} ts {int(self.batch.ts[i])}: {_EXPECTED.get(name, name)}"))
        return out


def decode(values: Sequence[bytes | None], *, fmt: Literal["json", "batch", "auto"] = "auto") -> Decoded:
    """Decode Kafka message values into accepted ticks and rejects.

    Parameters
    ----------
    values
        Message values in partition order (``None`` for a null value).
    fmt
        ``"json"``, ``"batch"`` or ``"auto"`` (values starting with :data:`MAGIC` are batches,
        everything else JSON).

    Returns
    -------
    Decoded
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "json":
        return _decode_json(values, np.arange(len(values)))
    if fmt == "batch":
        return _decode_batches(values, np.arange(len(values)))
    try:
        flags = list(map(bytes.startswith, values, repeat(MAGIC)))
    except TypeError:                   # a null value (or not bytes) somewhere in the poll
        flags = [v is not None and bytes(v[:4]) == MAGIC for v in values]
    n_batch = sum(flags)
    if n_batch == 0:
        return _decode_json(values, np.arange(len(values)))
    if n_batch == len(values):
        return _decode_batches(values, np.arange(len(values)))
    is_batch = np.array(flags, bool)
    b_idx, j_idx = np.flatnonzero(is_batch), np.flatnonzero(~is_batch)
    parts = [_decode_batches([values[i] for i in b_idx], b_idx), _decode_json([values[i] for i in j_idx], j_idx)]
    msg_index = np.concatenate([p.msg_index for p in parts])
    order = np.argsort(msg_index, kind="stable")
    merged = TickBatch.concat([p.batch for p in parts])
    rejects = sorted(parts[0].rejects + parts[1].rejects, key=lambda r: (r.message_index, r.row or 0))
    return Decoded(merged.select(order), msg_index[order], np.concatenate([p.msg_row for p in parts])[order], rejects)


# --------------------------------------------------------------------------------------------- JSON

def _decode_json(values: Sequence[bytes | None], index: np.ndarray) -> Decoded:
    """One tick object per message; ``index`` maps positions in ``values`` to caller message indices."""
    rejects: list[Reject] = []
    try:
        objs = list(map(orjson.loads, values))
    except (orjson.JSONDecodeError, TypeError):
        objs = []
        for i, v in enumerate(values):
            try:
                objs.append(orjson.loads(v))
            except (orjson.JSONDecodeError, TypeError) as e:
                objs.append(_UNPARSED)
                rejects.append(Reject(int(index[i]), None, "malformed",
                                      "null message value" if v is None else f"invalid JSON: {e}"))
    pos = np.arange(len(objs))
    if set(map(type, objs)) != {dict}:
        keep = np.array([type(o) is dict for o in objs], bool)
        rejects.extend(Reject(int(index[i]), None, "malformed", f"expected a JSON object, got {_short(objs[i])}")
                       for i in np.flatnonzero(~keep) if objs[i] is not _UNPARSED)
        pos = pos[keep]
        objs = [objs[i] for i in pos]
    names, code, r_inst = _instrument_col(_field(objs, "instrument"))
    ts, r_ts = _ts_col(_field(objs, "ts"))
    price, r_price = _number_col(_field(objs, "price"), REASON_CODE["bad_price"])
    size, r_size = _number_col(_field(objs, "size"), REASON_CODE["bad_size"])
    side, r_side = _side_col(_field(objs, "side"))
    reason = np.zeros(len(objs), np.int8)
    for r in (r_side, r_size, r_price, r_ts, r_inst):      # the earliest field's problem wins
        reason = np.where(r != 0, r, reason)
    missing = (r_inst == _MISSING) | (r_ts == _MISSING) | (r_price == _MISSING) | (r_size == _MISSING)
    reason[missing] = _MISSING
    ok = np.flatnonzero(reason == 0)
    good, vreason = validate(TickBatch(names, code[ok], ts[ok], price[ok], size[ok], side[ok]))
    reason[ok] = vreason
    rejects.extend(Reject(int(index[pos[i]]), 0, REASONS[reason[i]], _row_error(REASONS[reason[i]], objs[i]))
                   for i in np.flatnonzero(reason))
    rejects.sort(key=lambda r: r.message_index)
    accepted = pos[reason == 0]
    return Decoded(_used_names_only(good), index[accepted].astype(np.int64), np.zeros(len(accepted), np.int32), rejects)


def _field(objs: list[dict], name: str) -> list:
    return list(map(dict.get, objs, repeat(name)))


def _used_names_only(batch: TickBatch) -> TickBatch:
    """Drop instrument names no accepted row uses (a rejected row's name must not reach the engine)."""
    used = np.bincount(batch.code, minlength=len(batch.instruments)) > 0
    if used.all():
        return batch
    remap = np.cumsum(used, dtype=np.int32) - 1
    names = tuple(n for n, u in zip(batch.instruments, used) if u)
    return TickBatch(names, remap[batch.code], batch.ts, batch.price, batch.size, batch.side)


def _missing(v) -> bool:
    return v is None or v == ""


def _instrument_col(col: list) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(names in first-seen order, code per row, reason per row)."""
    reason = np.zeros(len(col), np.int8)
    if set(map(type, col)) != {str}:
        reason = np.array([0 if type(v) is str else _MISSING if v is None else REASON_CODE["bad_instrument"]
                           for v in col], np.int8)
        col = [v if type(v) is str else "" for v in col]
    names = {k: i for i, k in enumerate(dict.fromkeys(col))}
    code = np.fromiter(map(names.__getitem__, col), np.int32, len(col))
    if "" in names:
        reason[(code == names[""]) & (reason == 0)] = _MISSING
    return tuple(names), code, reason


def _ts_col(col: list) -> tuple[np.ndarray, np.ndarray]:
    """Integer ns, or ISO-8601 strings / integral floats through :func:`signals.ticks.parse_ts`."""
    n = len(col)
    if set(map(type, col)) == {int}:
        try:
            ts = np.array(col, np.int64)
            return ts, np.where(ts == _NAT, REASON_CODE["bad_ts"], 0).astype(np.int8)
        except OverflowError:
            pass
    ts = np.zeros(n, np.int64)
    reason = np.full(n, REASON_CODE["bad_ts"], np.int8)
    strs, floats = [], []
    for i, v in enumerate(col):
        t = type(v)
        if _missing(v):
            reason[i] = _MISSING
        elif t is int:
            if _NAT < v < -_NAT:
                ts[i], reason[i] = v, 0
        elif t is str:
            if len(v) <= _MAX_TS_CHARS:
                strs.append(i)
        elif t is float:
            floats.append(i)
    for idx, dtype in ((strs, str), (floats, np.float64)):
        if idx:
            vals, ok = _parse_ts_safe(np.array([col[i] for i in idx], dtype=dtype))
            ts[idx] = vals
            reason[np.array(idx)[ok]] = 0
    reason[(ts == _NAT) & (reason == 0)] = REASON_CODE["bad_ts"]
    return ts, reason


def _parse_ts_safe(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`signals.ticks.parse_ts`, one value at a time if a hostile value makes it raise."""
    try:
        return parse_ts(arr)
    except (ValueError, OverflowError):
        ts, ok = np.zeros(len(arr), np.int64), np.zeros(len(arr), bool)
        for i in range(len(arr)):
            try:
                t, o = parse_ts(arr[i:i + 1])
            except (ValueError, OverflowError):
                continue
            ts[i], ok[i] = t[0], o[0]
        return ts, ok


def _number_col(col: list, bad: int) -> tuple[np.ndarray, np.ndarray]:
    """Floats from JSON numbers or numeric strings; ``bad`` is the reason code for anything else."""
    n = len(col)
    if set(map(type, col)) <= {int, float}:
        return np.array(col, np.float64), np.zeros(n, np.int8)
    out = np.full(n, np.nan)
    reason = np.zeros(n, np.int8)
    for i, v in enumerate(col):
        t = type(v)
        if t is int or t is float:
            out[i] = v
        elif _missing(v):
            reason[i] = _MISSING
        elif t is str:
            try:
                out[i] = float(v)
            except ValueError:
                reason[i] = bad
        else:
            reason[i] = bad
    return out, reason


def _side_col(col: list) -> tuple[np.ndarray, np.ndarray]:
    """Side words via :func:`signals.ticks.parse_side`, or the numbers 1/-1/0; absent or null is unknown (0)."""
    n = len(col)
    bad = REASON_CODE["bad_side"]
    kinds = set(map(type, col))
    if kinds == {str} and max(map(len, col), default=0) <= _MAX_SIDE_CHARS:
        words = list(dict.fromkeys(col))                 # a handful of distinct words per poll
        side, ok = parse_side(words)
        lookup = dict(zip(words, np.where(ok, side, 9).tolist()))
        side = np.fromiter(map(lookup.__getitem__, col), np.int8, n)
        return np.where(side == 9, 0, side).astype(np.int8), np.where(side == 9, bad, 0).astype(np.int8)
    side = np.zeros(n, np.int8)
    reason = np.zeros(n, np.int8)
    if kinds <= {type(None)}:
        return side, reason
    strs = []
    for i, v in enumerate(col):
        t = type(v)
        if v is None:
            continue
        if t is str and len(v) <= _MAX_SIDE_CHARS:
            strs.append(i)
        elif (t is int or t is float) and v in (1, -1, 0):
            side[i] = v
        else:
            reason[i] = bad
    if strs:
        s, ok = parse_side([col[i] for i in strs])
        side[strs] = s
        reason[np.array(strs)[~ok]] = bad
    return side, reason


def _row_error(reason: str, obj: dict) -> str:
    if reason == "missing_field":
        absent = [f for f in ("instrument", "ts", "price", "size") if _missing(obj.get(f))]
        return f"missing field {', '.join(absent)}"
    field = _FIELD[reason]
    return f"{field} {_short(obj.get(field))}: {_EXPECTED[reason]}"


def _short(v, limit: int = 80) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ----------------------------------------------------------------------------------- binary batches

def encode_batch(batch: TickBatch) -> bytes:
    """One binary batch message (format version :data:`VERSION`) holding every row of ``batch``.

    Only the instruments that occur in ``batch`` go into the name table.

    Raises
    ------
    ValueError
        If an instrument name is longer than 65535 UTF-8 bytes or the batch has 2**32 rows or more.
    """
    n = len(batch)
    if n >= 2**32:
        raise ValueError(f"a batch message holds fewer than 2**32 rows, got {n}")
    used, code = np.unique(batch.code, return_inverse=True)
    names = [batch.instruments[c].encode("utf-8") for c in used]
    table = bytearray()
    for name in names:
        if len(name) > _MAX_NAME_BYTES:
            raise ValueError(f"instrument name longer than {_MAX_NAME_BYTES} UTF-8 bytes: {name[:40]!r}...")
        table += _NAME_LEN.pack(len(name)) + name
    head = _HEADER.pack(MAGIC, VERSION, b"\0\0\0", n, len(names)) + table
    head += b"\0" * (-len(head) % 8)
    return b"".join((head, batch.ts.astype("<i8").tobytes(), batch.price.astype("<f8").tobytes(),
                     batch.size.astype("<f8").tobytes(), code.astype("<i4").tobytes(),
                     batch.side.astype("i1").tobytes()))


def _decode_batches(values: Sequence[bytes | None], index: np.ndarray) -> Decoded:
    """Batch messages: headers one by one, then every column of every message in one numpy pass."""
    rejects: list[Reject] = []
    msgs, names, counts, n_names = [], {}, [], []
    remap: list[int] = []                                   # per message, its names' global codes
    cols: list[list] = [[], [], [], [], []]                 # ts, price, size, code, side byte ranges
    for i, v in enumerate(values):
        try:
            table, start, n = _read_header(v)
        except _BadMessage as e:
            rejects.append(Reject(int(index[i]), None, e.reason, str(e)))
            continue
        msgs.append(int(index[i]))
        counts.append(n)
        n_names.append(len(table))
        remap.extend(names.setdefault(name, len(names)) for name in table)
        view = memoryview(v)
        for col, lo, hi in zip(cols, (0, 8, 16, 24, 28), (8, 16, 24, 28, 29)):
            col.append(view[start + lo * n:start + hi * n])
    counts_a, n_names_a = np.array(counts, np.int64), np.array(n_names, np.int64)
    total = int(counts_a.sum())
    ts, price, size, code, side = (
        np.frombuffer(bytearray().join(parts), dtype, total).astype(dtype[-2:], copy=False)
        for parts, dtype in zip(cols, ("<i8", "<f8", "<f8", "<i4", "i1")))
    msg_index = np.repeat(np.array(msgs, np.int64), counts_a)
    msg_row = (np.arange(total) - np.repeat(np.cumsum(counts_a) - counts_a, counts_a)).astype(np.int32)
    if (n_names_a == 1).all():
        # the usual case (``tapewatch publish`` sends one instrument per message): every row's
        # code must be 0 and its name is the message's one name
        row_names = None
        bad_code = code != 0
        global_code = np.repeat(np.array(remap, np.int32), counts_a)
    else:
        row_names = np.repeat(n_names_a, counts_a)
        bad_code = (code < 0) | (code >= row_names)
        first_name = np.repeat(np.cumsum(n_names_a) - n_names_a, counts_a)
        global_code = np.array(remap + [0], np.int32)[np.where(bad_code, len(remap), first_name + code)]
    batch = TickBatch(tuple(names), global_code, ts, price, size, side)
    _, reason = validate(batch)
    reason[(ts == _NAT) & (reason != REASON_CODE["bad_instrument"])] = REASON_CODE["bad_ts"]
    reason[bad_code] = REASON_CODE["bad_instrument"]
    for r in np.flatnonzero(reason):
        text = (f"instrument code {int(code[r])} is not in the name table of "
                f"{1 if row_names is None else int(row_names[r])} names"
                if bad_code[r] else _batch_row_error(REASONS[reason[r]], batch, r))
        rejects.append(Reject(int(msg_index[r]), int(msg_row[r]), REASONS[reason[r]], text))
    rejects.sort(key=lambda r: (r.message_index, r.row or 0))
    ok = reason == 0
    if not ok.all():
        batch, msg_index, msg_row = batch.select(ok), msg_index[ok], msg_row[ok]
    return Decoded(_used_names_only(batch), msg_index, msg_row, rejects)


class _BadMessage(Exception):
    def __init__(self, reason: str, text: str):
        super().__init__(text)
        self.reason = reason


def _read_header(v: bytes | None) -> tuple[list[str], int, int]:
    """Check one batch message's header and length: (name table, offset of the columns, rows)."""
    if v is None:
        raise _BadMessage("malformed", "null message value")
    if len(v) < _HEADER.size:
        raise _BadMessage("malformed", f"batch is {len(v)} bytes, shorter than the {_HEADER.size}-byte header")
    magic, version, reserved, n, n_names = _HEADER.unpack_from(v)
    if magic != MAGIC:
        raise _BadMessage("malformed", f"batch magic is {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise _BadMessage("unknown_version", f"batch format version {version}; this reader knows version {VERSION}")
    if reserved != b"\0\0\0":
        raise _BadMessage("malformed", f"reserved header bytes are {reserved!r}, expected zeros")
    if _HEADER.size + 2 * n_names + n * _ROW_BYTES > len(v):
        raise _BadMessage("malformed", f"batch is {len(v)} bytes, too short for the {n} rows and {n_names} names its header says")
    pos, names = _HEADER.size, []
    for k in range(n_names):
        if pos + 2 > len(v):
            raise _BadMessage("malformed", f"name table truncated at name {k} of {n_names}")
        (length,) = _NAME_LEN.unpack_from(v, pos)
        raw = bytes(v[pos + 2:pos + 2 + length])
        if len(raw) != length:
            raise _BadMessage("malformed", f"name table truncated at name {k} of {n_names}")
        try:
            names.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise _BadMessage("malformed", f"instrument name {k} is not UTF-8: {e}") from None
        pos += 2 + length
    if len(set(names)) != len(names):
        raise _BadMessage("malformed", "instrument name table has duplicate names")
    pos += -pos % 8
    if len(v) != pos + n * _ROW_BYTES:
        raise _BadMessage("malformed", f"batch is {len(v)} bytes; header says {n} rows, which need {pos + n * _ROW_BYTES}")
    return names, pos, n


def _batch_row_error(reason: str, b: TickBatch, r: int) -> str:
    field = _FIELD.get(reason)
    value = {"ts": b.ts, "price": b.price, "size": b.size, "side": b.side}.get(field)
    shown = _short(b.instruments[b.code[r]]) if field == "instrument" else repr(value[r].item())
    return f"{field} {shown}: {_EXPECTED[reason]}"


def encode_json(batch: TickBatch) -> list[bytes]:
    """One JSON message value per row of ``batch`` (``ts`` as integer ns, ``side`` as B/S/empty)."""
    names = batch.instrument_names().tolist()
    sides = [_SIDE_TEXT[s] for s in batch.side.tolist()]
    dumps = orjson.dumps
    return [dumps({"instrument": i, "ts": t, "price": p, "size": s, "side": d})
            for i, t, p, s, d in zip(names, batch.ts.tolist(), batch.price.tolist(), batch.size.tolist(), sides)]
