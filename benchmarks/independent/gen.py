#!/usr/bin/env python3
"""Independent labelled synthetic tick-tape generator (see README.txt).

python gen.py --seed S --days D --out DIR [--instruments N] [--lunch-break]
Writes DIR/tape.csv, DIR/labels.jsonl, DIR/config.toml, DIR/truth_detail.jsonl
"""
import argparse
import datetime as dt
import json
import math
import os
import sys
import time
from zoneinfo import ZoneInfo

import numpy as np

UTC = dt.timezone.utc
MIN, HOUR = 60, 3600

# ---------------------------------------------------------------------------
# instrument templates
# rate = average trades / second of trading time (before episodes)
# dvol = daily volatility of log efficient price (session/24h, excl. overnight gap)
# hs   = nominal half spread in price units; tick = price grid
# ---------------------------------------------------------------------------
TEMPLATES = [
    dict(name="DXY", p0=100.0, tick=0.001, hs=0.0025, dvol=0.0050, rate=1.5, side=False,
         invert=False, tz="America/New_York", hours=None, profile="dxy",
         ptz="America/New_York", busy_open_local=8.0, size_med=2, lot=1),
    dict(name="UST10Y", p0=4.40, tick=0.0005, hs=0.0010, dvol=0.07 / 4.40, rate=1.5,
         side=False, invert=True, tz="America/New_York", hours=None, profile="ust",
         ptz="America/New_York", busy_open_local=8.0, size_med=5, lot=1),
    dict(name="USDJPY", p0=145.0, tick=0.001, hs=0.003, dvol=0.0065, rate=2.5, side=True,
         invert=False, tz="Asia/Tokyo", hours=None, profile="jpy",
         ptz="America/New_York", busy_open_local=3.0, size_med=10, lot=1),
    dict(name="FGBL", p0=130.0, tick=0.01, hs=0.005, dvol=0.0040, rate=3.0, side=False,
         invert=False, tz="Europe/Berlin", hours=("08:00", "22:00"), profile="fgbl",
         ptz="Europe/Berlin", busy_open_local=None, size_med=3, lot=1),
    dict(name="CN300ETF", p0=4.00, tick=0.001, hs=0.0005, dvol=0.0120, rate=6.0, side=True,
         invert=False, tz="Asia/Shanghai", hours=("09:30", "15:00"), profile="ushape_cn",
         ptz="Asia/Shanghai", busy_open_local=None, size_med=5000, lot=100),
    dict(name="SPY", p0=550.0, tick=0.01, hs=0.005, dvol=0.0110, rate=8.0, side=True,
         invert=False, tz="America/New_York", hours=("09:30", "16:00"), profile="ushape_spy",
         ptz="America/New_York", busy_open_local=None, size_med=100, lot=1),
]

RHO = 0.4          # corr. of efficient return with unpredictable signed flow (per second)
KAPPA = 0.05       # weak permanent impact of background metaorders (drift = KAPPA*sig*m)
BR0 = 0.5          # Hawkes branching ratio (background)
HAWKES_TAU = 0.4   # mean child delay, seconds
COPY_SIGN = 0.85   # prob. a Hawkes child copies its parent's aggressor sign
BUF = 20 * MIN     # min gap between episodes/controls on one instrument


def gcirc(h, c, w):
    d = (h - c + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (d / w) ** 2)


def sigm(x):
    return 1.0 / (1.0 + np.exp(-x))


def activity_profile(kind, h, x):
    """h = local hour (profile tz), x = fraction of session elapsed (session instr.)."""
    if kind == "dxy":
        a = (0.25 + 0.6 * gcirc(h, 3.5, 1.5) + 1.2 * gcirc(h, 10.0, 2.0)
             + 0.8 * gcirc(h, 8.55, 0.25) + 0.3 * gcirc(h, 21.0, 2.0) - 0.15 * gcirc(h, 17.2, 0.6))
    elif kind == "ust":
        a = (0.15 + 0.15 * gcirc(h, 21.0, 2.0) + 0.4 * gcirc(h, 4.0, 1.5)
             + 1.5 * gcirc(h, 10.5, 2.5) + 1.2 * gcirc(h, 8.55, 0.25))
    elif kind == "jpy":
        a = (0.3 + 0.9 * gcirc(h, 20.5, 2.0) + 0.7 * gcirc(h, 3.5, 1.5)
             + 1.1 * gcirc(h, 9.5, 2.0) + 0.6 * gcirc(h, 8.55, 0.25) - 0.2 * gcirc(h, 17.2, 0.6))
    elif kind == "fgbl":
        a = (0.2 + 0.9 * sigm((h - 9.0) / 0.1) * sigm((17.5 - h) / 0.25)
             + 0.8 * gcirc(h, 9.1, 0.4) + 1.0 * gcirc(h, 14.6, 0.35) + 0.4 * gcirc(h, 16.0, 1.0))
    elif kind == "ushape_cn":
        a = 1.0 + 1.8 * np.exp(-x / 0.07) + 0.8 * np.exp(-(1 - x) / 0.05)
    elif kind == "ushape_spy":
        a = 1.0 + 2.5 * np.exp(-x / 0.07) + 2.0 * np.exp(-(1 - x) / 0.05)
    else:
        raise ValueError(kind)
    return np.maximum(a, 0.05)


