"""The numba kernel: every estimator and the regime state machine, fused into one pass per tick.

State lives in two arrays indexed by instrument id: ``F`` (float64, ``NF`` columns) and ``I``
(int64, ``NI`` columns); one instrument is 2,040 bytes. The column layout below is the snapshot
format (bump ``LAYOUT_VERSION`` on any change). ``signals/reference.py`` is the slow,
obviously-correct implementation of the same arithmetic; tests hold the two together.

Per tick the kernel only updates the open bar (pre-averaging). When a tick opens a new bar,
the previous bar is closed: its return feeds the estimators (``_close_bar``) and the regime
state machine runs, with that tick as the trigger.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

LAYOUT_VERSION = 9

NB = 24          # time-of-day buckets (hours, local time of the instrument's calendar)
NH = 4           # horizons of the drift and flow statistics
HORIZONS = (60.0, 900.0, 3600.0, 14400.0)
NSTAT = 18

# ---- float state columns -------------------------------------------------------------
F_B_SUMP, F_B_N, F_B_Q, F_B_V = 0, 1, 3, 4                         # open bar (its last price: F_LAST_PX)
F_NZ_S = 2                                                         # noise scale: open 15-min block's sum
F_PREV_MEAN, F_PREV_R, F_PREV_RC = 5, 7, 8                          # previous bar (its close: F_PREV_CLOSE)
F_FD_TODAY = 6                                                     # fingerprint: today's part of the current bucket
F_LAST_PX, F_LAST_SIGN = 9, 10                                     # tick rule
F_S, F_W2, F_VN, F_VD = 11, 15, 19, 23                             # drift, 4 horizons each
F_VB_N, F_VB_D = 27, 28                                            # baseline variance rate
F_BV_N, F_JS_RV, F_JS_BV = 29, 30, 31                              # bipower, jump share
F_Q, F_U, F_M = 32, 36, 40                                         # flow, 4 horizons each
F_QV, F_UV, F_MV, F_VOLR = 44, 45, 46, 47                          # volume-clock flow
F_ACT_N = 48                                                       # activity
F_CU = 49                                                          # 4 CUSUMs: up/down slow, up/down fast
F_WARM, F_SCORE = 53, 54
F_STATS = 55                                                       # NSTAT cached statistics
F_SV, F_SN, F_SQ, F_ST, F_FD = 73, 97, 121, 145, 169               # seasonal + fingerprint, NB each
F_NF_S, F_NF_P, F_NF_N = 193, 194, 195                             # fast noise scale: as F_NZ_*, 1-min blocks
F_NZ_H = 196                                                       # noise scale: open 15-min block's HAC content
F_VY = 197                                                         # 3: EW squared returns (vol ratios)
F_VBH_N, F_ACT_D = 200, 201                                        # HAC baseline, activity clock
F_Q10, F_U10, F_M10 = 202, 203, 204                                # 10-s flow (burst cascades)
F_JUMP_Z = 205                                                     # jump_z of the remembered burst-level jump (its sign: the side)
F_ACT15 = 206                                                      # 15-min EW tick count (surge cap)
F_NZ_P, F_NZ_N = 207, 208                                          # noise scale: last block's sum, EW half squared differences
F_ACT_CU = 209                                                     # activity CUSUM (Poisson, against the seasonal rate)
F_NZ_HP, F_NZ_ON, F_NZ_OD = 210, 211, 212                          # noise scale: last block's HAC content; own ratio's sums
F_JUMP_MID = 213                                                    # the price level the remembered jump must hold
NF = 214

# ---- int state columns ---------------------------------------------------------------
I_LAST_TS, I_TICKS, I_BAR_START, I_BAR_BUCKET, I_BAR_DAY = 0, 1, 2, 3, 4
I_PREV_BAR, I_DAY, I_SIDED, I_JUMPS, I_LAST_JUMP_TS = 5, 6, 7, 8, 9
I_LAST_BIGJUMP_TS = 10                                             # last family-wise significant jump
I_TAU = 11                                                         # 4 CUSUM excursion starts
I_REGIME, I_SIDE, I_ONSET, I_ALERT_TS, I_ENTER_TS, I_EXIT_SINCE = 15, 16, 17, 18, 19, 20
I_CAND_SINCE = 21                                                  # 3 kinds
I_SIDES = 24                                                       # 6 sides, 2 bits each: candidate, last exit per kind
I_LX_TS, I_LX_ALERT, I_LX_ONSET = 25, 28, 31                       # last exit per kind
I_ALERTS = 34                                                      # 6: kind*2 + (side > 0)
I_LAST_ALERT_TS = 40
# I_PREV_BAR is NONE_TS until the first bar closes; I_SIDED counts the ticks that came with an
# aggressor side (a feed with sides on fewer than half its ticks is a tick-rule feed)
NI = 41

# ---- cached statistics (EngineView.stats columns) --------------------------------------
STAT_NAMES = (
    "drift_tstat_60s", "drift_tstat_900s", "drift_tstat_3600s", "drift_tstat_14400s",
    "flow_z_60s", "flow_z_900s", "flow_z_3600s", "flow_z_14400s", "flow_z_volume",
    "vol_ratio_60s", "vol_ratio_900s", "vol_ratio_3600s",
    "activity_ratio", "jump_z", "jump_share", "fingerprint_tstat", "absorption_z", "last_price",
)
S_T, S_Z, S_ZV, S_VR, S_ACT, S_JZ, S_JS, S_FP, S_ABS, S_PX = 0, 4, 8, 9, 12, 13, 14, 15, 16, 17
F_PREV_CLOSE = F_STATS + S_PX    # the previous bar's close is the cached last_price
#: an alert's evidence: the statistics, the 15-min drift against the long-run volatility
#: (computed at each bar close for the deleveraging rule, not kept in the state) and the
#: activity CUSUM (F_ACT_CU)
EVIDENCE_NAMES = STAT_NAMES + ("move_tstat_900s", "activity_cusum")

# ---- parameters ------------------------------------------------------------------------
P_BAR_S, P_MAX_GAP_S, P_HBASE, P_LAM_DAY, P_KAPPA_S, P_CLIP = 0, 1, 2, 3, 4, 5
P_ZSTAR, P_WARM_S, P_WARM_SLOW_S, P_CU_SLOW, P_CU_FAST = 6, 7, 8, 9, 10
P_ZSTAR_B, P_B_ACT, P_B_VR, P_D_T, P_D_VR, P_D_Z = 11, 12, 13, 14, 15, 16
P_S_T, P_S_TSLOW, P_S_VRMAX, P_S_Z, P_S_FP, P_EXITF = 17, 18, 19, 20, 21, 22
P_VCLOCK_S, P_JUMP_WINDOW_S, P_STEADY_QUIET_S, P_B_Z, P_D_ACT, P_TRUNC = 23, 24, 25, 26, 27, 28
P_S_TFLOW, P_S_ZSTRONG, P_B_T, P_JSD = 29, 30, 31, 32          # P_JSD: smallest jump, 1-min sds
P_SURGE = 33
P_D_AVR = 34           # the 15-min volatility ratio the activity path of deleveraging also needs
P_D_JQ = 35            # no deleveraging entry this soon after a burst-level jump (seconds)
P_D_BS = 36           # a burst on the side that has lasted this long replaces the flow condition (seconds)
P_B_MIN = 37          # a burst's activity surge needs this many ticks (10-s weighted count) behind it
P_D_ZV = 38           # deleveraging's flow condition on the volume clock (or the 15-min flow z)
P_S_DQ = 39           # no steady flow entry this soon after a deleveraging exit (seconds)
P_D_MT = 40           # deleveraging: 15-min drift against the long-run volatility that ...
P_D_MZ = 41           # ... lets this weaker flow z (15-min or volume clock) stand in for P_D_Z
P_D_TS = 42           # deleveraging: a 15-min drift t this strong is one-sided without the flow
P_B_ZTR = 43          # a burst's 10-s flow z on a tick-rule feed (P_B_Z where the feed has sides)
P_S_MOVE = 44         # steady flow: no larger 15-min move against the long-run volatility
P_B_TS, P_B_ZS = 45, 46   # a burst's 1-min drift t or 10-s flow z this strong needs no help from the other
P_S_HVRMAX = 47           # steady flow: no larger 15-min or 1-h volatility ratio on the noise-free (HAC) scale
P_S_TS = 48              # steady flow: a 1-h t this strong needs no corroboration
P_D_VT, P_D_VZ = 49, 50  # deleveraging: the 15-min t needed under a violent move with this strong a flow
P_B_CUH, P_B_CUK = 51, 52  # a burst's surge on the activity CUSUM: its level, and the rate multiple it tests for
P_D_FZ, P_D_FT, P_D_FM = 53, 54, 55  # deleveraging: a flow this strong needs only this 15-min t with this move
P_B_JZTR = 56         # a burst on a tick-rule feed: after a jump this strong (|jump_z|) the 10-s flow need only be >= 0
P_D_EZ = 57           # deleveraging with a flow z this plain is entered without its entry wait (not during a burst)
P_D_MIN = 58          # deleveraging's activity path needs this many trades behind its 10-s ratio
P_D_VM = 59           # deleveraging: a move (15-min drift against the long-run volatility) this violent is intense enough
P_B_HOLD = 60         # a burst's entry: the share of its jump the bar's mean price still holds
P_B_HVR = 61          # a burst's volatility surge on the noise-free scale: the 1-min local HAC volatility over the long-run one
P_B_UJZ = 62          # a burst in an hour of the day the profile has not seen needs a jump statistic this large
NP = 63
IP_BAR_NS, IP_TOL_NS, IP_SAMPLE_NS = 0, 1, 2
IP_ENTER = 3          # 3 kinds: enter durations (ns)
IP_EXIT = 6           # 3 kinds: exit durations (ns)
IP_COOL = 9           # 3 kinds: cooldowns (ns)
NIP = 12

REGIME_QUIET, REGIME_STEADY, REGIME_BURST, REGIME_DELEV = 0, 1, 2, 3
EV_ENTER, EV_EXIT, EV_RESUME = 1, 2, 3
REASON_OUT_OF_ORDER = 8     # signals.ticks.REASONS index
HALF_PI = math.pi / 2.0
NONE_TS = np.int64(-(2 ** 62))
# a log return between bar means smaller than this is the rounding of a sum of equal prices
# (3.966 summed three times and divided by three is not 3.966), not a move: kept, it gives a
# new instrument whose first minutes print at one price a baseline variance of about 1e-33,
# against which every later return is clipped and reads as ten billion standard deviations
ROUNDING = 1e-12
NOISE_BLOCK_NS = 900 * 10 ** 9     # blocks of the noise scale (aligned on the epoch)
NOISE_MARGIN = 1.5                 # the noise scale corrects only a clear difference from the HAC rate,
#                                    either way (the clip below also trims fat-tailed pairs: fine grids stay at 1)
# a block pair counts at most NOISE_CLIP long-run block variances (or slow-rate ones, where larger):
# a larger difference is a move (a rout's start or end, a jump), not noise
NOISE_CLIP = 4.0
NOISE_WARM_S = 43200.0             # trading seconds of baseline before the noise scale is believed
# until then a fast noise scale on 1-min blocks, believed after an hour, corrects the 1-h and 4-h
# t-statistics' variance upwards only: a price that follows its value with a lag of seconds
# makes them read too large from its first hours, which the 15-min blocks see only after 12 h
FAST_NOISE_BLOCK_NS = 60 * 10 ** 9
FAST_NOISE_WARM_S = 3600.0
# the 1-h and 4-h t-statistics take the 15-min scale's own ratio: each block pair against its own
# HAC content, which counts as at least this share of the baseline level (a bounce-dominated
# block's HAC sum can be 0 or below), as the long-run rate does
OWN_FLOOR = 0.05
# ... and below 1 / OWN_MARGIN they take OWN_MARGIN times it: on a coarse tick grid (a tick of one
# or two one-minute standard deviations, as on a Treasury future) block sums vary far less than
# the HAC rate says, and the 1-h t read 0.66-0.97 standard deviations; the margin leaves the
# estimate's noise alone (fine grids read 0.75-1.05)
OWN_MARGIN = 1.35
MOVE_SEEN_S = 3600.0               # seconds the profile must hold at this hour before a "violent move" counts in full
UNSEEN_MOVE_WEIGHT = 0.5           # ... before, it counts at this weight
BURST_SEEN_S = 1800.0              # a burst in an hour with less trading than this in the profile needs P_B_UJZ
# a CUSUM holds at most this many trading seconds of its reference drift (slow, fast), so it is
# back at 0 that long after a move ends and a later move gets its own onset
CUSUM_CAP_SLOW_S, CUSUM_CAP_FAST_S = 4 * 3600.0, 3600.0


SIDE_CAND, SIDE_LAST_EXIT = 0, 3   # I_SIDES slots: + kind (0 steady flow, 1 burst, 2 deleveraging)


def sides_word(sides) -> int:
    """The ``I_SIDES`` word of six sides (-1, 0, +1) in slot order; a fresh row's 0 is six zeros."""
    return sum((2 if sd < 0 else int(sd)) << (2 * slot) for slot, sd in enumerate(sides))


