"""Grafana dashboards: generated from tools/dashboards.py, wired to the provisioned datasource,
with the drill-down links the analysts use."""
from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.prom import DASHBOARD_FILES, DEPLOY, REPO

DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DRILL_DOWN = "/d/tapewatch-instrument/"


def board(name: str) -> dict:
    return json.loads((DEPLOY / "grafana" / "dashboards" / name).read_text())


def test_committed_dashboards_match_the_generator(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "tools" / "dashboards.py"), str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    generated = sorted(p.name for p in tmp_path.iterdir())
    assert generated == sorted(p.name for p in DASHBOARD_FILES) == ["instrument.json", "overview.json"]
    stale = [name for name in generated
             if (tmp_path / name).read_text() != (DEPLOY / "grafana" / "dashboards" / name).read_text()]
    assert not stale, f"{stale} differ from tools/dashboards.py output: run `python tools/dashboards.py`"


def test_every_query_uses_the_provisioned_datasource():
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    assert uid == "tapewatch-prometheus"
    for path in DASHBOARD_FILES:
        d = json.loads(path.read_text())
        refs = [p["datasource"] for p in d["panels"] if p["type"] != "row"]
        refs += [t["datasource"] for p in d["panels"] for t in p.get("targets", ())]
        refs += [a["datasource"] for a in d["annotations"]["list"]]
        refs += [v["datasource"] for v in d.get("templating", {}).get("list", [])]
        assert refs and all(r == {"type": "prometheus", "uid": uid} for r in refs), path.name


def test_uids_and_unique_panel_ids():
    assert board("overview.json")["uid"] == "tapewatch-overview"
    assert board("instrument.json")["uid"] == "tapewatch-instrument"
    for name in ("overview.json", "instrument.json"):
        ids = [p["id"] for p in board(name)["panels"]]
        assert len(ids) == len(set(ids)) and 0 not in ids, name


def test_overview_links_every_instrument_to_its_drill_down():
    d = board("overview.json")
    panels = {p.get("title"): p for p in d["panels"]}
    table = panels["Alerts now"]
    (instrument_override,) = [o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "Instrument"]
    (links,) = [prop["value"] for prop in instrument_override["properties"] if prop["id"] == "links"]
    assert links[0]["url"].startswith(DRILL_DOWN) and "var-instrument=${__value.raw}" in links[0]["url"]
    timeline = panels["Regime by instrument"]
    assert timeline["type"] == "state-timeline"
    assert "var-instrument=${__field.labels.instrument}" in timeline["fieldConfig"]["defaults"]["links"][0]["url"]
    (entries,) = d["annotations"]["list"]
    assert "tapewatch_alerts_total" in entries["expr"]
    assert f'{DRILL_DOWN}tapewatch-instrument?var-instrument={{{{instrument}}}}' in entries["textFormat"]


def test_overview_has_the_pipeline_health_panels():
    exprs = " ".join(t["expr"] for p in board("overview.json")["panels"] for t in p.get("targets", ()))
    for metric in ("tapewatch_ticks_total", "tapewatch_ticks_rejected_total", "tapewatch_consumer_lag_messages",
                   "tapewatch_batch_duration_seconds_bucket", "tapewatch_checkpoint_duration_seconds_bucket",
                   "tapewatch_last_checkpoint_timestamp_seconds", "tapewatch_checkpoint_failures_total"):
        assert metric in exprs, metric


def test_instrument_dashboard_is_templated_with_threshold_lines():
    d = board("instrument.json")
    (var,) = d["templating"]["list"]
    assert var["name"] == "instrument" and var["query"] == "label_values(tapewatch_last_price, instrument)"
    for p in d["panels"]:
        for t in p.get("targets", ()):
            if "tapewatch_" in t["expr"]:
                assert 'instrument="$instrument"' in t["expr"], (p["title"], t["expr"])
    drift = next(p for p in d["panels"] if p["title"] == "Drift t-statistics")
    assert drift["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
    levels = [s["value"] for s in drift["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    from signals.config import Thresholds
    th = Thresholds()
    assert {th.steady_tstat, -th.steady_tstat, th.delev_tstat, -th.delev_tstat} <= set(levels)
