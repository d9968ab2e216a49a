"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's MLP estimators, trained by ``nnfast.Net``.

The estimators translate; they do not compute. Each ``fit`` validates its
inputs as scikit-learn does, draws the initial weights, the early-stopping
split and every epoch's sample order from scikit-learn's random number
sequence (the same ``RandomState`` calls in the same order), and hands the
arithmetic to the core: ``Net.fit(epochs=k, order=...)`` calls, each
running ``k`` epochs in their orders, for ``"sgd"`` and ``"adam"``
(losses, L2 penalty, gradients and updates in compiled code,
scikit-learn's update rules through ``style="sklearn"``). ``k`` is as many
epochs as the ``tol`` rule must see before it can stop the fit, so the
books kept after each epoch come out as they would one epoch at a time;
verbose output, early stopping, ``"invscaling"`` and ``partial_fit`` take
one epoch per call. One ``Net.loss_and_gradients`` call per function
evaluation of SciPy's L-BFGS-B for ``"lbfgs"``. After each epoch this module
keeps scikit-learn's books: ``loss_curve_``, the ``tol`` /
``n_iter_no_change`` rule, the validation scores and the best weights of
early stopping, the ``"invscaling"`` and ``"adaptive"`` learning rates,
the verbose messages and the warnings.

Where the result can differ from scikit-learn's, the class docstrings say
so (section "Differences from scikit-learn").
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Callable, Sequence, TypeVar

import numpy as np
import scipy.optimize
import scipy.sparse
from sklearn import neural_network as _sk_mlp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.optimize import _check_optimize_result
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

import nnfast

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray
    from typing_extensions import Self

    from nnfast._typing import FloatArray

    # scikit-learn has no type hints: to mypy, its decorators would turn the
    # methods they wrap into Any. These say that they keep their signatures.
    _Method = TypeVar("_Method", bound=Callable[..., Any])

    def _fit_context(*, prefer_skip_nested_validation: bool) -> Callable[[_Method], _Method]: ...

    def available_if(check: Callable[[Any], object]) -> Callable[[_Method], _Method]: ...
else:
    from sklearn.base import _fit_context
    from sklearn.utils.metaestimators import available_if

try:  # scikit-learn passes iprint only to SciPy versions that still take it
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
except ImportError:  # pragma: no cover - depends on the scikit-learn version
    def _get_additional_lbfgs_options_dict(key, value):
        return {}

__all__ = ["MLPClassifier", "MLPRegressor"]

_STOCHASTIC_SOLVERS = ("sgd", "adam")

# scikit-learn's hidden activation -> nnfast.Net's.
_HIDDEN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}

# scikit-learn's output activation -> the nnfast loss that applies it.
_OUTPUT_LOSSES = {
    "softmax": "cross_entropy",  # multiclass: softmax + log-loss
    "logistic": "binary_log_loss",  # binary and multilabel: a sigmoid per output
    "identity": "squared_error",
    "exp": "poisson",
}

# The input dtypes predict hands to the net as they are.
_FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

_NON_FINITE_WEIGHTS = (
    "Solver produced non-finite parameter weights. The input data may"
    " contain large values and need to be preprocessed."
)


class _NonFiniteWeights(Exception):
    """L-BFGS-B ended on non-finite weights (the net keeps its last finite ones)."""


def _dense(X):
    """``X`` as a dense ndarray (a sparse matrix is expanded: n_samples * n_features values)."""
    return X.toarray() if scipy.sparse.issparse(X) else X


def _as_net_array(array, dtype):
    """``array`` as a C-contiguous ndarray of ``dtype``, copied only if it is not one."""
    return np.ascontiguousarray(array, dtype=dtype)


def _binarize(label_binarizer, y):
    """``label_binarizer.transform(y).astype(bool)``: one column per class
    (multiclass), or one for the second class (binary), True where ``y`` is
    that class. Computed here for 1-D labels of the classes' own dtype
    (scikit-learn's transform re-derives the target type first, ~0.7 ms a
    fit); anything else goes to scikit-learn."""
    lb = label_binarizer
    classes = lb.classes_
    if (type(y) is np.ndarray and y.ndim == 1 and y.dtype == classes.dtype and y.dtype.kind in "biufU"
            and not lb.sparse_input_ and not lb.sparse_output and (lb.pos_label, lb.neg_label) == (1, 0)):
        if lb.y_type_ == "multiclass":
            return y[:, np.newaxis] == classes
        if lb.y_type_ == "binary" and len(classes) == 2:
            return (y == classes[1])[:, np.newaxis]
    return lb.transform(y).astype(bool)


