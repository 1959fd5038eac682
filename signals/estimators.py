"""Small pure-Python estimators, one statistical idea each: the slow, obviously-correct reference.

Every class has river's shape: ``update(...)`` feeds one observation and returns ``self``,
``get()`` reads the current value, and ``snapshot()`` / ``restore()`` move the state as a plain
dict (floats, ints, lists, dicts). The arithmetic is exactly that of the numba kernel
(:mod:`signals.kernels`): the same formulas, the same order of decays, the same clipping and
flooring. :class:`signals.reference.ReferenceEngine` composes them per instrument, and the tests
hold the kernel to it.

Conventions: time inside the estimators is *trading time* in seconds. ``dt`` is the time
between the starts of two consecutive bars, or one bar width after a session break (a closed
market does not age the statistics). Event times are int nanoseconds since the epoch.
Exponential weights are ``a = exp(-dt / horizon)``, so irregular bars are weighted by time.
"""
from __future__ import annotations

import copy
import math
from typing import NamedTuple

from .config import Thresholds

HALF_PI = math.pi / 2.0
NONE_TS = -(2 ** 62)                       # "no such time" (never a real event time)
HORIZONS = (60.0, 900.0, 3600.0, 14400.0)  # seconds, for the drift and flow statistics
N_BUCKETS = 24                             # time-of-day buckets: local hours
ROUNDING = 1e-12                           # a smaller log return between bar means is the rounding of a sum of equal prices


class Estimator:
    """Base class: the attributes named in ``_state`` are the whole state of an estimator."""

    _state: tuple[str, ...] = ()

    def snapshot(self) -> dict:
        """The state as a plain dict (a deep copy)."""
        return {k: copy.deepcopy(getattr(self, k)) for k in self._state}

    def restore(self, state: dict):
        """Replace the state with a :meth:`snapshot` dict; returns ``self``."""
        for k in self._state:
            setattr(self, k, copy.deepcopy(state[k]))
        return self


class TickRule(Estimator):
    """Sign of a trade: the aggressor side when the feed has it, else the tick rule.

    A trade above the previous trade price is a buy (+1), below it a sell (-1); at the same
    price the previous sign is kept (the zero-tick rule). The first trade of an instrument
    without a side is unsigned (0).

    Examples
    --------
    >>> tr = TickRule()
    >>> [tr.update(p).get() for p in (100.0, 100.5, 100.5, 100.2)]
    [0.0, 1.0, 1.0, -1.0]
    >>> tr.update(100.1, side=1).get()      # a known aggressor side wins
    1.0

    References
    ----------
    Lee, C. M. C. and Ready, M. J. (1991). Inferring trade direction from intraday data.
    *The Journal of Finance*, 46(2), 733-746.
    """

    _state = ("last_price", "sign", "seen", "sided")

    def __init__(self):
        self.last_price = 0.0
        self.sign = 0.0
        self.seen = False
        self.sided = 0              # trades that came with an aggressor side

    def update(self, price: float, side: int = 0) -> "TickRule":
        s = float(side)
        if s != 0.0:
            self.sided += 1
        else:
            if self.seen and price > self.last_price:
                s = 1.0
            elif self.seen and price < self.last_price:
                s = -1.0
            else:
                s = self.sign
        self.sign = s
        self.last_price = price
        self.seen = True
        return self

    def get(self) -> float:
        return self.sign

    def has_sides(self, trades: int) -> bool:
        """Did at least half of ``trades`` (all the instrument's trades so far) come with a side?"""
        return 2 * self.sided >= trades


class Bar(NamedTuple):
    """A closed bar, with its returns against the previous bar."""

    start: int            # ns; multiple of the bar width
    prev_start: int       # ns; start of the previous bar (its own start for the first bar)
    ticks: float          # number of ticks averaged
    mean: float           # pre-averaged price
    close: float          # last price
    signed_volume: float  # sum of sign * size
    volume: float         # sum of size
    bucket: int           # time-of-day bucket (of the bar's last tick)
    first: bool           # the instrument's first bar: no return yet, nothing else is updated
    new_day: bool         # the first bar of a new local trading day
    brk: bool             # a session break (silence longer than max_gap_s) precedes the bar
    dt: float             # trading time since the previous bar, s (one bar width after a break)
    r: float              # log return between bar means (0 after a break)
    rc: float             # log return between bar closes (0 after a break)


class PreAveragedBars(Estimator):
    """Pre-averaged bars on a fixed clock: the mean price per bar and returns between bar means.

    Tick-to-tick returns are dominated by microstructure noise (bid-ask bounce, discreteness).
    Averaging the prices inside a bar and taking log returns between consecutive bar means
    divides the noise variance by the number of ticks averaged; the price is sampled where the
    market trades, so quiet periods cost nothing. The returns this produces are correlated at
    lag 1, which :class:`LagOneHAC` accounts for.

    Bars start at multiples of the bar width since the epoch (a tick exactly on a multiple opens
    the bar that starts there). A bar is closed by the first tick of a later bar; :meth:`get`
    then returns it as a :class:`Bar`, else ``None``. Between bars more than ``max_gap_s``
    apart (a session break) the return is 0 and ``dt`` is one bar width.

    Parameters
    ----------
    bar_seconds : float
        Bar width (``bar_seconds`` of the engine config).
    max_gap_s : float
        A longer silence between bar starts is a session break.

    Examples
    --------
    >>> bars = PreAveragedBars(bar_seconds=1.0, max_gap_s=900.0)
    >>> for ts, p in [(0, 100.0), (5 * 10**8, 102.0), (10**9, 103.0), (2 * 10**9, 99.0)]:
    ...     bar = bars.update(ts, p, 0.0, 1.0, bucket=0, day=0).get()
    >>> bar.start, bar.mean, bar.dt, round(bar.r, 6)          # log(103 / mean(100, 102))
    (1000000000, 103.0, 1.0, 0.019608)

    References
    ----------
    Jacod, J., Li, Y., Mykland, P. A., Podolskij, M. and Vetter, M. (2009). Microstructure noise
    in the continuous case: the pre-averaging approach. *Stochastic Processes and their
    Applications*, 119(7), 2249-2276.

    Podolskij, M. and Vetter, M. (2009). Estimation of volatility functionals in the
    simultaneous presence of microstructure noise and jumps. *Bernoulli*, 15(3), 634-658.
    """

    _state = ("sum_price", "ticks", "last_price", "signed_volume", "volume", "start", "bucket", "day",
              "prev_mean", "prev_close", "prev_start", "current_day")

    def __init__(self, bar_seconds: float, max_gap_s: float):
        self.bar_seconds = bar_seconds
        self.bar_ns = int(round(bar_seconds * 1e9))
        self.max_gap_s = max_gap_s
        self.sum_price = 0.0        # the open bar
        self.ticks = 0.0
        self.last_price = 0.0
        self.signed_volume = 0.0
        self.volume = 0.0
        self.start = 0
        self.bucket = 0
        self.day = 0
        self.prev_mean = 0.0        # the previous closed bar
        self.prev_close = 0.0
        self.prev_start = NONE_TS   # no bar closed yet
        self.current_day = 0
        self.closed: Bar | None = None

    def update(self, ts: int, price: float, signed_size: float, size: float, bucket: int, day: int
               ) -> "PreAveragedBars":
        """Add one tick (``ts`` never earlier than the previous tick's)."""
        start = ts - ts % self.bar_ns
        self.closed = None
        if self.ticks > 0.0 and start != self.start:
            self.closed = self._close()
            self.sum_price = 0.0
            self.ticks = 0.0
            self.signed_volume = 0.0
            self.volume = 0.0
        self.start = start
        self.sum_price += price
        self.ticks += 1.0
        self.last_price = price
        self.signed_volume += signed_size
        self.volume += size
        self.bucket = bucket
        self.day = day
        return self

    def _close(self) -> Bar:
        mean = self.sum_price / self.ticks
        close = self.last_price
        if self.prev_start == NONE_TS:
            self.prev_mean, self.prev_close, self.prev_start = mean, close, self.start
            self.current_day = self.day
            return Bar(self.start, self.start, self.ticks, mean, close, self.signed_volume, self.volume,
                       self.bucket, True, False, False, 0.0, 0.0, 0.0)
        new_day = self.day != self.current_day
        self.current_day = self.day
        gap = (self.start - self.prev_start) * 1e-9
        brk = gap > self.max_gap_s
        dt = self.bar_seconds if brk else gap
        r = 0.0 if brk else math.log(mean / self.prev_mean)
        if abs(r) < ROUNDING:
            r = 0.0
        rc = 0.0 if brk else math.log(close / self.prev_close)
        prev_start = self.prev_start
        self.prev_mean, self.prev_close, self.prev_start = mean, close, self.start
        return Bar(self.start, prev_start, self.ticks, mean, close, self.signed_volume, self.volume, self.bucket,
                   False, new_day, brk, dt, r, rc)

    def get(self) -> Bar | None:
        """The bar closed by the last tick, or ``None``."""
        return self.closed


class LagOneHAC(Estimator):
    """Per-bar variance contribution with the lag-1 autocovariance: ``(r_t**2 + 2 r_t r_{t-1}) / f``.

    Summed over bars, its expectation is the variance of the summed returns when returns are
    correlated at lag 1 only, as pre-averaged returns are (a Newey-West long-run variance with
    one lag at full weight, exact for MA(1)). A single contribution can be negative. ``f`` is the
    seasonal volatility factor of the bar (:class:`SeasonalProfile`).

    Examples
    --------
    >>> hac = LagOneHAC()
    >>> hac.update(0.01).get(), hac.update(-0.01).get()      # bounce: negative contribution
    (0.0001, -0.0001)

    References
    ----------
    Newey, W. K. and West, K. D. (1987). A simple, positive semi-definite, heteroskedasticity and
    autocorrelation consistent covariance matrix. *Econometrica*, 55(3), 703-708.
    """

    _state = ("prev_r", "value")

    def __init__(self):
        self.prev_r = 0.0
        self.value = 0.0

    def update(self, r: float, f: float = 1.0) -> "LagOneHAC":
        self.value = (r * r + 2.0 * r * self.prev_r) / f
        self.prev_r = r
        return self

    def get(self) -> float:
        return self.value


