"""Charge point simulators for trying and measuring a CSMS without hardware."""