def _inverse_binarize(label_binarizer, y_prob):
    """``label_binarizer.inverse_transform(y_prob)`` for our dense probabilities:
    the class of the largest (multiclass), or those above 0.5 (binary,
    multilabel), as scikit-learn decides them, without its checks (~100 us,
    more than a one-row prediction); anything else goes to scikit-learn."""
    lb = label_binarizer
    if lb.sparse_input_ or (lb.pos_label, lb.neg_label) != (1, 0) or type(y_prob) is not np.ndarray:
        return lb.inverse_transform(y_prob)
    classes = lb.classes_
    if lb.y_type_ == "multiclass" and y_prob.ndim == 2 and y_prob.shape[1] == len(classes):
        return classes[y_prob.argmax(axis=1)]
    if lb.y_type_ == "binary" and y_prob.ndim == 1 and len(classes) == 2:
        return classes[(y_prob > 0.5).astype(np.intp)]
    if lb.y_type_ == "multilabel-indicator" and y_prob.ndim == 2 and y_prob.shape[1] == len(classes):
        return (y_prob > 0.5).astype(np.intp)
    return lb.inverse_transform(y_prob)


def _reshuffled(sample_idx, random_state):
    """``sklearn.utils.shuffle(sample_idx, random_state=random_state)``, without its
    input checks (~90 us, as much as an epoch on small data): the same draw."""
    permutation = np.arange(sample_idx.shape[0])
    random_state.shuffle(permutation)
    return sample_idx[permutation]


def _read_only(arrays):
    """Flag each array of ``arrays`` read-only and return the list."""
    for array in arrays:
        array.flags.writeable = False
    return arrays


