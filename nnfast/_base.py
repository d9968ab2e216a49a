"""The interface shared by ``nnfast.Net`` and ``nnfast.reference.Net``.

``BaseNet`` owns everything that is not arithmetic: argument checks, the
flat parameter buffer and its per-layer views, initialization, and turning
kernel status codes into exceptions. Subclasses supply the arithmetic
through six hooks (``_predict``, ``_forward``, ``_loss``, ``_gradients``,
``_train_step``, ``_fit``) that receive already-validated arrays.
"""
import numpy as np

from nnfast import _random
from nnfast._history import STEP_OK, DivergenceError, History
from nnfast._layout import ParameterLayout, initialize
from nnfast._validation import (
    ACTIVATIONS,
    LOSSES,
    check_bool,
    check_choice,
    check_dtype,
    check_features,
    check_int,
    check_layers,
    check_learning_rate,
    check_parameter_list,
    check_seed,
    check_targets,
)


class BaseNet:
    """A fully connected ReLU network (shared interface; use a subclass).

    Parameters
    ----------
    layers : sequence of int
        Layer sizes, input first and output last, e.g. ``[3, 3, 1]``. At
        least two entries, all positive.
    activation : {"relu"}, default "relu"
        Activation of every hidden layer. The output layer is linear.
    bias : bool, default True
        Whether every layer adds a bias vector (``x @ W + b``).
    loss : {"sse", "mse"}, default "sse"
        ``"sse"``: sum of squared errors over all outputs and samples,
        ``((y_pred - y) ** 2).sum()``. ``"mse"``: the same divided by the
        number of elements, ``((y_pred - y) ** 2).mean()``.
    dtype : {np.float64, np.float32} or their names, default np.float64
        The precision of the parameters and of all arithmetic.
    seed : int or None, default None
        Seed of the initialization: hidden-layer weights are He-normal
        ``N(0, 2 / fan_in)``, output weights ``N(0, 1 / fan_in)``, biases
        zero. ``None`` draws fresh entropy.
    """

    def __init__(self, layers, *, activation="relu", bias=True, loss="sse", dtype=np.float64, seed=None):
        self._layers = check_layers(layers)
        self._activation = check_choice("activation", activation, ACTIVATIONS)
        self._bias = check_bool("bias", bias)
        self._loss_name = check_choice("loss", loss, LOSSES)
        self._dtype = check_dtype(dtype)
        self._layout = ParameterLayout(self._layers, self._bias)
        self._params = np.empty(self._layout.n_params, dtype=self._dtype)
        initialize(self._layout, self._params, check_seed(seed))

    # -- description -------------------------------------------------------

    @property
    def layers(self):
        """tuple of int: the layer sizes, input first."""
        return self._layers

    @property
    def dtype(self):
        """numpy.dtype: float32 or float64, the precision of everything inside the net."""
        return self._dtype

    @property
    def n_params(self):
        """int: the number of trainable parameters (weights and biases)."""
        return self._layout.n_params

    @property
    def activation(self):
        """str: the hidden layers' activation."""
        return self._activation

    @property
    def bias(self):
        """bool: whether the layers have bias vectors."""
        return self._bias

    @property
    def loss_name(self):
        """str: the training loss, ``"sse"`` or ``"mse"``."""
        return self._loss_name

    def __repr__(self):
        return (
            f"{type(self).__module__}.{type(self).__name__}({list(self._layers)}, "
            f"activation={self._activation!r}, bias={self._bias}, "
            f"loss={self._loss_name!r}, dtype={self._dtype.name!r})"
        )

    # -- parameters --------------------------------------------------------

    @property
    def weights(self):
        """list of ndarray: each layer's weights, shaped ``(fan_in, fan_out)``.

        Reading returns copies: changing them does not change the net, and
        they do not change as the net trains. Assigning a list of arrays
        (any real dtype, any memory layout) checks the count, the shapes and
        finiteness, then copies the values in.
        """
        return [view.copy() for view in self._layout.weight_views(self._params)]

    @weights.setter
    def weights(self, values):
        arrays = check_parameter_list("weights", values, self._layout.weight_shapes, self._dtype)
        for view, array in zip(self._layout.weight_views(self._params), arrays):
            view[...] = array

    @property
    def biases(self):
        """list of ndarray: each layer's bias vector, shaped ``(fan_out,)``.

        Empty when the net was built with ``bias=False``. Reading returns
        copies; assigning checks and copies in, as for ``weights``.
        """
        return [view.copy() for view in self._layout.bias_views(self._params)]

    @biases.setter
    def biases(self, values):
        arrays = check_parameter_list("biases", values, self._layout.bias_shapes, self._dtype)
        for view, array in zip(self._layout.bias_views(self._params), arrays):
            view[...] = array

    # -- evaluation --------------------------------------------------------

    def _check_data(self, x, y):
        x = check_features(x, self._layers[0], self._dtype)
        return x, check_targets(y, x.shape[0], self._layers[-1], self._dtype)

    def predict(self, x):
        """Return the network's output for ``x``.

        Parameters
        ----------
        x : array_like, shape (n_samples, layers[0])

        Returns
        -------
        ndarray, shape (n_samples, layers[-1]), of the net's dtype
        """
        return self._predict(check_features(x, self._layers[0], self._dtype))

    def forward(self, x):
        """Run the forward pass and return the output and the hidden activations.

        Parameters
        ----------
        x : array_like, shape (n_samples, layers[0])

        Returns
        -------
        output : ndarray, shape (n_samples, layers[-1])
        hidden : list of ndarray
            The post-ReLU activations of each hidden layer, shaped
            ``(n_samples, layers[i])`` for ``i = 1 .. len(layers) - 2``.
        """
        return self._forward(check_features(x, self._layers[0], self._dtype))

    def loss(self, x, y):
        """Return the loss of the net on ``(x, y)`` as a float.

        Parameters
        ----------
        x : array_like, shape (n_samples, layers[0])
        y : array_like, shape (n_samples, layers[-1]), or (n_samples,) for one output
        """
        return self._loss(*self._check_data(x, y))

    def gradients(self, x, y):
        """Return the gradient of the loss on ``(x, y)`` with respect to the parameters.

        The ReLU passes the gradient where its input is >= 0 and blocks it
        where the input is < 0, as in the seed's ``grad_h[h < 0] = 0``.

        Returns
        -------
        weight_grads : list of ndarray
            Shaped like ``weights``.
        bias_grads : list of ndarray
            Shaped like ``biases`` (empty without biases).
        """
        flat = self._gradients(*self._check_data(x, y))
        return self._layout.weight_views(flat), self._layout.bias_views(flat)

    # -- training ----------------------------------------------------------

    def train_step(self, x, y, lr):
        """Take one SGD step on the whole of ``(x, y)`` and return the loss before it.

        ``params -= lr * gradient``. If the loss or the updated parameters
        are not finite, the update is not applied and ``DivergenceError``
        is raised.

        Parameters
        ----------
        x : array_like, shape (n_samples, layers[0])
        y : array_like, shape (n_samples, layers[-1]), or (n_samples,) for one output
        lr : float
            The learning rate, positive and finite.

        Returns
        -------
        float
        """
        x, y = self._check_data(x, y)
        lr = check_learning_rate(lr)
        loss, status = self._train_step(x, y, lr)
        if status != STEP_OK:
            raise DivergenceError(status, 0, lr, History([loss], 0, 1))
        return loss

    def fit(self, x, y, *, epochs, lr, batch_size=None, shuffle=True, seed=None):
        """Train with mini-batch SGD and return the loss of every step.

        Each epoch splits the samples into consecutive batches of
        ``batch_size`` (the last one may be smaller and is used too) and
        takes one SGD step per batch. With ``shuffle``, the sample order is
        reshuffled before every epoch; with a single batch per epoch the
        order is left alone, since it cannot change the step.

        Parameters
        ----------
        x : array_like, shape (n_samples, layers[0])
        y : array_like, shape (n_samples, layers[-1]), or (n_samples,) for one output
        epochs : int
            Passes over the data, >= 0.
        lr : float
            The learning rate, positive and finite.
        batch_size : int or None, default None
            Samples per step; ``None`` (or anything >= n_samples) means
            the full batch, one step per epoch.
        shuffle : bool, default True
            Reshuffle the order every epoch.
        seed : int or None, default None
            Seed of the shuffle; ``None`` draws fresh entropy. The same
            seed gives the same batches in every call.

        Returns
        -------
        History
            ``history.loss[i]`` is the loss of step ``i``'s batch before
            its update.

        Raises
        ------
        DivergenceError
            When a loss or the updated parameters become NaN or infinite.
            Training stops there, the failing step is not applied, and the
            exception's ``history`` holds the losses so far.
        """
        x, y = self._check_data(x, y)
        epochs = check_int("epochs", epochs, 0)
        lr = check_learning_rate(lr)
        n_samples = x.shape[0]
        if batch_size is None:
            batch_size = n_samples
        batch_size = min(check_int("batch_size", batch_size, 1), n_samples)
        shuffle = check_bool("shuffle", shuffle) and batch_size < n_samples
        seed = check_seed(seed)
        state = _random.shuffle_state(seed) if shuffle else 0
        steps_per_epoch = -(-n_samples // batch_size)
        losses, status = self._fit(x, y, epochs, lr, batch_size, shuffle, state)
        if status != STEP_OK:
            step = len(losses) - 1
            history = History(losses, step // steps_per_epoch, steps_per_epoch)
            raise DivergenceError(status, step, lr, history)
        return History(losses, epochs, steps_per_epoch)

    # -- hooks -------------------------------------------------------------

    def _predict(self, x):
        raise NotImplementedError

    def _forward(self, x):
        raise NotImplementedError

    def _loss(self, x, y):
        raise NotImplementedError

    def _gradients(self, x, y):
        raise NotImplementedError

    def _train_step(self, x, y, lr):
        raise NotImplementedError

    def _fit(self, x, y, epochs, lr, batch_size, shuffle, state):
        raise NotImplementedError
