"""Smart charging live: the OCPP Translation and the controller that keeps every site within its limits.

- :class:`SmartCharging` (``csms.smart_charging``): started and stopped with the CSMS; plans each site
  on events and on a timer, sends each session's TxProfile, records every cycle. ``plan(site_id)`` is the
  current plan per EV and slot, ``await cycles(site_id)`` the recorded cycles, ``await replan(site_id)``
  plans now.
- :class:`OcppTranslation`: the scheduling core's ``AsyncTranslation`` for the live server.
- :class:`Capabilities`: what a station's smart charging accepts, read at boot.
"""

from optivgi_csms.smart_charging.capabilities import Capabilities
from optivgi_csms.smart_charging.controller import SmartCharging
from optivgi_csms.smart_charging.plan import EvPlan, SitePlan
from optivgi_csms.smart_charging.records import CycleRow
from optivgi_csms.smart_charging.translation import OcppTranslation

__all__ = ["Capabilities", "CycleRow", "EvPlan", "OcppTranslation", "SitePlan", "SmartCharging"]