class SeasonalProfile(Estimator):
    """Intraday seasonality: volatility and tick rate per time-of-day bucket, decayed day by day.

    Per bucket it accumulates the variance contributions, ticks, volume and trading seconds;
    :meth:`new_day` multiplies everything by ``day_decay``. :meth:`get` returns, for a bucket,
    the volatility factor ``f_b`` (the bucket's variance rate over the all-day rate, clipped
    to [0.05, 20]) and the tick rate ``lambda_b`` per second, both shrunk toward the all-day
    mean with ``kappa`` seconds of pseudo-observations. Until there is a positive all-day
    variance the factors are ``(1.0, 0.0)``.

    The current day feeds its own bucket, so a volatility or activity surge would partly
    explain itself within the hour. :meth:`update` therefore takes the local (15-min) level
    over the usual one, ``var_ratio`` and ``tick_ratio``; above ``surge_cap`` a bar's variance
    or ticks are scaled by ``surge_cap / ratio``, so a surge adds at most ``surge_cap`` times
    the usual level (a winsorised, M-estimator-like update; normal hours are unchanged).

    Parameters
    ----------
    kappa : float
        Pseudo-seconds of the all-day mean added to every bucket.
    day_decay : float
        Weight of yesterday relative to today.
    surge_cap : float
        Largest multiple of the usual level that a surge feeds into the profile.

    Examples
    --------
    >>> prof = SeasonalProfile(kappa=1800.0, day_decay=0.8, surge_cap=2.0)
    >>> _ = prof.update(9, 4e-8, 20.0, 100.0, 3600.0).update(3, 1e-8, 2.0, 10.0, 3600.0)
    >>> f9, rate9 = prof.get(9)
    >>> round(f9, 3), round(rate9, 4)                          # busy 09:00 bucket
    (1.4, 0.0047)
    >>> _ = prof.update(3, 9e-8, 18.0, 10.0, 3600.0, var_ratio=9.0, tick_ratio=9.0)
    >>> prof.var[3], prof.ticks[3]                             # a 9x surge feeds 2x
    (3e-08, 6.0)

    References
    ----------
    Andersen, T. G. and Bollerslev, T. (1997). Intraday periodicity and volatility persistence
    in financial markets. *Journal of Empirical Finance*, 4(2-3), 115-158.
    """

    _state = ("var", "ticks", "volume", "seconds")

    def __init__(self, kappa: float, day_decay: float, surge_cap: float):
        self.kappa = kappa
        self.day_decay = day_decay
        self.surge_cap = surge_cap
        self.var = [0.0] * N_BUCKETS
        self.ticks = [0.0] * N_BUCKETS
        self.volume = [0.0] * N_BUCKETS
        self.seconds = [0.0] * N_BUCKETS

    def new_day(self) -> "SeasonalProfile":
        lam = self.day_decay
        for k in range(N_BUCKETS):
            self.var[k] *= lam
            self.ticks[k] *= lam
            self.volume[k] *= lam
            self.seconds[k] *= lam
        return self

    def update(self, bucket: int, var: float, ticks: float, volume: float, seconds: float,
               var_ratio: float = 1.0, tick_ratio: float = 1.0) -> "SeasonalProfile":
        """One bar; ``var_ratio``/``tick_ratio``: local 15-min level over the usual one (0: unknown)."""
        wv = min(1.0, self.surge_cap / var_ratio) if var_ratio > 0.0 else 1.0
        wn = min(1.0, self.surge_cap / tick_ratio) if tick_ratio > 0.0 else 1.0
        self.var[bucket] += var * wv
        self.ticks[bucket] += ticks * wn
        self.volume[bucket] += volume
        self.seconds[bucket] += seconds
        return self

    # the all-day totals are the sums of the buckets
    @property
    def total_var(self) -> float:
        return sum(self.var)

    @property
    def total_ticks(self) -> float:
        return sum(self.ticks)

    @property
    def total_volume(self) -> float:
        return sum(self.volume)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds)

    def get(self, bucket: int) -> tuple[float, float]:
        """(volatility factor, ticks per second) of ``bucket``."""
        if not (self.total_seconds > 0.0 and self.total_var > 0.0):
            return 1.0, 0.0
        return self._factor(bucket, self.var, self.total_var), self._rate(bucket, self.ticks, self.total_ticks)

    def volume_factor(self, bucket: int) -> float:
        """The bucket's volume rate over the all-day volume rate (1.0 until both exist)."""
        if not (self.total_seconds > 0.0 and self.total_var > 0.0 and self.total_volume > 0.0):
            return 1.0
        qbar = self.total_volume / self.total_seconds
        return self._rate(bucket, self.volume, self.total_volume) / qbar

    def _rate(self, bucket: int, per_bucket: list, total: float) -> float:
        mean = total / self.total_seconds
        return (per_bucket[bucket] + self.kappa * mean) / (self.seconds[bucket] + self.kappa)

    def _factor(self, bucket: int, per_bucket: list, total: float) -> float:
        return min(max(self._rate(bucket, per_bucket, total) / (total / self.total_seconds), 0.05), 20.0)


def truncate(r: float, n_sd: float, variance: float, dt: float) -> float:
    """Clip a return at ``n_sd`` local standard deviations ``sqrt(variance * dt)`` (a jump-robust return).

    Without a variance estimate the return is left as it is.

    >>> truncate(0.01, 4.0, 1e-8, 1.0), truncate(-1e-4, 4.0, 1e-8, 1.0), truncate(0.01, 4.0, 0.0, 1.0)
    (0.0004, -0.0001, 0.01)

    References
    ----------
    Mancini, C. (2009). Non-parametric threshold estimation for models with stochastic diffusion
    coefficient and jumps. *Scandinavian Journal of Statistics*, 36(2), 270-296.
    """
    lim = n_sd * math.sqrt(variance * dt)
    return min(max(r, -lim), lim) if lim > 0.0 else r


class Baseline(Estimator):
    """Long-memory variance rates per second: the instrument's normal volatility, jump-clipped.

    Two exponentially weighted rates over ``memory`` seconds of trading time share one clock:

    * the *level* ``sum(a**k y_k) / sum(a**k dt_k)`` of squared (deseasonalised) returns
      ``y``, noise included and never negative; a ``y`` above ``clip`` times the current
      level over its ``dt`` is clipped, so one jump does not inflate the baseline for days;
    * the *long-run* rate of the lag-1 HAC contributions ``x`` (:class:`LagOneHAC`), scaled
      down like ``y`` when ``y`` is clipped, and floored at 5% of the level: with heavy
      bid-ask noise the HAC estimate can sink to zero.

    Parameters
    ----------
    memory : float
        Memory in seconds of trading time (``baseline_seconds``).
    clip : float
        Largest multiple of the level one bar may add, per second of the bar.

    Examples
    --------
    >>> base = Baseline(memory=100_000.0, clip=25.0)
    >>> for k in range(100):
    ...     _ = base.update(2e-8, 1e-8, 1.0)
    >>> round(base.get() / 1e-8, 6), round(base.long_run() / 1e-8, 6)
    (2.0, 1.0)
    >>> round(base.update(1.0, 1.0, 1.0).get() / 1e-8, 4), base.clipped     # a jump is clipped
    (2.4755, 5e-07)

    References
    ----------
    Andersen, T. G., Bollerslev, T., Diebold, F. X. and Labys, P. (2003). Modeling and forecasting
    realized volatility. *Econometrica*, 71(2), 579-625.

    Newey, W. K. and West, K. D. (1987). A simple, positive semi-definite, heteroskedasticity and
    autocorrelation consistent covariance matrix. *Econometrica*, 55(3), 703-708.
    """

    _state = ("level_num", "hac_num", "seconds")

    def __init__(self, memory: float, clip: float):
        self.memory = memory
        self.clip = clip
        self.level_num = 0.0
        self.hac_num = 0.0
        self.seconds = 0.0
        self.clipped = 0.0         # the last y after clipping (read by the seasonal profile)

    def update(self, y: float, x: float, dt: float) -> "Baseline":
        """``y`` squared return, ``x`` its HAC contribution, of a bar lasting ``dt`` seconds."""
        a = math.exp(-dt / self.memory)
        vb = self.level_num / self.seconds if self.seconds > 0.0 else 0.0
        yb = y
        if vb > 0.0 and yb > self.clip * vb * dt:
            yb = self.clip * vb * dt
        self.clipped = yb
        self.level_num = a * self.level_num + yb
        self.hac_num = a * self.hac_num + (x * (yb / y) if yb < y else x)   # a clipped jump in both
        self.seconds = a * self.seconds + dt
        return self

    def get(self) -> float:
        """The volatility level (variance per second, noise included)."""
        return self.level_num / self.seconds if self.seconds > 0.0 else 0.0

    def long_run(self) -> float:
        """The long-run (HAC) variance per second, at least 5% of the level."""
        return max(self.hac_num / self.seconds, 0.05 * self.get()) if self.seconds > 0.0 else 0.0


#: the own ratio counts a block pair's HAC content as at least this share of the baseline level
#: (a bounce-dominated block's lag-1 HAC sum can be 0 or below; the long-run rate has the same floor)
OWN_FLOOR = 0.05


