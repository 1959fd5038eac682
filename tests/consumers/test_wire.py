"""consumers.wire: JSON and binary batch decoding, every reject reason, round trips."""
from __future__ import annotations

import struct

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.wire import MAGIC, VERSION, Decoded, decode, encode_batch, encode_json
from signals.ticks import REASON_CODE, REASONS, TickBatch

NAT = -2**63
TS0 = 1_747_747_800_000_000_000           # 2025-05-20T13:30:00Z

names_st = st.text(min_size=1, max_size=12).filter(lambda s: s.strip())
rows_st = st.lists(st.tuples(
    st.integers(0, 3),                                                   # which name
    st.integers(NAT + 1, 2**63 - 1),
    st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False),
    st.floats(min_value=0, max_value=1e300, allow_nan=False, allow_infinity=False),
    st.sampled_from([-1, 0, 1]),
), max_size=60)


@st.composite
def batches(draw):
    names = draw(st.lists(names_st, min_size=4, max_size=4, unique=True))
    rows = draw(rows_st)
    return TickBatch(tuple(names), np.array([r[0] for r in rows], np.int32), np.array([r[1] for r in rows], np.int64),
                     np.array([r[2] for r in rows], np.float64), np.array([r[3] for r in rows], np.float64),
                     np.array([r[4] for r in rows], np.int8))


def rows(batch: TickBatch) -> list[tuple]:
    return list(zip(batch.instrument_names().tolist(), batch.ts.tolist(), batch.price.tolist(),
                    batch.size.tolist(), batch.side.tolist()))


def tick(**fields) -> bytes:
    base = {"instrument": "UST10Y", "ts": TS0, "price": 4.5, "size": 10, "side": "S"}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def one_reject(d: Decoded):
    assert len(d.batch) == 0 and len(d.rejects) == 1, d.rejects
    return d.rejects[0]


# ------------------------------------------------------------------------------------------ round trips

@settings(max_examples=150, deadline=None)
@given(batches())
def test_batch_round_trip(batch):
    value = encode_batch(batch)
    for fmt in ("batch", "auto"):
        d = decode([value], fmt=fmt)
        assert d.rejects == []
        assert rows(d.batch) == rows(batch)
        assert d.msg_index.tolist() == [0] * len(batch)
        assert d.msg_row.tolist() == list(range(len(batch)))
        assert set(d.batch.instruments) == set(batch.instrument_names().tolist())   # unused names are dropped


@settings(max_examples=100, deadline=None)
@given(batches())
def test_json_round_trip(batch):
    values = encode_json(batch)
    d = decode(values, fmt="json")
    assert d.rejects == []
    assert rows(d.batch) == rows(batch)
    assert d.msg_index.tolist() == list(range(len(batch)))
    assert rows(decode(values, fmt="auto").batch) == rows(batch)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(batches(), st.sampled_from([b"{", b"[]", b'{"ts": 1}', None, b"TWB1\x07"])), max_size=8))
def test_mixed_messages_keep_message_order(items):
    """Several batch and JSON messages in one poll: rows come out in message order, rejects point back."""
    values, expected, bad = [], [], set()
    for item in items:
        if isinstance(item, TickBatch):
            half = len(item) // 2
            values.append(encode_batch(item.select(slice(0, half))))
            expected += [len(values) - 1] * half
            for v in encode_json(item.select(slice(half, None))):
                values.append(v)
                expected.append(len(values) - 1)
        else:
            values.append(item)
            bad.add(len(values) - 1)
    d = decode(values)
    assert sorted({r.message_index for r in d.rejects}) == sorted(bad)
    assert d.msg_index.tolist() == sorted(d.msg_index.tolist())
    assert d.msg_index.tolist() == expected
    # the same answer as decoding each message alone
    alone = [decode([v]) for v in values]
    assert rows(d.batch) == [r for a in alone for r in rows(a.batch)]
    assert [(r.message_index, r.row, r.reason) for r in d.rejects] == \
        [(i, r.row, r.reason) for i, a in enumerate(alone) for r in a.rejects]


def test_json_fast_and_slow_paths_agree():
    """A poll with one bad value takes the per-message path; good rows decode exactly as without it."""
    good = [tick(ts=TS0 + i, price=4.5 + i / 100, instrument=f"I{i % 3}") for i in range(50)]
    clean = decode(good)
    noisy = decode(good[:25] + [b"\xff not json"] + good[25:])
    assert rows(noisy.batch) == rows(clean.batch)
    assert noisy.msg_index.tolist() == list(range(25)) + list(range(26, 51))
    assert [(r.message_index, r.reason) for r in noisy.rejects] == [(25, "malformed")]


