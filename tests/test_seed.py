"""Golden numbers from the seed notebook (/work/shared/seed), which fixed the semantics."""
from pathlib import Path

import numpy as np
import pytest

import nnfast

TRACE = Path(__file__).parent / "data" / "seed_loss_trace.txt"

# The notebook's data: XOR-like targets on three binary inputs.
X = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
Y = np.array([[0, 1, 1, 0]]).T
LR = 1e-3
STEPS = 500
# Printed by the notebook after the 500 steps, at 8 decimals.
FINAL_PREDICTION = np.array([[0.0], [0.98919177], [1.00082623], [0.0]])


def printed_trace():
    """``{step: printed loss string}`` for the steps the notebook printed (0-53)."""
    trace = {}
    for line in TRACE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            step, loss = line.split()
            trace[int(step)] = loss
    return trace


def seed_weights():
    """The notebook's initial ``w1, w2``: drawn right after ``np.random.seed(83832)``."""
    state = np.random.get_state()
    try:
        np.random.seed(83832)
        return np.random.randn(3, 3), np.random.randn(3, 1)
    finally:
        np.random.set_state(state)


def seed_net(net_class):
    net = net_class([3, 3, 1], bias=False)
    net.weights = list(seed_weights())
    return net


def assert_matches_printed(losses):
    """Every printed step agrees with ``losses`` to all 12 printed significant digits.

    Formatting our float the way the notebook printed it must reproduce the
    printed string exactly (stricter than a ~5e-12 relative tolerance,
    which the 12-digit rounding alone would allow).
    """
    trace = printed_trace()
    assert sorted(trace) == list(range(54))
    mismatches = {step: (f"{losses[step]:.12g}", printed) for step, printed in trace.items()
                  if f"{losses[step]:.12g}" != printed}
    assert not mismatches, f"(ours, printed) by step: {mismatches}"


def test_fit_reproduces_printed_loss_trace(net_class):
    """fit on the seed's data and weights prints the notebook's loss trace, digit for digit."""
    history = seed_net(net_class).fit(X, Y, epochs=STEPS, lr=LR)
    assert len(history.loss) == STEPS
    assert history.epochs == STEPS and history.steps_per_epoch == 1
    assert_matches_printed(history.loss)


def test_fit_reproduces_final_prediction(net_class):
    """After the 500 steps the predictions round to the notebook's printed ones."""
    net = seed_net(net_class)
    net.fit(X, Y, epochs=STEPS, lr=LR)
    np.testing.assert_array_equal(np.round(net.predict(X), 8), FINAL_PREDICTION)


def test_train_step_loop_reproduces_seed(net_class):
    """500 train_step calls give the same trace and final prediction as the notebook."""
    net = seed_net(net_class)
    losses = [net.train_step(X, Y, LR) for _ in range(STEPS)]
    assert all(isinstance(loss, float) for loss in losses)
    assert_matches_printed(losses)
    np.testing.assert_array_equal(np.round(net.predict(X), 8), FINAL_PREDICTION)


def notebook_loop():
    """The notebook's training cell, transcribed; return its 500 losses and final weights."""
    w1, w2 = seed_weights()
    x, y = X, Y
    losses = []
    for _ in range(STEPS):
        h = x.dot(w1)
        h_relu = np.maximum(h, 0)
        y_pred = h_relu.dot(w2)
        losses.append(np.square(y_pred - y).sum())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T.dot(grad_y_pred)
        grad_h = grad_y_pred.dot(w2.T)
        grad_h[h < 0] = 0
        grad_w1 = x.T.dot(grad_h)
        w1 -= LR * grad_w1
        w2 -= LR * grad_w2
    return np.array(losses), [w1, w2]


def test_every_step_matches_the_notebook_code(net_class):
    """Beyond the printed 54 steps: all 500 losses and the final weights match the notebook's code."""
    expected_losses, expected_weights = notebook_loop()
    net = seed_net(net_class)
    history = net.fit(X, Y, epochs=STEPS, lr=LR)
    np.testing.assert_allclose(history.loss, expected_losses, rtol=1e-12, atol=0)
    for got, expected in zip(net.weights, expected_weights):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("steps", [0, 1, 53])
def test_trace_prefix_is_the_same_run(net_class, steps):
    """Splitting the run into two fit calls continues the same trajectory."""
    net = seed_net(net_class)
    first = net.fit(X, Y, epochs=steps, lr=LR).loss
    rest = net.fit(X, Y, epochs=STEPS - steps, lr=LR).loss
    assert_matches_printed(np.concatenate([first, rest]))


def test_examples_seed_problem_is_the_notebook_problem():
    """nnfast.examples.seed_problem() holds the notebook's data, weights and schedule."""
    problem = nnfast.examples.seed_problem()
    np.testing.assert_array_equal(problem.x, X)
    np.testing.assert_array_equal(problem.y, Y)
    for got, expected in zip(problem.weights, seed_weights()):
        np.testing.assert_array_equal(got, expected)
    assert tuple(problem.layers) == (3, 3, 1)
    assert (problem.lr, problem.epochs) == (LR, STEPS)