class NoiseScale(Estimator):
    """How far the lag-1 HAC rate is from the variance that matters for slow drifts.

    Pre-averaging and one lag of autocovariance remove bid-ask bounce that reverses at once. On a
    coarse tick grid the noise persists longer: the price sits at one level while the efficient
    price wanders inside the tick, and a run of same-side trades holds it at the bid or the ask
    for minutes. Returns summed over an hour then vary much less than the per-second HAC rate
    implies, and every slow drift t-statistic reads too small (about half at a tick of two
    one-minute standard deviations). The other way round, a price that follows its value with a
    lag (quotes that catch up over seconds, a market that trades after another one) has returns
    that go on in the same direction, and hourly sums vary *more* than the per-second rate
    implies: every slow t-statistic reads too large, and a random walk passes for a grind. This
    estimator compares the two on the long baseline memory and gives the factor that corrects
    the slow t-statistics' variance.

    The engine keeps two. The one on 15-min blocks sees noise that lasts minutes but needs about
    12 h of trading before it is believed; until then one on 1-min blocks, believed after an
    hour, corrects the 1-h and 4-h t-statistics by its :meth:`excess` alone. A lag of seconds
    shows at once on 1-min blocks (a 5-s lag: a factor of 2.5-3 after a few hours, where an
    ordinary bounce gives 0.9-1), and correcting upwards only lowers a t-statistic.

    The slow variance comes from 15-minute blocks of (truncated, deseasonalised) returns, aligned
    on the epoch: half the squared *difference* of consecutive block sums, summed with the
    baseline's decay and divided by the baseline's seconds. Differencing removes a drift that
    lasts across blocks, so a grind that goes on for days does not inflate the variance it is
    tested against (the mean successive difference, von Neumann et al. 1941). The factor is
    ``margin * slow / hac`` where that is below 1 and ``slow / hac / margin`` where that is above
    1, else 1: it corrects only what is clearly more than estimation noise (``margin``), either
    way; it is 1 until the baseline has ``warm_seconds``.

    A rout's start or end, or a jump, would otherwise rule the sum for a day: where a drift
    starts or stops, or the price jumps, the difference of two blocks holds the move. So no pair
    counts more than ``clip`` block variances, at the long-run rate or at the slow rate where that
    is larger (a Huber-type clip: under no drift, half
    the squared difference is the block variance times a chi-square of one degree of freedom,
    above 4 in 5% of pairs and far more often at a rout's edges). Without it, one rout took the
    factor of a 10-year yield with a spread of four ticks from 0.3 to 0.75-1.7 for days (the
    second generator, ``benchmarks/independent``), and its later routs were called late or not
    at all.

    With ``own``, the estimator also keeps an *own ratio* for the 1-h and 4-h t-statistics
    (:meth:`get_slow`): each block pair's half squared difference over the pair's own HAC
    content (the bars' lag-1 HAC contributions, summed per block), both divided by the larger of
    that content and the long-run block variance, so that a pair counts about once whatever its
    volatility, and a pair counts at most ``clip`` times the ratio so far (at least 1). The ratio
    above divides clipped pairs by a long-run rate that keeps a volatile hour's HAC in full for a
    day: three hours at five times the volatility took it from 2.9-3.6 to 2.2-2.7 on a price
    that lags its value by 5 s, and on the third generator's book it read 0.7-1.5 where its own
    ratio reads 0.7-3.9 (on ours 0.7-1.05 against 0.8-1.5). Each pair against its own content
    is the variance ratio of Lo and MacKinlay (1988) on block sums, and the volatile hours
    no longer move it. It corrects downwards too, with its own margin (``own_margin``): on a
    tick grid five times the catalogue's, the 1-h t-statistic's standard deviation went from
    0.66-0.97 with the ratio's margin of 1.5 to 0.71-1.10 with 1.35.

    Parameters
    ----------
    memory : float
        Memory in seconds of trading time, the baseline's (``baseline_seconds``).
    block_ns : int
        Block width, ns.
    margin : float
        The slow rate must be below ``1 / margin`` or above ``margin`` times the HAC rate before
        anything is corrected.
    warm_seconds : float
        Baseline seconds (decayed) needed before the factor is believed.
    clip : float
        A block pair counts at most this many block variances (long-run, or slow where larger).
    own : bool
        Keep the own ratio too (:meth:`own_ratio`); :meth:`get_slow` then corrects its excess.
    own_margin : float
        With ``own``: an own ratio below ``1 / own_margin`` gives :meth:`get_slow` ``own_margin``
        times itself (default: never).

    Examples
    --------
    >>> ns = NoiseScale(memory=1e12, block_ns=900 * 10**9, margin=1.0, warm_seconds=0.0)
    >>> for k in range(1, 36001):            # 10 h of 1-s bars, 15-min block sums swinging +-0.009
    ...     _ = ns.update(1e-5 if (k // 900) % 2 else -1e-5, 1.0, k * 10**9, (k - 1) * 10**9)
    >>> slow = ns.num / 36000.0
    >>> ns.get(hac_rate=slow, seconds=36000.0), ns.get(hac_rate=4 * slow, seconds=36000.0)
    (1.0, 0.25)
    >>> ns.get(hac_rate=slow / 4, seconds=36000.0)     # a lagging price: slow sums vary 4x more
    4.0
    >>> ns.excess(hac_rate=slow / 4, seconds=36000.0), ns.excess(hac_rate=4 * slow, seconds=36000.0)
    (4.0, 1.0)
    >>> grind = NoiseScale(memory=1e12, block_ns=900 * 10**9, margin=1.0, warm_seconds=0.0)
    >>> for k in range(1, 36001):            # a steady drift: equal block sums, nothing to difference
    ...     _ = grind.update(1e-5, 1.0, k * 10**9, (k - 1) * 10**9)
    >>> round(grind.num / 36000.0 / slow, 4)  # only the first block, against nothing, counts
    0.0064

    Given the long-run rate, a block pair far beyond the noise counts ``clip`` block variances:

    >>> def pair(second_block_return):        # block sums 0, then 900 x the return
    ...     ns = NoiseScale(memory=1e12, block_ns=900 * 10**9, margin=1.0, warm_seconds=0.0, clip=4.0)
    ...     for k in range(1, 1801):
    ...         ns.update(0.0 if k < 900 else second_block_return, 1.0, k * 10**9, (k - 1) * 10**9, 1e-8)
    ...     return round(ns.num / (1e-8 * 900), 4)      # in long-run block variances
    >>> pair(3e-6), pair(1.5e-5)               # 0.405 counts as it is; 10.125 is a move
    (0.405, 4.0)

    The own ratio holds a block pair against its own HAC content (here 1e-8 a bar), whatever the
    long-run rate; a long-run rate that a volatile day took to four times that content pulls
    the ratio against it down fourfold:

    >>> def ratios(long_run):
    ...     ns = NoiseScale(memory=1e12, block_ns=900 * 10**9, margin=1.0, warm_seconds=0.0, own=True)
    ...     for k in range(1, 36001):
    ...         ns.update(1e-5 if (k // 900) % 2 else -1e-5, 1.0, k * 10**9, (k - 1) * 10**9, long_run, 36000.0, 1e-8)
    ...     return round(ns.own_ratio(), 2), round(ns.get(long_run, 36000.0), 2)
    >>> ratios(1e-8), ratios(4e-8)
    ((17.89, 17.66), (17.89, 4.42))

    A coarse grid the other way: block sums that vary a quarter of what their HAC content says.
    The slowest t-statistics take ``own_margin`` times the own ratio, the others ``margin``
    times the ratio:

    >>> ns = NoiseScale(memory=1e12, block_ns=900 * 10**9, margin=1.5, warm_seconds=0.0, own=True, own_margin=1.35)
    >>> for k in range(1, 36001):
    ...     _ = ns.update(1e-6 if (k // 900) % 2 else -1e-6, 1.0, k * 10**9, (k - 1) * 10**9, 7.2e-9, 36000.0, 7.2e-9)
    >>> round(ns.own_ratio(), 3), round(ns.get_slow(7.2e-9, 36000.0), 3), round(ns.get(7.2e-9, 36000.0), 3)
    (0.248, 0.335, 0.368)

    References
    ----------
    von Neumann, J., Kent, R. H., Bellinson, H. R. and Hart, B. I. (1941). The mean square
    successive difference. *Annals of Mathematical Statistics*, 12(2), 153-162.

    Hansen, P. R. and Lunde, A. (2006). Realized variance and market microstructure noise.
    *Journal of Business & Economic Statistics*, 24(2), 127-161.

    Lo, A. W. and MacKinlay, A. C. (1988). Stock market prices do not follow random walks:
    evidence from a simple specification test. *Review of Financial Studies*, 1(1), 41-66.
    """

    _state = ("block_sum", "prev_sum", "num", "block_hac", "prev_hac", "own_num", "own_den")

    def __init__(self, memory: float, block_ns: int, margin: float, warm_seconds: float, *,
                 clip: float = math.inf, own: bool = False, own_margin: float = math.inf):
        self.memory = memory
        self.block_ns = block_ns
        self.margin = margin
        self.own_margin = own_margin
        self.warm_seconds = warm_seconds
        self.clip = clip
        self.own = own
        self.block_sum = 0.0
        self.prev_sum = 0.0
        self.num = 0.0
        self.block_hac = 0.0
        self.prev_hac = 0.0
        self.own_num = 0.0
        self.own_den = 0.0

    def update(self, r: float, dt: float, start: int, prev_start: int, long_run: float = math.inf,
               seconds: float = 0.0, hac: float = 0.0, level: float = 0.0) -> "NoiseScale":
        """``r`` the bar's return, ``dt`` its trading time, ``start``/``prev_start`` its and the previous
        bar's start; ``long_run`` the baseline's HAC rate per second and ``seconds`` its (decayed)
        seconds: the clip's unit is that rate or the slow rate, ``num / seconds``, the larger.
        ``hac`` is the bar's lag-1 HAC contribution and ``level`` the baseline's variance rate
        (the own ratio's, with ``own``)."""
        a = math.exp(-dt / self.memory)
        add = 0.0
        add_num = 0.0
        add_den = 0.0
        block_s = self.block_ns * 1e-9
        if start // self.block_ns != prev_start // self.block_ns:       # the previous block is complete
            d = self.block_sum - self.prev_sum
            if self.own:
                pair = max(0.5 * (self.block_hac + self.prev_hac), OWN_FLOOR * level * block_s)
                scale = max(pair, long_run * block_s)
                if scale > 0.0:                        # else a flat price: nothing to compare
                    add_num = min(0.5 * d * d, self.clip * max(self.own_ratio(), 1.0) * scale) / scale
                    add_den = pair / scale
                self.prev_hac = self.block_hac
                self.block_hac = 0.0
            unit = max(long_run, self.num / seconds) if seconds > 0.0 else long_run
            add = min(0.5 * d * d, self.clip * unit * block_s)
            self.prev_sum = self.block_sum
            self.block_sum = 0.0
        self.num = a * self.num + add
        self.block_sum += r
        if self.own:
            self.own_num = a * self.own_num + add_num
            self.own_den = a * self.own_den + add_den
            self.block_hac += hac
        return self

    def own_ratio(self) -> float:
        """Each block pair's half squared difference over the pair's own HAC content (1 before any)."""
        return self.own_num / self.own_den if self.own_den > 0.0 else 1.0

    def get(self, hac_rate: float, seconds: float) -> float:
        """The factor for the slow drift variance, given the baseline's long-run rate and seconds."""
        if seconds >= self.warm_seconds and hac_rate > 0.0:
            ratio = (self.num / seconds) / hac_rate
            if self.margin * ratio < 1.0:
                return self.margin * ratio
            return ratio / self.margin if ratio > self.margin else 1.0
        return 1.0

    def get_slow(self, hac_rate: float, seconds: float) -> float:
        """The factor for the slowest t-statistics: as :meth:`get`, but an excess of the own ratio
        (with ``own``; else of the ratio) is corrected in full. Correcting upwards only lowers a
        t-statistic, so estimation noise there costs no false alarm, and what the margin leaves
        (up to ``margin`` times the variance) would multiply the false alarms of a test at 3.5
        several times. An own ratio below ``1 / own_margin`` gives ``own_margin`` times itself
        (a coarse tick grid)."""
        if self.own:
            own = self.own_ratio()
            if seconds >= self.warm_seconds and hac_rate > 0.0:
                if own > 1.0:
                    return own
                if self.own_margin * own < 1.0:
                    return self.own_margin * own
            return self.get(hac_rate, seconds)
        excess = self.excess(hac_rate, seconds)
        return excess if excess > 1.0 else self.get(hac_rate, seconds)

    def excess(self, hac_rate: float, seconds: float) -> float:
        """The slow rate over the HAC rate where that is above 1 (once believed), else 1: the
        upward correction alone."""
        if seconds >= self.warm_seconds and hac_rate > 0.0 and self.num / seconds > hac_rate:
            return (self.num / seconds) / hac_rate
        return 1.0


