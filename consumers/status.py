"""``tapewatch status [INSTRUMENT...]``: the regimes in the service's Redis checkpoints.

Reads every partition checkpoint of a consumer group and topic (no claim: the running service is
not disturbed), restores them into an :class:`~signals.engine.Engine` and prints each
instrument's regime, side, onset and key statistics as a table, or as JSON with ``--json``.
The figures are as of each partition's last checkpoint (see ``--checkpoint-every-seconds``).
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

import orjson
import redis

from signals.config import EngineConfig, load_config
from signals.engine import Engine

from .options import add_flag, add_option
from .state import Checkpoint, CheckpointStore, connect

#: Statistics shown in the table (all of them are in ``--json``).
TABLE_STATS = ("drift_tstat_900s", "drift_tstat_3600s", "flow_z_900s", "vol_ratio_900s", "jump_z")


def load_engine(store: CheckpointStore, config: EngineConfig | None = None) -> tuple[Engine, list[Checkpoint]]:
    """An engine holding every stored partition checkpoint of ``store``, and those checkpoints."""
    engine = Engine(config)
    checkpoints = store.read_all()
    for c in checkpoints:
        engine.restore(c.state)
    return engine, checkpoints


def _row(status: dict) -> list[str]:
    stats = status["stats"]
    return [status["instrument"], status["regime"], status["side"] or "-", status["since"] or "-",
            status["last_time"] or "-", str(status["ticks"]),
            "-" if status["score"] is None else f"{status['score']:.2f}",
            *(f"{stats[k]:.2f}" for k in TABLE_STATS)]


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def _checkpoint_json(c: Checkpoint) -> dict:
    written = c.meta.get("time")
    return {"partition": c.partition, "offset": c.offset, "epoch": c.epoch, "instruments": c.meta.get("instruments"),
            "written_at": None if written is None else datetime.fromtimestamp(written, timezone.utc).isoformat()}


def main(args: argparse.Namespace) -> int:
    store = CheckpointStore(connect(args.redis_url), group=args.group_id, topic=args.topic)
    try:
        engine, checkpoints = load_engine(store, load_config(args.config))
    except redis.RedisError as e:
        print(f"tapewatch status: cannot read checkpoints from {args.redis_url}: {e}", file=sys.stderr)
        return 1
    finally:
        store.client.close()
    if not checkpoints:
        print(f"tapewatch status: no checkpoints for group {args.group_id!r} and topic {args.topic!r} in "
              f"{args.redis_url}; is `tapewatch run` using the same --redis-url, --group-id and --topic?",
              file=sys.stderr)
        return 1
    known = engine.instruments
    unknown = [n for n in args.instruments if n not in known]
    if unknown:
        print(f"tapewatch status: unknown instrument(s) {', '.join(unknown)}; the checkpoints hold {len(known)} "
              f"instruments: {', '.join(sorted(known)[:20])}{' ...' if len(known) > 20 else ''}", file=sys.stderr)
        return 1
    statuses = [engine.status(n) for n in (args.instruments or sorted(known))]
    if not args.instruments:       # busy instruments first
        statuses.sort(key=lambda s: (s["regime"] == "quiet", s["instrument"]))
    if args.json:
        doc = {"group": args.group_id, "topic": args.topic,
               "partitions": [_checkpoint_json(c) for c in checkpoints], "instruments": statuses}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    newest = max((c.meta.get("time", 0) for c in checkpoints), default=0)
    print(f"{len(checkpoints)} partition checkpoints of group {args.group_id!r}, topic {args.topic!r}; newest written "
          f"{datetime.fromtimestamp(newest, timezone.utc).isoformat(timespec='seconds')}")
    header = ["INSTRUMENT", "REGIME", "SIDE", "SINCE", "LAST TICK", "TICKS", "SCORE", *TABLE_STATS]
    print(_table([_row(s) for s in statuses], header))
    return 0


def register(subparsers) -> None:
    """Add ``tapewatch status``."""
    p = subparsers.add_parser("status", help="show the regimes held in the service's Redis checkpoints",
                              description="Restore the Redis checkpoints of `tapewatch run` and print each "
                                          "instrument's regime, side, onset and key statistics.")
    p.add_argument("instruments", nargs="*", metavar="INSTRUMENT", help="instruments to show (default: all)")
    add_option(p, "--redis-url", default="redis://127.0.0.1:6379/0", help="Redis holding the checkpoints")
    add_option(p, "--group-id", default="tapewatch", help="consumer group id of the service")
    add_option(p, "--topic", default="ticks", help="tick topic of the service")
    add_option(p, "--config", help="engine TOML file (the service's: sides of inverted instruments depend on it)")
    add_flag(p, "--json", help="print JSON instead of a table")
    p.set_defaults(func=main)
