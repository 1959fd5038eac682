"""The engine: per-instrument state in numpy arrays, advanced tick by tick by one numba kernel.

Replay and the Kafka service both call :meth:`Engine.process` on :class:`~signals.ticks.TickBatch`
objects; nothing else touches the state, so the same ticks give the same results bit for bit
whatever the batch boundaries. Instruments are independent: only the order of one instrument's
own ticks matters.

Examples
--------
>>> import numpy as np
>>> from signals.ticks import TickBatch
>>> eng = Engine()
>>> ts = np.arange(5) * 10**9 + 1_700_000_000 * 10**9
>>> res = eng.process(TickBatch.from_columns(["X"] * 5, ts, [100.0, 100.1, 100.0, 99.9, 100.0], [1.0] * 5))
>>> res.transitions, eng.status("X")["regime"]
([], 'quiet')
"""
from __future__ import annotations

import hashlib
import struct
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable

import numpy as np

from . import kernels as K
from .calendar import hour_and_day, in_session, local_clock
from .config import Calendar, EngineConfig
from .errors import StateError
from .ticks import REASON_CODE, TickBatch, validate

STAT_NAMES = K.STAT_NAMES
EVIDENCE_NAMES = K.EVIDENCE_NAMES      # an alert's evidence: STAT_NAMES, the move against normal volatility, the activity CUSUM
REGIMES = ("quiet", "steady_flow", "burst", "deleveraging")
KINDS = REGIMES[1:]
EVENTS = {K.EV_ENTER: "enter", K.EV_EXIT: "exit", K.EV_RESUME: "resume"}
_NS = 1_000_000_000
_EV_CAP = 4096
_SM_CAP = 65536
_SNAP_MAGIC = b"TWS"
_SNAP_HEAD = struct.Struct("<3sBHHI")


def warm_up() -> None:
    """Load (or compile, the first time on a machine) the kernel, so no real batch pays for it."""
    Engine().process(TickBatch.from_columns(["warm-up"], [0], [1.0], [0.0]))


