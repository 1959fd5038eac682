"""Alertmanager config: amtool checks, and routing, inhibition and grouping as delivered by a
real ``prometheus-alertmanager`` to the real webhook receiver (deploy/webhook/receiver.py)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from tests.prom import DEPLOY, stop
from tests.servers import free_port

CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
RECEIVER = DEPLOY / "webhook" / "receiver.py"


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["amtool", *args], capture_output=True, text=True, timeout=60)


def test_config_is_valid():
    r = amtool("check-config", str(CONFIG))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


@pytest.mark.parametrize("labels, receiver", [
    ("alertname=Deleveraging kind=deleveraging severity=page instrument=USDJPY side=sell", "analysts-page"),
    ("alertname=MomentumBurst kind=burst severity=info instrument=DXY side=buy", "analysts"),
    ("alertname=SteadyFlowEntered kind=steady_flow severity=ticket instrument=UST10Y side=sell", "analysts"),
    ("alertname=KeyLevelCrossed severity=info instrument=DXY level=100", "analysts"),
    ("alertname=TapewatchDown severity=page job=tapewatch", "ops-page"),
    ("alertname=FeedStale severity=ticket job=tapewatch", "ops"),
    ("alertname=ConsumerLagHigh severity=ticket topic=ticks", "ops"),
    ("alertname=CheckpointFailing severity=ticket", "ops"),
    ("alertname=TicksRejectedHigh severity=ticket reason=bad_price", "ops"),
])
def test_routing_tree(labels, receiver):
    r = amtool("config", "routes", "test", f"--config.file={CONFIG}", *labels.split())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [receiver]


def config_for_test(webhook_url: str) -> str:
    """The shipped config with every receiver URL on ``webhook_url`` (same paths), short timers and
    no mute intervals (so the test does not depend on the weekday)."""
    cfg = yaml.safe_load(CONFIG.read_text())
    for receiver in cfg["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = webhook_url + hook["url"].split(":8080", 1)[1]

    def shorten(route: dict) -> None:
        route.pop("mute_time_intervals", None)
        for key, value in (("group_wait", "1s"), ("group_interval", "1s")):
            if key in route or route is cfg["route"]:
                route[key] = value
        for child in route.get("routes", ()):
            shorten(child)
    shorten(cfg["route"])
    cfg.pop("time_intervals")
    return yaml.safe_dump(cfg)


def alert(**labels) -> dict:
    return {"labels": labels, "annotations": {"summary": f"{labels['alertname']} test"}}


@pytest.fixture
def webhook(tmp_path):
    port = free_port()
    log = tmp_path / "webhook.jsonl"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, str(RECEIVER), "--host", "127.0.0.1", "--port", str(port)], stdout=out)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                assert r.read() == b"ok\n"
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop(proc)
                raise RuntimeError("webhook receiver did not start")
            time.sleep(0.05)
    yield url, log
    stop(proc)


def notifications(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_routing_inhibition_and_grouping_as_delivered(webhook, alertmanager_factory):
    url, log = webhook
    am = alertmanager_factory(config_for_test(url))
    batch = [
        alert(alertname="Deleveraging", kind="deleveraging", severity="page", instrument="USDJPY", side="sell"),
        alert(alertname="MomentumBurst", kind="burst", severity="info", instrument="USDJPY", side="sell"),  # inhibited
        alert(alertname="MomentumBurst", kind="burst", severity="info", instrument="DXY", side="buy"),
        alert(alertname="MomentumBurst", kind="burst", severity="info", instrument="DXY", side="sell"),     # same group
        alert(alertname="SteadyFlowEntered", kind="steady_flow", severity="ticket", instrument="UST10Y", side="sell"),
        alert(alertname="KeyLevelCrossed", severity="info", instrument="DXY", level="100", direction="below"),
        alert(alertname="TapewatchDown", severity="page", job="tapewatch", instance="a:9108"),
        alert(alertname="FeedStale", severity="ticket", job="tapewatch", instance="b:9108"),              # inhibited
        alert(alertname="FeedStale", severity="ticket", job="tapewatch-canary", instance="c:9108"),
        alert(alertname="CheckpointFailing", severity="ticket", job="tapewatch", instance="a:9108"),
    ]
    req = urllib.request.Request(f"{am}/api/v2/alerts", data=json.dumps(batch).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200

    expected = {
        ("/alerts/analysts-page", "Deleveraging", "USDJPY"): [("USDJPY", "sell")],
        ("/alerts/analysts", "MomentumBurst", "DXY"): [("DXY", "buy"), ("DXY", "sell")],
        ("/alerts/analysts", "SteadyFlowEntered", "UST10Y"): [("UST10Y", "sell")],
        ("/alerts/analysts", "KeyLevelCrossed", "DXY"): [("DXY", None)],
        ("/alerts/ops-page", "TapewatchDown", None): [(None, None)],
        ("/alerts/ops", "FeedStale", None): [(None, None)],
        ("/alerts/ops", "CheckpointFailing", None): [(None, None)],
    }
    deadline = time.monotonic() + 20
    while len(notifications(log)) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.5)     # two more group intervals: nothing else (no inhibited alert) may arrive

    got = {}
    for n in notifications(log):
        body = n["notification"]
        key = (n["path"], body["groupLabels"]["alertname"], body["groupLabels"].get("instrument"))
        assert key not in got, f"group notified twice: {key}"
        assert body["receiver"] == n["path"].rsplit("/", 1)[1]
        assert body["status"] == "firing"
        got[key] = sorted((a["labels"].get("instrument"), a["labels"].get("side")) for a in body["alerts"])
        if key[1] == "FeedStale":
            assert [a["labels"]["job"] for a in body["alerts"]] == ["tapewatch-canary"]
    assert got == expected
