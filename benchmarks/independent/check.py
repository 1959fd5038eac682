#!/usr/bin/env python3
"""Validate a generated directory using only its files: python check.py DIR"""
import datetime as dt
import json
import math
import sys
import tomllib
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

import numpy as np

UTC = dt.timezone.utc
DAYMAP = dict(Mon=0, Tue=1, Wed=2, Thu=3, Fri=4, Sat=5, Sun=6)


def day_set(spec):
    a, b = spec.split("-")
    return set(range(DAYMAP[a], DAYMAP[b] + 1))


def windows(cal, t0, t1):
    """allowed [start,end) windows in ns, or None for 24h"""
    if "open" not in cal:
        return None
    tz = ZoneInfo(cal["tz"])
    ds = day_set(cal.get("days", "Mon-Sun"))
    out = []
    d = dt.datetime.fromtimestamp(t0 / 1e9, UTC).date() - dt.timedelta(days=1)
    end = dt.datetime.fromtimestamp(t1 / 1e9, UTC).date() + dt.timedelta(days=1)
    while d <= end:
        if d.weekday() in ds:
            oh, om = map(int, cal["open"].split(":"))
            ch, cm = map(int, cal["close"].split(":"))
            o = dt.datetime(d.year, d.month, d.day, oh, om, tzinfo=tz).timestamp()
            c = dt.datetime(d.year, d.month, d.day, ch, cm, tzinfo=tz).timestamp()
            out.append((int(o) * 10**9, int(c) * 10**9))
        d += dt.timedelta(days=1)
    return np.array(out, dtype=np.int64)


def inside(ts, w):
    i = np.searchsorted(w[:, 0], ts, side="right") - 1
    return (i >= 0) & (ts < w[np.maximum(i, 0), 1])


