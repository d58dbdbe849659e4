"""The HiGHS wrapper: silent whichever highspy class it gets."""

from __future__ import annotations

import highspy
import pytest

from optivgi_csms.scheduling.algorithms.highs_model import new_highs


def test_new_highs_is_silent(capfd: pytest.CaptureFixture[str]) -> None:
    new_highs().run()
    assert capfd.readouterr().out == ""


def test_new_highs_falls_back_to_the_public_class_without_a_banner(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # A highspy release without the private binding: the public class prints a banner while it is built.
    monkeypatch.delattr(highspy._core, "_Highs")
    highs = new_highs()
    assert isinstance(highs, highspy.Highs)
    highs.run()
    print("after")  # stdout works again afterwards
    assert capfd.readouterr().out == "after\n"
