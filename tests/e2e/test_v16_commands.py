"""Commands only OCPP 1.6 has, and 1.6 limits on common commands, through the version-neutral interface
against 1.6 stations over real websockets. The commands both versions have are in ``test_commands.py``."""

from __future__ import annotations

import pytest

from optivgi_csms.domain.charging_profile import ProfilePurpose
from optivgi_csms.protocol.commands import ConfigurationKey
from optivgi_csms.protocol.errors import CommandNotSupportedError
from tests.support.stations import connect16, wait_connected


async def test_get_and_change_configuration(csms) -> None:
    async with connect16(csms, "CP-1") as station:
        commands = await wait_connected(csms, "CP-1")

        everything = await commands.get_configuration()
        assert station.last("GetConfiguration") == {}  # no key list: the station reports all keys
        assert everything.keys == (
            ConfigurationKey("HeartbeatInterval", "300", readonly=False),
            ConfigurationKey("ChargeProfileMaxStackLevel", "8", readonly=True),
        )
        assert everything.unknown_keys == ()

        some = await commands.get_configuration(["HeartbeatInterval", "NoSuchKey"])
        assert station.last("GetConfiguration") == {"key": ["HeartbeatInterval", "NoSuchKey"]}
        assert some.keys == (ConfigurationKey("HeartbeatInterval", "300", readonly=False),)
        assert some.unknown_keys == ("NoSuchKey",)

        station.answers["ChangeConfiguration"] = "RebootRequired"
        answer = await commands.change_configuration("HeartbeatInterval", "60")
        assert station.last("ChangeConfiguration") == {"key": "HeartbeatInterval", "value": "60"}
        assert answer.status == "RebootRequired"


async def test_arguments_ocpp16_lacks_are_refused_before_sending(csms) -> None:
    async with connect16(csms, "CP-1") as station:
        commands = await wait_connected(csms, "CP-1")
        with pytest.raises(CommandNotSupportedError, match="connector"):
            await commands.unlock_connector(1, connector_id=2)  # 1.6 knows one connector per connector id
        with pytest.raises(CommandNotSupportedError, match="ExternalConstraints"):
            await commands.clear_charging_profile(purpose=ProfilePurpose.EXTERNAL_CONSTRAINTS)
        assert station.received == []