class JumpTest(Estimator):
    """Lee-Mykland jump test of each close-to-close return against the preceding bipower variation.

    The local volatility is the bipower variation ``pi/2 |r_t| |r_{t-1}|`` (robust to jumps)
    exponentially weighted over 900 s of trading time, per second; the statistic is
    ``|r| / sqrt(bv * dt)``. Two critical values (:func:`signals.kernels.lee_mykland_threshold`
    for two numbers of tests) are applied, never across a session break and only after
    ``warmup_s`` seconds of trading, and only to a return of at least ``minute_sd`` one-minute
    standard deviations of the efficient price (``efficient_var`` per second: on 1-s bars the
    bipower scale is mostly microstructure noise and tick discreteness, so a statistically
    clear jump can be a one-tick move): at ``burst_threshold`` the return is a jump that can
    start a burst (its time and sign are kept); at both critical values it is counted and
    remembered as a significant jump. Within ``window_s`` of a burst-level jump only a larger
    one replaces it, so the bounce after a news jump does not erase the news.

    Parameters
    ----------
    threshold : float
        Critical value of a significant jump (family-wise over a session).
    burst_threshold : float
        Critical value of a jump that can start a burst.
    warmup_s : float
        No jump is declared before this much trading time.
    window_s : float
        How long a burst-level jump is kept against smaller ones (the burst rule's jump window).
    minute_sd : float
        Smallest jump in one-minute standard deviations of the efficient price.

    Examples
    --------
    >>> jt = JumpTest(threshold=5.0, burst_threshold=4.0, warmup_s=0.0, window_s=60.0, minute_sd=2.0)
    >>> for k in range(600):
    ...     _ = jt.update(1e-4 * (-1) ** k, 1.0, False, 1e9, k * 10**9, 1e-8)
    >>> round(jt.update(0.0006, 1.0, False, 1e9, 600 * 10**9, 1e-8).get(), 2), jt.last_ts, jt.jumps
    (4.79, -4611686018427387904, 0)
    >>> round(jt.update(0.003, 1.0, False, 1e9, 601 * 10**9, 1e-8).get(), 2), jt.last_ts, jt.jumps, jt.last_big_ts
    (23.82, 601000000000, 1, 601000000000)
    >>> round(jt.update(-0.0025, 1.0, False, 1e9, 602 * 10**9, 1e-8).get(), 2), jt.last_ts, jt.last_sign
    (-16.75, 601000000000, 1)

    References
    ----------
    Barndorff-Nielsen, O. E. and Shephard, N. (2004). Power and bipower variation with stochastic
    volatility and jumps. *Journal of Financial Econometrics*, 2(1), 1-37.

    Lee, S. S. and Mykland, P. A. (2008). Jumps in financial markets: a new nonparametric test and
    jump dynamics. *The Review of Financial Studies*, 21(6), 2535-2563.
    """

    _state = ("bipower", "seconds", "prev_abs", "value", "jumps", "last_ts", "last_sign", "last_abs",
              "last_big_ts", "last_mid")
    HORIZON = 900.0

    def __init__(self, threshold: float, burst_threshold: float, warmup_s: float, window_s: float,
                 minute_sd: float, hold: float = 0.5):
        self.threshold = threshold
        self.burst_threshold = burst_threshold
        self.warmup_s = warmup_s
        self.window_s = window_s
        self.minute_sd = minute_sd
        self.hold = hold
        self.last_mid = 0.0          # price: the level before the kept jump and ``hold`` of its move
        self.bipower = 0.0
        self.seconds = 0.0
        self.prev_abs = 0.0
        self.value = 0.0
        self.jumps = 0
        self.last_ts = NONE_TS
        self.last_sign = 0
        self.last_abs = 0.0          # |statistic| of the kept burst-level jump
        self.last_big_ts = NONE_TS

    def update(self, rc: float, dt: float, brk: bool, warm: float, ts: int, efficient_var: float,
               level: float = 0.0, move: float = 0.0) -> "JumpTest":
        """``rc``: deseasonalised close return; ``warm``: trading seconds seen; ``ts``: bar start;
        ``efficient_var``: the efficient price's variance per second (deseasonalised; the
        engine passes the largest of the long-run, 15-min and 1-min lag-1 HAC rates);
        ``level``, ``move``: the price before the bar (the previous bar's mean) and the bar's
        close log move, as they are: a kept jump's :attr:`last_mid` is ``level * exp(hold * move)``."""
        a = math.exp(-dt / self.HORIZON)
        bvr = self.local_variance()
        z = rc / math.sqrt(bvr * dt) if bvr * dt > 0.0 else 0.0
        self.value = z
        if (not brk) and warm >= self.warmup_s:
            big = abs(rc) >= self.minute_sd * math.sqrt(efficient_var * 60.0)
            if big and abs(z) >= self.burst_threshold:
                if self.last_ts == NONE_TS or ts - self.last_ts > self.window_s * 1e9 or abs(z) >= self.last_abs:
                    self.last_ts = ts
                    self.last_sign = 1 if z > 0 else -1
                    self.last_abs = abs(z)
                    self.last_mid = level * math.exp(self.hold * move)
            if big and abs(z) >= max(self.threshold, self.burst_threshold):
                self.jumps += 1
                self.last_big_ts = ts
        self.bipower = a * self.bipower + HALF_PI * abs(rc) * self.prev_abs
        self.seconds = a * self.seconds + dt
        self.prev_abs = abs(rc)
        return self

    def local_variance(self) -> float:
        """The bipower variance per second before the next return (0 until there is one)."""
        return self.bipower / self.seconds if self.seconds > 0.0 else 0.0

    def get(self) -> float:
        """The last return in local standard deviations (the Lee-Mykland statistic)."""
        return self.value


class JumpShare(Estimator):
    """Share of the recent quadratic variation due to jumps: ``1 - BV / RV`` over ~1 h, in [0, 1].

    Examples
    --------
    >>> js = JumpShare()
    >>> for k in range(600):
    ...     _ = js.update(1e-4 * (-1) ** k, 1.0)
    >>> round(js.get(), 3), round(js.update(0.003, 1.0).get(), 3)    # no jump; then one of 30 sd
    (0.0, 0.371)

    References
    ----------
    Barndorff-Nielsen, O. E. and Shephard, N. (2004). Power and bipower variation with stochastic
    volatility and jumps. *Journal of Financial Econometrics*, 2(1), 1-37.

    Huang, X. and Tauchen, G. (2005). The relative contribution of jumps to total price variance.
    *Journal of Financial Econometrics*, 3(4), 456-499.
    """

    _state = ("rv", "bv", "prev_abs", "value")
    HORIZON = 3600.0

    def __init__(self):
        self.rv = 0.0
        self.bv = 0.0
        self.prev_abs = 0.0
        self.value = 0.0

    def update(self, rc: float, dt: float) -> "JumpShare":
        a = math.exp(-dt / self.HORIZON)
        self.rv = a * self.rv + rc * rc
        self.bv = a * self.bv + HALF_PI * abs(rc) * self.prev_abs
        self.prev_abs = abs(rc)
        self.value = min(max(1.0 - self.bv / self.rv, 0.0), 1.0) if self.rv > 0.0 else 0.0
        return self

    def get(self) -> float:
        return self.value


