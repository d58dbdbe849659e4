"""The Docker deployment runs what the tests run.

No Docker engine is needed: the files are read as data and held against the code (the settings the
compose file sets must be settings the CSMS reads, with values it accepts; the ports must be its
defaults; the commands must be CLI commands), and the container's own entry point and health check
are run here, outside a container, against a real CSMS.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from optivgi_csms.api.app import API_PREFIX
from optivgi_csms.cli import build_parser
from optivgi_csms.config import SETTING_FIELDS, Settings, env_name, load_settings
from tests.conftest import CsmsFactory

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def instructions(name: str) -> list[str]:
    """The arguments of every ``name`` instruction."""
    return [arguments for instruction, arguments in dockerfile() if instruction == name]


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with the variable unset, as on a fresh checkout."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def csms_environment(name: str = "csms") -> dict[str, str]:
    """A CSMS service's environment as the container sees it: the image's ENV, then the compose file's."""
    environment: dict[str, str] = {}
    for arguments in instructions("ENV"):
        for pair in shlex.split(arguments):
            key, _, value = pair.partition("=")
            environment[key] = value
    service = COMPOSE["services"][name]["environment"]
    environment.update({key: interpolate(str(value)) for key, value in service.items()})
    return environment


def known_variables() -> set[str]:
    """Every environment variable the CSMS reads a setting from."""
    names = {env_name(setting) for setting in SETTING_FIELDS}
    return names | {setting.metadata["env"] for setting in SETTING_FIELDS if setting.metadata["env"]}


def entrypoint_commands() -> list[list[str]]:
    """The commands the container's entry point runs, in order (``exec`` dropped)."""
    commands = []
    for line in ENTRYPOINT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("set "):
            continue
        words = shlex.split(line)
        commands.append(words[1:] if words[0] == "exec" else words)
    return commands


# --- the files, read against the code ------------------------------------------------------------------------


