"""The state smart charging shares between its parts in one running CSMS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from optivgi_csms.services.sites import SiteService
from optivgi_csms.smart_charging.book import ProfileBook
from optivgi_csms.smart_charging.deviation import Deviations
from optivgi_csms.smart_charging.meters import LiveMeters
from optivgi_csms.smart_charging.outbox import Outbox
from optivgi_csms.smart_charging.timebase import TimeScale
from optivgi_csms.store.database import Database


@dataclass
class Runtime:
    """The store, the stations and the memory of what was measured and sent."""

    database: Database
    sites: SiteService
    is_connected: Callable[[str], bool]
    outbox: Outbox
    #: Stations set up on their current connection (booted, capabilities read): only these are sent
    #: profiles; a station is not sent commands before its boot is answered.
    ready: set[str] = field(default_factory=set)
    scale: TimeScale = field(default_factory=TimeScale)
    meters: LiveMeters = field(default_factory=LiveMeters)
    deviations: Deviations = field(default_factory=Deviations)
    book: ProfileBook = field(default_factory=ProfileBook)

    def is_ready(self, station_id: str) -> bool:
        """Whether the station is connected and set up for smart charging."""
        return station_id in self.ready and self.is_connected(station_id)