def iso(ts_ns: int) -> str:
    """ISO-8601 UTC with millisecond precision."""
    dt = datetime.fromtimestamp(ts_ns // _NS, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{(ts_ns % _NS) // 1_000_000:03d}Z"


def side_name(direction: int, invert: bool) -> str:
    """Price direction (+1 up) to the flow side: up is buying, unless the price is a yield."""
    up = direction > 0
    return ("sell" if up else "buy") if invert else ("buy" if up else "sell")


@dataclass(frozen=True, slots=True)
class Transition:
    """A regime change of one instrument. An *alert* is a transition with ``event == "enter"``."""

    id: str
    event: str
    instrument: str
    kind: str
    side: str
    ts: int
    onset_ts: int
    score: float
    evidence: dict

    def to_dict(self) -> dict:
        return {"id": self.id, "event": self.event, "instrument": self.instrument, "kind": self.kind,
                "side": self.side, "ts": self.ts, "onset_ts": self.onset_ts, "time": iso(self.ts),
                "onset_time": iso(self.onset_ts), "score": self.score, "evidence": self.evidence}


def alert_id(instrument: str, kind: str, side: str, ts: int) -> str:
    """Stable id: the same tick stream gives the same ids, in replay and after any restart."""
    return hashlib.sha1(f"{instrument}|{kind}|{side}|{ts}".encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Samples:
    """Statistics sampled at bar closes, at most once per ``sample_every_seconds`` per instrument."""

    instrument: np.ndarray
    ts: np.ndarray
    stats: np.ndarray
    regime: np.ndarray
    side: np.ndarray


@dataclass(slots=True)
class BatchResult:
    transitions: list[Transition]
    reason: np.ndarray
    samples: Samples | None = None

    @property
    def alerts(self) -> list[Transition]:
        return [t for t in self.transitions if t.event == "enter"]


@dataclass(frozen=True, slots=True)
class EngineView:
    """Copies of the exported state; index = instrument id. ``side`` is the flow side (+1 buy, -1 sell)."""

    names: tuple[str, ...]
    regime: np.ndarray
    side: np.ndarray
    onset_ts: np.ndarray
    last_ts: np.ndarray
    stats: np.ndarray
    jumps_total: np.ndarray
    alerts_total: np.ndarray
    last_alert_ts: np.ndarray


def _params(cfg: EngineConfig) -> tuple[np.ndarray, np.ndarray]:
    th = cfg.thresholds
    P = np.zeros(K.NP)
    P[K.P_BAR_S] = cfg.bar_seconds
    P[K.P_MAX_GAP_S] = cfg.max_gap_seconds
    P[K.P_HBASE] = cfg.baseline_seconds
    P[K.P_LAM_DAY] = cfg.seasonal_day_decay
    P[K.P_KAPPA_S] = 1800.0
    P[K.P_CLIP] = 25.0
    P[K.P_ZSTAR] = K.lee_mykland_threshold(th.jump_alpha, th.jump_n)
    P[K.P_WARM_S] = th.warmup_seconds
    P[K.P_WARM_SLOW_S] = th.steady_warmup_seconds
    # CUSUM reference drifts: half the drift rate (per sqrt-second, in sigma units) that the
    # entry t-statistic implies at its horizon (t = mu/sigma * sqrt(2h)).
    P[K.P_CU_SLOW] = th.steady_tstat / np.sqrt(2 * 3600.0) / 2
    P[K.P_CU_FAST] = th.delev_tstat / np.sqrt(2 * 900.0) / 2
    P[K.P_ZSTAR_B] = K.lee_mykland_threshold(th.jump_alpha, th.burst_jump_n)
    P[K.P_B_ACT], P[K.P_B_VR] = th.burst_activity_ratio, th.burst_vol_ratio
    P[K.P_D_T], P[K.P_D_VR], P[K.P_D_Z] = th.delev_tstat, th.delev_vol_ratio, th.delev_flow_z
    P[K.P_S_T], P[K.P_S_TSLOW], P[K.P_S_VRMAX] = th.steady_tstat, th.steady_tstat_slow, th.steady_vol_ratio_max
    P[K.P_S_Z], P[K.P_S_FP], P[K.P_EXITF] = th.steady_flow_z, th.steady_fingerprint_tstat, th.exit_fraction
    P[K.P_VCLOCK_S] = 900.0
    P[K.P_JUMP_WINDOW_S] = th.burst_jump_window_seconds
    P[K.P_STEADY_QUIET_S] = th.steady_jump_quiet_seconds
    P[K.P_S_DQ] = th.steady_after_deleveraging_seconds
    P[K.P_B_Z] = th.burst_flow_z
    P[K.P_D_ACT] = th.delev_activity_ratio
    P[K.P_D_AVR] = th.delev_activity_vol_ratio
    P[K.P_D_JQ] = th.delev_jump_quiet_seconds
    P[K.P_D_BS] = th.delev_burst_seconds
    P[K.P_D_ZV] = th.delev_flow_z_volume
    P[K.P_D_MT], P[K.P_D_MZ] = th.delev_move_tstat, th.delev_move_flow_z
    P[K.P_D_VM] = th.delev_violent_move
    P[K.P_D_TS] = th.delev_tstat_strong
    P[K.P_B_ZTR] = th.burst_flow_z_tick_rule
    P[K.P_S_MOVE] = th.steady_move_tstat_max
    P[K.P_S_HVRMAX] = th.steady_hac_vol_ratio_max
    P[K.P_S_TS] = th.steady_tstat_strong
    P[K.P_D_VT], P[K.P_D_VZ] = th.delev_violent_tstat, th.delev_violent_flow_z
    P[K.P_D_FZ], P[K.P_D_FT], P[K.P_D_FM] = th.delev_strong_flow_z, th.delev_strong_flow_tstat, th.delev_strong_flow_move
    P[K.P_B_JZTR] = th.burst_jump_z_tick_rule
    P[K.P_B_HOLD] = th.burst_jump_hold
    P[K.P_B_HVR] = th.burst_hac_vol_ratio
    P[K.P_B_UJZ] = th.burst_unseen_jump_z
    P[K.P_D_EZ] = th.delev_enter_flow_z
    P[K.P_D_MIN] = th.delev_min_ticks
    P[K.P_B_MIN] = th.burst_min_ticks
    P[K.P_B_CUH], P[K.P_B_CUK] = th.burst_activity_cusum, th.burst_activity_cusum_ratio
    P[K.P_TRUNC] = 4.0
    P[K.P_B_T] = th.burst_drift_tstat
    P[K.P_B_TS], P[K.P_B_ZS] = th.burst_drift_tstat_strong, th.burst_flow_z_strong
    P[K.P_JSD] = th.jump_minute_sd
    P[K.P_SURGE] = 2.0
    P[K.P_S_TFLOW], P[K.P_S_ZSTRONG] = th.steady_tstat_flow, th.steady_flow_z_strong
    IP = np.zeros(K.NIP, np.int64)
    IP[K.IP_BAR_NS] = int(round(cfg.bar_seconds * _NS))
    IP[K.IP_TOL_NS] = int(round(cfg.out_of_order_tolerance_seconds * _NS))
    for k, (e, x, c) in enumerate([
        (th.steady_enter_seconds, th.steady_exit_seconds, th.steady_cooldown_seconds),
        (th.burst_enter_seconds, th.burst_exit_seconds, th.burst_cooldown_seconds),
        (th.delev_enter_seconds, th.delev_exit_seconds, th.delev_cooldown_seconds),
    ]):
        IP[K.IP_ENTER + k] = int(e * _NS)
        IP[K.IP_EXIT + k] = int(x * _NS)
        IP[K.IP_COOL + k] = int(c * _NS)
    return P, IP


class Engine:
    """Regime engine over any number of instruments; the registry grows as instruments appear.

    Parameters
    ----------
    config : EngineConfig, optional
        Frozen configuration; the defaults are the calibrated ones (docs/calibration.md).
    """

    def __init__(self, config: EngineConfig | None = None):
        self.config = config or EngineConfig()
        self._P, self._IP = _params(self.config)
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._F, self._I = K.new_rows(16)
        self._invert = np.zeros(16, bool)
        self._cal = np.zeros(16, np.int32)
        self._calendars: list[Calendar] = []
        self._next_sample = np.zeros(16, np.int64)
        self._lock = threading.RLock()
        self._ev = self._alloc_events()
        self._sm = None

    # ---- registry --------------------------------------------------------------------
    @property
    def instruments(self) -> tuple[str, ...]:
        return tuple(self._names)

    def _register(self, name: str) -> int:
        i = self._index.get(name)
        if i is not None:
            return i
        i = len(self._names)
        if i == self._F.shape[0]:
            grow = max(16, i)
            F, I = K.new_rows(grow)
            self._F = np.concatenate([self._F, F])
            self._I = np.concatenate([self._I, I])
            self._invert = np.concatenate([self._invert, np.zeros(grow, bool)])
            self._cal = np.concatenate([self._cal, np.zeros(grow, np.int32)])
            self._next_sample = np.concatenate([self._next_sample, np.zeros(grow, np.int64)])
        ic = self.config.for_instrument(name)
        self._invert[i] = ic.invert
        if ic.calendar not in self._calendars:
            self._calendars.append(ic.calendar)
        self._cal[i] = self._calendars.index(ic.calendar)
        self._names.append(name)
        self._index[name] = i
        return i

    # ---- processing ------------------------------------------------------------------
    @staticmethod
    def _alloc_events():
        return (np.zeros(_EV_CAP, np.int64), np.zeros(_EV_CAP, np.int64), np.zeros(_EV_CAP, np.int64),
                np.zeros(_EV_CAP, np.int64), np.zeros(_EV_CAP, np.int64), np.zeros(_EV_CAP, np.int64),
                np.zeros(_EV_CAP, np.int64), np.zeros(_EV_CAP), np.zeros((_EV_CAP, len(K.EVIDENCE_NAMES))))

    def _clock(self, ids: np.ndarray, ts: np.ndarray, cals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-tick seasonal bucket (local hour), local day number and in-session flag.

        ``cals`` lists the calendars of the instruments in ``ids``.
        """
        n = len(ts)
        if len(cals) == 1:                          # the usual case: one calendar for the whole batch
            cal = self._calendars[int(cals[0])]
            if cal.is_24h and len(cal.days) == 7:
                return (*hour_and_day(ts, cal.tz), np.ones(n, bool))
        bucket = np.empty(n, np.int64)
        day = np.empty(n, np.int64)
        ok = np.ones(n, bool)
        per_tick = self._cal[ids] if len(cals) > 1 else None
        for c in cals.tolist():
            cal = self._calendars[c]
            sel = slice(None) if per_tick is None else per_tick == c
            minute, d, wd = local_clock(ts[sel], cal.tz)
            bucket[sel] = minute // 60
            day[sel] = d
            if not (cal.is_24h and len(cal.days) == 7):
                ok[sel] = in_session(cal, minute, wd)
        return bucket, day, ok

    def process(self, batch: TickBatch, *, sample_every_seconds: float | None = None) -> BatchResult:
        """Advance the state over ``batch`` (rows in arrival order).

        Returns the regime transitions the batch caused and a reject reason per input row
        (0 = accepted; see :data:`signals.ticks.REASONS`).
        """
        good, reason = validate(batch)
        with self._lock:
            codes = np.zeros(len(good.instruments), np.int64)
            used = np.flatnonzero(np.bincount(good.code, minlength=len(good.instruments)))
            for c in used.tolist():                 # only instruments with an accepted row
                codes[c] = self._register(good.instruments[c])
            ids = codes[good.code] if len(good) else np.zeros(0, np.int64)
            bucket, day, ok = self._clock(ids, good.ts, np.unique(self._cal[codes[used]]))
            rows = np.flatnonzero(reason == 0)
            if not ok.all():
                reason[rows[~ok]] = REASON_CODE["outside_session"]
                rows = rows[ok]
                ids, bucket, day = ids[ok], bucket[ok], day[ok]
                good = good.select(ok)
            kreason = np.zeros(len(good), np.int8)
            sample_ns = int(sample_every_seconds * _NS) if sample_every_seconds else 0
            self._IP[K.IP_SAMPLE_NS] = sample_ns
            if sample_ns and self._sm is None:
                self._sm = (np.zeros(_SM_CAP, np.int64), np.zeros(_SM_CAP, np.int64), np.zeros((_SM_CAP, K.NSTAT)),
                            np.zeros(_SM_CAP, np.int8), np.zeros(_SM_CAP, np.int8))
            sm = self._sm if sample_ns else (np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros((1, K.NSTAT)),
                                             np.zeros(1, np.int8), np.zeros(1, np.int8))
            transitions: list[Transition] = []
            samples: list[tuple] = []
            start = 0
            n = len(good)
            while True:
                start, ne, ns = K.run(self._F, self._I, ids, good.ts, good.price, good.size, good.side, bucket, day,
                                      start, self._P, self._IP, self._next_sample, kreason, *self._ev, *sm)
                if ne:
                    transitions.extend(self._decode_events(ne))
                if ns:
                    samples.append(tuple(a[:ns].copy() for a in sm))
                if start >= n:
                    break
            reason[rows] = kreason
        return BatchResult(transitions, reason, self._samples(samples) if sample_ns else None)

    def _decode_events(self, ne: int) -> list[Transition]:
        ev_ts, ev_iid, ev_code, ev_kind, ev_side, ev_onset, ev_alert, ev_score, ev_stats = self._ev
        out = []
        for e in range(ne):
            i = int(ev_iid[e])
            name = self._names[i]
            kind = REGIMES[ev_kind[e]]
            side = side_name(int(ev_side[e]), bool(self._invert[i]))
            alert_ts = int(ev_alert[e])
            out.append(Transition(
                id=alert_id(name, kind, side, alert_ts), event=EVENTS[int(ev_code[e])], instrument=name,
                kind=kind, side=side, ts=int(ev_ts[e]), onset_ts=int(ev_onset[e]),
                score=round(float(ev_score[e]), 4),
                evidence={k: float(f"{v:.6g}") for k, v in zip(EVIDENCE_NAMES, ev_stats[e].tolist())}))
        return out

    def _samples(self, parts: list[tuple]) -> Samples:
        if not parts:
            return Samples(np.zeros(0, object), np.zeros(0, np.int64), np.zeros((0, K.NSTAT)),
                           np.zeros(0, np.int8), np.zeros(0, np.int8))
        iid, ts, st, rg, sd = (np.concatenate(x) for x in zip(*parts))
        sd = np.where(self._invert[iid], -sd, sd).astype(np.int8)
        return Samples(np.asarray(self._names, dtype=object)[iid], ts, st, rg, sd)

    # ---- checkpoints -----------------------------------------------------------------
    def snapshot(self, instruments: Iterable[str]) -> bytes:
        """State of the named instruments as bytes (unknown names are skipped)."""
        with self._lock:
            ids = [self._index[n] for n in instruments if n in self._index]
            names = b"".join(struct.pack("<H", len(b)) + b for b in (self._names[i].encode() for i in ids))
            head = _SNAP_HEAD.pack(_SNAP_MAGIC, K.LAYOUT_VERSION, K.NF, K.NI, len(ids))
            return head + names + self._F[ids].tobytes() + self._I[ids].tobytes()

    def restore(self, blob: bytes) -> list[str]:
        """Load instruments from :meth:`snapshot` bytes, replacing their current state."""
        if len(blob) < _SNAP_HEAD.size:
            raise StateError(f"snapshot is {len(blob)} bytes, shorter than its header")
        magic, ver, nf, ni, count = _SNAP_HEAD.unpack_from(blob)
        if magic != _SNAP_MAGIC or ver != K.LAYOUT_VERSION or nf != K.NF or ni != K.NI:
            raise StateError(f"snapshot layout {magic!r} v{ver} ({nf}x{ni}) does not match this release "
                             f"(v{K.LAYOUT_VERSION}, {K.NF}x{K.NI})")
        pos = _SNAP_HEAD.size
        names = []
        try:
            for _ in range(count):
                (ln,) = struct.unpack_from("<H", blob, pos)
                names.append(blob[pos + 2:pos + 2 + ln].decode())
                pos += 2 + ln
            F = np.frombuffer(blob, np.float64, count * K.NF, pos).reshape(count, K.NF)
            I = np.frombuffer(blob, np.int64, count * K.NI, pos + F.nbytes).reshape(count, K.NI)
        except (struct.error, ValueError, UnicodeDecodeError) as e:
            raise StateError(f"snapshot is truncated or corrupt: {e}") from None
        if pos + F.nbytes + I.nbytes != len(blob):
            raise StateError("snapshot has trailing bytes: corrupt")
        with self._lock:
            for j, name in enumerate(names):
                i = self._register(name)
                self._F[i] = F[j]
                self._I[i] = I[j]
        return names

    def drop(self, instruments: Iterable[str]) -> None:
        """Forget the state of these instruments (e.g. their partition was revoked)."""
        with self._lock:
            ids = [self._index[n] for n in instruments if n in self._index]
            if ids:
                F, I = K.new_rows(len(ids))
                self._F[ids] = F
                self._I[ids] = I

    # ---- reading ---------------------------------------------------------------------
    def view(self) -> EngineView:
        with self._lock:
            n = len(self._names)
            F, I = self._F[:n], self._I[:n]
            inv = self._invert[:n]
            alerts = I[:, K.I_ALERTS:K.I_ALERTS + 6].reshape(n, 3, 2).copy()
            alerts[inv] = alerts[inv][:, :, ::-1]
            side = I[:, K.I_SIDE].astype(np.int8)
            return EngineView(
                names=tuple(self._names), regime=I[:, K.I_REGIME].astype(np.int8),
                side=np.where(inv, -side, side).astype(np.int8), onset_ts=I[:, K.I_ONSET].copy(),
                last_ts=I[:, K.I_LAST_TS].copy(), stats=F[:, K.F_STATS:K.F_STATS + K.NSTAT].copy(),
                jumps_total=I[:, K.I_JUMPS].copy(), alerts_total=alerts, last_alert_ts=I[:, K.I_LAST_ALERT_TS].copy())

    def status(self, instrument: str) -> dict:
        """One instrument's current regime and statistics, JSON-ready."""
        with self._lock:
            if instrument not in self._index:
                raise KeyError(f"unknown instrument {instrument!r}")
            i = self._index[instrument]
            F, I = self._F[i], self._I[i]
            regime = REGIMES[int(I[K.I_REGIME])]
            out = {"instrument": instrument, "regime": regime, "side": None, "since": None, "score": None,
                   "last_time": iso(int(I[K.I_LAST_TS])) if I[K.I_TICKS] else None, "ticks": int(I[K.I_TICKS]),
                   "stats": dict(zip(STAT_NAMES, F[K.F_STATS:K.F_STATS + K.NSTAT].tolist()))}
            if regime != "quiet":
                out.update(side=side_name(int(I[K.I_SIDE]), bool(self._invert[i])),
                           since=iso(int(I[K.I_ONSET])), score=round(float(F[K.F_SCORE]), 4))
            return out

    def state_rows(self, instrument: str) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the raw state rows (float, int) of one instrument; for tests and debugging."""
        i = self._index[instrument]
        return self._F[i].copy(), self._I[i].copy()
