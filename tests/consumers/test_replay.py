"""``tapewatch replay`` and ``tapewatch demo``, in process and as a real subprocess."""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys

import orjson
import pytest

from consumers.cli import main
from consumers.replay import _Progress, replay
from signals.engine import EVIDENCE_NAMES, Engine
from signals.tape import read_tape

ALERT_FIELDS = {"id", "event", "instrument", "kind", "side", "ts", "onset_ts", "time", "onset_time", "score",
                "evidence"}


@pytest.fixture(scope="module")
def tape_csv(regime_tape, tmp_path_factory):
    """The shared regime tape as a CSV file (header instrument,ts,price,size,side)."""
    t = regime_tape.ticks
    path = tmp_path_factory.mktemp("replay") / "tape.csv"
    sides = {1: "B", -1: "S", 0: ""}
    with open(path, "w") as f:
        f.write("instrument,ts,price,size,side\n")
        f.writelines(f"{n},{ts},{p!r},{s!r},{sides[d]}\n" for n, ts, p, s, d in
                     zip(t.instrument_names().tolist(), t.ts.tolist(), t.price.tolist(), t.size.tolist(),
                         t.side.tolist()))
    return path


@pytest.fixture(scope="module")
def reference(regime_tape):
    """Transitions of the engine run directly on the in-memory ticks."""
    return Engine(regime_tape.config).process(regime_tape.ticks).transitions


