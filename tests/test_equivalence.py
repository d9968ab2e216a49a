"""nnfast.Net computes what nnfast.reference.Net (the NumPy specification) computes.

float64 must agree within 1e-10 and float32 within 1e-4, norm-wise relative
(see ``tests.conftest.assert_close``), on random architectures on both sides
of the BLAS threshold.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnfast
import nnfast.reference
from nnfast._matmul import blas_min_work
from tests.conftest import (
    DTYPES,
    NET_CLASSES,
    NET_IDS,
    TOL,
    assert_close,
    assert_loss_close,
    flat,
    make_pair,
    net_configs,
    params_of,
    random_data,
    stable_lr,
)


def pair_and_data(config):
    """Build a (fast, reference) pair and N(0, 1) data from a ``net_configs`` draw."""
    rng = np.random.default_rng(config["seed"])
    x, y = random_data(rng, config["n_samples"], config["layers"])
    fast, ref = make_pair(
        config["layers"], x=x, seed=config["seed"], bias=config["bias"],
        loss=config["loss"], dtype=config["dtype"],
    )
    return fast, ref, x, y


def assert_evaluation_agrees(fast, ref, x, y):
    """predict, forward, loss and gradients agree; results have the net's dtype."""
    dtype = ref.dtype
    prediction = fast.predict(x)
    assert prediction.dtype == dtype
    assert_close(prediction, ref.predict(x), dtype, "predict")

    output, hidden = fast.forward(x)
    ref_output, ref_hidden = ref.forward(x)
    assert output.dtype == dtype and all(h.dtype == dtype for h in hidden)
    assert_close(output, ref_output, dtype, "forward output")
    assert_close(hidden, ref_hidden, dtype, "forward hidden")
    assert [h.shape for h in hidden] == [(len(x), size) for size in ref.layers[1:-1]]

    loss = fast.loss(x, y)
    assert isinstance(loss, float)
    assert_loss_close(loss, ref.loss(x, y), y, ref.loss_name, dtype)

    weight_grads, bias_grads = fast.gradients(x, y)
    ref_weight_grads, ref_bias_grads = ref.gradients(x, y)
    assert all(g.dtype == dtype for g in weight_grads + bias_grads)
    assert_close([weight_grads, bias_grads], [ref_weight_grads, ref_bias_grads], dtype, "gradients")


@given(config=net_configs())
def test_evaluation_matches_reference(config):
    """predict, forward (output and hidden), loss and gradients match the reference."""
    fast, ref, x, y = pair_and_data(config)
    assert_evaluation_agrees(fast, ref, x, y)


@given(config=net_configs())
def test_train_step_matches_reference(config):
    """train_step returns the same loss and leaves the same parameters."""
    fast, ref, x, y = pair_and_data(config)
    dtype = config["dtype"]
    lr = stable_lr(config["layers"], len(x), config["loss"])
    before = params_of(ref)
    gradient = flat(ref.gradients(x, y))
    assert_loss_close(fast.train_step(x, y, lr), ref.train_step(x, y, lr), y, config["loss"], dtype)
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after the step")
    # The update itself is -lr * gradient, not just close to it relative to
    # the (much larger) parameters; slack of a few ulps of the parameters.
    update = params_of(fast) - before
    slack = TOL[dtype] * np.max(np.abs(lr * gradient)) + 4 * np.finfo(dtype).eps * np.max(np.abs(before))
    assert np.max(np.abs(update + lr * gradient)) <= slack


@given(config=net_configs(max_hidden=3), batch_size=st.integers(1, 20),
       epochs=st.integers(1, 3), shuffle_seed=st.integers(0, 2**63))
def test_fit_matches_reference(config, batch_size, epochs, shuffle_seed):
    """A shuffled multi-epoch mini-batch fit gives the same history and parameters."""
    fast, ref, x, y = pair_and_data(config)
    dtype = config["dtype"]
    lr = stable_lr(config["layers"], batch_size, config["loss"])
    kwargs = dict(epochs=epochs, lr=lr, batch_size=batch_size, seed=shuffle_seed)
    history, ref_history = fast.fit(x, y, **kwargs), ref.fit(x, y, **kwargs)
    assert (history.epochs, history.steps_per_epoch) == (ref_history.epochs, ref_history.steps_per_epoch)
    assert history.loss.dtype == np.float64
    assert_close(history.loss, ref_history.loss, dtype, "history")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after fit")


