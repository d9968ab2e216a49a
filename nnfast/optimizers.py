"""Optimizers: ``SGD``, ``Adam`` and ``AdamW``, with the update rules of ``torch.optim``
(or, with ``style="sklearn"``, those of scikit-learn's MLP solvers).

An optimizer is a small object holding its hyper-parameters and, once it
has been used, its state (a step count and moment buffers shaped like the
net's flat parameter vector). Pass one to ``Net.fit(optimizer=...)``: the
net keeps it, so later ``fit`` and ``partial_fit`` calls continue with the
same state; ``reset()`` forgets the state. An optimizer belongs to one net:
passed to a second net of the same size it would carry the first one's
state over (give each net its own). The update formulas below are
those of PyTorch's documentation; ``nnfast.reference`` implements them in
NumPy and the compiled loop identically.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from nnfast._validation import check_choice, check_in_interval

__all__ = ["SGD", "Adam", "AdamW"]

# Codes the compiled kernels read; src/nnfast/_optim.pyx holds the same.
SGD_CODE, ADAM_CODE, ADAMW_CODE = 0, 1, 2
# The update rules SGD and Adam can follow, by their code in hyperparameters().
STYLES = ("torch", "sklearn")


def check_style(style):
    """``style`` if it names an update rule: "torch" or "sklearn"."""
    return check_choice("style", style, STYLES)


class Optimizer:
    """Common part of the optimizers: hyper-parameters, state, reset.

    Attributes
    ----------
    lr : float
        The base learning rate (a schedule scales it per epoch), > 0. It
        may be changed between training calls; the state is kept.
    weight_decay : float
    step_count : int
        Updates applied since creation or the last ``reset()``. A fit
        counts them in place as it goes, so a copy or a save taken by
        another thread during a fit matches the moments it copies.
    buffers : ndarray of shape (n_moments, n_params) or None
        Moment buffers, created at the first update: SGD's momentum, or
        Adam's first and second moments; none for plain SGD.
    """

    code: int | None = None
    buffers: NDArray[np.floating[Any]] | None
    # Each subclass's hyper-parameters by name, for repr.
    _fields: Callable[[], dict[str, Any]]

    def __init__(self, lr: float, weight_decay: float) -> None:
        self.lr = check_in_interval("lr", lr, 0.0, low_open=True)
        self.weight_decay = check_in_interval("weight_decay", weight_decay, 0.0)
        self.reset()

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = check_in_interval("lr", value, 0.0, low_open=True)

    def reset(self) -> None:
        """Forget the state: the next update starts as the first one did."""
        self.step_count = 0
        self.buffers = None

    @property
    def step_count(self) -> int:
        return int(self._step_counter[0])

    @step_count.setter
    def step_count(self, value: int) -> None:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"step_count must be an int, got {value!r}")
        # As nnfast.io's bound: beyond 2**53 the float64 the bias correction
        # takes would not hold the count exactly.
        if not 0 <= value <= 2**53:
            raise ValueError(f"step_count must be in [0, 2**53], got {value!r}")
        # The array the compiled loop advances (TrainingRun.optimizer_steps).
        self._step_counter = np.array([value], dtype=np.int64)

    def __setstate__(self, state):
        # Pickles of earlier versions hold step_count and lr as plain
        # attributes, and no style (then torch's).
        step_count = state.pop("step_count", None)
        if "lr" in state:
            state["_lr"] = state.pop("lr")
        if isinstance(self, (SGD, Adam)) and not isinstance(self, AdamW):
            state.setdefault("style", "torch")
        # A step counter and buffers the fit advances in place, never the
        # read-only arrays of joblib.load(mmap_mode="r").
        if "_step_counter" in state:
            state["_step_counter"] = np.array(state["_step_counter"], dtype=np.int64).reshape(1)
        buffers = state.get("buffers")
        if isinstance(buffers, np.ndarray) and not (type(buffers) is np.ndarray and buffers.flags.writeable
                                                    and buffers.flags.owndata):
            state["buffers"] = np.array(buffers, order="C")
        self.__dict__.update(state)
        if step_count is not None:
            self.step_count = step_count

    def _fresh_copies(self, n):
        """``n`` optimizers with this one's (checked) hyper-parameters and no state, as
        ``type(self)(**self._fields())`` makes them, without checking them again."""
        settings = {name: value for name, value in self.__dict__.items() if name not in ("buffers", "_step_counter")}
        copies = []
        for _ in range(n):
            copy = object.__new__(type(self))
            copy.__dict__.update(settings)
            copy.reset()
            copies.append(copy)
        return copies

    @property
    def n_moments(self) -> int:
        """int: how many moment buffers, each shaped like the parameters, the updates keep."""
        raise NotImplementedError

    def _bind(self, n_params, dtype):
        """Create the state for a net, or check that it belongs to one like it."""
        if self.buffers is None:
            self.buffers = np.zeros((self.n_moments, n_params), dtype=dtype)
        elif self.buffers.shape != (self.n_moments, n_params) or self.buffers.dtype != dtype:
            raise ValueError(
                f"this {type(self).__name__} holds state of shape {self.buffers.shape} {self.buffers.dtype}, "
                f"but for this net it needs {(self.n_moments, n_params)} {np.dtype(dtype)}; "
                "call reset() or use a new one"
            )

    def hyperparameters(self) -> NDArray[np.float64]:
        """The hyper-parameters as the kernels read them: float64 [code, momentum,
        nesterov, weight_decay, beta1, beta2, eps, style code]."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        return f"nnfast.{type(self).__name__}({fields})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov and L2 weight decay.

    As ``torch.optim.SGD`` (no dampening), per update with gradient ``g``::

        g = g + weight_decay * p
        b = momentum * b + g              (b starts at 0; only with momentum)
        g = g + momentum * b if nesterov else b
        p = p - lr * g

    With ``style="sklearn"``, as scikit-learn's MLP solver ``"sgd"``, the
    velocity ``v`` holds the learning rate::

        g = g + weight_decay * p
        v = momentum * v - lr * g         (v starts at 0)
        p = p + (momentum * v - lr * g if nesterov else v)

    With a constant learning rate both give the same steps up to rounding;
    when the learning rate changes (a schedule, or ``lr`` set between
    fits), the sklearn style applies the new rate to new gradients only.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    momentum : float, default 0
        In [0, 1).
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0``.
    weight_decay : float, default 0
        L2 penalty added to the gradient, >= 0.
    style : {"torch", "sklearn"}, default "torch"
        The update rule, as above.
    """

    code = SGD_CODE

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0,
                 style: str = "torch") -> None:
        self.style = check_style(style)
        self.momentum = check_in_interval("momentum", momentum, 0.0, 1.0, high_open=True)
        if not isinstance(nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)
        super().__init__(lr, weight_decay)

    @property
    def n_moments(self) -> int:
        return 1 if self.momentum != 0 else 0

    def _fields(self):
        return dict(lr=self.lr, momentum=self.momentum, nesterov=self.nesterov, weight_decay=self.weight_decay,
                    style=self.style)

    def hyperparameters(self) -> NDArray[np.float64]:
        return np.array([self.code, self.momentum, self.nesterov, self.weight_decay, 0, 0, 0,
                         STYLES.index(self.style)], dtype=np.float64)


class Adam(Optimizer):
    """Adam, with L2 weight decay added to the gradient (as ``torch.optim.Adam``).

    Per update ``t = 1, 2, ...`` with gradient ``g``::

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - (lr / (1 - beta1**t)) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    With ``style="sklearn"``, as scikit-learn's MLP solver ``"adam"``, the
    bias correction moves into the step size and ``eps`` is added to the
    uncorrected ``sqrt(v)``::

        p = p - (lr * sqrt(1 - beta2**t) / (1 - beta1**t)) * m / (sqrt(v) + eps)

    Parameters
    ----------
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Each in [0, 1).
    eps : float, default 1e-8
        > 0.
    weight_decay : float, default 0
    style : {"torch", "sklearn"}, default "torch"
        The update rule, as above.
    """

    code = ADAM_CODE

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, style: str = "torch") -> None:
        self.style = check_style(style)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair of numbers in [0, 1), got {betas!r}")
        beta1, beta2 = (check_in_interval(f"betas[{i}]", b, 0.0, 1.0, high_open=True) for i, b in enumerate(betas))
        self.betas = (beta1, beta2)
        self.eps = check_in_interval("eps", eps, 0.0, low_open=True)
        super().__init__(lr, weight_decay)

    n_moments = 2

    def _fields(self):
        return dict(lr=self.lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay,
                    style=self.style)

    def hyperparameters(self) -> NDArray[np.float64]:
        beta1, beta2 = self.betas
        return np.array([self.code, 0, 0, self.weight_decay, beta1, beta2, self.eps, STYLES.index(self.style)],
                        dtype=np.float64)


class AdamW(Adam):
    """Adam with decoupled weight decay (as ``torch.optim.AdamW``).

    As ``Adam`` without the L2 term, after first shrinking the parameters::

        p = p * (1 - lr * weight_decay)

    Parameters
    ----------
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 1e-2
    """

    code = ADAMW_CODE

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(lr, betas, eps, weight_decay)

    def _fields(self):
        fields = super()._fields()
        del fields["style"]  # always torch's
        return fields
