"""Generate the Grafana dashboards from code (grafana-foundation-sdk).

    python tools/dashboards.py [OUTDIR]      # default: deploy/grafana/dashboards

writes ``overview.json`` (uid ``tapewatch-overview``: alerts now, regimes across instruments,
pipeline health) and ``instrument.json`` (uid ``tapewatch-instrument``: one instrument's price,
statistics and regime, template variable ``instrument``). Threshold lines are the engine's
defaults from :class:`signals.config.Thresholds`, so a recalibration shows up here after a
regeneration. tests/deploy/test_dashboards.py fails when the committed files differ from the output.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as pb
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import prometheus as pm

from signals.config import Thresholds

OUT = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards"
DATASOURCE = cm.DataSourceRef(type_val="prometheus", uid="tapewatch-prometheus")
OVERVIEW_UID = "tapewatch-overview"
INSTRUMENT_UID = "tapewatch-instrument"
DRILL_DOWN = f"/d/{INSTRUMENT_UID}/tapewatch-instrument?var-instrument="
TH = Thresholds()

# Regime and side in one number: +-1 steady flow, +-2 burst, +-3 deleveraging; negative = sell.
REGIME_MAPPINGS = [dm.ValueMap(options={
    str(code * sign): dm.ValueMappingResult(text=f"{name} {side}" if code else "quiet", color=color, index=i)
    for i, (code, sign, name, side, color) in enumerate([
        (0, 1, "quiet", "", "transparent"),
        (1, -1, "steady flow", "sell", "blue"), (1, 1, "steady flow", "buy", "green"),
        (2, -1, "burst", "sell", "orange"), (2, 1, "burst", "buy", "yellow"),
        (3, -1, "deleveraging", "sell", "red"), (3, 1, "deleveraging", "buy", "purple"),
    ])
})]
SIDE_MAPPINGS = [dm.ValueMap(options={
    "-1": dm.ValueMappingResult(text="sell", color="red", index=0),
    "0": dm.ValueMappingResult(text="none", color="text", index=1),
    "1": dm.ValueMappingResult(text="buy", color="green", index=2),
})]


def regime_code(matcher: str = "") -> str:
    """PromQL: the signed regime code per instrument (see REGIME_MAPPINGS); ``matcher`` e.g. 'instrument="X"'."""
    extra = f", {matcher}" if matcher else ""
    side = f"tapewatch_regime_side{{{matcher}}}" if matcher else "tapewatch_regime_side"
    return ("(\n"
            f'    max by (instrument) (tapewatch_regime{{regime="steady_flow"{extra}}})\n'
            f'  + 2 * max by (instrument) (tapewatch_regime{{regime="burst"{extra}}})\n'
            f'  + 3 * max by (instrument) (tapewatch_regime{{regime="deleveraging"{extra}}})\n'
            f") * on (instrument) max by (instrument) ({side})")


def query(expr: str, legend: str = "", *, ref: str = "A", instant: bool = False) -> pb.Dataquery:
    q = pb.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    return q.instant().format(pm.PromQueryFormat.TABLE) if instant else q.range()


def now(expr: str) -> pb.Dataquery:
    """A value as of the end of the time range, empty if the series is gone by then (a stat over a
    range query would show the last value the range holds: a regime's onset after it ended)."""
    return pb.Dataquery().expr(expr).ref_id("A").datasource(DATASOURCE).instant()


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in steps])


def symmetric_lines(*levels: float) -> db.ThresholdsConfig:
    """Threshold lines at +-level for a signed statistic, yellow, orange, red outwards."""
    lines = list(zip(sorted(levels), ("yellow", "orange", "red")))
    return thresholds((None, "transparent"), *[(-lv, c) for lv, c in reversed(lines)], *lines)


def series(title: str, *targets: pb.Dataquery, unit: str = "", description: str = "",
           lines: db.ThresholdsConfig | None = None, bars: bool = False, stacked: bool = False,
           h: int = 8, w: int = 12) -> timeseries.Panel:
    p = (timeseries.Panel().title(title).datasource(DATASOURCE).targets(list(targets)).height(h).span(w)
         .legend(cb.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.LIST)
                 .placement(cm.LegendPlacement.BOTTOM))
         .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)))
    if description:
        p = p.description(description)
    if unit:
        p = p.unit(unit)
    if lines is not None:
        p = p.thresholds(lines).thresholds_style(cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.LINE))
    if bars:
        p = p.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80)
    if stacked:
        p = p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)).fill_opacity(40)
    return p


