"""Tape reading: bad rows counted by reason with their line numbers, formats, chunking, failures."""
from __future__ import annotations

import gzip
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from signals.errors import InputError
from signals.tape import MAX_BAD_LINES, TapeSummary, iter_tape, read_tape, tape_format
from signals.ticks import REASON_CODE

T0 = 1_747_747_800_000_000_000  # 2025-05-20T13:30:00Z


@pytest.fixture
def tape(tmp_path):
    """``tape("name.csv", text_or_bytes)`` -> path of a file with that content."""
    def make(name: str, content: str | bytes):
        p = tmp_path / name
        (p.write_bytes if isinstance(content, bytes) else p.write_text)(content)
        return p
    return make


def rows_of(batch):
    return list(zip(batch.instrument_names().tolist(), batch.ts.tolist(), batch.price.tolist(),
                    batch.size.tolist(), batch.side.tolist()))


# one CSV line per kind of problem; the comment is the expected reason (None = accepted)
CSV_CASES = [
    (f"UST10Y,{T0},4.5,1,S", None),
    (f"UST10Y,{T0 + 1},4.5", "malformed"),                 # too few columns
    (f"UST10Y,{T0 + 2},4.5,1,S,extra", "malformed"),       # too many columns
    ("", "blank"),                                          # skipped, not a row
    (f",{T0 + 3},4.5,1,B", "missing_field"),                # no instrument
    ("UST10Y,,4.5,1,B", "missing_field"),                   # no ts
    (f"UST10Y,{T0 + 4},,1,B", "missing_field"),             # no price
    (f"UST10Y,{T0 + 5},4.5,,B", "missing_field"),           # no size
    (f"   ,{T0 + 6},4.5,1,B", "bad_instrument"),
    ("UST10Y,yesterday,4.5,1,B", "bad_ts"),
    ("UST10Y,2025-05-20T13:30:08,4.5,1,B", "bad_ts"),       # naive time: ambiguous
    ("UST10Y,--5,4.5,1,B", "bad_ts"),
    ("UST10Y,99999999999999999999,4.5,1,B", "bad_ts"),      # overflows int64
    (f"UST10Y,{T0 + 7},nan,1,B", "bad_price"),
    (f"UST10Y,{T0 + 8},-1,1,B", "bad_price"),
    (f"UST10Y,{T0 + 9},0,1,B", "bad_price"),
    (f"UST10Y,{T0 + 10},abc,1,B", "bad_price"),
    (f"UST10Y,{T0 + 11},inf,1,B", "bad_price"),
    (f"UST10Y,{T0 + 12},4.5,-2,B", "bad_size"),
    (f"UST10Y,{T0 + 13},4.5,nan,B", "bad_size"),
    (f"UST10Y,{T0 + 14},4.5,1,X", "bad_side"),
    ("DXY,2025-05-20T13:30:09.123456789+00:00,100.25,2,buy", None),
    ("DXY,2025-05-20T09:30:10-04:00,100.5,0,sell", None),
    (f"DXY,{T0 + 15},100.75,3,", None),
]


def expected(cases, first_line=2):
    reasons, lines = {}, []
    line = first_line
    for _, why in cases:
        if why not in (None, "blank"):
            reasons[why] = reasons.get(why, 0) + 1
            lines.append((line, why))
        line += 1
    return reasons, lines


def test_csv_bad_rows_are_counted_by_reason_with_line_numbers(tape):
    path = tape("t.csv", "instrument,ts,price,size,side\n" + "\n".join(c for c, _ in CSV_CASES) + "\n")
    batch, summary = read_tape(path)
    reasons, lines = expected(CSV_CASES)
    assert summary.reasons == reasons
    assert summary.bad_lines == lines[:MAX_BAD_LINES]
    assert summary.rows == len(CSV_CASES) - 1 and summary.accepted == 4 == len(batch)
    assert rows_of(batch) == [
        ("UST10Y", T0, 4.5, 1.0, -1),
        ("DXY", T0 + 9_123_456_789, 100.25, 2.0, 1),
        ("DXY", T0 + 10_000_000_000, 100.5, 0.0, -1),
        ("DXY", T0 + 15, 100.75, 3.0, 0),
    ]


def test_bad_lines_cover_every_reason_when_few(tape):
    cases = [c for c in CSV_CASES if c[1] in (None, "malformed", "bad_side", "bad_size")]
    path = tape("t.csv", "instrument,ts,price,size,side\n" + "\n".join(c for c, _ in cases) + "\n")
    assert read_tape(path)[1].bad_lines == expected(cases)[1]


