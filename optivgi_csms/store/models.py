"""SQLAlchemy 2 ORM models: one table per thing the CSMS must remember.

Stations of both OCPP versions share these tables. A place on a station is (evse_id,
connector_id): 1.6 connector ``n`` is EVSE ``n`` connector 1 (see :class:`~optivgi_csms.domain.station.EvseRef`).
Every time is stored as UTC (:class:`~optivgi_csms.store.types.UTCDateTime`). The schema itself is
owned by the Alembic migrations in ``migrations/``; a test checks that these models match them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from optivgi_csms.store.types import BigIntKey, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention, so migrations can name (and drop) constraints."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


def _station_fk() -> Any:
    return mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"), index=True)


class Site(Base):
    """A site (station group): the grid connection its stations share, with limits, prices and defaults.

    Limit and price schedules are lists of ``{"start": ISO time, "limit_kw"/"price": value}`` steps.
    """

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    limit_kw: Mapped[float | None] = mapped_column(Float)
    limit_schedule: Mapped[list[Any]] = mapped_column(JSON, default=list)
    phase_limits_a: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prices: Mapped[list[Any]] = mapped_column(JSON, default=list)
    voltage_v: Mapped[float] = mapped_column(Float, default=230.0)
    min_current_a: Mapped[float] = mapped_column(Float, default=6.0)
    default_dwell_s: Mapped[int] = mapped_column(Integer, default=8 * 3600)
    default_energy_kwh: Mapped[float] = mapped_column(Float, default=20.0)
    algorithm: Mapped[str] = mapped_column(String(32), default="lp")
    resolution_s: Mapped[int] = mapped_column(Integer, default=900)
    horizon_s: Mapped[int] = mapped_column(Integer, default=24 * 3600)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Station(Base):
    """A charging station: registration, credentials and what it said at its last boot."""

    __tablename__ = "stations"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    # The site it belongs to; None means the default site.
    site_id: Mapped[str | None] = mapped_column(String(48), ForeignKey("sites.id", ondelete="RESTRICT"), index=True)
    # Smart-charging capabilities read at boot (units, stack levels, periods, profiles), as the
    # version-neutral dict of smart_charging.capabilities.Capabilities.
    capabilities: Mapped[dict[str, Any] | None]
    # Why smart charging does not control this station (a rejected profile), when it does not.
    smart_charging_note: Mapped[str | None] = mapped_column(String(255))
    # Registered by an operator (``station add``); a station that merely connected is not.
    registered: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    ocpp_version: Mapped[str | None] = mapped_column(String(8))
    vendor: Mapped[str | None] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(50))
    serial_number: Mapped[str | None] = mapped_column(String(25))
    charge_box_serial_number: Mapped[str | None] = mapped_column(String(25))
    firmware_version: Mapped[str | None] = mapped_column(String(50))
    iccid: Mapped[str | None] = mapped_column(String(20))
    imsi: Mapped[str | None] = mapped_column(String(20))
    meter_type: Mapped[str | None] = mapped_column(String(25))
    meter_serial_number: Mapped[str | None] = mapped_column(String(25))
    boot_status: Mapped[str | None] = mapped_column(String(16))
    boot_reason: Mapped[str | None] = mapped_column(String(32))
    firmware_status: Mapped[str | None] = mapped_column(String(32))
    diagnostics_status: Mapped[str | None] = mapped_column(String(32))
    log_status: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=func.now())
    last_boot_at: Mapped[datetime | None]
    last_heartbeat_at: Mapped[datetime | None]
    last_connected_at: Mapped[datetime | None]
    last_disconnected_at: Mapped[datetime | None]


class _ReportedStatus:
    """The fields of a StatusNotification, shared by the current state and its history."""

    evse_id: Mapped[int] = mapped_column(Integer)
    connector_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(50))
    info: Mapped[str | None] = mapped_column(String(50))
    vendor_id: Mapped[str | None] = mapped_column(String(255))
    vendor_error_code: Mapped[str | None] = mapped_column(String(50))


class Connector(_ReportedStatus, Base):
    """The current state of one EVSE/connector of a station (EVSE 0 connector 0 is the station)."""

    __tablename__ = "connectors"
    __table_args__ = (UniqueConstraint("station_id", "evse_id", "connector_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = _station_fk()
    # The station's own time of the status, and when we received it.
    status_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class StatusNotification(_ReportedStatus, Base):
    """Every status a station reported, in arrival order: the history behind :class:`Connector`."""

    __tablename__ = "status_notifications"
    __table_args__ = (
        Index(None, "station_id", "received_at"),
        # A report repeated by the station (or replayed by the writer) is stored once; reports without the
        # station's time (optional in 1.6) cannot be told apart and are all kept (NULLs never conflict).
        Index(
            "uq_status_notifications_report",
            "station_id",
            "evse_id",
            "connector_id",
            "timestamp",
            "status",
            text("coalesce(error_code, '')"),
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"))
    timestamp: Mapped[datetime | None]
    received_at: Mapped[datetime]


class IdTag(Base):
    """An RFID card or other token that may start and stop sessions."""

    __tablename__ = "id_tags"

    id_tag: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_type: Mapped[str | None] = mapped_column(String(20))
    # Accepted, Blocked, Expired or Invalid.
    status: Mapped[str] = mapped_column(String(16), default="Accepted")
    expiry_date: Mapped[datetime | None]
    parent_id_tag: Mapped[str | None] = mapped_column(String(36))
    note: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=func.now())


class Transaction(Base):
    """A charging session. The integer ``id`` is the 1.6 ``transactionId``; 2.0.1 string ids are kept
    in ``ocpp_transaction_id``."""

    __tablename__ = "transactions"
    __table_args__ = (
        # A retransmitted 1.6 start (same place, same station time) is the same session. 2.0.1 sessions
        # are told apart by their own ids, and two may share a place and a start (a power cut ends both
        # at once and their queued Ended events, naming no EVSE, arrive first): the rule is 1.6's only.
        Index(
            "uq_transactions_v16_start",
            "station_id",
            "evse_id",
            "started_at",
            unique=True,
            sqlite_where=text("ocpp_transaction_id IS NULL"),
            postgresql_where=text("ocpp_transaction_id IS NULL"),
        ),
        # A 2.0.1 station names its sessions; one name is one session.
        UniqueConstraint("station_id", "ocpp_transaction_id"),
        Index(None, "station_id", "stopped_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"))
    evse_id: Mapped[int] = mapped_column(Integer)
    connector_id: Mapped[int] = mapped_column(Integer)
    ocpp_transaction_id: Mapped[str | None] = mapped_column(String(36))
    id_tag: Mapped[str | None] = mapped_column(String(36), index=True)
    # The verdict on the id tag when the session started (Accepted, Invalid, ...).
    authorization_status: Mapped[str | None] = mapped_column(String(16))
    id_token_type: Mapped[str | None] = mapped_column(String(20))
    reservation_id: Mapped[int | None]
    # 2.0.1: the id the CSMS gave RequestStartTransaction, echoed by the station's events.
    remote_start_id: Mapped[int | None]
    # Unknown until a 2.0.1 station reports an energy register for the session.
    meter_start_wh: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[datetime]
    meter_stop_wh: Mapped[float | None] = mapped_column(Float)
    stopped_at: Mapped[datetime | None]
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    stop_id_tag: Mapped[str | None] = mapped_column(String(36))
    # 2.0.1: the charging state and sequence number of the newest event (events may arrive out of order).
    charging_state: Mapped[str | None] = mapped_column(String(20))
    last_seq_no: Mapped[int | None]
    # 2.0.1: whether the station's Started event has arrived (started_at is provisional until then).
    start_confirmed: Mapped[bool] = mapped_column(Boolean, default=True)
    # What the driver or operator said the session needs (through the API), for the scheduler.
    departure_at: Mapped[datetime | None]
    energy_target_kwh: Mapped[float | None] = mapped_column(Float)
    # Why the scheduler treats this session as uncontrolled (its profile was rejected), when it does.
    uncontrolled_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def energy_wh(self) -> float | None:
        """Energy delivered in the session, once it has stopped and both meter readings are known."""
        if self.meter_stop_wh is None or self.meter_start_wh is None:
            return None
        return self.meter_stop_wh - self.meter_start_wh


class MeterValue(Base):
    """One sampled value. A sample repeated by a station (same place, time, measurand, phase,
    location and context) is stored once."""

    __tablename__ = "meter_values"
    __table_args__ = (
        Index(None, "transaction_id", "timestamp"),
        Index(None, "station_id", "timestamp"),
        Index(
            "uq_meter_values_sample",
            "station_id",
            "evse_id",
            "connector_id",
            "timestamp",
            "measurand",
            text("coalesce(phase, '')"),
            "location",
            "context",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"))
    evse_id: Mapped[int] = mapped_column(Integer)
    connector_id: Mapped[int] = mapped_column(Integer)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id", ondelete="RESTRICT"))
    # The station's transaction reference when it matches no known transaction: kept, not lost.
    ocpp_transaction_ref: Mapped[str | None] = mapped_column(String(36))
    timestamp: Mapped[datetime]
    measurand: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str | None] = mapped_column(String(8))
    unit: Mapped[str | None] = mapped_column(String(16))
    context: Mapped[str] = mapped_column(String(32))
    location: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(Text)
    # The value as a number in ``unit`` (2.0.1 multipliers applied); None when not a plain number.
    value_numeric: Mapped[float | None] = mapped_column(Float)
    # 2.0.1 signedMeterValue (signed data, method, encoding, key) as sent.
    signed_data: Mapped[dict[str, Any] | None]
    received_at: Mapped[datetime]


class Reservation(Base):
    """A reservation sent with ReserveNow; ``id`` is the ``reservationId`` the station saw."""

    __tablename__ = "reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = _station_fk()
    evse_id: Mapped[int] = mapped_column(Integer)
    id_tag: Mapped[str] = mapped_column(String(36))
    parent_id_tag: Mapped[str | None] = mapped_column(String(36))
    expires_at: Mapped[datetime]
    # A reservation for a time window: ReserveNow goes out at ``starts_at`` (None: when made); the
    # scheduler plans ``energy_kwh`` (None: the site's default) for the EV it holds the place for.
    starts_at: Mapped[datetime | None]
    energy_kwh: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ChargingProfileRecord(Base):
    """A charging profile the CSMS sent, with the station's answer."""

    __tablename__ = "charging_profiles"
    __table_args__ = (Index(None, "station_id", "evse_id", "profile_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"))
    evse_id: Mapped[int] = mapped_column(Integer)
    profile_id: Mapped[int] = mapped_column(Integer)
    stack_level: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(24))
    kind: Mapped[str] = mapped_column(String(16))
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id", ondelete="RESTRICT"))
    valid_from: Mapped[datetime | None]
    valid_to: Mapped[datetime | None]
    # The whole profile in the version-neutral form of ChargingProfile.to_dict().
    profile: Mapped[dict[str, Any]]
    # The station's answer: Accepted, Rejected, NotSupported; or Timeout / a CALLERROR code.
    status: Mapped[str | None] = mapped_column(String(40))
    sent_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    cleared_at: Mapped[datetime | None]