@njit(cache=True, nogil=True, inline="always")
def _side(I, i, slot):
    c = (I[i, I_SIDES] >> (2 * slot)) & 3
    return -1 if c == 2 else c


@njit(cache=True, nogil=True, inline="always")
def _set_side(I, i, slot, sd):
    I[i, I_SIDES] = (I[i, I_SIDES] & ~(3 << (2 * slot))) | ((2 if sd < 0 else sd) << (2 * slot))


def new_rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fresh state rows for ``n`` instruments (what an instrument starts from)."""
    F = np.zeros((n, NF), np.float64)
    I = np.zeros((n, NI), np.int64)
    I[:, I_EXIT_SINCE] = NONE_TS
    I[:, I_CAND_SINCE:I_CAND_SINCE + 3] = NONE_TS
    I[:, I_LX_TS:I_LX_TS + 3] = NONE_TS
    I[:, I_LAST_JUMP_TS] = NONE_TS
    I[:, I_LAST_BIGJUMP_TS] = NONE_TS
    I[:, I_LAST_ALERT_TS] = NONE_TS
    I[:, I_ONSET] = NONE_TS
    I[:, I_PREV_BAR] = NONE_TS
    return F, I


def lee_mykland_threshold(alpha: float, n: int) -> float:
    """Lee-Mykland (2008) critical value for |return| / local volatility, in standard-normal units.

    The maximum of ``n`` standardised returns is Gumbel; reject at family-wise level ``alpha``
    when ``(|L| - C_n) / S_n > -log(-log(1 - alpha))`` with ``L`` on the bipower scale
    (``sqrt(2/pi)`` times the standard-normal one).

    >>> round(lee_mykland_threshold(0.01, 78), 3)
    4.067
    """
    c = math.sqrt(2.0 / math.pi)
    ln = math.log(n)
    root = math.sqrt(2.0 * ln)
    cn = root / c - (math.log(math.pi) + math.log(ln)) / (2.0 * c * root)
    sn = 1.0 / (c * root)
    beta = -math.log(-math.log(1.0 - alpha))
    return c * (cn + sn * beta)


@njit(cache=True, nogil=True)
def run(F, I, ids, ts, price, size, side, bucket, day, start, P, IP, next_sample, reason,
        ev_ts, ev_iid, ev_code, ev_kind, ev_side, ev_onset, ev_alert, ev_score, ev_stats,
        sm_iid, sm_ts, sm_stats, sm_regime, sm_side):
    """Process rows ``start..`` until done or an output buffer is nearly full.

    Returns ``(next_row, n_events, n_samples)``; the caller drains the buffers and calls again
    from ``next_row`` when it is less than ``len(ts)``.
    """
    n = ts.shape[0]
    bar_ns = IP[IP_BAR_NS]
    tol = IP[IP_TOL_NS]
    ne = 0
    ns = 0
    cap_e = ev_ts.shape[0]
    cap_s = sm_iid.shape[0]
    r = start
    while r < n:
        if ne + 2 > cap_e or ns + 1 > cap_s:
            break
        i = ids[r]
        t = ts[r]
        p = price[r]
        late = False
        if I[i, I_TICKS] > 0:
            last = I[i, I_LAST_TS]
            if t < last - tol:
                reason[r] = REASON_OUT_OF_ORDER
                r += 1
                continue
            if t < last:
                t = last          # a little late: counted at the last time seen, in its bar
                late = True
        # aggressor side, else the tick rule
        s = float(side[r])
        if s != 0.0:
            I[i, I_SIDED] += 1
        else:
            lp = F[i, F_LAST_PX]
            if I[i, I_TICKS] > 0 and p > lp:
                s = 1.0
            elif I[i, I_TICKS] > 0 and p < lp:
                s = -1.0
            else:
                s = F[i, F_LAST_SIGN]
        F[i, F_LAST_SIGN] = s
        bstart = t - t % bar_ns
        if I[i, I_TICKS] > 0 and bstart != I[i, I_BAR_START]:
            ne, ns = _close_bar(F, I, i, t, P, IP, next_sample, ev_ts, ev_iid, ev_code, ev_kind, ev_side,
                                ev_onset, ev_alert, ev_score, ev_stats, ne, sm_iid, sm_ts, sm_stats,
                                sm_regime, sm_side, ns)
            F[i, F_B_SUMP] = 0.0
            F[i, F_B_N] = 0.0
            F[i, F_B_Q] = 0.0
            F[i, F_B_V] = 0.0
            if bucket[r] != I[i, I_BAR_BUCKET] or day[r] != I[i, I_BAR_DAY]:
                F[i, F_FD_TODAY] = 0.0              # today's visit to the closed bar's bucket is over
        if I[i, I_TICKS] == 0 or bstart != I[i, I_BAR_START]:
            I[i, I_BAR_START] = bstart
        F[i, F_B_SUMP] += p
        F[i, F_B_N] += 1.0
        F[i, F_LAST_PX] = p
        F[i, F_B_Q] += s * size[r]
        F[i, F_B_V] += size[r]
        if not late:
            I[i, I_BAR_BUCKET] = bucket[r]
            I[i, I_BAR_DAY] = day[r]
        I[i, I_LAST_TS] = t
        I[i, I_TICKS] += 1
        r += 1
    return r, ne, ns


@njit(cache=True, nogil=True, inline="always")
def _noise_blocks(F, i, cs, cp, cn, new_block, block_s, rt, vh, ab):
    """One bar into a noise scale's columns: ``cs`` the open block's sum, ``cp`` the last block's,
    ``cn`` half the squared differences of consecutive block sums, with the baseline's decay."""
    add = 0.0
    if new_block:
        dblk = F[i, cs] - F[i, cp]
        # the clip's unit: the long-run block variance, or the slow rate itself where it is larger
        # (a price that follows its value with a lag), so that the estimate can show that excess
        cref = max(vh, F[i, cn] / F[i, F_VB_D])
        add = min(0.5 * dblk * dblk, NOISE_CLIP * cref * block_s)
        F[i, cp] = F[i, cs]
        F[i, cs] = 0.0
    F[i, cn] = ab * F[i, cn] + add
    F[i, cs] += rt


