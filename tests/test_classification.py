"""Classification: predict_proba, predict_classes, target checks, and a small end-to-end problem."""
import numpy as np
import pytest
from scipy.special import expit, softmax

import nnfast
from tests.conftest import make_net, params_of

RNG = np.random.default_rng(0)
X = RNG.standard_normal((25, 4))


def test_predict_proba_of_cross_entropy_is_the_softmax(net_class, dtype):
    net = make_net(net_class, [4, 6, 3], seed=1, loss="cross_entropy", dtype=dtype)
    net.weights = [5 * w for w in net.weights]  # confident predictions as well as hesitant ones
    logits = net.predict(X)
    proba = net.predict_proba(X)
    assert proba.shape == (25, 3) and proba.dtype == dtype
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=0, atol=4 * np.finfo(dtype).eps)
    # exp(z - max z) carries the rounding of z - max z: a relative error of eps * |z - max z|.
    rtol = 4 * np.finfo(dtype).eps * (1 + np.ptp(logits))
    np.testing.assert_allclose(proba, softmax(logits.astype(np.float64), axis=1), rtol=rtol, atol=np.finfo(dtype).tiny)
    classes = net.predict_classes(X)
    assert classes.shape == (25,) and classes.dtype.kind in "iu"
    np.testing.assert_array_equal(classes, logits.argmax(axis=1))
    assert len(set(classes)) > 1


@pytest.mark.parametrize("n_out", [1, 3])
def test_predict_proba_of_binary_cross_entropy_is_the_sigmoid(net_class, dtype, n_out):
    net = make_net(net_class, [4, 6, n_out], seed=2, loss="binary_cross_entropy", dtype=dtype)
    net.weights = [5 * w for w in net.weights]
    logits = net.predict(X)
    proba = net.predict_proba(X)
    assert proba.shape == (25, n_out) and proba.dtype == dtype
    assert np.all((proba >= 0) & (proba <= 1))
    rtol = 4 * np.finfo(dtype).eps * (1 + np.abs(logits).max())
    np.testing.assert_allclose(proba, expit(logits.astype(np.float64)), rtol=rtol, atol=np.finfo(dtype).eps)
    classes = net.predict_classes(X)
    # (n,) for one output, (n, k) for several; 1 where the probability is >= 0.5.
    assert classes.shape == ((25,) if n_out == 1 else (25, n_out)) and classes.dtype.kind in "iu"
    np.testing.assert_array_equal(classes, (logits >= 0).astype(int).reshape(classes.shape))
    assert 0 < classes.sum() < classes.size


def test_probabilities_of_extreme_logits(net_class):
    """Logits of +-1000: probabilities are exactly 0 and 1 (no NaN from overflow)."""
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]])
    for loss, expected in [("cross_entropy", [[1, 0, 0], [0, 0.5, 0.5]]),
                           ("binary_cross_entropy", [[1, 0, 0.5], [0, 1, 1]])]:
        net = net_class([2, 3], loss=loss, bias=False)
        net.weights = [logits]
        np.testing.assert_array_equal(net.predict_proba(np.eye(2)), expected)
    np.testing.assert_array_equal(net.predict_classes(np.eye(2)), [[1, 0, 1], [0, 1, 1]])


@pytest.mark.parametrize("method", ["predict_proba", "predict_classes"])
@pytest.mark.parametrize("loss", ["sse", "mse"])
def test_class_predictions_need_a_classification_loss(net_class, method, loss):
    net = net_class([4, 3], loss=loss)
    with pytest.raises(ValueError, match=rf"^{method} needs a cross-entropy loss, .*'{loss}'"):
        getattr(net, method)(X)