def main(D):
    cfg = tomllib.load(open(f"{D}/config.toml", "rb"))["instruments"]
    lines = open(f"{D}/labels.jsonl").read().splitlines()
    meta = json.loads(lines[0])["meta"]
    labels = [json.loads(l) for l in lines[1:]]
    cols = defaultdict(lambda: ([], [], [], []))
    prev, nrows, bad_sort = -1, 0, 0
    with open(f"{D}/tape.csv") as f:
        hdr = f.readline().strip()
        assert hdr == "instrument,ts,price,size,side", hdr
        for line in f:
            ins, ts, p, s, sd = line.rstrip("\n").split(",")
            ts = int(ts)
            if ts < prev:
                bad_sort += 1
            prev = ts
            c = cols[ins]
            c[0].append(ts); c[1].append(float(p)); c[2].append(int(s)); c[3].append(sd)
            nrows += 1
    print(f"rows={nrows}  sorted_violations={bad_sort}")
    print(f"meta: instrument_days={meta['instrument_days']} start={meta['start_ts']} end={meta['end_ts']} "
          f"({dt.datetime.fromtimestamp(meta['start_ts'] / 1e9, UTC):%a %Y-%m-%d %H:%M} .. "
          f"{dt.datetime.fromtimestamp(meta['end_ts'] / 1e9, UTC):%a %Y-%m-%d %H:%M} UTC)")
    ndays = meta["instrument_days"] / len(meta["instruments"])
    assert set(cols) == set(meta["instruments"]) == set(cfg), (set(cols), meta["instruments"], set(cfg))
    ok = bad_sort == 0
    print(f"{'instr':9s} {'ticks':>9s} {'ticks/day':>9s} {'side':>5s} {'outside':>7s} {'wkend':>5s} "
          f"{'pmin':>9s} {'pmax':>9s} {'rv_day(all)':>11s} {'rv_day0':>8s} {'rv_unlab':>10s}  per-day rv")
    for ins in meta["instruments"]:
        ts, p, s, sd = cols[ins]
        ts = np.array(ts); p = np.array(p); s = np.array(s)
        cal = cfg[ins]["calendar"]
        w = windows(cal, meta["start_ts"], meta["end_ts"])
        wd = np.array([dt.datetime.fromtimestamp(x / 1e9, UTC).weekday() for x in ts[:: max(1, len(ts) // 20000)]])
        wkend = int((wd >= 5).sum())
        if w is None:
            out = int(((ts < meta["start_ts"]) | (ts >= meta["end_ts"])).sum())
            # 24h: day windows = UTC weekdays
            days = sorted(set((ts // (86400 * 10**9)).tolist()))
            w = np.array([(d * 86400 * 10**9, (d + 1) * 86400 * 10**9) for d in days], dtype=np.int64)
        else:
            out = int((~inside(ts, w)).sum())
        sides = Counter(sd)
        side_ok = set(sides) <= {"B", "S"} or set(sides) == {""}
        ok &= out == 0 and side_ok and (p > 0).all() and (s >= 0).all() and wkend == 0
        # realised vol: 5-min last-price sampling within each window (day)
        rvs, clean_r2, clean_n, nint = [], 0.0, 0, []
        labs = [(l["start_ts"], l["end_ts"]) for l in labels if l["instrument"] == ins]
        for (a, b) in w:
            m = (ts >= a) & (ts < b)
            if m.sum() < 50:
                continue
            grid = np.arange(a, b + 1, 300 * 10**9)
            idx = np.searchsorted(ts, grid, side="right") - 1
            idx = idx[idx >= 0]
            idx = idx[ts[idx] >= a]
            lp = np.log(p[idx])
            rvs.append(math.sqrt(np.sum(np.diff(lp) ** 2)))
            g0 = grid[:-1][-len(lp) + 1:] if len(lp) > 1 else grid[:0]
            rr = np.diff(lp)
            keep = np.ones(len(rr), bool)
            for (la, lb) in labs:
                keep &= ~((g0 < lb) & (g0 + 300 * 10**9 > la))
            clean_r2 += float(np.sum(rr[keep] ** 2)); clean_n += int(keep.sum()); nint.append(len(rr))
        rvs = np.array(rvs)
        rv_clean = math.sqrt(clean_r2 / max(clean_n, 1) * np.mean(nint))
        unit, mult = ("bp", 100 * np.median(p)) if cfg[ins].get("invert") else ("%", 100.0)
        print(f"{ins:9s} {len(ts):9d} {len(ts) / ndays:9.0f} {'/'.join(sorted(k or '-' for k in sides)):>5s} "
              f"{out:7d} {wkend:5d} {p.min():9.4f} {p.max():9.4f} "
              f"{math.sqrt(np.mean(rvs ** 2)) * mult:9.2f}{unit:2s} {rvs[0] * mult:6.2f}{unit:2s} {rv_clean * mult:8.2f}{unit:2s}  "
              + " ".join(f"{x * mult:.2f}" for x in rvs))
    # labels
    kinds = Counter(l["kind"] for l in labels)
    print("labels by kind:", dict(kinds), " by side:", dict(Counter(l["side"] for l in labels)))
    per = Counter((l["instrument"], l["kind"]) for l in labels)
    for ins in meta["instruments"]:
        print(f"  {ins:9s} " + "  ".join(f"{k}={per[(ins, k)]}" for k in ("steady_flow", "burst", "deleveraging")))
    lab_ok = True
    for ins in meta["instruments"]:
        L = sorted([l for l in labels if l["instrument"] == ins], key=lambda l: l["start_ts"])
        w = windows(cfg[ins]["calendar"], meta["start_ts"], meta["end_ts"])
        for a, b in zip(L, L[1:]):
            if b["start_ts"] < a["end_ts"]:
                lab_ok = False; print("overlap", a, b)
        for l in L:
            if not (meta["start_ts"] <= l["start_ts"] < l["end_ts"] <= meta["end_ts"]):
                lab_ok = False; print("out of range", l)
            if w is not None and not (inside(np.array([l["start_ts"]]), w)[0] and inside(np.array([l["end_ts"] - 1]), w)[0]):
                lab_ok = False; print("label endpoint outside hours", l)
    dur = defaultdict(list)
    for l in labels:
        dur[l["kind"]].append((l["end_ts"] - l["start_ts"]) / 60e9)
    for k, v in dur.items():
        print(f"  {k:13s} duration min: min={min(v):.1f} median={np.median(v):.1f} max={max(v):.1f}")
    print("CHECKS", "OK" if ok and lab_ok else "FAILED")


if __name__ == "__main__":
    main(sys.argv[1])