class DriftTStat(Estimator):
    """Exponentially weighted drift t-statistic in the drift-burst form, at one horizon.

    ``t = sum(a**k r_k) / sqrt(v * sum(a**(2k) dt_k))``: the weighted sum of (deseasonalised)
    returns over its exact standard deviation when returns have variance ``v`` per second; the
    weights' squares are summed exactly, so irregular bars are handled. ``v`` is the local
    lag-1 HAC variance rate ``sum(a**k x_k) / sum(a**k dt_k)`` (:class:`LagOneHAC`), floored
    at ``floor`` times the long-run rate (:meth:`Baseline.long_run`), so a calm spell cannot
    produce huge t-statistics. Under no drift ``t`` is about standard normal.

    Parameters
    ----------
    horizon : float
        Time scale of the weights, seconds.
    floor : float
        The local variance rate is not believed below this multiple of the long-run rate.

    Examples
    --------
    >>> dr = DriftTStat(horizon=3600.0, floor=0.25)
    >>> for k in range(3600):
    ...     _ = dr.update(1e-4 * (-1) ** k + 1e-5, 1e-8, 1.0, 1e-8)
    >>> round(dr.get(), 2)                     # 1e-5/s drift, 1e-4/sqrt(s) volatility, 1 h
    5.76

    References
    ----------
    Christensen, K., Oomen, R. C. A. and Renò, R. (2022). The drift burst hypothesis.
    *Journal of Econometrics*, 227(2), 461-497.

    Newey, W. K. and West, K. D. (1987). A simple, positive semi-definite, heteroskedasticity and
    autocorrelation consistent covariance matrix. *Econometrica*, 55(3), 703-708.
    """

    _state = ("sum_r", "sum_w2", "var_num", "var_seconds", "value")

    def __init__(self, horizon: float, floor: float):
        self.horizon = horizon
        self.floor = floor
        self.sum_r = 0.0
        self.sum_w2 = 0.0
        self.var_num = 0.0
        self.var_seconds = 0.0
        self.value = 0.0

    def update(self, r: float, x: float, dt: float, long_run: float, scale: float = 1.0) -> "DriftTStat":
        """``r`` return, ``x`` its HAC variance contribution, ``long_run`` the baseline HAC rate,
        ``scale`` the noise correction of the variance (:class:`NoiseScale`; 1 for none)."""
        a = math.exp(-dt / self.horizon)
        self.sum_r = a * self.sum_r + r
        self.sum_w2 = a * a * self.sum_w2 + dt
        self.var_num = a * self.var_num + x
        self.var_seconds = a * self.var_seconds + dt
        den = max(self.var_num / self.var_seconds, self.floor * long_run) * scale * self.sum_w2
        self.value = self.sum_r / math.sqrt(den) if den > 0.0 else 0.0
        return self

    def get(self) -> float:
        return self.value

    def local_variance(self) -> float:
        """The local HAC variance rate (before the floor), 0 until there is a bar."""
        return self.var_num / self.var_seconds if self.var_seconds > 0.0 else 0.0

    def normal_tstat(self, long_run: float, scale: float = 1.0) -> float:
        """The same weighted sum over the standard deviation it has at the *long-run* variance
        rate: how large the move is in the instrument's normal units (a rout with four times the
        usual volatility reads about four times its :meth:`get`)."""
        den = long_run * scale * self.sum_w2
        return self.sum_r / math.sqrt(den) if den > 0.0 else 0.0

    def restart(self) -> "DriftTStat":
        """Drop the returns summed so far (after a rout, whose move would stay in a slow window
        for hours); the variance and the weights' squares are kept, so the statistic reads low,
        not high, while the sum fills again."""
        self.sum_r = 0.0
        return self


class VolatilityRatio(Estimator):
    """Local volatility over the baseline volatility: ``sqrt(EW mean of y per second / baseline)``.

    ``y`` are squared deseasonalised returns (noise included); the baseline is
    :meth:`Baseline.get`. Without a baseline the ratio is 1.

    Parameters
    ----------
    horizon : float
        Time scale of the local volatility, seconds.

    Examples
    --------
    >>> vr = VolatilityRatio(horizon=60.0)
    >>> for _ in range(600):
    ...     _ = vr.update(9e-8, 1.0, 1e-8)                 # variance 9x the usual
    >>> round(vr.get(), 6)
    3.0

    References
    ----------
    Andersen, T. G., Bollerslev, T., Diebold, F. X. and Labys, P. (2003). Modeling and forecasting
    realized volatility. *Econometrica*, 71(2), 579-625.
    """

    _state = ("level", "seconds", "value")

    def __init__(self, horizon: float):
        self.horizon = horizon
        self.level = 0.0
        self.seconds = 0.0
        self.value = 0.0

    def update(self, y: float, dt: float, baseline: float) -> "VolatilityRatio":
        a = math.exp(-dt / self.horizon)
        self.level = a * self.level + y
        self.seconds = a * self.seconds + dt
        self.value = math.sqrt(self.level / self.seconds / baseline) if baseline > 0.0 else 1.0
        return self

    def get(self) -> float:
        return self.value


def _ratio_z(x: float, m: float) -> float:
    return x / math.sqrt(m) if m > 1e-12 else 0.0


class FlowImbalance(Estimator):
    """Signed order-flow imbalance at one horizon, in units of its own long-run dispersion.

    ``imb = sum(a**k q_k) / sum(a**k v_k)`` is the net signed volume (:class:`TickRule`) over
    the volume in the horizon, in [-1, 1]. Order signs have long memory (split parent orders),
    so the imbalance's typical size differs by instrument and horizon: it is divided by the
    root mean square of its own past values, weighted over ``memory`` seconds of trading time.

    Parameters
    ----------
    horizon : float
        Time scale of the imbalance, seconds.
    memory : float
        Time scale of its normal dispersion, seconds (``baseline_seconds``).

    Examples
    --------
    >>> fl = FlowImbalance(horizon=900.0, memory=100_000.0)
    >>> for k in range(20000):
    ...     _ = fl.update(1.0 if k % 2 else -1.0, 1.0, 1.0)
    >>> for k in range(1800):
    ...     _ = fl.update(1.0 if k % 3 else -1.0, 1.0, 1.0)
    >>> round(fl.get(), 1)                                     # 2/3 of trades are buys
    4.6

    References
    ----------
    Lillo, F. and Farmer, J. D. (2004). The long memory of the efficient market. *Studies in
    Nonlinear Dynamics & Econometrics*, 8(3).

    Bouchaud, J.-P., Gefen, Y., Potters, M. and Wyart, M. (2004). Fluctuations and response in
    financial markets: the subtle nature of 'random' price changes. *Quantitative Finance*,
    4(2), 176-190.
    """

    _state = ("signed", "volume", "mean_sq", "seconds", "value")

    def __init__(self, horizon: float, memory: float):
        self.horizon = horizon
        self.memory = memory
        self.signed = 0.0
        self.volume = 0.0
        self.mean_sq = 0.0
        self.seconds = 0.0
        self.value = 0.0

    def update(self, q: float, v: float, dt: float) -> "FlowImbalance":
        """``q`` signed volume and ``v`` volume of a bar lasting ``dt`` seconds."""
        a = math.exp(-dt / self.horizon)
        am = math.exp(-dt / self.memory)
        self.signed = a * self.signed + q
        self.volume = a * self.volume + v
        imb = self.signed / self.volume if self.volume > 0.0 else 0.0
        self.mean_sq = am * self.mean_sq + imb * imb * dt
        self.seconds = am * self.seconds + dt
        self.value = _ratio_z(imb, self.mean_sq / self.seconds)
        return self

    def get(self) -> float:
        return self.value


class VolumeClockImbalance(Estimator):
    """Order-flow imbalance on a volume clock, in units of its own long-run dispersion.

    The decay is by traded volume instead of time: each bar decays the sums by
    ``exp(-v / V)``, where ``V`` is the volume normally traded in ``clock_s`` seconds (the
    long-run volume rate over ``memory`` seconds of trading, times ``clock_s``). Busy periods
    are thus seen at a finer grain, as in VPIN.

    Parameters
    ----------
    clock_s : float
        One unit of the volume clock is the volume normally traded in this many seconds.
    memory : float
        Time scale of the normal volume rate and of the dispersion, seconds.

    Examples
    --------
    >>> vc = VolumeClockImbalance(clock_s=900.0, memory=100_000.0)
    >>> for k in range(20000):
    ...     _ = vc.update(1.0 if k % 2 else -1.0, 1.0, 1.0)
    >>> for k in range(600):
    ...     _ = vc.update(5.0, 5.0, 1.0)                       # five times the volume, all buys
    >>> round(vc.get(), 1)
    7.1

    References
    ----------
    Easley, D., López de Prado, M. M. and O'Hara, M. (2012). Flow toxicity and liquidity in a
    high-frequency world. *The Review of Financial Studies*, 25(5), 1457-1493.
    """

    _state = ("signed", "volume", "mean_sq", "volume_rate", "seconds", "value")

    def __init__(self, clock_s: float, memory: float):
        self.clock_s = clock_s
        self.memory = memory
        self.signed = 0.0
        self.volume = 0.0
        self.mean_sq = 0.0
        self.volume_rate = 0.0     # EW volume (numerator of the volume rate)
        self.seconds = 0.0         # EW trading seconds (its denominator)
        self.value = 0.0

    def update(self, q: float, v: float, dt: float, seasonal: float = 1.0) -> "VolumeClockImbalance":
        """``seasonal``: this time of day's volume rate over the all-day rate."""
        am = math.exp(-dt / self.memory)
        self.volume_rate = am * self.volume_rate + v
        self.seconds = am * self.seconds + dt
        scale = self.volume_rate / self.seconds * self.clock_s * seasonal
        av = math.exp(-v / scale) if scale > 0.0 else 0.0
        self.signed = av * self.signed + q
        self.volume = av * self.volume + v
        imb = self.signed / self.volume if self.volume > 0.0 else 0.0
        self.mean_sq = am * self.mean_sq + imb * imb * dt
        self.value = _ratio_z(imb, self.mean_sq / self.seconds)
        return self

    def get(self) -> float:
        return self.value


