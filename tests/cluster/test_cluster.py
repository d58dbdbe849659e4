"""Three real ``serve`` processes on one PostgreSQL database and the machine's Redis, with real 1.6 stations.

Proves what an operator relies on when a CSMS runs as several processes: a command through any node's API
reaches the station on whichever node holds it, and its answer comes back; a station nobody holds is 409 as on
one node; a station that reconnects to another node is followed there; when the node leading a site is
SIGKILLed, another takes the site over within seconds and its stations get profiles from it; and what every
node stored is in the shared database.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import websockets

from tests.cluster.nodes import Node, create_token, start_nodes, station, until
from tests.conftest import PostgresDatabases

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: Builds a node of the test's cluster: its name, then extra ``serve`` flags.
MakeNode = Callable[..., Node]
#: Every node applies this limit to the default site at start-up: smart charging sends profiles.
LIMIT_KW = "22"


@pytest.fixture
async def database_url(postgres: PostgresDatabases) -> AsyncIterator[str]:
    """A fresh migrated PostgreSQL database shared by the test's nodes."""
    name = await postgres.clone()
    try:
        yield postgres.url_of(name)
    finally:
        await postgres.drop(name)


@pytest.fixture
def make_node(tmp_path: Path, database_url: str, redis_url: str, prefix: str) -> Iterator[MakeNode]:
    """Builds nodes of this test's cluster; every process is stopped at the end."""
    made: list[Node] = []

    def make(name: str, *settings: str) -> Node:
        node = Node(tmp_path, name, database_url, redis_url, prefix, "--site-limit-kw", LIMIT_KW, *settings)
        made.append(node)
        return node

    yield make
    for node in made:
        node.stop()
    for node in made:  # shown when a test fails
        print(f"--- {node.name} log tail ---\n{node.log()[-2500:]}")


async def test_commands_reach_the_station_on_whichever_node_holds_it(
    make_node: MakeNode, tmp_path: Path, database_url: str
) -> None:
    a, b, c = make_node("node-a"), make_node("node-b"), make_node("node-c")
    await start_nodes(a, b, c)
    token = create_token(tmp_path, database_url)
    async with a.api(token) as api_a:
        # Known to the CSMS but connected to no node: 409, as on one node; unknown: 404.
        assert (await api_a.put("/stations/CS-IDLE", json={})).status_code == 201
        idle = await api_a.post("/stations/CS-IDLE/commands/reset", json={"kind": "Soft"})
        assert idle.status_code == 409, idle.text
        assert (await api_a.post("/stations/CS-NONE/commands/reset", json={"kind": "Soft"})).status_code == 404

        async with station(b, "CS-1") as on_b:
            await on_b.boot()

            async def shown_connected() -> bool:
                return (await api_a.get("/stations/CS-1")).json()["connected"] is True

            await until(shown_connected, 10, "node A sees CS-1 connected on node B")
            listed = (await api_a.get("/stations", params={"connected": "true"})).json()
            assert [row["id"] for row in listed] == ["CS-1"]

            # A command through node A's API reaches the station on node B; the station's answer comes back.
            reset = await api_a.post("/stations/CS-1/commands/reset", json={"kind": "Hard"})
            assert reset.status_code == 200, reset.text
            assert reset.json()["status"] == "Accepted" and reset.json()["ocpp_version"] == "1.6"
            assert on_b.station.last("Reset") == {"type": "Hard"}
            configuration = await api_a.post("/stations/CS-1/commands/get-configuration", json={"keys": []})
            assert configuration.status_code == 200, configuration.text
            keys = {row["key"]: row["value"] for row in configuration.json()["keys"]}
            assert keys["ChargeProfileMaxStackLevel"] == "8"
            # The station's refusal crosses too: its answer, as the station gave it.
            on_b.station.answers["ChangeAvailability"] = "Rejected"
            refused = await api_a.post(
                "/stations/CS-1/commands/change-availability", json={"evse_id": 1, "operative": False}
            )
            assert refused.status_code == 200 and refused.json()["status"] == "Rejected"
            # A command error raised on node B is raised again on node A: a 2.0.1-only command on a 1.6 station.
            report = await api_a.post(
                "/stations/CS-1/commands/get-variables", json={"variables": [{"component": "C", "variable": "V"}]}
            )
            assert report.status_code == 400 and "1.6" in report.json()["detail"], report.text

            # The station reconnects to node C while its old connection on B still looks open: C holds it now,
            # B closes the old connection as replaced, and commands through A reach the new connection.
            async with station(c, "CS-1") as on_c:
                await on_c.boot()
                await until(lambda: on_b.connection.close_code is not None, 10, "node B closes the replaced connection")
                assert on_b.connection.close_code == 1000
                assert "replaced" in (on_b.connection.close_reason or "")
                resets_on_b = on_b.count("Reset")

                async def reset_reaches_c() -> bool:
                    answer = await api_a.post("/stations/CS-1/commands/reset", json={"kind": "Soft"})
                    return answer.status_code == 200 and on_c.count("Reset") == 1

                await until(reset_reaches_c, 10, "a reset through node A reaches CS-1 on node C")
                assert on_b.count("Reset") == resets_on_b  # nothing more went to the old connection
                assert (await api_a.get("/stations/CS-1")).json()["connected"] is True

            # Gone from every node: 409 again through any node, at once (C released its claim).
            async def not_connected() -> bool:
                answer = await api_a.post("/stations/CS-1/commands/reset", json={"kind": "Soft"})
                return answer.status_code == 409

            await until(not_connected, 5, "CS-1 gone from every node answers 409")
        async with b.api(token) as api_b:
            detail = (await api_b.get("/stations/CS-1")).json()
            assert detail["connected"] is False and detail["last_disconnected_at"] is not None


