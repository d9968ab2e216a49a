"""``from_sklearn`` and ``to_sklearn``: fitted scikit-learn MLPs to nnfast's estimators and back.

Both estimators have the same parameters and fitted attributes, so a
conversion copies them: the parameters by name, every fitted attribute
(``coefs_``, ``classes_``, ``loss_curve_``, ...) and the private state
that later fits read (the label binarizer, the early-stopping books), and
the solver's state, translated between scikit-learn's optimizer objects
(lists of arrays, weights then biases) and nnfast's (one flat vector per
moment, layer after layer).
"""
from __future__ import annotations

import copy

import numpy as np
from sklearn import neural_network
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
from sklearn.utils.validation import check_is_fitted

import nnfast
from nnfast.sklearn._mlp import MLPClassifier, MLPRegressor

# The private attributes, besides the fitted ones (ending in "_"), that a later fit reads.
_PRIVATE_STATE = ("_label_binarizer", "_no_improvement_count", "_best_coefs", "_best_intercepts")
_PAIRS = ((neural_network.MLPClassifier, MLPClassifier), (neural_network.MLPRegressor, MLPRegressor))


def from_sklearn(
    estimator: neural_network.MLPClassifier | neural_network.MLPRegressor,
) -> MLPClassifier | MLPRegressor:
    """Return nnfast's estimator for a fitted scikit-learn ``MLPClassifier`` or ``MLPRegressor``.

    The result has the same parameters and fitted attributes and predicts
    the same (up to rounding: float64 1e-15 relative), with nnfast's
    kernels; ``partial_fit`` (and a fit with ``warm_start=True``)
    continues from the same state, the solver's included.

    Parameters
    ----------
    estimator : sklearn.neural_network.MLPClassifier or MLPRegressor
        Fitted. It is not modified, and shares no array with the result.

    Returns
    -------
    nnfast.sklearn.MLPClassifier or nnfast.sklearn.MLPRegressor
    """
    source, target = _classes(estimator, 0)
    converted = _copy_fitted(estimator, target(**estimator.get_params()))
    layer_units = [converted.coefs_[0].shape[0]] + [coef.shape[1] for coef in converted.coefs_]
    dtype = converted.coefs_[0].dtype
    config = converted._net_config(layer_units, dtype)
    net = converted._make_net(config)
    net.weights = converted.coefs_
    net.biases = converted.intercepts_
    converted._publish(net, config)
    solver_state = getattr(estimator, "_optimizer", None)
    if solver_state is not None:
        converted._optimizer = converted._new_optimizer()
        _solver_state_to_nnfast(solver_state, converted._optimizer, converted)
    return converted


def to_sklearn(
    estimator: MLPClassifier | MLPRegressor,
) -> neural_network.MLPClassifier | neural_network.MLPRegressor:
    """Return scikit-learn's ``MLPClassifier`` or ``MLPRegressor`` for a fitted nnfast estimator.

    The inverse of ``from_sklearn``: the same parameters, fitted
    attributes (``coefs_`` and ``intercepts_`` writable, as scikit-learn's
    are) and solver state.

    Parameters
    ----------
    estimator : nnfast.sklearn.MLPClassifier or nnfast.sklearn.MLPRegressor
        Fitted. It is not modified, and shares no array with the result.

    Returns
    -------
    sklearn.neural_network.MLPClassifier or MLPRegressor
    """
    target, source = _classes(estimator, 1)
    converted = _copy_fitted(estimator, target(**estimator.get_params()))
    solver_state = getattr(estimator, "_optimizer", None)
    if solver_state is not None:
        converted._optimizer = _solver_state_to_sklearn(solver_state, estimator, converted)
    return converted


def _classes(estimator, side):
    for pair in _PAIRS:
        if type(estimator) is pair[side]:
            check_is_fitted(estimator)
            return pair
    expected = " or ".join(f"{pair[side].__module__.split('._')[0]}.{pair[side].__name__}" for pair in _PAIRS)
    raise TypeError(f"estimator must be a fitted {expected}, got {type(estimator).__name__}")


def _copy_fitted(source, target):
    """Copy the fitted and private state of ``source`` into the unfitted ``target``."""
    for name, value in vars(source).items():
        if (name.endswith("_") and not name.startswith("_")) or name in _PRIVATE_STATE:
            setattr(target, name, _writable_copy(value))
    return target


def _writable_copy(value):
    if isinstance(value, np.ndarray):
        return np.array(value)  # a new, writable array, whatever the source's flags
    if isinstance(value, list):
        return [_writable_copy(item) for item in value]
    return copy.deepcopy(value)


def _flat(estimator, weights, biases):
    """One vector in nnfast's parameter layout from per-layer weights and biases."""
    net = estimator._make_net(estimator._net_key)
    net.weights = weights
    net.biases = biases
    return net.parameters


def _per_layer(estimator, vector):
    """``(weights, biases)`` lists from one vector in nnfast's parameter layout."""
    net = estimator._make_net(estimator._net_key)
    net.parameters = vector
    return net.weights, net.biases


def _solver_state_to_nnfast(state, optimizer, estimator):
    n_layers = len(estimator.coefs_)
    optimizer.lr = state.learning_rate_init if isinstance(state, AdamOptimizer) else state.learning_rate
    if isinstance(state, AdamOptimizer):
        moments = [_flat(estimator, ms[:n_layers], ms[n_layers:]) for ms in (state.ms, state.vs)]
        optimizer.buffers = np.stack(moments)
        optimizer.step_count = int(state.t)
    elif optimizer.n_moments:
        velocities = state.velocities
        optimizer.buffers = _flat(estimator, velocities[:n_layers], velocities[n_layers:])[np.newaxis]
        # nnfast counts updates; scikit-learn's SGD does not, and its updates never read the count.
        # One marks the velocity as the state of a started run, as nnfast's checks require.
        optimizer.step_count = 1 if optimizer.buffers.any() else 0


def _solver_state_to_sklearn(optimizer, estimator, converted):
    params = converted.coefs_ + converted.intercepts_
    if isinstance(optimizer, nnfast.Adam):
        state = AdamOptimizer(params, estimator.learning_rate_init, estimator.beta_1, estimator.beta_2,
                              estimator.epsilon)
        if optimizer.buffers is not None:
            ms, vs = (_per_layer(estimator, buffer) for buffer in optimizer.buffers)
            state.ms, state.vs = ms[0] + ms[1], vs[0] + vs[1]
        state.t = optimizer.step_count
        return state
    state = SGDOptimizer(params, estimator.learning_rate_init, estimator.learning_rate, estimator.momentum,
                         estimator.nesterovs_momentum, estimator.power_t)
    state.learning_rate = optimizer.lr
    if optimizer.buffers is not None and optimizer.n_moments:
        weights, biases = _per_layer(estimator, optimizer.buffers[0])
        state.velocities = weights + biases
    return state
