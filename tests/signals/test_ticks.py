"""The tick contract: parse_ts, parse_side, validate and TickBatch."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import signals.ticks
from signals.ticks import REASON_CODE, REASONS, TickBatch, parse_side, parse_ts, validate

NOON = 1_747_742_400_000_000_000           # 2025-05-20T12:00:00Z


def test_module_examples_run():
    assert doctest.testmod(signals.ticks).failed == 0


def test_reason_codes_are_stable():
    # codes are written to dead-letter queues and metrics: only ever append
    assert REASONS[:11] == ("ok", "malformed", "missing_field", "bad_instrument", "bad_ts", "bad_price",
                            "bad_size", "bad_side", "out_of_order", "outside_session", "unknown_version")
    assert all(REASON_CODE[r] == i for i, r in enumerate(REASONS))


# ---- parse_ts ----------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("2025-05-20T12:00:00Z", NOON),
    ("2025-05-20T12:00:00z", NOON),
    ("2025-05-20T12:00:00+00:00", NOON),
    ("2025-05-20T08:00:00-04:00", NOON),
    ("2025-05-20T21:00:00+09:00", NOON),
    ("2025-05-20T17:45:00+05:45", NOON),
    ("  2025-05-20T12:00:00Z  ", NOON),
    ("2025-05-20 12:00:00Z", NOON),
    ("2025-05-20T12:00:00.5Z", NOON + 500_000_000),
    ("2025-05-20T12:00:00.123456789Z", NOON + 123_456_789),         # nanoseconds kept
    ("2025-05-20T08:00:00.000000001-04:00", NOON + 1),
    ("1969-12-31T23:59:59.5Z", -500_000_000),
    ("1747742400000000000", NOON),
    ("-17", -17),
    ("0", 0),
    ("9223372036854775807", 2**63 - 1),
])
def test_parse_ts_accepts(text, expected):
    ts, ok = parse_ts([text])
    assert ok.tolist() == [True] and ts.tolist() == [expected]


@pytest.mark.parametrize("text", [
    "2025-05-20T12:00:00",            # naive: ambiguous
    "2025-05-20",
    "2025-05-20T12:00:00.Z",          # a dot without digits
    "2025-02-30T12:00:00Z",           # no such day
    "2025-05-20T25:00:00Z",
    "9223372036854775808",            # beyond int64
    "--5",
    "1e9",
    "",
    "   ",
    "yesterday",
    "None",
])
def test_parse_ts_rejects(text):
    ts, ok = parse_ts([text])
    assert ok.tolist() == [False] and ts.tolist() == [0]


def test_parse_ts_numbers():
    ts, ok = parse_ts(np.array([NOON, -3, 0], np.int64))
    assert ok.all() and ts.tolist() == [NOON, -3, 0]
    ts, ok = parse_ts(np.array([1.0e18, 2.5, np.nan, np.inf, 1e19]))
    assert ok.tolist() == [True, False, False, False, False]
    assert ts.tolist() == [10**18, 0, 0, 0, 0]


def test_parse_ts_mixed_column_keeps_rows_apart():
    ts, ok = parse_ts(["17", "bad", "2025-05-20T12:00:00Z", "17", "bad"])
    assert ok.tolist() == [True, False, True, True, False]
    assert ts.tolist() == [17, 0, NOON, 17, 0]
    ts, ok = parse_ts([])
    assert ts.shape == (0,) and ok.shape == (0,)


# ---- parse_side --------------------------------------------------------------------------

@pytest.mark.parametrize("word,side", [
    ("B", 1), ("b", 1), ("buy", 1), (" BUY ", 1), ("1", 1), ("+1", 1),
    ("S", -1), ("sell", -1), ("Sell", -1), ("-1", -1),
    ("", 0), ("0", 0), ("u", 0), ("unknown", 0), ("none", 0), ("null", 0), (" ", 0),
])
def test_parse_side_words(word, side):
    s, ok = parse_side([word])
    assert ok.tolist() == [True] and s.tolist() == [side]


@pytest.mark.parametrize("word", ["x", "2", "bid", "ask", "buyer", "-", "1.0"])
def test_parse_side_rejects(word):
    s, ok = parse_side([word])
    assert ok.tolist() == [False] and s.tolist() == [0]


def test_parse_side_numbers():
    s, ok = parse_side(np.array([1, -1, 0, 2]))
    assert s.tolist() == [1, -1, 0, 0] and ok.tolist() == [True, True, True, False]
    s, ok = parse_side(np.array([1.0, -1.0, np.nan, 0.5]))
    assert s.tolist() == [1, -1, 0, 0] and ok.tolist() == [True, True, True, False]
    s, ok = parse_side([])
    assert s.shape == (0,) and ok.shape == (0,)


# ---- validate ----------------------------------------------------------------------------

@pytest.mark.parametrize("field,value,reason", [
    ("price", 0.0, "bad_price"), ("price", -1.0, "bad_price"), ("price", np.nan, "bad_price"),
    ("price", np.inf, "bad_price"), ("price", -np.inf, "bad_price"),
    ("size", -0.5, "bad_size"), ("size", np.nan, "bad_size"), ("size", np.inf, "bad_size"),
    ("side", 2, "bad_side"), ("side", -2, "bad_side"),
    ("instrument", "", "bad_instrument"), ("instrument", "   ", "bad_instrument"),
])
def test_validate_rejects_each_bad_field(field, value, reason):
    cols = {"instrument": ["A", "A", "A"], "ts": [1, 2, 3], "price": [1.0, 2.0, 3.0], "size": [1.0, 0.0, 1e9],
            "side": [1, 0, -1]}
    cols[field] = list(cols[field])
    cols[field][1] = value
    batch = TickBatch.from_columns(cols["instrument"], cols["ts"], cols["price"], cols["size"], cols["side"])
    good, codes = validate(batch)
    assert [REASONS[c] for c in codes] == ["ok", reason, "ok"]
    assert good.ts.tolist() == [1, 3] and good.instrument_names().tolist() == ["A", "A"]


def test_validate_accepts_edge_values_and_returns_the_batch_itself():
    batch = TickBatch.from_columns(["A", "B"], [0, -5], [5e-324, 1.7e308], [0.0, 1e300], [0, -1])
    good, codes = validate(batch)
    assert good is batch and codes.tolist() == [0, 0]


def test_validate_a_row_with_several_problems_is_rejected_once():
    batch = TickBatch.from_columns(["", "A"], [1, 2], [-1.0, 1.0], [-1.0, 1.0], [5, 0])
    good, codes = validate(batch)
    assert len(good) == 1 and codes[0] != 0 and codes[1] == 0


# ---- TickBatch ---------------------------------------------------------------------------

def test_batch_columns_and_categories():
    b = TickBatch.from_columns(np.array(["B", "A", "B"], dtype=object), [3, 1, 2], [1, 2, 3], [1, 1, 1])
    assert b.instruments == ("A", "B") and b.code.tolist() == [1, 0, 1]
    assert b.ts.dtype == np.int64 and b.price.dtype == np.float64 and b.side.tolist() == [0, 0, 0]
    assert b.instrument_names().tolist() == ["B", "A", "B"]
    assert len(TickBatch.empty()) == 0 and TickBatch.empty().instrument_names().shape == (0,)


def test_concat_merges_categories_and_select_keeps_them():
    a = TickBatch.from_columns(["X", "Y"], [1, 2], [1.0, 2.0], [1.0, 1.0])
    b = TickBatch.from_columns(["Z", "X"], [3, 4], [3.0, 4.0], [1.0, 1.0], [1, -1])
    c = TickBatch.concat([a, TickBatch.empty(), b])
    assert c.instrument_names().tolist() == ["X", "Y", "Z", "X"]
    assert c.side.tolist() == [0, 0, 1, -1]
    s = c.select(c.ts > 2)
    assert s.instruments == c.instruments and s.instrument_names().tolist() == ["Z", "X"]
    assert len(TickBatch.concat([])) == 0


@pytest.mark.parametrize("text", ["9" * 20, "²", "--5", "１２３", "1e5", "3000-01-01T00:00:00Z", "1600-01-01T00:00:00Z"])
def test_parse_ts_rejects_what_int64_ns_cannot_hold(text):
    """Unicode digits, overflowing integers and dates outside 1677-2262 are bad_ts, never an exception."""
    ts, ok = parse_ts([text, "17"])
    assert ok.tolist() == [False, True] and ts[1] == 17