class DataTransferRecord(Base):
    """A DataTransfer message in either direction."""

    __tablename__ = "data_transfers"
    __table_args__ = (
        Index(None, "station_id", "received_at"),
        # A DataTransfer carries no time of its own: the key is when we took it in, fixed before the write,
        # so only the writer's replay of the same message is caught.
        Index("uq_data_transfers_message", "station_id", "direction", "vendor_id", "received_at", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"))
    # "in" from the station, "out" from the CSMS.
    direction: Mapped[str] = mapped_column(String(3))
    vendor_id: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(50))
    data: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(String(24))
    received_at: Mapped[datetime]


class JournalEntry(Base):
    """A raw OCPP frame, kept for debugging; the journal is pruned to a configured size."""

    __tablename__ = "ocpp_journal"

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48), index=True)
    # "in" from the station, "out" from the CSMS.
    direction: Mapped[str] = mapped_column(String(3))
    message: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class TransactionEventRecord(Base):
    """Every 2.0.1 TransactionEvent, once: (transaction, seqNo) is unique, so a repeated event is a no-op."""

    __tablename__ = "transaction_events"
    __table_args__ = (UniqueConstraint("transaction_id", "seq_no"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id", ondelete="RESTRICT"))
    station_id: Mapped[str] = mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"))
    seq_no: Mapped[int] = mapped_column(Integer)
    event_type: Mapped[str] = mapped_column(String(8))
    trigger_reason: Mapped[str] = mapped_column(String(32))
    timestamp: Mapped[datetime]
    offline: Mapped[bool] = mapped_column(Boolean, default=False)
    charging_state: Mapped[str | None] = mapped_column(String(20))
    stopped_reason: Mapped[str | None] = mapped_column(String(32))
    id_tag: Mapped[str | None] = mapped_column(String(36))
    id_token_type: Mapped[str | None] = mapped_column(String(20))
    remote_start_id: Mapped[int | None]
    number_of_phases_used: Mapped[int | None]
    cable_max_current_a: Mapped[int | None]
    reservation_id: Mapped[int | None]
    received_at: Mapped[datetime]


class ChargingNeedsRecord(Base):
    """What an EV asked for through NotifyEVChargingNeeds (ISO 15118), with the CSMS's answer."""

    __tablename__ = "ev_charging_needs"
    __table_args__ = (Index(None, "station_id", "evse_id", "received_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"))
    evse_id: Mapped[int] = mapped_column(Integer)
    # The session open on the EVSE when the needs arrived, if any.
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("transactions.id", ondelete="RESTRICT"))
    requested_energy_transfer: Mapped[str] = mapped_column(String(32))
    departure_time: Mapped[datetime | None]
    energy_amount_wh: Mapped[float | None] = mapped_column(Float)
    ev_min_current_a: Mapped[float | None] = mapped_column(Float)
    ev_max_current_a: Mapped[float | None] = mapped_column(Float)
    ev_max_voltage_v: Mapped[float | None] = mapped_column(Float)
    ev_max_power_w: Mapped[float | None] = mapped_column(Float)
    state_of_charge: Mapped[int | None]
    ev_energy_capacity_wh: Mapped[float | None] = mapped_column(Float)
    max_schedule_tuples: Mapped[int | None]
    # The whole chargingNeeds object as sent, for fields not broken out above.
    raw: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]


