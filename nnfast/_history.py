"""What ``fit`` returns, and the error it raises when training diverges."""
import numpy as np

# Status codes shared by the reference and the compiled kernels.
STEP_OK = 0
LOSS_NOT_FINITE = 1
UPDATE_NOT_FINITE = 2


class History:
    """The record of one ``fit`` call.

    Attributes
    ----------
    loss : ndarray of float64, shape (n_steps,)
        The loss of every step's batch, computed before that step's update.
    epochs : int
        The number of epochs run.
    steps_per_epoch : int
        Mini-batches per epoch (``ceil(n_samples / batch_size)``).
    """

    def __init__(self, loss, epochs, steps_per_epoch):
        self.loss = np.asarray(loss, dtype=np.float64)
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch

    def __repr__(self):
        last = f", last loss={self.loss[-1]:.6g}" if len(self.loss) else ""
        return f"History(epochs={self.epochs}, steps={len(self.loss)}{last})"


class DivergenceError(FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters.

    The step that failed was not applied: the net keeps the last finite
    parameters. ``history`` holds the losses of every step up to and
    including the failing one.
    """

    def __init__(self, status, step, lr, history=None):
        what = "the loss" if status == LOSS_NOT_FINITE else "the updated parameters"
        super().__init__(
            f"training diverged at step {step}: {what} became NaN or infinite. "
            f"The net keeps the parameters from before that step. "
            f"Try a smaller learning rate (lr={lr:g}) or scale the inputs and targets."
        )
        self.step = step
        self.history = history
