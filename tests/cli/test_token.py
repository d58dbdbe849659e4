"""``optivgi-csms token``: create a token, use it against the running server's API, list and revoke it."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.cli.test_commands import RunningServer, free_port, run_cli


def test_create_list_and_revoke(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "db", "upgrade").returncode == 0
    created = run_cli(tmp_path, "token", "create", "dashboard")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("ovc_") and len(secret) > 40 and "\n" not in secret

    again = run_cli(tmp_path, "token", "create", "dashboard")
    assert again.returncode == 2
    assert again.stderr.strip() == (
        "optivgi-csms token: error: a token named 'dashboard' exists already: revoke it first or choose another name"
    )
    listing = run_cli(tmp_path, "token", "list")
    assert "dashboard" in listing.stdout and "operator" in listing.stdout and "active" in listing.stdout
    assert secret not in listing.stdout

    assert run_cli(tmp_path, "token", "revoke", "dashboard").returncode == 0
    assert "revoked" in run_cli(tmp_path, "token", "list").stdout
    missing = run_cli(tmp_path, "token", "revoke", "nobody")
    assert missing.returncode == 2 and "no token named 'nobody'" in missing.stderr


def test_a_bad_name_or_scope_is_one_clear_line(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "db", "upgrade").returncode == 0
    long = run_cli(tmp_path, "token", "create", "x" * 65)
    assert long.returncode == 2 and "1 to 64 printable characters" in long.stderr.strip().splitlines()[-1]
    scope = run_cli(tmp_path, "token", "create", "ci", "--scope", "admin")
    assert scope.returncode == 2 and "invalid choice: 'admin'" in scope.stderr


@pytest.mark.slow
def test_the_served_api_accepts_a_created_token_until_it_is_revoked(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "db", "upgrade").returncode == 0
    secret = run_cli(tmp_path, "token", "create", "ops").stdout.strip()
    api_port = free_port()
    server = RunningServer(tmp_path, "--api-port", str(api_port))
    try:
        url = f"http://127.0.0.1:{api_port}/api/v1/token"
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(f"http://127.0.0.1:{api_port}/api/v1/health").json()["status"] == "ok"
        assert httpx.get(url, headers=headers).json()["name"] == "ops"
        assert httpx.get(url).status_code == 401
        # Revoked from another process while the server runs: refused at once.
        assert run_cli(tmp_path, "token", "revoke", "ops").returncode == 0
        assert httpx.get(url, headers=headers).status_code == 401
    finally:
        code, stderr = server.stop()
    assert code == 0, stderr


def test_serve_names_the_api_port_when_it_is_taken(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "db", "upgrade").returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(tmp_path, "serve", "--host", "127.0.0.1", "--port", "0", "--api-port", str(port))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("optivgi-csms serve: error: cannot listen on 127.0.0.1:") and "(the API)" in last
