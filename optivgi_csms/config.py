"""Settings: command-line flags > environment (``OPTIVGI_*``, ``DATABASE_URL``) > TOML file > defaults.

Every setting is declared once, as a field of :class:`Settings` with its help text and parser, so the
flags, the environment variables, the TOML keys and ``serve --help`` cannot drift apart. Values are
validated once at start-up; a bad value raises :class:`ConfigError` with one line naming the setting
and where the value came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "OPTIVGI_"


class ConfigError(ValueError):
    """A setting has a bad value; the message is one line that names it."""


# --- value parsers: each takes the raw value (str from flags/env, any TOML type) and returns it typed.


def _integer(minimum: int, maximum: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise ValueError(f"{raw!r} is not an integer")
        try:
            value = int(str(raw).strip()) if not isinstance(raw, int) else raw
        except ValueError:
            raise ValueError(f"{raw!r} is not an integer") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"{value} is outside {minimum}..{maximum}")
        return value

    return parse


def _seconds(raw: Any) -> float:
    """A duration in seconds; 0 disables the feature it configures."""
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a number of seconds")
    try:
        value = float(str(raw).strip()) if not isinstance(raw, int | float) else float(raw)
    except ValueError:
        raise ValueError(f"{raw!r} is not a number of seconds") from None
    if not 0 <= value <= 86_400:
        raise ValueError(f"{value:g} is outside 0..86400 seconds")
    return value


def _positive_seconds(raw: Any) -> float:
    value = _seconds(raw)
    if value <= 0:
        raise ValueError("must be more than 0 seconds")
    return value


def _optional_kw(raw: Any) -> float | None:
    """A power in kW, or empty for none."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a number of kW")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{raw!r} is not a number of kW") from None
    if not 0 <= value <= 1_000_000:
        raise ValueError(f"{value:g} kW is outside 0..1000000")
    return value


def _scale(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a number")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{raw!r} is not a number") from None
    if not 0.01 <= value <= 10_000:
        raise ValueError(f"{value:g} is outside 0.01..10000")
    return value


def _choice(*choices: str) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in choices:
            raise ValueError(f"{raw!r} is not one of {', '.join(choices)}")
        return value

    return parse


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{raw!r} is not a boolean (true/false)")


def _host(raw: Any) -> str:
    value = str(raw).strip()
    if not value:
        raise ValueError("is empty")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        # A host name: letters, digits, dots and dashes only.
        if not all(part and part.replace("-", "").isalnum() for part in value.split(".")):
            raise ValueError(f"{value!r} is neither an IP address nor a host name") from None
    return value


def _optional_host(raw: Any) -> str:
    """A host, or empty for "the same as another setting"."""
    return "" if raw is None or not str(raw).strip() else _host(raw)


def _path_prefix(raw: Any) -> str:
    value = str(raw).strip().strip("/")
    allowed = (part.replace("-", "").replace("_", "").replace(".", "").isalnum() for part in value.split("/"))
    if value and not all(allowed):
        raise ValueError(f"{raw!r} may contain only letters, digits, '-', '_', '.' and '/'")
    return value


def _database_url(raw: Any) -> str:
    value = str(raw).strip()
    if not value:
        return ""
    scheme = value.split("://", 1)[0] if "://" in value else ""
    supported = {"sqlite+aiosqlite", "sqlite", "postgresql+asyncpg", "postgresql", "postgres"}
    if scheme not in supported:
        raise ValueError(
            f"unsupported database URL scheme {scheme or value!r}: use sqlite+aiosqlite:///FILE "
            "or postgresql+asyncpg://USER@HOST/DB"
        )
    return value


