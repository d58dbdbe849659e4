"""Station passwords for OCPP security profile 1, stored as salted scrypt hashes.

The stored form is ``scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>`` so the cost can be raised later
without invalidating stored passwords.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
_LENGTH = 32

# OCPP 2.0.1 (BasicAuthPassword) and the 1.6 security whitepaper: 16 to 40 characters.
MIN_LENGTH, MAX_LENGTH = 16, 40


class PasswordPolicyError(ValueError):
    """The password does not meet OCPP's rules."""


def check_policy(password: str) -> None:
    """Raise :class:`PasswordPolicyError` unless ``password`` is 16–40 printable ASCII characters."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise PasswordPolicyError(
            f"a station password must be {MIN_LENGTH} to {MAX_LENGTH} characters (OCPP security profile 1); "
            f"this one has {len(password)}"
        )
    if not all(33 <= ord(char) <= 126 for char in password):
        raise PasswordPolicyError("a station password may contain only printable ASCII characters, no spaces")


def hash_password(password: str) -> str:
    """A new salted hash of ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LENGTH)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected) // 2
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest.hex(), expected)