async def test_a_killed_leader_is_replaced_within_seconds_and_every_nodes_data_survives(
    make_node: MakeNode, tmp_path: Path, database_url: str
) -> None:
    # A starts first and so leads the default site; B and C stand by.
    a = make_node("node-a", "--scheduling-interval", "60")
    await start_nodes(a)
    await until(a.leads, 10, "node A leads the default site")
    b, c = make_node("node-b", "--scheduling-interval", "60"), make_node("node-c", "--scheduling-interval", "60")
    await start_nodes(b, c)
    assert not b.leads() and not c.leads()
    token = create_token(tmp_path, database_url)

    async with station(a, "CS-A") as on_a, station(b, "CS-B") as on_b, station(c, "CS-C") as on_c:
        sessions = {}
        for name, connected in (("CS-A", on_a), ("CS-B", on_b), ("CS-C", on_c)):
            await connected.boot()
            sessions[name] = await connected.start(f"TAG-{name}")
            await connected.meter(sessions[name], 1000, 7000)
        # The leader on A plans the site and sends profiles to the stations on B and C through their nodes.
        for name, connected in (("CS-B", on_b), ("CS-C", on_c)):
            await until(
                lambda connected=connected: connected.count("SetChargingProfile") > 0, 15, f"{name} gets a profile"
            )
        before = {name: connected.count("SetChargingProfile") for name, connected in (("CS-B", on_b), ("CS-C", on_c))}
        async with c.api(token) as api_c:  # the leader's plan, read through a node that does not lead

            async def plan_shown() -> bool:
                plan = (await api_c.get("/sites/default/plan")).json()
                return plan["available"] and {ev["transaction_id"] for ev in plan["evs"]} == set(sessions.values())

            await until(plan_shown, 10, "node C shows the plan node A computed")

        killed_at = a.kill()
        led_at = await until(lambda: b.leads() or c.leads(), 10, "another node takes the site over")
        leader = b if b.leads() else c
        assert not (b.leads() and c.leads()), "two leaders"
        # The new leader starts empty: it replans and sends every station of its site its profiles again.
        profiled_at = await until(
            lambda: (
                on_b.count("SetChargingProfile") > before["CS-B"] and on_c.count("SetChargingProfile") > before["CS-C"]
            ),
            15,
            "the stations on the surviving nodes get profiles from the new leader",
        )
        print(
            f"failover: {leader.name} led {led_at - killed_at:.2f} s after the SIGKILL, "
            f"stations had new profiles after {profiled_at - killed_at:.2f} s"
        )
        assert led_at - killed_at < 5.0

        # The killed node's station reconnects to a survivor, goes on and is reachable through another node.
        await until(lambda: on_a.connection.close_code is not None or on_a.task.done(), 10, "CS-A sees node A gone")
        async with station(c, "CS-A") as back:
            await back.boot()
            await back.meter(sessions["CS-A"], 2500, 7000)
            await back.stop(sessions["CS-A"], 3000)
            async with b.api(token) as api_b:

                async def reset_reaches_back() -> bool:
                    answer = await api_b.post("/stations/CS-A/commands/reset", json={"kind": "Soft"})
                    return answer.status_code == 200 and back.count("Reset") == 1

                await until(reset_reaches_back, 10, "a command through node B reaches CS-A on node C")
        for name, connected in (("CS-B", on_b), ("CS-C", on_c)):
            await connected.meter(sessions[name], 2000, 7000)
            await connected.stop(sessions[name], 2500)

    # What every node stored, before and after the kill, is in the one database.
    async with leader.api(token) as api:
        cycles = (await api.get("/sites/default/cycles")).json()
        assert cycles, "the new leader records its cycles"
        rows = (await api.get("/transactions", params={"limit": 10})).json()
        by_station = {row["station_id"]: row for row in rows}
        assert set(by_station) == {"CS-A", "CS-B", "CS-C"}
        assert all(row["id"] == sessions[name] for name, row in by_station.items())
        assert by_station["CS-A"]["energy_kwh"] == pytest.approx(3.0)
        assert by_station["CS-B"]["energy_kwh"] == pytest.approx(2.5)
        for name, transaction_id in sessions.items():
            samples = (await api.get(f"/transactions/{transaction_id}/meter-values")).json()
            energy = {s["value"] for s in samples if s["measurand"] == "Energy.Active.Import.Register"}
            # The reading taken before the kill and the one after, each through its node.
            assert {1000.0, 2500.0 if name == "CS-A" else 2000.0} <= energy, (name, samples)
    assert time.monotonic() - killed_at < 60
    with pytest.raises(OSError):  # node A really is gone
        async with websockets.connect(a.station_url("CS-X"), subprotocols=["ocpp1.6"], open_timeout=2):
            pass