# -------------------------------------------------------------------------------------- JSON rejects

@pytest.mark.parametrize("value, reason, text", [
    (b"{not json", "malformed", "invalid JSON"),
    (b"", "malformed", "invalid JSON"),
    (None, "malformed", "null message value"),
    (b"\xc3\x28", "malformed", "invalid JSON"),                          # garbage UTF-8
    (b"[1, 2]", "malformed", "expected a JSON object"),
    (b"null", "malformed", "expected a JSON object"),
    (b'"UST10Y"', "malformed", "expected a JSON object"),
    (tick(ts=...), "missing_field", "missing field ts"),
    (tick(instrument=None, size=...), "missing_field", "missing field instrument, size"),
    (tick(price=""), "missing_field", "missing field price"),
    (tick(instrument=""), "missing_field", "missing field instrument"),
    (tick(instrument=7), "bad_instrument", "instrument 7"),
    (tick(instrument="   "), "bad_instrument", "instrument '   '"),
    (tick(instrument=["UST10Y"]), "bad_instrument", "instrument ['UST10Y']"),
    (tick(ts="2025-05-20T13:30:00"), "bad_ts", "ISO-8601 with an offset"),   # naive time
    (tick(ts="yesterday"), "bad_ts", "ts 'yesterday'"),
    (tick(ts=1.5), "bad_ts", "ts 1.5"),
    (tick(ts=True), "bad_ts", "ts True"),
    (tick(ts=NAT), "bad_ts", "ts"),
    (b'{"instrument": "A", "ts": 18446744073709551615, "price": 1, "size": 1}', "bad_ts", "ts 18446744073709551615"),
    (b'{"instrument": "A", "ts": 1e30, "price": 1, "size": 1}', "bad_ts", "ts 1e+30"),
    (tick(ts="9" * 30), "bad_ts", "ts"),
    (tick(ts="9999-12-31T23:59:59+00:00"), "bad_ts", "ts"),                 # beyond int64 ns
    (tick(ts="2025-05-20T13:30:00Z" + " " * 100), "bad_ts", "ts"),
    (tick(price=-1), "bad_price", "price -1"),
    (tick(price=0), "bad_price", "price 0"),
    (tick(price="NaN"), "bad_price", "price 'NaN'"),
    (tick(price="abc"), "bad_price", "price 'abc'"),
    (tick(price={"v": 1}), "bad_price", "price {'v': 1}"),
    (tick(price=False), "bad_price", "price False"),
    (b'{"instrument": "A", "ts": 1, "price": 1e308, "size": -1e308}', "bad_size", "size -1e+308"),
    (tick(size=-0.5), "bad_size", "size -0.5"),
    (tick(size="inf"), "bad_size", "size 'inf'"),
    (tick(size=[1]), "bad_size", "size [1]"),
    (tick(side="X"), "bad_side", "side 'X'"),
    (tick(side=2), "bad_side", "side 2"),
    (tick(side=True), "bad_side", "side True"),
    (tick(side="B" * 1000), "bad_side", "side 'BBB"),
    (tick(side=0.5), "bad_side", "side 0.5"),
])
def test_json_rejects(value, reason, text):
    for fmt in ("json", "auto"):
        r = one_reject(decode([value], fmt=fmt))
        assert (r.message_index, r.reason) == (0, reason)
        assert r.row == (None if reason == "malformed" else 0)
        assert text in r.error


def test_first_field_problem_wins_and_missing_beats_wrong():
    r = one_reject(decode([tick(instrument=5, ts="x", price=-1)]))
    assert r.reason == "bad_instrument"
    r = one_reject(decode([tick(ts="x", price=-1, size=...)]))
    assert r.reason == "missing_field"


@pytest.mark.parametrize("fields, expected", [
    ({"ts": "2025-05-20T13:30:00Z"}, (TS0, -1)),
    ({"ts": "2025-05-20T09:30:00.000000001-04:00"}, (TS0 + 1, -1)),
    ({"ts": str(TS0)}, (TS0, -1)),
    ({"ts": float(TS0)}, (TS0, -1)),
    ({"ts": TS0, "side": "buy"}, (TS0, 1)),
    ({"ts": TS0, "side": -1}, (TS0, -1)),
    ({"ts": TS0, "side": 1.0}, (TS0, 1)),
    ({"ts": TS0, "side": ""}, (TS0, 0)),
    ({"ts": TS0, "side": None}, (TS0, 0)),
    ({"ts": TS0, "side": ...}, (TS0, 0)),
    ({"ts": -5}, (-5, -1)),
])
def test_json_accepted_forms(fields, expected):
    d = decode([tick(**fields)])
    assert d.rejects == []
    assert (int(d.batch.ts[0]), int(d.batch.side[0])) == expected