# (id, loss, outputs, targets, message) for targets the losses must refuse.
BAD_TARGETS = [
    ("label-too-large", "cross_entropy", 3, np.array([0, 1, 3] * 2), r"^y class labels must be in \[0, 3\), got 3"),
    ("label-negative", "cross_entropy", 3, np.array([0, -1, 2] * 2), r"^y class labels must be in \[0, 3\), got -1"),
    ("label-fraction", "cross_entropy", 3, np.array([0, 0.5, 2] * 2), r"^y class labels must be integers"),
    ("label-nan", "cross_entropy", 3, np.array([0, np.nan, 2] * 2), r"^y"),
    ("probability-negative", "cross_entropy", 3, np.array([[0.5, 0.6, -0.1]] * 6),
     r"^y must hold probabilities in \[0, 1\] for loss='cross_entropy', got -0.1"),
    ("probability-above-one", "cross_entropy", 3, np.array([[1.5, -0.5, 0.0]] * 6),
     r"^y must hold probabilities in \[0, 1\] for loss='cross_entropy', got 1.5"),
    ("labels-as-column", "cross_entropy", 3, np.zeros((6, 1)), r"^y must have shape \(6, 3\) or \(6,\)"),
    ("binary-above-one", "binary_cross_entropy", 2, np.array([[0.0, 1.5]] * 6),
     r"^y must hold probabilities in \[0, 1\] for loss='binary_cross_entropy', got 1.5"),
    ("binary-negative", "binary_cross_entropy", 1, np.array([0, 1, -1, 0, 1, 0]),
     r"^y must hold probabilities in \[0, 1\] for loss='binary_cross_entropy', got -1"),
    ("binary-label-two", "binary_cross_entropy", 1, np.array([0, 1, 2, 0, 1, 0]),
     r"^y must hold probabilities in \[0, 1\]"),
    ("binary-labels-for-several-outputs", "binary_cross_entropy", 2, np.array([0, 1, 1, 0, 1, 0]),
     r"^y must have shape \(6, 2\), got shape \(6,\)"),
]
ENTRY_POINTS = {
    "loss": lambda net, x, y: net.loss(x, y),
    "gradients": lambda net, x, y: net.gradients(x, y),
    "train_step": lambda net, x, y: net.train_step(x, y, 0.1),
    "fit": lambda net, x, y: net.fit(x, y, epochs=1, lr=0.1),
    "validation": lambda net, x, y: net.fit(x, np.zeros(6, dtype=int) if net.loss_name == "cross_entropy"
                                            else np.zeros((6, net.layers[-1])), epochs=1, lr=0.1,
                                            validation_data=(x, y)),
}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("entry", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
@pytest.mark.parametrize("loss, n_out, y, message", [case[1:] for case in BAD_TARGETS],
                         ids=[case[0] for case in BAD_TARGETS])
def test_bad_targets_are_rejected(net_class, entry, loss, n_out, y, message):
    """Labels out of range or not integers, probabilities outside [0, 1], wrong shapes: ValueError naming y."""
    net = net_class([4, n_out], loss=loss, seed=0)
    saved = params_of(net)
    if entry is ENTRY_POINTS["validation"]:
        message = message.replace("^y", "^validation_data y")
    with pytest.raises(ValueError, match=message):
        entry(net, X[:6], y.copy())
    np.testing.assert_array_equal(params_of(net), saved)


def test_cross_entropy_needs_two_outputs(net_class):
    with pytest.raises(ValueError, match=r"^loss='cross_entropy' needs at least 2 outputs"):
        net_class([4, 3, 1], loss="cross_entropy")
    net_class([4, 3, 1], loss="binary_cross_entropy")  # one output is fine for the binary loss


def test_boundary_targets_are_accepted(net_class):
    """Labels 0 and k-1, probabilities exactly 0 and 1."""
    ce = net_class([4, 3], loss="cross_entropy", seed=0)
    assert np.isfinite(ce.loss(X[:4], [0, 2, 2, 0]))
    assert np.isfinite(ce.loss(X[:2], [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))
    bce = net_class([4, 2], loss="binary_cross_entropy", seed=0)
    assert np.isfinite(bce.loss(X[:2], [[0, 1], [1.0, 0.0]]))


# -- end to end ----------------------------------------------------------------------


def spirals(n_per_class, noise, seed):
    """Two interleaved spirals (1.5 turns each, the second the first turned by pi), with Gaussian noise."""
    rng = np.random.default_rng(seed)
    angle = np.sqrt(rng.uniform(0, 1, n_per_class)) * 3 * np.pi
    arm = np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, noise, (2 * n_per_class, 2))
    return x, np.repeat([0, 1], n_per_class)


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
def test_spirals_are_learned_with_adam(net_class, loss):
    """A [2, 32, 32, k] ReLU classifier trained with Adam separates two spirals a linear one cannot."""
    x, labels = spirals(100, 0.03, seed=0)
    x_val, labels_val = spirals(100, 0.03, seed=1)
    n_out = 2 if loss == "cross_entropy" else 1
    y, y_val = (labels, labels_val) if n_out == 2 else (labels.astype(float), labels_val.astype(float))
    net = net_class([2, 32, 32, n_out], loss=loss, seed=0)
    history = net.fit(x, y, epochs=100, optimizer=nnfast.Adam(0.01), batch_size=20, seed=1,
                      validation_data=(x_val, y_val))
    assert np.mean(net.predict_classes(x) == labels) >= 0.97
    assert history.val_accuracy[-1] >= 0.9
    assert history.epoch_loss[-1] < 0.1 * history.epoch_loss[0]
    linear = net_class([2, n_out], loss=loss, seed=0)
    linear.fit(x, y, epochs=100, optimizer=nnfast.Adam(0.01), batch_size=20, seed=1)
    assert np.mean(linear.predict_classes(x) == labels) < 0.8


def test_binary_probabilities_keep_their_relative_precision(net_class):
    """predict_proba of binary_cross_entropy is the sigmoid to full relative precision, as the
    softmax of cross_entropy is: a logit of -40 has probability 4.2e-18, not 0.

    (0.5 * (1 + tanh(z / 2)) cancels for z << 0: relative error 2e-4 at z = -30, and 0 for z < -37.)
    """
    z = np.array([-700.0, -100.0, -40.0, -30.0, -20.0, -5.0, 0.0, 5.0, 20.0, 40.0])
    net = net_class([1, 1], loss="binary_cross_entropy", bias=False)
    net.weights = [np.ones((1, 1))]
    np.testing.assert_allclose(net.predict_proba(z[:, None])[:, 0], expit(z), rtol=1e-12, atol=0)
    # The cross-entropy softmax of the same logits against 0 is accurate: the same sigmoid, exactly as
    # precise. (Two classes with logits (0, z) have probabilities (1 - s(z), s(z)).)
    two = net_class([1, 2], loss="cross_entropy", bias=False)
    two.weights = [np.array([[0.0, 1.0]])]
    np.testing.assert_allclose(two.predict_proba(z[:, None])[:, 1], expit(z), rtol=1e-12, atol=0)