def _redis_url(raw: Any) -> str:
    """A Redis URL (``redis://``, ``rediss://`` or ``unix://``), or empty for none (one process, no cluster).

    Messages quote the URL without its credentials: a start-up error is logged."""
    value = str(raw).strip()
    if not value:
        return ""
    scheme, separator, rest = value.partition("://")
    authority, _, path = rest.partition("/")
    location = authority.rsplit("@", 1)[-1]
    shown = f"{scheme}{separator}{'***@' if '@' in authority else ''}{location}{'/' + path if path else ''}"
    if not separator or scheme not in {"redis", "rediss", "unix"}:
        raise ValueError(f"{shown!r} is not a Redis URL: use redis://HOST:6379/0 (rediss:// for TLS, unix:///PATH)")
    if scheme != "unix" and not location.split(":", 1)[0].strip("[]"):
        raise ValueError(f"{shown!r} names no host: use redis://HOST:6379/0")
    port = location.rsplit(":", 1)[1] if ":" in location and not location.endswith("]") else ""
    if scheme != "unix" and port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{shown!r} has a bad port {port!r}")
    return value


def _name(what: str, *, optional: bool) -> Callable[[Any], str]:
    """A short name used inside Redis keys and channels: 1-64 of letters, digits and ``- _ . :`` (so it
    cannot hold the ``|`` that separates the fields of an ownership record)."""

    def parse(raw: Any) -> str:
        value = str(raw).strip()
        allowed = value.replace("-", "").replace("_", "").replace(".", "").replace(":", "")
        if (value or not optional) and (len(value) > 64 or not allowed.isalnum() or not allowed.isascii()):
            raise ValueError(f"{raw!r} is not a {what}: 1-64 of letters, digits and - _ . :")
        return value

    return parse


def _string_list(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, list | tuple):
        items: Iterable[Any] = raw
    else:
        items = str(raw).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _path(raw: Any) -> Path:
    value = str(raw).strip()
    if not value:
        raise ValueError("is empty")
    return Path(value).expanduser()


def _optional_path(raw: Any) -> Path | None:
    """A file path, or empty for none."""
    if raw is None or not str(raw).strip():
        return None
    return Path(str(raw).strip()).expanduser()


def _setting(default: Any, help: str, parse: Callable[[Any], Any], *, env: str = "") -> Any:
    """Declare a setting: its default, its help text, its parser and an extra environment variable."""
    return field(default=default, metadata={"help": help, "parse": parse, "env": env})


