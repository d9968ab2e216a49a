"""Fit an ensemble's tiny members side by side, one per SIMD lane (``nnfast._lanes``).

``nnfast.Ensemble.fit`` asks ``plan`` whether its members and options are
ones the lanes take; if so, ``fit`` runs them there instead of one
``Net.fit`` per member. Each member's result is the same to the bit either
way (tests/test_lanes.py), so this is a choice of speed only, like the
choice between BLAS and loops: at the seed's size one fit's fixed costs
are most of its time, and here they are paid once per block of members.
"""
from __future__ import annotations

import contextlib
import functools

from nnfast import _kernels, _threads, _training
from nnfast._history import STEP_OK
from nnfast.net import Net

# What the lanes compute: the losses of nnfast._dense's squared-error branch.
LANE_LOSSES = ("sse", "mse", "squared_error")
# Net.fit options the lanes follow; any other (validation, early stopping) takes the per-member fits.
LANE_OPTIONS = frozenset({"batch_size", "shuffle", "schedule"})


def plan(members, optimizers, n_samples, fit_kwargs):
    """Return the lanes' kernel module if these members can be fitted side by side, else None.

    Parameters
    ----------
    members : list of nnfast.Net
    optimizers : list
        Each member's new optimizer, or None where it continues with its own.
    n_samples : int
    fit_kwargs : dict
        The other options of the fit, as ``Net.fit`` takes them.
    """
    first = members[0]
    if type(first) is not Net or len({id(member) for member in members}) != len(members):
        return None
    # The widest vectors the CPU has: every build gives the same bits.
    lanes = _kernels.BEST.lanes
    if (len(members) < 2 or not set(fit_kwargs) <= LANE_OPTIONS or first.loss_name not in LANE_LOSSES
            or max(first.layers) > lanes.MAX_WIDTH):
        return None
    batch_size = fit_kwargs.get("batch_size")
    rows = n_samples if batch_size is None or isinstance(batch_size, bool) else min(batch_size, n_samples)
    # One-row batches of plain SGD take another path in run_epochs (backward_sgd_one_row).
    if not isinstance(rows, int) or not 2 <= rows <= lanes.MAX_ROWS or n_samples % rows == 1:
        return None
    chosen = [member.optimizer if optimizer is None else optimizer for member, optimizer in zip(members, optimizers)]
    if chosen[0] is None:
        return None
    def architecture(net):
        return (net._layers, net._activations, net._bias, net._loss_name, net._negative_slope, net._l2, net._dtype)

    def rule(optimizer):  # the update's code, Nesterov setting and style
        values = optimizer.hyperparameters()
        return type(optimizer), values[0], values[2], values[7]

    shape, kind = architecture(first), rule(chosen[0])
    for member, optimizer in zip(members, chosen):
        if (type(member) is not Net or optimizer is None or architecture(member) != shape
                or (optimizer is not chosen[0] and rule(optimizer) != kind)):
            return None
    return lanes


def fit(lanes, members, x, y, epochs, optimizers, fit_seeds, weights, fit_kwargs, flag, n_threads):
    """Fit ``members`` in ``lanes`` as ``Net.fit`` would fit each alone.

    Returns
    -------
    histories : list of History or None
        One per member; None for members whose block had not started when
        Ctrl-C stopped the fit.
    diverged : list of bool
    interrupted : bool
        Whether Ctrl-C (a KeyboardInterrupt in this thread, or ``flag`` set)
        stopped the fit; every member keeps the parameters after its last
        completed step.
    """
    # The data are checked once: the members share them, and everything but these three.
    first_plan = members[0]._plan_fit(x, y, epochs=epochs, optimizer=optimizers[0], seed=fit_seeds[0],
                                      sample_weight=weights[0], **fit_kwargs)
    plans = [first_plan] + [member._replan(first_plan, optimizer=optimizer, seed=seed, sample_weight=w)
                            for member, optimizer, seed, w in zip(members[1:], optimizers[1:], fit_seeds[1:],
                                                                  weights[1:])]
    first = members[0]
    arguments = (first._layout.table, first._loss_code(), first._negative_slope, first._l2, plans[0].x, plans[0].y)
    runs = [None] * len(members)

    def fit_part(indices):
        # The thread that runs a part owns its members, as Net.fit's thread owns its net.
        with contextlib.ExitStack() as owning:
            for i in indices:
                owning.enter_context(members[i]._owning())
            with _training.cancelling(flag):
                for i in indices:
                    runs[i] = members[i]._start_run(plans[i])
            return lanes.fit_lanes(*arguments, [members[i]._params for i in indices],
                                   [members[i]._fast.lock for i in indices], [runs[i] for i in indices], epochs)

    parts = _split(len(members), lanes.LANE_COUNT, n_threads)
    try:
        if len(parts) == 1:
            interrupted = not fit_part(parts[0])
        else:
            interrupted = not all(_threads.run_on_threads([functools.partial(fit_part, p) for p in parts],
                                                          len(parts), flag))
    except KeyboardInterrupt:
        interrupted = True
    # A member whose block had not started when Ctrl-C came has no history, as in the per-member fits.
    histories = [None if run is None or (interrupted and run.steps == 0) else run.history(False) for run in runs]
    return histories, [run is not None and run.status != STEP_OK for run in runs], interrupted


def _split(n_members, lanes, n_threads):
    """The members of each thread: whole blocks of ``lanes``, as evenly as they go."""
    n_blocks = -(-n_members // lanes)
    n_parts = max(1, min(n_threads, n_blocks))
    bounds = [min(n_members, (n_blocks * k // n_parts) * lanes) for k in range(n_parts + 1)]
    return [range(bounds[k], bounds[k + 1]) for k in range(n_parts)]