class ActivityRatio(Estimator):
    """Tick rate over about ten seconds divided by the usual rate at this time of day.

    It also keeps the tick rate over 15 minutes (:meth:`slow_ratio`), the level the seasonal
    profile's surge cap reads.

    Examples
    --------
    >>> act = ActivityRatio()
    >>> for _ in range(100):
    ...     _ = act.update(5.0, 1.0, 1.0)                      # 5 ticks/s where 1 is usual
    >>> round(act.get(), 3), round(act.slow_ratio(1.0), 3)
    (5.0, 5.0)

    References
    ----------
    Andersen, T. G. and Bollerslev, T. (1997). Intraday periodicity and volatility persistence
    in financial markets. *Journal of Empirical Finance*, 4(2-3), 115-158.
    """

    _state = ("ticks", "seconds", "value", "slow_ticks", "slow_seconds")
    HORIZON = 10.0
    SLOW_HORIZON = 900.0

    def __init__(self):
        self.ticks = 0.0
        self.seconds = 0.0
        self.value = 0.0
        self.slow_ticks = 0.0
        self.slow_seconds = 0.0

    def update(self, ticks: float, dt: float, usual_rate: float) -> "ActivityRatio":
        """``usual_rate``: seasonal ticks per second for this bucket (0 = unknown, ratio 1)."""
        a = math.exp(-dt / self.HORIZON)
        self.ticks = a * self.ticks + ticks
        self.seconds = a * self.seconds + dt
        rate = self.ticks / self.seconds
        self.value = rate / usual_rate if usual_rate > 0.0 else 1.0
        a15 = math.exp(-dt / self.SLOW_HORIZON)
        self.slow_ticks = a15 * self.slow_ticks + ticks
        self.slow_seconds = a15 * self.slow_seconds + dt
        return self

    def get(self) -> float:
        return self.value

    def slow_ratio(self, usual_rate: float) -> float:
        """The 15-min tick rate over ``usual_rate`` (0.0 when the usual rate is unknown)."""
        return self.slow_ticks / self.slow_seconds / usual_rate if usual_rate > 0.0 else 0.0


class ActivityCusum(Estimator):
    """Page's CUSUM of the trade count, for a surge to ``ratio`` times the usual rate.

    Each bar adds the Poisson log-likelihood ratio of its trades under ``ratio`` times the usual
    rate against the usual rate, ``ticks * ln(ratio) - (ratio - 1) * usual_rate * dt``; the sum
    is kept between 0 and ``cap`` (the engine holds it at twice the level the burst rule reads,
    so it falls back within seconds once a surge ends). A tenfold surge passes a level of 14 in a
    second or two, where a 10-s average of the rate needs several seconds to read four times
    the usual one. Nothing is added while the usual rate is unknown (0). The engine passes no
    trades for a bar that holds a burst-level jump: a jump printed as one order sweeping the
    book is many fills at once, and the surge that makes a burst is the trading that follows.

    Examples
    --------
    >>> cu = ActivityCusum(ratio=8.0, cap=28.0)
    >>> for _ in range(60):
    ...     _ = cu.update(1.0, 1.0, 1.0)                 # the usual rate: one trade a second
    >>> cu.get()
    0.0
    >>> round(cu.update(10.0, 1.0, 1.0).get(), 2)        # ten trades in a second: 10 ln 8 - 7
    13.79
    >>> round(cu.update(10.0, 1.0, 1.0).get(), 2), cu.update(10.0, 1.0, 1.0).get()
    (27.59, 28.0)

    References
    ----------
    Page, E. S. (1954). Continuous inspection schemes. *Biometrika*, 41(1/2), 100-115.

    Lucas, J. M. (1985). Counted data CUSUM's. *Technometrics*, 27(2), 129-144.
    """

    _state = ("value",)

    def __init__(self, ratio: float, cap: float):
        if not ratio > 1.0:
            raise ValueError(f"ratio must be > 1, got {ratio}")
        self.log_ratio = math.log(ratio)
        self.excess = ratio - 1.0
        self.cap = cap
        self.value = 0.0

    def update(self, ticks: float, dt: float, usual_rate: float) -> "ActivityCusum":
        """``usual_rate``: seasonal ticks per second for this bucket (0 = unknown, no update)."""
        if usual_rate > 0.0:
            self.value = min(max(self.value + ticks * self.log_ratio - self.excess * usual_rate * dt, 0.0), self.cap)
        return self

    def get(self) -> float:
        return self.value


class SameHoursFingerprint(Estimator):
    """Drift at the same hours of past days: a t-statistic per time-of-day bucket.

    A TWAP-like parent order trades in the same hours every day. Per bucket this sums the
    standardised returns ``u = r / sqrt(long-run variance rate)`` over the days, decayed by
    ``day_decay`` per day, and divides by the square root of the (equally decayed) seconds.
    Today's returns in the current bucket are left out of the sum (not of the seconds, which
    makes the statistic a little conservative): the fingerprint corroborates a drift, so the
    drift must not vouch for itself. Call :meth:`end_visit` when the next bar falls in another
    bucket or day.

    Parameters
    ----------
    day_decay : float
        Weight of yesterday relative to today.

    Examples
    --------
    >>> fp = SameHoursFingerprint(day_decay=0.8)
    >>> for day in range(3):
    ...     _ = fp.new_day()
    ...     for k in range(3600):
    ...         _ = fp.update(14, 0.05 + (-1) ** k, 1.0)        # a small drift at 14:00 every day
    ...     _ = fp.end_visit()
    >>> round(fp.get(14), 2), fp.get(15)
    (4.69, 0.0)
    >>> _ = fp.new_day().update(14, 30.0, 1.0)              # a jolt at 14:00 today ...
    >>> round(fp.get(14), 2)                                 # ... is not in it: past days, decayed
    4.19

    References
    ----------
    Andersen, T. G. and Bollerslev, T. (1997). Intraday periodicity and volatility persistence
    in financial markets. *Journal of Empirical Finance*, 4(2-3), 115-158.
    """

    _state = ("total", "seconds", "today")

    def __init__(self, day_decay: float):
        self.day_decay = day_decay
        self.total = [0.0] * N_BUCKETS
        self.seconds = [0.0] * N_BUCKETS
        self.today = 0.0            # today's part of the current bucket's total

    def new_day(self) -> "SameHoursFingerprint":
        for k in range(N_BUCKETS):
            self.total[k] *= self.day_decay
            self.seconds[k] *= self.day_decay
        self.today = 0.0
        return self

    def end_visit(self) -> "SameHoursFingerprint":
        """Today's visit to the current bucket is over: what it added now belongs to the past."""
        self.today = 0.0
        return self

    def update(self, bucket: int, u: float, dt: float, event: bool = False) -> "SameHoursFingerprint":
        """``event``: the bar is in a burst or deleveraging; it adds its seconds, not its return
        (a rout or a news cascade at this hour is not a habit of the hour)."""
        self.seconds[bucket] += dt
        if not event:
            self.total[bucket] += u
            self.today += u
        return self

    def get(self, bucket: int) -> float:
        s = self.seconds[bucket]
        return (self.total[bucket] - self.today) / math.sqrt(s) if s > 0.0 else 0.0


class Cusum(Estimator):
    """One-sided CUSUM of standardised returns, with the start of the current excursion.

    ``S = min(max(0, S + sign * u - drift * dt), drift * cap)``: it grows while the returns
    drift in ``sign``'s direction faster than ``drift`` standard deviations per second and
    returns to 0 otherwise. The time it last left 0 (``tau``) estimates when the drift began.
    The cap bounds how long a past move keeps it above 0 once the move has ended (``cap``
    seconds at no drift), so a move that starts hours after a large one gets its own onset
    instead of the old excursion's.

    Parameters
    ----------
    drift : float
        Reference drift in standard deviations per second; smaller drifts do not accumulate.
    sign : float
        +1.0 watches upward drifts, -1.0 downward ones.
    cap : float
        Largest value, in seconds of the reference drift (inf: no cap).

    Examples
    --------
    >>> up = Cusum(drift=0.01, sign=1.0)
    >>> for k in range(100):
    ...     _ = up.update(-0.5 if k < 50 else 0.5, 1.0, k)
    >>> round(up.get(), 2), up.tau
    (24.5, 50)
    >>> capped = Cusum(drift=0.01, sign=1.0, cap=600.0)
    >>> for k in range(100):
    ...     _ = capped.update(-0.5 if k < 50 else 0.5, 1.0, k)
    >>> round(capped.get(), 2), capped.tau
    (6.0, 50)

    References
    ----------
    Page, E. S. (1954). Continuous inspection schemes. *Biometrika*, 41(1/2), 100-115.
    """

    _state = ("value", "tau")

    def __init__(self, drift: float, sign: float, cap: float = math.inf):
        self.drift = drift
        self.sign = sign
        self.cap = cap
        self.value = 0.0
        self.tau = 0

    def update(self, u: float, dt: float, ts: int) -> "Cusum":
        was = self.value
        now = min(max(0.0, was + self.sign * u - self.drift * dt), self.drift * self.cap)
        if was == 0.0 and now > 0.0:
            self.tau = ts
        self.value = now
        return self

    def get(self) -> float:
        return self.value


def absorption_z(drift_t: float, flow_z: float) -> float:
    """Price moving against the aggressive flow (passive absorption): ``sign(t) * min(|t|, |z|)``.

    0 when the drift and the flow agree in sign.

    >>> absorption_z(4.0, -2.5), absorption_z(-1.0, 3.0), absorption_z(4.0, 2.5)
    (2.5, -1.0, 0.0)
    """
    if drift_t * flow_z < 0.0:
        return (1.0 if drift_t > 0 else -1.0) * min(abs(drift_t), abs(flow_z))
    return 0.0


