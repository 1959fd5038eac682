"""Numba event-driven queue-reactive limit order book simulator (one instrument)."""
import numpy as np
import numba as nb

EPS = 1e-9


@nb.njit(cache=True)
def _newdepth(q0):
    return q0 * (0.3 + 1.4 * np.random.random())


@nb.njit(cache=True)
def _meta_len(lmin, palpha):
    u = np.random.random()
    L = lmin * (1.0 - u) ** (-1.0 / palpha)
    if L > 20000.0:
        L = 20000.0
    return np.int64(L) + 1


@nb.njit(cache=True)
def _walk(size, t, px, q, step, q0, K, ot, op, oq, os_, n, maxn):
    """a market order consuming the queues q from the best price px outward (step +1: a buy
    walking up the asks, -1: a sell walking down the bids); prints one trade per level touched"""
    rem = size
    while rem > EPS:
        take = min(rem, q[0])
        if take > EPS and n < maxn:
            ot[n] = t; op[n] = px; oq[n] = take; os_[n] = step; n += 1
        rem -= take
        q[0] -= take
        while q[0] <= EPS:
            for i in range(K - 1):
                q[i] = q[i + 1]
            q[K - 1] = _newdepth(q0)
            px += step
    return px, n


@nb.njit(cache=True)
def _buy(size, t, A, qa, q0, K, ot, op, oq, os_, n, maxn):
    return _walk(size, t, A, qa, 1, q0, K, ot, op, oq, os_, n, maxn)


@nb.njit(cache=True)
def _sell(size, t, B, qb, q0, K, ot, op, oq, os_, n, maxn):
    return _walk(size, t, B, qb, -1, q0, K, ot, op, oq, os_, n, maxn)


@nb.njit(cache=True)
def _sweep_buy(target, t, A, qa, q0, K, ot, op, oq, os_, n, maxn):
    while A < target:
        A, n = _buy(qa[0], t, A, qa, q0, K, ot, op, oq, os_, n, maxn)
    return A, n


@nb.njit(cache=True)
def _sweep_sell(target, t, B, qb, q0, K, ot, op, oq, os_, n, maxn):
    while B > target:
        B, n = _sell(qb[0], t, B, qb, q0, K, ot, op, oq, os_, n, maxn)
    return B, n


@nb.njit(cache=True)
def _cancel_deep(q, depth, mu_s, ssig, K):
    """cancel a lognormal size at a level behind the best, chosen in proportion to its queue"""
    x = np.random.random() * depth
    for i in range(1, K):
        x -= q[i]
        if x <= 0.0 or i == K - 1:
            q[i] -= min(q[i], np.exp(mu_s + ssig * np.random.standard_normal()))
            return


@nb.njit(cache=True)
def _insert(q, k, size, K):
    """improve the best by k ticks (levels in between empty)"""
    if k >= K:
        for i in range(K):
            q[i] = 0.0
    else:
        for i in range(K - 1, k - 1, -1):
            q[i] = q[i - k]
        for i in range(1, k):
            q[i] = 0.0
    q[0] = size