class DeviceVariable(Base):
    """One attribute of a station's device model (2.0.1), as last reported, read or set."""

    __tablename__ = "device_variables"
    __table_args__ = (
        Index(
            "uq_device_variables_attribute",
            "station_id",
            "component",
            text("coalesce(component_instance, '')"),
            text("coalesce(evse_id, -1)"),
            text("coalesce(connector_id, -1)"),
            "variable",
            text("coalesce(variable_instance, '')"),
            "attribute_type",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = _station_fk()
    component: Mapped[str] = mapped_column(String(50))
    component_instance: Mapped[str | None] = mapped_column(String(50))
    evse_id: Mapped[int | None]
    connector_id: Mapped[int | None]
    variable: Mapped[str] = mapped_column(String(50))
    variable_instance: Mapped[str | None] = mapped_column(String(50))
    attribute_type: Mapped[str] = mapped_column(String(8))
    value: Mapped[str | None] = mapped_column(String(2500))
    mutability: Mapped[str | None] = mapped_column(String(10))
    persistent: Mapped[bool | None] = mapped_column(Boolean)
    constant: Mapped[bool | None] = mapped_column(Boolean)
    data_type: Mapped[str | None] = mapped_column(String(20))
    unit: Mapped[str | None] = mapped_column(String(16))
    min_limit: Mapped[float | None] = mapped_column(Float)
    max_limit: Mapped[float | None] = mapped_column(Float)
    values_list: Mapped[str | None] = mapped_column(String(1000))
    updated_at: Mapped[datetime]


class ChargingLimitRecord(Base):
    """A limit a station reported from an external source (NotifyChargingLimit), until it is cleared."""

    __tablename__ = "charging_limits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = _station_fk()
    evse_id: Mapped[int | None]
    source: Mapped[str] = mapped_column(String(20))
    is_grid_critical: Mapped[bool | None] = mapped_column(Boolean)
    # The schedules in the version-neutral form of ChargingSchedule (a list; may be empty).
    schedules: Mapped[list[Any]] = mapped_column(JSON)
    received_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]


class ReportedChargingProfile(Base):
    """A profile a station says it has installed (ReportChargingProfiles, answering GetChargingProfiles)."""

    __tablename__ = "reported_charging_profiles"
    __table_args__ = (Index(None, "station_id", "request_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"))
    request_id: Mapped[int] = mapped_column(Integer)
    evse_id: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))
    # The profile in the version-neutral form of ChargingProfile.to_dict().
    profile: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]


