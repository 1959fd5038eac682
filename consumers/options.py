"""Command-line options that can also come from ``TAPEWATCH_*`` environment variables.

Every option is declared once with :func:`add_option`; ``--help`` shows its env var, and a
value from the environment is parsed and validated exactly like one from the command line.
Precedence: command line > environment > config file > default.
"""
from __future__ import annotations

import argparse
import os
from typing import Any, Callable

from signals.errors import ConfigError

ENV_PREFIX = "TAPEWATCH_"


def env_name(flag: str) -> str:
    """``--bootstrap-servers`` -> ``TAPEWATCH_BOOTSTRAP_SERVERS``."""
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def add_option(parser: argparse.ArgumentParser, flag: str, *, type: Callable[[str], Any] = str,
               default: Any = None, help: str, choices=None, env: bool = True, **kw) -> None:
    """Declare ``flag``; its default is read from ``TAPEWATCH_<FLAG>`` when set.

    A bad environment value fails at start with the variable's name in the message.
    """
    var = env_name(flag)
    if env and var in os.environ:
        raw = os.environ[var]
        try:
            default = type(raw)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"environment variable {var}={raw!r} is invalid: {e}") from None
        if choices is not None and default not in choices:
            raise ConfigError(f"environment variable {var}={raw!r} must be one of {', '.join(map(str, choices))}")
    shown = f" [env: {var}]" if env else ""
    dflt = f" (default: {default})" if default not in (None, "", False) else ""
    parser.add_argument(flag, type=type, default=default, choices=choices, help=f"{help}{dflt}{shown}", **kw)


def add_flag(parser: argparse.ArgumentParser, flag: str, *, help: str) -> None:
    """A boolean switch; ``TAPEWATCH_<FLAG>=1|true|yes`` turns it on."""
    var = env_name(flag)
    raw = os.environ.get(var, "")
    if raw and raw.lower() not in ("1", "true", "yes", "0", "false", "no"):
        raise ConfigError(f"environment variable {var}={raw!r} must be true or false")
    default = raw.lower() in ("1", "true", "yes")
    parser.add_argument(flag, action="store_true", default=default, help=f"{help} [env: {var}]")


def positive(cast: Callable[[str], Any]) -> Callable[[str], Any]:
    """A type that accepts only values > 0, with a precise message."""
    def conv(text: str):
        v = cast(text)
        if not v > 0:
            raise ValueError(f"must be > 0, got {text}")
        return v
    conv.__name__ = f"positive {cast.__name__}"
    return conv
