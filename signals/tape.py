"""Tape files read in chunks of :class:`~signals.ticks.TickBatch`, with bad rows counted, never raised.

Formats: CSV with a header row, JSON lines, Parquet; CSV and JSON lines may be gzip-compressed.
The format comes from the extension (``.csv``, ``.csv.gz``, ``.jsonl``, ``.ndjson``,
``.jsonl.gz``, ``.parquet``) or, for any other name, is sniffed from the first bytes.

Columns (see :mod:`signals.ticks`): ``instrument``, ``ts``, ``price``, ``size`` are required,
``side`` is optional, other columns are ignored. Column names in a CSV header are matched
case-insensitively.

pyarrow parses every format in bulk; Python only looks at single rows when a chunk cannot be
parsed in bulk (a malformed JSON line) or holds values pyarrow's fast casts refuse. A bad row
is skipped and counted under its reason name (:data:`signals.ticks.REASONS`); the first few
are reported with their 1-based line number in the file, the header being line 1 (for Parquet:
the 1-based row number). A CSV value spanning several lines (a quoted newline) shifts the line
numbers of the rows after it.

Examples
--------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
>>> _ = p.write_text("instrument,ts,price,size,side\\nUST10Y,1,4.5,1,S\\nUST10Y,2,-1,1,B\\n")
>>> batch, summary = read_tape(p)
>>> len(batch), summary.reasons, summary.bad_lines
(1, {'bad_price': 1}, [(3, 'bad_price')])
"""
from __future__ import annotations

import csv
import gzip
import io
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from .errors import InputError
from .ticks import REASON_CODE, REASONS, TickBatch, parse_side, parse_ts, validate

#: Columns a tape must have; ``side`` may be absent (unknown aggressor).
REQUIRED_COLUMNS = ("instrument", "ts", "price", "size")
COLUMNS = REQUIRED_COLUMNS + ("side",)
#: How many rejected rows per chunk (and per summary) keep their line number.
MAX_BAD_LINES = 10

_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
               ".parquet": "parquet", ".pq": "parquet"}
_MALFORMED = REASON_CODE["malformed"]
#: ISO-8601 times that Arrow's own parser reads exactly as :func:`parse_ts` does (the common
#: shape of a tape's times; anything else, and any chunk Arrow refuses, goes to parse_ts)
_ISO_ARROW = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
              r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")


@dataclass(frozen=True, slots=True)
class TapeChunk:
    """Consecutive rows of a tape.

    Attributes
    ----------
    batch : TickBatch
        The accepted rows, in file order.
    line : numpy.ndarray
        int64, the 1-based file line (Parquet: row number) of each row of ``batch``.
    rows : int
        Data rows read in this chunk, accepted or not (blank lines are not rows).
    reasons : dict
        Rejected rows by reason name.
    bad_lines : tuple
        The first :data:`MAX_BAD_LINES` rejected rows as ``(line, reason name)``.
    bytes_read, bytes_total : int
        Position in the file after this chunk and the file size (compressed bytes for gzip).
    """

    batch: TickBatch
    line: np.ndarray
    rows: int
    reasons: dict[str, int]
    bad_lines: tuple[tuple[int, str], ...]
    bytes_read: int
    bytes_total: int


@dataclass(slots=True)
class TapeSummary:
    """Row accounting over a whole tape; :meth:`add` each chunk, :meth:`reject` rows refused later."""

    rows: int = 0
    accepted: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    bad_lines: list[tuple[int, str]] = field(default_factory=list)

    def add(self, chunk: TapeChunk) -> None:
        self.rows += chunk.rows
        self.accepted += len(chunk.batch)
        self._count(chunk.reasons, chunk.bad_lines)

    def reject(self, line: np.ndarray, reason: np.ndarray) -> None:
        """Move accepted rows to rejected, e.g. those the engine refused as ``out_of_order``.

        ``line`` and ``reason`` (codes) cover the same rows; code 0 rows are ignored.
        """
        bad = np.flatnonzero(reason)
        if not bad.size:
            return
        self.accepted -= int(bad.size)
        counts = np.bincount(reason[bad], minlength=len(REASONS))
        self._count({REASONS[c]: int(n) for c, n in enumerate(counts) if n},
                    [(int(line[i]), REASONS[reason[i]]) for i in bad[:MAX_BAD_LINES]])

    @property
    def rejected(self) -> int:
        return sum(self.reasons.values())

    def _count(self, reasons, bad_lines) -> None:
        for name, n in reasons.items():
            self.reasons[name] = self.reasons.get(name, 0) + n
        self.bad_lines = sorted(self.bad_lines + list(bad_lines))[:MAX_BAD_LINES]


