"""Credentials: station passwords (and, later, API tokens and certificates)."""
