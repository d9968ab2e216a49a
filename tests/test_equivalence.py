"""nnfast.Net computes what nnfast.reference.Net (the NumPy specification) computes.

float64 must agree within 1e-10 and float32 within 1e-4, norm-wise relative
(see ``tests.conftest.assert_close``), on random architectures on both sides
of the BLAS threshold, for every activation, loss and optimizer.
"""
import importlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnfast
import nnfast.reference
from nnfast import _kernels
from tests.conftest import (
    ACTIVATIONS,
    DTYPES,
    LOSSES,
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
    rows_filling,
    stable_lr,
    threshold_depth,
)


def pair_and_data(config):
    """Build a (fast, reference) pair and N(0, 1) inputs with targets for the loss from a ``net_configs`` draw."""
    rng = np.random.default_rng(config["seed"])
    x, y = random_data(rng, config["n_samples"], config["layers"], config["loss"], config["soft_targets"])
    fast, ref = make_pair(
        config["layers"], x=x, seed=config["seed"], bias=config["bias"], loss=config["loss"],
        dtype=config["dtype"], activation=config["activation"], negative_slope=config["negative_slope"],
    )
    return fast, ref, x, y


# Optimizers for the fit comparisons, as factories of the learning rate and Adam's eps.
OPTIMIZERS = {
    "sgd": lambda lr, eps: nnfast.SGD(lr),
    "momentum": lambda lr, eps: nnfast.SGD(lr, momentum=0.9),
    "nesterov-weight-decay": lambda lr, eps: nnfast.SGD(lr, momentum=0.5, nesterov=True, weight_decay=0.1),
    "adam": lambda lr, eps: nnfast.Adam(lr, eps=eps),
    "adam-weight-decay": lambda lr, eps: nnfast.Adam(lr, betas=(0.8, 0.99), eps=eps, weight_decay=0.1),
    "adamw": lambda lr, eps: nnfast.AdamW(lr, eps=eps, weight_decay=0.1),
}


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
    lr = stable_lr(config["layers"], len(x), config["loss"], config["activation"], config["negative_slope"])
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
       epochs=st.integers(1, 3), shuffle_seed=st.integers(0, 2**63),
       optimizer=st.sampled_from(sorted(OPTIMIZERS)))
def test_fit_matches_reference(config, batch_size, epochs, shuffle_seed, optimizer):
    """A shuffled multi-epoch mini-batch fit gives the same history and parameters, with every optimizer."""
    fast, ref, x, y = pair_and_data(config)
    dtype = config["dtype"]
    lr = stable_lr(config["layers"], batch_size, config["loss"], config["activation"], config["negative_slope"])
    if optimizer.startswith("adam"):
        lr = 1e-3  # Adam's steps are about lr per parameter, whatever the gradient's scale
    # Adam divides by sqrt(v) + eps: a gradient entry that is zero up to
    # rounding becomes an update of order lr * rounding / eps. In float32
    # (rounding ~1e-7 of the gradient's terms), among the ~1e5 parameters of
    # a wide random net one entry that small is likely, so eps stays above it.
    eps = 1e-8 if dtype == np.float64 else 1e-3
    histories = []
    for net in (fast, ref):
        kwargs = dict(epochs=epochs, batch_size=batch_size, seed=shuffle_seed,
                      optimizer=OPTIMIZERS[optimizer](lr, eps))
        histories.append(net.fit(x, y, **kwargs))
    history, ref_history = histories
    assert (history.epochs, history.steps_per_epoch) == (ref_history.epochs, ref_history.steps_per_epoch)
    assert history.loss.dtype == np.float64
    assert_close(history.loss, ref_history.loss, dtype, "history")
    assert_close(history.epoch_loss, ref_history.epoch_loss, dtype, "epoch losses")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after fit")
    assert fast.optimizer.step_count == ref.optimizer.step_count == len(ref_history.loss)


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


