"""The station's smart-charging commands: install and clear profiles, answer composite schedules and
profile queries, each through the ProfileStore and under the station's own settings.

Every profile received is recorded (accepted or not, with the reason) for the run's report; an
accepted change reaches the EVs through the :class:`~simulators.station.charging.LimitController`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from optivgi_csms.domain.charging_profile import ChargingProfile, ChargingSchedule, ProfilePurpose, RateUnit
from simulators.clock import SimClock
from simulators.recorder import ProfileEvent, Recorder
from simulators.smart_charging import InstalledProfile, ProfileStore
from simulators.station.charging import LimitController
from simulators.station.config import StationConfig
from simulators.station.evse import Evse
from simulators.station.profile_codec import describe
from simulators.station.variables import StationVariables

log = logging.getLogger(__name__)


class SmartCharging:
    """One station's profiles and the commands about them."""

    def __init__(
        self,
        config: StationConfig,
        evses: Sequence[Evse],
        variables: StationVariables,
        clock: SimClock,
        recorder: Recorder,
    ) -> None:
        self.config = config
        self.evses = evses
        self.variables = variables
        self.clock = clock
        self.recorder = recorder
        rules = replace(config.rules, evse_count=config.evse_count)
        if config.ocpp_version == "2.0.1":
            # 2.0.1 (K01.FR.05) refuses a second profile at the same purpose and stack level; 1.6 replaces.
            rules = replace(rules, replace_same_stack_level=False)
        self.store = ProfileStore(rules)
        self.limits = LimitController(self.store, evses, config.profile_apply_delay_s)
        variables.on_change(self._setting_changed)

    def _setting_changed(self, name: str) -> None:
        # The rules follow the settings (when the CSMS may change them): new profiles are judged by them.
        if name in ("max_stack_level", "rate_units", "max_periods", "max_profiles"):
            self.store.rules = replace(
                self.store.rules,
                max_stack_level=self.variables["max_stack_level"],
                allowed_units=self.variables.rate_units(),
                max_periods=self.variables["max_periods"],
                max_profiles=self.variables["max_profiles"],
            )

    def _evse(self, evse_id: int) -> Evse | None:
        return self.evses[evse_id - 1] if 1 <= evse_id <= len(self.evses) else None

    @staticmethod
    def _now() -> datetime:
        return SimClock.wall_now()

    def update_limits(self) -> None:
        """Recompute the limits now (the apply delay counts from this moment)."""
        self.limits.update(self._now(), time.monotonic())

    def set_profile(self, evse_id: int, profile: ChargingProfile, transaction_id: str | None) -> str | None:
        """SetChargingProfile (or a remote start's profile): None when installed, else why not.

        ``transaction_id`` is the id the CSMS named; in 1.6 it is the CSMS's integer, translated here
        to the station's own id, which the store keys Tx profiles by.
        """
        reason = self._install(evse_id, profile, transaction_id)
        self.recorder.profile(
            ProfileEvent(
                sim_time=self.clock.sim_now(),
                station_id=self.config.station_id,
                evse_id=evse_id,
                profile=describe(profile, transaction_id),
                accepted=reason is None,
                reason=reason,
            )
        )
        if reason is None:
            self.update_limits()
        else:
            log.info("%s: profile %d refused: %s", self.config.station_id, profile.id, reason)
        return reason

    def _install(self, evse_id: int, profile: ChargingProfile, transaction_id: str | None) -> str | None:
        if not self.variables["smart_charging_enabled"]:
            return "smart charging is disabled (SmartChargingCtrlr.Enabled is false)"
        evse = self._evse(evse_id)
        if evse_id != 0 and evse is None:
            return f"unknown EVSE {evse_id} (the station has {len(self.evses)})"
        active = evse.transaction if evse is not None else None
        if active is not None and transaction_id is not None and transaction_id == active.ocpp_id:
            transaction_id = active.local_id
        return self.store.install(
            evse_id,
            profile,
            # Whole seconds, as OCPP times go: a profile without startSchedule is then in force from the
            # same second a composite schedule asked right away starts at.
            now=self._now().replace(microsecond=0),
            transaction_id=transaction_id,
            active_transaction_id=active.local_id if active is not None else None,
        )

    def refused(self, evse_id: int, payload: dict[str, Any], reason: str) -> None:
        """A profile that could not even be read: recorded like a refused one."""
        self.recorder.profile(
            ProfileEvent(self.clock.sim_now(), self.config.station_id, evse_id, payload, accepted=False, reason=reason)
        )

    def clear(
        self,
        *,
        profile_id: int | None,
        evse_id: int | None,
        purpose: ProfilePurpose | None,
        stack_level: int | None,
    ) -> int:
        """ClearChargingProfile: how many profiles went."""
        removed = self.store.clear(profile_id=profile_id, evse_id=evse_id, purpose=purpose, stack_level=stack_level)
        if removed:
            self.update_limits()
        return removed

    def composite(self, evse_id: int, duration_s: int, unit: RateUnit | None) -> ChargingSchedule | str:
        """GetCompositeSchedule: the schedule from now, in ``unit`` (the station's preferred when None),
        or why there is none. The hardware maximum is part of it, as on real stations."""
        allowed = self.variables.rate_units()
        unit = unit or (RateUnit.AMPERE if RateUnit.AMPERE in allowed else next(iter(allowed), RateUnit.AMPERE))
        if unit not in allowed:
            return f"rate unit {unit.value} is not supported"
        evse = self._evse(evse_id)
        if evse_id != 0 and evse is None:
            return f"unknown EVSE {evse_id}"
        transaction = evse.transaction if evse is not None else None
        return self.store.composite(
            evse_id,
            self._now(),
            duration_s,
            unit,
            transaction_start=transaction.started_at if transaction is not None else None,
            phases=evse.phases_used if evse is not None else self.config.phases,
            voltage_v=self.config.voltage_v,
            max_current_a=self.config.max_current_a,
        )

    def matching(
        self,
        *,
        evse_id: int | None,
        purpose: ProfilePurpose | None,
        stack_level: int | None,
        profile_ids: Sequence[int],
    ) -> list[InstalledProfile]:
        """The installed profiles matching every given criterion (GetChargingProfiles)."""
        return [
            item
            for item in self.store.installed(evse_id)
            if (purpose is None or item.profile.purpose is purpose)
            and (stack_level is None or item.profile.stack_level == stack_level)
            and (not profile_ids or item.profile.id in profile_ids)
        ]

    def ocpp_transaction_id(self, local_id: str | None) -> str | None:
        """The id the CSMS knows a Tx profile's session by, from the station's own."""
        for evse in self.evses:
            if evse.transaction is not None and evse.transaction.local_id == local_id:
                return evse.transaction.ocpp_id
        return local_id if self.config.ocpp_version == "2.0.1" else None