def read_jsonl(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_replay_writes_every_alert_as_a_json_line(tape_csv, regime_tape, reference, tmp_path, capsys):
    alerts, exits = tmp_path / "out" / "alerts.jsonl", tmp_path / "exits.jsonl"
    code = main(["replay", str(tape_csv), "--config", str(regime_tape.config_path),
                 "--alerts-out", str(alerts), "--exits-out", str(exits)])
    assert code == 0
    lines = read_jsonl(alerts)
    assert lines, "the regime tape has regime entries"
    for a in lines:
        assert set(a) == ALERT_FIELDS and a["event"] == "enter"
        assert re.fullmatch(r"[0-9a-f]{16}", a["id"]) and isinstance(a["ts"], int) and isinstance(a["onset_ts"], int)
        assert a["onset_ts"] <= a["ts"] and a["side"] in ("sell", "buy")
        assert a["kind"] in ("steady_flow", "burst", "deleveraging") and list(a["evidence"]) == list(EVIDENCE_NAMES)
        assert a["time"].endswith("Z") and a["onset_time"].endswith("Z")
    # exactly what the engine gives on the same ticks in memory
    assert lines == [t.to_dict() for t in reference if t.event == "enter"]
    ends = read_jsonl(exits)
    assert ends == [t.to_dict() for t in reference if t.event != "enter"]
    assert {e["event"] for e in ends} <= {"exit", "resume"} and {e["id"] for e in ends} <= {a["id"] for a in lines}
    out = capsys.readouterr().out
    assert re.search(r"^instrument\s+regimes entered\s+time in regime\s+now", out, re.M)
    for name in ("BUND", "CSI300ETF", "USDJPY"):
        assert re.search(rf"^{name}\s", out, re.M)
    assert "rejected rows: none" in out and f"alerts: {len(lines)} written to {alerts}" in out


def test_a_history_tape_warms_the_engine_and_its_alerts_are_not_written(tape_csv, regime_tape, reference, tmp_path,
                                                                          capsys):
    # the tape cut in two inside its burst: the first part, with the burst's entry, is the
    # history of the second, with its exit
    enter = next(t for t in reference if t.event == "enter")
    leave = next(t for t in reference if t.event == "exit" and t.id == enter.id)
    cut = (enter.ts + leave.ts) // 2
    header, *rows = tape_csv.read_text().splitlines()
    ts = [int(r.split(",")[1]) for r in rows]
    assert ts == sorted(ts)
    past, rest = tmp_path / "history.csv", tmp_path / "rest.csv"
    past.write_text("\n".join([header, *(r for r, t in zip(rows, ts) if t < cut), "BUND,not-a-time,1,1,B"]) + "\n")
    rest.write_text("\n".join([header, *(r for r, t in zip(rows, ts) if t >= cut)]) + "\n")
    alerts, exits = tmp_path / "alerts.jsonl", tmp_path / "exits.jsonl"
    code = main(["replay", str(rest), "--config", str(regime_tape.config_path), "--history", str(past),
                 "--alerts-out", str(alerts), "--exits-out", str(exits)])
    assert code == 0
    # exactly the whole tape's transitions after the cut: the history's alert is not written,
    # and the burst it entered is still there to be left
    assert read_jsonl(alerts) == [t.to_dict() for t in reference if t.event == "enter" and t.ts >= cut]
    assert read_jsonl(exits) == [t.to_dict() for t in reference if t.event != "enter" and t.ts >= cut]
    assert leave.to_dict() in read_jsonl(exits)
    # a cold engine on the second part alone has no burst to leave
    assert leave.id not in {t.id for t in replay(rest, regime_tape.config).transitions}
    out = capsys.readouterr().out
    n_past = sum(t < cut for t in ts) + 1
    assert re.search(rf"^history: {re.escape(str(past))}: {n_past:,} rows replayed first, 1 rejected \(bad_ts 1\)$",
                     out, re.M)
    assert "rejected rows: none" in out


def test_replay_with_bad_rows_completes_and_reports_them(tape_csv, regime_tape, reference, tmp_path, capsys):
    lines = tape_csv.read_text().splitlines(keepends=True)
    bad = lines[:3] + ["UST10Y,123\n", "BUND,notatime,1,1,B\n"] + lines[3:10] + ["BUND,17,-5,1,B\n"] + lines[10:]
    path = tmp_path / "bad.csv"
    path.write_text("".join(bad))
    alerts = tmp_path / "alerts.jsonl"
    assert main(["replay", str(path), "--config", str(regime_tape.config_path), "--alerts-out", str(alerts)]) == 0
    out = capsys.readouterr().out
    assert "rejected rows: " in out
    for reason, line in (("malformed", 4), ("bad_ts", 5), ("bad_price", 13)):
        assert f"{reason} 1 (line {line})" in out
    assert read_jsonl(alerts) == [t.to_dict() for t in reference if t.event == "enter"]


def test_engine_rejects_are_reported_with_their_lines(tmp_path):
    path = tmp_path / "ooo.csv"
    t0 = 1_747_747_800 * 10**9
    rows = [f"A,{t0 + i * 10**9},100,1,B" for i in range(20)]
    rows.insert(12, f"A,{t0},100,1,B")    # 11 s older than its predecessor (tolerance 2 s)
    path.write_text("instrument,ts,price,size,side\n" + "\n".join(rows) + "\n")
    result = replay(path)
    assert result.summary.reasons == {"out_of_order": 1}
    assert result.summary.bad_lines == [(14, "out_of_order")] and result.summary.accepted == 20


def test_instruments_taken_as_yields_by_their_names_are_named_in_the_summary(tmp_path, capsys):
    path = tmp_path / "yields.csv"
    t0 = 1_747_747_800 * 10**9
    rows = [f"{name},{t0 + i * 10**9},{p},1," for i in range(20) for name, p in (("UST10Y", 4.4), ("SPY", 590))]
    path.write_text("instrument,ts,price,size,side\n" + "\n".join(rows) + "\n")
    assert main(["replay", str(path)]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("taken as yields")]
    assert line and "UST10Y" in line[0] and "SPY" not in line[0]
    cfg = tmp_path / "c.toml"
    cfg.write_text("[instruments.UST10Y]\ninvert = true\n")
    assert main(["replay", str(path), "--config", str(cfg)]) == 0
    assert "taken as yields" not in capsys.readouterr().out


def test_bad_config_exits_2_with_the_message(tape_csv, tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[thresholds]\nsteady_tstat = -1\n")
    assert main(["replay", str(tape_csv), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "tapewatch: error: thresholds.steady_tstat must be >= 0, got -1" in err


def test_unreadable_input_exits_2(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nope.csv")]) == 2
    assert "cannot read tape" in capsys.readouterr().err
    missing = tmp_path / "cols.csv"
    missing.write_text("instrument,ts,size\nA,1,1\n")
    assert main(["replay", str(missing)]) == 2
    assert "has no column 'price'" in capsys.readouterr().err


def test_a_tape_corrupt_midway_stops_with_exit_2(tape_csv, tmp_path, capsys):
    import gzip

    data = gzip.compress(tape_csv.read_bytes())
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(data[: len(data) // 2])
    assert main(["replay", str(path)]) == 2
    assert "cannot be read past this point" in capsys.readouterr().err


def test_options_come_from_the_environment(tape_csv, regime_tape, tmp_path, monkeypatch, capsys):
    alerts = tmp_path / "env-alerts.jsonl"
    monkeypatch.setenv("TAPEWATCH_ALERTS_OUT", str(alerts))
    monkeypatch.setenv("TAPEWATCH_CONFIG", str(regime_tape.config_path))
    assert main(["replay", str(tape_csv)]) == 0
    assert read_jsonl(alerts)
    monkeypatch.setenv("TAPEWATCH_SAMPLE_SECONDS", "-3")
    assert main(["replay", str(tape_csv)]) == 2
    assert "TAPEWATCH_SAMPLE_SECONDS" in capsys.readouterr().err


def test_help_lists_env_vars(capsys):
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    out = capsys.readouterr().out
    for var in ("TAPEWATCH_CONFIG", "TAPEWATCH_HISTORY", "TAPEWATCH_ALERTS_OUT", "TAPEWATCH_EXITS_OUT", "TAPEWATCH_REPORT"):
        assert var in out


def test_tapewatch_replay_subprocess(tape_csv, regime_tape, reference, tmp_path):
    exe = shutil.which("tapewatch")
    assert exe, "the tapewatch console script is installed by pip install -e ."
    alerts, report = tmp_path / "alerts.jsonl", tmp_path / "report.html"
    proc = subprocess.run([exe, "replay", str(tape_csv), "--alerts-out", str(alerts), "--report", str(report)],
                          env={**os.environ, "TAPEWATCH_CONFIG": str(regime_tape.config_path)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert read_jsonl(alerts) == [t.to_dict() for t in reference if t.event == "enter"]
    page = report.read_text()
    assert page.count("<section") == 3 and 'class="alert"' in page
    assert f"report: {report}" in proc.stdout


def test_demo_writes_tape_alerts_and_report(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("demo.csv", "alerts.jsonl", "report.html"):
        assert (out / name).stat().st_size > 0 and str(out / name) in printed
    batch, summary = read_tape(out / "demo.csv")
    assert summary.rejected == 0 and set(batch.instruments) == {"BUND", "CSI300ETF", "DXY", "USDJPY", "UST10Y"}
    assert all(a["event"] == "enter" for a in read_jsonl(out / "alerts.jsonl"))
    page = (out / "report.html").read_text()
    assert page.count("<section") == 5 and "known episodes" in page


def test_progress_on_a_terminal_redraws_one_line():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    p = _Progress(stream)
    p.start -= 2.0
    p.last -= 1.0
    p.update(2_000_000, 50, 200)
    text = stream.getvalue()
    assert text.startswith("\r") and "2,000,000 rows" in text and "25% of file" in text and "ticks/s" in text
    p.finish()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_progress_to_a_file_is_rate_limited():
    stream = io.StringIO()
    p = _Progress(stream)
    p.update(10, 1, 2)
    assert stream.getvalue() == ""        # not yet 5 s
    p.last -= 6.0
    p.update(10, 1, 2)
    assert stream.getvalue().count("\n") == 1 and "\r" not in stream.getvalue()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
