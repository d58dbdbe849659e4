"""The charging profiles a simulated station holds, the rules it accepts them by, and the limit in force.

What a real OCPP 1.6 / 2.0.1 station does with SetChargingProfile, ClearChargingProfile and
GetCompositeSchedule, as plain data: no protocol, no clock of its own (every call gets the time).

Precedence on an EVSE (1.6 §3.13, 2.0.1 K01): the limit in force is the minimum of

* the station maximum (``StationMax``, only on EVSE 0),
* external constraints (``ExternalConstraints``, set locally, on EVSE 0 or the EVSE), and
* the transaction's profile: ``Tx`` while the transaction runs, else ``TxDefault``. TxDefault
  profiles on the EVSE and on EVSE 0 form one stack; at the same stack level the EVSE's own wins.

Within one stack the highest stack level with a period in force wins; when its schedule has no
period in force (not yet valid, validity over, duration elapsed, not started) the next lower
level applies. A Tx profile that has lapsed lets TxDefault through again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from optivgi_csms.domain.charging_profile import (
    ChargingProfile,
    ChargingSchedule,
    ProfileKind,
    ProfilePurpose,
    RateUnit,
)

from .composite import Candidate, Layer, composite_schedule, limit_a_at, schedule_anchor

# The hardware maximum a composite assumes when the caller gives none (StationConfig's default).
DEFAULT_MAX_CURRENT_A = 32.0


@dataclass(frozen=True)
class ProfileRules:
    """What the station accepts: its 1.6 configuration keys / 2.0.1 SmartChargingCtrlr variables.

    ``allowed_units`` is ``ChargingScheduleAllowedChargingRateUnit`` / ``RateUnit``,
    ``max_stack_level`` is ``ChargeProfileMaxStackLevel`` / ``ProfileStackLevel``,
    ``max_periods`` is ``ChargingScheduleMaxPeriods`` / ``PeriodsPerSchedule``,
    ``max_profiles`` is ``MaxChargingProfilesInstalled`` / ``Entries`` of the profiles.
    ``replace_same_stack_level``: True (1.6) replaces a profile with the same purpose and stack
    level on the same EVSE; False (as 2.0.1 requires) rejects a new one with a different id whose
    validity overlaps the installed one's.
    """

    allowed_units: frozenset[RateUnit] = frozenset({RateUnit.AMPERE, RateUnit.WATT})
    max_stack_level: int = 8
    max_periods: int = 24
    max_profiles: int = 16
    evse_count: int = 1
    replace_same_stack_level: bool = True


@dataclass(frozen=True)
class InstalledProfile:
    """A profile as installed on one EVSE (0: the whole station).

    ``transaction_id`` is the station's id of the transaction a Tx profile belongs to.
    """

    evse_id: int
    profile: ChargingProfile
    installed_at: datetime
    transaction_id: str | None

    def expired(self, now: datetime) -> bool:
        """Whether it can never be in force again: validity over, or an Absolute schedule run out."""
        profile = self.profile
        if profile.valid_to is not None and profile.valid_to <= now:
            return True
        schedule = profile.schedule
        if profile.kind is ProfileKind.ABSOLUTE and schedule.duration_s is not None:
            start = schedule.start or self.installed_at
            return start + timedelta(seconds=schedule.duration_s) <= now
        return False


# The order profiles are listed in (GetChargingProfiles, reports): station-wide first.
_PURPOSE_ORDER = {
    ProfilePurpose.STATION_MAX: 0,
    ProfilePurpose.EXTERNAL_CONSTRAINTS: 1,
    ProfilePurpose.TX_DEFAULT: 2,
    ProfilePurpose.TX: 3,
}


class ProfileStore:
    """The profiles of one station and the limits they impose."""

    def __init__(self, rules: ProfileRules) -> None:
        self.rules = rules
        self._profiles: list[InstalledProfile] = []

    # -- installing and removing -------------------------------------------------------------

    def install(
        self,
        evse_id: int,
        profile: ChargingProfile,
        *,
        now: datetime,
        transaction_id: str | None,
        active_transaction_id: str | None,
        local: bool = False,
    ) -> str | None:
        """Install ``profile`` on ``evse_id`` (SetChargingProfile); None if accepted, else why not.

        ``transaction_id`` is the transaction the request names (1.6 may leave it out; when None the
        profile's own ``transaction_id`` is used if it has one), ``active_transaction_id`` the one
        running on the EVSE now. ``local=True`` installs ExternalConstraints (a local energy
        manager's limit), which a CSMS may not set. Expired profiles are dropped first so they
        do not count against ``max_profiles``.
        """
        self.purge_expired(now)
        if transaction_id is None and profile.transaction_id is not None:
            transaction_id = str(profile.transaction_id)
        reason = self._rejection(evse_id, profile, transaction_id, active_transaction_id, local)
        if reason is not None:
            return reason
        # The id is unique station-wide; purpose + stack level are compared on the same EVSE only.
        same_id = [old for old in self._profiles if old.profile.id == profile.id]
        same_level = [
            old
            for old in self._profiles
            if old.profile.id != profile.id
            and old.evse_id == evse_id
            and old.profile.purpose is profile.purpose
            and old.profile.stack_level == profile.stack_level
        ]
        if self.rules.replace_same_stack_level:
            replaced = same_id + same_level
        else:
            clash = next((old for old in same_level if _overlap(old, profile)), None)
            if clash is not None:
                return (
                    f"profile {clash.profile.id} already has {profile.purpose.value} stack level "
                    f"{profile.stack_level} on EVSE {evse_id} for an overlapping validity"
                )
            replaced = same_id
        if len(self._profiles) - len(replaced) + 1 > self.rules.max_profiles:
            return f"{self.rules.max_profiles} profiles already installed (MaxChargingProfilesInstalled)"
        self._profiles = [old for old in self._profiles if not any(old is gone for gone in replaced)]
        tx = (transaction_id or active_transaction_id) if profile.purpose is ProfilePurpose.TX else None
        self._profiles.append(InstalledProfile(evse_id, profile, now, tx))
        return None

    def _rejection(
        self,
        evse_id: int,
        profile: ChargingProfile,
        transaction_id: str | None,
        active_transaction_id: str | None,
        local: bool,
    ) -> str | None:
        rules = self.rules
        purpose = profile.purpose
        schedule = profile.schedule
        if not 0 <= evse_id <= rules.evse_count:
            return f"unknown EVSE {evse_id} (the station has {rules.evse_count})"
        if purpose is ProfilePurpose.EXTERNAL_CONSTRAINTS and not local:
            return "ExternalConstraints are set by a local energy manager, never by the CSMS"
        if purpose is ProfilePurpose.STATION_MAX:
            if evse_id != 0:
                return f"a station maximum profile belongs on EVSE 0, not EVSE {evse_id}"
            if profile.kind is ProfileKind.RELATIVE:
                return "a station maximum profile cannot be Relative (it has no transaction)"
        if purpose is ProfilePurpose.TX:
            if evse_id == 0:
                return "a Tx profile needs an EVSE, not EVSE 0"
            if active_transaction_id is None:
                return f"no transaction is active on EVSE {evse_id} for a Tx profile"
            if transaction_id is not None and transaction_id != active_transaction_id:
                return f"transaction {transaction_id} is not the one active on EVSE {evse_id}"
        if schedule.unit not in rules.allowed_units:
            allowed = ", ".join(sorted(unit.value for unit in rules.allowed_units)) or "none"
            return f"rate unit {schedule.unit.value} is not allowed (allowed: {allowed})"
        if profile.stack_level > rules.max_stack_level:
            return f"stack level {profile.stack_level} is above ChargeProfileMaxStackLevel {rules.max_stack_level}"
        if len(schedule.periods) > rules.max_periods:
            return f"{len(schedule.periods)} periods exceed ChargingScheduleMaxPeriods {rules.max_periods}"
        if profile.kind is ProfileKind.RECURRING and schedule.start is None:
            return "a Recurring profile needs startSchedule"
        return None

    def clear(
        self,
        *,
        profile_id: int | None = None,
        evse_id: int | None = None,
        purpose: ProfilePurpose | None = None,
        stack_level: int | None = None,
    ) -> int:
        """Remove profiles (ClearChargingProfile); returns how many went (0: answer ``Unknown``).

        With ``profile_id`` only that profile goes (the other filters are ignored, as both
        versions say the id identifies it). Otherwise every profile matching all the given
        filters goes; no filter at all clears everything. ``evse_id=0`` matches only the
        profiles installed on EVSE 0.
        """
        if profile_id is not None:

            def gone(item: InstalledProfile) -> bool:
                return item.profile.id == profile_id
        else:

            def gone(item: InstalledProfile) -> bool:
                return (
                    (evse_id is None or item.evse_id == evse_id)
                    and (purpose is None or item.profile.purpose is purpose)
                    and (stack_level is None or item.profile.stack_level == stack_level)
                )

        return self._remove(gone)

    def transaction_ended(self, evse_id: int) -> None:
        """The transaction on ``evse_id`` ended: its Tx profiles end with it (TxDefault stays)."""
        self._remove(lambda item: item.evse_id == evse_id and item.profile.purpose is ProfilePurpose.TX)

    def purge_expired(self, now: datetime) -> int:
        """Drop profiles that can never be in force again (see :meth:`InstalledProfile.expired`)."""
        return self._remove(lambda item: item.expired(now))

    def _remove(self, gone: Callable[[InstalledProfile], bool]) -> int:
        kept = [item for item in self._profiles if not gone(item)]
        removed = len(self._profiles) - len(kept)
        self._profiles = kept
        return removed

    def installed(self, evse_id: int | None = None) -> list[InstalledProfile]:
        """The installed profiles (on ``evse_id`` only, if given), station-wide purposes first."""
        items = [item for item in self._profiles if evse_id is None or item.evse_id == evse_id]
        return sorted(
            items, key=lambda item: (item.evse_id, _PURPOSE_ORDER[item.profile.purpose], item.profile.stack_level)
        )

    # -- limits --------------------------------------------------------------------------------

    def layers(self, evse_id: int, *, transaction_start: datetime | None, relative_anchor: datetime) -> list[Layer]:
        """The stacks whose minimum limits ``evse_id``, each in precedence order (see module doc).

        Relative profiles count from ``transaction_start``, or from ``relative_anchor`` (the
        instant asked about) when there is no transaction: what an EV plugging in then would get.
        """
        self._check_evse(evse_id)
        anchor_tx = transaction_start or relative_anchor

        def stack(purposes: set[ProfilePurpose], evses: tuple[int, ...]) -> list[Candidate]:
            items = [item for item in self._profiles if item.profile.purpose in purposes and item.evse_id in evses]
            # Highest stack level first; on a tie Tx before TxDefault, then the EVSE's own before EVSE 0's.
            items.sort(
                key=lambda item: (
                    item.profile.purpose is ProfilePurpose.TX,
                    item.profile.stack_level,
                    item.evse_id == evse_id,
                ),
                reverse=True,
            )
            return [
                Candidate(
                    item.profile,
                    schedule_anchor(item.profile, installed_at=item.installed_at, transaction_start=anchor_tx),
                )
                for item in items
            ]

        station_wide = (0,)
        here = (0, evse_id) if evse_id else station_wide
        layers: list[Layer] = [
            stack({ProfilePurpose.STATION_MAX}, station_wide),
            stack({ProfilePurpose.EXTERNAL_CONSTRAINTS}, here),
        ]
        if evse_id:
            # Tx profiles exist only while their transaction runs (transaction_ended drops them),
            # and all of them rank above every TxDefault: one stack, Tx first.
            layers.append(stack({ProfilePurpose.TX, ProfilePurpose.TX_DEFAULT}, here))
        return [layer for layer in layers if layer]

    def station_limit_a(self, when: datetime, *, phases: int, voltage_v: float) -> float | None:
        """The station-wide per-phase limit at ``when`` (StationMax and station-wide constraints).

        For sharing one station maximum over several EVSEs; None if no such profile limits.
        """
        layers = self.layers(0, transaction_start=None, relative_anchor=when)
        return limit_a_at(layers, when, phases=phases, voltage_v=voltage_v)

    def limit_a(
        self,
        evse_id: int,
        when: datetime,
        *,
        transaction_start: datetime | None,
        phases: int,
        voltage_v: float,
        max_current_a: float | None = None,
    ) -> float | None:
        """The per-phase current the profiles allow on ``evse_id`` at ``when``; None if none limits.

        ``phases`` is the number of phases the EV charges on (the station's when none is
        plugged in), ``voltage_v`` the station's phase voltage; both convert W limits. The value
        is exact (a W limit gives e.g. 15.94… A); composites round it to one decimal.
        ``max_current_a`` adds a hardware limit to the minimum.
        """
        layers = self.layers(evse_id, transaction_start=transaction_start, relative_anchor=when)
        return limit_a_at(layers, when, phases=phases, voltage_v=voltage_v, cap_a=max_current_a)

    def composite(
        self,
        evse_id: int,
        start: datetime,
        duration_s: int,
        unit: RateUnit,
        *,
        transaction_start: datetime | None,
        phases: int,
        voltage_v: float,
        max_current_a: float = DEFAULT_MAX_CURRENT_A,
    ) -> ChargingSchedule:
        """The composite schedule of ``evse_id`` over ``[start, start + duration_s)`` in ``unit``.

        At every instant its limit is :meth:`limit_a` (with the hardware ``max_current_a``, which
        also fills the time no profile limits) in ``unit``, one decimal, equal neighbours merged.
        ``start`` is cut to whole seconds. EVSE 0 gets the station-wide limits, with the sum of
        the EVSEs' hardware maxima as its cap. Relative profiles without a transaction count
        from ``start``. Whether ``unit`` is allowed is the caller's check (``rules.allowed_units``).
        """
        start = start.replace(microsecond=0)
        layers = self.layers(evse_id, transaction_start=transaction_start, relative_anchor=start)
        cap_a = max_current_a if evse_id else max_current_a * self.rules.evse_count
        return composite_schedule(layers, start, duration_s, unit, phases=phases, voltage_v=voltage_v, cap_a=cap_a)

    def _check_evse(self, evse_id: int) -> None:
        if not 0 <= evse_id <= self.rules.evse_count:
            raise ValueError(f"unknown EVSE {evse_id} (the station has {self.rules.evse_count})")


def _overlap(old: InstalledProfile, new: ChargingProfile) -> bool:
    """Whether two profiles' validity windows (open-ended where unset) overlap."""
    old_from, old_to = old.profile.valid_from, old.profile.valid_to
    new_from, new_to = new.valid_from, new.valid_to
    starts_before_other_ends = old_from is None or new_to is None or old_from < new_to
    ends_after_other_starts = old_to is None or new_from is None or new_from < old_to
    return starts_before_other_ends and ends_after_other_starts
