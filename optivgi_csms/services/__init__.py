"""What happens on each event: store it, commit, and answer. Protocol adapters and the API call these."""

from __future__ import annotations

from dataclasses import dataclass

from optivgi_csms.config import Settings
from optivgi_csms.services.api_tokens import ApiTokenService
from optivgi_csms.services.authorization import AuthorizationService
from optivgi_csms.services.charging_limits import ChargingLimitService
from optivgi_csms.services.charging_needs import ChargingNeedsService
from optivgi_csms.services.charging_profiles import ChargingProfileService
from optivgi_csms.services.data_transfers import DataTransferService
from optivgi_csms.services.device_model import DeviceModelService
from optivgi_csms.services.events import EventBus
from optivgi_csms.services.id_tags import IdTagService
from optivgi_csms.services.journal import MessageJournal
from optivgi_csms.services.meter_values import MeterValueService
from optivgi_csms.services.reservations import ReservationService
from optivgi_csms.services.sites import SiteService
from optivgi_csms.services.station_events import StationEventService
from optivgi_csms.services.stations import StationService
from optivgi_csms.services.transactions import TransactionService
from optivgi_csms.store.database import Database


@dataclass(frozen=True)
class Services:
    """Every service of the CSMS over one database."""

    stations: StationService
    authorization: AuthorizationService
    id_tags: IdTagService
    transactions: TransactionService
    meter_values: MeterValueService
    data_transfers: DataTransferService
    charging_profiles: ChargingProfileService
    reservations: ReservationService
    journal: MessageJournal
    charging_needs: ChargingNeedsService
    charging_limits: ChargingLimitService
    device_model: DeviceModelService
    station_events: StationEventService
    sites: SiteService
    api_tokens: ApiTokenService
    bus: EventBus

    @classmethod
    def create(cls, database: Database, settings: Settings) -> Services:
        """Wire the services to ``database`` with the policies in ``settings``."""
        bus = EventBus()
        authorization = AuthorizationService(database, accept_unknown=settings.unknown_id_tags == "accept")
        return cls(
            stations=StationService(
                database, bus, boot_policy=settings.boot_policy, heartbeat_interval_s=settings.heartbeat_interval
            ),
            authorization=authorization,
            id_tags=IdTagService(database),
            transactions=TransactionService(database, authorization, bus),
            meter_values=MeterValueService(database, bus),
            data_transfers=DataTransferService(database, known_vendors=settings.data_transfer_vendors),
            charging_profiles=ChargingProfileService(database),
            reservations=ReservationService(database, bus),
            journal=MessageJournal(database, settings.journal_size),
            charging_needs=ChargingNeedsService(database, bus),
            charging_limits=ChargingLimitService(database),
            device_model=DeviceModelService(database),
            station_events=StationEventService(database),
            sites=SiteService(database, bus),
            api_tokens=ApiTokenService(database),
            bus=bus,
        )