class _BaseMLP(BaseEstimator):
    """What ``MLPClassifier`` and ``MLPRegressor`` share (use one of them).

    The fitted net is ``self._net`` (an ``nnfast.Net``); ``coefs_`` and
    ``intercepts_`` are read-only copies of its parameters taken when a fit
    ends. ``self._net_parameters`` holds the very arrays published then:
    while ``coefs_`` and ``intercepts_`` hold them, predictions run on
    ``self._net``; arrays assigned in their place (``est.coefs_ = [...]``
    or ``est.coefs_[0] = ...``) are used instead, by a net built for that
    call, and by the next warm-started fit or ``partial_fit``.
    """

    # scikit-learn's own constraint objects, so that a bad parameter gets its
    # message word for word: the sets in them print in the order they were
    # loaded in, which differs between two copies of the same literal.
    _parameter_constraints: dict = {
        name: constraint for name, constraint in _sk_mlp.MLPClassifier._parameter_constraints.items()
        if name != "loss"
    }

    def __init__(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                 learning_rate_init, power_t, max_iter, loss, shuffle, random_state, tol, verbose,
                 warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction,
                 beta_1, beta_2, epsilon, n_iter_no_change, max_fun):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.loss = loss
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun

    # -- the net ---------------------------------------------------------

    def _net_config(self, layer_units, dtype):
        """What a ``nnfast.Net`` for these layers and the current parameters is made of."""
        return (tuple(int(units) for units in layer_units), _HIDDEN_ACTIVATIONS[self.activation],
                _OUTPUT_LOSSES[self.out_activation_], float(self.alpha), np.dtype(dtype))

    def _make_net(self, config):
        layers, activation, loss, l2, dtype = config
        # seed=0: the net's own initialization is overwritten with scikit-learn's draws.
        return nnfast.Net(list(layers), activation=activation, loss=loss, l2=l2, dtype=dtype, seed=0)

    def _training_net(self, layer_units, dtype):
        """The net a fit trains, holding ``coefs_`` and ``intercepts_``.

        The previous fit's net when nothing it was built from has changed
        (the optimizer keeps its state either way: it is not the net's).
        """
        config = self._net_config(layer_units, dtype)
        net = getattr(self, "_net", None)
        if net is None or self._net_key != config:
            net = self._make_net(config)
        net.weights = self.coefs_
        net.biases = self.intercepts_
        return net, config

    def _publish(self, net, config):
        """Keep ``net`` as the fitted net and expose its parameters as ``coefs_``/``intercepts_``."""
        self._net = net
        self._net_key = config
        self.coefs_ = _read_only(net.weights)
        self.intercepts_ = _read_only(net.biases)
        self._net_parameters = (list(self.coefs_), list(self.intercepts_))

    def _predict_net(self):
        """The net whose parameters are ``coefs_`` and ``intercepts_`` (see the class docstring)."""
        coefs, intercepts = self._net_parameters
        if (len(coefs) == len(self.coefs_) and len(intercepts) == len(self.intercepts_)
                and all(a is b for a, b in zip(coefs, self.coefs_))
                and all(a is b for a, b in zip(intercepts, self.intercepts_))):
            return self._net
        layer_units = [self.coefs_[0].shape[0]] + [coef.shape[1] for coef in self.coefs_]
        dtype = self.coefs_[0].dtype if self.coefs_[0].dtype in (np.float32, np.float64) else np.float64
        net = self._make_net(self._net_config(layer_units, dtype))
        net.weights = self.coefs_
        net.biases = self.intercepts_
        return net

    def __getstate__(self):
        state = dict(super().__getstate__())  # object.__getstate__ returns __dict__ itself
        # The net's parameters are coefs_ and intercepts_, pickled anyway:
        # the net is rebuilt from them rather than stored twice.
        state.pop("_net", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_net_key" in state:
            net = self._make_net(self._net_key)
            net.weights = self.coefs_
            net.biases = self.intercepts_
            self._net = net
        # NumPy's pickles do not keep the read-only flag. (The optimizer copies
        # arrays that joblib.load(mmap_mode="r") maps read-only itself.)
        _read_only([*getattr(self, "coefs_", ()), *getattr(self, "intercepts_", ())])

    # -- fitting ---------------------------------------------------------

    def _initialize(self, y, layer_units, dtype, random_state):
        """Set the attributes of a first fit and draw the initial weights as scikit-learn does."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = y.shape[1]
        self.n_layers_ = len(layer_units)
        if not is_classifier(self):
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        elif self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:  # binary and multilabel
            self.out_activation_ = "logistic"

        # Glorot's uniform initialization, one layer after the other: its
        # weights, then its biases, drawn in float64 and cast to X's dtype.
        factor = 2.0 if self.activation == "logistic" else 6.0
        self.coefs_, self.intercepts_ = [], []
        for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            coef = random_state.uniform(-bound, bound, (fan_in, fan_out))
            intercept = random_state.uniform(-bound, bound, fan_out)
            self.coefs_.append(coef.astype(dtype, copy=False))
            self.intercepts_.append(intercept.astype(dtype, copy=False))
        self._best_coefs = [coef.copy() for coef in self.coefs_]
        self._best_intercepts = [intercept.copy() for intercept in self.intercepts_]

        if self.solver in _STOCHASTIC_SOLVERS:
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _fit(self, X, y, sample_weight=None, incremental=False):
        hidden_layer_sizes = self.hidden_layer_sizes
        if not hasattr(hidden_layer_sizes, "__iter__"):
            hidden_layer_sizes = [hidden_layer_sizes]
        hidden_layer_sizes = list(hidden_layer_sizes)
        if np.any(np.array(hidden_layer_sizes) <= 0):
            raise ValueError("hidden_layer_sizes must be > 0, got %s." % hidden_layer_sizes)
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        n_features = X.shape[1]
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        if y.ndim == 1:
            y = y.reshape((-1, 1))
        self.n_outputs_ = y.shape[1]
        layer_units = [n_features] + hidden_layer_sizes + [self.n_outputs_]
        random_state = check_random_state(self.random_state)

        if first_pass:
            self._initialize(y, layer_units, X.dtype, random_state)
        # scikit-learn's lbfgs runs in float64 whatever X's dtype (SciPy's
        # L-BFGS-B works on float64 vectors); sgd and adam train in the
        # dtype of the weights, which is X's at the first fit.
        dtype = np.float64 if self.solver == "lbfgs" else self.coefs_[0].dtype
        net, config = self._training_net(layer_units, dtype)
        X = _dense(X)  # sparse input is expanded: see the class docstring

        try:
            if self.solver in _STOCHASTIC_SOLVERS:
                self._fit_stochastic(net, X, y, sample_weight, random_state, incremental)
            else:
                self._fit_lbfgs(net, X, y, sample_weight)
        except (nnfast.DivergenceError, _NonFiniteWeights) as error:
            # The net stopped at the first non-finite loss or update and kept
            # the last finite parameters; scikit-learn would have carried on
            # with non-finite weights to this same error.
            self._publish(net, config)
            raise ValueError(_NON_FINITE_WEIGHTS) from error
        self._publish(net, config)
        return self

    def _new_optimizer(self):
        """scikit-learn's optimizer for ``solver``, as an nnfast optimizer, with its schedule."""
        if self.solver == "sgd":
            # With momentum 0 scikit-learn's Nesterov step is the plain one.
            optimizer = nnfast.SGD(float(self.learning_rate_init), momentum=float(self.momentum),
                                   nesterov=bool(self.nesterovs_momentum and self.momentum > 0),
                                   style="sklearn")
            # As scikit-learn's SGDOptimizer, the schedule is fixed when the optimizer is made.
            self._lr_schedule = (self.learning_rate, float(self.learning_rate_init), self.power_t)
        else:
            optimizer = nnfast.Adam(float(self.learning_rate_init), betas=(float(self.beta_1), float(self.beta_2)),
                                    eps=float(self.epsilon), style="sklearn")
            self._lr_schedule = ("constant", float(self.learning_rate_init), self.power_t)
        return optimizer

    def _fit_stochastic(self, net, X, y, sample_weight, random_state, incremental):
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._new_optimizer()
        optimizer = self._optimizer
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        if early_stopping:
            # The split is scikit-learn's: stratified for single-output classifiers only.
            stratify = y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = (X, y) if sample_weight is None else (X, y, sample_weight)
            parts = train_test_split(*arrays, random_state=random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X_train, X_val, y_train, y_val = parts[:4]
            sample_weight_train, sample_weight_val = parts[4:] if sample_weight is not None else (None, None)
            if X_val.shape[0] < 2:
                raise ValueError(
                    "The validation set is too small. Increase 'validation_fraction' "
                    "or the size of your dataset."
                )
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
            X_val = _as_net_array(X_val, net.dtype)
        else:
            X_train, y_train, sample_weight_train = X, y, sample_weight
            X_val = y_val = sample_weight_val = None
        X_train = _as_net_array(X_train, net.dtype)
        y_train = _as_net_array(y_train, net.dtype)
        if sample_weight_train is not None:
            sample_weight_train = _as_net_array(sample_weight_train, net.dtype)

        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        schedule = self._lr_schedule[0]
        # Where nothing happens between two epochs but scikit-learn's books, several epochs
        # run in one compiled call (see _epochs_per_call); else one per call.
        one_at_a_time = (early_stopping or self.verbose or incremental
                         or (isinstance(optimizer, nnfast.SGD) and schedule == "invscaling"))
        try:
            self.n_iter_ = 0
            while self.n_iter_ < self.max_iter:
                epochs = 1 if one_at_a_time else self._epochs_per_call()
                if self.shuffle:
                    orders = np.empty((epochs, n_samples), dtype=np.intp)
                    for epoch in range(epochs):
                        sample_idx = orders[epoch] = _reshuffled(sample_idx, random_state)
                    order = dict(order=orders)
                else:
                    order = dict(shuffle=False)
                try:
                    history = net.fit(X_train, y_train, epochs=epochs, optimizer=optimizer, batch_size=batch_size,
                                      sample_weight=sample_weight_train, **order)
                except (nnfast.DivergenceError, KeyboardInterrupt) as error:
                    # The epochs completed before it still count, as they would one call at a time.
                    if error.history is not None:
                        self._end_epochs(net, error.history, optimizer, n_samples, early_stopping, X_val, y_val,
                                         sample_weight_val)
                    raise
                if self._end_epochs(net, history, optimizer, n_samples, early_stopping, X_val, y_val,
                                    sample_weight_val):
                    break
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        "Stochastic Optimizer: Maximum iterations (%d) reached and the "
                        "optimization hasn't converged yet." % self.max_iter,
                        ConvergenceWarning,
                    )
        except KeyboardInterrupt:
            # nnfast.TrainingInterrupted: the net keeps the last completed step.
            warnings.warn("Training interrupted by user.")

        if early_stopping:
            net.weights = self._best_coefs
            net.biases = self._best_intercepts

    def _epochs_per_call(self):
        """How many epochs the next compiled call can run: as many as the ``tol`` rule
        needs at least before it can stop the fit (or adapt the learning rate), since
        each epoch adds at most one to the count it compares with ``n_iter_no_change``."""
        return max(1, min(self.n_iter_no_change + 1 - self._no_improvement_count, self.max_iter - self.n_iter_))

    def _end_epochs(self, net, history, optimizer, n_samples, early_stopping, X_val, y_val, sample_weight_val):
        """scikit-learn's books after each epoch of ``history``, in turn; return whether to stop."""
        for epoch in range(history.epochs):
            self.n_iter_ += 1
            self.loss_ = self._reported_loss(history, epoch)
            self.t_ += n_samples
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))

            self._update_no_improvement_count(net, early_stopping, X_val, y_val, sample_weight_val)
            schedule, learning_rate_init, power_t = self._lr_schedule
            if isinstance(optimizer, nnfast.SGD) and schedule == "invscaling":
                optimizer.lr = learning_rate_init / (self.t_ + 1) ** power_t

            if self._no_improvement_count > self.n_iter_no_change:
                if early_stopping:
                    msg = ("Validation score did not improve more than tol=%f for %d consecutive epochs."
                           % (self.tol, self.n_iter_no_change))
                else:
                    msg = ("Training loss did not improve more than tol=%f for %d consecutive epochs."
                           % (self.tol, self.n_iter_no_change))
                if self._trigger_stopping(optimizer, msg):
                    return True
                self._no_improvement_count = 0
        return False

    def _reported_loss(self, history, epoch):
        """Epoch ``epoch``'s loss as scikit-learn reports it. Its squared error averages
        the outputs where its gradient (and so nnfast's loss) sums them: for
        several outputs the data part is divided by their number, the
        penalty left as it is."""
        loss = history.epoch_loss[epoch]
        if self.out_activation_ != "identity" or self.n_outputs_ == 1:
            return loss
        penalty = history.epoch_penalty[epoch]
        return (loss - penalty) / self.n_outputs_ + penalty

    def _trigger_stopping(self, optimizer, msg):
        """Whether to stop after ``n_iter_no_change`` epochs without progress;
        ``"adaptive"`` divides the learning rate by 5 instead, down to 1e-6."""
        if not (isinstance(optimizer, nnfast.SGD) and self._lr_schedule[0] == "adaptive"):
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if optimizer.lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        optimizer.lr = optimizer.lr / 5.0
        if self.verbose:
            print(msg + " Setting learning rate to %f" % optimizer.lr)
        return False

    def _update_no_improvement_count(self, net, early_stopping, X_val, y_val, sample_weight_val):
        if early_stopping:
            # The validation score may be NaN; it still counts as no improvement.
            score = self._score_net(net, X_val, y_val, sample_weight_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % self.validation_scores_[-1])
            last = self.validation_scores_[-1]
            if last < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if last > self.best_validation_score_:
                self.best_validation_score_ = last
                self._best_coefs = net.weights
                self._best_intercepts = net.biases
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _fit_lbfgs(self, net, X, y, sample_weight):
        X = _as_net_array(X, net.dtype)
        y = _as_net_array(y, net.dtype)
        if sample_weight is not None:
            sample_weight = _as_net_array(sample_weight, net.dtype)

        def loss_and_gradient(parameters):
            if not np.isfinite(parameters).all():
                # Where scikit-learn's NumPy would compute NaN from NaN weights
                # (L-BFGS-B then stops), tell SciPy so: a net holds finite weights only.
                return np.nan, np.full_like(parameters, np.nan)
            net.parameters = parameters
            return net.loss_and_gradients(X, y, sample_weight=sample_weight)

        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        result = scipy.optimize.minimize(
            loss_and_gradient,
            net.parameters,
            method="L-BFGS-B",
            jac=True,
            options={
                "maxfun": self.max_fun,
                "maxiter": self.max_iter,
                "gtol": self.tol,
                **_get_additional_lbfgs_options_dict("iprint", iprint),
            },
        )
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = np.float64(result.fun)
        if not np.isfinite(result.x).all():
            raise _NonFiniteWeights
        net.parameters = result.x

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: ArrayLike | scipy.sparse.spmatrix, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Fit the model to the data matrix ``X`` and the targets ``y``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data. A sparse matrix is expanded to a dense array
            for the fit (see the class docstring).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (classification) or real targets (regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. %s is not stochastic." % self.solver
            )
        return True

    # -- predicting ------------------------------------------------------

    def _output(self, X, net):
        """The output layer's activations for the validated dense ``X``: class
        probabilities for classifiers, predicted means for regressors."""
        if self.out_activation_ in ("softmax", "logistic"):
            return net.predict_proba(X)
        raw = net.predict(X)
        return np.exp(raw) if self.out_activation_ == "exp" else raw  # poisson's log link

    def _forward_pass_fast(self, X):
        """The output activations for ``X`` as given to predict: validated as
        scikit-learn validates it, except plain arrays (see ``_is_plain_input``)."""
        if self._is_plain_input(X):
            try:
                return self._output(X, self._predict_net())
            except ValueError:
                pass  # NaN, infinity, ...: scikit-learn's validation below raises its own error
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], reset=False)
        return self._output(_dense(X), self._predict_net())

    def _is_plain_input(self, X):
        """Whether ``X`` can go to the fitted net without scikit-learn's validation
        (~50 us, most of a one-row prediction): a 2-D float32 or float64 ndarray
        of the fitted width, for an estimator fitted without feature names.
        The net checks the rest (finiteness, at least one row) and raises
        ValueError where scikit-learn would, which then validates it to raise
        its own message."""
        return (type(X) is np.ndarray and X.ndim == 2 and X.dtype in _FLOAT_DTYPES
                and "_net" in self.__dict__ and "feature_names_in_" not in self.__dict__
                and X.shape[1] == self.n_features_in_)

    def _score_net(self, net, X, y, sample_weight):
        """The estimator's score of ``net`` on validated data, without input validation
        (which would drop feature names); NaN when a prediction is not finite."""
        y_pred = self._predict_from_output(self._output(X, net))
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return self._score_function(y, y_pred, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


_CLASS_DOC_COMMON = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The number of neurons of each hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        The hidden layers' activation.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The weight optimizer: SciPy's L-BFGS-B, stochastic gradient
        descent (with momentum), or Adam.
    alpha : float, default=0.0001
        Strength of the L2 penalty on the weights (not the biases); the
        penalty is divided by the batch size (or its sample-weight sum).
    batch_size : int or 'auto', default='auto'
        Minibatch size of 'sgd' and 'adam'; 'auto' is ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning-rate schedule of 'sgd': 'invscaling' sets it to
        ``learning_rate_init / (t_ + 1) ** power_t`` after each epoch;
        'adaptive' divides it by 5 each time ``n_iter_no_change`` epochs
        pass without progress by ``tol``, and stops below 1e-6.
    learning_rate_init : float, default=0.001
        Initial learning rate of 'sgd' and 'adam'.
    power_t : float, default=0.5
        Exponent of 'invscaling'.
    max_iter : int, default=200
        Maximum epochs ('sgd', 'adam') or iterations ('lbfgs').
    shuffle : bool, default=True
        Whether 'sgd' and 'adam' reshuffle the samples every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the early-stopping split and the
        shuffles, drawn exactly as scikit-learn draws them.
    tol : float, default=1e-4
        Training stops when the loss (or, with early stopping, the
        validation score) has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; 'lbfgs' uses it as ``gtol``.
    verbose : bool, default=False
        Print scikit-learn's progress messages.
    warm_start : bool, default=False
        Start a fit from the previous fit's weights.
    momentum : float, default=0.9
        Momentum of 'sgd', in [0, 1].
    nesterovs_momentum : bool, default=True
        Whether 'sgd' uses Nesterov's momentum.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (a split
        stratified for single-output classifiers), stop when its score has
        not improved by ``tol`` for ``n_iter_no_change`` epochs, and keep
        the weights of the best epoch. 'sgd' and 'adam' only.
    validation_fraction : float, default=0.1
        The held-out fraction of early stopping.
    beta_1 : float, default=0.9
        Decay rate of Adam's first moment, in [0, 1).
    beta_2 : float, default=0.999
        Decay rate of Adam's second moment, in [0, 1).
    epsilon : float, default=1e-8
        Adam's epsilon (added to the uncorrected root of the second moment,
        as scikit-learn does).
    n_iter_no_change : int, default=10
        Epochs without progress before stopping (or, for 'adaptive',
        before the learning rate is divided by 5).
    max_fun : int, default=15000
        Maximum number of loss evaluations of 'lbfgs'.