JSON_CASES = [
    (f'{{"instrument":"UST10Y","ts":{T0},"price":4.5,"size":1,"side":"S"}}', None),
    (f'{{"instrument":"UST10Y","ts":{T0 + 1},"price":4.5}}', "missing_field"),
    ("not json", "malformed"),
    ("   ", "blank"),
    ("[1, 2]", "malformed"),
    (f'{{"instrument":"UST10Y","ts":{T0 + 2},"price":-1,"size":1,"side":"B"}}', "bad_price"),
    (f'{{"instrument":"UST10Y","ts":{T0 + 3},"price":null,"size":1}}', "missing_field"),
    ('{"instrument":"UST10Y","ts":"2025-05-20T13:30:08","price":4.5,"size":1}', "bad_ts"),
    (f'{{"instrument":"UST10Y","ts":{T0 + 4},"price":true,"size":1}}', "bad_price"),
    (f'{{"instrument":"UST10Y","ts":{T0 + 5},"price":4.5,"size":1,"side":"X"}}', "bad_side"),
    (f'{{"instrument":{{"a":1}},"ts":{T0 + 6},"price":4.5,"size":1}}', "bad_instrument"),
    ('{"instrument":"DXY","ts":"2025-05-20T13:30:09Z","price":"100.25","size":2,"side":null}', None),
    (f'{{"instrument":"DXY","ts":{T0 + 7},"price":100.5,"size":1.5,"side":-1,"venue":"x"}}', None),
]


def test_jsonl_bad_lines_lose_only_themselves(tape):
    path = tape("t.jsonl", "\n".join(c for c, _ in JSON_CASES) + "\n")
    batch, summary = read_tape(path)
    reasons, lines = expected(JSON_CASES, first_line=1)
    assert summary.reasons == reasons
    assert summary.bad_lines == lines[:MAX_BAD_LINES]
    assert rows_of(batch) == [("UST10Y", T0, 4.5, 1.0, -1), ("DXY", T0 + 9_000_000_000, 100.25, 2.0, 0),
                              ("DXY", T0 + 7, 100.5, 1.5, -1)]


def test_jsonl_bulk_path_keeps_line_numbers_across_blank_lines(tape):
    good = [f'{{"instrument":"A","ts":{T0 + i},"price":{1 + i},"size":1}}' for i in range(4)]
    good[2] = f'{{"instrument":"A","ts":{T0 + 2},"price":-3,"size":1}}'
    path = tape("t.ndjson", "\n\n".join(good) + "\n")
    batch, summary = read_tape(path)
    assert summary.bad_lines == [(5, "bad_price")] and summary.reasons == {"bad_price": 1}
    assert batch.ts.tolist() == [T0, T0 + 1, T0 + 3]


def test_timestamps_iso_and_integer_give_the_same_ns(tape):
    path = tape("t.csv", "instrument,ts,price,size\n"
                         f"A,{T0},1,1\nA,2025-05-20T13:30:00Z,1,1\nA,2025-05-20T15:30:00.5+02:00,1,1\n"
                         "A,2025-05-20T13:30:00.000000001z,1,1\n")
    batch, summary = read_tape(path)
    assert summary.rejected == 0
    assert batch.ts.tolist() == [T0, T0, T0 + 500_000_000, T0 + 1]


def big_csv(n: int, seed: int = 3) -> str:
    """n lines with bad rows of every kind sprinkled in (blank, malformed, missing, bad values)."""
    rng = np.random.default_rng(seed)
    bad = [CSV_CASES[i][0] for i in (1, 2, 3, 4, 9, 13, 18, 20)]
    lines = ["instrument,ts,price,size,side"]
    for i in range(n):
        if rng.random() < 0.03:
            lines.append(bad[int(rng.integers(len(bad)))])
        else:
            side = "BS "[i % 3].strip()
            lines.append(f"{'ABC'[i % 3]},{T0 + i},{100 + rng.normal():.4f},{int(rng.integers(1, 9))},{side}")
    return "\n".join(lines) + "\n"


def read_all(path, chunk_rows):
    chunks = list(iter_tape(path, chunk_rows=chunk_rows))
    summary = TapeSummary()
    for c in chunks:
        summary.add(c)
        assert len(c.line) == len(c.batch)
    from signals.ticks import TickBatch
    return (chunks, rows_of(TickBatch.concat([c.batch for c in chunks])),
            np.concatenate([c.line for c in chunks]), summary)


