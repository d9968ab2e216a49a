"""nnfast.Net against nnfast.reference.Net on the same data: train_step, fit, predict.

Each benchmark group holds one operation at one size and dtype, timed once
for each implementation, so pytest-benchmark's table (and
``bench/report.py``) compares them side by side. Sizes are ``(batch, n_in,
n_hidden, n_out)`` for a net with one hidden layer: the seed notebook's
toy problem, a small layer-sized one, and the classic two-layer tutorial.
"""
import numpy as np
import pytest

import nnfast
import nnfast.reference

IMPLEMENTATIONS = {"nnfast": nnfast.Net, "reference": nnfast.reference.Net}

SEED_SIZE = (4, 3, 3, 1)
SIZES = [
    pytest.param(SEED_SIZE, id="seed"),
    pytest.param((64, 32, 64, 4), id="64-32-64-4"),
    pytest.param((64, 1000, 100, 10), id="tutorial"),
]
# Latency of a single prediction, where per-call overhead is everything.
ONE_SAMPLE = pytest.param((1, 32, 64, 4), id="one-sample")

# Training benchmarks keep stepping one net for every round (a few 10^6 SGD
# steps at the seed size) instead of re-creating it: a fresh net per round
# (pedantic with setup) allows one call per round, so every timing would be
# a new net's first call, which allocates nnfast's scratch buffers, and the
# ~2 us seed-size calls would each carry the timer's own overhead. So the
# step must be stable for that long. lr must be > 0: a zero step is a
# special case an implementation may skip, and a frozen net is a state no
# training run is in. With the mean loss the gradient does not grow with
# batch * n_out, so one lr suits every size. Checked on this suite's data
# with 5e6 (seed), 3e5 and 3e4 (tutorial) full-batch steps per dtype: the
# loss falls to a plateau (its rounding floor, 1e-20 .. 1e-8, or a local
# minimum at the seed size) and stays there; every parameter stays finite
# and normal, and the smallest non-zero gradient entries are ~1e-16
# (float64) and ~1e-12 (float32), far above the subnormal range (2e-308,
# 1e-38) where x86 arithmetic slows down and would distort later rounds.
# _assert_healthy re-checks the parameters after every benchmark.
LOSS = "mse"
LR = 1e-3

# A fit round must stay short enough for pytest-benchmark to take several
# rounds within its time budget: the reference takes ~2 ms a step at the
# tutorial size, ~30 us at the seed size.
FIT_EPOCHS_SEED = 500
FIT_EPOCHS_LARGER = 20

implementations = pytest.mark.parametrize("implementation", list(IMPLEMENTATIONS))
dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


def _make_net(implementation, size, dtype):
    """A net of ``size`` with the same initial parameters for both implementations."""
    _, n_in, n_hidden, n_out = size
    return IMPLEMENTATIONS[implementation]([n_in, n_hidden, n_out], loss=LOSS, dtype=dtype, seed=0)


def _label(benchmark, operation, implementation, size, dtype, **extra):
    """Group the benchmark by operation, size and dtype; record what report.py reads."""
    dtype_name = np.dtype(dtype).name
    benchmark.group = f"{operation} {size} {dtype_name}"
    benchmark.extra_info.update(
        operation=operation, implementation=implementation, size=list(size), dtype=dtype_name, **extra
    )


def _assert_healthy(net):
    """Fail if training drove a parameter to a non-finite or subnormal value."""
    params = np.concatenate([array.ravel() for array in net.weights + net.biases])
    assert np.isfinite(params).all()
    magnitudes = np.abs(params)
    assert not ((magnitudes > 0) & (magnitudes < np.finfo(net.dtype).tiny)).any()


@implementations
@dtypes
@pytest.mark.parametrize("size", SIZES)
def test_train_step(benchmark, training_data, implementation, size, dtype):
    _label(benchmark, "train_step", implementation, size, dtype, lr=LR, loss=LOSS)
    x, y = training_data(size, dtype)
    net = _make_net(implementation, size, dtype)
    # The first call sizes nnfast's scratch buffers; keep it out of the timing.
    net.train_step(x, y, LR)
    loss = benchmark(net.train_step, x, y, LR)
    assert np.isfinite(loss)
    _assert_healthy(net)