FIT_OPTIONS = {
    "last-batch-smaller": dict(epochs=3, batch_size=4),
    "batch-1": dict(epochs=2, batch_size=1),
    "batch-equals-n": dict(epochs=2, batch_size=10),
    "batch-above-n": dict(epochs=2, batch_size=11),
    "batch-none": dict(epochs=2),
    "no-shuffle": dict(epochs=3, batch_size=3, shuffle=False),
    "zero-epochs": dict(epochs=0, batch_size=3),
}


@pytest.mark.parametrize("options", FIT_OPTIONS.values(), ids=FIT_OPTIONS.keys())
def test_fit_options_match_reference(options, dtype):
    """fit's batching options give the reference's history, step counts and parameters."""
    layers = [4, 6, 2]
    x, y = random_data(np.random.default_rng(0), 10, layers)
    fast, ref = make_pair(layers, x=x, seed=8, dtype=dtype)
    kwargs = dict(lr=stable_lr(layers, 10, "sse"), seed=4, **options)
    history, ref_history = fast.fit(x, y, **kwargs), ref.fit(x, y, **kwargs)
    assert (history.epochs, history.steps_per_epoch) == (ref_history.epochs, ref_history.steps_per_epoch)
    assert history.loss.shape == ref_history.loss.shape
    assert_close(history.loss, ref_history.loss, dtype, "history")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize(
    "layers, n_samples",
    [
        pytest.param([4, 2], 9, id="no-hidden-layer"),
        pytest.param([4, 2], 1, id="no-hidden-layer-1-sample"),
        pytest.param([3, 5, 4, 2], 1, id="1-sample"),
        pytest.param([1, 1, 1], 7, id="width-1"),
        pytest.param([1, 1, 1, 1, 1], 1, id="width-1-1-sample"),
        pytest.param([5, 1, 7, 1, 3], 11, id="width-1-bottlenecks"),
        pytest.param([300, 1, 2], 3, id="wide-input"),
        pytest.param([2, 300, 300, 3], 40, id="wide-hidden"),
    ],
)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("loss", ["sse", "mse"])
def test_edge_shapes_match_reference(layers, n_samples, dtype, bias, loss):
    """No hidden layer, single samples and width-1 layers: every operation matches."""
    rng = np.random.default_rng(len(layers) * 1000 + n_samples)
    x, y = random_data(rng, n_samples, layers)
    fast, ref = make_pair(layers, x=x, seed=n_samples, bias=bias, loss=loss, dtype=dtype)
    assert_evaluation_agrees(fast, ref, x, y)
    lr = stable_lr(layers, n_samples, loss)
    assert_loss_close(fast.train_step(x, y, lr), ref.train_step(x, y, lr), y, loss, dtype)
    kwargs = dict(epochs=2, lr=lr, batch_size=2, seed=5)
    assert_close(fast.fit(x, y, **kwargs).loss, ref.fit(x, y, **kwargs).loss, dtype, "history")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters")


