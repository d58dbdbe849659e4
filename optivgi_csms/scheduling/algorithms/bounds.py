"""Upper bounds on the energy any valid schedule can deliver, for certificates that cost no extra LP.

The per-slot relaxation (no minimum-current rule) maximises ``Σ p·dt`` subject to the site and phase rows
of every slot, each EV's energy and ``0 ≤ p ≤ cap``. By weak duality, **any** prices ``λ_t ≥ 0`` on the
site rows and ``ν_pt ≥ 0`` on the phase rows give an upper bound::

    Σ_t C_t·λ_t + Σ_pt L_p·ν_pt + Σ_i min_μ≥0 [ E_i·μ + Σ_t cap_it·max(0, dt - π_it - μ·dt) ]

where ``π_it = λ_t + Σ_p a_ip·ν_pt`` is what slot ``t`` costs EV ``i``; the inner minimum is over one
number per EV and is found exactly by sorting. Good prices come for free from an LP already solved (its
row duals); with all prices zero the bound is simply what every EV could take within its window.
"""

from __future__ import annotations

import numpy as np

from optivgi_csms.scheduling.problem import Problem


def window_bound(problem: Problem) -> float:
    """What every EV could take within its window with the site to itself: ``Σ_i min(E_i, Σ_t cap_it·dt)``."""
    alone = problem.cap.sum(axis=1) * problem.dt_h
    return float(np.minimum(problem.energy_kwh, alone).sum())


def dual_bound(problem: Problem, site_price: np.ndarray, phase_price: np.ndarray | None = None) -> float:
    """The bound above for prices ``site_price`` (T,) per kW of site limit and ``phase_price`` (P, T) per A
    of phase limit, both in kWh (an LP's row duals of the per-slot rows); negative prices count as 0."""
    dt = problem.dt_h
    lam = np.maximum(np.nan_to_num(site_price), 0.0)
    value = float(problem.site_kw @ lam)
    nu = None
    if phase_price is not None and len(problem.phase_limit_a):
        nu = np.maximum(np.nan_to_num(phase_price), 0.0)
        value += float((problem.phase_limit_a[:, None] * nu).sum())
    if not problem.n_slots or not problem.n_evs:
        return value
    # EVs on the same phases see the same slot prices: sort the slots once per such group.
    _, group = np.unique(problem.phase_coef, axis=0, return_inverse=True)
    group = np.asarray(group).ravel()
    for g in np.unique(group):
        evs = np.nonzero(group == g)[0]
        cost = lam / dt if nu is None else (lam + problem.phase_coef[evs[0]] @ nu) / dt
        worth = 1.0 - cost  # per kWh in each slot
        order = np.argsort(-worth, kind="stable")
        worth_sorted = worth[order]
        energy_sorted = problem.cap[np.ix_(evs, order)] * dt
        cumulative = np.cumsum(energy_sorted, axis=1)
        request = problem.energy_kwh[evs]
        reached = cumulative >= request[:, None]
        any_reached = reached.any(axis=1)
        k = np.where(any_reached, np.argmax(reached, axis=1), 0)
        # The best price of the EV's own energy: the worth of the slot where its request is reached.
        mu = np.where(any_reached, np.maximum(worth_sorted[k], 0.0), 0.0)
        surplus = np.maximum(worth_sorted[None, :] - mu[:, None], 0.0)
        value += float((request * mu).sum() + (energy_sorted * surplus).sum())
    return value