@njit(cache=True, nogil=True, inline="always")
def _own_ratio(F, i):
    return F[i, F_NZ_ON] / F[i, F_NZ_OD] if F[i, F_NZ_OD] > 0.0 else 1.0


@njit(cache=True, nogil=True, inline="always")
def _own_noise(F, i, new_block, block_s, x, vb, vh, ab):
    """One bar into the noise scale's own ratio (before ``_noise_blocks`` moves the block sums on):
    each block pair's half squared difference against the pair's own HAC content, both over the
    larger of that content and the long-run block variance, summed with the baseline's decay."""
    add_n = 0.0
    add_d = 0.0
    if new_block:
        dblk = F[i, F_NZ_S] - F[i, F_NZ_P]
        h = max(0.5 * (F[i, F_NZ_H] + F[i, F_NZ_HP]), OWN_FLOOR * vb * block_s)
        unit = max(h, vh * block_s)
        own = _own_ratio(F, i)
        if unit > 0.0:                             # else a flat price: nothing to compare
            add_n = min(0.5 * dblk * dblk, NOISE_CLIP * max(own, 1.0) * unit) / unit
            add_d = h / unit
        F[i, F_NZ_HP] = F[i, F_NZ_H]
        F[i, F_NZ_H] = 0.0
    F[i, F_NZ_ON] = ab * F[i, F_NZ_ON] + add_n
    F[i, F_NZ_OD] = ab * F[i, F_NZ_OD] + add_d
    F[i, F_NZ_H] += x


@njit(cache=True, nogil=True, inline="always")
def _ratio_z(x, m):
    return x / math.sqrt(m) if m > 1e-12 else 0.0


