"""What the CSMS acknowledged: every CALL of the simulated stations that got a CALLRESULT, with its payload.

The simulator's stations are the real ones of ``simulators.station``; the factory here only listens on each
connection's ``request`` (the one place a station's CALL meets its answer) and notes the payload as sent and
the answer, with the wall time. A CALL answered with a CALLERROR, left unanswered or lost with its connection
raises there and is not noted: only what the CSMS said it had taken counts.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case

from simulators.clock import SimClock
from simulators.recorder import Recorder
from simulators.station import SimulatedStation, StationConfig

#: OCPP's defaults for a sampled value's fields the station may leave out (both versions).
DEFAULT_MEASURAND = "Energy.Active.Import.Register"


@dataclass(frozen=True)
class Ack:
    """One CALL the CSMS answered with a CALLRESULT."""

    station_id: str
    action: str
    payload: dict[str, Any]
    answer: Any
    at: float  # time.monotonic() when the answer came


SampleKey = tuple[str, float, str, str]


class AckLog:
    """Collects :class:`Ack` of every station made by :meth:`factory`."""

    def __init__(self) -> None:
        self.acks: list[Ack] = []
        self.stations: dict[str, SimulatedStation] = {}

    def factory(
        self, configure: Callable[[StationConfig], StationConfig] | None = None, **variables: Any
    ) -> Callable[[StationConfig, SimClock, Recorder], SimulatedStation]:
        """A ``SiteRun`` station factory; ``variables`` set station variables (e.g. ``message_attempts``)."""

        def make(config: StationConfig, clock: SimClock, recorder: Recorder) -> SimulatedStation:
            station = SimulatedStation(configure(config) if configure else config, clock, recorder)
            for name, value in variables.items():
                station.core.variables.set(name, value)
            protocol = station.core.protocol
            open_client = protocol.client

            def client(*args: Any, **kwargs: Any) -> Any:
                link = open_client(*args, **kwargs)
                request = link.request

                async def noted(payload: Any) -> Any:
                    answer = await request(payload)  # raises unless the CSMS answered with a CALLRESULT
                    body = remove_nones(snake_to_camel_case(serialize_as_dict(payload)))
                    self.acks.append(Ack(config.station_id, type(payload).__name__, body, answer, time.monotonic()))
                    return answer

                link.request = noted  # type: ignore[method-assign]
                return link

            protocol.client = client  # type: ignore[method-assign]
            self.stations[config.station_id] = station
            return station

        return make

    def of(self, action: str, *, before: float | None = None, after: float | None = None) -> list[Ack]:
        """The acknowledged CALLs of one action, optionally answered before/after a monotonic time."""
        return [
            a
            for a in self.acks
            if a.action == action and (before is None or a.at < before) and (after is None or a.at >= after)
        ]

    def samples(self) -> Counter[SampleKey]:
        """Every distinct sampled value acknowledged, counted by (station, time, measurand, phase).

        A sample sent twice (its answer lost with the connection, then sent again) is one sample: distinct
        samples are told apart by everything the station sent about them."""
        distinct: set[tuple[str, str, str]] = set()
        keys: Counter[SampleKey] = Counter()
        for ack in self.acks:
            for meter_value in meter_values_of(ack):
                for sampled in meter_value.get("sampledValue", []):
                    identity = (ack.station_id, meter_value["timestamp"], repr(sorted(sampled.items())))
                    if identity in distinct:
                        continue
                    distinct.add(identity)
                    keys[sample_key(ack.station_id, meter_value["timestamp"], sampled)] += 1
        return keys


def meter_values_of(ack: Ack) -> Iterable[dict[str, Any]]:
    """The meterValue entries a CALL carried (MeterValues, 1.6 StopTransaction's transactionData, 2.0.1
    TransactionEvent's meterValue)."""
    payload = ack.payload
    if ack.action in ("MeterValues", "TransactionEvent"):
        return payload.get("meterValue", [])
    if ack.action == "StopTransaction":
        return payload.get("transactionData", [])
    return []


def sample_key(station_id: str, timestamp: str | datetime, sampled: dict[str, Any]) -> SampleKey:
    """A sample's key as both the station's payload and the database row can say it."""
    return (
        station_id,
        round(as_utc(timestamp).timestamp(), 3),
        sampled.get("measurand") or DEFAULT_MEASURAND,
        sampled.get("phase") or "",
    )


def as_utc(value: str | datetime) -> datetime:
    """An OCPP time string or a stored datetime, as an aware UTC datetime (SQLite gives naive UTC back)."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def reconnect_quickly(config: StationConfig) -> StationConfig:
    """Stations that try again within a second or two of losing the CSMS (the default back-off grows to a
    minute; the tests measure the CSMS's recovery, not the stations' patience)."""
    return dataclasses.replace(config, reconnect_initial_s=0.2, reconnect_max_s=1.0)