def tape_format(path: str | Path) -> tuple[str, bool]:
    """``(format, gzipped)`` of a tape: format is ``"csv"``, ``"jsonl"`` or ``"parquet"``.

    Raises
    ------
    InputError
        The file cannot be opened.
    """
    p = Path(path)
    suffixes = [s.lower() for s in p.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    ext = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes and not gz else "")
    try:
        with open(p, "rb") as f:
            head = f.read(4)
            if head[:2] == _GZIP_MAGIC:
                gz = True
                f.seek(0)
                try:
                    head = gzip.GzipFile(fileobj=f).read(4096)
                except (OSError, EOFError) as e:
                    raise InputError(f"tape {str(p)!r} is not a readable gzip file: {e}") from None
            elif ext not in _EXTENSIONS:
                head = head + f.read(4092)
    except OSError as e:
        raise InputError(f"cannot read tape {str(p)!r}: {e.strerror}") from None
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext], gz
    if head[:4] == _PARQUET_MAGIC:
        return "parquet", False
    return ("jsonl" if head.lstrip()[:1] == b"{" else "csv"), gz


def iter_tape(path: str | Path, *, chunk_rows: int = 1_000_000) -> Iterator[TapeChunk]:
    """Stream a tape file in chunks of about ``chunk_rows`` rows.

    Parameters
    ----------
    path
        A CSV, JSON-lines or Parquet file (see the module docstring).
    chunk_rows
        Approximate rows per chunk; memory use is a few hundred bytes per row.

    Raises
    ------
    InputError
        The file cannot be opened, a required CSV/Parquet column is missing, or the file
        is corrupt beyond single rows (e.g. a truncated gzip stream).
    """
    if not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    fmt, gz = tape_format(path)
    reader = {"csv": _iter_csv, "jsonl": _iter_jsonl, "parquet": _iter_parquet}[fmt]
    try:
        yield from reader(Path(path), gz, chunk_rows)
    except (pa.ArrowInvalid, OSError, EOFError) as e:
        raise InputError(f"tape {str(path)!r} cannot be read past this point: {e}") from None


def read_tape(path: str | Path) -> tuple[TickBatch, TapeSummary]:
    """A whole (small) tape as one batch and its row accounting."""
    summary = TapeSummary()
    batches = []
    for chunk in iter_tape(path):
        summary.add(chunk)
        batches.append(chunk.batch)
    return TickBatch.concat(batches), summary


# --- formats ---------------------------------------------------------------------------------

def _iter_csv(path: Path, gz: bool, chunk_rows: int) -> Iterator[TapeChunk]:
    total = path.stat().st_size
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
        sample = f.read(1 << 16)
    if not sample.strip():
        return
    header = sample.partition(b"\n")[0].decode("utf-8-sig", "replace").rstrip("\r")
    columns = _match_columns(path, next(csv.reader([header])))
    if b"\n" not in sample.rstrip():  # a header and no rows
        return
    # pyarrow parses fastest in blocks of about 1 MiB; a block holds whole rows, hence >= 64 KiB
    row_bytes = len(sample) / max(1, sample.count(b"\n"))
    block = int(min(max(chunk_rows * row_bytes, 1 << 16), 1 << 20))

    malformed: list[int] = []  # lines with the wrong column count not yet assigned to a chunk

    def on_invalid(row) -> str:
        malformed.append(row.number or 0)  # known because the reader runs on one thread
        return "skip"

    raw = pa.OSFile(str(path))
    types = {c: pa.string() for c in columns.values()}
    types[columns["instrument"]] = pa.dictionary(pa.int32(), pa.string())
    reader = pa_csv.open_csv(
        pa.CompressedInputStream(raw, "gzip") if gz else raw,
        read_options=pa_csv.ReadOptions(use_threads=False, block_size=block),
        parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid, ignore_empty_lines=False),
        convert_options=pa_csv.ConvertOptions(include_columns=list(columns.values()), column_types=types,
                                              strings_can_be_null=False, check_utf8=False),
    )
    next_line = 2
    parts: list[pa.RecordBatch] = []
    lines: list[np.ndarray] = []
    bad_rows: list[int] = []
    with raw:
        for rb in itertools.chain(reader, [None]):
            if rb is not None:
                n = rb.num_rows
                line = next_line + np.arange(n)
                if malformed:
                    # parsed rows before each malformed line; those before this batch's end are its own
                    before = np.asarray(malformed, np.int64) - next_line - np.arange(len(malformed))
                    mine = int(np.searchsorted(before, n))
                    line += np.searchsorted(before[:mine], np.arange(n), side="right")
                    bad_rows += malformed[:mine]
                    del malformed[:mine]
                if n:
                    next_line = int(line[-1]) + 1
                parts.append(rb)
                lines.append(line)
                if sum(len(x) for x in lines) < chunk_rows:
                    continue
            else:
                bad_rows += malformed
            if not parts and not bad_rows:
                break
            table = pa.Table.from_batches(parts, schema=reader.schema).unify_dictionaries()
            cols = {k: table.column(v) for k, v in columns.items()}
            cols["instrument"] = cols["instrument"].combine_chunks()  # cheap: int32 codes
            line = np.concatenate(lines) if lines else np.zeros(0, np.int64)
            blank = _blank(cols)
            if blank is not None:
                cols = {k: v.filter(~blank) for k, v in cols.items()}
                line = line[~blank]
            yield _chunk(cols, line, bad_rows, raw.tell() if rb is not None else total, total)
            parts, lines, bad_rows = [], [], []


