"""Generated requests against the live API, from its own ``/openapi.json``: a CSMS serves over real HTTP (in
its own thread and event loop, as ``serve`` runs it) and schemathesis sends every operation valid and invalid
input with an operator token, at random ids and again at resources that exist (a station with an open session,
an id tag, a reservation, the default site). No answer may be a 5xx, and every answer must be one the schema
documents, in the documented shape.

``OPTIVGI_SCHEMATHESIS_EXAMPLES`` raises the examples per operation and mode (default 4; about 500
requests in all) for a longer hunt; ``OPTIVGI_SCHEMATHESIS_RANDOM=1`` draws new examples on every run
instead of the same ones.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from optivgi_csms.domain.station import EvseRef
from optivgi_csms.domain.time import utc_now
from optivgi_csms.domain.transaction import TransactionStart
from optivgi_csms.server.app import Csms
from tests.conftest import settings_for

EXAMPLES = int(os.environ.get("OPTIVGI_SCHEMATHESIS_EXAMPLES", "4"))
RANDOM = os.environ.get("OPTIVGI_SCHEMATHESIS_RANDOM") == "1"
#: Streams that stay open by design (server-sent events): a request would only end at its timeout.
STREAMING = ("/api/v1/events",)
SEEDED_STATION = "CS-SEED"
SEEDED_TAG = "TAG-SEED"
#: What every answer is held to: valid input and invalid input alike.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class LiveCsms:
    """A CSMS with its API on free loopback ports, run in a thread of its own."""

    csms: Csms
    loop: asyncio.AbstractEventLoop
    token: str

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        assert self.csms.api is not None
        return f"http://127.0.0.1:{self.csms.api.port}"

    def run(self, coroutine: Any, timeout: float = 60) -> Any:
        """Run ``coroutine`` in the CSMS's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


@contextmanager
def live_csms(database_url: str) -> Iterator[LiveCsms]:
    """Start a CSMS with its API in a background thread (the test's own thread stays free to block on HTTP)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="csms", daemon=True)
    thread.start()
    csms = Csms(settings_for(database_url, api=True))
    live = LiveCsms(csms, loop, token="")
    try:
        live.run(csms.start())
        _, live.token = live.run(csms.services.api_tokens.create("schemathesis"))
        yield live
    finally:
        try:
            live.run(csms.stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


async def seed(csms: Csms) -> dict[str, Any]:
    """Resources for generated requests to act on (random ids would almost only meet 404s): a registered
    station with an open session, an id tag, a reservation for later. Returns them as path parameters."""
    await csms.services.stations.register(SEEDED_STATION)
    await csms.services.id_tags.create(SEEDED_TAG)
    started = await csms.services.transactions.start(
        TransactionStart(SEEDED_STATION, EvseRef(1, 1), SEEDED_TAG, 0.0, utc_now() - timedelta(minutes=5))
    )
    starts = utc_now() + timedelta(hours=1)
    reservation_id = await csms.reservations.reserve(SEEDED_STATION, 2, SEEDED_TAG, starts, starts + timedelta(hours=1))
    return {
        "station_id": SEEDED_STATION,
        "id_tag": SEEDED_TAG,
        "transaction_id": started.transaction_id,
        "reservation_id": reservation_id,
        "site_id": "default",
    }


@dataclass
class Findings:
    """Failures found so far, one line each with a request that reproduces it."""

    lines: list[str] = field(default_factory=list)
    requests: int = 0

    def exercise(
        self,
        live: LiveCsms,
        operation: APIOperation,
        mode: GenerationMode,
        path_parameters: dict[str, Any] | None = None,
    ) -> None:
        """Send ``operation`` generated input of ``mode`` (at ``path_parameters`` when given) and check every
        answer."""
        headers = {"Authorization": f"Bearer {live.token}"}
        seen: set[str] = set()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=not RANDOM,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
        def check(case: Case) -> None:
            self.requests += 1
            response = case.call(base_url=live.base_url, headers=headers, timeout=15)
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as failures:  # noted with the request that shows it; the hunt goes on
                titles = sorted({str(failure).strip().splitlines()[0] for failure in failures.exceptions})
                where = " (seeded)" if path_parameters else ""
                key = f"{operation.label}{where} [{mode.value}] {response.status_code}: {'; '.join(titles)}"
                if key not in seen:
                    seen.add(key)
                    self.lines.append(f"{key}\n    {case.as_curl_command(headers=headers)}")

        try:
            check()
        except Unsatisfiable:
            # Nothing to get wrong: an operation without parameters or body has no invalid input.
            assert mode is GenerationMode.NEGATIVE, operation.label


def _operations(schema: Any) -> Iterator[APIOperation]:
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith(STREAMING):
            yield operation


def _seeded_parameters(operation: APIOperation, seeded: dict[str, Any]) -> dict[str, Any] | None:
    """The seeded resources' ids for ``operation``'s path, when it has path parameters and all are seeded.

    Commands are left out: sent to a station, a fuzzed command's fate is the station's (a CALLERROR is a 502
    by design); tests/api/test_commands.py covers them against real stations."""
    names = [parameter.name for parameter in operation.path_parameters]
    if not names or "/commands/" in operation.path or any(name not in seeded for name in names):
        return None
    return {name: seeded[name] for name in names}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_generated_requests_never_get_a_server_error_and_match_the_schema(database_url: str) -> None:
    with live_csms(database_url) as live:
        schema = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json")
        findings = Findings()
        started = time.monotonic()
        operations = list(_operations(schema))
        assert len(operations) > 30, [operation.label for operation in operations]
        seeded = live.run(seed(live.csms))
        for operation in operations:
            for mode in GenerationMode:
                findings.exercise(live, operation, mode)
                at_seeded = _seeded_parameters(operation, seeded)
                if at_seeded is not None:
                    findings.exercise(live, operation, mode, at_seeded)
        elapsed = time.monotonic() - started
        print(f"{findings.requests} requests to {len(operations)} operations in {elapsed:.1f} s")
        assert findings.lines == [], "\n".join(findings.lines)
        # The CSMS still answers after all that.
        assert live.run(_health(live)) == 200


async def _health(live: LiveCsms) -> int:
    async with httpx.AsyncClient(base_url=live.base_url) as client:
        return (await client.get("/api/v1/health")).status_code