EDGE_SHAPES = {
    "no-hidden-layer": ([4, 2], 9),
    "no-hidden-layer-1-sample": ([4, 2], 1),
    "1-sample": ([3, 5, 4, 2], 1),
    "width-1": ([1, 1, 1], 7),
    "width-1-1-sample": ([1, 1, 1, 1, 1], 1),
    "width-1-bottlenecks": ([5, 1, 7, 1, 3], 11),
    "wide-input": ([300, 1, 2], 3),
    "wide-hidden": ([2, 300, 300, 3], 40),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize(
    "layers, n_samples, loss",
    [
        pytest.param(layers, n_samples, loss, id=f"{loss}-{name}")
        for loss in LOSSES
        for name, (layers, n_samples) in EDGE_SHAPES.items()
        if not (loss == "cross_entropy" and layers[-1] < 2)  # needs two classes
    ],
)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_edge_shapes_match_reference(layers, n_samples, dtype, bias, loss):
    """No hidden layer, single samples and width-1 layers: every operation matches, for every loss."""
    rng = np.random.default_rng(len(layers) * 1000 + n_samples)
    x, y = random_data(rng, n_samples, layers, loss)
    fast, ref = make_pair(layers, x=x, seed=n_samples, bias=bias, loss=loss, dtype=dtype)
    assert_evaluation_agrees(fast, ref, x, y)
    lr = stable_lr(layers, n_samples, loss)
    assert_loss_close(fast.train_step(x, y, lr), ref.train_step(x, y, lr), y, loss, dtype)
    kwargs = dict(epochs=2, lr=lr, batch_size=2, seed=5)
    assert_close(fast.fit(x, y, **kwargs).loss, ref.fit(x, y, **kwargs).loss, dtype, "history")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters")


def assert_everything_agrees(layers, dtype, seed=0, n_samples=12, soft=False, optimizer="sgd", **options):
    """Evaluation, a train_step and a shuffled 3-epoch mini-batch fit agree, for a net built with ``options``."""
    loss = options.get("loss", "sse")
    rng = np.random.default_rng(seed)
    x, y = random_data(rng, n_samples, layers, loss, soft)
    fast, ref = make_pair(layers, x=x, seed=seed, dtype=dtype, **options)
    assert_evaluation_agrees(fast, ref, x, y)
    lr = stable_lr(layers, n_samples, loss)
    assert_loss_close(fast.train_step(x, y, lr), ref.train_step(x, y, lr), y, loss, dtype, "train_step")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after train_step")
    if optimizer.startswith("adam"):
        lr = 1e-2
    histories = [
        net.fit(x, y, epochs=3, batch_size=5, seed=seed + 1, optimizer=OPTIMIZERS[optimizer](lr, 1e-8))
        for net in (fast, ref)
    ]
    assert_close(histories[0].loss, histories[1].loss, dtype, "fit history")
    assert_close(params_of(fast), params_of(ref), dtype, "parameters after fit")
    # The fit moved the parameters: the comparison was not of two untouched nets.
    assert not np.array_equal(params_of(ref), params_of(make_pair(layers, x=x, seed=seed, dtype=dtype, **options)[1]))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_and_loss_matches_reference(activation, loss, dtype):
    """predict, forward, loss, gradients, train_step and a mini-batch fit, for each activation x loss."""
    assert_everything_agrees([4, 7, 5, 3], dtype, activation=activation, loss=loss, negative_slope=0.1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("loss, soft", [("cross_entropy", True), ("binary_cross_entropy", False)],
                         ids=["cross-entropy-probabilities", "binary-cross-entropy-hard-labels"])
def test_other_classification_targets_match_reference(loss, soft, dtype):
    """Class probabilities for cross_entropy and 0/1 targets for binary_cross_entropy."""
    assert_everything_agrees([4, 6, 3], dtype, loss=loss, soft=soft, activation="tanh")


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("negative_slope", [0.0, 0.01, 0.3, 1.0, 2.5])
def test_leaky_relu_slopes_match_reference(negative_slope, dtype):
    """leaky_relu with slope 0 (a ReLU), small, 1 (the identity) and above 1."""
    assert_everything_agrees([3, 8, 6, 2], dtype, activation="leaky_relu", negative_slope=negative_slope, seed=3)


PER_LAYER = {
    "activations": dict(activation=["tanh", "relu", "sigmoid"]),
    "activations-and-slope": dict(activation=["leaky_relu", "identity", "leaky_relu"], negative_slope=0.2),
    "bias-first-only": dict(bias=[True, False, False, False]),
    "bias-last-only": dict(bias=[False, False, False, True], activation="tanh"),
    "bias-alternating": dict(bias=[False, True, False, True], activation=["relu", "sigmoid", "leaky_relu"]),
    "everything": dict(activation=["sigmoid", "leaky_relu", "tanh"], bias=[True, False, True, False],
                       loss="cross_entropy", negative_slope=0.05),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("options", PER_LAYER.values(), ids=PER_LAYER.keys())
def test_per_layer_activations_and_biases_match_reference(options, dtype):
    """Per-hidden-layer activation lists and per-layer bias lists."""
    assert_everything_agrees([5, 6, 4, 7, 3], dtype, seed=2, **options)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS.keys())
@pytest.mark.parametrize("loss", LOSSES)
def test_every_optimizer_matches_reference(optimizer, loss, dtype):
    """Each optimizer's mini-batch fit, for each loss."""
    assert_everything_agrees([4, 9, 3], dtype, seed=5, loss=loss, activation="tanh", optimizer=optimizer)


def threshold_shapes():
    """(batch, fan_in, fan_out) whose first product, a batch of rows by fan_in, is on the
    loops and on BLAS in the build these nets get (the AVX2 one where the CPU has it)."""
    kernels = _kernels.for_layers([256, 5])
    matmul = importlib.import_module(kernels.dense.__name__.rsplit(".", 1)[0] + "._matmul")
    facts = matmul.crossover()
    cases = []
    for dtype in DTYPES:
        itemsize = np.dtype(dtype).itemsize
        depth = threshold_depth(facts, itemsize)
        rows = rows_filling(facts["loops_cache_bytes"], depth, itemsize, facts["crossover_vector_bytes"])
        for side, batch in (("loops", rows), ("blas", rows + 1)):
            cases.append(pytest.param(dtype, (batch, depth, 5), id=f"{np.dtype(dtype).name}-{side}"))
    return cases


@pytest.mark.parametrize("dtype, shape", threshold_shapes())
def test_first_layer_on_both_sides_of_blas_threshold(shape, dtype):
    """A first layer whose product is on either side of the crossover to BLAS matches the reference."""
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
    """The default init ("auto"): weights before a ReLU are He normal N(0, 2/fan_in), the
    output layer's Glorot normal N(0, 2/(fan_in + fan_out)); biases zero."""
    net = net_class([400, 300, 200], seed=0)
    hidden, output = net.weights
    assert abs(hidden.mean()) < 0.01 * np.sqrt(2 / 400)
    assert abs(hidden.std() / np.sqrt(2 / 400) - 1) < 0.01
    assert abs(output.std() / np.sqrt(2 / (300 + 200)) - 1) < 0.01
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
