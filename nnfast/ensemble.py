"""Many nets at once: ``Ensemble`` trains K nets of one architecture on the same data.

Members differ in their seeds (initialization and batch order), their
hyper-parameters (learning rate, weight decay, momentum) and their sample
weights, which give bagging (``bootstrap=True``) and the folds of a
cross-validation. Member ``i`` is exactly ``nnfast.Net(layers,
seed=init_seeds[i], **net_kwargs)`` fitted alone with
``seed=fit_seeds[i]`` and its own hyper-parameters and weights: the
ensemble runs the very same fits, each as one compiled call that releases
the GIL, on ``n_threads`` threads at once. Each thread writes only its own
members' memory, so the result does not depend on the thread count.

Seeds
-----
With ``seeds=[s_0, s_1, ...]``, member ``i`` is initialized with ``s_i``.
With one ``seed`` (or none, which draws fresh entropy), member ``i``'s is
``numpy.random.SeedSequence([seed, i, 0]).generate_state(1, numpy.uint64)[0]``.
The shuffle seed of member ``i`` in the ``k``-th call of ``fit`` (``k`` from
0), unless ``fit(seeds=...)`` gives them, is
``SeedSequence([base, i, 1, k])``'s first 64-bit word, ``base`` being ``seed``
or, with ``seeds``, ``s_i`` (and ``i`` then 0). ``init_seeds`` and
``fit_seeds`` (of the last ``fit``) hold them.
"""
from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nnfast import _lockstep, _threads, _training
from nnfast._history import DivergenceError, TrainingInterrupted
from nnfast._validation import check_int, check_seed
from nnfast.net import Net
from nnfast.optimizers import SGD, Optimizer

if TYPE_CHECKING:
    import pathlib

    from nnfast._base import BaseNet
    from nnfast._history import History
    from nnfast._typing import FloatArray, PathLike

__all__ = ["Ensemble", "BaseEnsemble", "CrossValidation", "cross_validate"]


def _derived_seed(*words):
    return int(np.random.SeedSequence([int(word) for word in words]).generate_state(1, np.uint64)[0])


