"""Every series of a CSMS, in one registry per CSMS, and the text Prometheus scrapes."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from optivgi_csms.metrics.ocpp import OcppMetrics
from optivgi_csms.protocol import rpc

#: The content type of :meth:`CsmsMetrics.render`. Every name here is a classic Prometheus name, so the text
#: is the 0.0.4 format every Prometheus version reads (newer prometheus-client labels its output 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Handling a frame is mostly one database commit: sub-millisecond to a few seconds under load.
HANDLER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A cycle reads the site, solves (milliseconds for a few EVs, seconds for thousands) and queues profiles.
CYCLE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class CsmsMetrics:
    """The Prometheus series of one CSMS (``csms.metrics``); :meth:`render` is the scrape's body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.connected_stations = Gauge(
            "optivgi_connected_stations", "Stations connected now, by OCPP version", ["version"], registry=registry
        )
        self.messages_received = Counter(
            "optivgi_ocpp_messages_received",
            "OCPP messages received from stations, by version and action",
            ["version", "action"],
            registry=registry,
        )
        self.callerrors_sent = Counter(
            "optivgi_ocpp_callerrors_sent",
            "CALLERRORs sent to stations, by version, action and error code",
            ["version", "action", "error_code"],
            registry=registry,
        )
        self.handler_seconds = Histogram(
            "optivgi_ocpp_handler_seconds",
            "Time from a station's CALL received to its answer sent, by version and action",
            ["version", "action"],
            buckets=HANDLER_BUCKETS,
            registry=registry,
        )
        self.cycle_seconds = Histogram(
            "optivgi_scheduling_cycle_seconds",
            "Duration of a site's scheduling cycle (read, solve, queue the profiles)",
            ["site"],
            buckets=CYCLE_BUCKETS,
            registry=registry,
        )
        self.cycles = Counter(
            "optivgi_scheduling_cycles",
            "Scheduling cycles by site and by what triggered them (a cycle triggered by several kinds counts once "
            "under each)",
            ["site", "trigger"],
            registry=registry,
        )
        self.site_power_kw = Gauge(
            "optivgi_site_power_kw",
            "Measured draw of the site's open sessions at its latest scheduling cycle, kW",
            ["site"],
            registry=registry,
        )
        self.site_limit_kw = Gauge(
            "optivgi_site_limit_kw",
            "The site's connection limit at its latest scheduling cycle, kW (absent: no limit)",
            ["site"],
            registry=registry,
        )
        self._ocpp: dict[str, OcppMetrics] = {}
        # Both versions appear from the start, at 0, so a dashboard shows them before any station connects.
        for dialect in (rpc.V16, rpc.V201):
            self.ocpp(dialect)
            self.connected_stations.labels(dialect.version).set(0)

    # --- OCPP ------------------------------------------------------------------------------------

    def ocpp(self, dialect: rpc.Dialect) -> OcppMetrics:
        """The series of one OCPP version, for its connections' receive loops."""
        metrics = self._ocpp.get(dialect.version)
        if metrics is None:
            metrics = OcppMetrics(
                dialect.version, dialect.actions, self.messages_received, self.callerrors_sent, self.handler_seconds
            )
            self._ocpp[dialect.version] = metrics
        return metrics

    def station_connected(self, version: str) -> None:
        """A station's connection became the live one."""
        self.connected_stations.labels(version).inc()

    def station_disconnected(self, version: str) -> None:
        """A live connection ended (or was replaced by a newer one of the same station)."""
        self.connected_stations.labels(version).dec()

    # --- smart charging --------------------------------------------------------------------------

    def observe_cycle(self, site_id: str, triggers: Iterable[str], seconds: float | None) -> None:
        """Record one scheduling cycle of a site: its duration and what triggered it."""
        if seconds is not None:
            self.cycle_seconds.labels(site_id).observe(seconds)
        for trigger in triggers:
            self.cycles.labels(site_id, trigger).inc()

    def set_site(self, site_id: str, power_kw: float | None, limit_kw: float | None) -> None:
        """Set a site's power and limit gauges; None removes the series (unknown, or no limit)."""
        for gauge, value in ((self.site_power_kw, power_kw), (self.site_limit_kw, limit_kw)):
            if value is None or math.isinf(value):
                with contextlib.suppress(KeyError):
                    gauge.remove(site_id)
            else:
                gauge.labels(site_id).set(value)

    # --- exposition ------------------------------------------------------------------------------

    def render(self) -> bytes:
        """Every series in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
