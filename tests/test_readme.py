"""The README stays true: its quick start is the Makefile's, and it documents every setting."""

from __future__ import annotations

from pathlib import Path

from optivgi_csms.config import SETTING_FIELDS

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [setting.name for setting in SETTING_FIELDS if f"`{setting.name}`" not in readme]
    assert missing == []


def test_quick_start_commands_exist_and_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "make run" in readme and "make test" in readme
    assert "\nrun:" in makefile and "\ntest:" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()