@pytest.mark.parametrize("name", ["t.csv", "t.jsonl"])
def test_chunk_boundaries_do_not_change_the_result(tape, name):
    text = big_csv(6000)
    if name.endswith(".jsonl"):
        out = []
        for line in text.splitlines()[1:]:
            f = line.split(",")
            out.append(line if len(f) != 5 else
                       f'{{"instrument":"{f[0]}","ts":"{f[1]}","price":"{f[2]}","size":"{f[3]}","side":"{f[4]}"}}')
        text = "\n".join(out) + "\n"
    path = tape(name, text)
    small, rows_s, lines_s, sum_s = read_all(path, 40)
    large, rows_l, lines_l, sum_l = read_all(path, 1_000_000)
    assert len(small) > 3 and len(large) == 1
    assert rows_s == rows_l and lines_s.tolist() == lines_l.tolist()
    assert sum_s == sum_l and sum_s.rejected > 100 and len(sum_s.reasons) >= 5
    # line numbers point at the rows they came from
    text_lines = text.splitlines()
    for (inst, ts, *_), line in list(zip(rows_s, lines_s.tolist()))[::500]:
        assert str(ts) in text_lines[line - 1] and inst in text_lines[line - 1]


def test_gzip_gives_the_same_result_and_is_sniffed(tape, tmp_path):
    plain = tape("t.csv", big_csv(500))
    gz = tmp_path / "t.csv.gz"
    with open(plain, "rb") as f, gzip.open(gz, "wb") as g:
        shutil.copyfileobj(f, g)
    nameless = tmp_path / "tape-without-extension"
    shutil.copy(gz, nameless)
    b0, s0 = read_tape(plain)
    for p in (gz, nameless):
        b, s = read_tape(p)
        assert rows_of(b) == rows_of(b0) and s == s0
    assert tape_format(nameless) == ("csv", True)


def test_formats_are_sniffed_without_extension(tape):
    assert tape_format(tape("a", '{"instrument":"A"}\n')) == ("jsonl", False)
    assert tape_format(tape("b", "instrument,ts,price,size\n")) == ("csv", False)


@pytest.mark.parametrize("name,content", [("e.csv", ""), ("e.jsonl", ""), ("h.csv", "instrument,ts,price,size,side\n"),
                                          ("h2.csv", "instrument,ts,price,size")])
def test_empty_and_header_only_files_have_no_rows(tape, name, content):
    batch, summary = read_tape(tape(name, content))
    assert len(batch) == 0 and summary == TapeSummary()


def test_missing_required_column_names_it(tape):
    with pytest.raises(InputError, match=r"no column 'price' \(columns: instrument, ts, size\)"):
        read_tape(tape("t.csv", "instrument,ts,size\nA,1,2\n"))


def test_column_names_are_matched_loosely_and_extra_columns_ignored(tape):
    batch, summary = read_tape(tape("t.csv", "\ufeffTS , Instrument,venue,Price,SIZE\n5,A,x,1.5,2\n"))
    assert rows_of(batch) == [("A", 5, 1.5, 2.0, 0)] and summary.rejected == 0


def test_unreadable_files_raise_input_error(tape, tmp_path):
    with pytest.raises(InputError, match="cannot read tape .*No such file"):
        read_tape(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="not a readable gzip file"):
        read_tape(tape("t.csv.gz", gzip.compress(b"instrument,ts,price,size\n" * 200)[:-30]))
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_tape(tape("t.parquet", b"PAR1 not really"))


def test_invalid_utf8_is_a_bad_row_not_a_crash(tape):
    content = b"instrument,ts,price,size\nA\xff,1,2,3\nA,2,2\xfe,3\nA,\xff3,2,3\nA,4,2,3\n"
    batch, summary = read_tape(tape("t.csv", content))
    assert summary.reasons == {"bad_instrument": 1, "bad_price": 1, "bad_ts": 1}
    assert rows_of(batch) == [("A", 4, 2.0, 3.0, 0)]


def test_parquet_row_numbers_types_and_nulls(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({
        "instrument": ["A", "B", None, "A"],
        "ts": pa.array([T0, T0 + 1, T0 + 2, T0 + 3], pa.timestamp("ns", "UTC")),
        "price": [1.0, -1.0, 2.0, 3.0],
        "size": pa.array([1, 2, 3, None], pa.int64()),
        "side": pa.array([1, -1, 0, 1], pa.int8()),
    }), path)
    batch, summary = read_tape(path)
    assert rows_of(batch) == [("A", T0, 1.0, 1.0, 1)]
    assert summary.bad_lines == [(2, "bad_price"), (3, "missing_field"), (4, "missing_field")]