@dataclass(frozen=True)
class Settings:
    """Every setting of the CSMS, validated. Build it with :func:`load_settings`."""

    host: str = _setting("0.0.0.0", "interface the OCPP websocket server listens on", _host)
    port: int = _setting(9000, "TCP port of the OCPP websocket server", _integer(0, 65535))
    api: bool = _setting(True, "serve the operator API and dashboard (false: OCPP only)", _boolean)
    api_host: str = _setting(
        "", "interface of the operator API and dashboard (default: the same as host)", _optional_host
    )
    api_port: int = _setting(8080, "TCP port of the operator API and dashboard (0: any free port)", _integer(0, 65535))
    reuse_port: bool = _setting(
        False,
        "bind both ports with SO_REUSEPORT, so several serve processes of a cluster on one host share them "
        "(the kernel spreads new connections; see docs/cluster.md)",
        _boolean,
    )
    path_prefix: str = _setting(
        "ocpp",
        "optional URL path prefix: stations may connect to /PREFIX/<id> as well as /<id>",
        _path_prefix,
    )
    data_dir: Path = _setting(Path("data"), "folder of the default SQLite database file", _path)  # noqa: RUF009
    database_url: str = _setting(
        "",
        "SQLAlchemy URL of the database (default: SQLite file in data_dir); also read from DATABASE_URL",
        _database_url,
        env="DATABASE_URL",
    )
    database_retry: float = _setting(
        10.0,
        "seconds a write is retried while the database is unreachable or locked; then the station is answered "
        "InternalError (and sends it again)",
        _positive_seconds,
    )
    upgrade_db: bool = _setting(
        False, "apply pending database migrations at start-up instead of refusing to start", _boolean
    )
    security_profile: int = _setting(
        0,
        "OCPP security profile: 0 = no station authentication, 1 = HTTP Basic auth with per-station passwords, "
        "2 = TLS (wss://) and Basic auth, 3 = mutual TLS: a client certificate whose CN is the station id",
        _integer(0, 3),
    )
    tls_cert: Path | None = _setting(  # noqa: RUF009
        None, "security profiles 2-3: the server certificate, PEM (intermediates after it)", _optional_path
    )
    tls_key: Path | None = _setting(  # noqa: RUF009
        None, "security profiles 2-3: the server certificate's private key, PEM", _optional_path
    )
    tls_ca: Path | None = _setting(  # noqa: RUF009
        None,
        "security profile 3: the CA certificate(s), PEM, that sign the stations' client certificates",
        _optional_path,
    )
    max_connections: int = _setting(
        10_000,
        "most station connections open at once; more are refused with 503 (a station reconnecting still may)",
        _integer(1, 1_000_000),
    )
    auth_failure_limit: int = _setting(
        10,
        "failed station authentications from one address within auth_failure_window before it is refused "
        "with 429 for auth_block; 0 never blocks",
        _integer(0, 1_000_000),
    )
    auth_failure_window: float = _setting(
        60.0, "seconds over which an address's failed authentications are counted", _positive_seconds
    )
    auth_block: float = _setting(
        30.0, "seconds an address is first refused after too many failures; each repeat doubles it", _positive_seconds
    )
    auth_block_max: float = _setting(
        3600.0, "longest an address is refused (s); an address quiet this long starts afresh", _positive_seconds
    )
    handshake_timeout: float = _setting(
        10.0,
        "seconds a new connection may take to finish its TLS and websocket handshakes before it is dropped",
        _positive_seconds,
    )
    boot_policy: str = _setting(
        "any",
        "which stations' BootNotification is accepted: 'any', or 'registered' (added with `station add`)",
        _choice("any", "registered"),
    )
    unknown_id_tags: str = _setting(
        "accept",
        "answer for id tags not in the database: 'accept', or 'reject' (answered Invalid)",
        _choice("accept", "reject"),
    )
    heartbeat_interval: int = _setting(
        300, "heartbeat interval (s) given to stations in BootNotification", _integer(1, 86_400)
    )
    ping_interval: float = _setting(30.0, "websocket ping interval (s); 0 disables pings", _seconds)
    ping_timeout: float = _setting(30.0, "close a connection whose pong is this late (s); 0 waits forever", _seconds)
    max_frame_size: int = _setting(
        1_048_576, "largest websocket message accepted from a station, in bytes", _integer(1024, 64 * 1_048_576)
    )
    call_timeout: float = _setting(30.0, "how long to wait for a station's answer to a command (s)", _positive_seconds)
    shutdown_grace: float = _setting(
        10.0,
        "on SIGTERM, how long stations' messages in hand may take to be answered before every connection is closed "
        "(s); 0 closes at once",
        _seconds,
    )
    data_transfer_vendors: tuple[str, ...] = _setting(
        (), "comma-separated DataTransfer vendor ids answered Accepted; others get UnknownVendorId", _string_list
    )
    journal_size: int = _setting(
        0,
        "keep the last N raw OCPP messages in the database for debugging; 0 keeps none",
        _integer(0, 10_000_000),
    )
    site_limit_kw: float | None = _setting(
        None,
        "connection limit of the default site in kW, applied at start-up (smart charging keeps its stations under it)",
        _optional_kw,
    )
    scheduling_interval: float = _setting(
        60.0, "seconds between smart-charging cycles when no event triggers one", _positive_seconds
    )
    solver_timeout: float = _setting(
        30.0,
        "seconds a smart-charging cycle's algorithm may take; past it, or when it fails, the cycle sends equal "
        "shares within every limit and records why",
        _positive_seconds,
    )
    profile_raise_delay: float = _setting(
        2.0,
        "seconds a raised charging limit waits after the lowered ones before it were accepted, for the stations "
        "to apply them (the site stays under its limit while limits move); 0 sends it once they are answered",
        _seconds,
    )
    time_scale: float = _setting(
        1.0,
        "rehearsal only: plan as if time ran this many times faster (match optivgi-sim --time-scale); 1 for real sites",
        _scale,
    )
    redis_url: str = _setting(
        "",
        "Redis URL shared by several serve processes on one PostgreSQL database (see docs/cluster.md): stations "
        "are reached on whichever process holds them and each site is planned by one; empty: one process; also "
        "read from REDIS_URL",
        _redis_url,
        env="REDIS_URL",
    )
    redis_prefix: str = _setting(
        "optivgi",
        "with redis_url: the prefix of this cluster's Redis keys and channels (clusters sharing a Redis differ)",
        _name("key prefix", optional=False),
    )
    node_id: str = _setting(
        "",
        "with redis_url: this process's name in the cluster, unique among its processes (default: hostname-pid)",
        _name("node id", optional=True),
    )
    log_format: str = _setting("console", "log format: 'console' or 'json'", _choice("console", "json"))
    log_level: str = _setting(
        "info", "log level: debug, info, warning or error", _choice("debug", "info", "warning", "error")
    )

    @property
    def effective_database_url(self) -> str:
        """The database URL in use: the configured one, or the SQLite file in ``data_dir``."""
        if self.database_url:
            return normalise_database_url(self.database_url)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'optivgi-csms.db').as_posix()}"


