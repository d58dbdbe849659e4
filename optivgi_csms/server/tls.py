"""TLS for OCPP security profiles 2 and 3: the server's SSL context and the station identity in a client certificate.

Profile 2 is TLS with a server certificate (stations authenticate with HTTP Basic auth, as in profile 1);
profile 3 adds mutual TLS, where the station's client certificate, signed by the CA in ``tls_ca``,
identifies it: its subject common name must be the station id. Both accept TLS 1.2 or newer only, as
the OCPP 1.6 security whitepaper and OCPP 2.0.1 part 2 require.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from optivgi_csms.config import ConfigError, Settings

#: The lowest security profile served over TLS.
TLS_PROFILE = 2
#: The profile whose stations are identified by their client certificate.
MUTUAL_TLS_PROFILE = 3


def server_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The SSL context the OCPP server listens with, or None below security profile 2 (plain ``ws://``).

    Raises :class:`ConfigError` naming the setting when a certificate, key or CA is missing, unreadable
    or does not fit: the server must not start on a profile it cannot enforce.
    """
    profile = settings.security_profile
    if profile < TLS_PROFILE:
        return None
    cert = _readable("tls_cert", settings.tls_cert, profile, "the server certificate (PEM, chain after it)")
    key = _readable("tls_key", settings.tls_key, profile, "the server certificate's private key (PEM)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as error:
        raise ConfigError(
            f"invalid value for setting 'tls_cert': {cert} with key {key} cannot be loaded "
            f"(not PEM, or the key does not match the certificate): {error.reason or error}"
        ) from None
    if profile >= MUTUAL_TLS_PROFILE:
        ca = _readable("tls_ca", settings.tls_ca, profile, "the CA that signs the stations' client certificates")
        try:
            context.load_verify_locations(cafile=str(ca))
        except ssl.SSLError as error:
            raise ConfigError(
                f"invalid value for setting 'tls_ca': {ca} holds no PEM CA certificate: {error.reason or error}"
            ) from None
        # The TLS handshake itself refuses a station without a certificate or with one from another CA.
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _readable(name: str, path: Path | None, profile: int, what: str) -> Path:
    if path is None:
        raise ConfigError(f"setting '{name}' is required with security_profile {profile}: {what}")
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise ConfigError(f"invalid value for setting '{name}': cannot read {path}: {error.strerror}") from None
    return path


def certificate_common_names(peercert: dict[str, Any] | None) -> list[str]:
    """The subject common names of a verified peer certificate (``SSLSocket.getpeercert()``'s dict)."""
    if not peercert:
        return []
    return [value for rdn in peercert.get("subject", ()) for key, value in rdn if key == "commonName"]