def weekdays_from(monday, n):
    out, d = [], monday
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def utc_sec(date, hhmm, tz):
    hh, mm = map(int, hhmm.split(":"))
    return int(dt.datetime(date.year, date.month, date.day, hh, mm, tzinfo=ZoneInfo(tz)).timestamp())


def lu(rng, a, b):
    """log-uniform"""
    return float(math.exp(rng.uniform(math.log(a), math.log(b))))


def ramp_profile(L, up=0.1, down=0.15):
    """smooth 0->1 plateau ->0 shape over L seconds"""
    x = (np.arange(L) + 0.5) / L
    g = np.minimum(1.0, np.minimum(x / up, (1 - x) / down))
    return np.clip(g, 0, 1) ** 0.7


# ---------------------------------------------------------------------------
class Instrument:
    def __init__(self, tpl, days, rng, lunch_break=False):
        self.t = tpl
        self.rng = rng
        self.name = tpl["name"]
        self.days = days
        D = len(days)
        wins = []
        for d in days:
            if tpl["hours"] is None:
                s = int(dt.datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())
                wins.append([(s, s + 86400)])
            else:
                o = utc_sec(d, tpl["hours"][0], tpl["tz"])
                c = utc_sec(d, tpl["hours"][1], tpl["tz"])
                if lunch_break and tpl["tz"] == "Asia/Shanghai":
                    wins.append([(o, utc_sec(d, "11:30", tpl["tz"])), (utc_sec(d, "13:00", tpl["tz"]), c)])
                else:
                    wins.append([(o, c)])
        self.wins = wins
        grid, day_id, seg, hloc, xfrac = [], [], [], [], []
        segno, prev_end = -1, None
        self.day_range = []
        pos = 0
        for i, wl in enumerate(wins):
            sess_len = sum(e - s for s, e in wl)
            el = 0
            start_pos = pos
            for (s, e) in wl:
                if prev_end is None or s != prev_end:
                    segno += 1
                prev_end = e
                secs = np.arange(s, e, dtype=np.int64)
                grid.append(secs)
                day_id.append(np.full(len(secs), i, np.int32))
                seg.append(np.full(len(secs), segno, np.int32))
                # local hour (profile tz), offset evaluated per UTC hour (DST safe)
                hrs = np.arange(s - s % 3600, e + 3600, 3600)
                offs = np.array([dt.datetime.fromtimestamp(int(hh), tz=UTC).astimezone(
                    ZoneInfo(tpl["ptz"])).utcoffset().total_seconds() for hh in hrs])
                off = offs[(secs - hrs[0]) // 3600]
                hloc.append(((secs + off) % 86400) / 3600.0)
                xfrac.append((el + np.arange(len(secs)) + 0.5) / sess_len)
                el += len(secs)
                pos += len(secs)
            self.day_range.append((start_pos, pos))
        self.grid = np.concatenate(grid)
        self.day_id = np.concatenate(day_id)
        self.seg = np.concatenate(seg)
        self.hloc = np.concatenate(hloc)
        self.xfrac = np.concatenate(xfrac)
        self.N = len(self.grid)
        self.seg_starts = np.flatnonzero(np.r_[True, self.seg[1:] != self.seg[:-1]])

    # -------------------------------------------------------------------
    def build(self, scale_counts):
        rng, t, N, D = self.rng, self.t, self.N, len(self.days)
        # --- seasonality -------------------------------------------------
        act = activity_profile(t["profile"], self.hloc, self.xfrac)
        act_day_mean = np.bincount(self.day_id, act) / np.bincount(self.day_id)
        act = act / act_day_mean[self.day_id]
        wvar = act ** 0.8
        wday = np.bincount(self.day_id, wvar)
        sig_season = t["dvol"] * np.sqrt(wvar / wday[self.day_id])   # per-second sd
        # --- stochastic volatility / activity (minute grid, trading time) --
        M = N // 60 + 2
        hl_fast, sd_fast = 30.0, 0.35           # minutes, log-sd
        phi = math.exp(-math.log(2) / hl_fast)
        e = rng.standard_normal(M) * sd_fast * math.sqrt(1 - phi * phi)
        xf = np.empty(M)
        xf[0] = rng.standard_normal() * sd_fast
        for i in range(1, M):
            xf[i] = phi * xf[i - 1] + e[i]
        sd_day = 0.20
        lv = np.empty(D)
        lv[0] = rng.standard_normal() * sd_day
        for i in range(1, D):
            lv[i] = 0.5 * lv[i - 1] + math.sqrt(0.75) * sd_day * rng.standard_normal()
        kk = np.arange(N) / 60.0
        x = np.interp(kk, np.arange(M), xf) + lv[self.day_id]
        var = sd_fast ** 2 + sd_day ** 2
        vfac = np.exp(x - var)
        afac = np.exp(0.8 * x - 0.32 * var)
        self.vfac_mean_sq = float(np.mean(vfac ** 2))

        act_mult = np.ones(N)
        vol_mult = np.ones(N)
        nbr = np.full(N, BR0)
        bias_w = np.zeros(N)
        bias_v = np.zeros(N)
        ctrl_zero = np.zeros(N, bool)
        drift = np.zeros(N)
        size_mult = np.ones(N)
        jumps = []                     # (grid float time, log jump)
        self.labels, self.detail = [], []
        occ = np.zeros(N, bool)

        # overnight / weekend gaps at segment starts
        for s0 in self.seg_starts[1:]:
            gsd = (0.35 if t["hours"] is not None else 0.3) * t["dvol"]
            jumps.append((float(s0), float(rng.normal(0, gsd))))

        # --- quiet day (control) -------------------------------------------
        allowed = list(range(1, D))
        quiet = None
        if D >= 3:
            quiet = int(rng.integers(1, D))
            gs, ge = self.day_range[quiet]
            vq, aq = rng.uniform(0.4, 0.6), rng.uniform(0.5, 0.7)
            vol_mult[gs:ge] *= vq
            act_mult[gs:ge] *= aq
            occ[gs:ge] = True
            allowed.remove(quiet)
            self.detail.append(dict(kind="control_quiet_day", day=quiet, vol_mult=vq, act_mult=aq,
                                    start_ts=int(self.grid[gs]) * 10**9, end_ts=int(self.grid[ge - 1] + 1) * 10**9))
        occ[self.day_range[0][0]:self.day_range[0][1]] = True   # warm-up day: nothing
        sig_base = sig_season * vfac * vol_mult                  # incl. quiet day

        seg_st = self.seg_starts
        seg_en = np.r_[self.seg_starts[1:], N]

        def free(a, b):
            lo = max(int(seg_st[np.searchsorted(seg_st, a, side="right") - 1]), a - BUF)
            hi = min(int(seg_en[np.searchsorted(seg_st, b - 1, side="right") - 1]), b + BUF)
            return not occ[lo:hi].any()

        def place(L, margin_s=5 * MIN, margin_e=2 * MIN, tries=400):
            for _ in range(tries):
                if not allowed:
                    return None
                d = allowed[int(rng.integers(len(allowed)))]
                gs, ge = self.day_range[d]
                lo, hi = gs + margin_s, ge - margin_e - L
                if hi < lo:
                    continue
                a = int(rng.integers(lo, hi + 1))
                if free(a, a + L):
                    occ[a:a + L] = True
                    return a
            return None

        def place_shrinking(L, floor):
            # an episode of length L, shortened by a fifth (not below floor) until one fits
            while True:
                a = place(L)
                if a is not None:
                    return a, L
                if L <= floor:
                    return None
                L = max(floor, int(L * 0.8))

        def ts_ns(gfloat):
            k = min(int(math.floor(gfloat)), N - 1)
            return int(self.grid[k]) * 10**9 + int((gfloat - k) * 1e9)

        def ts_end(g):          # end of the integer grid interval [.., g)
            return (int(self.grid[g - 1]) + 1) * 10**9

        def side_label(direction):
            d = -direction if t["invert"] else direction
            return "buy" if d > 0 else "sell"

        def nk(lo=2, hi=4):
            return max(1, int(round(rng.integers(lo, hi + 1) * scale_counts)))

        # ===== placement phase (priority order so every kind gets >= 2) =====
        sess_len = min(self.day_range[d][1] - self.day_range[d][0] for d in range(D))
        n_steady, n_delev, n_burst = nk(), nk(), nk()
        n_spike = int(rng.integers(1, 3))
        steady, delev, bursts, spikes = [], [], [], []
        st_two = [False]

        def place_busy_open():
            for _ in range(50):
                if not allowed:
                    return
                d = allowed[int(rng.integers(len(allowed)))]
                gs, ge = self.day_range[d]
                if t["busy_open_local"] is None:
                    a = gs
                else:
                    cand = np.flatnonzero(np.abs(self.hloc[gs:ge] - t["busy_open_local"]) < 0.5 / 3600)
                    if len(cand) == 0:
                        continue
                    a = gs + int(cand[0])
                L = int(rng.uniform(30, 60) * MIN)
                if a + L <= ge and free(a, a + L):
                    occ[a:a + L] = True
                    tt = np.arange(L)
                    g = np.exp(-tt / (L / 2.5))
                    A, V = rng.uniform(3, 5), rng.uniform(2, 3)
                    act_mult[a:a + L] *= 1 + (A - 1) * g
                    vol_mult[a:a + L] *= 1 + (V - 1) * g
                    ctrl_zero[a:a + L] = True
                    self.detail.append(dict(kind="control_busy_open", act_peak=A, vol_peak=V,
                                            start_ts=ts_ns(a), end_ts=ts_end(a + L)))
                    return

        def place_steady():
            direction = 1 if rng.random() < 0.5 else -1
            if (not st_two[0] and rng.random() < 0.35
                    and (len(allowed) >= 4 or (t["hours"] is None and len(allowed) >= 3))):
                # same local hours on two consecutive sessions
                w = int(lu(rng, 2 * HOUR, min(sess_len - 10 * MIN, 6 * HOUR)))
                for _ in range(200):
                    d = allowed[int(rng.integers(len(allowed)))]
                    if d + 1 not in allowed:
                        continue
                    gs1, ge1 = self.day_range[d]
                    gs2, ge2 = self.day_range[d + 1]
                    lo, hi = 5 * MIN, min(ge1 - gs1, ge2 - gs2) - 2 * MIN - w
                    if hi < lo:
                        continue
                    o = int(rng.integers(lo, hi + 1))
                    a1, a2 = gs1 + o, gs2 + o
                    if free(a1, a2 + w):
                        occ[a1:a2 + w] = True
                        steady.append(([(a1, a1 + w), (a2, a2 + w)], direction))
                        st_two[0] = True
                        return True
            L = int(lu(rng, 2 * HOUR, min(sess_len - 10 * MIN, 10 * HOUR)))
            got = place_shrinking(L, 2 * HOUR)
            if got is None:
                return False
            a, L = got
            steady.append(([(a, a + L)], direction))
            return True

        def place_delev():
            direction = 1 if rng.random() < 0.5 else -1
            got = place_shrinking(int(lu(rng, 20 * MIN, 2 * HOUR)), 20 * MIN)
            if got is None:
                return False
            delev.append((got[0], got[1], direction))
            return True

        def place_burst():
            direction = 1 if rng.random() < 0.5 else -1
            Dc = int(lu(rng, 30, 300))
            a = place(Dc + 2)
            if a is None:
                return False
            bursts.append((a, Dc, direction))
            return True

        def place_spike():
            L = int(rng.uniform(20, 60) * MIN)
            a = place(L)
            if a is not None:
                spikes.append((a, L))

        place_busy_open()
        queue = []
        for r in range(max(n_steady, n_delev, n_burst)):
            if r < n_steady:
                queue.append(("steady_flow", place_steady))
            if r < n_delev:
                queue.append(("deleveraging", place_delev))
            if r < n_burst:
                queue.append(("burst", place_burst))
            if r == 1:
                queue.append(("spike", place_spike))
        if n_spike == 2:
            queue.append(("spike", place_spike))
        for kind, fn in queue:
            res = fn()
            if res is False:
                print(f"  [{self.name}] could not place a {kind} (time budget)", file=sys.stderr)

        # ===== application phase =============================================
        for (a, L) in spikes:
            g = ramp_profile(L, 0.08, 0.2)
            V, A = rng.uniform(3, 5), rng.uniform(2, 3)
            vol_mult[a:a + L] *= 1 + (V - 1) * g
            act_mult[a:a + L] *= 1 + (A - 1) * g
            ctrl_zero[a:a + L] = True
            self.detail.append(dict(kind="control_vol_spike", vol_peak=V, act_peak=A,
                                    start_ts=ts_ns(a), end_ts=ts_end(a + L)))

        for (a, Dc, direction) in bursts:
            tj = a + float(rng.random())
            sd1m = math.sqrt(np.mean(sig_base[a - 300:a] ** 2) * 60)
            Jn = rng.uniform(4, 10)
            J = direction * Jn * sd1m
            jumps.append((tj, J))
            delay = rng.uniform(1, 5)
            ks = np.arange(a, a + Dc + 2)
            tt = ks + 0.5 - tj
            f = np.where(tt < delay, 0.0,
                         np.where(tt < delay + 0.3 * Dc, 1.0, np.exp(-(tt - delay - 0.3 * Dc) / (0.25 * Dc))))
            f[tt > Dc] = 0.0
            A, V, b = rng.uniform(5, 20), rng.uniform(2, 4), rng.uniform(0.6, 0.9)
            cont = rng.uniform(0.3, 1.0)
            sl = slice(a, a + Dc + 2)
            act_mult[sl] *= 1 + (A - 1) * f
            vol_mult[sl] *= 1 + (V - 1) * f
            nbr[sl] = BR0 + (0.75 - BR0) * f
            bias_w[sl] = b * f
            bias_v[sl] = direction
            size_mult[sl] *= 1 + 0.5 * f
            drift[sl] += cont * J * f / max(f.sum(), 1e-9)
            st, en = ts_ns(tj), ts_ns(tj + Dc)
            self.labels.append(dict(instrument=self.name, kind="burst", side=side_label(direction),
                                    start_ts=st, end_ts=en))
            self.detail.append(dict(kind="burst", side=side_label(direction), direction=direction,
                                    jump_in_1m_sd=Jn, jump_log=J, act_peak=A, vol_peak=V, bias=b,
                                    continuation_frac=cont, cascade_s=Dc, start_ts=st, end_ts=en))

        for (a, L, direction) in delev:
            g = ramp_profile(L, 0.1, 0.15)
            V, A, b = rng.uniform(3, 6), rng.uniform(3, 10), rng.uniform(0.5, 0.8)
            Mv = rng.uniform(3, 8)
            sl = slice(a, a + L)
            vol_mult[sl] *= 1 + (V - 1) * g
            act_mult[sl] *= 1 + (A - 1) * g
            bias_w[sl] = b * g
            bias_v[sl] = direction
            nbr[sl] = BR0 + 0.15 * g
            size_mult[sl] *= 1 + 1.0 * g
            drift[sl] += direction * Mv * t["dvol"] * g / g.sum()
            st, en = ts_ns(a), ts_end(a + L)
            self.labels.append(dict(instrument=self.name, kind="deleveraging", side=side_label(direction),
                                    start_ts=st, end_ts=en))
            self.detail.append(dict(kind="deleveraging", side=side_label(direction), direction=direction,
                                    move_daily_sd=Mv, vol_peak=V, act_peak=A, bias=b, minutes=L / 60,
                                    start_ts=st, end_ts=en))

        # steady flows: vol/flow first, drift from the final sigma
        steady_info = []
        for (wl, direction) in steady:
            vm = rng.uniform(0.7, 1.0)
            mode = ["aggressive", "passive_neutral", "passive_opposite"][int(rng.choice(3, p=[0.5, 0.25, 0.25]))]
            part = rng.uniform(0.1, 0.3) if mode == "aggressive" else rng.uniform(0.05, 0.2)
            for (a, b_) in wl:
                vol_mult[a:b_] *= vm
                if mode == "aggressive":
                    act_mult[a:b_] *= 1 + part
                    bias_w[a:b_] = part / (1 + part)
                    bias_v[a:b_] = direction
                elif mode == "passive_opposite":
                    act_mult[a:b_] *= 1 + part
                    bias_w[a:b_] = part / (1 + part)
                    bias_v[a:b_] = -direction
            steady_info.append((wl, direction, vm, mode, part))
        sig = sig_season * vfac * vol_mult
        for (wl, direction, vm, mode, part) in steady_info:
            T = rng.uniform(2, 6)
            idx = np.concatenate([np.arange(a, b_) for a, b_ in wl])
            total = T * math.sqrt(float(np.sum(sig[idx] ** 2)))
            drift[idx] += direction * total / len(idx)
            st, en = ts_ns(wl[0][0]), ts_end(wl[-1][1])
            self.labels.append(dict(instrument=self.name, kind="steady_flow", side=side_label(direction),
                                    start_ts=st, end_ts=en))
            self.detail.append(dict(kind="steady_flow", side=side_label(direction), direction=direction,
                                    t_stat_target=T, vol_mult=vm, child_mode=mode, participation=part,
                                    windows=[[ts_ns(a), ts_end(b_)] for a, b_ in wl],
                                    hours_active=len(idx) / 3600, start_ts=st, end_ts=en))

        # isolated small jumps without cascade (control)
        nj = rng.poisson(0.5 * len(allowed))
        for _ in range(nj):
            a = place(60, margin_s=6 * MIN)
            if a is None:
                continue
            sd1m = math.sqrt(np.mean(sig_base[a - 300:a] ** 2) * 60)
            direction = 1 if rng.random() < 0.5 else -1
            Jn = rng.uniform(2, 3)
            tj = a + float(rng.random())
            jumps.append((tj, direction * Jn * sd1m))
            self.detail.append(dict(kind="control_isolated_jump", jump_in_1m_sd=Jn, direction=direction,
                                    start_ts=ts_ns(tj), end_ts=ts_ns(tj + 1)))
        self.sig, self.sig_base_nominal = sig, sig_season * vfac
        self.act_mult, self.vol_mult = act_mult, vol_mult
        self.nbr, self.bias_w, self.bias_v = nbr, bias_w, bias_v
        self.ctrl_zero, self.drift, self.size_mult = ctrl_zero, drift, size_mult
        self.afac, self.act = afac, act
        self.jumps = sorted(jumps)

    # -------------------------------------------------------------------
    def simulate(self):
        rng, t, N = self.rng, self.t, self.N
        # background metaorders -> persistent sign bias m_base (Lillo-Mike-Farmer style)
        nu = 4.0 / 180.0
        nmeta = rng.poisson(nu * N)
        st = rng.integers(0, N, nmeta)
        Lm = np.minimum(60.0 * (1 - rng.random(nmeta)) ** (-1 / 1.5), 6 * HOUR).astype(np.int64)
        en = np.minimum(st + Lm, N)
        q = rng.lognormal(0, 0.5, nmeta)
        sd = np.where(rng.random(nmeta) < 0.5, 1.0, -1.0)
        diffB = np.zeros(N + 1)
        diffS = np.zeros(N + 1)
        np.add.at(diffB, st, q * (sd > 0))
        np.add.at(diffB, en, -q * (sd > 0))
        np.add.at(diffS, st, q * (sd < 0))
        np.add.at(diffS, en, -q * (sd < 0))
        B = np.cumsum(diffB)[:N]
        S = np.cumsum(diffS)[:N]
        m_base = (B - S) / (B + S + 8.0)
        m = (1 - self.bias_w) * m_base + self.bias_w * self.bias_v
        m[self.ctrl_zero] = 0.0
        m = np.clip(m, -0.97, 0.97)
        self.m = m

        # trade intensity and Hawkes (branching) simulation
        R = t["rate"] * self.act * self.afac * self.act_mult
        imm = R * (1 - self.nbr)
        cnt = rng.poisson(imm)
        k = np.repeat(np.arange(N), cnt)
        tt = k + rng.random(len(k))
        sg = np.where(rng.random(len(k)) < (1 + m[k]) / 2, 1, -1).astype(np.int8)
        T_all, S_all = [tt], [sg]
        pt, ps, pk = tt, sg, k
        gen = 0
        while len(pt) and gen < 60:
            nc = rng.poisson(self.nbr[pk])
            if nc.sum() == 0:
                break
            rep = np.repeat(np.arange(len(pt)), nc)
            ct = pt[rep] + rng.exponential(HAWKES_TAU, len(rep))
            ck = np.floor(ct).astype(np.int64)
            ok = ck < N
            ok[ok] &= self.seg[ck[ok]] == self.seg[pk[rep[ok]]]
            rep, ct, ck = rep[ok], ct[ok], ck[ok]
            copy = rng.random(len(rep)) < COPY_SIGN
            fresh = np.where(rng.random(len(rep)) < (1 + m[ck]) / 2, 1, -1).astype(np.int8)
            cs = np.where(copy, ps[rep], fresh).astype(np.int8)
            T_all.append(ct)
            S_all.append(cs)
            pt, ps, pk = ct, cs, ck
            gen += 1
        tt = np.concatenate(T_all)
        sg = np.concatenate(S_all)
        o = np.argsort(tt, kind="stable")
        tt, sg = tt[o], sg[o]
        k = np.floor(tt).astype(np.int64)
        frac = tt - k

        # efficient price: sigma*(rho*flow surprise + noise) + drift; jumps on top
        n = np.bincount(k, minlength=N).astype(float)
        sflow = np.bincount(k, weights=sg.astype(float), minlength=N)
        u = (sflow - n * m) / np.sqrt(np.maximum(n, 1.0))
        u /= math.sqrt(np.mean(u ** 2))
        base_drift = KAPPA * self.sig_base_nominal * m_base
        base_drift[self.ctrl_zero] = 0.0
        eps = rng.standard_normal(N)
        r = self.sig * (RHO * u + math.sqrt(1 - RHO ** 2) * eps) + self.drift + base_drift
        X = np.concatenate([[0.0], np.cumsum(r)])
        jt = np.array([j[0] for j in self.jumps])
        jv = np.concatenate([[0.0], np.cumsum([j[1] for j in self.jumps])])
        self.X, self.r = X, r
        self.jt, self.jv = jt, jv
        bridge = np.sqrt(frac * (1 - frac)) * self.sig[k] * math.sqrt(1 - RHO ** 2) * rng.standard_normal(len(k))
        logp = X[k] + frac * r[k] + bridge + jv[np.searchsorted(jt, tt, side="right")]
        P = t["p0"] * np.exp(logp)
        tick = t["tick"]
        spt = np.maximum(1, np.round(2 * t["hs"] * np.sqrt(self.vol_mult[k]) / tick)).astype(np.int64)
        bid = np.floor(P / tick - spt / 2 + 0.5).astype(np.int64)
        pticks = bid + spt * (sg > 0)
        z = rng.standard_normal(len(k))
        size = t["size_med"] * np.exp(0.9 * z) * self.size_mult[k]
        tail = rng.random(len(k)) < 0.05
        size[tail] *= (1 - rng.random(tail.sum())) ** (-1 / 1.5)
        lot = t["lot"]
        size = np.maximum(lot, np.round(size / lot) * lot).astype(np.int64)
        ts = self.grid[k] * 10**9 + np.floor(frac * 1e9).astype(np.int64)
        self.out = dict(ts=ts, pticks=pticks, size=size, sign=sg)
        self.ntrades = len(ts)

    def realized_checks(self):
        """record realised strength of labelled episodes (efficient price)"""
        def logp_at(g):
            k = min(int(math.floor(g)), self.N - 1)
            return self.X[k] + (g - k) * self.r[k] + self.jv[np.searchsorted(self.jt, g, side="right")]
        g_of = {}
        for d in self.detail:
            if d["kind"] not in ("steady_flow", "deleveraging", "burst"):
                continue
            def gi(ns):
                s = ns // 10**9
                k = int(np.searchsorted(self.grid, s))
                return k + (ns % 10**9) / 1e9
            a, b = gi(d["start_ts"]), gi(d["end_ts"])
            move = logp_at(b - 1e-6) - logp_at(max(a - 1e-3, 0))
            d["realized_log_move"] = float(move)
            if d["kind"] == "steady_flow":
                idx = np.concatenate([np.arange(*map(int, (gi(w[0]), gi(w[1])))) for w in d["windows"]])
                d["realized_t"] = float(d["direction"] * move / math.sqrt(np.sum(self.sig[idx] ** 2)))
            elif d["kind"] == "deleveraging":
                d["realized_move_daily_sd"] = float(d["direction"] * move / self.t["dvol"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--out", required=True)
    ap.add_argument("--instruments", type=int, default=6)
    ap.add_argument("--lunch-break", action="store_true", help="no CN300ETF ticks 11:30-13:00 Shanghai")
    args = ap.parse_args()
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    rng0 = np.random.default_rng([args.seed, 999])
    # a Monday in 2025, chosen by seed
    first_monday = dt.date(2025, 1, 6)
    monday = first_monday + dt.timedelta(weeks=int(rng0.integers(0, 52)))   # Jan 6 .. Dec 29
    days = weekdays_from(monday, args.days)
    scale = max(args.days - 2, 1) / 3.0

    tpls = []
    for i in range(args.instruments):
        tp = dict(TEMPLATES[i % len(TEMPLATES)])
        if i >= len(TEMPLATES):
            tp["name"] = f"{tp['name']}_{i // len(TEMPLATES) + 1}"
            tp["p0"] *= float(np.exp(rng0.normal(0, 0.1)))
        tpls.append(tp)

    insts = []
    for i, tp in enumerate(tpls):
        rng = np.random.default_rng([args.seed, i])
        ins = Instrument(tp, days, rng, lunch_break=args.lunch_break)
        ins.build(scale)
        ins.simulate()
        ins.realized_checks()
        insts.append(ins)
        print(f"  {tp['name']:9s} trades={ins.ntrades:9d}  ({time.time() - t0:.1f}s)", file=sys.stderr)

    # ---- merge and write tape ----------------------------------------------
    ts = np.concatenate([ins.out["ts"] for ins in insts])
    iid = np.concatenate([np.full(ins.ntrades, i, np.int16) for i, ins in enumerate(insts)])
    pt = np.concatenate([ins.out["pticks"] for ins in insts])
    sz = np.concatenate([ins.out["size"] for ins in insts])
    sg = np.concatenate([ins.out["sign"] for ins in insts])
    o = np.argsort(ts, kind="stable")
    ts, iid, pt, sz, sg = ts[o], iid[o], pt[o], sz[o], sg[o]
    # price strings via unique ticks per instrument
    pstr = np.empty(len(ts), dtype=object)
    for i, ins in enumerate(insts):
        msk = iid == i
        tick = ins.t["tick"]
        dec = max(0, -int(math.floor(math.log10(tick) + 1e-9)))
        if abs(round(tick * 10**dec) - tick * 10**dec) > 1e-9:
            dec += 1
        u, inv = np.unique(pt[msk], return_inverse=True)
        us = np.array([f"{v * tick:.{dec}f}" for v in u], dtype=object)
        pstr[msk] = us[inv]
    names = np.array([ins.name for ins in insts], dtype=object)[iid]
    side_tab = {}
    sides = np.empty(len(ts), dtype=object)
    for i, ins in enumerate(insts):
        msk = iid == i
        if ins.t["side"]:
            sides[msk] = np.where(sg[msk] > 0, "B", "S")
        else:
            sides[msk] = ""
    with open(os.path.join(args.out, "tape.csv"), "w") as f:
        f.write("instrument,ts,price,size,side\n")
        CH = 500_000
        tsl = ts.tolist()
        szl = sz.tolist()
        for c in range(0, len(ts), CH):
            f.write("".join([f"{a},{b},{p},{s},{d}\n" for a, b, p, s, d in
                             zip(names[c:c + CH], tsl[c:c + CH], pstr[c:c + CH], szl[c:c + CH], sides[c:c + CH])]))

    # ---- labels / config / detail ---------------------------------------------
    start_ts = int(dt.datetime(monday.year, monday.month, monday.day, tzinfo=UTC).timestamp()) * 10**9
    end_ts = max(int(ins.wins[-1][-1][1]) for ins in insts) * 10**9
    labels = sorted([l for ins in insts for l in ins.labels], key=lambda l: (l["start_ts"], l["instrument"]))
    with open(os.path.join(args.out, "labels.jsonl"), "w") as f:
        f.write(json.dumps({"meta": {"instrument_days": float(len(insts) * args.days), "start_ts": start_ts,
                                     "end_ts": end_ts, "instruments": [ins.name for ins in insts]}}) + "\n")
        for l in labels:
            f.write(json.dumps(l) + "\n")
    with open(os.path.join(args.out, "truth_detail.jsonl"), "w") as f:
        for ins in insts:
            for d in sorted(ins.detail, key=lambda d: d["start_ts"]):
                f.write(json.dumps(dict(instrument=ins.name, **d)) + "\n")
    with open(os.path.join(args.out, "config.toml"), "w") as f:
        for ins in insts:
            tp = ins.t
            f.write(f"[instruments.{ins.name}]\n")
            if tp["invert"]:
                f.write("invert = true\n")
            if tp["hours"] is None:
                f.write(f'calendar = {{ tz = "{tp["tz"]}" }}\n\n')
            else:
                f.write(f'calendar = {{ tz = "{tp["tz"]}", open = "{tp["hours"][0]}", '
                        f'close = "{tp["hours"][1]}", days = "Mon-Fri" }}\n\n')
    print(f"wrote {len(ts)} rows, {len(labels)} labels to {args.out} in {time.time() - t0:.1f}s "
          f"(start {monday.isoformat()})", file=sys.stderr)


if __name__ == "__main__":
    main()
