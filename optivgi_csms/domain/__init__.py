"""Version-neutral domain values: what the CSMS knows about stations, sessions and profiles.

Nothing here does I/O or knows which OCPP version a station speaks; protocol adapters translate
their version's messages into these values and back.
"""
