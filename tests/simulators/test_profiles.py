"""The profile store: every rejection rule, replacement, clearing and the end of a transaction."""

from __future__ import annotations

import pytest

from optivgi_csms.domain.charging_profile import ChargingProfile, ProfileKind, RecurrencyKind
from simulators.smart_charging import ProfileRules, ProfileStore
from tests.simulators.profile_builders import (
    DEFAULT,
    EXTERNAL,
    MAX,
    T0,
    TX,
    A,
    W,
    at,
    install,
    profile,
    store,
)


def ids(target: ProfileStore, evse_id: int | None = None) -> list[int]:
    return [item.profile.id for item in target.installed(evse_id)]


def reject(
    target: ProfileStore, evse_id: int, item: ChargingProfile, *, tx: str | None = None, active: str | None = None
) -> str:
    reason = target.install(evse_id, item, now=T0, transaction_id=tx, active_transaction_id=active)
    assert reason is not None, "expected a rejection"
    return reason


# -- accepted ---------------------------------------------------------------------------------


def test_accepted_profile_is_listed_with_its_evse_and_time() -> None:
    target = store()
    install(target, 1, profile(7, DEFAULT, (0, 16.0)), now=at(minutes=5))
    [item] = target.installed()
    assert (item.evse_id, item.profile.id, item.installed_at, item.transaction_id) == (1, 7, at(minutes=5), None)


def test_default_rules_accept_both_units_and_levels_up_to_eight() -> None:
    target = ProfileStore(ProfileRules())
    install(target, 0, profile(1, MAX, (0, 22080.0), unit=W, level=8))
    install(target, 1, profile(2, DEFAULT, (0, 16.0), unit=A))
    assert ids(target) == [1, 2]


# -- rejections -------------------------------------------------------------------------------


def test_rejects_a_unit_not_allowed() -> None:
    target = store(allowed_units=frozenset({A}))
    reason = reject(target, 1, profile(1, DEFAULT, (0, 11000.0), unit=W))
    assert "W" in reason and "not allowed" in reason
    install(target, 1, profile(1, DEFAULT, (0, 16.0), unit=A))


def test_rejects_a_stack_level_above_the_maximum() -> None:
    target = store(max_stack_level=3)
    assert "stack level 4" in reject(target, 1, profile(1, DEFAULT, (0, 16.0), level=4))
    install(target, 1, profile(1, DEFAULT, (0, 16.0), level=3))


def test_rejects_too_many_periods() -> None:
    target = store(max_periods=2)
    assert "3 periods" in reject(target, 1, profile(1, DEFAULT, (0, 16.0), (60, 10.0), (120, 8.0)))
    install(target, 1, profile(1, DEFAULT, (0, 16.0), (60, 10.0)))


def test_rejects_too_many_profiles_but_a_replacement_fits() -> None:
    target = store(max_profiles=2)
    install(target, 1, profile(1, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=1))
    assert "2 profiles" in reject(target, 1, profile(3, DEFAULT, (0, 8.0), level=2))
    # Same id (1) or same purpose + level (level 1) replaces: the count stays 2.
    install(target, 1, profile(1, DEFAULT, (0, 12.0), level=0))
    install(target, 1, profile(4, DEFAULT, (0, 6.0), level=1))
    assert ids(target) == [1, 4]


def test_expired_profiles_do_not_count_against_the_maximum() -> None:
    target = store(max_profiles=1)
    # Valid until 09:00; at 09:00 it can never apply again, so installing then drops it first.
    install(target, 1, profile(1, DEFAULT, (0, 16.0), valid_to=at(1)))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=1), now=at(1))
    assert ids(target) == [2]
    # An Absolute schedule that ran out (08:00 + 30 min) has expired too.
    target = store(max_profiles=1)
    install(target, 1, profile(1, DEFAULT, (0, 16.0), duration_s=1800))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=1), now=at(minutes=30))
    assert ids(target) == [2]


def test_rejects_a_station_maximum_on_an_evse_or_relative() -> None:
    target = store()
    assert "EVSE 0" in reject(target, 1, profile(1, MAX, (0, 32.0)))
    assert "Relative" in reject(target, 0, profile(1, MAX, (0, 32.0), kind=ProfileKind.RELATIVE))
    install(target, 0, profile(1, MAX, (0, 32.0)))


def test_rejects_a_tx_profile_on_evse_zero() -> None:
    assert "EVSE 0" in reject(store(), 0, profile(1, TX, (0, 16.0)), active="T1")


def test_rejects_a_tx_profile_without_an_active_transaction() -> None:
    target = store()
    assert "no transaction" in reject(target, 1, profile(1, TX, (0, 16.0)))
    assert "no transaction" in reject(target, 1, profile(1, TX, (0, 16.0)), tx="T1")


def test_rejects_a_tx_profile_for_another_transaction() -> None:
    target = store()
    assert "T2" in reject(target, 1, profile(1, TX, (0, 16.0)), tx="T2", active="T1")
    # The profile's own transaction id counts when the request carries none.
    assert "5" in reject(target, 1, profile(1, TX, (0, 16.0), transaction_id=5), active="T1")


def test_tx_profile_for_the_active_transaction_is_accepted() -> None:
    target = store()
    install(target, 1, profile(1, TX, (0, 16.0)), tx="T1", active="T1")
    # 1.6 may leave the transaction id out: it then belongs to the active one.
    install(target, 2, profile(2, TX, (0, 10.0)), active="T9")
    assert [item.transaction_id for item in target.installed()] == ["T1", "T9"]


