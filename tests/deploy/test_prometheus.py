"""Prometheus config and rules: promtool checks, rule unit tests, rule conventions, --for-scale."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.prom import DEPLOY, REPO, RULE_FILES

PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
RUNBOOK = REPO / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/tapewatch/tapewatch/blob/main/docs/runbook.md#"
REGIME_ALERTS = {"SteadyFlowEntered": "steady_flow", "MomentumBurst": "burst", "Deleveraging": "deleveraging"}
REQUIRED_ALERTS = {*REGIME_ALERTS, "KeyLevelCrossed", "FeedStale", "ConsumerLagHigh", "CheckpointFailing",
                   "TapewatchDown", "TicksRejectedHigh"}


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60)


def alerts() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|[smhd])", duration))


def test_prometheus_config_is_valid():
    r = promtool("check", "config", str(PROMETHEUS_YML))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 rule files found" in r.stdout


def test_rule_files_are_valid():
    r = promtool("check", "rules", *map(str, RULE_FILES))
    assert r.returncode == 0, r.stdout + r.stderr


def test_rule_unit_tests_pass():
    assert RULE_TESTS
    r = promtool("test", "rules", *map(str, RULE_TESTS))
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_is_tested_firing_and_one_evaluation_before():
    """Each alert has a test that expects it firing at T and not yet firing one evaluation earlier."""
    firing: dict[str, set[float]] = {}
    silent: dict[str, set[float]] = {}
    for path in RULE_TESTS:
        doc = yaml.safe_load(path.read_text())
        step = seconds(doc.get("evaluation_interval", "1m"))
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", ()):
                bucket = firing if case.get("exp_alerts") else silent
                bucket.setdefault(case["alertname"], set()).add(round(seconds(case["eval_time"]) - (step if bucket is firing else 0), 3))
    names = {rule["alert"] for rule in alerts()}
    assert REQUIRED_ALERTS <= names
    untested = sorted(n for n in names if not firing.get(n, set()) & silent.get(n, set()))
    assert not untested, f"alerts without a firing/just-before pair of unit tests: {untested}"


def test_alert_labels_and_annotations_follow_the_conventions():
    anchors = {re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-"))
               for h in re.findall(r"^## (.+)$", RUNBOOK.read_text(), re.M)}
    for rule in alerts():
        name, labels, ann = rule["alert"], rule.get("labels", {}), rule.get("annotations", {})
        assert labels.get("severity") in ("page", "ticket", "info"), name
        if name in REGIME_ALERTS:
            assert labels.get("kind") == REGIME_ALERTS[name], name
        assert {"summary", "description", "runbook_url", "dashboard_url"} <= set(ann), name
        assert "{{" in ann["description"], f"{name}: description should use $value or labels"
        assert ann["runbook_url"] == RUNBOOK_URL + name.lower(), name
        assert name.lower() in anchors, f"docs/runbook.md has no '## {name}' section"
        if name in {*REGIME_ALERTS, "KeyLevelCrossed"}:
            assert ann["dashboard_url"].startswith("/d/tapewatch-instrument/")
            assert ann["dashboard_url"].endswith("var-instrument={{ $labels.instrument }}")
        else:
            assert ann["dashboard_url"].startswith("/d/tapewatch-overview/"), name


def test_key_level_rules_are_a_marked_example():
    groups = {g["name"]: g for g in yaml.safe_load(RULE_FILES[0].read_text())["groups"]}
    assert [r["expr"] for r in groups["tapewatch.levels.example"]["rules"]] == [
        'max by (instrument) (tapewatch_last_price{instrument="DXY"}) < 100',
        'max by (instrument) (tapewatch_last_price{instrument="DXY"}) > 103',
    ]


def test_for_scale_renders_time_compressed_rules(tmp_path):
    out = tmp_path / "scaled.rules.yml"
    before = RULE_FILES[0].read_text()
    r = subprocess.run([sys.executable, str(REPO / "tools" / "rules.py"), "--for-scale", "0.01",
                        "--range-scale", "0.01", str(out)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert RULE_FILES[0].read_text() == before
    check = promtool("check", "rules", str(out))
    assert check.returncode == 0, check.stdout + check.stderr
    scaled = {rule.get("alert") or rule["record"]: rule
              for group in yaml.safe_load(out.read_text())["groups"] for rule in group["rules"]}
    assert scaled["SteadyFlowEntered"]["for"] == "3s"            # 5m
    assert scaled["MomentumBurst"]["for"] == "300ms"             # 30s
    assert "[18s]" in scaled["SteadyFlowEntered"]["expr"]        # 30m
    assert "[6s]" in scaled["FeedStale"]["expr"]                 # 10m
    assert scaled["SteadyFlowEntered"]["annotations"] == next(
        a for a in alerts() if a["alert"] == "SteadyFlowEntered")["annotations"]


@pytest.mark.parametrize("args, message", [
    (["--for-scale", "0"], "for_scale must be > 0"),
    (["--for-scale", "0.1", "--range-scale", "-1"], "range_scale must be > 0"),
])
def test_for_scale_rejects_bad_factors(tmp_path, args, message):
    r = subprocess.run([sys.executable, str(REPO / "tools" / "rules.py"), *args, str(tmp_path / "x.yml")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and message in r.stderr
    assert not Path(tmp_path / "x.yml").exists()
