"""Validation (validation_data, validation_fraction) and early stopping in fit."""
import copy
import math
from fractions import Fraction

import numpy as np
import pytest

import nnfast
from tests.conftest import (
    CLASSIFICATION_LOSSES,
    LOSSES,
    TOL,
    fit_recording,
    make_net,
    params_of,
    random_data,
)

LAYERS = [3, 8, 2]


def accuracy_of(net, x, y):
    """The documented accuracy, from predict_classes: argmax agreement for cross_entropy
    (labels, or the most probable class of probability targets); for binary_cross_entropy the
    fraction of outputs on the right side of 0.5."""
    classes = net.predict_classes(x)
    y = np.asarray(y)
    if net.loss_name == "cross_entropy":
        labels = y if y.ndim == 1 else y.argmax(axis=1)
        return np.mean(classes == labels)
    return np.mean(classes.reshape(y.shape) == (y >= 0.5))


def data(loss="mse", n=30, n_val=12, seed=0, layers=LAYERS):
    rng = np.random.default_rng(seed)
    x, y = random_data(rng, n, layers, loss)
    x_val, y_val = random_data(rng, n_val, layers, loss)
    return x, y, x_val, y_val


@pytest.mark.parametrize("loss", LOSSES)
def test_validation_metrics_are_those_after_each_epoch(net_class, dtype, loss):
    """val_loss[e] is net.loss(x_val, y_val) and val_accuracy[e] the accuracy on it, with the
    parameters at the end of epoch e (seen from a callback); val_accuracy only for classification."""
    x, y, x_val, y_val = data(loss)
    net = make_net(net_class, LAYERS, seed=3, loss=loss, activation="tanh", dtype=dtype)
    seen = []

    def callback(epoch, history):
        seen.append((net.loss(x_val, y_val), accuracy_of(net, x_val, y_val) if loss in CLASSIFICATION_LOSSES else None))

    history = net.fit(x, y, epochs=4, optimizer=nnfast.Adam(0.05), batch_size=8, seed=1,
                      validation_data=(x_val, y_val), callback=callback)
    assert history.val_loss.shape == (4,) and history.val_loss.dtype == np.float64
    rtol = 1e-12 if dtype == np.float64 else TOL[dtype]
    np.testing.assert_allclose(history.val_loss, [loss_value for loss_value, _ in seen], rtol=rtol)
    assert len(set(history.val_loss)) == 4  # the parameters did change between epochs
    if loss in CLASSIFICATION_LOSSES:
        assert history.val_accuracy.shape == (4,)
        np.testing.assert_array_equal(history.val_accuracy, [accuracy for _, accuracy in seen])
        assert np.all((0 <= history.val_accuracy) & (history.val_accuracy <= 1))
    else:
        assert history.val_accuracy is None


@pytest.mark.parametrize("loss, soft", [("cross_entropy", True), ("binary_cross_entropy", True)],
                         ids=["cross-entropy-probabilities", "binary-cross-entropy-soft"])
def test_validation_accuracy_of_probability_targets(net_class, loss, soft):
    """Probability targets: the most probable class for cross_entropy, the side of 0.5 for binary."""
    rng = np.random.default_rng(4)
    x, y = random_data(rng, 20, LAYERS, loss, soft)
    x_val, y_val = random_data(rng, 15, LAYERS, loss, soft)
    net = make_net(net_class, LAYERS, seed=2, loss=loss)
    accuracies = []
    history = net.fit(x, y, epochs=3, lr=0.5, validation_data=(x_val, y_val),
                      callback=lambda epoch, h: accuracies.append(accuracy_of(net, x_val, y_val)))
    np.testing.assert_array_equal(history.val_accuracy, accuracies)


def test_no_validation_no_validation_record(net_class):
    x, y, _, _ = data("cross_entropy")
    history = make_net(net_class, LAYERS, loss="cross_entropy").fit(x, y, epochs=2, lr=0.1)
    assert history.val_loss is None and history.val_accuracy is None
    assert history.best_epoch is None and history.stopped_early is False
    assert history.epoch_loss.shape == (2,)