def test_every_variable_the_deployment_sets_is_a_setting_the_csms_reads() -> None:
    environment = csms_environment()
    unknown = sorted(set(environment) - known_variables() - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"})
    unknown = [name for name in unknown if not name.startswith("PIP_")]
    assert unknown == [], f"the deployment sets variables no setting reads: {unknown}"
    assert "OPTIVGI_SITE_LIMIT_KW" in environment  # the example the README points to
    # The values are ones the CSMS accepts, read by the same code as at start-up.
    settings = load_settings({}, environ=environment)
    assert settings.site_limit_kw == float(environment["OPTIVGI_SITE_LIMIT_KW"])
    assert settings.effective_database_url.startswith("postgresql+asyncpg://")
    assert settings.effective_database_url.endswith("@db:5432/csms")
    assert settings.log_format == "json" and str(settings.data_dir) == "/data"


def test_the_published_ports_and_exposed_ports_are_the_csms_defaults() -> None:
    settings = load_settings({}, environ=csms_environment())
    defaults = Settings()
    assert (settings.port, settings.api_port) == (defaults.port, defaults.api_port) == (9000, 8080)
    published = {int(str(mapping).split(":")[-1]) for mapping in COMPOSE["services"]["csms"]["ports"]}
    assert published == {settings.port, settings.api_port}
    exposed = {int(port) for arguments in instructions("EXPOSE") for port in arguments.split()}
    assert exposed == {settings.port, settings.api_port}
    # Both servers listen on every interface of the container.
    assert settings.host == "0.0.0.0" and (settings.api_host or settings.host) == "0.0.0.0"


def test_the_image_is_a_slim_python_running_as_a_user_with_a_data_volume() -> None:
    assert instructions("FROM") == ["python:3.11-slim"]
    users = instructions("USER")
    assert users and users[-1] not in ("root", "0")
    assert json.loads(instructions("VOLUME")[0]) == ["/data"]
    assert "/data" in " ".join(COMPOSE["services"]["csms"]["volumes"])
    # Installed from the repository's own files; every path it copies exists and is not ignored.
    assert any(arguments.startswith("pip install .") for arguments in instructions("RUN"))
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for arguments in instructions("COPY"):
        sources = [word for word in arguments.split()[:-1] if not word.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), source
            assert f"!{source.rstrip('/')}" in ignored or source in ("./",), f"{source} is left out by .dockerignore"
    assert not any(f"!{name}" in ignored for name in (".venv", "data", "tests"))


def test_the_container_runs_the_cli_commands_the_tests_run() -> None:
    (entrypoint,) = (json.loads(arguments) for arguments in instructions("ENTRYPOINT"))
    assert entrypoint == ["optivgi-csms-entrypoint"]
    assert any(arguments.endswith("/usr/local/bin/optivgi-csms-entrypoint") for arguments in instructions("COPY"))
    commands = entrypoint_commands()
    assert commands == [["optivgi-csms", "db", "upgrade"], ["optivgi-csms", "serve", "$@"]]
    assert ENTRYPOINT.read_text().count("exec ") == 1  # serve replaces the shell: SIGTERM reaches the CSMS
    # `optivgi-csms` is the console script of the same main() the tests run as `python -m optivgi_csms`.
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'optivgi-csms = "optivgi_csms.cli:main"' in pyproject
    parser = build_parser()
    assert parser.parse_args(["db", "upgrade"]).command == "db"
    assert parser.parse_args(["serve"]).command == "serve"


def test_postgres_is_healthy_before_the_csms_starts() -> None:
    services = COMPOSE["services"]
    assert services["db"]["image"] == "postgres:15"
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in services["db"]["volumes"])
    assert services["csms"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    database = load_settings({}, environ=csms_environment()).effective_database_url
    db_env = {key: interpolate(str(value)) for key, value in services["db"]["environment"].items()}
    expected = f"{db_env['POSTGRES_USER']}:{db_env['POSTGRES_PASSWORD']}@db:5432/{db_env['POSTGRES_DB']}"
    assert database == f"postgresql+asyncpg://{expected}"
    # docker stop waits longer than the CSMS's own shutdown grace.
    grace = services["csms"]["stop_grace_period"]
    assert int(grace.rstrip("s")) > Settings().shutdown_grace


def haproxy_config() -> dict[str, list[str]]:
    """docker/haproxy.cfg as sections (``frontend api``, ``backend csms_ocpp`` ...) of their lines."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in (ROOT / "docker" / "haproxy.cfg").read_text().splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if not line[0].isspace():
            current = sections.setdefault(line.strip(), [])
        else:
            current.append(line.strip())
    return sections


def test_the_scaled_profile_runs_cluster_nodes_on_the_shared_database_and_redis_behind_haproxy() -> None:
    services = COMPOSE["services"]
    scaled = {name for name, service in services.items() if "scaled" in service.get("profiles", [])}
    assert scaled == {"redis", "csms-node", "lb"}
    # The single CSMS and the database stay in the default profile: `docker compose up` is unchanged.
    assert "profiles" not in services["csms"] and "profiles" not in services["db"]
    node = load_settings({}, environ=csms_environment("csms-node"))
    assert node.effective_database_url == load_settings({}, environ=csms_environment()).effective_database_url
    assert node.redis_url == "redis://redis:6379/0"
    assert node.node_id == ""  # each replica takes its own hostname
    assert services["csms-node"]["deploy"]["replicas"] >= 2
    assert services["csms-node"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert int(services["csms-node"]["stop_grace_period"].rstrip("s")) > Settings().shutdown_grace
    # The balancer publishes the single CSMS's ports and forwards each to the nodes' same port.
    published = {int(str(mapping).split(":")[0]) for mapping in services["lb"]["ports"]}
    assert published == {node.port, node.api_port}
    config = haproxy_config()
    assert any(line.startswith(f"bind :{node.port}") for line in config["frontend ocpp"])
    assert any(line.startswith(f"bind :{node.api_port}") for line in config["frontend api"])
    assert f"server-template node 10 csms-node:{node.port} check port {node.api_port}" in " ".join(
        config["backend csms_ocpp"]
    )
    assert f"csms-node:{node.api_port}" in " ".join(config["backend csms_api"])
    # Websockets outlive the request timeouts: the tunnel timeout is longer than the CSMS's ping interval.
    tunnel = next(line for line in config["defaults"] if line.startswith("timeout tunnel"))
    assert tunnel.endswith("h") and int(tunnel.split()[-1].rstrip("h")) * 3600 > node.ping_interval
    health = f"{API_PREFIX}/health"
    assert all(
        f"option httpchk GET {health}" in config[backend] for backend in ("backend csms_ocpp", "backend csms_api")
    )


# --- the container's own commands, run here -------------------------------------------------------------------


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's CMD (exec form)."""
    (arguments,) = instructions("HEALTHCHECK")
    return json.loads(arguments[arguments.index("CMD") + 3 :].strip())


def run_healthcheck(api_port: int) -> int:
    """Run the image's health check against an API on ``api_port``; its exit status."""
    command = healthcheck_command()
    assert command[0] == "python"
    environment = {**os.environ, "OPTIVGI_API_PORT": str(api_port)}
    return subprocess.run([sys.executable, *command[1:]], env=environment, capture_output=True, timeout=30).returncode


async def test_the_healthcheck_passes_against_a_running_api_and_fails_without_one(make_csms: CsmsFactory) -> None:
    assert f"{API_PREFIX}/health" in " ".join(healthcheck_command())
    csms = await make_csms(api=True)
    assert csms.api is not None
    port = csms.api.port
    # In a thread: the API answers from this test's event loop.
    assert await asyncio.to_thread(run_healthcheck, port) == 0
    await csms.api.stop()
    assert await asyncio.to_thread(run_healthcheck, port) != 0


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_the_entrypoint_migrates_serves_passes_its_healthcheck_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The container's start, outside a container: the same script, the same environment (SQLite in a
    temporary /data instead of the compose file's PostgreSQL), the console scripts of this install."""
    environment: dict[str, Any] = {
        key: value for key, value in os.environ.items() if not key.startswith("OPTIVGI_") and key != "DATABASE_URL"
    }
    environment.update({key: value for key, value in csms_environment().items() if key != "DATABASE_URL"})
    ocpp_port, api_port = _free_port(), _free_port()
    environment.update(
        OPTIVGI_DATA_DIR=str(tmp_path / "data"),
        OPTIVGI_HOST="127.0.0.1",
        OPTIVGI_PORT=str(ocpp_port),
        OPTIVGI_API_PORT=str(api_port),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}",
    )
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT)],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _listening(api_port):
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "the API never started listening"
            time.sleep(0.1)
        assert run_healthcheck(api_port) == 0
        assert (tmp_path / "data" / "optivgi-csms.db").exists()  # migrated into the data volume
        process.send_signal(signal.SIGTERM)
        _, log = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, log
    events = [json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")]
    assert "OCPP server listening" in events and events[-1] == "stopped"
