"""OCPP protocol adapters: one module per version, translating messages to services and commands to calls.

``rpc`` is the OCPP-J framing and validation shared by both versions, ``session`` the receive loop
and request/response machinery of one connection, ``commands`` the version-neutral command interface
the rest of the CSMS uses, and ``v16`` the OCPP 1.6J adapter.
"""
