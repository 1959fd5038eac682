"""consumers.kafka_options: one set of Kafka connection flags for publish and run."""
from __future__ import annotations

import argparse

import pytest

from consumers.kafka_options import (CONSUMER_TUNING, PRODUCER_TUNING, add_kafka_options, consumer_config,
                                     kafka_config, producer_config)
from signals.errors import ConfigError


def parse(argv=()):
    p = argparse.ArgumentParser()
    add_kafka_options(p)
    return p, p.parse_args(list(argv))


def test_defaults_and_tuning():
    _, args = parse()
    assert kafka_config(args) == {"bootstrap_servers": ["127.0.0.1:9092"], "client_id": "tapewatch",
                                  "security_protocol": "PLAINTEXT", "bootstrap_timeout_ms": 30000}
    assert consumer_config(args, group_id="g")["group_id"] == "g"
    assert consumer_config(args)["max_poll_records"] == CONSUMER_TUNING["max_poll_records"]
    assert producer_config(args, linger_ms=0)["linger_ms"] == 0
    assert producer_config(args)["batch_size"] == PRODUCER_TUNING["batch_size"]


def test_sasl_ssl_from_environment(monkeypatch):
    monkeypatch.setenv("TAPEWATCH_BOOTSTRAP_SERVERS", " k1:9093, k2:9093 ")
    monkeypatch.setenv("TAPEWATCH_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TAPEWATCH_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TAPEWATCH_SASL_USERNAME", "svc")
    monkeypatch.setenv("TAPEWATCH_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("TAPEWATCH_SSL_CAFILE", "/etc/ca.pem")
    p, args = parse()
    cfg = kafka_config(args)
    assert cfg["bootstrap_servers"] == ["k1:9093", "k2:9093"]
    assert (cfg["sasl_mechanism"], cfg["sasl_plain_username"], cfg["sasl_plain_password"]) == \
        ("SCRAM-SHA-512", "svc", "hunter2")
    assert cfg["ssl_cafile"] == "/etc/ca.pem"
    text = p.format_help()
    assert "TAPEWATCH_SASL_PASSWORD" in text and "hunter2" not in text     # the secret is not shown
    assert "hunter2" not in repr(args)


@pytest.mark.parametrize("argv, message", [
    (["--bootstrap-servers", " , "], "--bootstrap-servers is empty"),
    (["--security-protocol", "SASL_PLAINTEXT"], "needs --sasl-mechanism"),
    (["--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN", "--sasl-username", "u"],
     "needs --sasl-username and --sasl-password"),
    (["--sasl-username", "u"], "SASL options need --security-protocol SASL_PLAINTEXT or SASL_SSL, got PLAINTEXT"),
    (["--ssl-cafile", "/ca.pem"], "TLS options need --security-protocol SSL or SASL_SSL, got PLAINTEXT"),
])
def test_inconsistent_security_options(argv, message):
    _, args = parse(argv)
    with pytest.raises(ConfigError, match=message):
        kafka_config(args)


def test_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("TAPEWATCH_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ConfigError, match="TAPEWATCH_SECURITY_PROTOCOL='TLS' must be one of PLAINTEXT, SSL"):
        parse()
