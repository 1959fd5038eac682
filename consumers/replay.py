"""``tapewatch replay`` and ``tapewatch demo``: a tape file through the engine, then what it found.

``replay INPUT`` streams a CSV / JSON-lines / Parquet tape (see :mod:`signals.tape`) through
:class:`signals.engine.Engine` exactly as the Kafka service would, writes every alert as a JSON
line (``--alerts-out``), and prints per instrument the regimes entered, the time spent in each
and the state at the end of the tape, then the rejected rows by reason with their first line
numbers. ``--report`` writes a self-contained HTML page (:mod:`signals.report`).

``demo`` generates the built-in scenario modelled on the market notes (a quiet Treasury grind,
headline bursts in the dollar, a yen deleveraging morning, a steady buyer of a Chinese ETF),
writes the tape and replays it.

Reading runs in a background thread, one chunk ahead of the engine (both release the GIL).
"""
from __future__ import annotations

import argparse
import dataclasses
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np
import orjson

from signals.config import EngineConfig, config_from_dict, load_config
from signals.engine import REGIMES, Engine
from signals.errors import ConfigError
from signals.report import InstrumentState, ReportData, render_html, render_text
from signals.tape import TapeSummary, iter_tape, tape_format

from .options import add_option, positive

DEFAULT_SAMPLE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay produced: row accounting, every transition, final states and sampled statistics."""

    summary: TapeSummary
    transitions: list
    states: list[InstrumentState]
    samples: object
    elapsed_seconds: float
    history: TapeSummary | None = None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "replay", help="run a tape file through the engine and summarise what it found",
        description="Stream a tape (CSV with header instrument,ts,price,size[,side], JSON lines or Parquet; "
                    "gzip allowed) through the engine; print per instrument the regimes entered, time in each "
                    "and the state at the end, and the rejected rows by reason.")
    p.add_argument("input", metavar="INPUT", help="tape file (.csv, .csv.gz, .jsonl, .ndjson, .parquet, or sniffed)")
    _add_replay_options(p)
    p.set_defaults(func=_run_replay)

    d = subparsers.add_parser(
        "demo", help="generate the built-in market-notes scenario, replay it and write a report",
        description="Generate the demo tape (about 5 trading days, 5 instruments), replay it and write "
                    "demo.csv, alerts.jsonl, report.html (plus config.toml and labels.jsonl) to OUT_DIR.")
    add_option(d, "--out-dir", default="demo-out", metavar="DIR", help="directory for the demo's files")
    add_option(d, "--tape-out", metavar="FILE", help="where to write the demo tape (default: OUT_DIR/demo.csv)")
    add_option(d, "--seed", type=int, default=7, metavar="N", help="scenario seed")
    d.set_defaults(func=_run_demo)


def _add_replay_options(p: argparse.ArgumentParser) -> None:
    add_option(p, "--config", metavar="FILE", help="engine config TOML (thresholds, instruments: invert, calendar)")
    add_option(p, "--history", metavar="FILE",
               help="a tape of the days before INPUT, replayed first so that the engine starts with the "
                    "baselines and time-of-day profile it learns there; its alerts are not written or counted")
    add_option(p, "--alerts-out", metavar="FILE", help="write every alert (regime entry) as one JSON object per line")
    add_option(p, "--exits-out", metavar="FILE", help="write regime exits and resumptions as JSON lines")
    add_option(p, "--report", metavar="FILE", help="write a self-contained HTML report")
    add_option(p, "--sample-seconds", type=positive(float), default=DEFAULT_SAMPLE_SECONDS, metavar="S",
               help="resolution of the report's charts, event-time seconds")
    add_option(p, "--chunk-rows", type=positive(int), default=1_000_000, metavar="N", help="rows read per chunk")


def replay(path: str | Path, config: EngineConfig | None = None, *, alerts_out: IO[bytes] | None = None,
           exits_out: IO[bytes] | None = None, sample_seconds: float | None = None,
           chunk_rows: int = 1_000_000, progress: IO[str] | None = None,
           history: str | Path | None = None) -> ReplayResult:
    """Run a tape through a fresh engine.

    Parameters
    ----------
    path
        Tape file; see :func:`signals.tape.iter_tape`.
    config
        Engine configuration (defaults when None).
    alerts_out, exits_out
        Binary files receiving entry lines, and exit/resume lines, as JSON (``Transition.to_dict()``).
    sample_seconds
        Record the statistics at most this often per instrument (for the report); None records none.
    progress
        A text stream for progress lines (rows, ticks/s, share of the file read).
    history
        A tape of the time before ``path``, run through the same engine first: the baselines
        and the time-of-day profile are learned there (a cold engine measures an early rout
        against baselines that include it; docs/calibration.md, "A fifth pass: a cold start").
        Its transitions are dropped; its rows are accounted in ``ReplayResult.history``. Rows of
        ``path`` older than the history's last tick of their instrument are ``out_of_order``.

    Raises
    ------
    signals.errors.InputError
        The tape cannot be read at all; bad rows are counted, never raised.
    """
    tape_format(path)  # fail early on an unreadable file
    if history is not None:
        tape_format(history)
    engine = Engine(config)
    past = None
    if history is not None:
        past = TapeSummary()
        meter = _Progress(progress) if progress is not None else None
        for chunk in _read_ahead(iter_tape(history, chunk_rows=chunk_rows)):
            past.add(chunk)
            past.reject(chunk.line, engine.process(chunk.batch).reason)
            if meter:
                meter.update(past.rows, chunk.bytes_read, chunk.bytes_total)
        if meter:
            meter.finish()
    summary = TapeSummary()
    transitions: list = []
    samples: list = []
    first_ts: dict[str, int] = {}
    meter = _Progress(progress) if progress is not None else None
    start = time.perf_counter()
    for chunk in _read_ahead(iter_tape(path, chunk_rows=chunk_rows)):
        summary.add(chunk)
        batch = chunk.batch
        result = engine.process(batch, sample_every_seconds=sample_seconds)
        summary.reject(chunk.line, result.reason)
        if any(name not in first_ts for name in batch.instruments):
            codes, first_row = np.unique(batch.code, return_index=True)
            for code, row in zip(codes.tolist(), first_row.tolist()):
                first_ts.setdefault(batch.instruments[code], int(batch.ts[row]))
        for t in result.transitions:
            out = alerts_out if t.event == "enter" else exits_out
            if out is not None:
                out.write(orjson.dumps(t.to_dict()) + b"\n")
        transitions.extend(result.transitions)
        if result.samples is not None and len(result.samples.ts):
            samples.append(result.samples)
        if meter:
            meter.update(summary.rows, chunk.bytes_read, chunk.bytes_total)
    elapsed = time.perf_counter() - start
    if meter:
        meter.finish()
    return ReplayResult(summary, transitions, _states(engine, first_ts), _concat(samples), elapsed, past)


def _states(engine: Engine, first_ts: dict[str, int]) -> list[InstrumentState]:
    view = engine.view()
    out = []
    for i, name in enumerate(view.names):
        status = engine.status(name)
        regime = REGIMES[int(view.regime[i])]
        out.append(InstrumentState(
            name=name, first_ts=first_ts.get(name), last_ts=int(view.last_ts[i]), regime=regime,
            side=status["side"], onset_ts=int(view.onset_ts[i]) if regime != "quiet" else None,
            score=status["score"], ticks=status["ticks"], invert=engine.config.for_instrument(name).invert))
    return out


def _concat(parts: list):
    if not parts:
        return None
    return type(parts[0])(**{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                             for f in dataclasses.fields(parts[0])})


def _read_ahead(chunks: Iterator, depth: int = 1) -> Iterator:
    """Yield from ``chunks`` while a thread reads the next ones (errors are re-raised here)."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def put(item, error=None) -> bool:
        while not stop.is_set():
            try:
                q.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def work():
        try:
            for item in chunks:
                if not put(item):
                    return
            put(done)
        except BaseException as e:  # handed to the consumer
            put(done, e)

    worker = threading.Thread(target=work, name="tape-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, error = q.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join(timeout=1.0)


class _Progress:
    """Progress on stderr: redrawn in place on a terminal, one line every ~5 s otherwise."""

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.every = 0.5 if self.tty else 5.0
        self.start = self.last = time.perf_counter()

    def update(self, rows: int, pos: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        share = f", {100 * pos / total:.0f}% of file" if total else ""
        text = f"replay: {rows:,} rows, {rows / (now - self.start):,.0f} ticks/s{share}"
        self.stream.write(("\r" + text + "\x1b[K") if self.tty else text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """Clear the progress line on a terminal."""
        if self.tty and self.last > self.start:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _open_out(path: str | None, option: str) -> IO[bytes] | None:
    if not path:
        return None
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")
    except OSError as e:
        raise ConfigError(f"{option} {path!r}: cannot write: {e.strerror}") from None


def _report_data(result: ReplayResult, config: EngineConfig, *, title: str, source: str,
                 labels: Iterable = ()) -> ReportData:
    s = result.summary
    return ReportData(title=title, source=source, states=tuple(result.states),
                      transitions=tuple(t.to_dict() for t in result.transitions), samples=result.samples,
                      labels=tuple(labels), thresholds=config.thresholds, max_gap_seconds=config.max_gap_seconds,
                      rows=s.rows, accepted=s.accepted, reasons=dict(s.reasons), bad_lines=tuple(s.bad_lines),
                      elapsed_seconds=result.elapsed_seconds)


def _replay_and_print(path: str | Path, config: EngineConfig, *, alerts_out: str | None, exits_out: str | None,
                      report: str | None, sample_seconds: float, chunk_rows: int, title: str,
                      labels: Iterable = (), history: str | None = None) -> ReplayResult:
    tape_format(path)
    alerts_f = _open_out(alerts_out, "--alerts-out")
    exits_f = _open_out(exits_out, "--exits-out")
    try:
        result = replay(path, config, alerts_out=alerts_f, exits_out=exits_f,
                        sample_seconds=sample_seconds if report else None, chunk_rows=chunk_rows,
                        progress=sys.stderr, history=history)
    finally:
        for f in (alerts_f, exits_f):
            if f is not None:
                f.close()
    data = _report_data(result, config, title=title, source=str(path), labels=labels)
    if result.history is not None:
        h = result.history
        why = ", ".join(f"{k} {v}" for k, v in sorted(h.reasons.items()))
        print(f"history: {history}: {h.rows:,} rows replayed first, {h.rejected:,} rejected"
              + (f" ({why})" if why else ""))
    sys.stdout.write(render_text(data))
    by_name = config.inverted_by_name(st.name for st in result.states)
    if by_name:
        print(f"taken as yields by their names (rising = selling): {', '.join(by_name)}; "
              "set invert = false under [instruments.NAME] in --config if one is a price")
    n_alerts = sum(1 for t in result.transitions if t.event == "enter")
    if alerts_out:
        print(f"alerts: {n_alerts} written to {alerts_out}")
    if exits_out:
        print(f"exits and resumptions: {len(result.transitions) - n_alerts} written to {exits_out}")
    if report:
        try:
            Path(report).parent.mkdir(parents=True, exist_ok=True)
            Path(report).write_text(render_html(data), encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"--report {report!r}: cannot write: {e.strerror}") from None
        print(f"report: {report}")
    return result


def _run_replay(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    _replay_and_print(args.input, config, alerts_out=args.alerts_out, exits_out=args.exits_out,
                      report=args.report, sample_seconds=args.sample_seconds, chunk_rows=args.chunk_rows,
                      title=f"tapewatch replay — {Path(args.input).name}", history=args.history)
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from signals.scenarios import demo_scenario

    out = Path(args.out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out-dir {str(out)!r}: cannot create: {e.strerror}") from None
    tape = Path(args.tape_out) if args.tape_out else out / "demo.csv"
    scenario = demo_scenario(seed=args.seed)
    config = scenario.config if isinstance(scenario.config, EngineConfig) else config_from_dict(scenario.config)
    tape.parent.mkdir(parents=True, exist_ok=True)
    scenario.write_csv(tape)
    scenario.write_config(out / "config.toml")
    scenario.write_labels(out / "labels.jsonl")
    print(f"demo tape: {tape} ({len(scenario.ticks):,} ticks; config {out / 'config.toml'}, "
          f"labels {out / 'labels.jsonl'})")
    _replay_and_print(tape, config, alerts_out=str(out / "alerts.jsonl"), exits_out=None,
                      report=str(out / "report.html"), sample_seconds=DEFAULT_SAMPLE_SECONDS,
                      chunk_rows=1_000_000, title="tapewatch demo — the May 2025 market notes, replayed",
                      labels=scenario.labels)
    print(f"open {out / 'report.html'} in a browser; "
          f"replay it yourself: tapewatch replay {tape} --config {out / 'config.toml'}")
    return 0