class Context(NamedTuple):
    """What the regime rules read besides the statistics."""

    start: int                          # bar start, ns
    warm: float                         # trading seconds seen
    cusum: tuple[float, float, float, float]   # slow up, slow down, fast up, fast down
    tau: tuple[int, int, int, int]      # their excursion starts
    last_jump_ts: int                   # last jump at the burst level
    last_jump_sign: int
    last_big_jump_ts: int               # last jump at the family-wise level
    flow_z_10s: float                   # 10-s flow imbalance z (burst cascades)
    ticks_10s: float                    # 10-s weighted tick count behind the activity ratio
    move_tstat_900s: float = 0.0        # 15-min drift t against the long-run volatility (evidence name too)
    aggressor_sides: bool = True        # at least half the instrument's trades came with a side
    hac_vol_ratio: float = 0.0          # 15-min or 1-h local HAC volatility (the larger) over the long-run one
    activity_cusum: float = 0.0         # :class:`ActivityCusum` (a burst's surge, sooner than the ratio)
    last_jump_abs: float = 0.0          # |jump_z| of the last jump at the burst level
    last_jump_mid: float = 0.0          # the price a burst's entry needs the bar's mean beyond
    mean: float = 0.0                   # the bar's mean price
    hac_vol_ratio_60s: float = 0.0      # 1-min local HAC volatility over the long-run one (0 if not above 0)
    hour_seen: bool = True              # the seasonal profile holds half an hour of trading at this hour of the day


class Event(NamedTuple):
    event: str            # enter, exit, resume
    kind: str
    direction: int        # price direction: +1 up, -1 down
    ts: int               # the triggering tick
    onset_ts: int
    alert_ts: int         # time of the alert this episode belongs to
    score: float


def _sgn(x: float) -> int:
    return 1 if x > 0.0 else (-1 if x < 0.0 else 0)