def test_json_numeric_strings_and_extra_fields():
    d = decode([b'{"instrument": "DXY", "ts": 1, "price": "99.5", "size": "3", "venue": "EBS"}'])
    assert rows(d.batch) == [("DXY", 1, 99.5, 3.0, 0)]


def test_json_iso_and_int_timestamps_in_one_poll():
    values = [tick(ts=TS0), tick(ts="2025-05-20T13:30:00.5Z"), tick(ts="2025-05-20T15:30:00+02:00"), tick(ts="bad")]
    d = decode(values)
    assert d.batch.ts.tolist() == [TS0, TS0 + 500_000_000, TS0]
    assert [(r.message_index, r.reason) for r in d.rejects] == [(3, "bad_ts")]


def test_rejected_names_never_reach_the_batch():
    d = decode([tick(instrument="GOOD"), tick(instrument="EVIL", price=-1)])
    assert d.batch.instruments == ("GOOD",)


# ------------------------------------------------------------------------------------- batch rejects

def sample_batch() -> TickBatch:
    return TickBatch(("UST10Y", "DXY"), np.array([0, 1, 0], np.int32), np.array([TS0, TS0 + 1, TS0 + 2]),
                     np.array([4.5, 99.1, 4.51]), np.array([10.0, 1.0, 5.0]), np.array([-1, 1, 0], np.int8))


def test_batch_layout_is_the_documented_one():
    value = encode_batch(sample_batch())
    assert value[:4] == MAGIC and value[4] == VERSION and value[5:8] == b"\0\0\0"
    assert struct.unpack_from("<II", value, 8) == (3, 2)
    assert value[16:16 + 2 + 6] == b"\x06\x00UST10Y" and value[24:24 + 2 + 3] == b"\x03\x00DXY"
    start = 32                                                          # 29 bytes of header + names, padded to 8
    assert value[29:32] == b"\0\0\0"
    assert np.frombuffer(value, "<i8", 3, start).tolist() == [TS0, TS0 + 1, TS0 + 2]
    assert np.frombuffer(value, "<f8", 3, start + 24).tolist() == [4.5, 99.1, 4.51]
    assert np.frombuffer(value, "<f8", 3, start + 48).tolist() == [10.0, 1.0, 5.0]
    assert np.frombuffer(value, "<i4", 3, start + 72).tolist() == [0, 1, 0]
    assert np.frombuffer(value, "i1", 3, start + 84).tolist() == [-1, 1, 0]
    assert len(value) == start + 3 * 29


def test_batch_row_rejects():
    b = TickBatch(("A", " ", ""), np.array([0, 0, 0, 0, 0, 1, 2, 0], np.int32),
                  np.array([1, 2, NAT, 4, 5, 6, 7, 8]), np.array([1.0, np.nan, 1, 1, 1, 1, 1, -np.inf]),
                  np.array([1.0, 1, 1, -1, np.inf, 1, 1, 1]), np.array([0, 0, 0, 0, 0, 0, 0, 3], np.int8))
    value = encode_batch(b)
    d = decode([value], fmt="batch")
    assert rows(d.batch) == [("A", 1, 1.0, 1.0, 0)]
    assert [(r.row, r.reason) for r in d.rejects] == [
        (1, "bad_price"), (2, "bad_ts"), (3, "bad_size"), (4, "bad_size"),
        (5, "bad_instrument"), (6, "bad_instrument"), (7, "bad_side")]
    assert {r.message_index for r in d.rejects} == {0}


def test_batch_code_outside_name_table():
    value = bytearray(encode_batch(sample_batch()))
    struct.pack_into("<i", value, 32 + 72 + 4, 9)                          # row 1 points at name 9 of 2
    d = decode([bytes(value)])
    assert [(r.row, r.reason) for r in d.rejects] == [(1, "bad_instrument")]
    assert "instrument code 9 is not in the name table of 2 names" in d.rejects[0].error
    assert d.msg_row.tolist() == [0, 2]


def test_batch_unknown_version():
    value = bytearray(encode_batch(sample_batch()))
    value[4] = 2
    r = one_reject(decode([bytes(value)]))
    assert (r.reason, r.row) == ("unknown_version", None)
    assert "version 2" in r.error