class BaseEnsemble:
    """K nets of one architecture, fitted together (use ``nnfast.Ensemble``).

    Parameters
    ----------
    layers : sequence of int
        The members' layer sizes, as ``nnfast.Net`` takes them.
    n_members : int, optional
        How many members; with ``seeds``, their number (if given, it must match).
    seed : int or None, default None
        The seed every member's seeds derive from (see the module docstring).
    seeds : sequence of int, optional
        One initialization seed per member, instead of ``seed``.
    **net_kwargs
        The members' options, as ``nnfast.Net`` takes them (``activation``,
        ``loss``, ``l2``, ``dtype``, ...).

    Attributes
    ----------
    members : list of nnfast.Net
        The nets themselves (not copies): member ``i`` is ``members[i]``.
    init_seeds : list of int
    fit_seeds : list of int or None
        The shuffle seeds of the last ``fit``.
    diverged : list of bool
        Which members diverged in the last ``fit`` (see ``fit``).
    histories : list of History or None
        What the last ``fit`` returned.
    """

    # The member class: nnfast.Net or nnfast.reference.Net.
    _net_class: type[BaseNet] = None  # type: ignore[assignment]
    _parallel = True  # whether members fit on threads of their own

    def __init__(self, layers: Sequence[int], *, n_members: int | None = None, seed: int | None = None,
                 seeds: Sequence[int] | None = None, **net_kwargs: Any) -> None:
        if seeds is not None:
            if seed is not None:
                raise ValueError("give seed or seeds, not both")
            seeds = [check_seed(s) for s in seeds]
            if any(s is None for s in seeds) or not seeds:
                raise ValueError(f"seeds must be a non-empty sequence of ints >= 0, got {seeds!r}")
            if n_members is not None and check_int("n_members", n_members, 1) != len(seeds):
                raise ValueError(f"n_members={n_members} but {len(seeds)} seeds")
            self._seed_bases = [(s, 0) for s in seeds]
            self.init_seeds = list(seeds)
        else:
            if n_members is None:
                raise TypeError("give n_members (with seed) or seeds")
            n_members = check_int("n_members", n_members, 1)
            seed = check_seed(seed)
            # Fresh entropy is kept as a 64-bit word, so that a saved ensemble can record it.
            base = int(np.random.SeedSequence().generate_state(1, np.uint64)[0]) if seed is None else seed
            self._seed_bases = [(base, i) for i in range(n_members)]
            self.init_seeds = [_derived_seed(base, i, 0) for i in range(n_members)]
        self.members = [self._net_class(layers, seed=s, **net_kwargs) for s in self.init_seeds]
        self.fit_seeds: list[int] | None = None
        self.diverged = [False] * len(self.members)
        self.histories: list[History] | None = None
        self._fits = 0

    @property
    def n_members(self) -> int:
        """int: the number of members."""
        return len(self.members)

    def __repr__(self) -> str:
        first = repr(self.members[0])
        return f"{type(self).__module__}.{type(self).__name__}({first}, n_members={self.n_members})"

    # -- training ----------------------------------------------------------

    def fit(self, x: ArrayLike, y: ArrayLike, *, epochs: int, lr: float | Sequence[float] | None = None,
            optimizer: Optimizer | None = None, weight_decay: float | Sequence[float] | None = None,
            momentum: float | Sequence[float] | None = None, sample_weight: ArrayLike | None = None,
            bootstrap: bool = False, validate_held_out: bool = False, seeds: Sequence[int] | None = None,
            n_threads: int | None = None, **fit_kwargs: Any) -> list[History]:
        """Fit every member and return their histories.

        Member ``i`` runs ``members[i].fit(x, y, epochs=epochs,
        optimizer=<its optimizer>, seed=fit_seeds[i], sample_weight=<its
        weights>, **fit_kwargs)``, exactly as a net fitted alone.

        Parameters
        ----------
        x, y, epochs, **fit_kwargs
            As for ``nnfast.Net.fit`` (``batch_size``, ``shuffle``,
            ``schedule``, ``validation_data``, ``validation_fraction``,
            ``early_stopping``, ``patience``, ``min_delta``), for every
            member. Not ``verbose``, ``callback`` or ``order``.
        lr : float or sequence of float, optional
            The learning rate, or one per member (a sweep in one call).
        optimizer : nnfast optimizer, optional
            The optimizer of every member: each gets a fresh copy of its
            hyper-parameters (no state), with its own ``lr``,
            ``weight_decay`` and ``momentum`` where those are given. With
            none of ``lr``, ``optimizer``, ``weight_decay``, ``momentum``,
            each member continues with the optimizer it has.
        weight_decay, momentum : float or sequence of float, optional
            Per member, or for all; ``momentum`` for SGD only.
        sample_weight : array_like, shape (n_samples,) or (n_members, n_samples), optional
            The samples' weights, for all members or per member (bootstrap
            counts, 0/1 fold masks).
        bootstrap : bool, default False
            Multiply each member's weights by bootstrap counts: a draw of
            ``n_samples`` rows with replacement, from
            ``numpy.random.default_rng(fit_seeds[i]).multinomial``.
        validate_held_out : bool, default False
            Each member's validation data are the rows its weights leave
            out (weight 0): the out-of-bag rows with ``bootstrap``, the
            held-out fold with 0/1 fold masks (``cross_validate``). Its
            history then has ``val_loss`` (and ``val_accuracy``) per epoch,
            and ``early_stopping`` watches them. Not with
            ``validation_data`` or ``validation_fraction``.
        seeds : sequence of int, optional
            The members' shuffle seeds (see the module docstring for the default).
        n_threads : int, optional
            Threads fitting members at once; default: ``nnfast.get_num_threads()``
            (the CPUs this process may run on, unless ``nnfast.set_num_threads``
            said otherwise), at most ``n_members``. The results do not depend on
            it. With more than one, BLAS runs on one thread meanwhile (for
            the whole process) where threadpoolctl is installed
            (``pip install threadpoolctl``; scikit-learn installs it);
            without it, OpenBLAS's own threads compete with the members'.

        Members of tiny nets (every layer at most 4 wide, batches of 2 to
        16 rows, loss ``sse``, ``mse`` or ``squared_error``, an SGD, Adam or
        AdamW optimizer of one kind, no validation data or early stopping)
        train side by side in SIMD lanes (``nnfast._lanes``): faster, and
        the same bits.

        Returns
        -------
        list of History
            One per member. A member that diverges (a ``DivergenceError``
            of its own fit) keeps the parameters before the failing step;
            its history is the error's, it is flagged in ``diverged``, and
            the other members train on.

        Raises
        ------
        TrainingInterrupted
            On Ctrl-C: every member stops after its current step; the
            exception's ``history`` is the list of the members' histories
            so far (``None`` for members that had not started).
        """
        for name in ("verbose", "callback", "order"):
            if name in fit_kwargs:
                raise TypeError(f"Ensemble.fit does not take {name!r}")
        n_members = self.n_members
        optimizers = self._member_optimizers(lr, optimizer, weight_decay, momentum)
        x, y = self.members[0]._check_data(x, y)  # once, in the members' dtype
        n_samples = x.shape[0]
        self.fit_seeds = self._fit_seeds(seeds)
        weights = self._member_weights(sample_weight, bootstrap, n_samples)
        validation: list[dict[str, Any]] = [{}] * n_members
        if validate_held_out:
            if "validation_data" in fit_kwargs or "validation_fraction" in fit_kwargs:
                raise ValueError("validate_held_out gives each member its own validation data: "
                                 "not with validation_data or validation_fraction")
            validation = [self._held_out(i, w, x, y) for i, w in enumerate(weights)]
        n_threads = self._thread_count(n_threads)
        histories: list[Any] = [None] * n_members  # each None until its member's fit returns
        diverged = [False] * n_members
        flag = np.zeros(1, dtype=np.uint8)

        def fit_member(i):
            member = self.members[i]
            with _training.cancelling(flag):
                try:
                    histories[i] = member.fit(x, y, epochs=epochs, optimizer=optimizers[i], seed=self.fit_seeds[i],
                                              sample_weight=weights[i], **validation[i], **fit_kwargs)
                except DivergenceError as error:
                    histories[i], diverged[i] = error.history, True
                except TrainingInterrupted as error:
                    histories[i] = error.history
                    raise

        self._fits += 1
        lanes = None if validate_held_out else self._side_by_side(optimizers, n_samples, fit_kwargs)
        if lanes is not None:
            self.diverged = diverged
            histories, self.diverged, interrupted = _lockstep.fit(
                lanes, self.members, x, y, epochs, optimizers, self.fit_seeds, weights, fit_kwargs, flag, n_threads)
            if interrupted:
                steps = sum(len(h.loss) for h in histories if h is not None)
                raise _EnsembleInterrupted(steps, histories)
            self.histories = histories
            return histories
        try:
            if not self._parallel or n_threads == 1:
                for i in range(n_members):
                    fit_member(i)
            else:
                self._run_threads(fit_member, n_threads, flag)
        except KeyboardInterrupt as error:
            steps = sum(len(h.loss) for h in histories if h is not None)
            raise _EnsembleInterrupted(steps, histories) from error
        finally:
            self.diverged = diverged
        self.histories = histories
        return histories

    def _side_by_side(self, optimizers, n_samples, fit_kwargs):
        """The kernels that fit the members side by side in SIMD lanes, or None (see nnfast._lockstep)."""

    def _part(self, indices):
        """An ensemble of the members ``indices`` (the same net objects) that fits them as this
        one would: the same seeds derive for them (``nnfast.distributed`` sends parts to workers)."""
        part = object.__new__(type(self))
        part.members = [self.members[i] for i in indices]
        part.init_seeds = [self.init_seeds[i] for i in indices]
        part._seed_bases = [self._seed_bases[i] for i in indices]
        part.fit_seeds, part.histories, part._fits = None, None, self._fits
        part.diverged = [False] * len(indices)
        return part

    def _merge(self, parts, fitted):
        """Take back the fitted ``_part``s of the members ``parts`` (lists of indices) as one fit's result."""
        fit_seeds, diverged, histories = [None] * self.n_members, [False] * self.n_members, [None] * self.n_members
        for indices, part in zip(parts, fitted):
            for j, i in enumerate(indices):
                self.members[i] = part.members[j]
                fit_seeds[i], diverged[i], histories[i] = part.fit_seeds[j], part.diverged[j], part.histories[j]
        self.fit_seeds, self.diverged, self.histories = fit_seeds, diverged, histories
        self._fits += 1

    def _run_threads(self, fit_member, n_threads, flag):
        """Run ``fit_member(i)`` for every member on ``n_threads`` threads (see ``_threads.run_on_threads``)."""
        with _blas_on_one_thread():
            _threads.run_on_threads([functools.partial(fit_member, i) for i in range(self.n_members)],
                                    n_threads, flag)

    def _member_optimizers(self, lr, optimizer, weight_decay, momentum):
        n_members = self.n_members
        per_member = {name: self._per_member(name, value) for name, value in
                      (("lr", lr), ("weight_decay", weight_decay), ("momentum", momentum)) if value is not None}
        if optimizer is None and not per_member:
            if any(member.optimizer is None for member in self.members):
                raise ValueError("training needs a learning rate (lr=...) or an optimizer (optimizer=...): "
                                 "the members have none yet to continue with")
            return [None] * n_members  # each member continues with its own optimizer
        if optimizer is not None and not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an nnfast optimizer, got {optimizer!r}")
        if optimizer is None:
            if "lr" not in per_member:
                raise TypeError("give lr or optimizer (weight_decay and momentum set an optimizer's options)")
            optimizer = SGD(per_member["lr"][0])
        if "momentum" in per_member and not isinstance(optimizer, SGD):
            raise ValueError(f"momentum is an SGD option; the optimizer is {type(optimizer).__name__}")
        fields = optimizer._fields()
        if all(value == values[0] for values in per_member.values() for value in values):
            # One setting for all: checked once.
            return type(optimizer)(**{**fields, **{name: values[0] for name, values in per_member.items()}}
                                   )._fresh_copies(n_members)
        return [type(optimizer)(**{**fields, **{name: values[i] for name, values in per_member.items()}})
                for i in range(n_members)]

    def _per_member(self, name, value):
        values = np.atleast_1d(np.asarray(value, dtype=object))
        if values.ndim != 1 or len(values) not in (1, self.n_members):
            raise ValueError(f"{name} must be one number or one per member ({self.n_members}), got {value!r}")
        values = list(values)  # each checked by the optimizer it goes to
        return values * self.n_members if len(values) == 1 else values

    def _fit_seeds(self, seeds):
        if seeds is None:
            return [_derived_seed(base, i, 1, self._fits) for base, i in self._seed_bases]
        seeds = [check_seed(s) for s in seeds]
        if len(seeds) != self.n_members or any(s is None for s in seeds):
            raise ValueError(f"seeds must be {self.n_members} ints >= 0, one per member, got {seeds!r}")
        return seeds

    def _member_weights(self, sample_weight, bootstrap, n_samples):
        n_members = self.n_members
        if sample_weight is None:
            weights = [None] * n_members
        else:
            array = np.asarray(sample_weight)
            if array.ndim == 2:
                if array.shape != (n_members, n_samples):
                    raise ValueError(f"sample_weight must have shape ({n_samples},) or ({n_members}, {n_samples}), "
                                     f"got {array.shape}")
                weights = list(array)
            else:
                weights = [sample_weight] * n_members
        if bootstrap:
            counts = [np.random.default_rng(s).multinomial(n_samples, np.full(n_samples, 1 / n_samples))
                      for s in self.fit_seeds]
            weights = [c.astype(np.float64) if w is None else c * np.asarray(w, dtype=np.float64)
                       for c, w in zip(counts, weights)]
        return weights

    @staticmethod
    def _held_out(i, weights, x, y):
        """Member ``i``'s validation data: the rows of weight 0."""
        if weights is None:
            raise ValueError("validate_held_out needs weights that leave rows out: sample_weight or bootstrap")
        held_out = np.asarray(weights) == 0
        if not held_out.any():
            raise ValueError(f"validate_held_out: member {i}'s weights leave no row out")
        return dict(validation_data=(x[held_out], y[held_out]))

    def _thread_count(self, n_threads):
        if n_threads is None:
            return min(_threads.get_num_threads(), self.n_members)
        return min(check_int("n_threads", n_threads, 1), self.n_members)

    def save(self, path: PathLike) -> pathlib.Path:
        """Write the ensemble (every member, its optimizer and state, and the seeds) to one ``.npz`` file.

        Atomic, as ``nnfast.Net.save``; ``nnfast.load(path)`` reads it back
        (see ``nnfast.io``). Fitting the loaded ensemble continues exactly
        as fitting this one would.

        Returns
        -------
        pathlib.Path
        """
        from nnfast import io

        return io.save(self, path)

    # -- predictions -------------------------------------------------------

    def predict(self, x: ArrayLike) -> FloatArray:
        """Every member's ``predict(x)``, stacked: shape ``(n_members, n_samples, layers[-1])``."""
        x = self.members[0]._check_x(x)
        return np.stack([member.predict(x) for member in self.members])

    def predict_proba(self, x: ArrayLike) -> FloatArray:
        """Every member's ``predict_proba(x)``, stacked: shape ``(n_members, n_samples, layers[-1])``."""
        x = self.members[0]._check_x(x)
        return np.stack([member.predict_proba(x) for member in self.members])

    def predict_mean(self, x: ArrayLike) -> FloatArray:
        """The members' mean ``predict(x)``: shape ``(n_samples, layers[-1])``."""
        return self.predict(x).mean(axis=0)

    def predict_std(self, x: ArrayLike) -> FloatArray:
        """The standard deviation of the members' ``predict(x)`` (``ddof=0``): their spread."""
        return self.predict(x).std(axis=0)


