"""The objective terms shared by the LP formulations (HiGHS and PuLP), so both optimise the same thing."""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.problem import Problem

#: Relative slack with which a later stage holds an earlier stage's optimum.
HOLD = 1e-7
#: Fairness utility: an EV's served fraction is cut into steps of these widths, each worth less per share
#: than the one before (1, 5/6, ... 1/6), so moving energy from an EV further along its request to one less
#: far along always pays: nobody is left below 5% while another EV is above it, below 10% while another is
#: above 10%, and so on, if the energy can be moved. The first steps are narrow because on a crowded site
#: every EV gets a small share of what it asks within the plan: with even 20% steps, one EV at 20% and
#: another at nothing were as good as both at 10%.
FAIR_SHARES = np.array([0.05, 0.05, 0.1, 0.15, 0.15, 0.5])
FAIR_STEPS = len(FAIR_SHARES)
FAIR_WEIGHTS = 1.0 - np.arange(FAIR_STEPS) / FAIR_STEPS
#: Where each step starts, as a share of the request.
FAIR_STARTS = np.concatenate([[0.0], np.cumsum(FAIR_SHARES)[:-1]])


def departure_slot(problem: Problem) -> np.ndarray:
    """(n,) the last slot each EV is present in (0 for EVs never present)."""
    return problem.n_slots - 1 - np.argmax(problem.frac[:, ::-1] > 0, axis=1)


def rank01(values: np.ndarray) -> np.ndarray:
    """Each value's rank scaled to [0, 1] (ties share the lower rank)."""
    if len(values) <= 1:
        return np.zeros(len(values))
    return np.searchsorted(np.sort(values), values, side="left") / (len(values) - 1)


def early_cost(problem: Problem) -> np.ndarray:
    """(n, T) cost per kW of charging in each slot for the "charge early" stage: it grows with the slot, and
    EVs that leave first pay up to 50% more per slot of delay, so they take the earliest slots and every EV
    tends to charge in one block instead of cycling on and off."""
    keen = 1.0 + 0.5 * rank01(-departure_slot(problem).astype(float))
    slots = (np.arange(problem.n_slots) + 1) / max(problem.n_slots, 1)
    return problem.dt_h * keen[:, None] * slots[None, :]
