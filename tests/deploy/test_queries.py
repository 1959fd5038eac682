"""Every PromQL expression in the dashboards and the rules parses in a real Prometheus, and
names only metrics of the exporter contract (docs/metrics.md) or of our recording rules."""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from tests.prom import RULE_FILES, dashboard_queries, rule_exprs, start_prometheus, stop

QUERIES = dashboard_queries() + rule_exprs()

#: The exporter's metric names (consumers/metrics.py); histograms also have _bucket/_sum/_count.
CONTRACT = {
    "tapewatch_regime", "tapewatch_regime_side", "tapewatch_regime_onset_timestamp_seconds",
    "tapewatch_regime_duration_seconds", "tapewatch_drift_tstat", "tapewatch_flow_imbalance_zscore",
    "tapewatch_volatility_ratio", "tapewatch_activity_ratio", "tapewatch_jump_zscore",
    "tapewatch_jump_variance_ratio", "tapewatch_fingerprint_tstat", "tapewatch_absorption_zscore",
    "tapewatch_last_price", "tapewatch_last_event_timestamp_seconds", "tapewatch_jumps_total",
    "tapewatch_alerts_total", "tapewatch_ticks_total", "tapewatch_ticks_rejected_total",
    "tapewatch_dead_letters_total", "tapewatch_last_processed_timestamp_seconds",
    "tapewatch_consumer_lag_messages", "tapewatch_assigned_partitions", "tapewatch_rebalances_total",
    "tapewatch_checkpoint_failures_total", "tapewatch_last_checkpoint_timestamp_seconds", "tapewatch_instruments",
    "tapewatch_build_info", "tapewatch_alerts_emitted_total",
    *(f"{h}{suffix}" for h in ("tapewatch_batch_duration_seconds", "tapewatch_checkpoint_duration_seconds")
      for suffix in ("_bucket", "_sum", "_count")),
}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    url, process = start_prometheus(tmp_path_factory.mktemp("prom"), scrape_targets=())
    yield url
    stop(process)


@pytest.mark.parametrize("query", QUERIES, ids=[q.where for q in QUERIES])
def test_query_parses(prometheus, query):
    try:
        with urllib.request.urlopen(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': query.expr})}",
                                    timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    assert body["status"] == "success", f"{query.where}: {body.get('error')}\n{query.expr}"


def test_queries_name_only_known_metrics():
    recorded = {rule["record"] for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
                for rule in group["rules"] if "record" in rule}
    assert len(QUERIES) > 40
    for q in QUERIES:
        names = {n for n in re.findall(r"[A-Za-z_:][\w:]*", q.expr) if "tapewatch_" in n}
        assert names <= CONTRACT | recorded, f"{q.where}: unknown metrics {sorted(names - CONTRACT - recorded)}"