SETTING_FIELDS: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(Settings)


def normalise_database_url(url: str) -> str:
    """Choose the async driver for URLs given without one (``postgresql://`` -> asyncpg)."""
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def env_name(setting: dataclasses.Field[Any]) -> str:
    """The environment variable of a setting: ``OPTIVGI_<NAME>``."""
    return ENV_PREFIX + setting.name.upper()


def flag_name(setting: dataclasses.Field[Any]) -> str:
    """The command-line flag of a setting: ``--name-with-dashes``."""
    return "--" + setting.name.replace("_", "-")


def add_setting_flags(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """Add ``--config`` and one flag per setting (or per named setting) to ``parser``.

    Flags default to ``None`` so that :func:`load_settings` can tell "not given" from a value.
    """
    wanted = set(names) if names is not None else None
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help=f"TOML file of settings (keys as the flags, with underscores); also {ENV_PREFIX}CONFIG",
    )
    for setting in SETTING_FIELDS:
        if wanted is not None and setting.name not in wanted:
            continue
        envs = [env_name(setting)] + ([setting.metadata["env"]] if setting.metadata["env"] else [])
        default = setting.default
        shown = ",".join(default) if isinstance(default, tuple) else default
        help_text = f"{setting.metadata['help']} [env {' or '.join(envs)}; default {shown!s}]"
        # A boolean flag alone means true (``--upgrade-db``); ``--upgrade-db false`` also works.
        optional = {"nargs": "?", "const": "true"} if setting.metadata["parse"] is _boolean else {}
        parser.add_argument(
            flag_name(setting), dest=setting.name, default=None, help=help_text, metavar="VALUE", **optional
        )


def load_settings(
    flags: Mapping[str, Any] | argparse.Namespace | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
) -> Settings:
    """Merge flags > environment > TOML file > defaults into validated :class:`Settings`.

    ``config_file`` falls back to the ``--config`` flag, then ``OPTIVGI_CONFIG``. Raises
    :class:`ConfigError` naming the first bad setting.
    """
    given = vars(flags) if isinstance(flags, argparse.Namespace) else dict(flags or {})
    environ = os.environ if environ is None else environ
    path = config_file or given.get("config") or environ.get(ENV_PREFIX + "CONFIG")
    file_values = _read_toml(Path(path)) if path else {}

    values: dict[str, Any] = {}
    for setting in SETTING_FIELDS:
        raw, source = _pick(setting, given, environ, file_values, path)
        if source is None:
            continue
        try:
            values[setting.name] = setting.metadata["parse"](raw)
        except ValueError as error:
            raise ConfigError(f"invalid value for setting '{setting.name}' (from {source}): {error}") from None
    return Settings(**values)


def _pick(
    setting: dataclasses.Field[Any],
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    file_values: Mapping[str, Any],
    path: Any,
) -> tuple[Any, str | None]:
    if flags.get(setting.name) is not None:
        return flags[setting.name], flag_name(setting)
    for variable in (env_name(setting), setting.metadata["env"]):
        if variable and variable in environ:
            return environ[variable], f"environment variable {variable}"
    if setting.name in file_values:
        return file_values[setting.name], f"{path}"
    return None, None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    known = {setting.name for setting in SETTING_FIELDS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting '{unknown[0]}' (known: {', '.join(sorted(known))})")
    return data