def single(title: str, target: pb.Dataquery, *, unit: str = "", mappings=None, description: str = "",
           h: int = 4, w: int = 4) -> stat.Panel:
    p = (stat.Panel().title(title).datasource(DATASOURCE).with_target(target).height(h).span(w)
         .graph_mode(cm.BigValueGraphMode.NONE).color_mode(cm.BigValueColorMode.VALUE)
         .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    if unit:
        p = p.unit(unit)
    if mappings:
        p = p.mappings(mappings)
    if description:
        p = p.description(description)
    return p


def regime_timeline(title: str, expr: str, *, description: str, links: bool, h: int, w: int = 24) -> statetimeline.Panel:
    p = (statetimeline.Panel().title(title).description(description).datasource(DATASOURCE)
         .with_target(query(expr, "{{instrument}}")).mappings(REGIME_MAPPINGS)
         .show_value(cm.VisibilityMode.NEVER).merge_values(True).row_height(0.8).height(h).span(w)
         .legend(cb.VizLegendOptions().show_legend(False)))
    if links:
        p = p.data_links([db.DashboardLink("Drill down: ${__field.labels.instrument}")
                          .url(DRILL_DOWN + "${__field.labels.instrument}&${__url_time_range}")])
    return p


def entries_annotation(matcher: str, *, link: bool) -> db.AnnotationQuery:
    """Annotations at every regime entry (increase of tapewatch_alerts_total)."""
    text = "{{side}} {{kind}} entered in {{instrument}}"
    if link:
        text += f' - <a href="{DRILL_DOWN}{{{{instrument}}}}">open {{{{instrument}}}}</a>'
    return (db.AnnotationQuery().name("Regime entries").datasource(DATASOURCE).enable(True).icon_color("red")
            .expr(f"sum by (instrument, kind, side) (increase(tapewatch_alerts_total{{{matcher}}}[1m])) > 0")
            .step("1m").title_format("{{kind}} {{side}} {{instrument}}").text_format(text)
            .tag_keys("instrument,kind,side"))


def _finish(board: db.Dashboard) -> str:
    built = board.build()
    for i, panel in enumerate(built.panels or [], start=1):   # stable ids for links and viewPanel
        panel.id_val = i
    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def _dashboard(title: str, uid: str, description: str) -> db.Dashboard:
    return (db.Dashboard(title).uid(uid).description(description).tags(["tapewatch"]).timezone("utc")
            .time("now-6h", "now").refresh("30s").tooltip(dm.DashboardCursorSync.CROSSHAIR).editable())


def overview() -> str:
    active = 'max by (instrument) (tapewatch_regime{regime!="quiet"}) == 1'

    def only_active(expr: str) -> str:
        return f"{expr}\nand on (instrument) ({active})"

    alerts_now = (
        table.Panel().title("Alerts now").datasource(DATASOURCE).height(8).span(24)
        .description("Instruments in a non-quiet regime: kind, side, since when and how strong. "
                     "Click an instrument for its drill-down.")
        .targets([
            query('max by (instrument, regime) (tapewatch_regime{regime!="quiet"} == 1)', ref="A", instant=True),
            query(only_active("max by (instrument) (tapewatch_regime_side)"), ref="B", instant=True),
            query(only_active("max by (instrument) (tapewatch_regime_onset_timestamp_seconds) * 1000"), ref="C",
                  instant=True),
            query(only_active("max by (instrument) (tapewatch_regime_duration_seconds)"), ref="D", instant=True),
            query(only_active('max by (instrument) (tapewatch_drift_tstat{horizon="60s"})'), ref="E", instant=True),
            query(only_active('max by (instrument) (tapewatch_drift_tstat{horizon="3600s"})'), ref="F", instant=True),
        ])
        .with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(dm.DataTransformerConfig(id_val="organize", options={
            "excludeByName": {"Time": True, "Value #A": True},
            "indexByName": {"instrument": 0, "regime": 1, "Value #B": 2, "Value #C": 3, "Value #D": 4,
                            "Value #E": 5, "Value #F": 6},
            "renameByName": {"instrument": "Instrument", "regime": "Kind", "Value #B": "Side",
                             "Value #C": "Since (UTC)", "Value #D": "For", "Value #E": "Drift t 1m",
                             "Value #F": "Drift t 1h"},
        }))
        .sort_by([cb.TableSortByFieldState().display_name("Since (UTC)").desc(True)])
        .override_by_name("Instrument", [dm.DynamicConfigValue(id_val="links", value=[
            {"title": "Drill down: ${__value.raw}", "url": DRILL_DOWN + "${__value.raw}&${__url_time_range}"}])])
        .override_by_name("Side", [dm.DynamicConfigValue(id_val="mappings", value=SIDE_MAPPINGS),
                                   dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"})])
        .override_by_name("Since (UTC)", [dm.DynamicConfigValue(id_val="unit", value="dateTimeAsIso")])
        .override_by_name("For", [dm.DynamicConfigValue(id_val="unit", value="dtdurations")])
        .override_by_regexp("Drift t .*", [dm.DynamicConfigValue(id_val="decimals", value=1)])
    )
    board = (
        _dashboard("tapewatch overview", OVERVIEW_UID,
                   "Regimes across instruments (steady flow, bursts, deleveraging) and pipeline health.")
        .link(db.DashboardLink("Instrument drill-down").type(dm.DashboardLinkType.LINK)
              .url(f"/d/{INSTRUMENT_UID}/tapewatch-instrument").keep_time(True).icon("dashboard"))
        .annotation(entries_annotation("", link=True))
        .with_row(db.Row("Regimes"))
        .with_panel(alerts_now)
        .with_panel(regime_timeline(
            "Regime by instrument", regime_code(), links=True, h=10,
            description="One lane per exported instrument; colour = regime and side. Click a lane for its drill-down."))
        .with_panel(series("Regime entries by kind",
                           query("sum by (kind) (increase(tapewatch_alerts_emitted_total[$__rate_interval]))", "{{kind}}"),
                           bars=True, stacked=True, h=6, w=24,
                           description="Alerts published (regime entries), all instruments."))
        .with_row(db.Row("Pipeline health"))
        .with_panel(single("Replicas up", query('sum(up{job="tapewatch"})')))
        .with_panel(single("Assigned partitions", query("sum(tapewatch_assigned_partitions)")))
        .with_panel(single("Instruments tracked", query("sum(tapewatch_instruments)")))
        .with_panel(single("Latest event time", query('max(tapewatch_last_event_timestamp_seconds{instrument=""}) * 1000'),
                           unit="dateTimeAsIso", description="Event time from the data (a replayed tape is old)."))
        .with_panel(single("Rebalances (range)", query("sum(increase(tapewatch_rebalances_total[$__range]))")))
        .with_panel(single("Dead letters (range)", query("sum(increase(tapewatch_dead_letters_total[$__range]))")))
        .with_panel(series("Ticks per second",
                           query("sum(rate(tapewatch_ticks_total[$__rate_interval]))", "accepted", ref="A"),
                           query("sum(rate(tapewatch_ticks_rejected_total[$__rate_interval]))", "rejected", ref="B"),
                           unit="ops"))
        .with_panel(series("Rejected ticks by reason",
                           query("sum by (reason) (rate(tapewatch_ticks_rejected_total[$__rate_interval])) > 0", "{{reason}}"),
                           unit="ops", stacked=True))
        .with_panel(series("Consumer lag",
                           query("max by (topic, partition) (tapewatch_consumer_lag_messages)", "{{topic}}/{{partition}}"),
                           unit="short", description="Messages not yet consumed per partition (alert: 10000 per topic)."))
        .with_panel(series("Batch latency",
                           query("histogram_quantile(0.5, sum by (le) (rate(tapewatch_batch_duration_seconds_bucket[$__rate_interval])))",
                                 "p50", ref="A"),
                           query("histogram_quantile(0.99, sum by (le) (rate(tapewatch_batch_duration_seconds_bucket[$__rate_interval])))",
                                 "p99", ref="B"),
                           unit="s"))
        .with_panel(series("Checkpoints",
                           query("histogram_quantile(0.99, sum by (le) (rate(tapewatch_checkpoint_duration_seconds_bucket[$__rate_interval])))",
                                 "p99 duration", ref="A"),
                           query("time() - max by (instance) (tapewatch_last_checkpoint_timestamp_seconds)",
                                 "age {{instance}}", ref="B"),
                           unit="s", description="Checkpoint latency and seconds since the last successful one."))
        .with_panel(series("Checkpoint failures",
                           query("sum by (instance) (increase(tapewatch_checkpoint_failures_total[$__rate_interval]))",
                                 "{{instance}}"), bars=True))
    )
    return _finish(board)


def instrument() -> str:
    m = 'instrument="$instrument"'
    sel = "{" + m + "}"
    board = (
        _dashboard("tapewatch instrument", INSTRUMENT_UID,
                   "One instrument: price, regime, and the statistics behind it, with the engine's default thresholds.")
        .with_variable(db.QueryVariable("instrument").label("Instrument").datasource(DATASOURCE)
                       .query("label_values(tapewatch_last_price, instrument)")
                       .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC))
        .link(db.DashboardLink("Overview").type(dm.DashboardLinkType.LINK)
              .url(f"/d/{OVERVIEW_UID}/tapewatch-overview").keep_time(True).icon("dashboard"))
        .annotation(entries_annotation('instrument="$instrument"', link=False))
        .with_panel(single("Regime", query(regime_code(m)), mappings=REGIME_MAPPINGS, w=6))
        .with_panel(single("Since (UTC)", now(f"max(tapewatch_regime_onset_timestamp_seconds{sel}) * 1000"),
                           unit="dateTimeAsIso", w=6, description="Onset of the current regime (none when quiet)."))
        .with_panel(single("For", now(f"max(tapewatch_regime_duration_seconds{sel})"), unit="dtdurations",
                           description="How long the current regime has lasted (none when quiet)."))
        .with_panel(single("Last price", query(f"max(tapewatch_last_price{sel})")))
        .with_panel(single("Jumps (range)", query(f"sum(increase(tapewatch_jumps_total{sel}[$__range]))")))
        .with_panel(series("Price", query(f"max(tapewatch_last_price{sel})", "$instrument"), w=24))
        .with_panel(regime_timeline("Regime", regime_code(m), links=False, h=4,
                                    description="Colour = regime and side."))
        .with_panel(series(
            "Drift t-statistics", query(f"max by (horizon) (tapewatch_drift_tstat{sel})", "{{horizon}}"),
            lines=symmetric_lines(TH.steady_tstat_slow, TH.steady_tstat, TH.delev_tstat),
            description=f"Lines: steady flow 4-h horizon +-{TH.steady_tstat_slow}, steady flow 1-h "
                        f"+-{TH.steady_tstat}, deleveraging 15-min +-{TH.delev_tstat} (default thresholds)."))
        .with_panel(series(
            "Order-flow imbalance z-score", query(f"max by (horizon) (tapewatch_flow_imbalance_zscore{sel})", "{{horizon}}"),
            lines=symmetric_lines(TH.steady_flow_z, TH.delev_flow_z, TH.delev_flow_z_volume),
            description=f"Signed aggressor-flow imbalance; lines at +-{TH.steady_flow_z} (steady flow, 1 h), "
                        f"+-{TH.delev_flow_z} (deleveraging, 15 min) and +-{TH.delev_flow_z_volume} "
                        f"(deleveraging, volume clock)."))
        .with_panel(series(
            "Volatility ratio", query(f"max by (horizon) (tapewatch_volatility_ratio{sel})", "{{horizon}}"),
            lines=thresholds((None, "transparent"), (TH.steady_vol_ratio_max, "yellow"), (TH.burst_vol_ratio, "orange"),
                             (TH.delev_vol_ratio, "red")),
            description=f"Realised volatility / seasonal baseline. Steady flow needs <= {TH.steady_vol_ratio_max}; "
                        f"burst >= {TH.burst_vol_ratio}; deleveraging >= {TH.delev_vol_ratio}."))
        .with_panel(series(
            "Activity and jumps",
            query(f"max(tapewatch_activity_ratio{sel})", "activity ratio", ref="A"),
            query(f"max(tapewatch_jump_zscore{sel})", "jump z", ref="B"),
            query(f"max(tapewatch_jump_variance_ratio{sel})", "jump variance share", ref="C"),
            description=f"Bursts need activity >= {TH.burst_activity_ratio}x baseline."))
        .with_panel(series(
            "TWAP fingerprint and absorption",
            query(f"max(tapewatch_fingerprint_tstat{sel})", "fingerprint t", ref="A"),
            query(f"max(tapewatch_absorption_zscore{sel})", "absorption z", ref="B"),
            description="Same-time-each-session drift (a TWAP parent order) and price impact per unit of flow."))
        .with_panel(series("Jumps", query(f"sum(increase(tapewatch_jumps_total{sel}[$__rate_interval]))", "jumps"),
                           bars=True))
    )
    return _finish(board)


DASHBOARDS = {"overview.json": overview, "instrument.json": instrument}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir", nargs="?", type=Path, default=OUT, help=f"where to write the JSON files (default: {OUT})")
    out = p.parse_args(argv).outdir
    out.mkdir(parents=True, exist_ok=True)
    for name, build in DASHBOARDS.items():
        (out / name).write_text(build(), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