def _iter_jsonl(path: Path, gz: bool, chunk_rows: int) -> Iterator[TapeChunk]:
    total = path.stat().st_size
    with open(path, "rb") as raw, (gzip.GzipFile(fileobj=raw) if gz else raw) as f:
        first = 1
        while lines := list(itertools.islice(f, chunk_rows)):
            yield _json_chunk(lines, first, raw.tell(), total)
            first += len(lines)


def _json_chunk(lines: list[bytes], first: int, pos: int, total: int) -> TapeChunk:
    keep = [i for i, s in enumerate(lines) if not s.isspace()]
    line = first + np.asarray(keep, np.int64)
    data = b"".join(lines)
    try:
        table = pa_json.read_json(io.BytesIO(data), read_options=pa_json.ReadOptions(block_size=1 << 22))
        if table.num_rows == len(keep):  # one object per line (read_json also accepts other layouts)
            return _chunk({k: table.column(k) for k in COLUMNS if k in table.column_names},
                          line, [], pos, total)
    except pa.ArrowInvalid:
        pass
    # some line is not one JSON object, or a column changes type: parse line by line
    values: dict[str, list] = {k: [] for k in COLUMNS}
    good, malformed = [], []
    for i in keep:
        try:
            obj = orjson.loads(lines[i])
        except orjson.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            malformed.append(first + i)
            continue
        good.append(first + i)
        for k in COLUMNS:
            values[k].append(_json_text(obj.get(k)))
    cols = {k: pa.array(v, pa.string()) for k, v in values.items()}
    return _chunk(cols, np.asarray(good, np.int64), malformed, pos, total)


def _json_text(v) -> str | None:
    """A JSON value as the text a CSV would hold; values no column accepts become unparsable text."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "\x00"  # rejected by every column's parser (and not a valid instrument)
    return str(int(v)) if isinstance(v, float) and v.is_integer() and abs(v) < 9.2e18 else repr(v)


def _iter_parquet(path: Path, gz: bool, chunk_rows: int) -> Iterator[TapeChunk]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"tape {str(path)!r} is not a readable Parquet file: {e}") from None
    columns = _match_columns(path, pf.schema_arrow.names)
    total, rows_total, done = path.stat().st_size, max(1, pf.metadata.num_rows), 0
    for rb in pf.iter_batches(batch_size=chunk_rows, columns=list(columns.values())):
        cols = {k: rb.column(v) for k, v in columns.items()}
        line = done + 1 + np.arange(rb.num_rows)
        done += rb.num_rows
        yield _chunk(cols, line, [], total * done // rows_total, total)


def _match_columns(path: Path, names: list[str]) -> dict[str, str]:
    """Our column name -> the file's column name (case-insensitive, surrounding blanks ignored)."""
    found = {n.strip().lstrip("\ufeff").lower(): n for n in reversed(names)}
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    if missing:
        raise InputError(
            f"tape {str(path)!r} has no column {missing[0]!r} (columns: {', '.join(names) or 'none'}); "
            f"a tape needs {', '.join(REQUIRED_COLUMNS)} and optionally side")
    return {c: found[c] for c in COLUMNS if c in found}


# --- conversion ------------------------------------------------------------------------------

def _blank(cols: dict[str, pa.Array]) -> np.ndarray | None:
    """Rows whose every field is empty (a blank CSV line), or None when there are none."""
    if not pc.any(pc.equal(cols["instrument"].dictionary, "")).as_py():
        return None
    empty = None
    for a in cols.values():
        e = pc.equal(a.dictionary_decode() if pa.types.is_dictionary(a.type) else a, "")
        empty = e if empty is None else pc.and_(empty, e)
    if empty is None or not pc.any(empty).as_py():
        return None
    return empty.to_numpy(zero_copy_only=False)


