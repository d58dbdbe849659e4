"""What a station's answer to a profile means for smart charging.

Accepted: the profile is in force (and what a retry taught about the station is stored). Refused in both
shapes: the session is uncontrolled from now on; the reason goes on the session and the station, and the
site is planned again with the session's maximum held free. No answer (timeout, disconnection): nothing
is assumed installed, so the next cycle sends again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from optivgi_csms.domain.charging_profile import ChargingProfile
from optivgi_csms.domain.time import utc_now
from optivgi_csms.logs import get_logger
from optivgi_csms.smart_charging.outbox import Outcome
from optivgi_csms.smart_charging.records import mark_uncontrolled, save_capabilities, set_station_note
from optivgi_csms.smart_charging.runtime import Runtime
from optivgi_csms.smart_charging.snapshot import StationInfo
from optivgi_csms.smart_charging.translation import Sent

log = get_logger(__name__)

#: Notes smart charging writes on a station after a refusal start so; an accepted profile clears them.
REFUSAL_NOTE_PREFIX = "transaction "


def describe(profile: ChargingProfile) -> str:
    """A profile's shape in a few words."""
    return f"{profile.schedule.unit.value} at stack level {profile.stack_level}"


def answer_record(sent: Sent, outcome: Outcome) -> dict[str, Any]:
    """What the cycle record keeps of a delivery."""
    profile = outcome.profile or sent.profile
    first = profile.schedule.periods[0]
    return {
        "kind": sent.kind,
        "station_id": sent.station_id,
        "evse_id": sent.evse_id,
        "profile_id": profile.id,
        "reason": sent.reason,
        "status": outcome.status,
        "answers": list(outcome.answers),
        "unit": profile.schedule.unit.value,
        "stack_level": profile.stack_level,
        "periods": len(profile.schedule.periods),
        "first_limit": first.limit,
        "number_phases": first.number_phases,
    }


async def settle(
    runtime: Runtime, sent: Sent, station: StationInfo | None, replan: Callable[[str], None]
) -> dict[str, Any]:
    """Wait for a delivery's outcome and act on it; returns what the cycle record keeps."""
    outcome = await sent.future
    try:
        if sent.kind == "fallback":
            _settle_fallback(runtime, sent, outcome)
        else:
            await _settle_tx(runtime, sent, outcome, station, replan)
    except Exception:  # the record must still be written
        log.exception("acting on a profile answer failed", station_id=sent.station_id)
    return answer_record(sent, outcome)


def _settle_fallback(runtime: Runtime, sent: Sent, outcome: Outcome) -> None:
    if outcome.accepted or outcome.refused:
        # Refused or not, sending the same again would get the same answer: wait for other limits.
        return
    if runtime.book.fallback(sent.station_id) is sent.profile:
        runtime.book.set_fallback(sent.station_id, None)


async def _settle_tx(
    runtime: Runtime, sent: Sent, outcome: Outcome, station: StationInfo | None, replan: Callable[[str], None]
) -> None:
    entry = sent.entry
    assert entry is not None and entry.transaction_id is not None
    transaction_id = entry.transaction_id
    if outcome.accepted and outcome.profile is not None:
        at = utc_now()
        runtime.book.accepted(transaction_id, sent.profile, outcome.profile, at, at + sent.settle)
        if station is not None:
            await _learn(runtime, station, sent.profile, outcome.profile)
            if station.note and station.note.startswith(REFUSAL_NOTE_PREFIX):
                await set_station_note(runtime.database, station.id, None)
        return
    if outcome.refused:
        tried = "; ".join(
            f"{describe(profile)}: {answer}"
            for profile, answer in zip(_attempts(sent, outcome), outcome.answers, strict=False)
        )
        reason = f"charging profile refused ({tried})"
        log.warning("profile refused: session uncontrolled", station_id=sent.station_id, transaction=transaction_id)
        runtime.book.forget(transaction_id)
        await mark_uncontrolled(runtime.database, sent.station_id, transaction_id, reason)
        replan("rejection")
        return
    if outcome.status != "Superseded":
        runtime.book.failed(transaction_id, sent.profile)


def _attempts(sent: Sent, outcome: Outcome) -> list[ChargingProfile]:
    # The first attempt is what was queued; a second answer belongs to the retry (the outcome's profile).
    if len(outcome.answers) > 1 and outcome.profile is not None:
        return [sent.profile, outcome.profile]
    return [sent.profile]


async def _learn(runtime: Runtime, station: StationInfo, first: ChargingProfile, accepted: ChargingProfile) -> None:
    """A retry in another shape was accepted: the station's profiles take that shape from now on."""
    unit = accepted.schedule.unit if accepted.schedule.unit is not first.schedule.unit else None
    stack_level = accepted.stack_level if accepted.stack_level != first.stack_level else None
    if unit is None and stack_level is None:
        return
    learned = station.capabilities.learned(unit=unit, stack_level=stack_level)
    log.info("station capabilities learned from a refusal", station_id=station.id, note=learned.learned_note)
    await save_capabilities(runtime.database, station.id, learned)
