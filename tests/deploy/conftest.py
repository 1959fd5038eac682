"""Fixture factories for real Prometheus and Alertmanager processes (see tests/prom.py).

``prometheus_factory(scrape_targets=[...], rule_files=[...], ...)`` and
``alertmanager_factory(config_text)`` start the Debian binaries on free ports and return the base
URL; everything they started is stopped at the end of the test.
"""
from __future__ import annotations

import pytest

from tests.prom import start_alertmanager, start_prometheus, stop


@pytest.fixture
def prometheus_factory(tmp_path):
    started = []

    def start(**kwargs) -> str:
        url, process = start_prometheus(tmp_path, **kwargs)
        started.append(process)
        return url

    yield start
    for process in started:
        stop(process)


@pytest.fixture
def alertmanager_factory(tmp_path):
    started = []

    def start(config_text: str) -> str:
        url, process = start_alertmanager(tmp_path, config_text=config_text)
        started.append(process)
        return url

    yield start
    for process in started:
        stop(process)
