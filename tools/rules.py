"""Render the Prometheus rules with compressed time, for end-to-end tests.

The shipped ``deploy/prometheus/rules/tapewatch.rules.yml`` keeps real durations (``for: 5m``,
``increase(...[30m])``). An end-to-end test that replays a tape in seconds needs the same rules
with every ``for:`` (and, optionally, every range in the expressions) multiplied by a factor::

    python tools/rules.py --for-scale 0.01 --range-scale 0.01 /tmp/tapewatch.rules.yml

then load the output with ``tests.prom.start_prometheus(..., rule_files=[path],
evaluation_interval="1s")``. Scaled durations are rounded to milliseconds (at least 1 ms);
annotation templates are left as they are.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "rules" / "tapewatch.rules.yml"

_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_PART = re.compile(r"(\d+)(ms|[ywdhms])")
_DURATION = r"(?:\d+(?:ms|[ywdhms]))+"
_RANGE = re.compile(rf"\[({_DURATION})(?::({_DURATION})?)?\]")


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m`` or ``250ms``."""
    if not re.fullmatch(_DURATION, text):
        raise ValueError(f"{text!r} is not a Prometheus duration; write e.g. '5m', '1h30m' or '250ms'")
    return sum(int(n) * _UNITS[u] for n, u in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest Prometheus duration for ``seconds``, rounded to milliseconds (>= 1 ms unless 0)."""
    if seconds == 0:
        return "0s"
    ms = max(1, round(seconds * 1000))
    out = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = round(_UNITS[unit] * 1000)
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def scale_expr(expr: str, factor: float) -> str:
    """Multiply every range (``[5m]``) and subquery range/step (``[1h:1m]``) in ``expr``."""
    def repl(m: re.Match) -> str:
        rng = format_duration(parse_duration(m.group(1)) * factor)
        if m.group(0).count(":") == 0:
            return f"[{rng}]"
        step = m.group(2)
        return f"[{rng}:{format_duration(parse_duration(step) * factor) if step else ''}]"
    return _RANGE.sub(repl, expr)


def scale_rules(text: str, *, for_scale: float, range_scale: float = 1.0) -> str:
    """Return the rule file ``text`` with ``for:`` times ``for_scale`` and ranges times ``range_scale``."""
    for name, v in (("for_scale", for_scale), ("range_scale", range_scale)):
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    doc = yaml.safe_load(text)
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = format_duration(parse_duration(rule["for"]) * for_scale)
            if range_scale != 1.0:
                rule["expr"] = scale_expr(rule["expr"], range_scale)
    return yaml.dump(doc, Dumper=_BlockDumper, sort_keys=False, width=1000, allow_unicode=True)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (expressions, templates) as ``|`` blocks, like the source file."""


_BlockDumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="file to write")
    p.add_argument("--for-scale", type=float, required=True, help="factor for every 'for:' duration, e.g. 0.01")
    p.add_argument("--range-scale", type=float, default=1.0, help="factor for every [range] in expressions (default: 1)")
    p.add_argument("--rules", type=Path, default=RULES, help=f"rule file to read (default: {RULES})")
    args = p.parse_args(argv)
    try:
        text = scale_rules(args.rules.read_text(encoding="utf-8"), for_scale=args.for_scale, range_scale=args.range_scale)
    except ValueError as e:
        p.error(str(e))
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
