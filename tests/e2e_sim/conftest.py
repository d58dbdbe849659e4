"""The simulator end-to-end cases run on SQLite only.

What they measure (power at the stations against the site limit, seconds of reaction) does not depend on
the database; every smart-charging read and write they rely on runs on both backends in tests/smart_charging.
Running them twice would add ~80 s of wall time to the suite for no new coverage.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest


@pytest.fixture
async def database_url(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[str]:
    """A fresh, migrated SQLite database (overrides the both-backends fixture of tests/conftest.py)."""
    path = tmp_path / "csms.db"
    shutil.copy(sqlite_template, path)
    yield f"sqlite+aiosqlite:///{path}"