def test_validation_does_not_change_training(net_class):
    """Computing validation metrics does not change the steps: same history and parameters as without."""
    x, y, x_val, y_val = data()
    a, b = make_net(net_class, LAYERS, seed=1), make_net(net_class, LAYERS, seed=1)
    kwargs = dict(epochs=3, batch_size=7, seed=2)
    history = a.fit(x, y, validation_data=(x_val, y_val), optimizer=nnfast.SGD(0.01, momentum=0.9), **kwargs)
    plain = b.fit(x, y, optimizer=nnfast.SGD(0.01, momentum=0.9), **kwargs)
    np.testing.assert_array_equal(history.loss, plain.loss)
    np.testing.assert_array_equal(params_of(a), params_of(b))


# -- validation_fraction ---------------------------------------------------------------


def identifying_problem(n):
    """Data on which every loss names its samples, for a net that training cannot move.

    A bias-free [1, 1] net with weight 0 on all-zero inputs outputs 0 and
    has gradient x.T @ (...) = 0, so its parameters never change; with
    targets y_i = 2**i its sse on a set S of samples is sum_{i in S} 4**i,
    exact in float64 for n <= 26, whose base-4 digits are S.
    """
    assert n <= 26
    return np.zeros((n, 1)), 2.0 ** np.arange(n)


def decode(total):
    """The set S with sum_{i in S} 4**i == total."""
    value, members, i = int(total), set(), 0
    assert value == total
    while value:
        value, digit = divmod(value, 4)
        assert digit in (0, 1), total
        if digit:
            members.add(i)
        i += 1
    return members


def split_of(net_class, n, fraction, seed):
    """``(training samples, validation samples)`` of ``fit(validation_fraction=fraction, seed=seed)``.

    The training set is read from the per-step losses (batch_size=1), the
    validation set from val_loss.
    """
    x, y = identifying_problem(n)
    net = net_class([1, 1], bias=False)
    net.weights = [np.zeros((1, 1))]
    history = net.fit(x, y, epochs=1, lr=0.1, batch_size=1, shuffle=False,
                      validation_fraction=fraction, seed=seed)
    assert net.weights[0][0, 0] == 0.0  # the identification premise
    train = [decode(loss) for loss in history.loss]
    assert all(len(sample) == 1 for sample in train)
    train = set().union(*train)
    assert len(train) == len(history.loss) == history.steps_per_epoch
    return train, decode(history.val_loss[0])


@pytest.mark.parametrize("fraction, n", [(0.2, 10), (0.25, 8), (0.5, 7), (0.1, 25), (0.01, 20), (0.95, 20),
                                         (0.3, 10), (1 / 3, 9)])
def test_validation_fraction_holds_out_ceil_of_fraction_times_n(net_class, fraction, n):
    """ceil(f * n) validation samples (f * n taken exactly), the rest for training: a partition of the samples."""
    train, val = split_of(net_class, n, fraction, seed=0)
    assert len(val) == math.ceil(Fraction(fraction).limit_denominator(1000) * n)
    assert train | val == set(range(n)) and not train & val


def test_validation_fraction_counts_the_fraction_not_its_float_rounding(net_class):
    """0.28 of 25 samples is 7, but 0.28 * 25 == 7.000000000000001 in floating point, whose ceiling is 8.

    "Hold out this fraction of the samples" (and ceil(f * n)) means the
    mathematical fraction; a float rounding up past an integer must not add
    a validation sample.
    """
    assert 0.28 * 25 > 7  # the premise: the float product overshoots
    train, val = split_of(net_class, 25, 0.28, seed=0)
    assert (len(val), len(train)) == (7, 18)


def test_validation_fraction_split_is_seeded(net_class):
    """The same seed gives the same split; different seeds give different splits."""
    splits = [split_of(net_class, 20, 0.3, seed) for seed in [5, 5, 6, 7, 8]]
    assert splits[0] == splits[1]
    assert len({frozenset(val) for _, val in splits}) >= 3