class RegimeMachine(Estimator):
    """Regime state machine: entry rules, minimum durations, hysteresis, cooldown.

    Rules per kind, on a direction ``d`` (+1 price up, -1 down), with every threshold multiplied
    by ``f`` (1 at entry, ``exit_fraction`` to stay; a maximum is divided by ``f``):

    * ``deleveraging``: after warm-up, 15-min drift t >= delev_tstat, 15-min volatility ratio
      >= delev_vol_ratio (or activity ratio >= delev_activity_ratio, with delev_min_ticks in the
      10-s tick count behind it and the 15-min volatility ratio >= delev_activity_vol_ratio or the move, the 15-min drift against the long-run
      volatility (``Context.move_tstat_900s``), >= delev_move_tstat; or neither, with the move
      >= delev_violent_move), and 15-min flow z >=
      delev_flow_z (or volume-clock flow z >= delev_flow_z_volume, or either flow z >=
      delev_move_flow_z with the move >= delev_move_tstat, or a burst on side ``d`` for
      delev_burst_seconds, or the 15-min drift t and the move both >= delev_tstat_strong),
      all on side ``d``; or, in place of the drift and flow conditions, a 15-min drift t of
      only delev_violent_tstat with the move >= delev_move_tstat and either flow z >=
      delev_violent_flow_z, or of delev_strong_flow_tstat with the move >= delev_strong_flow_move
      and either flow z >= delev_strong_flow_z; to enter, no burst-level jump in the last
      delev_jump_quiet_seconds.
    * ``burst``: after warm-up, activity ratio >= burst_activity_ratio or 1-min volatility ratio
      >= burst_vol_ratio (to stay; only the activity level is loosened); to enter both (the
      activity ratio, or the activity CUSUM at burst_activity_cusum; the volatility ratio, or
      ``Context.hac_vol_ratio_60s`` at burst_hac_vol_ratio), with at least
      burst_min_ticks in the 10-s tick count, a burst-level jump (:class:`JumpTest`:
      significant and at least jump_minute_sd one-minute standard deviations) on side ``d``
      within burst_jump_window_seconds, which the bar's mean price still holds by burst_jump_hold
      of its move from the bar after it on (``Context.last_jump_mid``), and the cascade: 10-s flow z >= burst_flow_z on side
      ``d`` (burst_flow_z_tick_rule where fewer than half the trades came with an aggressor
      side, and there 0 after a jump whose |jump_z| is at least burst_jump_z_tick_rule) with
      the 1-min drift t at least burst_drift_tstat on side ``d``; or the drift at
      burst_drift_tstat_strong with the flow not against it, or the flow at burst_flow_z_strong
      (only this last one while the surge is on the CUSUM alone).
    * ``steady_flow``: after the steady warm-up, not during a burst or deleveraging, 15-min and
      1-h volatility ratios <= steady_vol_ratio_max (and on the noise-free scale,
      ``Context.hac_vol_ratio``, <= steady_hac_vol_ratio_max), the 15-min drift against the
      long-run volatility at most steady_move_tstat_max, no significant jump and no burst exit
      within steady_jump_quiet_seconds, no deleveraging exit within
      steady_after_deleveraging_seconds,
      and either strong flow (|1-h flow z| >= steady_flow_z_strong, aggressive or absorbed) with
      1-h t >= steady_tstat_flow and 4-h t >= steady_tstat_slow scaled alike, or a drift (1-h t
      >= steady_tstat and 4-h t >= steady_tstat_slow) with corroboration (|1-h flow z| >=
      steady_flow_z or the same-hours fingerprint >= steady_fingerprint_tstat), which a 1-h t
      of steady_tstat_strong does without.

    A kind becomes a candidate when its rule holds at entry level on its primary side and
    stays one while the looser rule holds; it is entered when it has been a candidate for its
    entry duration and holds at entry level now, or at once for deleveraging whose 15-min or
    volume-clock flow z on its side is at least delev_enter_flow_z, unless a burst is on.
    Priority: deleveraging > burst > steady_flow; a higher-priority kind pre-empts the current
    one, and a burst or deleveraging on the other side reverses it. A regime is left when its
    looser rule has failed for its exit duration. Re-entering the same kind on the same side within the
    cooldown after an exit *resumes* the old episode (same alert, same onset) when the move
    behind it began before that exit; a move that began after it is a new episode.

    Parameters
    ----------
    thresholds : Thresholds
        The ``[thresholds]`` of the engine config.

    Examples
    --------
    >>> rm = RegimeMachine(Thresholds(delev_enter_seconds=0.0))
    >>> stats = dict.fromkeys(["drift_tstat_60s", "drift_tstat_3600s", "drift_tstat_14400s",
    ...                        "flow_z_60s", "flow_z_3600s", "flow_z_volume", "vol_ratio_60s", "vol_ratio_3600s",
    ...                        "activity_ratio", "jump_z", "fingerprint_tstat"], 0.0)
    >>> stats.update(drift_tstat_900s=-6.0, vol_ratio_900s=3.0, flow_z_900s=-2.0)
    >>> ctx = Context(10**12, 7200.0, (0.0, 0.0, 0.0, 5.0), (0, 0, 0, 4 * 10**11), NONE_TS, 0, NONE_TS, 0.0,
    ...               0.0)
    >>> rm.update(10**12, stats, ctx).get()
    [Event(event='enter', kind='deleveraging', direction=-1, ts=1000000000000, onset_ts=400000000000, alert_ts=1000000000000, score=6.0)]

    References
    ----------
    Page, E. S. (1954). Continuous inspection schemes. *Biometrika*, 41(1/2), 100-115.
    """

    KINDS = ("steady_flow", "burst", "deleveraging")
    PRIORITY = {"quiet": 0, "steady_flow": 1, "burst": 2, "deleveraging": 3}
    _state = ("regime", "direction", "onset_ts", "alert_ts", "enter_ts", "exit_since", "score",
              "cand_since", "cand_side", "last_exit", "alerts", "last_alert_ts")

    def __init__(self, thresholds: Thresholds):
        th = self.th = thresholds
        self.enter_ns = {"steady_flow": int(th.steady_enter_seconds * 1e9),
                         "burst": int(th.burst_enter_seconds * 1e9),
                         "deleveraging": int(th.delev_enter_seconds * 1e9)}
        self.exit_ns = {"steady_flow": int(th.steady_exit_seconds * 1e9),
                        "burst": int(th.burst_exit_seconds * 1e9),
                        "deleveraging": int(th.delev_exit_seconds * 1e9)}
        self.cooldown_ns = {"steady_flow": int(th.steady_cooldown_seconds * 1e9),
                            "burst": int(th.burst_cooldown_seconds * 1e9),
                            "deleveraging": int(th.delev_cooldown_seconds * 1e9)}
        self.regime = "quiet"
        self.direction = 0
        self.onset_ts = NONE_TS
        self.alert_ts = 0
        self.enter_ts = 0
        self.exit_since = NONE_TS
        self.score = 0.0
        self.cand_since = dict.fromkeys(self.KINDS, NONE_TS)
        self.cand_side = dict.fromkeys(self.KINDS, 0)
        # per kind: (ts, direction, alert_ts, onset_ts) of the last exit
        self.last_exit = {k: [NONE_TS, 0, 0, 0] for k in self.KINDS}
        self.alerts = {f"{k}:{d}": 0 for k in self.KINDS for d in (-1, 1)}
        self.last_alert_ts = NONE_TS
        self.events: list[Event] = []

    # ---- rules -----------------------------------------------------------------------
    def _jump_within(self, ctx: Context, seconds: float) -> bool:
        return ctx.last_jump_ts != NONE_TS and ctx.start - ctx.last_jump_ts <= seconds * 1e9

    def holds(self, kind: str, d: int, f: float, s: dict, ctx: Context) -> bool:
        """Does ``kind`` hold on direction ``d`` with thresholds loosened by ``f``?"""
        th = self.th
        if d == 0:
            return False
        if kind == "deleveraging":
            if f == 1.0 and self._jump_within(ctx, th.delev_jump_quiet_seconds):
                return False
            if ctx.warm < th.warmup_seconds or not (
                    s["vol_ratio_900s"] >= th.delev_vol_ratio * f
                    or (s["activity_ratio"] >= th.delev_activity_ratio * f and ctx.ticks_10s >= th.delev_min_ticks
                        and (s["vol_ratio_900s"] >= th.delev_activity_vol_ratio * f
                             or ctx.move_tstat_900s * d >= th.delev_move_tstat * f))
                    or ctx.move_tstat_900s * d >= th.delev_violent_move * f):
                return False
            t15 = s["drift_tstat_900s"] * d
            if t15 < th.delev_tstat * f:        # a violent move or a stronger flow needs less local t
                zmax = max(s["flow_z_900s"] * d, s["flow_z_volume"] * d)
                move = ctx.move_tstat_900s * d
                return ((t15 >= th.delev_violent_tstat * f and move >= th.delev_move_tstat * f
                         and zmax >= th.delev_violent_flow_z * f)
                        or (t15 >= th.delev_strong_flow_tstat * f and move >= th.delev_strong_flow_move * f
                            and zmax >= th.delev_strong_flow_z * f))
            return (s["flow_z_900s"] * d >= th.delev_flow_z * f
                    or (t15 >= th.delev_tstat_strong * f and ctx.move_tstat_900s * d >= th.delev_tstat_strong * f)
                    or s["flow_z_volume"] * d >= th.delev_flow_z_volume * f
                    or (ctx.move_tstat_900s * d >= th.delev_move_tstat * f
                        and max(s["flow_z_900s"] * d, s["flow_z_volume"] * d) >= th.delev_move_flow_z * f)
                    or (self.regime == "burst" and self.direction == d
                        and ctx.start - self.enter_ts >= th.delev_burst_seconds * 1e9))
        if kind == "burst":
            if ctx.warm < th.warmup_seconds:
                return False
            if s["activity_ratio"] < th.burst_activity_ratio * f and s["vol_ratio_60s"] < th.burst_vol_ratio:
                return False
            if f == 1.0:
                early = s["activity_ratio"] < th.burst_activity_ratio      # a surge on the CUSUM alone
                if ((early and ctx.activity_cusum < th.burst_activity_cusum) or ctx.ticks_10s < th.burst_min_ticks
                        or (s["vol_ratio_60s"] < th.burst_vol_ratio and ctx.hac_vol_ratio_60s < th.burst_hac_vol_ratio)):
                    return False
                if not (self._jump_within(ctx, th.burst_jump_window_seconds) and ctx.last_jump_sign == d):
                    return False
                # in an hour not yet seen a busy open's first moves pass the jump test: stronger news
                if not ctx.hour_seen and ctx.last_jump_abs < th.burst_unseen_jump_z:
                    return False
                # from the bar after the jump on, the price still holds it (the jump's own bar
                # averages the prices before it, and a sweep's fills, with the jump)
                if ctx.start != ctx.last_jump_ts and d * (ctx.mean - ctx.last_jump_mid) < 0.0:
                    return False
                flow, drift = ctx.flow_z_10s * d, s["drift_tstat_60s"] * d
                if early:
                    return flow >= th.burst_flow_z_strong
                if ctx.aggressor_sides:
                    need = th.burst_flow_z
                elif ctx.last_jump_abs >= th.burst_jump_z_tick_rule:   # news that large: flow not against it
                    need = min(th.burst_flow_z_tick_rule, 0.0)
                else:
                    need = th.burst_flow_z_tick_rule
                cascade = flow >= need and drift >= th.burst_drift_tstat
                return cascade or (drift >= th.burst_drift_tstat_strong and flow >= 0.0) \
                    or flow >= th.burst_flow_z_strong
            return True
        # not during a burst or deleveraging: a rout's drift is still in the 1-h and 4-h windows
        # when it ends, and a steady candidate that grew under it would be entered at its exit
        if self.regime in ("burst", "deleveraging") or ctx.warm < th.steady_warmup_seconds \
                or max(s["vol_ratio_900s"], s["vol_ratio_3600s"]) > th.steady_vol_ratio_max / f:
            return False
        if ctx.hac_vol_ratio > th.steady_hac_vol_ratio_max / f:      # nor on the noise-free scale
            return False
        if abs(ctx.move_tstat_900s) > th.steady_move_tstat_max / f:     # a grind does not move that fast
            return False
        quiet_ns = th.steady_jump_quiet_seconds * 1e9
        for last in (ctx.last_big_jump_ts, self.last_exit["burst"][0]):
            if last != NONE_TS and ctx.start - last <= quiet_ns:
                return False
        last = self.last_exit["deleveraging"][0]    # nor soon after a rout
        if last != NONE_TS and ctx.start - last <= max(quiet_ns, th.steady_after_deleveraging_seconds * 1e9):
            return False
        t1, t4, z1 = s["drift_tstat_3600s"] * d, s["drift_tstat_14400s"] * d, abs(s["flow_z_3600s"])
        # strong flow, aggressive or absorbed, lowers the price evidence needed
        if (z1 >= th.steady_flow_z_strong * f and t1 >= th.steady_tstat_flow * f
                and t4 >= th.steady_tstat_slow * f * th.steady_tstat_flow / th.steady_tstat):
            return True
        if t1 < th.steady_tstat * f or t4 < th.steady_tstat_slow * f:
            return False
        # a drift this strong needs no corroboration: passive children leave no trace in the flow
        return (t1 >= th.steady_tstat_strong * f or z1 >= th.steady_flow_z * f
                or s["fingerprint_tstat"] * d >= th.steady_fingerprint_tstat * f)

    def primary_side(self, kind: str, s: dict, ctx: Context) -> int:
        """The direction ``kind`` would be entered on now."""
        th = self.th
        if kind == "deleveraging":
            return _sgn(s["drift_tstat_900s"])
        if kind == "steady_flow":
            return _sgn(s["drift_tstat_3600s"])
        if self._jump_within(ctx, th.burst_jump_window_seconds):
            return ctx.last_jump_sign
        return _sgn(s["drift_tstat_60s"])

    # ---- state machine ---------------------------------------------------------------
    def update(self, ts: int, stats: dict, ctx: Context) -> "RegimeMachine":
        """Run at a bar close triggered by the tick at ``ts``; :meth:`get` returns the events."""
        self.events = []
        f_exit = self.th.exit_fraction
        desired, dside = "quiet", 0
        for kind in ("deleveraging", "burst", "steady_flow"):
            cs = self.cand_side[kind]
            if not (cs != 0 and self.holds(kind, cs, f_exit, stats, ctx)):
                sd = self.primary_side(kind, stats, ctx)
                if self.holds(kind, sd, 1.0, stats, ctx):
                    self.cand_since[kind], self.cand_side[kind] = ts, sd
                else:
                    self.cand_since[kind], self.cand_side[kind] = NONE_TS, 0
            cs = self.cand_side[kind]
            # a rout whose one-sided flow is plain does not wait (unless a burst is on)
            no_wait = (kind == "deleveraging" and self.regime != "burst"
                       and max(cs * stats["flow_z_900s"], cs * stats["flow_z_volume"]) >= self.th.delev_enter_flow_z)
            if (desired == "quiet" and cs != 0 and (no_wait or ts - self.cand_since[kind] >= self.enter_ns[kind])
                    and self.holds(kind, cs, 1.0, stats, ctx)):
                desired, dside = kind, cs
        cur = self.regime
        if cur != "quiet":
            # a stronger regime replaces the current one; a fast one on the other side reverses it
            if self.PRIORITY[desired] > self.PRIORITY[cur] or (
                    self.PRIORITY[desired] >= self.PRIORITY["burst"] and dside != self.direction):
                self._exit(ts)
            elif self.holds(cur, self.direction, f_exit, stats, ctx):
                self.exit_since = NONE_TS
                return self
            else:
                if self.exit_since == NONE_TS:
                    self.exit_since = ts
                if ts - self.exit_since < self.exit_ns[cur]:
                    return self
                self._exit(ts)
        if desired != "quiet":
            self._enter(ts, desired, dside, stats, ctx)
        return self

    def _onset(self, kind: str, d: int, s: dict, ctx: Context) -> tuple[int, float]:
        if kind == "steady_flow":
            c = 0 if d > 0 else 1
            return (ctx.tau[c] if ctx.cusum[c] > 0.0 else ctx.start - 3600 * 10 ** 9), abs(s["drift_tstat_3600s"])
        c = 2 if d > 0 else 3
        if kind == "deleveraging":
            return (ctx.tau[c] if ctx.cusum[c] > 0.0 else ctx.start - 900 * 10 ** 9), abs(s["drift_tstat_900s"])
        score = max(abs(s["drift_tstat_60s"]), abs(s["jump_z"]))
        if self._jump_within(ctx, self.th.burst_jump_window_seconds) and ctx.last_jump_sign == d:
            return ctx.last_jump_ts, score
        return max(ctx.tau[c], ctx.start - int(self.th.burst_jump_window_seconds * 1e9)), score

    def _enter(self, ts: int, kind: str, d: int, stats: dict, ctx: Context) -> None:
        onset, score = self._onset(kind, d, stats, ctx)
        onset = min(onset, ts)
        lx_ts, lx_side, lx_alert, lx_onset = self.last_exit[kind]
        if lx_ts != NONE_TS and lx_side == d and ts - lx_ts <= self.cooldown_ns[kind] and onset <= lx_ts:
            # the same regime came back soon after it ended, driven by a move that began before
            # that end: one episode (a move that began after it is a new episode)
            event = "resume"
            self.alert_ts, self.onset_ts = lx_alert, lx_onset
        else:
            event = "enter"
            self.alert_ts, self.onset_ts = ts, onset
            self.alerts[f"{kind}:{d}"] += 1
            self.last_alert_ts = ts
        self.regime, self.direction, self.enter_ts, self.exit_since, self.score = kind, d, ts, NONE_TS, score
        self.events.append(Event(event, kind, d, ts, self.onset_ts, self.alert_ts, score))

    def _exit(self, ts: int) -> None:
        kind = self.regime
        self.last_exit[kind] = [ts, self.direction, self.alert_ts, self.onset_ts]
        self.events.append(Event("exit", kind, self.direction, ts, self.onset_ts, self.alert_ts, 0.0))
        self.regime, self.direction, self.exit_since = "quiet", 0, NONE_TS

    def get(self) -> list[Event]:
        """The transitions of the last update (an exit may be followed by an entry)."""
        return self.events