@nb.njit(cache=True)
def simulate(seed, act, fexo, p,
             dprob, dside, pside, prate, cmu, cside, calpha, cbeta,
             sch_t, sch_side, sch_size, maxn):
    """p: float params
    0 r_mo, 1 l_best, 2 l_deep, 3 theta, 4 q0, 5 ssig, 6 K, 7 asym, 8 gs, 9 g0,
    10 kc, 11 w_meta, 12 n_meta, 13 palpha, 14 lmin, 15 eta, 16 tau, 17 bkap, 18 l_in, 19 fmax (impact cap)
    """
    np.random.seed(seed)
    r_mo = p[0]; l_best = p[1]; l_deep = p[2]; theta = p[3]; q0 = p[4]
    ssig = p[5]; K = int(p[6]); asym = p[7]; gs = p[8]; g0 = p[9]; kc = p[10]
    w_meta = p[11]; n_meta = int(p[12]); palpha = p[13]; lmin = p[14]
    eta = p[15]; tau = p[16]; bkap = p[17]; l_in = p[18]; fmax = p[19]
    mu_s = -0.5 * ssig * ssig
    nsec = act.shape[0]
    ot = np.empty(maxn); op = np.empty(maxn, np.int64)
    oq = np.empty(maxn); os_ = np.empty(maxn, np.int8)
    n = 0
    qb = np.zeros(K); qa = np.zeros(K)
    msign = np.empty(n_meta); mrem = np.empty(n_meta, np.int64)
    for j in range(n_meta):
        msign[j] = 1.0 if np.random.random() < 0.5 else -1.0
        mrem[j] = _meta_len(lmin, palpha)
    B = 0; A = 1
    fimp = 0.0; lamh = 0.0
    isch = 0; nsch = sch_t.shape[0]
    s = 0; t = 0.0
    book_ok = False
    while s < nsec:
        a = act[s]
        if a <= 0.0:
            s += 1; t = float(s); book_ok = False
            continue
        if not book_ok:
            f = fexo[s]
            B = int(np.floor(f)); A = B + 1
            for i in range(K):
                qb[i] = _newdepth(q0); qa[i] = _newdepth(q0)
            fimp = 0.0; lamh = 0.0; book_ok = True
            while isch < nsch and sch_t[isch] < t:
                isch += 1
        if fimp > fmax:
            fimp = fmax
        elif fimp < -fmax:
            fimp = -fmax
        f = fexo[s] + (t - s) * (fexo[s + 1] - fexo[s]) + fimp
        mid = 0.5 * (A + B)
        g = f - mid
        z = g / gs
        if z > 3.0:
            z = 3.0
        elif z < -3.0:
            z = -3.0
        eb = np.exp(asym * z); ea = 1.0 / eb
        spread = A - B
        gap = abs(g)
        ps = pside[s]
        R0 = r_mo * a
        R1 = 0.0
        if gap > g0:
            R1 = kc * (gap / g0 - 1.0)
            if R1 > 50.0:
                R1 = 50.0
        R2 = l_best * a * eb
        R3 = l_best * a * ea
        R4 = theta * a * qb[0] * ea
        R5 = theta * a * qa[0] * eb
        sdb = 0.0; sda = 0.0
        for i in range(1, K):
            sdb += qb[i]; sda += qa[i]
        R6 = l_deep * a * (K - 1)
        R7 = R6
        R8 = theta * a * sdb
        R9 = theta * a * sda
        R10 = 0.0; R11 = 0.0
        if spread > 1:
            R10 = l_in * a * (spread - 1) * eb * (4.0 if ps > 0 else 1.0)
            R11 = l_in * a * (spread - 1) * ea * (4.0 if ps < 0 else 1.0)
        R12 = prate[s]
        R13 = cmu[s] + lamh
        R = R0 + R1 + R2 + R3 + R4 + R5 + R6 + R7 + R8 + R9 + R10 + R11 + R12 + R13
        dt = -np.log(1.0 - np.random.random()) / R
        tn = t + dt
        bnd = s + 1.0
        snext = sch_t[isch] if isch < nsch else 1e18
        is_sch = False
        if snext < bnd:
            bnd = snext; is_sch = True
        if tn >= bnd:
            el = bnd - t
            fimp *= np.exp(-el / tau); lamh *= np.exp(-cbeta * el)
            t = bnd
            if is_sch:
                sg = sch_side[isch]; sz = sch_size[isch]
                isch += 1
                fimp += eta * sg * sz
                if sg > 0:
                    A, n = _buy(sz, t, A, qa, q0, K, ot, op, oq, os_, n, maxn)
                else:
                    B, n = _sell(sz, t, B, qb, q0, K, ot, op, oq, os_, n, maxn)
            else:
                s += 1
                if s < nsec and cmu[s] <= 0.0:
                    lamh = 0.0
            continue
        fimp *= np.exp(-dt / tau); lamh *= np.exp(-cbeta * dt)
        t = tn
        u = np.random.random() * R
        sg = 0.0; sz = 0.0; mo = False; absorb = False
        if u < R0:
            # background market order: deleveraging override, metaorder child, or noise
            if np.random.random() < dprob[s]:
                sg = float(dside[s]); sz = 1.3 * np.exp(mu_s + ssig * np.random.standard_normal())
            else:
                if np.random.random() < w_meta:
                    j = np.random.randint(n_meta)
                    sg = msign[j]
                    mrem[j] -= 1
                    if mrem[j] <= 0:
                        msign[j] = 1.0 if np.random.random() < 0.5 else -1.0
                        mrem[j] = _meta_len(lmin, palpha)
                else:
                    pb = 1.0 / (1.0 + np.exp(-bkap * z))
                    sg = 1.0 if np.random.random() < pb else -1.0
                sz = np.exp(mu_s + ssig * np.random.standard_normal())
            mo = True
            fimp += eta * sg * sz
        elif u < R0 + R1:
            # catch-up / arbitrage: sweep toward fair value
            frac = 0.3 + 0.5 * np.random.random()
            if g > 0:
                tgt = int(np.floor(A + frac * (f - A)))
                if tgt > A:
                    A, n = _sweep_buy(tgt, t, A, qa, q0, K, ot, op, oq, os_, n, maxn)
                else:
                    sg = 1.0; sz = np.exp(mu_s + ssig * np.random.standard_normal()); mo = True
            else:
                tgt = int(np.ceil(B + frac * (f - B)))
                if tgt < B:
                    B, n = _sweep_sell(tgt, t, B, qb, q0, K, ot, op, oq, os_, n, maxn)
                else:
                    sg = -1.0; sz = np.exp(mu_s + ssig * np.random.standard_normal()); mo = True
        elif u < R0 + R1 + R2:
            qb[0] += np.exp(mu_s + ssig * np.random.standard_normal())
        elif u < R0 + R1 + R2 + R3:
            qa[0] += np.exp(mu_s + ssig * np.random.standard_normal())
        elif u < R0 + R1 + R2 + R3 + R4:
            qb[0] -= min(qb[0], np.exp(mu_s + ssig * np.random.standard_normal()))
            if ps > 0 and qb[0] < 0.5 * q0:
                qb[0] = q0  # passive buyer keeps the bid
            while qb[0] <= EPS:
                for i in range(K - 1):
                    qb[i] = qb[i + 1]
                qb[K - 1] = _newdepth(q0)
                B -= 1
        elif u < R0 + R1 + R2 + R3 + R4 + R5:
            qa[0] -= min(qa[0], np.exp(mu_s + ssig * np.random.standard_normal()))
            if ps < 0 and qa[0] < 0.5 * q0:
                qa[0] = q0
            while qa[0] <= EPS:
                for i in range(K - 1):
                    qa[i] = qa[i + 1]
                qa[K - 1] = _newdepth(q0)
                A += 1
        elif u < R0 + R1 + R2 + R3 + R4 + R5 + R6:
            qb[1 + np.random.randint(K - 1)] += np.exp(mu_s + ssig * np.random.standard_normal())
        elif u < R0 + R1 + R2 + R3 + R4 + R5 + R6 + R7:
            qa[1 + np.random.randint(K - 1)] += np.exp(mu_s + ssig * np.random.standard_normal())
        elif u < R0 + R1 + R2 + R3 + R4 + R5 + R6 + R7 + R8:
            _cancel_deep(qb, sdb, mu_s, ssig, K)
        elif u < R0 + R1 + R2 + R3 + R4 + R5 + R6 + R7 + R8 + R9:
            _cancel_deep(qa, sda, mu_s, ssig, K)
        elif u < R0 + R1 + R2 + R3 + R4 + R5 + R6 + R7 + R8 + R9 + R10:
            pr = int(np.floor(f)) - np.random.randint(2)
            if pr > A - 1:
                pr = A - 1
            if pr < B + 1:
                pr = B + 1
            _insert(qb, pr - B, np.exp(mu_s + ssig * np.random.standard_normal()) + (q0 if ps > 0 else 0.0), K)
            B = pr
        elif u < R0 + R1 + R2 + R3 + R4 + R5 + R6 + R7 + R8 + R9 + R10 + R11:
            pr = int(np.ceil(f)) + np.random.randint(2)
            if pr < B + 1:
                pr = B + 1
            if pr > A - 1:
                pr = A - 1
            _insert(qa, A - pr, np.exp(mu_s + ssig * np.random.standard_normal()) + (q0 if ps < 0 else 0.0), K)
            A = pr
        elif u < R0 + R1 + R2 + R3 + R4 + R5 + R6 + R7 + R8 + R9 + R10 + R11 + R12:
            # counterparties of a passive parent: aggressive flow against it, absorbed
            sg = -float(ps); sz = np.exp(mu_s + ssig * np.random.standard_normal())
            mo = True; absorb = True
        else:
            # self-exciting cascade
            sg = float(cside[s]); sz = 1.5 * np.exp(mu_s + ssig * np.random.standard_normal())
            lamh += calpha
            mo = True
            fimp += eta * sg * sz
        if mo:
            if sg > 0:
                A0 = A
                A, n = _buy(sz, t, A, qa, q0, K, ot, op, oq, os_, n, maxn)
                if ps < 0 and A > A0 and A0 > B:   # passive seller re-posts the ask
                    _insert(qa, A - A0, q0, K); A = A0
                elif ps < 0 and qa[0] < q0:
                    qa[0] = q0
            else:
                B0 = B
                B, n = _sell(sz, t, B, qb, q0, K, ot, op, oq, os_, n, maxn)
                if ps > 0 and B < B0 and B0 < A:
                    _insert(qb, B0 - B, q0, K); B = B0
                elif ps > 0 and qb[0] < q0:
                    qb[0] = q0
    return ot[:n].copy(), op[:n].copy(), oq[:n].copy(), os_[:n].copy()