def threshold_shapes():
    """(batch, fan_in, fan_out) with a product just below and exactly at ``blas_min_work``."""
    side = int(round(blas_min_work ** (1 / 3)))
    fan_out = -(-blas_min_work // (side * side))
    assert side * side * fan_out >= blas_min_work > side * side * (fan_out - 1)
    return [(side, side, fan_out - 1), (side, side, fan_out)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("shape", threshold_shapes(), ids=["loops", "blas"])
def test_first_layer_on_both_sides_of_blas_threshold(shape, dtype):
    """A first layer whose product is one step below / at the BLAS threshold matches the reference."""
    n_samples, fan_in, fan_out = shape
    layers = [fan_in, fan_out, 2]
    rng = np.random.default_rng(fan_out)
    x, y = random_data(rng, n_samples, layers)
    fast, ref = make_pair(layers, x=x, seed=3, dtype=dtype)
    assert_evaluation_agrees(fast, ref, x, y)
    lr = stable_lr(layers, n_samples, "sse")
    kwargs = dict(epochs=3, lr=lr, batch_size=n_samples)
    assert_close(fast.fit(x, y, **kwargs).loss, ref.fit(x, y, **kwargs).loss, dtype, "history")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters")


def test_scratch_buffers_reused_across_batch_sizes(dtype):
    """A compiled net gives the same results on a batch after having seen larger or smaller ones."""
    layers = [6, 40, 30, 3]
    rng = np.random.default_rng(11)
    x_big, y_big = random_data(rng, 50, layers)
    x_small, y_small = x_big[:3].copy(), y_big[:3].copy()
    fast, ref = make_pair(layers, x=x_big, seed=4, dtype=dtype)
    # Alternate sizes so each call finds buffers sized for another batch.
    for x, y in [(x_small, y_small), (x_big, y_big), (x_small, y_small), (x_big, y_big)]:
        assert_evaluation_agrees(fast, ref, x, y)
    lr = stable_lr(layers, 50, "sse")
    for x, y in [(x_big, y_big), (x_small, y_small), (x_big, y_big)]:
        assert_loss_close(fast.train_step(x, y, lr), ref.train_step(x, y, lr), y, "sse", dtype)
    assert_close(fast.fit(x_big, y_big, epochs=2, lr=lr, batch_size=7, seed=1).loss,
                 ref.fit(x_big, y_big, epochs=2, lr=lr, batch_size=7, seed=1).loss, dtype, "history")
    assert_evaluation_agrees(fast, ref, x_small, y_small)
    assert_close(params_of(fast), params_of(ref), dtype, "parameters")


@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_same_seed_same_initialization_in_both_classes_and_dtypes(net_class):
    """Same seed: nnfast.Net and the reference start identically; float32 is float64 rounded."""
    layers = [5, 7, 3, 2]
    reference64 = nnfast.reference.Net(layers, seed=123)
    for dtype in DTYPES:
        net = net_class(layers, seed=123, dtype=dtype)
        assert net.dtype == dtype
        for got, expected in zip(net.weights + net.biases, reference64.weights + reference64.biases):
            assert got.dtype == dtype
            np.testing.assert_array_equal(got, expected.astype(dtype))


@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_initialization_scales(net_class):
    """Hidden weights are N(0, 2/fan_in), output weights N(0, 1/fan_in), biases zero."""
    net = net_class([400, 300, 200], seed=0)
    hidden, output = net.weights
    assert abs(hidden.mean()) < 0.01 * np.sqrt(2 / 400)
    assert abs(hidden.std() / np.sqrt(2 / 400) - 1) < 0.01
    assert abs(output.std() / np.sqrt(1 / 300) - 1) < 0.01
    assert all(np.array_equal(b, np.zeros_like(b)) for b in net.biases)
    assert net.n_params == 400 * 300 + 300 + 300 * 200 + 200


@pytest.mark.parametrize("net_class", NET_CLASSES, ids=NET_IDS)
def test_seed_none_draws_fresh_initializations(net_class):
    """Without a seed, two nets start from different weights."""
    a, b = net_class([4, 8, 1]), net_class([4, 8, 1])
    assert not np.array_equal(params_of(a), params_of(b))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_float32_overflowing_loss_is_treated_alike():
    """A loss beyond float32's range: both nets report the same loss and the same step outcome.

    Four outputs of 1e19 against zero targets: each squared error (1e38)
    fits in float32 but their sum (4e38) does not. The reference computes
    the loss in the net's dtype (inf, so train_step raises DivergenceError);
    the compiled kernel must do the same.
    """
    x, y = np.zeros((4, 1)), np.zeros(4)
    results = []
    for net_class in NET_CLASSES:
        net = net_class([1, 1], dtype=np.float32)
        net.weights = [np.zeros((1, 1))]
        net.biases = [np.array([1e19])]
        loss = net.loss(x, y)
        try:
            step = net.train_step(x, y, 1e-3)
        except nnfast.DivergenceError as error:
            step = ("diverged", list(error.history.loss))
        results.append(dict(loss=loss, train_step=step, params=params_of(net).tolist()))
    fast, ref = results
    assert ref["loss"] == np.inf  # the specification's answer
    for key in ref:
        assert fast[key] == ref[key], f"{key}: nnfast.Net {fast[key]}, reference {ref[key]}"
