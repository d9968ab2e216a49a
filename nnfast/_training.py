"""The state of one training run, shared by the reference and the compiled loop.

``TrainingRun`` holds everything a run of epochs reads and writes: the
sample order and the shuffle generator's state, the per-epoch learning
rates, the optimizer, the loss records and the early-stopping progress.
``BaseNet.fit`` builds one and hands it to the implementation's
``_run_epochs`` once for the whole fit, or once per epoch when a callback
needs Python in between, or once per chunk of epochs for the progress line
(``nnfast._progress``); the result is the same either way, because every
piece of state lives here.
"""
import contextlib
import threading
from typing import Any, NamedTuple

import numpy as np

from nnfast._history import STEP_OK, History

# The cancel flag that training runs started in this thread share (see cancelling).
_thread_state = threading.local()


@contextlib.contextmanager
def cancelling(flag):
    """Within this block, training runs this thread starts stop after their current step once
    ``flag[0]`` (a uint8[1] array) is set, from any thread, and raise ``TrainingInterrupted``.

    How ``nnfast.Ensemble`` stops the member fits of its worker threads on Ctrl-C, which
    only the main thread sees.
    """
    previous = getattr(_thread_state, "cancel", None)
    _thread_state.cancel = flag
    try:
        yield
    finally:
        _thread_state.cancel = previous


class FitPlan(NamedTuple):
    """A fit's checked arguments (``BaseNet._plan_fit``), from which ``BaseNet._start_run``
    makes its ``TrainingRun``: the data after the validation split, the optimizer and
    schedule, the batches and the shuffle generator's first state."""

    x: Any
    y: Any
    x_val: Any
    y_val: Any
    weights: Any
    epochs: int
    optimizer: Any
    schedule: Any
    batch_size: int
    shuffle: bool
    state: int
    early_stopping: bool
    patience: int
    min_delta: float
    order: Any


class TrainingRun:
    """Buffers and counters of a training run (see the module docstring).

    Attributes
    ----------
    batch_size, steps_per_epoch, epochs : int
    shuffle : bool
    gather : bool
        Whether batches take their rows in ``order`` (shuffled, or given);
        else in the order of the data.
    order : ndarray of intp, shape (n_samples,) or (epochs, n_samples)
        The current sample order: reshuffled in place each epoch, or the
        order given to ``fit``: one for every epoch, or (2-D) one per epoch.
    shuffle_state : ndarray of uint64, shape (1,)
        The SplitMix64 state.
    optimizer : nnfast.optimizers.Optimizer
    optimizer_steps : ndarray of int64, shape (1,)
        The optimizer's step count, which the run advances in place.
    learning_rates : ndarray of float64, shape (epochs,)
    step_loss : ndarray of float64, shape (epochs * steps_per_epoch,)
    epoch_loss, epoch_penalty : ndarray of float64, shape (epochs,)
    val_loss, val_accuracy : ndarray of float64, shape (epochs,), or (0,) without validation
    early_stopping : bool
    patience : int
    min_delta : float
    progress : ndarray of float64, shape (3,)
        Early stopping's ``[best monitored loss, epochs without improvement,
        best epoch]``.
    best_params : ndarray, shape (n_params,), or None
        The parameters after the best epoch so far.
    sample_weight : ndarray, shape (n_samples,), or None
        The weights of the samples, in the order of the data.
    epoch, steps : int
        Epochs and steps completed.
    status : int
        STEP_OK, or how the last step failed.
    stopped : bool
        Early stopping (or the callback) ended the run.
    cancel : ndarray of uint8, shape (1,)
        Set (by another thread) to stop the run after its current step: the
        flag of ``cancelling``, or a flag of the run's own.
    cancelled : bool
        The run stopped because ``cancel`` was set.
    """

    def __init__(self, n_samples, n_params, dtype, epochs, batch_size, shuffle, shuffle_state,
                 optimizer, learning_rates, has_validation, early_stopping, patience, min_delta,
                 sample_weight=None, order=None):
        self.epochs = epochs
        self.batch_size = batch_size
        self.steps_per_epoch = -(-n_samples // batch_size)
        self.shuffle = shuffle
        self.gather = shuffle or order is not None
        self.order = np.arange(n_samples, dtype=np.intp) if order is None else order
        self.shuffle_state = np.array([shuffle_state], dtype=np.uint64)
        self.optimizer = optimizer
        self.optimizer_steps = optimizer._step_counter
        self.learning_rates = learning_rates
        # Only the entries of epochs and steps that ran are ever read.
        self.step_loss = np.empty(epochs * self.steps_per_epoch)
        self.epoch_loss = np.empty(epochs)
        self.epoch_penalty = np.empty(epochs)
        self.val_loss = np.empty(epochs if has_validation else 0)
        self.val_accuracy = np.empty(epochs if has_validation else 0)  # written for classification
        self.has_validation = has_validation
        self.early_stopping = early_stopping
        self.patience = patience
        self.min_delta = min_delta
        self.progress = np.array([np.inf, 0.0, -1.0])
        self.best_params = np.empty(n_params, dtype=dtype) if early_stopping else None
        self.sample_weight = sample_weight
        self.epoch = 0
        self.steps = 0
        self.status = STEP_OK
        self.stopped = False
        flag = getattr(_thread_state, "cancel", None)
        self.cancel = np.zeros(1, dtype=np.uint8) if flag is None else flag
        self.cancelled = False

    def history(self, classification):
        """The ``History`` of the epochs run so far.

        Its arrays are views: the entries of epochs and steps already run
        are never written again.
        """
        epochs = self.epoch
        best = int(self.progress[2]) if self.early_stopping and self.progress[2] >= 0 else None
        return History(
            self.step_loss[: self.steps],
            epochs,
            self.steps_per_epoch,
            epoch_loss=self.epoch_loss[:epochs],
            epoch_penalty=self.epoch_penalty[:epochs],
            val_loss=self.val_loss[:epochs] if self.has_validation else None,
            val_accuracy=self.val_accuracy[:epochs] if self.has_validation and classification else None,
            best_epoch=best,
            stopped_early=self.stopped and epochs < self.epochs,
        )
