"""Replay throughput: the tape reader alone, the engine alone, ``replay`` end to end, and baselines.

Writes a synthetic CSV tape (random walks with aggressor sides, int-ns timestamps), then times
in one run, on the same file:

* ``signals.tape.iter_tape`` (pyarrow streaming reader + bad-row accounting), CSV and JSON lines;
* ``Engine.process`` on the already-parsed in-memory batches;
* ``consumers.replay.replay`` end to end (reading one chunk ahead of the engine);
* baselines: ``pyarrow.csv.read_csv`` (multi-threaded, no bad-row accounting), ``pandas.read_csv``
  (when pandas is installed: ``pip install -e '.[bench]'``) and the standard ``csv`` module.

    python benchmarks/bench_replay.py [--rows 5000000] [--instruments 20]
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv


def write_tape(path: Path, rows: int, instruments: int, seed: int = 0) -> None:
    """A CSV tape: Poisson arrivals, random-walk prices to 4 decimals, sides B/S/unknown."""
    rng = np.random.default_rng(seed)
    names = np.array([f"INST{i:03d}" for i in range(instruments)])
    code = rng.integers(0, instruments, rows).astype(np.int32)
    ts = 1_747_612_800_000_000_000 + np.cumsum(rng.exponential(0.02e9, rows)).astype(np.int64)
    steps = rng.standard_normal(rows) * 2e-5
    price = np.empty(rows)
    for i in range(instruments):  # an independent walk per instrument
        sel = code == i
        price[sel] = np.round(100.0 * np.exp(np.cumsum(steps[sel])), 4)
    side = np.array(["B", "S", ""])[rng.integers(0, 3, rows)]
    table = pa.table({"instrument": pa.DictionaryArray.from_arrays(code, names), "ts": ts, "price": price,
                      "size": rng.integers(1, 100, rows).astype(np.float64), "side": side})
    pa_csv.write_csv(table, path, write_options=pa_csv.WriteOptions(quoting_style="none"))


def write_jsonl(csv_path: Path, path: Path, rows: int) -> None:
    t = pa_csv.read_csv(csv_path, convert_options=pa_csv.ConvertOptions(column_types={"side": pa.string()}))
    t = t.slice(0, rows)
    with open(path, "w") as f:
        for r in zip(*(t.column(c).to_pylist() for c in ("instrument", "ts", "price", "size", "side"))):
            f.write('{"instrument":"%s","ts":%d,"price":%r,"size":%r,"side":"%s"}\n' % r)


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--instruments", type=int, default=20)
    ap.add_argument("--csv-module-rows", type=int, default=1_000_000, help="rows for the slow csv-module baseline")
    ap.add_argument("--dir", type=Path, default=None, help="where to write the tapes (default: a temp dir)")
    args = ap.parse_args()

    from consumers.replay import replay
    from signals.engine import Engine
    from signals.tape import iter_tape
    from signals.ticks import TickBatch

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.csv"
        _, dt = timed(lambda: write_tape(path, args.rows, args.instruments))
        mb = path.stat().st_size / 1e6
        print(f"tape: {args.rows:,} rows, {args.instruments} instruments, {mb:,.0f} MB CSV (written in {dt:.1f} s)")
        results: list[tuple[str, int, float, float]] = []

        def record(name, rows, seconds, size_mb):
            results.append((name, rows, seconds, size_mb))

        # warm caches (page cache, numba compilation from its on-disk cache) outside the timings
        Engine().process(TickBatch.from_columns(["W"] * 3, [1, 2, 3], [1.0, 1.0, 1.0], [1.0] * 3))
        sum(len(c.batch) for c in iter_tape(path))

        chunks, dt = timed(lambda: [c.batch for c in iter_tape(path)])
        record("tape reader, CSV (iter_tape)", sum(map(len, chunks)), dt, mb)

        def engine_alone(batches):
            eng = Engine()
            return sum(len(eng.process(b).reason) for b in batches)
        n, dt = timed(lambda: engine_alone(chunks))
        record("engine alone, in-memory batches", n, dt, 0)

        res, dt = timed(lambda: replay(path))
        record("replay end to end (read + engine)", res.summary.rows, dt, mb)

        res, dt = timed(lambda: replay(path, sample_seconds=60.0))
        record("replay end to end, sampling for --report", res.summary.rows, dt, mb)
        chunks.clear()  # free the memory before the baselines

        t, dt = timed(lambda: pa_csv.read_csv(path))
        record("baseline: pyarrow.csv.read_csv (threads)", t.num_rows, dt, mb)
        del t
        try:
            import pandas as pd
            df, dt = timed(lambda: pd.read_csv(path, dtype={"side": str}, keep_default_na=False))
            record("baseline: pandas.read_csv", len(df), dt, mb)
            del df
        except ImportError:
            print("(pandas not installed: pip install -e '.[bench]' for the pandas baseline)")

        def csv_module():
            n = 0
            with open(path, newline="") as f:
                r = csv.reader(f)
                next(r)
                for row in r:
                    int(row[1]), float(row[2]), float(row[3])
                    n += 1
                    if n == args.csv_module_rows:
                        break
            return n
        n, dt = timed(csv_module)
        record("baseline: csv module + int/float", n, dt, mb * n / args.rows)

        jpath = Path(tmp) / "bench.jsonl"
        jrows = min(args.rows, 1_000_000)
        write_jsonl(path, jpath, jrows)
        n, dt = timed(lambda: sum(len(c.batch) for c in iter_tape(jpath)))
        record("tape reader, JSON lines", n, dt, jpath.stat().st_size / 1e6)

        ipath = Path(tmp) / "iso.csv"
        as_text = pa_csv.ConvertOptions(column_types={"side": pa.string()})
        t = pa_csv.read_csv(path, convert_options=as_text).slice(0, jrows)
        iso = pc.strftime(t.column("ts").cast(pa.timestamp("ns", "UTC")), format="%Y-%m-%dT%H:%M:%S")
        t = t.set_column(1, "ts", pc.binary_join_element_wise(iso, pa.scalar("Z"), ""))
        pa_csv.write_csv(t, ipath, write_options=pa_csv.WriteOptions(quoting_style="none"))
        n, dt = timed(lambda: sum(len(c.batch) for c in iter_tape(ipath)))
        record("tape reader, CSV with ISO-8601 times", n, dt, ipath.stat().st_size / 1e6)

    print()
    print(f"{'what':44s} {'rows':>12s} {'seconds':>8s} {'rows/s':>13s} {'MB/s':>7s}")
    for name, rows, seconds, size_mb in results:
        rate = f"{size_mb / seconds:7.0f}" if size_mb else "      -"
        print(f"{name:44s} {rows:12,d} {seconds:8.2f} {rows / seconds:13,.0f} {rate}")


if __name__ == "__main__":
    main()
