"""Settings: flags beat the environment, which beats the TOML file, which beats the defaults; bad values
stop start-up with one line naming the setting."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from optivgi_csms.config import ConfigError, Settings, add_setting_flags, load_settings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_setting_flags(parser)
    return parser.parse_args(list(argv))


def test_defaults_need_no_configuration() -> None:
    settings = load_settings(parse(), environ={})
    assert settings == Settings()
    assert (settings.host, settings.port, settings.path_prefix) == ("0.0.0.0", 9000, "ocpp")
    assert settings.effective_database_url == "sqlite+aiosqlite:///data/optivgi-csms.db"
    assert settings.security_profile == 0


def test_flags_beat_environment_beat_file_beat_defaults(tmp_path: Path) -> None:
    config = tmp_path / "csms.toml"
    config.write_text('port = 9100\nhost = "127.0.0.1"\nheartbeat_interval = 60\nlog_format = "json"\n')
    environ = {"OPTIVGI_PORT": "9200", "OPTIVGI_HEARTBEAT_INTERVAL": "120"}
    settings = load_settings(parse("--config", str(config), "--port", "9300"), environ=environ)
    assert settings.port == 9300  # flag
    assert settings.heartbeat_interval == 120  # environment over file
    assert settings.host == "127.0.0.1"  # file over default
    assert settings.log_format == "json"
    assert settings.path_prefix == "ocpp"  # default


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "csms.toml"
    config.write_text("security_profile = 1\n")
    assert load_settings(parse(), environ={"OPTIVGI_CONFIG": str(config)}).security_profile == 1


def test_database_url_from_the_conventional_variable() -> None:
    settings = load_settings(parse(), environ={"DATABASE_URL": "postgresql://csms@db/csms"})
    assert settings.effective_database_url == "postgresql+asyncpg://csms@db/csms"
    # The OPTIVGI_ name wins over the conventional one.
    both = {"DATABASE_URL": "postgresql://a@db/a", "OPTIVGI_DATABASE_URL": "sqlite:///x.db"}
    assert load_settings(parse(), environ=both).effective_database_url == "sqlite+aiosqlite:///x.db"


def test_boolean_flag_alone_means_true() -> None:
    assert load_settings(parse("--upgrade-db"), environ={}).upgrade_db is True
    assert load_settings(parse("--upgrade-db", "false"), environ={}).upgrade_db is False
    assert load_settings(parse(), environ={"OPTIVGI_UPGRADE_DB": "yes"}).upgrade_db is True


def test_list_setting_from_text_and_toml(tmp_path: Path) -> None:
    assert load_settings(parse("--data-transfer-vendors", "acme, volt"), environ={}).data_transfer_vendors == (
        "acme",
        "volt",
    )
    config = tmp_path / "c.toml"
    config.write_text('data_transfer_vendors = ["acme"]\n')
    assert load_settings(parse("--config", str(config)), environ={}).data_transfer_vendors == ("acme",)


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        (("--port", "abc"), {}, "invalid value for setting 'port' (from --port): 'abc' is not an integer"),
        (("--port", "70000"), {}, "invalid value for setting 'port' (from --port): 70000 is outside 0..65535"),
        (
            (),
            {"OPTIVGI_SECURITY_PROFILE": "4"},
            "setting 'security_profile' (from environment variable OPTIVGI_SECURITY_PROFILE)",
        ),
        (("--boot-policy", "some"), {}, "'some' is not one of any, registered"),
        (("--ping-interval", "-1"), {}, "setting 'ping_interval'"),
        (("--call-timeout", "0"), {}, "setting 'call_timeout' (from --call-timeout): must be more than 0 seconds"),
        (("--host", "bad host!"), {}, "setting 'host'"),
        (("--database-url", "mysql://x/y"), {}, "unsupported database URL scheme 'mysql'"),
        (("--upgrade-db", "maybe"), {}, "'maybe' is not a boolean"),
        (("--path-prefix", "a b"), {}, "setting 'path_prefix'"),
    ],
)
def test_bad_values_name_the_setting(argv: tuple[str, ...], environ: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(parse(*argv), environ=environ)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message


def test_bad_config_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(parse("--config", str(tmp_path / "missing.toml")), environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("port = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(parse("--config", str(broken)), environ={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("prot = 9000\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings(parse("--config", str(unknown)), environ={})
    typed = tmp_path / "typed.toml"
    typed.write_text('port = "nine"\n')
    with pytest.raises(ConfigError, match=f"'port' \\(from {typed}\\)"):
        load_settings(parse("--config", str(typed)), environ={})


def test_every_setting_has_a_documented_flag() -> None:
    parser = argparse.ArgumentParser()
    add_setting_flags(parser)
    text = parser.format_help()
    for name in (
        "--port",
        "--host",
        "--path-prefix",
        "--database-url",
        "--security-profile",
        "--ping-interval",
        "--ping-timeout",
        "--max-frame-size",
        "--boot-policy",
        "--unknown-id-tags",
        "--log-format",
    ):
        assert name in text
    assert "OPTIVGI_PORT" in text and "DATABASE_URL" in text