@implementations
@dtypes
@pytest.mark.parametrize("size", SIZES)
def test_fit(benchmark, training_data, implementation, size, dtype):
    epochs = FIT_EPOCHS_SEED if size == SEED_SIZE else FIT_EPOCHS_LARGER
    _label(benchmark, "fit", implementation, size, dtype, epochs=epochs, steps=epochs, lr=LR, loss=LOSS)
    x, y = training_data(size, dtype)
    net = _make_net(implementation, size, dtype)
    net.train_step(x, y, LR)  # sizes the scratch buffers, as in test_train_step
    history = benchmark(net.fit, x, y, epochs=epochs, lr=LR, batch_size=None)
    assert len(history.loss) == epochs
    _assert_healthy(net)
    # Full batch: one step per epoch. None under --benchmark-disable.
    if benchmark.stats is not None:
        benchmark.extra_info["median_per_step_s"] = benchmark.stats.stats.median / epochs


@implementations
@dtypes
@pytest.mark.parametrize("size", [*SIZES, ONE_SAMPLE])
def test_predict(benchmark, training_data, implementation, size, dtype):
    _label(benchmark, "predict", implementation, size, dtype)
    x, _ = training_data(size, dtype)
    net = _make_net(implementation, size, dtype)
    net.predict(x)  # sizes the scratch buffers, as in test_train_step
    out = benchmark(net.predict, x)
    assert out.shape == (size[0], size[-1])


# Training features at one layer-sized problem: each activation, each loss and
# each optimizer, nnfast against the reference. Short rounds keep the module
# within a few minutes.
FEATURE_SIZE = (64, 32, 64, 4)
ACTIVATIONS = ["relu", "leaky_relu", "tanh", "sigmoid", "identity"]
LOSSES = ["sse", "mse", "cross_entropy", "binary_cross_entropy"]
OPTIMIZERS = {
    "SGD": lambda: nnfast.SGD(LR),
    "SGD-nesterov": lambda: nnfast.SGD(LR, momentum=0.9, nesterov=True),
    "Adam": lambda: nnfast.Adam(LR),
    "AdamW": lambda: nnfast.AdamW(LR),
}
FEATURE_FIT_EPOCHS = 20


def _feature_targets(loss, y):
    """Targets of the right kind for ``loss``: labels, probabilities or the raw ``y``."""
    if loss == "cross_entropy":
        return np.argmax(y, axis=1)
    if loss == "binary_cross_entropy":
        return (y > 0).astype(y.dtype)
    return y


def _time_feature_step(benchmark, training_data, implementation, dtype, operation, loss, **options):
    """Time train_step at FEATURE_SIZE for a net built with ``loss`` and ``options``."""
    _label(benchmark, operation, implementation, FEATURE_SIZE, dtype, lr=LR, loss=loss)
    x, y = training_data(FEATURE_SIZE, dtype)
    _, n_in, n_hidden, n_out = FEATURE_SIZE
    y = _feature_targets(loss, y)
    net = IMPLEMENTATIONS[implementation]([n_in, n_hidden, n_out], loss=loss, dtype=dtype, seed=0, **options)
    net.train_step(x, y, LR)
    assert np.isfinite(benchmark(net.train_step, x, y, LR))
    _assert_healthy(net)


@implementations
@dtypes
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.benchmark(max_time=0.25)
def test_train_step_activation(benchmark, training_data, implementation, dtype, activation):
    _time_feature_step(benchmark, training_data, implementation, dtype, f"train_step {activation}", LOSS,
                       activation=activation)


@implementations
@dtypes
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.benchmark(max_time=0.25)
def test_train_step_loss(benchmark, training_data, implementation, dtype, loss):
    _time_feature_step(benchmark, training_data, implementation, dtype, f"train_step {loss}", loss)


@implementations
@dtypes
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.benchmark(max_time=0.5)
def test_fit_optimizer(benchmark, training_data, implementation, dtype, optimizer):
    epochs = FIT_EPOCHS_LARGER
    _label(benchmark, f"fit {optimizer}", implementation, FEATURE_SIZE, dtype, epochs=epochs, lr=LR, loss=LOSS)
    x, y = training_data(FEATURE_SIZE, dtype)
    _, n_in, n_hidden, n_out = FEATURE_SIZE
    net = IMPLEMENTATIONS[implementation]([n_in, n_hidden, n_out], loss=LOSS, dtype=dtype, seed=0)
    net.fit(x, y, epochs=1, optimizer=OPTIMIZERS[optimizer]())  # the net keeps the optimizer
    history = benchmark(net.fit, x, y, epochs=epochs)
    assert len(history.loss) == epochs
    _assert_healthy(net)
