"""Kafka connection options shared by ``tapewatch publish`` and ``tapewatch run``.

:func:`add_kafka_options` declares the connection flags (each also read from a
``TAPEWATCH_*`` environment variable); :func:`consumer_config` and :func:`producer_config`
turn the parsed namespace into kafka-python keyword arguments with the throughput
tuning below already applied.

Example
-------
>>> import argparse
>>> p = argparse.ArgumentParser()
>>> add_kafka_options(p)
>>> cfg = consumer_config(p.parse_args(["--bootstrap-servers", "k1:9092,k2:9092"]))
>>> cfg["bootstrap_servers"], cfg["max_poll_records"]
(['k1:9092', 'k2:9092'], 20000)
"""
from __future__ import annotations

import argparse
from typing import Any

from signals.errors import ConfigError

from consumers.options import add_option, positive

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

#: Consumer settings for high-rate tick topics. kafka-python reaches its best rate on small
#: JSON messages only with large fetches and many records per poll (and the ``crc32c``
#: package installed for CRC checks). A short fetch wait: against Tansu it cut the delivery
#: latency of paced ticks from ~33 ms to ~11 ms (p50) at no cost in bulk throughput.
CONSUMER_TUNING: dict[str, Any] = {
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 16 * 1024 * 1024,
    "fetch_min_bytes": 1,
    "fetch_max_wait_ms": 10,
    "max_poll_records": 20_000,
    "receive_buffer_bytes": 4 * 1024 * 1024,
}

#: Producer settings: large batches with a short linger (5 ms: the same JSON publish rate as
#: 20 ms, since kafka-python's per-message cost is the limit, but 15 ms less on every alert),
#: no compression (lz4 is not a dependency; the others cost more CPU than they save on a local
#: network). kafka-python's defaults ``enable_idempotence=True, acks="all"`` are kept: retries
#: never reorder one instrument's ticks (costs ~7% of JSON publish throughput against Tansu).
PRODUCER_TUNING: dict[str, Any] = {
    "linger_ms": 5,
    "batch_size": 1024 * 1024,
    "max_request_size": 16 * 1024 * 1024,
    "send_buffer_bytes": 4 * 1024 * 1024,
}


class Secret:
    """A string kept out of ``--help``, reprs and logs; ``.value`` holds the text."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"


def add_kafka_options(parser: argparse.ArgumentParser) -> None:
    """Declare the Kafka connection options on ``parser`` (an argument group in ``--help``)."""
    g = parser.add_argument_group("Kafka connection")
    add_option(g, "--bootstrap-servers", default="127.0.0.1:9092",
               help="comma-separated host:port list of Kafka brokers")
    add_option(g, "--client-id", default="tapewatch", help="client id reported to the brokers")
    add_option(g, "--bootstrap-timeout", type=positive(float), default=30.0,
               help="seconds to wait for the first broker connection before giving up")
    add_option(g, "--security-protocol", default="PLAINTEXT", choices=SECURITY_PROTOCOLS,
               help="how to talk to the brokers")
    add_option(g, "--sasl-mechanism", choices=SASL_MECHANISMS,
               help="SASL mechanism; needs --security-protocol SASL_PLAINTEXT or SASL_SSL")
    add_option(g, "--sasl-username", help="SASL user name")
    add_option(g, "--sasl-password", type=Secret, help="SASL password (prefer the environment variable)")
    add_option(g, "--ssl-cafile", help="PEM file of CA certificates to verify the brokers")
    add_option(g, "--ssl-certfile", help="PEM client certificate (mutual TLS)")
    add_option(g, "--ssl-keyfile", help="PEM private key of the client certificate")


def kafka_config(args: argparse.Namespace) -> dict[str, Any]:
    """kafka-python connection keyword arguments (common to producers, consumers and admin clients).

    Raises
    ------
    ConfigError
        If the security options do not fit together.
    """
    servers = [s.strip() for s in args.bootstrap_servers.split(",") if s.strip()]
    if not servers:
        raise ConfigError("--bootstrap-servers is empty; write host:port[,host:port...]")
    proto = args.security_protocol
    cfg: dict[str, Any] = {"bootstrap_servers": servers, "client_id": args.client_id, "security_protocol": proto,
                           "bootstrap_timeout_ms": int(args.bootstrap_timeout * 1000)}
    if proto.startswith("SASL_"):
        if not args.sasl_mechanism:
            raise ConfigError(f"--security-protocol {proto} needs --sasl-mechanism ({', '.join(SASL_MECHANISMS)})")
        if not args.sasl_username or args.sasl_password is None:
            raise ConfigError(f"--sasl-mechanism {args.sasl_mechanism} needs --sasl-username and --sasl-password")
        cfg.update(sasl_mechanism=args.sasl_mechanism, sasl_plain_username=args.sasl_username,
                   sasl_plain_password=args.sasl_password.value)
    elif args.sasl_mechanism or args.sasl_username or args.sasl_password is not None:
        raise ConfigError(f"SASL options need --security-protocol SASL_PLAINTEXT or SASL_SSL, got {proto}")
    ssl = {k: getattr(args, k) for k in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")}
    if any(ssl.values()):
        if not proto.endswith("SSL"):
            raise ConfigError(f"TLS options need --security-protocol SSL or SASL_SSL, got {proto}")
        cfg.update({k: v for k, v in ssl.items() if v})
    return cfg


def consumer_config(args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    """Connection options + :data:`CONSUMER_TUNING` + ``overrides`` (e.g. ``group_id``)."""
    return {**kafka_config(args), **CONSUMER_TUNING, **overrides}


def producer_config(args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    """Connection options + :data:`PRODUCER_TUNING` + ``overrides``."""
    return {**kafka_config(args), **PRODUCER_TUNING, **overrides}