"""

_ATTRIBUTES_DOC_COMMON = """
    loss_ : float
        The loss of the last epoch ('sgd', 'adam': the mean of its batch
        losses, penalty included) or of the solution ('lbfgs').
    best_loss_ : float or None
        The lowest epoch loss ('sgd', 'adam'); None with early stopping.
        Not set by 'lbfgs'.
    loss_curve_ : list of float
        The loss of each epoch ('sgd', 'adam'). Not set by 'lbfgs'.
    validation_scores_ : list of float or None
        The validation score after each epoch, with early stopping.
    best_validation_score_ : float or None
        The best of ``validation_scores_``.
    t_ : int
        Training samples seen ('sgd', 'adam'; 0 for 'lbfgs').
    coefs_ : list of ndarray of shape (n_fan_in, n_fan_out)
        The weights of each layer: read-only copies of the fitted
        ``nnfast.Net``'s. Assign new arrays (``est.coefs_ = [...]``) to
        change them; predictions and warm starts then use those.
    intercepts_ : list of ndarray of shape (n_fan_out,)
        The biases of each layer (read-only, as ``coefs_``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen during fit, when ``X`` had string
        column names.
    n_iter_ : int
        Epochs ('sgd', 'adam') or iterations ('lbfgs') of the last fit.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        The output activation.
"""

_DIFFERENCES_DOC = """
    Sparse input
        CSR and CSC matrices are accepted and expanded to a dense array for
        each ``fit`` and ``predict`` call: that costs ``n_samples *
        n_features`` values of the training dtype (8 bytes each in float64,
        4 in float32) on top of the sparse matrix, for the duration of the
        call (plus a copy of the training part with early stopping).

    Differences from scikit-learn
        * ``coefs_`` and ``intercepts_`` are read-only arrays; scikit-learn's
          are writable. Writing into them raises instead of being silently
          ignored by the compiled net.
        * Arithmetic runs in nnfast's kernels, so results agree with
          scikit-learn's up to rounding (float64: 1e-15 to 1e-13 relative
          after 5 epochs or iterations); over many epochs or iterations
          rounding differences can grow, as between two BLAS builds.
        * A model trained in float32 ('sgd'/'adam' on float32 ``X``) also
          predicts in float32, also for float64 ``X``; scikit-learn
          multiplies float64 inputs by the float32 weights in float64.
        * When training diverges ('sgd', 'adam'), nnfast stops at the
          first non-finite loss or update (keeping the last finite
          weights) and raises scikit-learn's "Solver produced non-finite
          parameter weights" ValueError then. scikit-learn finishes the
          epochs first, and then raises it only if the weights are not
          finite: where just the loss overflowed (Adam on huge targets),
          it returns a model whose ``loss_`` is inf.
        * ``partial_fit`` is available for 'sgd' and 'adam' only, on both
          estimators (scikit-learn 1.9's ``MLPRegressor(solver='lbfgs')``
          exposes a ``partial_fit`` that runs a whole L-BFGS fit).
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron classifier: scikit-learn's, trained by nnfast.

    A drop-in replacement for ``sklearn.neural_network.MLPClassifier``
    (scikit-learn 1.9): the same parameters, defaults, fitted attributes,
    methods, messages and random draws; the training arithmetic runs in
    ``nnfast.Net``'s compiled kernels. It minimizes the log-loss of a
    softmax output (multiclass) or of a sigmoid per output (binary and
    multilabel targets), plus the L2 penalty ``alpha``.

    Parameters
    ----------""" + _CLASS_DOC_COMMON + """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.""" + _ATTRIBUTES_DOC_COMMON + """
    Notes
    -----""" + _DIFFERENCES_DOC + """
    Examples
    --------
    >>> from nnfast.sklearn import MLPClassifier
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(solver="lbfgs", random_state=0, max_iter=500).fit(X, y)
    >>> clf.predict(X[:3])
    array([0, 0, 0])
    """

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (100,), activation: str = "relu", *,
                 solver: str = "adam",
                 alpha: float = 0.0001, batch_size: int | str = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10,
                 max_fun: int = 15000) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, loss="log_loss", shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun,
        )

    _score_function = staticmethod(accuracy_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)

        # A new label binarizer for a fresh fit; otherwise the classes must
        # be those of the previous fit (warm start) or among them (partial_fit).
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same classes as in the "
                        f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                    )
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                    f"'y' has {classes}."
                )
        # bool, so that float32 data are not upcast by the targets
        return X, _binarize(self._label_binarizer, y)

    def _predict_from_output(self, y_pred):
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        return _inverse_binarize(self._label_binarizer, y_pred)

    def predict(self, X: ArrayLike | scipy.sparse.spmatrix) -> NDArray[Any]:
        """Predict the classes of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes (an indicator matrix for multilabel targets).
        """
        return self._predict_from_output(self._forward_pass_fast(X))

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: ArrayLike | scipy.sparse.spmatrix, y: ArrayLike, sample_weight: ArrayLike | None = None,
                    classes: ArrayLike | None = None) -> Self:
        """Update the model with one epoch over ``(X, y)`` ('sgd' and 'adam' only).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        sample_weight : array-like of shape (n_samples,), default=None
        classes : array of shape (n_classes,), default=None
            All the classes of all calls; required on the first call.

        Returns
        -------
        self : object
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_log_proba(self, X: ArrayLike | scipy.sparse.spmatrix) -> FloatArray:
        """Return the log of the class probabilities, ``log(predict_proba(X))``.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def predict_proba(self, X: ArrayLike | scipy.sparse.spmatrix) -> FloatArray:
        """Return the probability of each class (columns in the order of ``classes_``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
        """
        y_pred = self._forward_pass_fast(X)
        if self.n_outputs_ == 1:
            y_pred = y_pred.ravel()
        if y_pred.ndim == 1:  # binary: the sigmoid is the probability of classes_[1]
            return np.vstack([1 - y_pred, y_pred]).T
        return y_pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = """Multi-layer perceptron regressor: scikit-learn's, trained by nnfast.

    A drop-in replacement for ``sklearn.neural_network.MLPRegressor``
    (scikit-learn 1.9): the same parameters, defaults, fitted attributes,
    methods, messages and random draws; the training arithmetic runs in
    ``nnfast.Net``'s compiled kernels.

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default='squared_error'
        'squared_error': half the squared error (identity output);
        'poisson': half the Poisson deviance of an exp output (the
        targets must be >= 0).""" + _CLASS_DOC_COMMON + """
    Attributes
    ----------""" + _ATTRIBUTES_DOC_COMMON + """
    Notes
    -----""" + _DIFFERENCES_DOC + """        * With several outputs and loss='squared_error', scikit-learn
          reports (and L-BFGS-B minimizes) the squared error averaged over
          the outputs but follows the gradient of their sum. 'sgd' and
          'adam' report its number (``loss_``, ``loss_curve_``) and train
          the same weights. 'lbfgs' minimizes nnfast's objective, the sum,
          whose gradient that is, so the line searches, and then the
          weights and ``loss_``, can differ.
        * loss='poisson' refuses negative targets (scikit-learn's loss is
          then NaN), and says so in its tags (``target_tags.positive_only``).

    Examples
    --------
    >>> from nnfast.sklearn import MLPRegressor
    >>> from sklearn.datasets import load_diabetes
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MLPRegressor(hidden_layer_sizes=(10,), solver="lbfgs", max_iter=1000, random_state=0)
    >>> reg = reg.fit(X, y / 100)
    >>> reg.n_iter_, round(reg.score(X, y / 100), 2)
    (860, 0.59)
    """

    _parameter_constraints: dict = dict(_sk_mlp.MLPRegressor._parameter_constraints)

    def __init__(self, loss: str = "squared_error", hidden_layer_sizes: int | Sequence[int] = (100,),
                 activation: str = "relu", *, solver: str = "adam",
                 alpha: float = 0.0001, batch_size: int | str = "auto", learning_rate: str = "constant",
                 learning_rate_init: float = 0.001, power_t: float = 0.5, max_iter: int = 200, shuffle: bool = True,
                 random_state: int | np.random.RandomState | None = None, tol: float = 1e-4, verbose: bool = False,
                 warm_start: bool = False, momentum: float = 0.9, nesterovs_momentum: bool = True,
                 early_stopping: bool = False, validation_fraction: float = 0.1, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-8, n_iter_no_change: int = 10,
                 max_fun: int = 15000) -> None:
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver, alpha=alpha,
            batch_size=batch_size, learning_rate=learning_rate, learning_rate_init=learning_rate_init,
            power_t=power_t, max_iter=max_iter, loss=loss, shuffle=shuffle, random_state=random_state,
            tol=tol, verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun,
        )

    _score_function = staticmethod(r2_score)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _predict_from_output(self, y_pred):
        return y_pred.ravel() if y_pred.shape[1] == 1 else y_pred

    def predict(self, X: ArrayLike | scipy.sparse.spmatrix) -> FloatArray:
        """Predict the targets of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        return self._predict_from_output(self._forward_pass_fast(X))

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X: ArrayLike | scipy.sparse.spmatrix, y: ArrayLike,
                    sample_weight: ArrayLike | None = None) -> Self:
        """Update the model with one epoch over ``(X, y)`` ('sgd' and 'adam' only).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # The Poisson loss needs targets >= 0 (scikit-learn's own tags do not say so).
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags
