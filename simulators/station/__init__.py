"""A simulated OCPP 1.6J / 2.0.1 charging station with EVSEs, EVs, smart charging and an offline queue.

Usage::

    station = SimulatedStation(StationConfig("CP-1", "ws://127.0.0.1:9000"), clock, recorder)
    task = asyncio.create_task(station.run())
    await station.plug_in(1, EVModel(spec), "TAG-1")
    ...
    await station.unplug(1)
    await station.stop()
"""

from simulators.station.config import StationConfig
from simulators.station.evse import Status
from simulators.station.snapshot import EvseSnapshot, StationSnapshot
from simulators.station.station import SimulatedStation

__all__ = ["EvseSnapshot", "SimulatedStation", "StationConfig", "StationSnapshot", "Status"]