def test_parquet_missing_column_and_naive_time(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"instrument": ["A"], "ts": [1], "size": [1.0]}), path)
    with pytest.raises(InputError, match="no column 'price'"):
        read_tape(path)
    pq.write_table(pa.table({"instrument": ["A"], "ts": pa.array([T0], pa.timestamp("ns")),
                             "price": [1.0], "size": [1.0]}), path)
    assert read_tape(path)[1].reasons == {"bad_ts": 1}


def test_summary_reject_moves_accepted_rows_to_their_reason():
    s = TapeSummary(rows=5, accepted=5)
    s.reject(np.array([2, 3, 4, 5, 6]), np.array([0, REASON_CODE["out_of_order"], 0, 0,
                                                   REASON_CODE["outside_session"]], np.int8))
    assert (s.accepted, s.rejected) == (3, 2)
    assert s.reasons == {"out_of_order": 1, "outside_session": 1}
    assert s.bad_lines == [(3, "out_of_order"), (6, "outside_session")]


def test_chunk_rows_must_be_positive(tape):
    with pytest.raises(ValueError, match="chunk_rows must be a positive integer"):
        next(iter_tape(tape("t.csv", "instrument,ts,price,size\n"), chunk_rows=0))


def test_iso_times_parse_like_the_general_parser_whatever_the_mix():
    """parse_ts's array fast path agrees with the one-string parser on near-ISO text (tapes rely on it)."""
    import random

    from signals.ticks import _iso_to_ns, parse_ts

    rng = random.Random(5)

    def text():
        y = rng.choice([1, 1677, 1678, 1970, 2024, 2025, 2261, 2262, 9999])
        t = f"{y:04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}T{rng.randint(0, 24):02d}:" \
            f"{rng.randint(0, 60):02d}:{rng.randint(0, 60):02d}"
        if rng.random() < 0.5:
            t += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 11)))
        t += rng.choice(["Z", "z", "+00:00", "-04:00", "+05:30", "+23:59", "+24:00", "-00:60", "", "+0530"])
        if rng.random() < 0.2:
            i = rng.randrange(len(t))
            t = t[:i] + rng.choice("xT:-.+9 é") + t[i + 1:]
        return t

    texts = [text() for _ in range(10000)]
    ts, ok = parse_ts(np.array(texts))
    expected = [_iso_to_ns(t) for t in texts]
    assert ok.tolist() == [e is not None for e in expected]
    assert ts[ok].tolist() == [e for e in expected if e is not None]
    assert 0.1 < ok.mean() < 0.9


def test_iso_times_read_by_arrow_equal_the_general_parser(tape):
    """A chunk whose times all have the common ISO shape is parsed by Arrow (fast); the result
    equals parse_ts row for row, over the whole int64-ns range and every offset and fraction.
    One impossible date in the chunk (30 February) sends it back to parse_ts, which rejects
    that row alone; an empty time is a missing field either way."""
    import random

    from signals.tape import _iso_by_arrow
    from signals.ticks import parse_ts

    rng = random.Random(11)

    def text():
        y = rng.choice([1677, 1678, 1970, 2025, 2261, 2262])
        t = f"{y:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:" \
            f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        if rng.random() < 0.5:
            t += "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 9)))
        return t + rng.choice(["Z", "+00:00", "-04:00", "+05:30", "+23:59", "-23:59"])

    texts = [text() for _ in range(5000)]
    expected, ok = parse_ts(np.array(texts))
    inside = [t for t, k in zip(texts, ok) if k]            # parse_ts's int64-ns range
    assert 3000 < len(inside) < 5000
    by_arrow = _iso_by_arrow(pa.array(inside))
    assert by_arrow is not None and by_arrow.tolist() == expected[ok].tolist()

    rows = inside[:50] + ["2025-02-30T10:00:00Z", ""] + inside[50:100]
    assert _iso_by_arrow(pa.array(rows)) is None
    path = tape("t.csv", "instrument,ts,price,size\n" + "".join(f"A,{t},1,1\n" for t in rows))
    batch, summary = read_tape(path)
    assert summary.reasons == {"bad_ts": 1, "missing_field": 1}
    assert sorted(batch.ts.tolist()) == sorted(parse_ts(np.array(inside[:100]))[0].tolist())
