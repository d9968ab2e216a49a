"""What ``fit`` returns, and the errors it raises when training diverges or is interrupted."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import matplotlib.axes
    import pandas

# Status codes shared by the reference and the compiled kernels.
STEP_OK = 0
LOSS_NOT_FINITE = 1
UPDATE_NOT_FINITE = 2


class History:
    """The record of one ``fit`` (or ``partial_fit``) call.

    Attributes
    ----------
    loss : ndarray of float64, shape (n_steps,)
        The loss of every step's batch, computed before that step's update.
    epoch_loss : ndarray of float64, shape (epochs,)
        Per epoch, the mean of its batch losses weighted by batch size (the
        loss of the one batch, for full-batch training).
    epoch_penalty : ndarray of float64, shape (epochs,)
        The part of ``epoch_loss`` that is the net's L2 penalty (``l2``),
        averaged the same way; zeros without a penalty.
    val_loss : ndarray of float64, shape (epochs,), or None
        The loss on the validation data after each epoch, when there is any.
    val_accuracy : ndarray of float64, shape (epochs,), or None
        The fraction of validation samples (for the binary losses, of
        outputs) classified right after each epoch, for the
        classification losses.
    epochs : int
        The number of epochs run.
    steps_per_epoch : int
        Mini-batches per epoch (``ceil(n_samples / batch_size)``).
    best_epoch : int or None
        With early stopping, the epoch whose parameters the net was left with.
    stopped_early : bool
        Whether early stopping or the callback ended training before ``epochs``.
    """

    def __init__(self, loss: ArrayLike, epochs: int, steps_per_epoch: int, epoch_loss: ArrayLike | None = None,
                 val_loss: NDArray[np.float64] | None = None, val_accuracy: NDArray[np.float64] | None = None,
                 best_epoch: int | None = None, stopped_early: bool = False,
                 epoch_penalty: ArrayLike | None = None) -> None:
        self.loss = np.asarray(loss, dtype=np.float64)
        self.epoch_loss = np.asarray([] if epoch_loss is None else epoch_loss, dtype=np.float64)
        self.epoch_penalty = (np.zeros_like(self.epoch_loss) if epoch_penalty is None
                              else np.asarray(epoch_penalty, dtype=np.float64))
        self.val_loss = val_loss
        self.val_accuracy = val_accuracy
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.best_epoch = best_epoch
        self.stopped_early = stopped_early

    def to_dict(self) -> dict[str, Any]:
        """The record as plain Python values (lists of floats, ints, bools, None): JSON-ready."""
        def listed(values):
            return None if values is None else [float(v) for v in values]

        return dict(loss=listed(self.loss), epoch_loss=listed(self.epoch_loss),
                    epoch_penalty=listed(self.epoch_penalty), val_loss=listed(self.val_loss),
                    val_accuracy=listed(self.val_accuracy), epochs=int(self.epochs),
                    steps_per_epoch=int(self.steps_per_epoch),
                    best_epoch=None if self.best_epoch is None else int(self.best_epoch),
                    stopped_early=bool(self.stopped_early))

    def to_frame(self) -> pandas.DataFrame:
        """The per-epoch record as a pandas DataFrame, indexed by epoch (from 1).

        Columns ``loss`` (the epoch loss), ``penalty``, and ``val_loss`` and
        ``val_accuracy`` where the fit recorded them. Needs pandas
        (``pip install nnfast[plot]``).
        """
        try:
            import pandas
        except ImportError as error:
            raise ImportError("History.to_frame needs pandas, which is not installed: "
                              "pip install nnfast[plot] (or pip install pandas)") from error
        columns = {"loss": self.epoch_loss, "penalty": self.epoch_penalty}
        for name in ("val_loss", "val_accuracy"):
            if getattr(self, name) is not None:
                columns[name] = getattr(self, name)
        return pandas.DataFrame(columns, index=pandas.RangeIndex(1, self.epochs + 1, name="epoch"))

    def plot(self, ax: matplotlib.axes.Axes | None = None, *, log: bool = False) -> matplotlib.axes.Axes:
        """Draw the loss curves with matplotlib and return the Axes.

        The training loss of every step (thin), the training and validation
        loss of every epoch (markers) and, where recorded, the validation
        accuracy against a second axis; the x axis counts epochs. Needs
        matplotlib (``pip install nnfast[plot]``).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; by default, a new figure's.
        log : bool, default False
            A logarithmic loss axis.

        Returns
        -------
        matplotlib.axes.Axes
        """
        from nnfast._plot import plot_history

        return plot_history(self, ax, log)

    def __repr__(self) -> str:
        last = f", last loss={self.loss[-1]:.6g}" if len(self.loss) else ""
        if self.val_loss is not None and len(self.val_loss):
            last += f", last val_loss={self.val_loss[-1]:.6g}"
        return f"History(epochs={self.epochs}, steps={len(self.loss)}{last})"


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters.

    The step that failed was not applied: the net keeps the last finite
    parameters. ``history`` holds the losses of every step up to and
    including the failing one.
    """

    def __init__(self, status: int, step: int, lr: float, history: History | None = None) -> None:
        what = "the loss" if status == LOSS_NOT_FINITE else "the updated parameters"
        super().__init__(
            f"training diverged at step {step}: {what} became NaN or infinite. "
            f"The net keeps the parameters from before that step. "
            f"Try a smaller learning rate (lr={lr:g}) or scale the inputs and targets."
        )
        self.step = step
        self.history = history


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped a ``fit`` between two steps.

    A ``KeyboardInterrupt``, so code that catches that catches this too.
    The net keeps the parameters after the last completed step, and the
    optimizer's state and step count match them; ``history`` holds the
    losses of every step and epoch completed.
    """

    def __init__(self, steps: int, history: History, reason: str = "") -> None:
        super().__init__(
            (f"{reason}: " if reason else "")
            + f"training was interrupted after {steps} steps ({history.epochs} whole epochs); "
            "the net keeps the parameters after the last completed step, and the "
            "exception's history holds the losses so far"
        )
        self.history = history