def test_every_truncation_is_malformed():
    value = encode_batch(sample_batch())
    d = decode([value[:k] for k in range(len(value))], fmt="batch")
    assert len(d.batch) == 0
    assert [(r.message_index, r.reason) for r in d.rejects] == [(k, "malformed") for k in range(len(value))]
    d = decode([value[:k] for k in range(len(value))], fmt="auto")       # < 4 bytes: not a batch, not JSON either
    assert [(r.message_index, r.reason) for r in d.rejects] == [(k, "malformed") for k in range(len(value))]


@pytest.mark.parametrize("mutate, text", [
    (lambda v: v[:8] + struct.pack("<I", 4) + v[12:], "too short for the 4 rows"),
    (lambda v: v[:8] + struct.pack("<I", 2) + v[12:], "header says 2 rows"),
    (lambda v: v[:8] + struct.pack("<I", 2**32 - 1) + v[12:], "too short"),
    (lambda v: v[:12] + struct.pack("<I", 5) + v[16:], "name table truncated at name 4 of 5"),
    (lambda v: v[:12] + struct.pack("<I", 1000) + v[16:], "too short for the 3 rows and 1000 names"),
    (lambda v: v[:12] + struct.pack("<I", 1) + v[16:], "header says 3 rows"),
    (lambda v: v[:5] + b"\x01\0\0" + v[8:], "reserved header bytes"),
    (lambda v: b"TWB2" + v[4:], "batch magic"),
    (lambda v: v[:16] + b"\x06\x00UST1\xff\xfe" + v[24:], "not UTF-8"),
    (lambda v: v + b"\0", "header says 3 rows"),
])
def test_batch_bad_headers(mutate, text):
    value = mutate(encode_batch(sample_batch()))
    r = one_reject(decode([value], fmt="batch"))
    assert (r.reason, r.row) == ("malformed", None)
    assert text in r.error


def test_batch_duplicate_names_are_malformed():
    b = TickBatch(("DXY", "DXY"), np.array([0, 1], np.int32), np.array([1, 2]), np.ones(2), np.ones(2), np.zeros(2, np.int8))
    r = one_reject(decode([encode_batch(b)]))
    assert (r.reason, r.error) == ("malformed", "instrument name table has duplicate names")


def test_batch_reasons_cover_every_static_reason():
    """Every reason a decoder can give is reachable through the binary format (missing_field aside:
    a batch has every column by construction) and through JSON."""
    static = set(REASONS) - {"ok", "out_of_order", "outside_session"}
    b = TickBatch(("A", ""), np.array([0, 0, 0, 0, 1], np.int32), np.array([NAT, 1, 1, 1, 1]),
                  np.array([1.0, 0.0, 1, 1, 1]), np.array([1.0, 1, -1, 1, 1]), np.array([0, 0, 0, 5, 0], np.int8))
    good = encode_batch(sample_batch())
    values = [encode_batch(b), good[:-1], good[:4] + b"\x09" + good[5:]]
    via_batch = {r.reason for r in decode(values, fmt="batch").rejects}
    assert via_batch == static - {"missing_field"}
    json_values = [b"{", tick(ts=...), tick(instrument=1), tick(ts="x"), tick(price=-1), tick(size=-1), tick(side="?")]
    assert {r.reason for r in decode(json_values).rejects} == static - {"unknown_version"}


def test_encode_batch_limits():
    long = TickBatch.from_columns(["x" * 70_000], [1], [1.0], [1.0])
    with pytest.raises(ValueError, match="longer than 65535 UTF-8 bytes"):
        encode_batch(long)
    empty = encode_batch(TickBatch.empty())
    assert len(empty) == 16 and decode([empty]).rejects == [] and len(decode([empty]).batch) == 0


# ------------------------------------------------------------------------------ engine-side rejects

def test_rejects_for_maps_later_reasons_to_messages():
    b = sample_batch()
    d = decode([encode_batch(b), tick(instrument="DXY", ts=TS0 + 3)])
    reason = np.zeros(len(d.batch), np.int8)
    reason[[1, 3]] = REASON_CODE["out_of_order"]
    got = d.rejects_for(reason)
    assert [(r.message_index, r.row, r.reason) for r in got] == [(0, 1, "out_of_order"), (1, 0, "out_of_order")]
    assert got[0].error.startswith(f"DXY ts {TS0 + 1}")
    with pytest.raises(ValueError, match="one code per accepted row"):
        d.rejects_for(np.zeros(2, np.int8))


def test_decode_rejects_unknown_format_name():
    with pytest.raises(ValueError, match="fmt must be one of json, batch, auto"):
        decode([], fmt="avro")
    assert len(decode([]).batch) == 0