def test_validation_fraction_is_validation_data(net_class):
    """Training with validation_fraction is training on the rest with validation_data = the held-out part."""
    x, y, _, _ = data(n=20)
    # Find the split from the identifying problem (same n, fraction and seed).
    train, val = split_of(net_class, 20, 0.25, seed=9)
    train, val = sorted(train), sorted(val)
    a, b = make_net(net_class, LAYERS, seed=4), make_net(net_class, LAYERS, seed=4)
    history = a.fit(x, y, epochs=3, lr=0.01, batch_size=4, shuffle=False, validation_fraction=0.25, seed=9)
    expected = b.fit(x[train], y[train], epochs=3, lr=0.01, batch_size=4, shuffle=False,
                     validation_data=(x[val], y[val]))
    np.testing.assert_array_equal(history.loss, expected.loss)
    np.testing.assert_array_equal(history.val_loss, expected.val_loss)
    np.testing.assert_array_equal(params_of(a), params_of(b))


# -- early stopping -----------------------------------------------------------------


def expected_stop(monitored, patience, min_delta):
    """The documented rule, applied to a monitored sequence: ``(epoch it stops after or None, best epoch)``.

    An epoch improves if its value is below the best so far minus
    ``min_delta``; training stops once ``patience`` epochs in a row did not.
    """
    best, best_epoch, waited = math.inf, None, 0
    for epoch, value in enumerate(monitored):
        if value < best - min_delta:
            best, best_epoch, waited = value, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                return epoch, best_epoch
    return None, best_epoch


@pytest.mark.parametrize("validation", [True, False], ids=["val-loss", "epoch-loss"])
@pytest.mark.parametrize("patience", [1, 3])
def test_early_stopping_without_improvement_stops_after_patience_epochs(net_class, patience, validation):
    """With a min_delta nothing can beat, the first epoch stays best: training stops after
    1 + patience epochs and leaves the net with the parameters of epoch 0."""
    x, y, x_val, y_val = data()
    net = make_net(net_class, LAYERS, seed=5)
    extra = dict(validation_data=(x_val, y_val)) if validation else {}
    history, recorded = fit_recording(net, x, y, epochs=50, lr=0.01, early_stopping=True, patience=patience,
                                      min_delta=1e9, **extra)
    assert history.epochs == len(recorded) == 1 + patience
    assert history.stopped_early is True and history.best_epoch == 0
    np.testing.assert_array_equal(params_of(net), recorded[0])
    assert not np.array_equal(recorded[-1], recorded[0])
    assert len(history.loss) == history.epochs and len(history.epoch_loss) == history.epochs


def test_best_parameters_are_restored_even_without_stopping(net_class):
    """Early stopping that never fires (patience beyond the epochs) still leaves the best epoch's parameters."""
    x, y, x_val, y_val = data()
    net = make_net(net_class, LAYERS, seed=5)
    history, recorded = fit_recording(net, x, y, epochs=5, lr=0.01, early_stopping=True, patience=100,
                                      min_delta=1e9, validation_data=(x_val, y_val))
    assert history.epochs == 5 and history.stopped_early is False and history.best_epoch == 0
    np.testing.assert_array_equal(params_of(net), recorded[0])


def overfitting_problem():
    """Few noisy training samples and a clean validation set: val_loss falls, then rises."""
    rng = np.random.default_rng(11)
    w = rng.standard_normal((3, 1))
    x, x_val = rng.standard_normal((12, 3)), rng.standard_normal((40, 3))
    y = np.tanh(x @ w) + 0.5 * rng.standard_normal((12, 1))
    y_val = np.tanh(x_val @ w)
    return x, y, x_val, y_val