def _chunk(cols: dict[str, pa.Array] | None, line: np.ndarray, malformed: list[int],
           pos: int, total: int) -> TapeChunk:
    """Convert columns to an accepted batch and account for every rejected row."""
    n = len(line)
    batch, reason = _convert(cols, n) if n else (TickBatch.empty(), np.zeros(0, np.int8))
    accepted = reason == 0
    counts = np.bincount(reason, minlength=len(REASONS)) if n else np.zeros(len(REASONS), np.int64)
    counts[_MALFORMED] += len(malformed)
    bad = np.flatnonzero(~accepted)[:MAX_BAD_LINES]
    bad_lines = sorted([(int(line[i]), REASONS[reason[i]]) for i in bad]
                       + [(m, "malformed") for m in malformed[:MAX_BAD_LINES]])[:MAX_BAD_LINES]
    return TapeChunk(
        batch=batch,
        line=line if accepted.all() else line[accepted],
        rows=n + len(malformed),
        reasons={REASONS[c]: int(k) for c, k in enumerate(counts) if c and k},
        bad_lines=tuple(bad_lines),
        bytes_read=int(pos),
        bytes_total=int(total),
    )


def _convert(cols: dict[str, pa.Array], n: int) -> tuple[TickBatch, np.ndarray]:
    """Accepted rows and a reason code per row; the most basic problem of a row wins."""
    names, code, inst_missing = _instrument(cols.get("instrument"), n)
    ts, ts_missing, ts_ok = _timestamps(cols.get("ts"), n)
    price, price_missing = _floats(cols.get("price"), n)
    size, size_missing = _floats(cols.get("size"), n)
    side, side_ok = _sides(cols.get("side"), n)

    reason = np.zeros(n, np.int8)
    reason[~side_ok] = REASON_CODE["bad_side"]
    reason[~ts_ok] = REASON_CODE["bad_ts"]
    reason[inst_missing | ts_missing | price_missing | size_missing] = REASON_CODE["missing_field"]
    full = TickBatch(names, code, ts, price, size, side)
    _, checked = validate(full)
    reason = np.where(reason != 0, reason, checked).astype(np.int8)
    ok = reason == 0
    if ok.all():  # every dictionary entry is used
        return _compact(full, range(len(names))), reason
    return _compact(full.select(ok)), reason


def _compact(batch: TickBatch, used=None) -> TickBatch:
    """Drop instrument names no row uses and sort the rest (as TickBatch.from_columns does)."""
    if used is None:
        used = np.flatnonzero(np.bincount(batch.code, minlength=len(batch.instruments)))
    keep = sorted(used, key=lambda i: batch.instruments[i])
    if len(keep) == len(batch.instruments) and keep == list(range(len(keep))):
        return batch
    remap = np.zeros(len(batch.instruments), np.int32)
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    return TickBatch(tuple(batch.instruments[i] for i in keep), remap[batch.code],
                     batch.ts, batch.price, batch.size, batch.side)


def _numpy(a) -> np.ndarray:
    """A writable numpy array (numba compiles read-only arrays as a separate type)."""
    arr = a.to_numpy(zero_copy_only=False)
    return arr if arr.flags.writeable else arr.copy()


def _whole(a):
    """One contiguous array from a pyarrow Array or ChunkedArray."""
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


def _null_mask(a) -> np.ndarray:
    if a.null_count == 0:
        return np.zeros(len(a), bool)
    return a.is_null().to_numpy(zero_copy_only=False)