def test_rejects_an_unknown_evse() -> None:
    target = store(evse_count=2)
    assert "unknown EVSE 3" in reject(target, 3, profile(1, DEFAULT, (0, 16.0)))
    assert "unknown EVSE -1" in reject(target, -1, profile(1, DEFAULT, (0, 16.0)))
    with pytest.raises(ValueError, match="unknown EVSE 3"):
        target.limit_a(3, T0, transaction_start=None, phases=3, voltage_v=230.0)


def test_external_constraints_only_locally() -> None:
    target = store()
    assert "local" in reject(target, 0, profile(1, EXTERNAL, (0, 20.0)))
    reason = target.install(
        0, profile(1, EXTERNAL, (0, 20.0)), now=T0, transaction_id=None, active_transaction_id=None, local=True
    )
    assert reason is None and ids(target) == [1]


def test_rejects_a_recurring_profile_without_a_start() -> None:
    item = profile(1, DEFAULT, (0, 16.0), kind=ProfileKind.RECURRING, recurrency=RecurrencyKind.DAILY, start=None)
    assert "startSchedule" in reject(store(), 1, item)


def test_a_rejected_profile_changes_nothing() -> None:
    target = store(max_stack_level=3)
    install(target, 1, profile(1, DEFAULT, (0, 16.0)))
    # Same id (would replace) but rejected: the old profile stays.
    reject(target, 1, profile(1, DEFAULT, (0, 10.0), level=4))
    [item] = target.installed()
    assert item.profile.schedule.periods[0].limit == 16.0


# -- replacement ------------------------------------------------------------------------------


def test_same_id_replaces_wherever_it_was() -> None:
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0)))
    # The id is unique on the station: installing id 1 on EVSE 2 removes it from EVSE 1.
    install(target, 2, profile(1, DEFAULT, (0, 10.0), level=3))
    assert ids(target, 1) == [] and ids(target, 2) == [1]


def test_same_purpose_and_level_on_the_same_evse_replaces() -> None:
    target = store()
    install(target, 1, profile(1, DEFAULT, (0, 16.0), level=1))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=1))
    assert ids(target) == [2]


def test_same_level_on_another_evse_or_purpose_coexists() -> None:
    target = store()
    install(target, 0, profile(1, DEFAULT, (0, 16.0), level=1))
    install(target, 1, profile(2, DEFAULT, (0, 10.0), level=1))
    install(target, 0, profile(3, MAX, (0, 32.0), level=1))
    install(target, 1, profile(4, TX, (0, 8.0), level=1), active="T1")
    # Listed station-wide first, then by purpose (StationMax, TxDefault) and level.
    assert ids(target) == [3, 1, 2, 4]


def test_without_replacement_an_overlapping_same_level_profile_is_rejected() -> None:
    # 2.0.1: same purpose + level on the same EVSE with another id and overlapping validity → Rejected.
    target = store(replace_same_stack_level=False)
    install(target, 1, profile(1, DEFAULT, (0, 16.0), valid_from=at(0), valid_to=at(2)))
    assert "overlapping" in reject(target, 1, profile(2, DEFAULT, (0, 10.0), valid_from=at(1), valid_to=at(3)))
    # Back to back (10:00 onwards) does not overlap: both stay.
    install(target, 1, profile(3, DEFAULT, (0, 10.0), valid_from=at(2)))
    # The same id still replaces.
    install(target, 1, profile(1, DEFAULT, (0, 12.0), valid_from=at(0), valid_to=at(2)))
    assert sorted(ids(target)) == [1, 3]


# -- clearing ---------------------------------------------------------------------------------


@pytest.fixture
def full() -> ProfileStore:
    target = store()
    install(target, 0, profile(1, MAX, (0, 32.0), level=0))
    install(target, 0, profile(2, DEFAULT, (0, 16.0), level=0))
    install(target, 1, profile(3, DEFAULT, (0, 10.0), level=1))
    install(target, 2, profile(4, DEFAULT, (0, 10.0), level=0))
    install(target, 1, profile(5, TX, (0, 8.0), level=1), active="T1")
    return target


def test_clear_by_id_ignores_the_other_filters(full: ProfileStore) -> None:
    assert full.clear(profile_id=3, evse_id=2, purpose=MAX) == 1
    assert sorted(ids(full)) == [1, 2, 4, 5]
    assert full.clear(profile_id=99) == 0


def test_clear_by_evse(full: ProfileStore) -> None:
    # EVSE 0 means the station-wide profiles, not every EVSE.
    assert full.clear(evse_id=0) == 2
    assert sorted(ids(full)) == [3, 4, 5]


def test_clear_by_purpose(full: ProfileStore) -> None:
    assert full.clear(purpose=DEFAULT) == 3
    assert sorted(ids(full)) == [1, 5]


def test_clear_by_stack_level(full: ProfileStore) -> None:
    assert full.clear(stack_level=1) == 2
    assert sorted(ids(full)) == [1, 2, 4]


def test_clear_by_all_criteria_together(full: ProfileStore) -> None:
    assert full.clear(evse_id=1, purpose=DEFAULT, stack_level=0) == 0
    assert full.clear(evse_id=1, purpose=DEFAULT, stack_level=1) == 1
    assert sorted(ids(full)) == [1, 2, 4, 5]


def test_clear_without_filters_clears_everything(full: ProfileStore) -> None:
    assert full.clear() == 5
    assert full.installed() == []


def test_tx_profiles_end_with_their_transaction(full: ProfileStore) -> None:
    install(full, 2, profile(6, TX, (0, 8.0)), active="T2")
    full.transaction_ended(1)
    # EVSE 1's Tx profile is gone; its TxDefault and EVSE 2's Tx profile stay.
    assert sorted(ids(full)) == [1, 2, 3, 4, 6]


def test_installed_filters_by_evse(full: ProfileStore) -> None:
    assert ids(full, 0) == [1, 2]
    assert ids(full, 1) == [3, 5]
    assert ids(full, 2) == [4]
