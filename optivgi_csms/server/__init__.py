"""The running server: websocket handshake, the registry of connected stations, start-up and shutdown."""