def _texts(a: pa.Array) -> list[str | None]:
    """Python strings from a string array that may hold invalid UTF-8 (replaced, so it fails to parse)."""
    return [None if v is None else v.decode("utf-8", "replace") for v in a.cast(pa.binary()).to_pylist()]


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _instrument(a: pa.Array | None, n: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """(names, code per row, missing per row); names that are not valid text become ' ' (rejected)."""
    if a is None or pa.types.is_null(a.type):
        return ("",), np.zeros(n, np.int32), np.ones(n, bool)
    if _is_number(a.type):
        a = a.cast(pa.string())
    if not (pa.types.is_dictionary(a.type) or _is_text(a.type)):
        return (" ",), np.zeros(n, np.int32), _null_mask(a)
    enc = _whole(a if pa.types.is_dictionary(a.type) else pc.dictionary_encode(a))
    missing = _null_mask(enc)
    code = _numpy(enc.indices.fill_null(0).cast(pa.int32()))
    names = []
    for raw in enc.dictionary.cast(pa.binary()).to_pylist():
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            name = " "
        names.append(" " if "\x00" in name else name)
    empty = [i for i, s in enumerate(names) if s == ""]
    if empty:
        missing |= np.isin(code, empty)
    return tuple(names) or ("",), code, missing


def _timestamps(a: pa.Array | None, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ts int64 ns, missing, ok) per row."""
    if a is None or pa.types.is_null(a.type):
        return np.zeros(n, np.int64), np.ones(n, bool), np.ones(n, bool)
    missing = _null_mask(a)
    t = a.type
    if pa.types.is_timestamp(t):
        if t.tz is None:  # a naive time is ambiguous, as in parse_ts
            return np.zeros(n, np.int64), missing, np.zeros(n, bool)
        return _numpy(a.cast(pa.timestamp("ns", t.tz)).cast(pa.int64()).fill_null(0)), missing, np.ones(n, bool)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        as_number = a.cast(pa.float64() if pa.types.is_floating(t) else pa.int64()).fill_null(0)
        ts, ok = parse_ts(as_number.to_numpy(zero_copy_only=False))
        return ts, missing, ok
    if _is_text(t):
        try:
            return _numpy(a.cast(pa.int64()).fill_null(0)), missing, np.ones(n, bool)
        except pa.ArrowInvalid:
            missing |= pc.equal(a, "").fill_null(True).to_numpy(zero_copy_only=False)
            ts = _iso_by_arrow(a)
            if ts is not None:
                return ts, missing, np.ones(n, bool)
            ts, ok = parse_ts(np.array([s or "" for s in _texts(a)], dtype=str))
            return ts, missing, ok
    return np.zeros(n, np.int64), missing, missing.copy()


def _iso_by_arrow(a) -> np.ndarray | None:
    """int64 ns of text times when every non-empty one has the shape of :data:`_ISO_ARROW` and
    Arrow parses them all (empty and null ones give 0, as in parse_ts), else None."""
    text = a.fill_null("")
    given = pc.not_equal(text, "")
    if not pc.all(pc.or_(pc.invert(given), pc.match_substring_regex(text, _ISO_ARROW))).as_py():
        return None
    try:
        ts = pc.if_else(given, text, "1970-01-01T00:00:00Z").cast(pa.timestamp("ns", "UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):     # e.g. 30 February, year 3000
        return None
    return _numpy(ts.cast(pa.int64()))


def _floats(a: pa.Array | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(float64 values, missing) per row; text that is not a number becomes NaN (validate rejects it)."""
    if a is None or pa.types.is_null(a.type):
        return np.full(n, np.nan), np.ones(n, bool)
    missing = _null_mask(a)
    if _is_number(a.type):
        return _numpy(a.cast(pa.float64()).fill_null(np.nan)), missing
    if not _is_text(a.type):
        return np.full(n, np.nan), missing
    try:
        return _numpy(a.cast(pa.float64()).fill_null(np.nan)), missing
    except pa.ArrowInvalid:
        missing |= pc.equal(a, "").fill_null(True).to_numpy(zero_copy_only=False)
        # Python's float() accepts everything pyarrow's cast does, so the result does not
        # depend on which other rows share the chunk
        uniq = pc.unique(a)
        vals = np.array([_to_float(s) for s in _texts(uniq)], np.float64)
        idx = pc.index_in(a, value_set=uniq, skip_nulls=False).to_numpy(zero_copy_only=False)
        return vals[idx.astype(np.int64)], missing


def _to_float(s: str | None) -> float:
    try:
        return float(s)
    except (TypeError, ValueError):
        return np.nan


def _sides(a: pa.Array | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(side int8, ok) per row; a missing side is unknown (0), not an error."""
    if a is None or pa.types.is_null(a.type):
        return np.zeros(n, np.int8), np.ones(n, bool)
    if _is_number(a.type):
        return parse_side(a.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False))
    if not (pa.types.is_dictionary(a.type) or _is_text(a.type)):
        return np.zeros(n, np.int8), _null_mask(a)
    enc = _whole(a if pa.types.is_dictionary(a.type) else pc.dictionary_encode(a))
    # a null side is unknown: give it an extra dictionary slot that parses as unknown
    words = np.array([s or "" for s in _texts(enc.dictionary)] + [""], dtype=str)
    side, ok = parse_side(words)
    idx = enc.indices.fill_null(len(words) - 1).to_numpy(zero_copy_only=False)
    return side[idx], ok[idx]
