"""The compiled schema check (the fast path of :func:`rpc.validate`) never passes a payload the full
validator refuses, on the fuzzer's mutated payloads of every action both versions handle."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.messages import MessageType

from optivgi_csms.protocol import rpc
from optivgi_csms.protocol.v16 import ChargePoint16
from optivgi_csms.protocol.v201 import ChargePoint201
from tests.fuzz.frames import V16, V201, Version, mutated_payload

DIALECTS = [(V16, ChargePoint16.dialect), (V201, ChargePoint201.dialect)]


def verdicts(dialect: rpc.Dialect, action: str, payload: Any) -> tuple[bool, bool]:
    """(passes the compiled check, passes the full validator)."""
    validator = rpc._validator(dialect, MessageType.Call, action)
    assert validator is not None
    try:
        full = rpc._first_error(validator, MessageType.Call, action, payload, dialect) is None
    except rpc.OCPPError:
        full = False  # nested too deeply to describe
    return rpc._passes_fast_check(MessageType.Call, action, payload, dialect), full


@pytest.mark.parametrize(("version", "dialect"), DIALECTS, ids=["1.6", "2.0.1"])
def test_every_seed_passes_both(version: Version, dialect: rpc.Dialect) -> None:
    for action in sorted(version.handled):
        assert verdicts(dialect, action, copy.deepcopy(version.seeds[action])) == (True, True), action


@pytest.mark.parametrize(("version", "dialect"), DIALECTS, ids=["1.6", "2.0.1"])
@settings(max_examples=1500, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_fast_check_never_passes_what_the_validator_refuses(
    version: Version, dialect: rpc.Dialect, data: st.DataObject
) -> None:
    action = data.draw(st.sampled_from(sorted(version.handled)))
    payload = data.draw(mutated_payload(version.seeds[action]))
    fast, full = verdicts(dialect, action, payload)
    assert fast == full, (action, payload)


def test_the_fast_check_leaves_the_payload_as_sent() -> None:
    # The 2.0.1 schemas give defaults (NotifyReport's variableAttribute.persistent, ...): none is filled in.
    for version, dialect in DIALECTS:
        for action in sorted(version.handled):
            payload = copy.deepcopy(version.seeds[action])
            sent = copy.deepcopy(payload)
            assert rpc._passes_fast_check(MessageType.Call, action, payload, dialect), action
            assert payload == sent, action


def test_an_integral_float_is_no_integer_in_either_version() -> None:
    # The 2.0.1 schemas name draft-06, where 0.0 is an integer; they are validated as draft 4, where not.
    payload = {"reservationId": 0.0, "reservationUpdateStatus": "Expired"}
    assert verdicts(ChargePoint201.dialect, "ReservationStatusUpdate", payload) == (False, False)
    assert verdicts(ChargePoint16.dialect, "Heartbeat", {}) == (True, True)
