"""The Translation interface (Opti-VGI's name): how the scheduler reads EVs and limits from a system and
sends the profiles back. The live server implements :class:`AsyncTranslation`; an Opti-VGI port can keep
its synchronous :class:`Translation`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

from optivgi_csms.scheduling.ev import EV, ChargingProfile, ChargingRateUnit
from optivgi_csms.scheduling.site import Site

#: What ``get_peak_power_demand`` returns: a site limit in kW per slot (Opti-VGI's form) or a full Site.
PeakPowerDemand = Sequence[float] | Site


class Translation(AbstractContextManager["Translation"], ABC):
    """Synchronous translation layer, as in Opti-VGI (used as a context manager by the thread worker)."""

    @abstractmethod
    def get_evs(self, group: str) -> tuple[list[EV], float | None]:
        """The EVs of station group ``group`` (plugged in and expected), and the group's voltage if known."""

    @abstractmethod
    def get_peak_power_demand(self, group: str, now: datetime, voltage: float | None = None) -> PeakPowerDemand:
        """The group's limits from ``now``: one kW value per slot, or a :class:`Site`."""

    @abstractmethod
    def send_power_to_evs(self, powers: dict[EV, ChargingProfile], unit: ChargingRateUnit | None = None) -> None:
        """Deliver each plugged-in EV's profile (in ``unit`` if given, else the EV's own)."""

    def __exit__(self, *exc_info: object) -> None:
        return None


class AsyncTranslation(Protocol):
    """The same three calls for an asyncio system (the live server: database reads, OCPP sends)."""

    async def get_evs(self, group: str) -> tuple[list[EV], float | None]:
        """See :meth:`Translation.get_evs`."""
        ...

    async def get_peak_power_demand(self, group: str, now: datetime, voltage: float | None = None) -> PeakPowerDemand:
        """See :meth:`Translation.get_peak_power_demand`."""
        ...

    async def send_power_to_evs(self, powers: dict[EV, ChargingProfile], unit: ChargingRateUnit | None = None) -> None:
        """See :meth:`Translation.send_power_to_evs`."""
        ...