@njit(cache=True, nogil=True)
def _close_bar(F, I, i, t, P, IP, next_sample, ev_ts, ev_iid, ev_code, ev_kind, ev_side, ev_onset,
               ev_alert, ev_score, ev_stats, ne, sm_iid, sm_ts, sm_stats, sm_regime, sm_side, ns):
    nticks = F[i, F_B_N]
    mean = F[i, F_B_SUMP] / nticks
    close = F[i, F_LAST_PX]
    q = F[i, F_B_Q]
    v = F[i, F_B_V]
    b = I[i, I_BAR_BUCKET]
    bstart = I[i, I_BAR_START]
    stats = F[i, F_STATS:F_STATS + NSTAT]          # stats[S_PX] is F_PREV_CLOSE: set below, after the return
    if I[i, I_PREV_BAR] == NONE_TS:                # the first bar: no return yet
        F[i, F_PREV_MEAN] = mean
        F[i, F_PREV_CLOSE] = close
        I[i, I_PREV_BAR] = bstart
        I[i, I_DAY] = I[i, I_BAR_DAY]
        return ne, ns
    # a new local day: older days weigh less in the seasonal profile and the fingerprint
    if I[i, I_BAR_DAY] != I[i, I_DAY]:
        lam = P[P_LAM_DAY]
        for k in range(NB):
            F[i, F_SV + k] *= lam
            F[i, F_SN + k] *= lam
            F[i, F_SQ + k] *= lam
            F[i, F_ST + k] *= lam
            F[i, F_FD + k] *= lam
        F[i, F_FD_TODAY] = 0.0
        I[i, I_DAY] = I[i, I_BAR_DAY]
    gap = (bstart - I[i, I_PREV_BAR]) * 1e-9
    new_block = bstart // NOISE_BLOCK_NS != I[i, I_PREV_BAR] // NOISE_BLOCK_NS
    new_fast_block = bstart // FAST_NOISE_BLOCK_NS != I[i, I_PREV_BAR] // FAST_NOISE_BLOCK_NS
    brk = gap > P[P_MAX_GAP_S]
    # trading-time clock: a closed period (session break) does not age the statistics
    dt = P[P_BAR_S] if brk else gap
    if brk:
        r = 0.0
        rc = 0.0
    else:
        r = math.log(mean / F[i, F_PREV_MEAN])
        if abs(r) < ROUNDING:
            r = 0.0
        rc = math.log(close / F[i, F_PREV_CLOSE])
    F[i, F_PREV_MEAN] = mean
    F[i, F_PREV_CLOSE] = close
    I[i, I_PREV_BAR] = bstart

    # ---- seasonal factors (volatility and activity) for this bucket, shrunk to the mean ----
    kappa = P[P_KAPPA_S]
    tsv = 0.0                                     # all-day totals: the sums of the buckets
    tsn = 0.0
    tsq = 0.0
    tst = 0.0
    for k in range(NB):
        tsv += F[i, F_SV + k]
        tsn += F[i, F_SN + k]
        tsq += F[i, F_SQ + k]
        tst += F[i, F_ST + k]
    if tst > 0.0 and tsv > 0.0:
        vbar = tsv / tst
        fb = (F[i, F_SV + b] + kappa * vbar) / (F[i, F_ST + b] + kappa) / vbar
        fb = min(max(fb, 0.05), 20.0)
        nbar = tsn / tst
        lamb = (F[i, F_SN + b] + kappa * nbar) / (F[i, F_ST + b] + kappa)
        qbar = tsq / tst
        vf = (F[i, F_SQ + b] + kappa * qbar) / (F[i, F_ST + b] + kappa) / qbar if qbar > 0.0 else 1.0
    else:
        fb = 1.0
        lamb = 0.0
        vf = 1.0
    sf = math.sqrt(fb)
    rt = r / sf                                   # deseasonalised pre-averaged return
    y = rt * rt                                   # volatility level (noise included, always >= 0)
    # jump-robust drift: truncate the return at P_TRUNC local standard deviations (Mancini 2009)
    # before it enters the drift, the long-run variance, the CUSUMs and the fingerprint
    vloc = F[i, F_BV_N] / F[i, F_VD + 1] if F[i, F_VD + 1] > 0.0 else 0.0
    vb0 = F[i, F_VB_N] / F[i, F_VB_D] if F[i, F_VB_D] > 0.0 else 0.0
    lim = P[P_TRUNC] * math.sqrt(max(vloc, vb0) * dt)
    if lim > 0.0:
        rt = min(max(rt, -lim), lim)
    rtr = rt * sf
    x = (rtr * rtr + 2.0 * rtr * F[i, F_PREV_R]) / fb   # lag-1 HAC: long-run (noise-free) variance
    F[i, F_PREV_R] = rtr
    rct = rc / sf

    # ---- baselines (long memory): volatility level, jump-clipped; long-run variance ----
    ab = math.exp(-dt / P[P_HBASE])
    vb = F[i, F_VB_N] / F[i, F_VB_D] if F[i, F_VB_D] > 0.0 else 0.0
    yb = y
    if vb > 0.0 and yb > P[P_CLIP] * vb * dt:
        yb = P[P_CLIP] * vb * dt
    xb = x * (yb / y) if yb < y else x        # a clipped jump is clipped in both measures
    F[i, F_VB_N] = ab * F[i, F_VB_N] + yb
    F[i, F_VBH_N] = ab * F[i, F_VBH_N] + xb
    F[i, F_VB_D] = ab * F[i, F_VB_D] + dt
    vb = F[i, F_VB_N] / F[i, F_VB_D]
    # the long-run variance, floored: with heavy bid-ask noise the HAC estimate can sink to zero
    vh = max(F[i, F_VBH_N] / F[i, F_VB_D], 0.05 * vb)
    F[i, F_WARM] += dt

    # ---- noise scales: the drift-free variance of 15-min (until believed, 1-min) block sums over
    # the lag-1 HAC rate; for the 1-h and 4-h t, each 15-min pair over its own HAC content ----
    _own_noise(F, i, new_block, NOISE_BLOCK_NS * 1e-9, x, vb, vh, ab)
    _noise_blocks(F, i, F_NZ_S, F_NZ_P, F_NZ_N, new_block, NOISE_BLOCK_NS * 1e-9, rt, vh, ab)
    _noise_blocks(F, i, F_NF_S, F_NF_P, F_NF_N, new_fast_block, FAST_NOISE_BLOCK_NS * 1e-9, rt, vh, ab)
    nscale = 1.0
    nslow = 1.0
    if F[i, F_VB_D] < NOISE_WARM_S and F[i, F_VB_D] >= FAST_NOISE_WARM_S and vh > 0.0:
        nslow = max((F[i, F_NF_N] / F[i, F_VB_D]) / vh, 1.0)
    if F[i, F_VB_D] >= NOISE_WARM_S and vh > 0.0:
        nr = (F[i, F_NZ_N] / F[i, F_VB_D]) / vh
        nscale = NOISE_MARGIN * nr if NOISE_MARGIN * nr < 1.0 else (nr / NOISE_MARGIN if nr > NOISE_MARGIN else 1.0)
        # the 1-h and 4-h t-statistics take an excess of the own ratio in full: correcting
        # upwards only lowers them, and what the margin leaves (up to 1.5 times the variance)
        # multiplies their false alarms at the steady-flow levels several times; a clear
        # shortfall (a coarse grid) with OWN_MARGIN, as the 15-min t takes the ratio's
        own = _own_ratio(F, i)
        nslow = own if own > 1.0 else (OWN_MARGIN * own if OWN_MARGIN * own < 1.0 else nscale)

    # ---- Lee-Mykland jump test on close returns vs. preceding bipower variation ----
    a1 = math.exp(-dt / 900.0)
    bvr = F[i, F_BV_N] / F[i, F_VD + 1] if F[i, F_VD + 1] > 0.0 else 0.0
    jz = rct / math.sqrt(bvr * dt) if bvr * dt > 0.0 else 0.0
    stats[S_JZ] = jz
    if (not brk) and F[i, F_WARM] >= P[P_WARM_S]:
        # a jump is also large on the one-minute scale of the efficient price: the long-run
        # (HAC) variance, the local 15-min one or the last minute's, whichever is largest (on
        # 1-s bars the test's own scale is mostly microstructure noise and tick discreteness;
        # the last minute: where volatility has just risen, at a session open or in a rout, a
        # move is measured against it, not against the calmer 15 minutes before)
        vj = max(vh, F[i, F_VN + 1] / F[i, F_VD + 1]) if F[i, F_VD + 1] > 0.0 else vh
        if F[i, F_VD] > 0.0:
            vj = max(vj, F[i, F_VN] / F[i, F_VD])
        big = abs(rct) >= P[P_JSD] * math.sqrt(vj * 60.0)
        if big and abs(jz) >= P[P_ZSTAR_B]:
            # the burst rule reads the dominant jump of its window: a smaller one (the bounce
            # after a news jump) does not replace a larger one that is still in the window
            if I[i, I_LAST_JUMP_TS] == NONE_TS or bstart - I[i, I_LAST_JUMP_TS] > P[P_JUMP_WINDOW_S] * 1e9 \
                    or abs(jz) >= abs(F[i, F_JUMP_Z]):
                I[i, I_LAST_JUMP_TS] = bstart
                F[i, F_JUMP_Z] = jz
                # the level the price must hold for the burst rule: the mean before the jump
                # plus P_B_HOLD of the jump's move (a bounce on a coarse grid goes back through it)
                F[i, F_JUMP_MID] = mean * math.exp(-r) * math.exp(P[P_B_HOLD] * rc)
        if big and abs(jz) >= max(P[P_ZSTAR], P[P_ZSTAR_B]):
            I[i, I_JUMPS] += 1
            I[i, I_LAST_BIGJUMP_TS] = bstart
    bp = HALF_PI * abs(rct) * F[i, F_PREV_RC]
    F[i, F_BV_N] = a1 * F[i, F_BV_N] + bp
    a3 = math.exp(-dt / 3600.0)
    F[i, F_JS_RV] = a3 * F[i, F_JS_RV] + rct * rct
    F[i, F_JS_BV] = a3 * F[i, F_JS_BV] + bp
    F[i, F_PREV_RC] = abs(rct)
    stats[S_JS] = min(max(1.0 - F[i, F_JS_BV] / F[i, F_JS_RV], 0.0), 1.0) if F[i, F_JS_RV] > 0.0 else 0.0

    # ---- drift t-statistics, volatility ratios and flow imbalance, per horizon ----
    for k in range(NH):
        a = math.exp(-dt / (60.0 if k == 0 else 900.0 if k == 1 else 3600.0 if k == 2 else 14400.0))
        F[i, F_S + k] = a * F[i, F_S + k] + rt
        F[i, F_W2 + k] = a * a * F[i, F_W2 + k] + dt
        F[i, F_VN + k] = a * F[i, F_VN + k] + x
        F[i, F_VD + k] = a * F[i, F_VD + k] + dt
        vk = F[i, F_VN + k] / F[i, F_VD + k]
        den = max(vk, (1.0 if k == 0 else 0.25) * vh) * (1.0 if k == 0 else nscale if k == 1 else nslow) * F[i, F_W2 + k]
        stats[S_T + k] = F[i, F_S + k] / math.sqrt(den) if den > 0.0 else 0.0
        if k < 3:
            F[i, F_VY + k] = a * F[i, F_VY + k] + y
            stats[S_VR + k] = math.sqrt(F[i, F_VY + k] / F[i, F_VD + k] / vb) if vb > 0.0 else 1.0
        F[i, F_Q + k] = a * F[i, F_Q + k] + q
        F[i, F_U + k] = a * F[i, F_U + k] + v
        imb = F[i, F_Q + k] / F[i, F_U + k] if F[i, F_U + k] > 0.0 else 0.0
        F[i, F_M + k] = ab * F[i, F_M + k] + imb * imb * dt
        stats[S_Z + k] = _ratio_z(imb, F[i, F_M + k] / F[i, F_VB_D])
    # volume clock: decay by traded volume, scale = the volume usually traded over P_VCLOCK_S
    # seconds at this time of day (long-run rate times the bucket's seasonal volume factor)
    F[i, F_VOLR] = ab * F[i, F_VOLR] + v
    vscale = F[i, F_VOLR] / F[i, F_VB_D] * P[P_VCLOCK_S] * vf
    av = math.exp(-v / vscale) if vscale > 0.0 else 0.0
    F[i, F_QV] = av * F[i, F_QV] + q
    F[i, F_UV] = av * F[i, F_UV] + v
    imbv = F[i, F_QV] / F[i, F_UV] if F[i, F_UV] > 0.0 else 0.0
    F[i, F_MV] = ab * F[i, F_MV] + imbv * imbv * dt
    stats[S_ZV] = _ratio_z(imbv, F[i, F_MV] / F[i, F_VB_D])

    # ---- activity (deseasonalised tick rate over ~10 s) ----
    a0 = math.exp(-dt / 10.0)
    F[i, F_ACT_N] = a0 * F[i, F_ACT_N] + nticks
    F[i, F_ACT_D] = a0 * F[i, F_ACT_D] + dt
    F[i, F_ACT15] = a1 * F[i, F_ACT15] + nticks       # 15-min tick count (clock: F_VD + 1)
    rate = F[i, F_ACT_N] / F[i, F_ACT_D]
    F[i, F_Q10] = a0 * F[i, F_Q10] + q
    F[i, F_U10] = a0 * F[i, F_U10] + v
    imb10 = F[i, F_Q10] / F[i, F_U10] if F[i, F_U10] > 0.0 else 0.0
    F[i, F_M10] = ab * F[i, F_M10] + imb10 * imb10 * dt
    stats[S_ACT] = rate / lamb if lamb > 0.0 else 1.0
    # activity CUSUM: the Poisson log-likelihood ratio of a rate P_B_CUK times the usual one,
    # summed while it stays positive (Page 1954; Lucas 1985): a tenfold surge passes P_B_CUH
    # within a second or two, where the 10-s ratio needs several. Held at twice that level, so
    # it falls back within seconds once the surge ends. The trades of a bar that holds a
    # burst-level jump do not count: a jump printed as one order sweeping the book is many fills
    # in one bar, and the surge that makes a burst is the crowd that follows it
    if lamb > 0.0:
        n = 0.0 if I[i, I_LAST_JUMP_TS] == bstart else nticks
        cu = F[i, F_ACT_CU] + n * math.log(P[P_B_CUK]) - (P[P_B_CUK] - 1.0) * lamb * dt
        F[i, F_ACT_CU] = min(max(cu, 0.0), 2.0 * P[P_B_CUH])

    # ---- seasonal profile update, fingerprint and CUSUM onsets ----
    # a surge does not explain itself: while the 15-min volatility or activity is above P_SURGE
    # times the usual level, a bar feeds its hour's profile only that multiple of the usual level
    vr2 = stats[S_VR + 1] * stats[S_VR + 1]
    wv = min(1.0, P[P_SURGE] / vr2) if vr2 > 0.0 else 1.0
    act15 = F[i, F_ACT15] / F[i, F_VD + 1] / lamb if lamb > 0.0 else 0.0
    wn = min(1.0, P[P_SURGE] / act15) if act15 > 0.0 else 1.0
    F[i, F_SV + b] += yb * fb * wv
    F[i, F_SN + b] += nticks * wn
    F[i, F_SQ + b] += v
    F[i, F_ST + b] += dt
    u = rt / math.sqrt(vh) if vh > 0.0 else 0.0
    # the fingerprint is the drift of past days at this hour: today's part of the bucket (reset
    # when the next bar falls in another bucket or day) is left out, or a drift would vouch for
    # itself. A bar in a burst or deleveraging adds its seconds but not its return: a rout or a
    # news cascade at this hour is an event, not a parent order's habit
    if I[i, I_REGIME] < REGIME_BURST:
        F[i, F_FD + b] += u
        F[i, F_FD_TODAY] += u
    stats[S_FP] = (F[i, F_FD + b] - F[i, F_FD_TODAY]) / math.sqrt(F[i, F_ST + b]) if F[i, F_ST + b] > 0.0 else 0.0
    for c in range(4):
        kap = P[P_CU_SLOW] if c < 2 else P[P_CU_FAST]
        sgn = 1.0 if c % 2 == 0 else -1.0
        was = F[i, F_CU + c]
        now = min(max(0.0, was + sgn * u - kap * dt), kap * (CUSUM_CAP_SLOW_S if c < 2 else CUSUM_CAP_FAST_S))
        if was == 0.0 and now > 0.0:
            I[i, I_TAU + c] = bstart
        F[i, F_CU + c] = now
    t60 = stats[S_T + 2]
    z60 = stats[S_Z + 2]
    if t60 * z60 < 0.0:
        stats[S_ABS] = (1.0 if t60 > 0 else -1.0) * min(abs(t60), abs(z60))
    else:
        stats[S_ABS] = 0.0

    # the 15-min drift against the long-run (normal) volatility instead of the local one: how
    # violent the move is, in the instrument's usual units; at half its value until the seasonal
    # profile has seen an hour of trading at this hour of the day (before, "usual" is that of
    # other hours: on a feed's first day a busy session's open moves many quiet-hour standard
    # deviations, its variance several times the all-day one)
    dm = vh * nscale * F[i, F_W2 + 1]
    move = F[i, F_S + 1] / math.sqrt(dm) if dm > 0.0 else 0.0
    if F[i, F_ST + b] < MOVE_SEEN_S:
        move *= UNSEEN_MOVE_WEIGHT
    ne = _regime(F, I, i, t, bstart, P, IP, stats, move, ev_ts, ev_iid, ev_code, ev_kind, ev_side, ev_onset,
                 ev_alert, ev_score, ev_stats, ne)
    if IP[IP_SAMPLE_NS] > 0 and bstart >= next_sample[i]:
        sm_iid[ns] = i
        sm_ts[ns] = bstart
        sm_stats[ns, :] = stats
        sm_regime[ns] = I[i, I_REGIME]
        sm_side[ns] = I[i, I_SIDE]
        ns += 1
        next_sample[i] = (bstart // IP[IP_SAMPLE_NS] + 1) * IP[IP_SAMPLE_NS]
    return ne, ns


@njit(cache=True, nogil=True, inline="always")
def _flow10(F, i):
    imb = F[i, F_Q10] / F[i, F_U10] if F[i, F_U10] > 0.0 else 0.0
    return _ratio_z(imb, F[i, F_M10] / F[i, F_VB_D])


@njit(cache=True, nogil=True, inline="always")
def _hac_vol_ratio(F, i, first, last):
    """The local lag-1 HAC volatility of horizons ``first``..``last`` (0: 1 min, 1: 15 min, 2: 1 h),
    the largest, over the long-run HAC one (0 where none is above 0)."""
    vb = F[i, F_VB_N] / F[i, F_VB_D] if F[i, F_VB_D] > 0.0 else 0.0
    vh = max(F[i, F_VBH_N] / F[i, F_VB_D], 0.05 * vb) if F[i, F_VB_D] > 0.0 else 0.0
    v = 0.0
    for k in range(first, last + 1):
        if F[i, F_VD + k] > 0.0:
            v = max(v, F[i, F_VN + k] / F[i, F_VD + k])
    return math.sqrt(v / vh) if vh > 0.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def _sgn(x):
    return 1 if x > 0.0 else (-1 if x < 0.0 else 0)


@njit(cache=True, nogil=True)
def _primary_side(F, I, i, bstart, P, stats, kind):
    """The side a kind would be entered on now: the sign of its primary statistic."""
    if kind == REGIME_DELEV:
        return _sgn(stats[S_T + 1])
    if kind == REGIME_STEADY:
        return _sgn(stats[S_T + 2])
    if I[i, I_LAST_JUMP_TS] != NONE_TS and bstart - I[i, I_LAST_JUMP_TS] <= P[P_JUMP_WINDOW_S] * 1e9:
        return _sgn(F[i, F_JUMP_Z])
    return _sgn(stats[S_T + 0])


@njit(cache=True, nogil=True)
def _holds(F, I, i, bstart, P, stats, move, kind, d, f):
    """Does ``kind`` hold on side ``d``, with every threshold loosened by factor ``f`` (1 = entry level)?"""
    if d == 0:
        return False
    warm = F[i, F_WARM]
    if kind == REGIME_DELEV:
        # deleveraging: fast drift, high volatility, one-sided flow (15-min clock or volume clock:
        # a rout trades several times the usual volume, so 15 minutes of flow is then a few
        # minutes of wall time, and a sparse feed's 15-min z is too noisy); not entered in the first
        # minutes after a news jump (a cascade then is a burst). A burst on side d that has lasted
        # P_D_BS stands in for the flow (its entry needed same-side flow): a "burst" that goes
        # on for tens of minutes is a deleveraging, also where the tick rule signs flow poorly.
        # So does a weaker flow (P_D_MZ) under a violent move: the 15-min drift against the
        # long-run volatility (``move``) at P_D_MT, beyond what a steady grind reaches. A drift
        # of P_D_TS against both the local, surging volatility and the long-run one needs no
        # flow: a move that strong is one-sided whatever the tick rule makes of the trades (the
        # move counts at half its value in an hour the profile has not seen, where a busy open's
        # first minutes can read as a strong local drift while the local volatility lags). The activity path's
        # volatility gate also passes on a violent move (P_D_MT): where bid-ask noise dominates
        # 1-s returns a rout's volatility ratio reads little above 1, and no grind moves that fast.
        # A move more violent still (P_D_VM) is intense enough without the activity: a rout that
        # trades only about twice the usual rate reads 1-2 there.
        # The local t's denominator is the rout's own surging volatility, so a violent move (P_D_MT)
        # with a strong one-sided flow (P_D_VZ, 15-min or volume clock) needs only P_D_VT there,
        # and a stronger flow still (P_D_FZ) only P_D_FT with a smaller move (P_D_FM): in a rout's
        # first minutes the flow is plain long before the price's drift is
        if f == 1.0 and I[i, I_LAST_JUMP_TS] != NONE_TS and bstart - I[i, I_LAST_JUMP_TS] <= P[P_D_JQ] * 1e9:
            return False
        if warm < P[P_WARM_S] or not (stats[S_VR + 1] >= P[P_D_VR] * f
                                      or (stats[S_ACT] >= P[P_D_ACT] * f and F[i, F_ACT_N] >= P[P_D_MIN]
                                          and (stats[S_VR + 1] >= P[P_D_AVR] * f or move * d >= P[P_D_MT] * f))
                                      or move * d >= P[P_D_VM] * f):
            return False
        t15, zmax = stats[S_T + 1] * d, max(stats[S_Z + 1] * d, stats[S_ZV] * d)
        if t15 < P[P_D_T] * f:
            return ((t15 >= P[P_D_VT] * f and move * d >= P[P_D_MT] * f and zmax >= P[P_D_VZ] * f)
                    or (t15 >= P[P_D_FT] * f and move * d >= P[P_D_FM] * f and zmax >= P[P_D_FZ] * f))
        return (stats[S_Z + 1] * d >= P[P_D_Z] * f or stats[S_ZV] * d >= P[P_D_ZV] * f
                or (t15 >= P[P_D_TS] * f and move * d >= P[P_D_TS] * f)
                or (move * d >= P[P_D_MT] * f and zmax >= P[P_D_MZ] * f)
                or (I[i, I_REGIME] == REGIME_BURST and I[i, I_SIDE] == d
                    and bstart - I[i, I_ENTER_TS] >= P[P_D_BS] * 1e9))
    if kind == REGIME_BURST:
        # burst: a jump or a fast drift, with an activity and volatility surge, flow not against it
        if warm < P[P_WARM_S]:
            return False
        if stats[S_ACT] < P[P_B_ACT] * f and stats[S_VR + 0] < P[P_B_VR]:
            return False
        if f == 1.0:
            # the surge: the 10-s activity ratio, or sooner the activity CUSUM (then, until the
            # ratio has caught up, the cascade must show in the flow at its strong level, P_B_ZS);
            # and a surge is many trades: on a sparse feed one early tick is a "fourfold" rate.
            # Where fewer than half the ticks (this one included; I_TICKS counts it only after the
            # bar closes) came with an aggressor side the flow is the tick rule's, which signs a
            # cascade's trades poorly: it has to reach only P_B_ZTR. The cascade is the flow and
            # the 1-min drift on the jump's side together, or either one alone at a strong level
            # (P_B_TS, P_B_ZS; the drift with the flow at least not against it): a tick-rule feed
            # can hide a cascade's flow while its price runs. There, after a jump whose statistic
            # is at least P_B_JZTR, the flow need only be not against the jump: news that large
            # does not need the tick rule to vouch for its cascade
            # The volatility surge: the 1-min ratio, or the same on the noise-free (lag-1 HAC)
            # scale at P_B_HVR: where bid-ask noise dominates 1-s returns (a coarse grid, a
            # spread of several ticks) a cascade's volatility reads little above 1 with the noise
            early = stats[S_ACT] < P[P_B_ACT]
            if (early and F[i, F_ACT_CU] < P[P_B_CUH]) or F[i, F_ACT_N] < P[P_B_MIN] \
                    or (stats[S_VR + 0] < P[P_B_VR] and _hac_vol_ratio(F, i, 0, 0) < P[P_B_HVR]):
                return False
            jump = I[i, I_LAST_JUMP_TS] != NONE_TS and \
                bstart - I[i, I_LAST_JUMP_TS] <= P[P_JUMP_WINDOW_S] * 1e9 and _sgn(F[i, F_JUMP_Z]) == d
            if not jump:
                return False
            # in an hour of the day with less than BURST_SEEN_S of trading in the seasonal profile
            # (a feed's first day) a busy session's first open reads as a surge of trades and
            # volatility, and its opening moves pass the jump test at Lee-Mykland statistics of
            # 5-9: there a burst needs stronger news, a jump statistic of P_B_UJZ (news: 8-40)
            if F[i, F_ST + I[i, I_BAR_BUCKET]] < BURST_SEEN_S and abs(F[i, F_JUMP_Z]) < P[P_B_UJZ]:
                return False
            # news moves the price to a new level: from the bar after the jump on (the jump's own
            # bar averages the prices before it, and a sweep's fills, with the jump) the bar's
            # mean still holds P_B_HOLD of it. A bid-ask bounce on a coarse grid (a one-tick
            # move of the mid and a trade at the other side) reads as a jump and goes back within seconds
            if bstart != I[i, I_LAST_JUMP_TS] and d * (F[i, F_PREV_MEAN] - F[i, F_JUMP_MID]) < 0.0:
                return False
            z = _flow10(F, i) * d
            if early:
                return z >= P[P_B_ZS]
            t1 = stats[S_T + 0] * d
            if 2 * I[i, I_SIDED] >= I[i, I_TICKS] + 1:
                zc = P[P_B_Z]
            else:
                zc = P[P_B_ZTR] if abs(F[i, F_JUMP_Z]) < P[P_B_JZTR] else min(P[P_B_ZTR], 0.0)
            return (z >= zc and t1 >= P[P_B_T]) or (t1 >= P[P_B_TS] and z >= 0.0) or z >= P[P_B_ZS]
        return True
    # steady flow: slow drift on two horizons, normal volatility (15 min and 1 h), no recent jump
    # or fast regime, and corroboration from order flow (aggressive or absorbed) or the same-hours
    # fingerprint. Never during a burst or deleveraging: a rout's drift is still in the 1-h and
    # 4-h windows when it ends, and a candidate grown under it would be entered at its exit
    if I[i, I_REGIME] >= REGIME_BURST or warm < P[P_WARM_SLOW_S] \
            or max(stats[S_VR + 1], stats[S_VR + 2]) > P[P_S_VRMAX] / f:
        return False
    # the same on the noise-free (lag-1 HAC) scale: where bid-ask noise dominates 1-s returns the
    # ratios above read a rout's volatility little above 1, this one does not
    if _hac_vol_ratio(F, i, 1, 2) > P[P_S_HVRMAX] / f:
        return False
    # a grind does not move many normal standard deviations in 15 minutes: a rout does, also where
    # its volatility on 1-s bars hides under microstructure noise and the volatility ratios stay low
    if abs(move) > P[P_S_MOVE] / f:
        return False
    quiet_ns = P[P_STEADY_QUIET_S] * 1e9
    for last in (I[i, I_LAST_BIGJUMP_TS], I[i, I_LX_TS + 1]):
        if last != NONE_TS and bstart - last <= quiet_ns:
            return False
    # nor soon after a rout's end (the exit also restarts the 1-h and 4-h drift sums, see _exit)
    if I[i, I_LX_TS + 2] != NONE_TS and bstart - I[i, I_LX_TS + 2] <= max(quiet_ns, P[P_S_DQ] * 1e9):
        return False
    t1, t4, z1 = stats[S_T + 2] * d, stats[S_T + 3] * d, abs(stats[S_Z + 2])
    # strong one-sided flow (aggressive children) or strong flow against the price (absorbed
    # passive children) lowers the price evidence needed
    if z1 >= P[P_S_ZSTRONG] * f and t1 >= P[P_S_TFLOW] * f and t4 >= P[P_S_TSLOW] * f * P[P_S_TFLOW] / P[P_S_T]:
        return True
    if t1 < P[P_S_T] * f or t4 < P[P_S_TSLOW] * f:
        return False
    # a drift this strong is no random walk's wander, whatever the flow: passive children that
    # neither take liquidity nor lean against it leave no trace in the signed volume
    return t1 >= P[P_S_TS] * f or z1 >= P[P_S_Z] * f or stats[S_FP] * d >= P[P_S_FP] * f


@njit(cache=True, nogil=True)
def _emit(F, I, i, t, code, kind, sd, onset, alert, score, stats, move, ev_ts, ev_iid, ev_code, ev_kind, ev_side,
          ev_onset, ev_alert, ev_score, ev_stats, ne):
    ev_ts[ne] = t
    ev_iid[ne] = i
    ev_code[ne] = code
    ev_kind[ne] = kind
    ev_side[ne] = sd
    ev_onset[ne] = onset
    ev_alert[ne] = alert
    ev_score[ne] = score
    ev_stats[ne, :NSTAT] = stats
    ev_stats[ne, NSTAT] = move
    ev_stats[ne, NSTAT + 1] = F[i, F_ACT_CU]
    return ne + 1


@njit(cache=True, nogil=True)
def _regime(F, I, i, t, bstart, P, IP, stats, move, ev_ts, ev_iid, ev_code, ev_kind, ev_side, ev_onset,
            ev_alert, ev_score, ev_stats, ne):
    cur = I[i, I_REGIME]
    ef = P[P_EXITF]
    # entry candidates: a kind's condition must hold on one side for its entry duration; once a
    # candidate, it survives while the looser (hysteresis) condition holds on that side
    desired = 0
    dside = 0
    for code in (REGIME_DELEV, REGIME_BURST, REGIME_STEADY):
        k = code - 1
        cs = _side(I, i, SIDE_CAND + k)
        if cs != 0 and _holds(F, I, i, bstart, P, stats, move, code, cs, ef):
            pass
        else:
            sd = _primary_side(F, I, i, bstart, P, stats, code)
            if _holds(F, I, i, bstart, P, stats, move, code, sd, 1.0):
                I[i, I_CAND_SINCE + k] = t
                _set_side(I, i, SIDE_CAND + k, sd)
            else:
                I[i, I_CAND_SINCE + k] = NONE_TS
                _set_side(I, i, SIDE_CAND + k, 0)
        cs = _side(I, i, SIDE_CAND + k)
        # a rout whose one-sided flow is plain does not wait out its entry duration (a burst
        # does: a news cascade reads like a rout for its first minutes)
        no_wait = code == REGIME_DELEV and cur != REGIME_BURST \
            and max(stats[S_Z + 1] * cs, stats[S_ZV] * cs) >= P[P_D_EZ]
        if desired == 0 and cs != 0 and (no_wait or t - I[i, I_CAND_SINCE + k] >= IP[IP_ENTER + k]) \
                and _holds(F, I, i, bstart, P, stats, move, code, cs, 1.0):
            desired = code
            dside = cs
    stay = cur != REGIME_QUIET and _holds(F, I, i, bstart, P, stats, move, cur, I[i, I_SIDE], ef)
    if cur != REGIME_QUIET:
        # a stronger regime replaces the current one; a fast regime on the other side reverses it
        if desired > cur or (desired >= REGIME_BURST and dside != I[i, I_SIDE]):
            ne = _exit(F, I, i, t, stats, move, ev_ts, ev_iid, ev_code, ev_kind, ev_side, ev_onset, ev_alert,
                       ev_score, ev_stats, ne)
            cur = REGIME_QUIET
        elif stay:
            I[i, I_EXIT_SINCE] = NONE_TS
            return ne
        else:
            if I[i, I_EXIT_SINCE] == NONE_TS:
                I[i, I_EXIT_SINCE] = t
            if t - I[i, I_EXIT_SINCE] < IP[IP_EXIT + cur - 1]:
                return ne
            ne = _exit(F, I, i, t, stats, move, ev_ts, ev_iid, ev_code, ev_kind, ev_side, ev_onset, ev_alert,
                       ev_score, ev_stats, ne)
            cur = REGIME_QUIET
    if desired == REGIME_QUIET:
        return ne
    k = desired - 1
    if desired == REGIME_STEADY:
        tau = I[i, I_TAU + (0 if dside > 0 else 1)]
        score = abs(stats[S_T + 2])
        onset = tau if F[i, F_CU + (0 if dside > 0 else 1)] > 0.0 else bstart - np.int64(3600 * 10 ** 9)
    elif desired == REGIME_DELEV:
        tau = I[i, I_TAU + (2 if dside > 0 else 3)]
        score = abs(stats[S_T + 1])
        onset = tau if F[i, F_CU + (2 if dside > 0 else 3)] > 0.0 else bstart - np.int64(900 * 10 ** 9)
    else:
        score = max(abs(stats[S_T + 0]), abs(stats[S_JZ]))
        jump_recent = I[i, I_LAST_JUMP_TS] != NONE_TS and \
            bstart - I[i, I_LAST_JUMP_TS] <= P[P_JUMP_WINDOW_S] * 1e9
        if jump_recent and _sgn(F[i, F_JUMP_Z]) == dside:
            onset = I[i, I_LAST_JUMP_TS]
        else:
            tau = I[i, I_TAU + (2 if dside > 0 else 3)]
            onset = max(tau, bstart - np.int64(P[P_JUMP_WINDOW_S] * 1e9))
    if onset > t:
        onset = t
    if I[i, I_LX_TS + k] != NONE_TS and _side(I, i, SIDE_LAST_EXIT + k) == dside and t - I[i, I_LX_TS + k] <= IP[IP_COOL + k] \
            and onset <= I[i, I_LX_TS + k]:
        # the same regime came back soon after it ended, driven by a move that began before that
        # end: one episode, not a new alert (a move that began after it is a new episode)
        I[i, I_ALERT_TS] = I[i, I_LX_ALERT + k]
        I[i, I_ONSET] = I[i, I_LX_ONSET + k]
        code_ev = EV_RESUME
    else:
        I[i, I_ALERT_TS] = t
        I[i, I_ONSET] = onset
        I[i, I_ALERTS + 2 * k + (1 if dside > 0 else 0)] += 1
        I[i, I_LAST_ALERT_TS] = t
        code_ev = EV_ENTER
    I[i, I_REGIME] = desired
    I[i, I_SIDE] = dside
    I[i, I_ENTER_TS] = t
    I[i, I_EXIT_SINCE] = NONE_TS
    F[i, F_SCORE] = score
    return _emit(F, I, i, t, code_ev, desired, dside, I[i, I_ONSET], I[i, I_ALERT_TS], score, stats, move,
                 ev_ts, ev_iid, ev_code, ev_kind, ev_side, ev_onset, ev_alert, ev_score, ev_stats, ne)


@njit(cache=True, nogil=True)
def _exit(F, I, i, t, stats, move, ev_ts, ev_iid, ev_code, ev_kind, ev_side, ev_onset, ev_alert, ev_score,
          ev_stats, ne):
    cur = I[i, I_REGIME]
    k = cur - 1
    if cur == REGIME_DELEV:
        # the 1-h and 4-h drift sums start again: a rout's move would stay in them for hours
        # (a fifth of it in the 1-h sum 100 minutes on, most of it in the 4-h one) and its tail
        # would read as a grind on its side
        F[i, F_S + 2] = 0.0
        F[i, F_S + 3] = 0.0
    I[i, I_LX_TS + k] = t
    _set_side(I, i, SIDE_LAST_EXIT + k, I[i, I_SIDE])
    I[i, I_LX_ALERT + k] = I[i, I_ALERT_TS]
    I[i, I_LX_ONSET + k] = I[i, I_ONSET]
    ne = _emit(F, I, i, t, EV_EXIT, cur, I[i, I_SIDE], I[i, I_ONSET], I[i, I_ALERT_TS], 0.0, stats, move,
               ev_ts, ev_iid, ev_code, ev_kind, ev_side, ev_onset, ev_alert, ev_score, ev_stats, ne)
    I[i, I_REGIME] = REGIME_QUIET
    I[i, I_SIDE] = 0
    I[i, I_EXIT_SINCE] = NONE_TS
    return ne
