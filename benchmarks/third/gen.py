#!/usr/bin/env python3
"""gen3: agent-based / queue-reactive LOB synthetic tape generator with labelled regimes.

python gen.py --seed S --days 5 --out DIR
"""
import argparse
import json
import math
import os
import sys
import time
from datetime import datetime, date, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lob import simulate  # noqa: E402

H = 3600
MIN = 60
GAP = 21 * MIN  # minimum separation between labelled spans / controls

# clean Mondays of 2025 (no DST switch, no US/CN exchange holiday in the week)
MONDAYS = ["2025-04-07", "2025-04-21", "2025-05-12", "2025-05-19", "2025-06-09", "2025-06-23",
           "2025-07-07", "2025-07-14", "2025-07-21", "2025-07-28", "2025-08-04", "2025-08-11",
           "2025-08-18", "2025-08-25", "2025-09-08", "2025-09-15", "2025-09-22", "2025-10-13",
           "2025-10-20"]


def _g(h, c, w):
    d = (h - c + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (d / w) ** 2)


def season_fn(name, h):
    if name == "SPY":
        return 1 + 2.0 * np.exp(-np.clip(h - 9.5, 0, None) / 0.3) + 1.2 * np.exp(np.clip(h - 16, None, 0) / 0.35)
    if name == "CSI300ETF":
        aft = (h >= 12.9).astype(float)
        return (1 + 1.6 * np.exp(-np.clip(h - 9.5, 0, None) / 0.25)
                + 0.5 * aft * np.exp(-np.clip(h - 13, 0, None) / 0.25)
                + 0.7 * np.exp(np.clip(h - 15, None, 0) / 0.3))
    if name == "EURUSD":   # London time
        return 0.12 + 0.3 * _g(h, 1.5, 2) + 1.0 * _g(h, 9, 2) + 1.3 * _g(h, 14.5, 1.8) + 0.5 * _g(h, 8.05, 0.3)
    if name == "USDJPY":   # Tokyo time
        return 0.15 + 0.9 * _g(h, 10, 2) + 0.6 * _g(h, 17, 2) + 1.1 * _g(h, 22.5, 2) + 0.3 * _g(h, 2, 1.5)
    if name == "TY":       # Chicago time
        return 0.1 + 0.25 * _g(h, 2.5, 2) + 1.0 * _g(h, 10, 3) + 1.5 * _g(h, 7.45, 0.3)
    if name == "UST10Y":   # New York time
        return 0.08 + 0.2 * _g(h, 3.5, 2) + 1.0 * _g(h, 11, 3) + 1.5 * _g(h, 8.55, 0.3)
    raise KeyError(name)


# sd_day: relative daily sd (UST10Y: absolute, in percent of yield)
INSTR = {
    "EURUSD": dict(tz="America/New_York", stz="Europe/London", sess=[("00:00", "24:00")], fri_close="17:00", tick=1e-5, dec=5, p0=1.0850, sd_day=0.0045,
                   r_mo=3.0, q0=2.5, gs=2.0, g0=5.0, side=True, invert=False, lot=1_000_000, gran=100_000,
                   open_hour=8.0, flow_len=(1.5, 6.0), mflow_len=(1.5, 4.0)),
    "USDJPY": dict(tz="America/New_York", stz="Asia/Tokyo", sess=[("00:00", "24:00")], fri_close="17:00", tick=1e-3, dec=3, p0=147.50, sd_day=0.0065,
                   r_mo=2.0, q0=2.5, gs=3.0, g0=8.0, side=False, invert=False, lot=1_000_000, gran=100_000,
                   open_hour=9.0, flow_len=(1.5, 6.0), mflow_len=(1.5, 4.0)),
    "TY": dict(tz="America/Chicago", sess=[("00:00", "16:00"), ("17:00", "24:00")], tick=1 / 64, dec=6, p0=111.0,
               sd_day=0.0035, r_mo=1.6, q0=25.0, gs=0.6, g0=1.2, side=True, invert=False, lot=10, gran=1,
               open_hour=7.5, flow_len=(1.5, 6.0), mflow_len=(1.5, 4.0)),
    "UST10Y": dict(tz="America/New_York", sess=[("00:00", "24:00")], fri_close="17:00", tick=5e-4, dec=4, p0=4.350, sd_day_abs=0.06,
                   r_mo=0.5, q0=6.0, gs=1.0, g0=2.5, side=False, invert=True, lot=5, gran=1,
                   open_hour=8.5, flow_len=(1.5, 6.0), mflow_len=(1.5, 4.0)),
    "SPY": dict(tz="America/New_York", sess=[("09:30", "16:00")], tick=0.01, dec=2, p0=585.0, sd_day=0.010,
                r_mo=4.0, q0=4.0, gs=2.0, g0=5.0, side=True, invert=False, lot=300, gran=1,
                open_hour=9.5, flow_len=(1.0, 4.5), mflow_len=(1.0, 3.0)),
    "CSI300ETF": dict(tz="Asia/Shanghai", sess=[("09:30", "11:30"), ("13:00", "15:00")], tick=1e-3, dec=3, p0=3.950,
                      sd_day=0.011, r_mo=1.2, q0=30.0, gs=0.6, g0=1.2, side=True, invert=False, lot=5000, gran=100,
                      open_hour=9.5, flow_len=(1.0, 2.5), mflow_len=(1.0, 2.0)),
}
SHORT_SESSION = {"SPY", "CSI300ETF"}
CONTROLS = ["vol_spike", "wander", "quiet", "busy_open", "small_jump"]