class SecurityEvent(Base):
    """A SecurityEventNotification."""

    __tablename__ = "security_events"
    __table_args__ = (
        Index(None, "station_id", "timestamp"),
        Index(
            "uq_security_events_event", "station_id", "type", "timestamp", text("coalesce(tech_info, '')"), unique=True
        ),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"))
    type: Mapped[str] = mapped_column(String(50))
    timestamp: Mapped[datetime]
    tech_info: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime]


class DeviceEvent(Base):
    """A NotifyEvent entry: a monitored variable of the station changed or crossed a threshold."""

    __tablename__ = "device_events"
    __table_args__ = (
        Index(None, "station_id", "timestamp"),
        Index("uq_device_events_event", "station_id", "event_id", "timestamp", unique=True),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(48), ForeignKey("stations.id", ondelete="RESTRICT"))
    event_id: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[datetime]
    trigger: Mapped[str] = mapped_column(String(16))
    component: Mapped[str] = mapped_column(String(50))
    variable: Mapped[str] = mapped_column(String(50))
    actual_value: Mapped[str] = mapped_column(String(2500))
    event_notification_type: Mapped[str] = mapped_column(String(32))
    # The whole event as sent (component/variable instances, EVSE, cleared flag, ...).
    raw: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]


class SchedulingCycle(Base):
    """One smart-charging cycle of a site: why it ran, what it saw, what it decided and how stations answered."""

    __tablename__ = "scheduling_cycles"
    __table_args__ = (Index(None, "site_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(48), ForeignKey("sites.id", ondelete="RESTRICT"))
    started_at: Mapped[datetime]
    # The events that triggered it (kinds and counts), or "tick".
    trigger: Mapped[dict[str, Any]]
    algorithm: Mapped[str] = mapped_column(String(32))
    # The scheduler's result status (optimal, feasible, heuristic, fallback) or "error".
    status: Mapped[str] = mapped_column(String(16))
    solve_s: Mapped[float | None] = mapped_column(Float)
    cycle_s: Mapped[float | None] = mapped_column(Float)
    # Inputs in brief (EV count, limits, energy asked) and notes from the scheduler.
    summary: Mapped[dict[str, Any]]
    # Per EV: what it was given (limit now, energy planned) and, when a profile was sent, the answer.
    evs: Mapped[list[Any]] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    """A bearer token for the operator API. Only its SHA-256 is stored; the token is shown once, at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # sha256 of the token (a random 256-bit secret, so a fast hash is enough: nothing to brute-force).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # "operator" may change things; "read" only reads (enforced from the trust issue on).
    scope: Mapped[str] = mapped_column(String(16), default="operator")
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