# In these runs every comparison of the rule clears its threshold by more than
# 1e-4 relative: the decisions do not hinge on rounding.
@pytest.mark.parametrize("patience, min_delta", [(1, 0.0), (4, 0.0), (3, 1e-2)])
def test_early_stopping_on_val_loss_follows_the_rule(net_class, patience, min_delta):
    """Stopping epoch and best epoch are the rule's on val_loss (not on epoch_loss), and the net
    ends with the best epoch's parameters."""
    x, y, x_val, y_val = overfitting_problem()
    net = make_net(net_class, [3, 32, 1], seed=6, activation="tanh", loss="mse")
    history, recorded = fit_recording(net, x, y, epochs=400, optimizer=nnfast.Adam(0.005), early_stopping=True,
                                      patience=patience, min_delta=min_delta, validation_data=(x_val, y_val))
    stop, best = expected_stop(history.val_loss, patience, min_delta)
    assert history.stopped_early and stop == history.epochs - 1 < 399
    assert history.best_epoch == best
    np.testing.assert_array_equal(params_of(net), recorded[best])
    # The training loss kept improving: monitoring it would have stopped elsewhere (or not at all).
    assert expected_stop(history.epoch_loss, patience, min_delta) != (stop, best)
    if min_delta:  # and min_delta made a difference
        assert expected_stop(history.val_loss, patience, 0.0) != (stop, best)


@pytest.mark.parametrize("patience, min_delta", [(2, 0.0), (3, 1e-2)])
def test_early_stopping_on_epoch_loss_follows_the_rule(net_class, patience, min_delta):
    """Without validation data the monitored quantity is epoch_loss (here noisy: shuffled small batches)."""
    x, y, _, _ = overfitting_problem()
    net = make_net(net_class, [3, 16, 1], seed=7, activation="tanh", loss="mse")
    history, recorded = fit_recording(net, x, y, epochs=400, lr=0.02, batch_size=3, seed=3,
                                      early_stopping=True, patience=patience, min_delta=min_delta)
    stop, best = expected_stop(history.epoch_loss, patience, min_delta)
    assert history.stopped_early and stop == history.epochs - 1 < 399
    assert history.best_epoch == best
    np.testing.assert_array_equal(params_of(net), recorded[best])
    if min_delta:
        assert expected_stop(history.epoch_loss, patience, 0.0) != (stop, best)


def test_early_stopping_is_the_same_with_and_without_callback(net_class):
    """The epoch-by-epoch loop (with a callback) and the one-call loop stop at the same epoch."""
    x, y, x_val, y_val = overfitting_problem()
    a = make_net(net_class, [3, 32, 1], seed=6, activation="tanh", loss="mse")
    b = copy.deepcopy(a)
    kwargs = dict(epochs=400, early_stopping=True, patience=3, validation_data=(x_val, y_val))
    history = a.fit(x, y, optimizer=nnfast.Adam(0.005), **kwargs)
    calls = []
    with_callback = b.fit(x, y, optimizer=nnfast.Adam(0.005), callback=lambda epoch, h: calls.append(epoch), **kwargs)
    assert calls == list(range(history.epochs)) and history.stopped_early
    for name in ["loss", "epoch_loss", "val_loss"]:
        np.testing.assert_array_equal(getattr(with_callback, name), getattr(history, name))
    assert (with_callback.best_epoch, with_callback.epochs) == (history.best_epoch, history.epochs)
    np.testing.assert_array_equal(params_of(a), params_of(b))


def test_early_stopping_with_validation_fraction_monitors_the_held_out_part(net_class):
    x, y, _, _ = data(n=40)
    net = make_net(net_class, LAYERS, seed=8)
    history = net.fit(x, y, epochs=30, lr=0.05, validation_fraction=0.25, seed=1, early_stopping=True,
                      patience=2, min_delta=1e9)
    assert history.val_loss is not None and history.epochs == 3 and history.best_epoch == 0


# -- arguments ---------------------------------------------------------------------


def _x_val():
    return data("cross_entropy", n=10, n_val=6)[2]


def _y_val():
    return data("cross_entropy", n=10, n_val=6)[3]


