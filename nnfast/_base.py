"""The interface shared by ``nnfast.Net`` and ``nnfast.reference.Net``.

``BaseNet`` owns everything that is not arithmetic: argument checks, the
flat parameter buffer and its per-layer views, initialization, the
optimizer, the bookkeeping of a training run (validation split, schedule,
early stopping, progress, callbacks) and turning status codes into
exceptions. Subclasses supply the arithmetic through hooks that receive
already-validated arrays: ``_predict``, ``_forward``, ``_loss``,
``_gradients``, ``_train_step`` and ``_run_epochs``.

Threads: the hooks take the net's lock themselves; what ``BaseNet`` does
to the parameters outside them (reading or assigning ``weights``, the
ownership of a whole ``fit``, restoring the best epoch) goes through
``_reading``, ``_writing`` and ``_owning``. The default is one reentrant
lock for everything, which serializes all calls; ``nnfast.Net`` replaces
it with a reader-writer lock (nnfast/_lock.pyx) under which readers run
in parallel.
"""
from __future__ import annotations

import copy
import math
import threading
from fractions import Fraction
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from nnfast import _memory, _progress, _random
from nnfast._history import STEP_OK, DivergenceError, History, TrainingInterrupted
from nnfast._layout import ParameterLayout, initialize
from nnfast._training import FitPlan, TrainingRun
from nnfast._validation import (
    ACTIVATIONS,
    BINARY_LOSSES,
    CLASSIFICATION_LOSSES,
    INITS,
    LOSSES,
    check_bool,
    check_choice,
    check_dtype,
    check_features,
    check_int,
    check_layers,
    check_learning_rate,
    check_number,
    check_order,
    check_parameter_array,
    check_parameter_list,
    check_per_layer,
    check_sample_weight,
    check_seed,
    check_targets,
)
from nnfast.optimizers import SGD, Optimizer
from nnfast.schedules import Constant, Schedule

if TYPE_CHECKING:
    import os
    import pathlib

    from nnfast._typing import FloatArray, PathLike


def _check_some_weight(weights, where):
    """Refuse sample weights (None: none given) that are all zero ``where``."""
    if weights is not None and not weights.any():
        raise ValueError(f"sample_weight must not be all zero{where}: there would be nothing to train on")