class CrossValidation:
    """The result of ``cross_validate``.

    Attributes
    ----------
    ensemble : Ensemble
        One member per fold, trained without that fold.
    histories : list of History
        Member ``k``'s history, with ``val_loss`` on fold ``k`` per epoch.
    folds : list of ndarray of intp
        The rows of each fold.
    val_loss : ndarray, shape (folds,)
        Each member's validation loss on its fold after the last epoch.
    """

    ensemble: BaseEnsemble
    histories: list[History]
    folds: list[NDArray[np.intp]]
    val_loss: NDArray[np.float64]

    def __init__(self, ensemble, histories, folds):
        self.ensemble = ensemble
        self.histories = histories
        self.folds = folds
        self.val_loss = np.array([np.nan if h is None or not len(h.val_loss) else h.val_loss[-1]
                                  for h in histories])

    @property
    def mean_val_loss(self) -> float:
        """float: the mean of ``val_loss`` over the folds."""
        return float(self.val_loss.mean())

    def __repr__(self) -> str:
        return f"CrossValidation(folds={len(self.folds)}, mean_val_loss={self.mean_val_loss:.6g})"


def cross_validate(layers: Sequence[int], x: ArrayLike, y: ArrayLike, *, folds: int = 5, epochs: int,
                   seed: int | None = None, net_options: Mapping[str, Any] | None = None,
                   sample_weight: ArrayLike | None = None, ensemble_class: type[BaseEnsemble] | None = None,
                   **fit_kwargs: Any) -> CrossValidation:
    """k-fold cross-validation of one architecture, as one ``Ensemble.fit``.

    The rows are dealt into ``folds`` folds of (nearly) equal size in the
    order of ``numpy.random.default_rng(seed).permutation(n_samples)``.
    Member ``k`` trains with weight 0 on fold ``k`` (times ``sample_weight``)
    and validates on it after every epoch (``validate_held_out``). Weights,
    not subsets: the batches still hold fold ``k``'s rows, which count for
    nothing in the loss and gradients, so member ``k`` is not the net
    fitted on the other rows alone.

    Parameters
    ----------
    layers : sequence of int
    x, y : array_like
        The data, as ``nnfast.Net.fit`` takes it.
    folds : int, default 5
        From 2 to ``n_samples``.
    epochs : int
    seed : int or None
        Seeds the folds and the ensemble (``Ensemble(seed=seed)``).
    net_options : dict, optional
        The members' options (``loss``, ``activation``, ``dtype``, ...).
    sample_weight : array_like, shape (n_samples,), optional
    ensemble_class : type, optional
        ``nnfast.Ensemble`` (default) or ``nnfast.reference.Ensemble``.
    **fit_kwargs
        As for ``Ensemble.fit`` (``lr``, ``optimizer``, ``batch_size``,
        ``n_threads``, ``early_stopping``, ...).

    Returns
    -------
    CrossValidation
    """
    ensemble_class = Ensemble if ensemble_class is None else ensemble_class
    x_checked = np.asarray(x)
    n_samples = len(x_checked)
    folds = check_int("folds", folds, 2)
    if folds > n_samples:
        raise ValueError(f"folds must be at most the number of samples ({n_samples}), got {folds}")
    permutation = np.random.default_rng(seed).permutation(n_samples)
    fold_rows = [np.sort(rows) for rows in np.array_split(permutation, folds)]
    masks = np.ones((folds, n_samples))
    for k, rows in enumerate(fold_rows):
        masks[k, rows] = 0.0
    if sample_weight is not None:
        masks = masks * np.asarray(sample_weight, dtype=np.float64)
    ensemble = ensemble_class(layers, n_members=folds, seed=seed, **(net_options or {}))
    histories = ensemble.fit(x, y, epochs=epochs, sample_weight=masks, validate_held_out=True, **fit_kwargs)
    return CrossValidation(ensemble, histories, fold_rows)


def _blas_on_one_thread():
    """Limit BLAS to one thread while member fits share the cores, where threadpoolctl is installed.

    Each member's products then run on its own thread: two fits each asking
    OpenBLAS for every core would oversubscribe them.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class Ensemble(BaseEnsemble):
    # (or ""): docstrings are None under python -OO.
    __doc__ = (BaseEnsemble.__doc__ or "").replace("(use ``nnfast.Ensemble``)",
                                                   "of ``nnfast.Net``, fitted on threads at once")
    _net_class = Net

    def _side_by_side(self, optimizers, n_samples, fit_kwargs):
        return _lockstep.plan(self.members, optimizers, n_samples, fit_kwargs)


class _EnsembleInterrupted(TrainingInterrupted):
    """``TrainingInterrupted`` of an ensemble: ``history`` is the list of the members' histories."""

    def __init__(self, steps, histories):
        KeyboardInterrupt.__init__(
            self, f"training was interrupted after {steps} steps in all; each member keeps the parameters "
                  f"after its last completed step, and the exception's history lists the members' histories")
        self.history = histories
