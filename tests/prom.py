"""Real Prometheus and Alertmanager processes for tests, and the PromQL the project ships.

``start_prometheus`` and ``start_alertmanager`` run the Debian binaries (``prometheus``,
``prometheus-alertmanager``) on free loopback ports and return once they answer ``/-/ready``;
the caller stops the returned process (``stop(process)``; the fixtures in
tests/deploy/conftest.py do it for you). ``dashboard_queries`` and ``rule_exprs`` list every
PromQL expression in deploy/grafana/dashboards/*.json and deploy/prometheus/rules/*.yml.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, NamedTuple
from urllib.parse import urlsplit

import yaml

from tests.servers import free_port

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
RULE_FILES = tuple(sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")))
DASHBOARD_FILES = tuple(sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")))

#: Values for Grafana template variables when a dashboard query is sent to Prometheus directly.
GRAFANA_VARIABLES = {
    "instrument": "DXY",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "__range_s": "3600",
}


class Query(NamedTuple):
    """A PromQL expression and where it comes from (for failure messages)."""

    where: str
    expr: str


def stop(process: subprocess.Popen) -> None:
    """Terminate ``process`` and wait for it (kill after 10 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start(argv: list[str], url: str, log: Path, what: str, timeout: float = 30.0) -> subprocess.Popen:
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
                if r.status == 200:
                    return process
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    stop(process)
    raise RuntimeError(f"{what} not ready after {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def start_prometheus(tmp_path: Path, *, scrape_targets: Iterable[str], rule_files: Iterable[str | Path] = (),
                     alertmanager_url: str | None = None, scrape_interval: str = "1s",
                     evaluation_interval: str = "1s") -> tuple[str, subprocess.Popen]:
    """Start ``prometheus`` scraping ``scrape_targets`` (``host:port``) as job ``tapewatch``.

    Returns ``(base_url, process)``; stop the process with :func:`stop`.
    """
    port = free_port()
    home = Path(tmp_path) / f"prometheus-{port}"
    home.mkdir(parents=True)
    targets = list(scrape_targets)
    config: dict = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": evaluation_interval},
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [{"job_name": "tapewatch", "static_configs": [{"targets": targets}]}] if targets else [],
    }
    if alertmanager_url:
        am = urlsplit(alertmanager_url)
        config["alerting"] = {"alertmanagers": [{
            "scheme": am.scheme or "http",
            "path_prefix": am.path or "/",
            "static_configs": [{"targets": [am.netloc]}],
        }]}
    (home / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    process = _start([
        "prometheus",
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ], url, home / "prometheus.log", "prometheus")
    return url, process


def start_alertmanager(tmp_path: Path, *, config_text: str) -> tuple[str, subprocess.Popen]:
    """Start ``prometheus-alertmanager`` with ``config_text`` (YAML), clustering off.

    Returns ``(base_url, process)``; stop the process with :func:`stop`.
    """
    port = free_port()
    home = Path(tmp_path) / f"alertmanager-{port}"
    home.mkdir(parents=True)
    (home / "alertmanager.yml").write_text(config_text, encoding="utf-8")
    url = f"http://127.0.0.1:{port}"
    process = _start([
        "prometheus-alertmanager",
        f"--config.file={home / 'alertmanager.yml'}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ], url, home / "alertmanager.log", "alertmanager")
    return url, process


def rule_exprs() -> list[Query]:
    """Every ``expr`` of every recording and alerting rule."""
    out = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule["record"]
                out.append(Query(f"{path.name}: {group['name']}/{name}", rule["expr"]))
    return out


_VAR = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)")   # not label_replace's $1
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", re.S)


def substitute(expr: str, variables: dict[str, str]) -> str:
    """Replace Grafana ``$var`` / ``${var}`` references; an unknown variable is an error."""
    def repl(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return variables[name]
    return _VAR.sub(repl, expr)


def _variable_expr(query) -> str:
    text = query.get("query", "") if isinstance(query, dict) else query
    m = _LABEL_VALUES.match(text)
    # label_values(selector, label) is Grafana's; the equivalent PromQL lists the same values.
    return f"group by ({m.group(2)}) ({m.group(1)})" if m else text


def _panels(panels: list) -> Iterable[dict]:
    for panel in panels or ():
        yield panel
        yield from _panels(panel.get("panels"))


def dashboard_queries(variables: dict[str, str] | None = None) -> list[Query]:
    """Every PromQL in the dashboards (panel targets, query variables, annotations).

    Template variables are replaced from ``variables`` (default :data:`GRAFANA_VARIABLES`).
    """
    values = {**GRAFANA_VARIABLES, **(variables or {})}
    out = []
    for path in DASHBOARD_FILES:
        board = json.loads(path.read_text(encoding="utf-8"))
        for var in board.get("templating", {}).get("list", []):
            if var.get("type") == "query":
                out.append(Query(f"{path.name}: variable {var['name']}", _variable_expr(var["query"])))
        for ann in board.get("annotations", {}).get("list", []):
            expr = ann.get("expr") or (ann.get("target") or {}).get("expr")
            if expr:
                out.append(Query(f"{path.name}: annotation {ann['name']}", expr))
        for panel in _panels(board.get("panels")):
            for target in panel.get("targets") or ():
                if target.get("expr"):
                    out.append(Query(f"{path.name}: panel {panel.get('title')!r} {target.get('refId', '')}",
                                     target["expr"]))
    return [Query(q.where, substitute(q.expr, values)) for q in out]