class BaseNet:
    """A fully connected network (shared interface; use a subclass).

    Parameters
    ----------
    layers : sequence of int
        Layer sizes, input first and output last, e.g. ``[3, 3, 1]``. At
        least two entries, all positive.
    activation : str or list of str, default "relu"
        Activation of the hidden layers: one name for all, or one per hidden
        layer. ``"relu"`` (its gradient passes where the input is >= 0 and
        is zero where it is < 0, as in the seed's ``grad_h[h < 0] = 0``),
        ``"leaky_relu"`` (slope ``negative_slope`` where the input is < 0),
        ``"tanh"``, ``"sigmoid"`` or ``"identity"``. The output layer is
        linear; the cross-entropy losses apply their softmax or sigmoid.
    negative_slope : float, default 0.01
        The slope of ``"leaky_relu"`` for negative inputs, >= 0.
    bias : bool or list of bool, default True
        Whether the layers add a bias vector (``x @ W + b``): one flag for
        all, or one per layer.
    loss : str, default "sse"
        ``"sse"``: sum of squared errors over all outputs and samples,
        ``((y_pred - y) ** 2).sum()``. ``"mse"``: the same divided by the
        number of elements. ``"cross_entropy"``: softmax over the outputs
        and the negative log-likelihood of the targets (class labels
        ``(n,)`` or class probabilities ``(n, k)``), averaged over samples,
        as ``torch.nn.CrossEntropyLoss``. ``"binary_cross_entropy"``:
        a sigmoid per output and the binary cross-entropy against targets
        in [0, 1], averaged over all elements, as
        ``torch.nn.BCEWithLogitsLoss``. ``"binary_log_loss"``: the same
        summed over the outputs and averaged over samples (scikit-learn's
        loss for binary and multilabel ``MLPClassifier``). All three are
        computed stably from the outputs (logits). ``"squared_error"``:
        half the squared error summed over the outputs, averaged over
        samples; its gradient is ``(y_pred - y) / n_samples`` (the gradient
        of scikit-learn's ``MLPRegressor``, whose reported loss divides by
        the number of outputs too). ``"poisson"``: the outputs are the logs of
        predicted means (``np.exp(net.predict(x))`` is the mean), and the
        loss is half the Poisson deviance against counts or rates ``y >=
        0``, ``exp(z) - y z + y log y - y`` summed over the outputs and
        averaged over samples (scikit-learn's ``MLPRegressor(loss="poisson")``
        loss); its gradient is ``(exp(z) - y) / n_samples``.

        Every loss takes per-sample weights (``sample_weight`` of
        ``loss``, ``gradients``, ``train_step`` and ``fit``): each sample's
        term is multiplied by its weight, and the averaging losses divide by
        the sum of the weights of the batch instead of its row count (for
        ``"mse"`` and ``"binary_cross_entropy"``, times the number of
        outputs). A batch whose weights are all zero has loss 0 and
        gradient 0. Weights of one give exactly the unweighted results.
    l2 : float, default 0
        L2 penalty on the weights (not the biases), scikit-learn's
        ``alpha``: every batch's loss gains ``0.5 * l2 * sum(W**2) / n``
        and so every weight gradient ``l2 * W / n``, where ``n`` is the
        batch's row count, or the sum of its sample weights (1 if they are
        all zero). ``loss``, ``gradients`` and the training losses include
        it; the validation losses of ``fit`` do not. >= 0.
    init : str, default "auto"
        Weight initialization: ``"he_normal"``, ``"he_uniform"``,
        ``"glorot_normal"``, ``"glorot_uniform"``, ``"normal"`` (standard
        deviation ``init_std``), or ``"auto"``: He normal for layers
        followed by a (leaky) ReLU, Glorot normal for the others. Biases
        start at zero.
    init_std : float, default 0.01
        Standard deviation of ``init="normal"``.
    dtype : {np.float64, np.float32} or their names, default np.float64
        The precision of the parameters and of all arithmetic.
    seed : int or None, default None
        Seed of the initialization; ``None`` draws fresh entropy.
    """

    def __init__(self, layers: Sequence[int], *, activation: str | Sequence[str] = "relu",
                 negative_slope: float = 0.01, bias: bool | Sequence[bool] = True, loss: str = "sse",
                 l2: float = 0.0, init: str = "auto", init_std: float = 0.01, dtype: DTypeLike = np.float64,
                 seed: int | None = None) -> None:
        self._layers = check_layers(layers)
        n_layers = len(self._layers) - 1
        self._activations = check_per_layer(
            "activation", activation, n_layers - 1, lambda name, value: check_choice(name, value, ACTIVATIONS)
        )
        self._negative_slope = check_number("negative_slope", negative_slope, 0.0)
        self._bias = check_per_layer("bias", bias, n_layers, check_bool)
        self._loss_name = check_choice("loss", loss, LOSSES)
        self._l2 = check_number("l2", l2, 0.0)
        if loss == "cross_entropy" and self._layers[-1] < 2:
            raise ValueError(f"loss='cross_entropy' needs at least 2 outputs, got layers {list(self._layers)}")
        self._init = check_choice("init", init, INITS)
        self._init_std = check_number("init_std", init_std, 0.0)
        self._dtype = check_dtype(dtype)
        codes = [ACTIVATIONS.index(name) for name in self._activations] + [ACTIVATIONS.index("identity")]
        self._layout = ParameterLayout(self._layers, self._bias, codes)
        n_params = self._layout.n_params
        # The largest weight matrix is drawn in float64 before it is copied in.
        largest = max(fan_in * fan_out for fan_in, fan_out in self._layout.weight_shapes)
        _memory.check_allocation(n_params * self._dtype.itemsize + largest * 8,
                                 lambda: f"a net of layers {list(self._layers)} ({n_params:,} {self._dtype} parameters)")
        self._params = np.empty(n_params, dtype=self._dtype)
        initialize(self._layout, self._params, check_seed(seed), self._init, self._init_std,
                   self._activations + ["identity"])
        self.optimizer: Optimizer | None = None
        self._make_runtime()

    # -- what is rebuilt rather than copied: locks, compiled bindings ------

    # The attributes _make_runtime creates, left out of pickles and copies.
    _RUNTIME = ("_lock",)

    def _make_runtime(self):
        """Create the net's lock (and, in subclasses, whatever else belongs to this
        process rather than to the net's state)."""
        self._lock = threading.RLock()

    def _reading(self):
        """A context in which the parameters do not change."""
        return self._lock

    def _writing(self):
        """A context in which nothing else reads or changes the parameters."""
        return self._lock

    def _owning(self):
        """A context in which no other thread trains the net or assigns its parameters."""
        return self._lock

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in self._RUNTIME:
            del state[key]
        # A snapshot, so that a copy taken while another thread trains is whole.
        with self._reading():
            state["_params"] = self._params.copy()
            state["optimizer"] = copy.deepcopy(self.optimizer)
        return state

    def __setstate__(self, state):
        params = state["_params"]
        # joblib.load(mmap_mode="r") hands back read-only (memory-mapped)
        # arrays; the net trains its parameters in place, so it owns a copy.
        if not (type(params) is np.ndarray and params.flags.writeable and params.flags.c_contiguous
                and params.flags.aligned and params.flags.owndata):
            state["_params"] = np.array(params, order="C")
        self.__dict__.update(state)
        self._make_runtime()

    # -- description -------------------------------------------------------

    @property
    def layers(self) -> tuple[int, ...]:
        """tuple of int: the layer sizes, input first."""
        return self._layers

    @property
    def dtype(self) -> np.dtype[np.floating]:
        """numpy.dtype: float32 or float64, the precision of everything inside the net."""
        return self._dtype

    @property
    def n_params(self) -> int:
        """int: the number of trainable parameters (weights and biases)."""
        return self._layout.n_params

    @property
    def activation(self) -> list[str]:
        """list of str: each hidden layer's activation."""
        return list(self._activations)

    @property
    def negative_slope(self) -> float:
        """float: the slope of ``"leaky_relu"`` for negative inputs."""
        return self._negative_slope

    @property
    def bias(self) -> list[bool]:
        """list of bool: whether each layer has a bias vector."""
        return list(self._bias)

    @property
    def l2(self) -> float:
        """float: the L2 penalty on the weights (see the class docstring)."""
        return self._l2

    @property
    def loss_name(self) -> str:
        """str: the training loss."""
        return self._loss_name

    def __repr__(self) -> str:
        activation = self._activations[0] if len(set(self._activations)) == 1 else self._activations
        bias = self._bias[0] if len(set(self._bias)) == 1 else self._bias
        return (
            f"{type(self).__module__}.{type(self).__name__}({list(self._layers)}, "
            f"activation={activation!r}, bias={bias}, loss={self._loss_name!r}, "
            + (f"l2={self._l2!r}, " if self._l2 else "")
            + f"dtype={self._dtype.name!r})"
        )

    # -- parameters --------------------------------------------------------

    @property
    def parameters(self) -> FloatArray:
        """ndarray, shape (n_params,): all parameters in one vector, a copy.

        Layer after layer, each layer's weights (``(fan_in, fan_out)``, in C
        order) then its bias: the layout of ``loss_and_gradients``'s
        gradient, for optimizers that work on one vector (SciPy's). Assign a
        vector of ``n_params`` finite reals to set them all.
        """
        with self._reading():
            return self._params.copy()

    @parameters.setter
    def parameters(self, values: ArrayLike) -> None:
        vector = check_parameter_array("parameters", values, (self.n_params,), self._dtype)
        with self._writing():
            self._params[...] = vector

    @property
    def weights(self) -> list[FloatArray]:
        """list of ndarray: each layer's weights, shaped ``(fan_in, fan_out)``.

        Reading returns copies: changing them does not change the net, and
        they do not change as the net trains. Assigning a list of arrays
        (any real dtype, any memory layout) checks the count, the shapes and
        finiteness, then copies the values in.
        """
        with self._reading():
            return [view.copy() for view in self._layout.weight_views(self._params)]

    @weights.setter
    def weights(self, values: Sequence[ArrayLike]) -> None:
        arrays = check_parameter_list("weights", values, self._layout.weight_shapes, self._dtype)
        with self._writing():
            for view, array in zip(self._layout.weight_views(self._params), arrays):
                view[...] = array

    @property
    def biases(self) -> list[FloatArray]:
        """list of ndarray: the bias vector, shaped ``(fan_out,)``, of each layer that has one.

        Empty when no layer has a bias. Reading returns copies; assigning
        checks and copies in, as for ``weights``.
        """
        with self._reading():
            return [view.copy() for view in self._layout.bias_views(self._params)]

    @biases.setter
    def biases(self, values: Sequence[ArrayLike]) -> None:
        arrays = check_parameter_list("biases", values, self._layout.bias_shapes, self._dtype)
        with self._writing():
            for view, array in zip(self._layout.bias_views(self._params), arrays):
                view[...] = array

    def save(self, path: PathLike) -> pathlib.Path:
        """Write the net (architecture, parameters, optimizer and its state) to one ``.npz`` file.

        Atomic: the file at ``path`` is the old one or the new one, whatever
        happens meanwhile. ``nnfast.load(path)`` reads it back; see ``nnfast.io``.

        Returns
        -------
        pathlib.Path
            The path written (exactly ``path``: no suffix is added).
        """
        from nnfast import io  # here, not at the top: nnfast.io imports the net classes

        return io.save(self, path)

    def save_onnx(self, path: str | os.PathLike[str], *, output: str = "raw",
                  opset: int | None = None) -> pathlib.Path:
        """Write the net as an ONNX model (``nnfast.onnx.to_onnx``) to ``path``, atomically, as ``save`` does.

        Needs the onnx package (``pip install nnfast[onnx]``).

        Returns
        -------
        pathlib.Path
            The path written (exactly ``path``: no suffix is added).
        """
        from nnfast import onnx  # the optional dependency, imported when asked for

        return onnx.save_onnx(self, path, output=output, opset=opset)

    # -- evaluation --------------------------------------------------------

    def _check_x(self, x: ArrayLike, name: str = "x") -> FloatArray:
        return check_features(x, self._layers[0], self._dtype, name)

    def _check_data(self, x: ArrayLike, y: ArrayLike,
                    names: tuple[str, str] = ("x", "y")) -> tuple[FloatArray, FloatArray]:
        x = self._check_x(x, names[0])
        y = check_targets(y, x.shape[0], self._layers[-1], self._dtype, self._loss_name, names[1], names[0])
        return x, y

    def _check_weights(self, sample_weight, x):
        """``sample_weight`` checked against the validated ``x`` (None stays None)."""
        if sample_weight is None:
            return None
        return check_sample_weight(sample_weight, x.shape[0], self._dtype)

    def predict(self, x: ArrayLike) -> FloatArray:
        """Return the network's output for ``x``: the raw outputs (logits, for
        the cross-entropy losses; see ``predict_proba``).

        Parameters
        ----------
        x : array_like, shape (n_samples, layers[0])

        Returns
        -------
        ndarray, shape (n_samples, layers[-1]), of the net's dtype
        """
        return self._predict(self._check_x(x))

    def predict_proba(self, x: ArrayLike) -> FloatArray:
        """Return class probabilities: the softmax of the outputs for
        ``"cross_entropy"``, the sigmoid of each output for the binary losses.

        Returns
        -------
        ndarray, shape (n_samples, layers[-1])
        """
        logits = self.predict(x)
        if self._loss_name == "cross_entropy":
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            return shifted / shifted.sum(axis=1, keepdims=True)
        if self._loss_name in BINARY_LOSSES:
            # The sigmoid, without overflow and to full relative precision for z << 0.
            decay = np.exp(-np.abs(logits))
            return np.where(logits >= 0, 1 / (1 + decay), decay / (1 + decay))
        raise ValueError(f"predict_proba needs a cross-entropy loss, but the net's loss is {self._loss_name!r}")

    def predict_classes(self, x: ArrayLike) -> NDArray[np.intp]:
        """Return predicted classes: the most probable class ``(n,)`` for
        ``"cross_entropy"``; for the binary losses, 1 where an
        output's probability is >= 0.5, else 0, shaped ``(n,)`` for one
        output and ``(n, k)`` for several.
        """
        logits = self.predict(x)
        if self._loss_name == "cross_entropy":
            return logits.argmax(axis=1)
        if self._loss_name in BINARY_LOSSES:
            classes = (logits >= 0).astype(np.intp)
            return classes[:, 0] if classes.shape[1] == 1 else classes
        raise ValueError(f"predict_classes needs a cross-entropy loss, but the net's loss is {self._loss_name!r}")

    def forward(self, x: ArrayLike) -> tuple[FloatArray, list[FloatArray]]:
        """Run the forward pass and return the output and the hidden activations.

        Parameters
        ----------
        x : array_like, shape (n_samples, layers[0])

        Returns
        -------
        output : ndarray, shape (n_samples, layers[-1])
        hidden : list of ndarray
            The activations of each hidden layer, shaped
            ``(n_samples, layers[i])`` for ``i = 1 .. len(layers) - 2``.
        """
        return self._forward(self._check_x(x))

    def loss(self, x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Return the loss of the net on ``(x, y)`` as a float.

        Parameters
        ----------
        x : array_like, shape (n_samples, layers[0])
        y : array_like
            Targets as the loss reads them (see the class docstring).
        sample_weight : array_like, shape (n_samples,), optional
            Finite weights >= 0, one per sample (see the class docstring).
        """
        x, y = self._check_data(x, y)
        return self._loss(x, y, self._check_weights(sample_weight, x))

    def gradients(self, x: ArrayLike, y: ArrayLike,
                  sample_weight: ArrayLike | None = None) -> tuple[list[FloatArray], list[FloatArray]]:
        """Return the gradient of the loss on ``(x, y)`` with respect to the parameters.

        ``sample_weight`` is as for ``loss``.

        Returns
        -------
        weight_grads : list of ndarray
            Shaped like ``weights``.
        bias_grads : list of ndarray
            Shaped like ``biases``.
        """
        x, y = self._check_data(x, y)
        flat = self._gradients(x, y, self._check_weights(sample_weight, x))[1]
        return self._layout.weight_views(flat), self._layout.bias_views(flat)

    def loss_and_gradients(self, x: ArrayLike, y: ArrayLike,
                           sample_weight: ArrayLike | None = None) -> tuple[float, FloatArray]:
        """Return the loss on ``(x, y)`` and its gradient as one vector, from one pass.

        What ``loss`` and ``gradients`` return, computed together, with the
        gradient laid out as ``parameters``: the pair that SciPy's
        minimizers take (``jac=True``).

        Returns
        -------
        loss : float
        gradient : ndarray, shape (n_params,)
        """
        x, y = self._check_data(x, y)
        return self._gradients(x, y, self._check_weights(sample_weight, x))

    # -- training ----------------------------------------------------------

    def train_step(self, x: ArrayLike, y: ArrayLike, lr: float, sample_weight: ArrayLike | None = None) -> float:
        """Take one plain SGD step on the whole of ``(x, y)`` and return the loss before it.

        ``params -= lr * gradient``; the net's optimizer is neither used nor
        changed. If the loss or the updated parameters are not finite, the
        update is not applied and ``DivergenceError`` is raised.

        Parameters
        ----------
        x : array_like, shape (n_samples, layers[0])
        y : array_like
            Targets as the loss reads them.
        lr : float
            The learning rate, positive and finite.
        sample_weight : array_like, shape (n_samples,), optional
            As for ``loss``.

        Returns
        -------
        float
        """
        x, y = self._check_data(x, y)
        weights = self._check_weights(sample_weight, x)
        lr = check_learning_rate(lr)
        loss, status = self._train_step(x, y, lr, weights)
        if status != STEP_OK:
            raise DivergenceError(status, 0, lr, History([loss], 0, 1))
        return loss

    def _choose_optimizer(self, lr, optimizer):
        """The optimizer a training call uses, which the net then keeps."""
        if lr is not None and optimizer is not None:
            raise ValueError("give lr (plain SGD) or optimizer, not both")
        if lr is not None:
            return SGD(check_learning_rate(lr))
        if optimizer is None:
            if self.optimizer is None:
                raise ValueError("training needs a learning rate (lr=...) or an optimizer (optimizer=...)")
            return self.optimizer
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer must be an nnfast.SGD, nnfast.Adam or nnfast.AdamW, got {optimizer!r}")
        return optimizer

    def reset_optimizer(self) -> None:
        """Forget the optimizer's state (momentum, Adam moments, step count)."""
        with self._owning():
            if self.optimizer is not None:
                self.optimizer.reset()

    def _validation_split(
        self, x: FloatArray, y: FloatArray, weights: FloatArray | None,
        validation_data: tuple[ArrayLike, ArrayLike] | None, validation_fraction: float | None, seed: int | None,
    ) -> tuple[FloatArray, FloatArray, FloatArray | None, FloatArray | None, FloatArray | None]:
        """Return ``(x, y, weights, x_val, y_val)``: the training part (``weights`` may be
        None) and the validation data (None without validation)."""
        if validation_data is not None and validation_fraction is not None:
            raise ValueError("give validation_data or validation_fraction, not both")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError(f"validation_data must be a pair (x_val, y_val), got {type(validation_data).__name__}")
            x_val, y_val = self._check_data(*validation_data, names=("validation_data x", "validation_data y"))
            return x, y, weights, x_val, y_val
        if validation_fraction is None:
            return x, y, weights, None, None
        fraction = check_number("validation_fraction", validation_fraction, 0.0, 1.0)
        # The fraction as written (repr round-trips it): 0.28 * 25 is 7, though in
        # floats it is 7.000000000000001, whose ceiling would be 8.
        n_val = math.ceil(Fraction(repr(fraction)) * x.shape[0])
        if not 0 < n_val < x.shape[0]:
            raise ValueError(
                f"validation_fraction={validation_fraction!r} of {x.shape[0]} samples leaves "
                f"{x.shape[0] - n_val} for training and {n_val} for validation; both need at least one"
            )
        order = np.random.default_rng(seed).permutation(x.shape[0])
        val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
        return x[train], y[train], None if weights is None else weights[train], x[val], y[val]

    def fit(self, x: ArrayLike, y: ArrayLike, *, epochs: int, lr: float | None = None,
            optimizer: Optimizer | None = None, schedule: Schedule | None = None, batch_size: int | None = None,
            shuffle: bool = True, seed: int | None = None,
            validation_data: tuple[ArrayLike, ArrayLike] | None = None, validation_fraction: float | None = None,
            early_stopping: bool = False, patience: int = 10, min_delta: float = 0.0, verbose: bool | int = False,
            callback: Callable[[int, History], object] | None = None, sample_weight: ArrayLike | None = None,
            order: ArrayLike | None = None) -> History:
        """Train the net and return the record of every step and epoch.

        Each epoch splits the samples into consecutive batches of
        ``batch_size`` (the last one may be smaller and is used too) and
        takes one optimizer step per batch. With ``shuffle``, the sample
        order is reshuffled before every epoch; with a single batch per
        epoch the order is left alone, since it cannot change the step.
        Without ``verbose`` and ``callback`` the whole fit is one compiled
        call; with a callback, Python runs after every epoch, and with
        ``verbose`` after chunks of epochs about 0.05 s long.

        Parameters
        ----------
        x : array_like, shape (n_samples, layers[0])
        y : array_like
            Targets as the loss reads them (see the class docstring).
        epochs : int
            Passes over the data, >= 0.
        lr : float, optional
            Shorthand for ``optimizer=nnfast.SGD(lr)``.
        optimizer : nnfast.SGD, nnfast.Adam or nnfast.AdamW, optional
            The net keeps it (``net.optimizer``) with its state, so later
            calls without ``lr``/``optimizer`` continue with it.
        schedule : nnfast.schedules.Schedule, optional
            Per-epoch learning rates from the optimizer's ``lr``, epochs
            counted from 0 in each call. Default: constant.
        batch_size : int or None, default None
            Samples per step; ``None`` (or anything >= n_samples) means
            the full batch.
        shuffle : bool, default True
            Reshuffle the order every epoch.
        seed : int or None, default None
            Seed of the shuffle and of the ``validation_fraction`` split;
            ``None`` draws fresh entropy.
        validation_data : (x_val, y_val), optional
            Data to compute ``val_loss`` (and ``val_accuracy``) on after
            every epoch.
        validation_fraction : float, optional
            Hold out this fraction of the samples (a seeded random split)
            as validation data instead.
        early_stopping : bool, default False
            Stop when the monitored loss (``val_loss`` with validation
            data, else ``epoch_loss``) has not fallen below its best minus
            ``min_delta`` for ``patience`` epochs, and leave the net with
            the parameters of the best epoch.
        patience : int, default 10
            >= 1.
        min_delta : float, default 0
            >= 0.
        verbose : bool or int, default False
            Show the progress on ``sys.stdout``: the epoch count, the epoch's
            loss, ``val_loss`` and ``val_accuracy`` where recorded, the time
            elapsed and an estimate of the time left. ``True`` (or 1): one
            live line rewritten after each epoch on a terminal or in Jupyter,
            a tqdm bar when tqdm is installed (``pip install nnfast[progress]``);
            on other streams (a file, a pipe) one line per epoch. ``2``: one
            line per epoch, always. ``False`` (or 0): nothing.
        callback : callable, optional
            Called as ``callback(epoch, history)`` after every epoch; a
            true return value stops training.
        sample_weight : array_like, shape (n_samples,), optional
            Finite weights >= 0, one per sample of ``x``: each batch's loss
            weighs its samples by them (see the class docstring); they must
            not all be zero. ``validation_fraction`` splits them with the
            samples; validation losses are unweighted. The epoch loss is the
            mean of the batch losses weighted by their row counts, as
            without weights.
        order : array_like of int, shape (n_samples,) or (epochs, n_samples), optional
            A permutation of ``range(n_samples)``: every epoch visits the
            samples in this order, instead of shuffling (``shuffle`` and
            ``seed`` then do not apply to batches); or one permutation per
            epoch, row ``i`` for epoch ``i``. Not with
            ``validation_fraction``, whose split would leave ``order``
            naming rows that are gone.

        Returns
        -------
        History

        Raises
        ------
        DivergenceError
            When a loss or the updated parameters become NaN or infinite.
            Training stops there, the failing step is not applied, and the
            exception's ``history`` holds the losses so far.
        TrainingInterrupted
            On Ctrl-C (SIGINT, in the main thread), within about 0.02 s or
            one step. The net keeps the parameters after the last completed
            step (not the best epoch's), the optimizer's state matches them,
            and the exception's ``history`` holds the losses so far. It is a
            ``KeyboardInterrupt``.
        MemoryError
            Before training, if the fit's buffers would not fit in memory.

        Notes
        -----
        Training calls (``fit``, ``partial_fit``, ``train_step``) and
        assignments to ``weights``/``biases`` on one net run one at a time:
        one from another thread waits until this fit has returned. Calls
        that only read the net (``predict``, ``loss``, ...) from other
        threads run meanwhile and see the parameters between two steps.
        """
        plan = self._plan_fit(x, y, epochs=epochs, lr=lr, optimizer=optimizer, schedule=schedule,
                              batch_size=batch_size, shuffle=shuffle, seed=seed, validation_data=validation_data,
                              validation_fraction=validation_fraction, early_stopping=early_stopping,
                              patience=patience, min_delta=min_delta, sample_weight=sample_weight, order=order)
        verbose = _progress.check_verbose(verbose)
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        with self._owning():
            return self._train(self._start_run(plan), plan.x, plan.y, plan.x_val, plan.y_val, verbose, callback)

    def _plan_fit(self, x, y, *, epochs, lr=None, optimizer=None, schedule=None, batch_size=None, shuffle=True,
                  seed=None, validation_data=None, validation_fraction=None, early_stopping=False, patience=10,
                  min_delta=0.0, sample_weight=None, order=None):
        """Check ``fit``'s arguments (but ``verbose`` and ``callback``) and return the ``FitPlan``
        they make; nothing of the net changes."""
        x, y = self._check_data(x, y)
        weights = self._check_weights(sample_weight, x)
        epochs = check_int("epochs", epochs, 0)
        optimizer = self._choose_optimizer(lr, optimizer)
        if schedule is None:
            schedule = Constant()
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be an nnfast.schedules schedule, got {schedule!r}")
        seed = check_seed(seed)
        if order is not None and validation_fraction is not None:
            raise ValueError("give order or validation_fraction, not both: order names rows of x, "
                             "and the split takes some away (pass validation_data instead)")
        x, y, weights, x_val, y_val = self._validation_split(x, y, weights, validation_data,
                                                             validation_fraction, seed)
        _check_some_weight(weights, " on the training part of the validation_fraction split"
                           if x_val is not None and validation_data is None else "")
        early_stopping = check_bool("early_stopping", early_stopping)
        patience = check_int("patience", patience, 1)
        min_delta = check_number("min_delta", min_delta, 0.0)
        n_samples = x.shape[0]
        if batch_size is None:
            batch_size = n_samples
        batch_size = min(check_int("batch_size", batch_size, 1), n_samples)
        shuffle = check_bool("shuffle", shuffle) and batch_size < n_samples
        if order is not None:
            order = check_order(order, n_samples, epochs)
            shuffle = False
        state = _random.shuffle_state(seed) if shuffle else 0
        self._check_fit_memory(n_samples, epochs, batch_size, optimizer, x, y, x_val, early_stopping)
        return FitPlan(x, y, x_val, y_val, weights, epochs, optimizer, schedule, batch_size, shuffle, state,
                       early_stopping, patience, min_delta, order)

    def _start_run(self, plan):
        """(Owner only.) Give the net the plan's optimizer and return the plan's ``TrainingRun``."""
        optimizer = plan.optimizer
        optimizer._bind(self.n_params, self._dtype)
        self.optimizer = optimizer
        return TrainingRun(
            plan.x.shape[0], self.n_params, self._dtype, plan.epochs, plan.batch_size, plan.shuffle, plan.state,
            optimizer, plan.schedule.learning_rates(optimizer.lr, plan.epochs), plan.x_val is not None,
            plan.early_stopping, plan.patience, plan.min_delta, plan.weights, plan.order,
        )

    def _check_fit_memory(self, n_samples, epochs, batch_size, optimizer, x, y, x_val, early_stopping):
        """Raise MemoryError, naming the size, if a fit's buffers cannot fit in memory."""
        steps = epochs * -(-n_samples // batch_size)
        records = 8 * (steps + 4 * epochs + n_samples)  # losses, epoch records, sample order
        param_bytes = self.n_params * self._dtype.itemsize
        state = optimizer.n_moments * param_bytes if optimizer.buffers is None else 0
        batches = batch_size * (x.shape[1] + y.shape[1] + 1) * self._dtype.itemsize  # rows and weights
        rows = max(batch_size, 0 if x_val is None else x_val.shape[0])
        total = (records + state + batches + self._workspace_bytes(rows)
                 + (param_bytes if early_stopping else 0))
        _memory.check_allocation(total, lambda: f"this fit ({epochs:,} epochs of {steps // max(epochs, 1):,} "
                                                f"steps, batches of {batch_size:,} rows)")

    def _workspace_bytes(self, rows):
        """Bytes of scratch the arithmetic needs for ``rows`` rows (0 where it is not known)."""
        return 0

    def partial_fit(self, x: ArrayLike, y: ArrayLike, *, lr: float | None = None, optimizer: Optimizer | None = None,
                    batch_size: int | None = None, shuffle: bool = True, seed: int | None = None,
                    sample_weight: ArrayLike | None = None) -> History:
        """Train one more epoch on ``(x, y)``, keeping the optimizer's state (online learning).

        The same as ``fit(x, y, epochs=1, ...)``: with neither ``lr`` nor
        ``optimizer`` it continues with the net's optimizer.

        Returns
        -------
        History
        """
        return self.fit(x, y, epochs=1, lr=lr, optimizer=optimizer, batch_size=batch_size,
                        shuffle=shuffle, seed=seed, sample_weight=sample_weight)

    def _train(self, run, x, y, x_val, y_val, verbose, callback):
        """Run the epochs, Python-side bookkeeping between chunks of them."""
        classification = self._loss_name in CLASSIFICATION_LOSSES
        progress = _progress.start(verbose, run.epochs, run.has_validation, classification)
        try:
            while run.epoch < run.epochs and not run.stopped:
                # A callback sees every epoch; progress asks for chunks that keep its line live;
                # without either, one chunk: the whole fit in one call.
                if callback is not None:
                    chunk = 1
                elif progress is not None:
                    chunk = progress.epochs_to_run(run)
                else:
                    chunk = run.epochs
                self._run_epochs(x, y, x_val, y_val, run, min(run.epoch + chunk, run.epochs))
                if progress is not None:
                    progress.update(run)
                if run.cancelled:
                    raise KeyboardInterrupt("training was cancelled from another thread")
                if run.status != STEP_OK:
                    raise DivergenceError(run.status, run.steps - 1, run.learning_rates[run.epoch],
                                          run.history(classification))
                if callback is not None and callback(run.epoch - 1, run.history(classification)):
                    run.stopped = True
        except KeyboardInterrupt as error:
            raise TrainingInterrupted(run.steps, run.history(classification), str(error)) from error
        finally:
            # The line ends (newline, bar closed) however the fit ends.
            if progress is not None:
                progress.close(run)
        if run.early_stopping and run.progress[2] >= 0:
            with self._writing():
                self._params[...] = run.best_params
        return run.history(classification)

    # -- hooks -------------------------------------------------------------

    def _predict(self, x):
        raise NotImplementedError

    def _forward(self, x):
        raise NotImplementedError

    # ``weights`` below: validated sample weights of the net's dtype, or None.

    def _loss(self, x, y, weights):
        raise NotImplementedError

    def _gradients(self, x, y, weights):
        """Return ``(loss, flat gradient)``."""
        raise NotImplementedError

    def _train_step(self, x, y, lr, weights):
        raise NotImplementedError

    def _run_epochs(self, x, y, x_val, y_val, run, stop):
        """Run epochs ``run.epoch .. stop - 1`` of ``run``, updating it and the parameters.

        Stops early when ``run`` says early stopping fires, or a step fails
        (``run.status``).
        """
        raise NotImplementedError
