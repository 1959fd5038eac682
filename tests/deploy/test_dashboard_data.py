"""Every Grafana panel, variable and annotation query returns data from a real Prometheus that
scraped a real ``tapewatch run`` fed by ``tapewatch publish`` (the tape of tests/test_e2e.py: a
steady Treasury seller, a dollar sell burst, a quiet control, out-of-order ticks).

No query is exempt: the tape is built so that every panel has data on it (rejected ticks, regime
entries within the last minute, a non-quiet regime for the drill-down's "since" and "for").
"""
from __future__ import annotations

import pytest

from tests.prom import dashboard_queries
from tests.stack import running_stack


@pytest.mark.integration
def test_every_dashboard_query_returns_data(tmp_path, kafka_broker, redis_server, unique_name):
    dxy = dashboard_queries({"instrument": "DXY"})                     # in a sell burst
    ust = [q for q in dashboard_queries({"instrument": "UST10Y"}) if "UST10Y" in q.expr]   # steady seller
    assert len(dxy) > 20 and ust
    with running_stack(tmp_path, kafka_broker, redis_server, unique_name) as stack:
        stack.feed_tape()
        # windows like [1m] must hold samples from before and after the tape was processed
        stack.wait("a few scrapes after the burst", lambda: stack.query(
            'count_over_time(tapewatch_regime{instrument="DXY",regime="burst"}[1m]) >= 3'))
        empty = [f"{q.where}: {q.expr}" for q in dxy + ust if not stack.query(q.expr)]
    assert not empty, "queries without data:\n" + "\n".join(empty)