BAD_FITS = [
    ("patience-zero", dict(early_stopping=True, patience=0), ValueError, r"^patience must be an int >= 1, got 0"),
    ("patience-negative", dict(patience=-2), ValueError, r"^patience must be an int >= 1, got -2"),
    ("patience-float", dict(early_stopping=True, patience=2.0), TypeError, r"^patience must be an int >= 1, got 2.0"),
    ("patience-bool", dict(patience=True), TypeError, r"^patience must be an int"),
    ("patience-none", dict(patience=None), TypeError, r"^patience must be an int"),
    ("min-delta-negative", dict(early_stopping=True, min_delta=-0.1), ValueError,
     r"^min_delta must be a finite number in \[0, inf\), got -0.1"),
    ("min-delta-nan", dict(min_delta=float("nan")), ValueError, r"^min_delta must be a finite number"),
    ("min-delta-inf", dict(min_delta=float("inf")), ValueError, r"^min_delta must be a finite number"),
    ("min-delta-str", dict(min_delta="0"), TypeError, r"^min_delta must be a number"),
    ("early-stopping-str", dict(early_stopping="yes"), TypeError, r"^early_stopping must be True or False"),
    ("early-stopping-int", dict(early_stopping=1), TypeError, r"^early_stopping must be True or False"),
    ("fraction-zero", dict(validation_fraction=0.0), ValueError, r"^validation_fraction=0.0 of 10 samples"),
    ("fraction-one", dict(validation_fraction=1.0), ValueError, r"^validation_fraction=1.0 of 10 samples"),
    ("fraction-leaves-no-training", dict(validation_fraction=0.95), ValueError,
     r"^validation_fraction=0.95 of 10 samples leaves 0 for training"),
    ("fraction-negative", dict(validation_fraction=-0.1), ValueError,
     r"^validation_fraction must be a finite number in \[0, 1\]"),
    ("fraction-above-one", dict(validation_fraction=1.5), ValueError, r"^validation_fraction must be"),
    ("fraction-nan", dict(validation_fraction=float("nan")), ValueError, r"^validation_fraction must be"),
    ("fraction-str", dict(validation_fraction="0.2"), TypeError, r"^validation_fraction must be a number"),
    ("fraction-bool", dict(validation_fraction=True), TypeError, r"^validation_fraction must be a number"),
    ("both-validations", dict(validation_fraction=0.2, validation_data=(_x_val(), _y_val())), ValueError,
     r"validation_data or validation_fraction, not both"),
    ("validation-data-not-a-pair", dict(validation_data=_x_val()), TypeError, r"^validation_data must be a pair"),
    ("validation-data-triple", dict(validation_data=(_x_val(), _y_val(), None)), TypeError,
     r"^validation_data must be a pair"),
    ("validation-x-width", dict(validation_data=(_x_val()[:, :2], _y_val())), ValueError,
     r"^validation_data x has 2 features, but the net expects 3"),
    ("validation-x-nan", dict(validation_data=(_x_val() * np.nan, _y_val())), ValueError,
     r"^validation_data x must be finite"),
    ("validation-y-rows", dict(validation_data=(_x_val(), _y_val()[:4])), ValueError,
     r"^validation_data y has 4 rows, but validation_data x has 6"),
    ("validation-y-width", dict(validation_data=(_x_val(), np.zeros((6, 3)))), ValueError,
     r"^validation_data y must have shape \(6, 2\)"),
    ("validation-y-label", dict(validation_data=(_x_val(), np.full(6, 2))), ValueError,
     r"^validation_data y class labels must be in \[0, 2\), got 2"),
]


@pytest.mark.parametrize("kwargs, exception, message", [case[1:] for case in BAD_FITS],
                         ids=[case[0] for case in BAD_FITS])
def test_bad_validation_and_early_stopping_arguments(net_class, kwargs, exception, message):
    """Each bad argument raises naming it, before any training."""
    x, y, _, _ = data("cross_entropy", n=10, n_val=6)
    net = make_net(net_class, LAYERS, loss="cross_entropy", seed=0)
    saved = params_of(net)
    with pytest.raises(exception, match=message):
        net.fit(x, y, **{"epochs": 2, "lr": 0.1, **kwargs})
    np.testing.assert_array_equal(params_of(net), saved)
    assert net.optimizer is None
