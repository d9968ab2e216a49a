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

import numpy as np

from nnfast import _kernels, _memory, _random, _threads
from nnfast._base import _check_some_weight
from nnfast._history import STEP_OK, History
from nnfast._validation import check_seed
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
        return type(optimizer), getattr(optimizer, "nesterov", False), getattr(optimizer, "style", None)

    shape, kind = architecture(first), rule(chosen[0])
    for member, optimizer in zip(members, chosen):
        if (type(member) is not Net or optimizer is None or architecture(member) != shape
                or (optimizer is not chosen[0] and rule(optimizer) != kind)):
            return None
    return lanes


class LaneRecords:
    """The runs of the members the lanes fit, one row per member: what
    ``nnfast._training.TrainingRun`` holds for one net, for all at once, so
    that the set-up costs little per member.

    Attributes
    ----------
    batch_size, steps_per_epoch, epochs : int
    shuffle : bool
        Whether batches take their rows in ``order``, reshuffled each epoch
        (else in the order of the data: the lanes take no ``order`` of fit's).
    learning_rates : list of ndarray of float64, shape (epochs,)
        Each member's, shared by members of one learning rate.
    sample_weight : list of ndarray, shape (n_samples,), or None
        Each member's weights, in the nets' dtype; None if no member has any.
    step_loss : ndarray of float64, shape (n_members, epochs * steps_per_epoch)
    epoch_loss, epoch_penalty : ndarray of float64, shape (n_members, epochs)
    order : ndarray of intp, shape (n_members, n_samples)
        Each member's sample order, reshuffled in place each epoch.
    shuffle_state : ndarray of uint64, shape (n_members,)
    counters : ndarray of int64, shape (n_members, 3)
        Each member's epochs and steps completed, and its status (STEP_OK,
        or how its last step failed).
    cancel : ndarray of uint8, shape (1,)
        Set (by another thread) to stop after the current step.
    """

    def __init__(self, plan, n_members, learning_rates, sample_weight, shuffle_states, cancel):
        n_samples = plan.x.shape[0]
        self.batch_size, self.epochs = plan.batch_size, plan.epochs
        self.steps_per_epoch = -(-n_samples // plan.batch_size)
        self.shuffle = plan.shuffle
        self.learning_rates, self.sample_weight = learning_rates, sample_weight
        self.step_loss = np.empty((n_members, self.epochs * self.steps_per_epoch))
        self.epoch_loss = np.empty((n_members, self.epochs))
        self.epoch_penalty = np.empty((n_members, self.epochs))
        self.order = np.empty((n_members, n_samples), dtype=np.intp)
        self.order[...] = np.arange(n_samples)
        self.shuffle_state = np.array(shuffle_states, dtype=np.uint64).reshape(n_members)
        self.counters = np.zeros((n_members, 3), dtype=np.int64)
        self.cancel = cancel

    def part(self, indices):
        """The records of the members ``indices`` (a range), as views."""
        part = object.__new__(LaneRecords)
        part.__dict__.update(self.__dict__)
        rows = slice(indices.start, indices.stop)
        for name in ("step_loss", "epoch_loss", "epoch_penalty", "order", "shuffle_state", "counters"):
            setattr(part, name, getattr(self, name)[rows])
        part.learning_rates = self.learning_rates[rows]
        if self.sample_weight is not None:
            part.sample_weight = self.sample_weight[rows]
        return part

    def histories(self):
        """Each member's ``History`` so far (its arrays are views, as ``TrainingRun.history``'s)."""
        return [History(step_loss[:steps], epochs, self.steps_per_epoch, epoch_loss=epoch_loss[:epochs],
                        epoch_penalty=epoch_penalty[:epochs])
                for (epochs, steps, _), step_loss, epoch_loss, epoch_penalty
                in zip(self.counters.tolist(), self.step_loss, self.epoch_loss, self.epoch_penalty)]


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
    # The data and the options are checked once, with the first member's fit: the members share
    # them, and everything but their optimizers, seeds and weights.
    first = members[0]
    plan = first._plan_fit(x, y, epochs=epochs, optimizer=optimizers[0], seed=fit_seeds[0],
                           sample_weight=weights[0], **fit_kwargs)
    n_members, n_samples = len(members), plan.x.shape[0]
    chosen = [plan.optimizer] + [member._choose_optimizer(None, optimizer)
                                 for member, optimizer in zip(members[1:], optimizers[1:])]
    member_weights = None
    if any(w is not None for w in weights):
        if any(w is None for w in weights):
            raise ValueError("the lanes weigh the samples of every member or of none")
        member_weights = [plan.weights] + [member._check_weights(w, plan.x) for member, w in
                                           zip(members[1:], weights[1:])]
        for w in member_weights[1:]:
            _check_some_weight(w, "")
    schedules = {}  # members of one learning rate share its schedule
    for optimizer in chosen:
        if optimizer.lr not in schedules:
            schedules[optimizer.lr] = plan.schedule.learning_rates(optimizer.lr, epochs)
    states = [plan.state] + ([_random.shuffle_state(check_seed(s)) for s in fit_seeds[1:]] if plan.shuffle
                             else [0] * (n_members - 1))
    steps = epochs * -(-n_samples // plan.batch_size)
    _memory.check_allocation(8 * n_members * (steps + 2 * epochs + n_samples),
                             lambda: f"the records of {n_members} members' fits of {steps:,} steps")
    records = LaneRecords(plan, n_members, [schedules[o.lr] for o in chosen], member_weights, states, flag)
    arguments = (first._layout.table, first._loss_code(), first._negative_slope, first._l2, plan.x, plan.y)
    n_params, dtype = first.n_params, first._dtype

    def fit_part(indices):
        # The thread that runs a part owns its members, as Net.fit's thread owns its net.
        with contextlib.ExitStack() as owning:
            for i in indices:
                owning.enter_context(members[i]._owning())
            for i in indices:
                chosen[i]._bind(n_params, dtype)
                members[i].optimizer = chosen[i]
            return lanes.fit_lanes(*arguments, [members[i]._params for i in indices],
                                   [members[i]._fast.lock for i in indices], [chosen[i] for i in indices],
                                   records.part(indices), epochs)

    parts = _split(n_members, lanes.LANE_COUNT, n_threads)
    try:
        if len(parts) == 1:
            interrupted = not fit_part(parts[0])
        else:
            interrupted = not all(_threads.run_on_threads([functools.partial(fit_part, p) for p in parts],
                                                          len(parts), flag))
    except KeyboardInterrupt:
        interrupted = True
    counters = records.counters.tolist()
    # A member whose block had not started when Ctrl-C came has no history, as in the per-member fits.
    histories = [None if interrupted and steps == 0 else history
                 for history, (_, steps, _) in zip(records.histories(), counters)]
    return histories, [status != STEP_OK for _, _, status in counters], interrupted


def _split(n_members, lanes, n_threads):
    """The members of each thread: whole blocks of ``lanes``, as evenly as they go."""
    n_blocks = -(-n_members // lanes)
    n_parts = max(1, min(n_threads, n_blocks))
    bounds = [min(n_members, (n_blocks * k // n_parts) * lanes) for k in range(n_parts + 1)]
    return [range(bounds[k], bounds[k + 1]) for k in range(n_parts)]
