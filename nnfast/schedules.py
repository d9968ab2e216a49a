"""Learning-rate schedules, applied per epoch (as ``torch.optim.lr_scheduler``).

A schedule turns the optimizer's base learning rate into one learning rate
per epoch of a ``fit`` call; epochs count from 0 in every call. The values
are computed here, once, and the compiled loop reads them.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from numpy.typing import NDArray

from nnfast._validation import check_in_interval

__all__ = ["Constant", "StepDecay", "ExponentialDecay", "CosineAnnealing"]


class Schedule:
    """Base class: ``learning_rates(base_lr, epochs)`` gives the per-epoch rates."""

    # Each subclass's rates of the given (float64) epoch numbers.
    _rates: Callable[[float, NDArray[np.float64]], NDArray[np.float64]]

    def learning_rates(self, base_lr: float, epochs: int) -> NDArray[np.float64]:
        """Return a float64 array of the learning rates of epochs ``0 .. epochs-1``."""
        return self._rates(float(base_lr), np.arange(epochs, dtype=np.float64))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"nnfast.schedules.{type(self).__name__}({fields})"


class Constant(Schedule):
    """The base learning rate in every epoch."""

    def learning_rates(self, base_lr: float, epochs: int) -> NDArray[np.float64]:
        return np.full(epochs, float(base_lr))


class StepDecay(Schedule):
    """``lr = base_lr * gamma ** (epoch // step_size)`` (``torch.optim.lr_scheduler.StepLR``).

    Parameters
    ----------
    step_size : int
        Epochs between decays, >= 1.
    gamma : float, default 0.1
        Factor per decay, in (0, 1].
    """

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_in_interval("step_size", step_size, 1, integer=True)
        self.gamma = check_in_interval("gamma", gamma, 0.0, 1.0, low_open=True)

    def _rates(self, base_lr, epoch):
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(Schedule):
    """``lr = base_lr * gamma ** epoch`` (``torch.optim.lr_scheduler.ExponentialLR``).

    Parameters
    ----------
    gamma : float
        Factor per epoch, in (0, 1].
    """

    def __init__(self, gamma: float) -> None:
        self.gamma = check_in_interval("gamma", gamma, 0.0, 1.0, low_open=True)

    def _rates(self, base_lr, epoch):
        return base_lr * self.gamma**epoch


class CosineAnnealing(Schedule):
    """Cosine annealing from ``base_lr`` down to ``eta_min`` over ``t_max`` epochs.

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2``,
    the closed form of ``torch.optim.lr_scheduler.CosineAnnealingLR``
    (beyond ``t_max`` the cosine rises again, as there).

    Parameters
    ----------
    t_max : int
        Epochs of one half cosine, >= 1.
    eta_min : float, default 0
        The smallest learning rate, >= 0.
    """

    def __init__(self, t_max: int, eta_min: float = 0.0) -> None:
        self.t_max = check_in_interval("t_max", t_max, 1, integer=True)
        self.eta_min = check_in_interval("eta_min", eta_min, 0.0)

    def _rates(self, base_lr, epoch):
        return self.eta_min + (base_lr - self.eta_min) * (1 + np.cos(np.pi * epoch / self.t_max)) / 2
