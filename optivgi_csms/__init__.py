"""optivgi-csms: an OCPP charge station management system with smart charging built in."""

__version__ = "0.1.0"
