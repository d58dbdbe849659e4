"""Persistence: SQLAlchemy models, the engine and its sessions, the group-commit writer, migrations."""