def hhmm(s):
    h, m = s.split(":")
    return int(h), int(m)


def build_calendar(name, cfg, monday, days):
    """returns list per day of list of (open_utc, close_utc) datetimes"""
    tz = ZoneInfo(cfg["tz"])
    out = []
    for d in range(days):
        ld = monday + timedelta(days=d)
        segs = []
        for o, c in cfg["sess"]:
            if name == "TY" and d == days - 1 and o == "17:00":
                continue  # Friday: no evening re-open
            if d == days - 1 and "fri_close" in cfg and c == "24:00":
                c = cfg["fri_close"]
            oh, om = hhmm(o); ch, cm = hhmm(c)
            od = datetime(ld.year, ld.month, ld.day, tzinfo=tz) + timedelta(hours=oh, minutes=om)
            cd = datetime(ld.year, ld.month, ld.day, tzinfo=tz) + timedelta(hours=ch, minutes=cm)
            segs.append((od.astimezone(timezone.utc), cd.astimezone(timezone.utc)))
        out.append(segs)
    return out


class Inst:
    pass


def prepare(name, cfg, cal, t0, nsec, rng):
    I = Inst()
    I.name = name; I.cfg = cfg
    tz = ZoneInfo(cfg.get("stz", cfg["tz"]))  # local clock that drives the intraday seasonality
    tick = cfg["tick"]
    I.tick = tick
    I.f0 = cfg["p0"] / tick
    I.sd_day = cfg["sd_day_abs"] / tick if "sd_day_abs" in cfg else cfg["sd_day"] * cfg["p0"] / tick  # ticks
    openm = np.zeros(nsec, bool)
    dayid = np.full(nsec, -1, np.int16)
    segs = []  # (day, a, b) in seconds
    for d, ss in enumerate(cal):
        for (o, c) in ss:
            a = int((o - t0).total_seconds()); b = int((c - t0).total_seconds())
            openm[a:b] = True; dayid[a:b] = d
            segs.append((d, a, b))
    I.openm = openm; I.dayid = dayid; I.segs = segs
    # local hour per second (computed per hour, exact because no DST switch in the chosen weeks)
    nh = nsec // H + 2
    lh0 = np.empty(nh)
    for k in range(nh):
        lt = (t0 + timedelta(hours=k)).astimezone(tz)
        lh0[k] = lt.hour + lt.minute / 60.0
    sec = np.arange(nsec)
    lh = (lh0[sec // H] + (sec % H) / H) % 24.0
    I.lh = lh
    sea = season_fn(name, lh) * openm
    sea = sea / sea[openm].mean()
    I.season = sea
    # slow stochastic activity factor: log-OU on a 1-minute grid, half-life ~ 1-2 h
    nm = nsec // MIN + 2
    T = rng.uniform(60, 150); sdo = 0.35
    phi = math.exp(-1.0 / T)
    e = rng.standard_normal(nm) * sdo * math.sqrt(1 - phi * phi)
    x = np.empty(nm); x[0] = rng.standard_normal() * sdo
    for k in range(1, nm):
        x[k] = phi * x[k - 1] + e[k]
    ou = np.exp(x - 0.5 * sdo * sdo)[sec // MIN]
    I.ou = ou
    I.base_act = sea * ou
    # daily variance constant: per-second variance = c * season * ou ; intraday fraction of daily var
    intraday_frac = 0.85 if name in SHORT_SESSION else (0.97 if name == "TY" else 1.0)
    secs_per_day = openm.sum() / len(cal)
    I.c = intraday_frac * I.sd_day ** 2 / secs_per_day
    I.overnight_sd = math.sqrt(max(0.0, 1 - intraday_frac)) * I.sd_day
    # episode arrays
    I.amul = np.ones(nsec); I.vm2 = np.ones(nsec); I.drift = np.zeros(nsec)
    I.jumps = np.zeros(nsec)
    I.dprob = np.zeros(nsec); I.dside = np.zeros(nsec, np.int8)
    I.pside = np.zeros(nsec, np.int8); I.prate = np.zeros(nsec)
    I.cmu = np.zeros(nsec); I.cside = np.zeros(nsec, np.int8)
    I.sch = []
    I.calpha = 0.0; I.cbeta = 1.0
    return I


def sigma1(I, s, back=1800):
    """local 1-minute sd of fair value (ticks) from the base variance over the previous window"""
    a = max(0, s - back)
    v = I.c * I.base_act[a:s + 1]
    m = I.openm[a:s + 1]
    if m.sum() == 0:
        return math.sqrt(I.c * 60)
    return math.sqrt(60 * v[m].mean())


class Scheduler:
    def __init__(self, I, rng, ndays):
        self.I = I; self.rng = rng; self.occ = []; self.ndays = ndays

    def free(self, a, b):
        return all(b + GAP <= oa or a >= ob + GAP for oa, ob in self.occ)

    def place(self, dur, thr=0.5, tries=400):
        I = self.I; rng = self.rng
        cands = [sg for sg in I.segs if sg[0] >= 1 and sg[2] - sg[1] >= dur + 60]
        if not cands:
            return None
        for _ in range(tries):
            d, a, b = cands[rng.integers(len(cands))]
            st = int(rng.uniform(a + 60, b - dur))
            en = st + dur
            if I.season[st] < thr or I.season[min(en - 1, st + dur // 2)] < thr:
                continue
            if self.free(st, en):
                self.occ.append((st, en))
                return st, en
        return None

    def place_flow(self, win, nwin, tries=400):
        I = self.I; rng = self.rng
        days = sorted(set(sg[0] for sg in I.segs if sg[0] >= 1))
        for _ in range(tries):
            d0 = days[rng.integers(len(days))]
            if d0 + nwin - 1 > self.ndays - 1:
                continue
            dsegs = [sg for sg in I.segs if sg[0] == d0]
            a = min(sg[1] for sg in dsegs); b = max(sg[2] for sg in dsegs)
            if b - a < win + 120:
                continue
            st = int(rng.uniform(a + 60, b - win))
            wins = [(st + 86400 * k, st + 86400 * k + win) for k in range(nwin)]
            ok = True
            for (ws, we) in wins:
                if we > len(I.openm):
                    ok = False; break
                frac = I.openm[ws:we].mean()
                if I.name == "CSI300ETF":
                    if frac < 0.6 or not I.openm[ws] or not I.openm[we - 1]:
                        ok = False; break
                elif frac < 1.0:
                    ok = False; break
                if I.season[ws:we][I.openm[ws:we]].mean() < 0.6:
                    ok = False; break
            if not ok or not self.free(wins[0][0], wins[-1][1]):
                continue
            self.occ.append((wins[0][0], wins[-1][1]))
            return wins
        return None

    def place_at_open(self, dur, tries=50):
        I = self.I; rng = self.rng
        oh = I.cfg["open_hour"]
        for _ in range(tries):
            d = int(rng.integers(1, self.ndays))
            idx = np.nonzero((I.dayid == d) & (np.abs(I.lh - oh) < 0.5 / 3600))[0]
            if len(idx) == 0:
                continue
            st = int(idx[0]); en = st + dur
            if I.openm[st:en].all() and self.free(st, en):
                self.occ.append((st, en))
                return st, en
        return None


def add_flow(I, rng, wins, style, side, part, t_target):
    """steady TWAP-like parent order over windows (list of (a,b) seconds)."""
    r_mo = I.cfg["r_mo"]
    M = 0; var_sum = 0.0
    for (a, b) in wins:
        m = I.openm[a:b]
        M += m.sum() / 60.0
        var_sum += (I.c * I.base_act[a:b][m]).sum()
    s1 = math.sqrt(var_sum / (M * 60) * 60)  # 1-min sd, ticks
    D = 1.15 * t_target * s1 * math.sqrt(M)
    csz = rng.uniform(1.0, 2.5)
    info = dict(style=style, participation=part, target_t=t_target, child_size_lots=csz)
    eta, tau = I.p[15], I.p[16]
    if style == "aggressive":
        for (a, b) in wins:
            m = I.openm[a:b]
            ma = I.base_act[a:b][m].mean()
            vol_rate = part / (1 - part) * r_mo * ma  # lots/s
            dtc = csz / vol_rate
            ts = np.arange(a + rng.uniform(0, dtc), b, dtc)
            ts = ts + rng.uniform(-0.3, 0.3, len(ts)) * dtc
            ts = ts[(ts >= a) & (ts < b)]
            ts = ts[I.openm[ts.astype(int)]]
            sz = csz * rng.uniform(0.8, 1.2, len(ts))
            I.sch.append((ts, np.full(len(ts), side, np.int8), sz))
            # expected transient impact offset of the child flow (remove from explicit drift)
            D -= 0.7 * min(I.p[19], eta * vol_rate * tau * (1 - math.exp(-(b - a) / tau)))
        info["child_interval_s"] = float(dtc)
    else:
        for (a, b) in wins:
            m = I.openm[a:b]
            I.pside[a:b][m] = side
            I.prate[a:b][m] = part / (1 - part) * r_mo * I.base_act[a:b][m]
    D = max(D, 0.4 * t_target * s1 * math.sqrt(M))
    per = D / (M * 60)
    for (a, b) in wins:
        m = I.openm[a:b]
        I.drift[a:b][m] += side * per
    info["fair_value_move_ticks"] = side * D
    info["sigma1_ticks"] = s1
    return info


def add_burst(I, rng, st, L, side):
    s1 = sigma1(I, st)
    k = rng.uniform(4, 10)
    J = k * s1
    I.jumps[st] += side * J
    mult = rng.uniform(5, 20)
    nbr = rng.uniform(0.5, 0.8)
    beta = rng.uniform(3, 8) / L
    r_loc = I.cfg["r_mo"] * I.base_act[st]
    bg = rng.uniform(1.5, 3.0)
    I.amul[st:st + L] *= bg
    I.vm2[st:st + L] *= rng.uniform(1.5, 3.0) ** 2
    I.cmu[st:st + L] = max(0.0, (mult - bg)) * r_loc * (1 - nbr)
    I.cside[st:st + L] = side
    cont = rng.uniform(0.0, 0.5) * J
    I.drift[st:st + L] += side * cont / L
    # alpha/beta are per instrument in the simulator: store per-episode, use the mean
    return dict(jump_sigma1=k, jump_ticks=side * J, sigma1_ticks=s1, activity_mult=mult, branching=nbr,
                beta_per_s=beta, continuation_ticks=side * cont, cascade_s=L)


def add_delev(I, rng, st, en, side):
    am = rng.uniform(3, 8); vm = rng.uniform(3, 6); p1 = rng.uniform(0.6, 0.85); kd = rng.uniform(3, 8)
    L = en - st
    I.amul[st:en] *= am
    I.vm2[st:en] *= vm ** 2
    I.dprob[st:en] = 2 * p1 - 1
    I.dside[st:en] = side
    u = (np.arange(L) + 0.5) / L
    w = np.sin(np.pi * u) ** 2 + 0.3
    w = w / w.sum()
    D = kd * I.sd_day
    I.drift[st:en] += side * D * w
    return dict(activity_mult=am, vol_mult=vm, one_sided_frac=p1, move_daily_sd=kd, move_ticks=side * D)


def add_control(I, rng, kind, st, en):
    if kind == "vol_spike":
        am = rng.uniform(2, 4); vm = rng.uniform(3, 5)
        I.amul[st:en] *= am; I.vm2[st:en] *= vm ** 2
        return dict(activity_mult=am, vol_mult=vm)
    if kind == "wander":
        L = en - st
        m = I.openm[st:en]
        s1 = math.sqrt(60 * (I.c * I.base_act[st:en][m]).mean())
        tt = rng.uniform(1.5, 2.5); sd = 1 if rng.random() < 0.5 else -1
        D = tt * s1 * math.sqrt(m.sum() / 60)
        I.drift[st:en][m] += sd * D / m.sum()
        return dict(target_t=tt, direction=sd, move_ticks=sd * D)
    if kind == "quiet":
        q = rng.uniform(0.25, 0.5)
        I.amul[st:en] *= q; I.vm2[st:en] *= q
        return dict(activity_mult=q)
    if kind == "busy_open":
        am = rng.uniform(2, 4); vm = rng.uniform(1.5, 2.5)
        L = en - st
        dec = np.exp(-np.arange(L) / (L / 2.5))
        I.amul[st:en] *= 1 + (am - 1) * dec
        I.vm2[st:en] *= 1 + (vm ** 2 - 1) * dec
        return dict(activity_mult=am, vol_mult=vm)
    if kind == "small_jump":
        s1 = sigma1(I, st)
        k = rng.uniform(2, 3.5); sd = 1 if rng.random() < 0.5 else -1
        I.jumps[st] += sd * k * s1
        I.amul[st:st + 20] *= 1.5
        return dict(jump_sigma1=k, jump_ticks=sd * k * s1, direction=sd)
    raise KeyError(kind)


def minute_t(t, price, openm, wins, tick):
    """t-statistic of the price move over the given windows from 1-minute log returns."""
    rets = []
    for (a, b) in wins:
        edges = np.arange(a, b + 1, 60)
        if len(edges) < 3:
            continue
        idx = np.searchsorted(t, edges, side="left") - 1
        ok = idx >= 0
        pe = np.where(ok, price[np.clip(idx, 0, None)], np.nan) * tick
        r = np.diff(np.log(pe))
        mo = openm[np.clip(edges[:-1] + 30, 0, len(openm) - 1)]
        r = r[mo & np.isfinite(r)]
        rets.append(r)
    if not rets:
        return float("nan"), 0
    r = np.concatenate(rets)
    if len(r) < 3 or r.std() == 0:
        return float("nan"), len(r)
    return float(r.sum() / (r.std(ddof=1) * math.sqrt(len(r)))), len(r)


SIMP = dict(l_best=1.0, l_deep=0.4, w_meta=0.5, n_meta=10, palpha=1.5, lmin=5.0, tau=300.0, bkap=0.5,
            asym=0.7, l_in=2.0, kc=2.0, ssig=0.8, K=6)


def sim_params(cfg, I):
    r = cfg["r_mo"]; q0 = cfg["q0"]
    fmax = 2.5 * math.sqrt(I.c * 60)
    theta = 0.5 * r / q0
    eta = 0.08 * cfg["g0"] / max(1.0, math.sqrt(q0))
    return np.array([r, SIMP["l_best"] * r, SIMP["l_deep"] * r, theta, q0, SIMP["ssig"], SIMP["K"], SIMP["asym"],
                     cfg["gs"], cfg["g0"], SIMP["kc"] * max(1.0, r / 2), SIMP["w_meta"], SIMP["n_meta"],
                     SIMP["palpha"], SIMP["lmin"], eta, SIMP["tau"], SIMP["bkap"], SIMP["l_in"] * r, fmax], float)


def side_label(I, d):
    up = d > 0
    if I.cfg["invert"]:
        up = not up
    return "buy" if up else "sell"


def make_schedule(I, cfg, rng, ndays):
    name = I.name
    sch = Scheduler(I, rng, ndays)
    eps = []  # (kind, dict)
    short = name in SHORT_SESSION
    # --- steady flows (optionally one multi-session) ---
    n_flow = int(rng.integers(2, 5)); n_burst = int(rng.integers(2, 5)); n_del = int(rng.integers(2, 5))
    flows = []
    if rng.random() < (0.5 if name == "CSI300ETF" else 0.7) and ndays >= 4:
        nwin = int(rng.integers(2, 4)) if name != "CSI300ETF" else 2
        win = int(rng.uniform(*cfg["mflow_len"]) * H)
        w = sch.place_flow(win, nwin)
        if w:
            flows.append(w)
    plan = []
    for r in range(4):
        if r == 0 or r == 1:
            plan += ["flow", "burst", "delev"]
        elif r == 2:
            plan += ["vol_spike", "wander", "quiet", "busy_open", "small_jump"]
        else:
            plan += ["flow"] * max(0, n_flow - 2) + ["burst"] * (n_burst - 2) + ["delev"] * (n_del - 2)
            plan += [c for c in ["vol_spike", "wander", "quiet", "busy_open", "small_jump"] if rng.random() < 0.5]
    nf = len(flows)
    for kind in plan:
        if kind == "flow":
            if nf >= n_flow:
                continue
            w = sch.place_flow(int(rng.uniform(*cfg["flow_len"]) * H), 1)
            if w:
                flows.append(w); nf += 1
        elif kind == "burst":
            L = int(rng.uniform(30, 300))
            w = sch.place(L, thr=0.6)
            if w:
                eps.append(("burst", w))
        elif kind == "delev":
            hi = 60 if name == "CSI300ETF" else (90 if name == "SPY" else 120)
            w = sch.place(int(rng.uniform(20, hi) * MIN), thr=0.5)
            if w:
                eps.append(("deleveraging", w))
        elif kind == "busy_open":
            w = sch.place_at_open(int(rng.uniform(15, 45) * MIN))
            if w:
                eps.append((kind, w))
        else:
            if kind == "vol_spike":
                dur = rng.uniform(10, 60) * MIN
            elif kind == "wander":
                dur = rng.uniform(*((0.75, 1.5) if name == "CSI300ETF" else (1, 2) if short else (1, 4))) * H
            elif kind == "quiet":
                dur = rng.uniform(*((0.75, 1.25) if name == "CSI300ETF" else (1, 2) if short else (3, 6))) * H
            else:
                dur = 60
            w = sch.place(int(dur), thr=0.4 if kind == "quiet" else 0.5)
            if w:
                eps.append((kind, w))
    return flows, eps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    T0 = time.time()
    seed = args.seed; ndays = args.days
    os.makedirs(args.out, exist_ok=True)
    monday = date.fromisoformat(MONDAYS[(seed * 7) % len(MONDAYS)])
    cals = {n: build_calendar(n, c, monday, ndays) for n, c in INSTR.items()}
    t0 = min(ss[0][0] for cal in cals.values() for ss in cal[:1])
    t0 = t0.replace(minute=0, second=0, microsecond=0)
    tend = max(ss[-1][1] for cal in cals.values() for ss in cal)
    nsec = int((tend - t0).total_seconds()) + 1
    t0_ns = int(t0.timestamp()) * 1_000_000_000
    labels = []; truth = []; frames = []; stats = {}
    for ii, (name, cfg) in enumerate(INSTR.items()):
        rng = np.random.default_rng([seed, ii, 3])
        I = prepare(name, cfg, cals[name], t0, nsec, rng)
        I.p = sim_params(cfg, I)
        best = None
        for attempt in range(60):
            flows, eps = make_schedule(I, cfg, rng, ndays)
            cnt = {}
            for k, _ in eps:
                cnt[k] = cnt.get(k, 0) + 1
            score = (min(len(flows), 2) + min(cnt.get('burst', 0), 2) + min(cnt.get('deleveraging', 0), 2)
                     + sum(min(cnt.get(c, 0), 1) for c in CONTROLS)
                     + (0.5 if any(len(w) > 1 for w in flows) else 0.0))
            if best is None or score > best[0]:
                best = (score, flows, eps)
            if score >= 6 + len(CONTROLS) + 0.5:
                break
        _, flows, eps = best
        # --- apply episodes to arrays ---
        recs = []
        bursts_ab = []
        for wins in flows:
            side = 1 if rng.random() < 0.5 else -1
            style = "aggressive" if rng.random() < 0.5 else "passive"
            info = add_flow(I, rng, wins, style, side, rng.uniform(0.10, 0.35), rng.uniform(3, 8))
            recs.append(dict(kind="steady_flow", dir=side, wins=wins, info=info))
        for kind, (a, b) in eps:
            if kind == "burst":
                side = 1 if rng.random() < 0.5 else -1
                info = add_burst(I, rng, a, b - a, side)
                bursts_ab.append(info)
                recs.append(dict(kind="burst", dir=side, wins=[(a, b)], info=info))
            elif kind == "deleveraging":
                side = 1 if rng.random() < 0.5 else -1
                recs.append(dict(kind=kind, dir=side, wins=[(a, b)], info=add_delev(I, rng, a, b, side)))
            else:
                info = add_control(I, rng, kind, a, b)
                recs.append(dict(kind=kind, dir=info.get("direction", 0), wins=[(a, b)], info=info))
        # background informed shifts (small, unlabelled, no cascade): ~3 per day
        bg = []
        opens = np.nonzero(I.openm & (I.season > 0.5))[0]
        for _ in range(int(rng.poisson(3 * ndays))):
            s = int(opens[rng.integers(len(opens))])
            k = rng.uniform(1.0, 2.0) * (1 if rng.random() < 0.5 else -1)
            I.jumps[s] += k * sigma1(I, s)
            bg.append(dict(kind="bg_shift", wins=[(s, s + 1)], dir=int(np.sign(k)), info=dict(jump_sigma1=abs(k))))
        if bursts_ab:
            I.cbeta = float(np.mean([b["beta_per_s"] for b in bursts_ab]))
            I.calpha = float(np.mean([b["branching"] for b in bursts_ab])) * I.cbeta
        # --- fair value path ---
        act = I.base_act * I.amul
        var = I.c * I.base_act * I.vm2 * I.openm
        z = np.random.default_rng([seed, ii, 7]).standard_normal(nsec)
        inc = np.sqrt(var) * z + I.drift * I.openm + I.jumps
        # overnight / break gaps at session re-open
        reopen = np.nonzero(I.openm[1:] & ~I.openm[:-1])[0] + 1
        for s in reopen:
            if I.dayid[s] > 0 or name == "TY":
                inc[s] += rng.standard_normal() * (I.overnight_sd if name != "TY" else 0.15 * I.sd_day)
        fexo = np.empty(nsec + 1)
        fexo[0] = I.f0
        fexo[1:] = I.f0 + np.cumsum(inc)
        if I.sch:
            st = np.concatenate([x[0] for x in I.sch]); ss = np.concatenate([x[1] for x in I.sch])
            sz = np.concatenate([x[2] for x in I.sch])
            o = np.argsort(st, kind="stable"); st, ss, sz = st[o], ss[o], sz[o]
        else:
            st = np.zeros(0); ss = np.zeros(0, np.int8); sz = np.zeros(0)
        maxn = int(act.sum() * cfg["r_mo"] * 4 + 1_000_000)
        t1 = time.time()
        tt, pp, qq, sg = simulate(int(seed * 1000 + ii), act * I.openm, fexo, I.p, I.dprob, I.dside, I.pside,
                                  I.prate, I.cmu, I.cside, I.calpha, I.cbeta, st.astype(float), ss, sz, maxn)
        if len(tt) >= maxn:
            print("WARNING buffer full", name)
        # --- realised statistics / labels ---
        for rec in recs + bg:
            wins = rec["wins"]
            a, b = wins[0][0], wins[-1][1]
            out = dict(instrument=name, kind=rec["kind"], start_ts=t0_ns + a * 1_000_000_000,
                       end_ts=t0_ns + b * 1_000_000_000)
            if rec["dir"] != 0:
                out["side"] = side_label(I, rec["dir"])
            if rec["kind"] in ("steady_flow", "deleveraging", "wander", "burst", "vol_spike", "quiet"):
                tw, nmin = minute_t(tt, pp, I.openm, wins, I.tick)
                sgn = rec["dir"] if rec["dir"] != 0 else 1
                if np.isfinite(tw):
                    out["realized_t"] = round(sgn * tw, 3)
                if len(wins) > 1:
                    tsp, _ = minute_t(tt, pp, I.openm, [(a, b)], I.tick)
                    if np.isfinite(tsp):
                        out["realized_t_span"] = round(sgn * tsp, 3)
            if rec["kind"] == "steady_flow":
                out["style"] = rec["info"]["style"]
                out["n_sessions"] = len(wins)
                out["windows"] = [[t0_ns + x * 1_000_000_000, t0_ns + y * 1_000_000_000] for x, y in wins]
                # realised signed aggressive volume imbalance in the windows (price-direction frame)
                m = np.zeros(len(tt), bool)
                for x, y in wins:
                    i0, i1 = np.searchsorted(tt, [x, y]); m[i0:i1] = True
                vol = qq[m].sum(); imb = (qq[m] * sg[m]).sum() / max(vol, 1e-9)
                out["aggr_imbalance"] = round(float(rec["dir"] * imb), 3)
            tr = dict(out); tr.update({k: (float(v) if isinstance(v, (np.floating, float)) else v)
                                       for k, v in rec["info"].items()})
            truth.append(tr)
            if rec["kind"] in ("steady_flow", "burst", "deleveraging"):
                lab = {k: out[k] for k in out}
                labels.append(lab)
        # --- tape frame ---
        tick = I.tick
        price = np.round(pp * tick, cfg["dec"])
        size = np.maximum(cfg["gran"], np.round(qq * cfg["lot"] / cfg["gran"]) * cfg["gran"])
        if cfg["gran"] >= 1:
            size = size.astype(np.int64)
        ts = t0_ns + np.round(tt * 1e9).astype(np.int64)
        side = np.where(sg > 0, "B", "S") if cfg["side"] else np.full(len(tt), "", dtype=object)
        frames.append(pd.DataFrame(dict(instrument=name, ts=ts, price=price, size=size, side=side)))
        # stats
        day_last = []
        for d in range(ndays):
            dm = I.dayid[np.clip(tt.astype(int), 0, nsec - 1)] == d
            if dm.any():
                day_last.append(pp[dm][-1])
        dr = np.diff(np.log(np.array(day_last, float) * tick))
        # realised vol from 5-min returns, averaged per day
        e5 = np.arange(0, nsec, 300)
        i5 = np.searchsorted(tt, e5) - 1
        p5 = np.where(i5 >= 0, pp[np.clip(i5, 0, None)], pp[0]) * tick
        r5 = np.diff(np.log(p5))
        rv = math.sqrt((r5 ** 2).sum() / ndays)
        d0 = I.dayid[np.clip(e5[1:], 0, nsec - 1)] == 0
        rv0 = math.sqrt((r5[d0] ** 2).sum())
        m0 = I.dayid[np.clip(tt.astype(int), 0, nsec - 1)] == 0
        tr0 = float(np.std(pp[m0] - fexo[np.clip(tt[m0].astype(int), 0, nsec - 1)]))
        fe = fexo[np.clip(e5, 0, nsec)]
        rvf0 = math.sqrt((np.diff(np.log(fe))[d0] ** 2).sum())
        stats[name] = dict(trades_per_day=len(tt) / ndays, daily_ret_sd=float(dr.std(ddof=1)) if len(dr) > 1 else float("nan"),
                           rv_daily=rv, target_sd=I.sd_day * tick / (cfg["p0"]), sim_s=time.time() - t1, rv0=rv0, tr0=tr0, rvf0=rvf0,
                           track_err_ticks=float(np.std(pp - fexo[np.clip(tt.astype(int), 0, nsec - 1)])))
        # episode counts
        kinds = {}
        for rec in recs:
            kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
        stats[name]["episodes"] = kinds
    # --- write ---
    tape = pd.concat(frames, ignore_index=True)
    tape = tape.sort_values("ts", kind="stable").reset_index(drop=True)
    tape.to_csv(os.path.join(args.out, "tape.csv"), index=False)
    labels.sort(key=lambda r: (r["start_ts"], r["instrument"]))
    truth.sort(key=lambda r: (r["start_ts"], r["instrument"]))
    with open(os.path.join(args.out, "labels.jsonl"), "w") as f:
        f.write(json.dumps({"meta": {"instrument_days": ndays * len(INSTR)}}) + "\n")
        for r in labels:
            f.write(json.dumps(r, allow_nan=False) + "\n")
    with open(os.path.join(args.out, "truth.jsonl"), "w") as f:
        f.write(json.dumps({"meta": {"seed": seed, "monday": monday.isoformat(), "tape_start_ns": t0_ns,
                                     "instruments": {n: {k: v for k, v in c.items() if k != "sess"} | {"sessions": c["sess"]}
                                                     for n, c in INSTR.items()}}}) + "\n")
        for r in truth:
            f.write(json.dumps(r, allow_nan=False) + "\n")
    with open(os.path.join(args.out, "config.toml"), "w") as f:
        for n, c in INSTR.items():
            f.write(f"[instruments.{n}]\n")
            if c["invert"]:
                f.write("invert = true\n")
            if n == "SPY":
                f.write('calendar = { tz = "America/New_York", open = "09:30", close = "16:00", days = "Mon-Fri" }\n\n')
            elif n == "CSI300ETF":
                f.write('calendar = { tz = "Asia/Shanghai", open = "09:30", close = "15:00", days = "Mon-Fri" }\n\n')
            else:
                f.write(f'calendar = {{ tz = "{c["tz"]}" }}\n\n')
    # --- validate & report ---
    ts = tape["ts"].to_numpy()
    assert np.all(np.diff(ts) >= 0), "ts not sorted"
    assert not tape[["ts", "price", "size"]].isna().any().any(), "NaN"
    assert (tape["price"] > 0).all() and (tape["size"] > 0).all()
    for n, c in INSTR.items():
        pr = tape.loc[tape.instrument == n, "price"].to_numpy() / c["tick"]
        assert np.abs(pr - np.round(pr)).max() < 1e-6, f"off grid {n}"
    for r in labels:
        assert ts[0] <= r["start_ts"] < r["end_ts"] <= ts[-1] + 1, r
    print(f"seed {seed}  monday {monday}  rows {len(tape)}  time {time.time() - T0:.1f}s")
    for n, s in stats.items():
        print(f"{n:10s} trades/day {s['trades_per_day']:9.0f}  daily_sd {s['daily_ret_sd']:.4f}  rv_daily {s['rv_daily']:.4f}"
              f" (target {s['target_sd']:.4f}) day0 rv {s['rv0']:.4f} f {s['rvf0']:.4f} tr {s['tr0']:.1f}  track {s['track_err_ticks']:.1f}t  sim {s['sim_s']:.1f}s  {s['episodes']}")


if __name__ == "__main__":
    main()
