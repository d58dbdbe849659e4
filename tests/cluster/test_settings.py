"""The cluster's settings, and what a process does when its cluster cannot be joined or is not configured."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from optivgi_csms.cluster.node import ClusterNode, default_node_id
from optivgi_csms.config import ConfigError, load_settings
from optivgi_csms.metrics import CsmsMetrics
from optivgi_csms.server.app import Csms, StartupError
from tests.conftest import PostgresDatabases, settings_for
from tests.faults.serve import clean_env, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_redis_url_from_flag_environment_alias_and_file(tmp_path: Path) -> None:
    assert load_settings({}, environ={}).redis_url == ""  # no cluster by default
    assert load_settings({"redis_url": "redis://flag:6379/0"}, environ={}).redis_url == "redis://flag:6379/0"
    assert load_settings({}, environ={"OPTIVGI_REDIS_URL": "redis://env/1"}).redis_url == "redis://env/1"
    assert load_settings({}, environ={"REDIS_URL": "rediss://alias:6380/2"}).redis_url == "rediss://alias:6380/2"
    toml = tmp_path / "csms.toml"
    toml.write_text('redis_url = "redis://file/3"\nnode_id = "csms-1"\nredis_prefix = "site-a"\n')
    settings = load_settings({"config": str(toml)}, environ={})
    assert (settings.redis_url, settings.node_id, settings.redis_prefix) == ("redis://file/3", "csms-1", "site-a")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"REDIS_URL": "http://u:hunter2@cache:6379"}, "'redis_url' (from environment variable REDIS_URL)"),
        ({"OPTIVGI_REDIS_URL": "redis://"}, "names no host"),
        ({"OPTIVGI_REDIS_URL": "redis://cache:99999/0"}, "bad port"),
        ({"OPTIVGI_NODE_ID": "node|1"}, "'node_id'"),
        ({"OPTIVGI_REDIS_PREFIX": "a b"}, "'redis_prefix'"),
    ],
)
def test_bad_cluster_settings_are_one_line_naming_the_setting(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ=environ)
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert "hunter2" not in message  # a URL's password is never shown


def test_the_node_id_defaults_to_hostname_pid_and_can_be_set() -> None:
    assert default_node_id() == f"{socket.gethostname()}-{os.getpid()}"
    configured = load_settings({"redis_url": "redis://127.0.0.1/0", "node_id": "csms-a"}, environ={})
    assert ClusterNode(configured, CsmsMetrics()).node_id == "csms-a"
    unset = load_settings({"redis_url": "redis://127.0.0.1/0"}, environ={})
    assert ClusterNode(unset, CsmsMetrics()).node_id == default_node_id()


def test_without_redis_url_nothing_of_the_cluster_is_loaded(tmp_path: Path) -> None:
    # A fresh interpreter: the single-process CSMS imports neither the cluster package nor the Redis client.
    script = (
        "import sys\n"
        "from optivgi_csms.config import Settings\n"
        "from optivgi_csms.server.app import Csms\n"
        f"csms = Csms(Settings(database_url='sqlite+aiosqlite:///{tmp_path}/x.db'))\n"
        "assert csms.cluster is None and type(csms.registry).__name__ == 'StationRegistry'\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('optivgi_csms.cluster', 'redis')))\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=clean_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_a_cluster_needs_postgresql(redis_url: str, tmp_path: Path, sqlite_template: Path) -> None:
    database = tmp_path / "csms.db"
    shutil.copy(sqlite_template, database)
    csms = Csms(settings_for(f"sqlite+aiosqlite:///{database}", redis_url=redis_url))
    with pytest.raises(StartupError, match="needs a PostgreSQL database_url"):
        await csms.start()


@pytest.mark.postgres
async def test_an_unreachable_redis_stops_start_up_with_one_line(postgres: PostgresDatabases) -> None:
    name = await postgres.clone()
    try:
        closed = f"redis://:secret@127.0.0.1:{free_port()}/0"  # nothing listens there
        port = free_port()
        csms = Csms(settings_for(postgres.url_of(name), redis_url=closed, port=port))
        with pytest.raises(StartupError) as caught:
            await csms.start()
        message = str(caught.value)
        assert message.startswith("cannot reach Redis at redis://127.0.0.1:") and "\n" not in message
        assert "secret" not in message
        with pytest.raises(OSError):  # it never began accepting stations
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    finally:
        await postgres.drop(name)
