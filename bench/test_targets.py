"""The rows of the performance issue's targets table (#4), nnfast side by side with the others.

Each benchmark group is one row of the table at one dtype (and thread
count or phase, where the row has them). It times nnfast, the NumPy
reference and, where they are installed, the same network in PyTorch, JAX
and onnxruntime (``competitors.py``; a missing library skips its
benchmarks). The training rows also time NumPy's gemm on the step's matrix
products (``numpy-gemm``), the rate the issue measures a step against.
``bench/table.py`` runs this module and prints the table with each target
met or missed.

Conditions are those of ``test_net.py``: BLAS pinned to one thread
(``conftest.py``; the competitors pin their own pools), N(0, 1) data from a
fixed seed with no entry near the subnormal range, every contender
starting from nnfast's initial parameters (``seed=0``). Nets have one ReLU
hidden layer and a linear output, biases and the ``"mse"`` loss, except
the seed fit (no biases, ``"sse"``, as the seed notebook). Before timing,
each contender's first step, fit or prediction is compared with nnfast's,
so that no benchmark silently times something else.

Rows (``extra_info["operation"]``):

- ``fit-seed``: a whole 500-epoch full-batch ``fit`` at the seed size;
  JAX runs it as one jitted ``lax.scan``, PyTorch as a Python loop.
- ``step-seed``, ``step-small``, ``step-tutorial``, ``step-wide``,
  ``step-one-sample``: one full-batch SGD step (``train_step``).
- ``predict-one``, ``predict-batch``: ``predict`` of one sample and of 1024.
- ``threads``: the wide step with BLAS (and torch) on one and two threads.
- ``memory``: a mini-batch AdamW ``fit``, timed; ``extra_info["memory"]``
  holds tracemalloc's peak against the issue's bound, and whether the
  memory a fit keeps grows with its number of epochs.
- ``subnormal``: 100 steps at the start, in the middle and at the end of
  a long fit whose gradients and parameters decay to zero through the
  subnormal range; ``extra_info["long_fit"]`` has the whole trajectory.
"""
import time
import tracemalloc

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import nnfast
import nnfast.reference
# The sizes, learning rate and loss, shared with nnfast bench.
from nnfast._bench.run import LR, LOSS, SEED_FIT_EPOCHS, SEED_SIZE, STEP_ROWS, WIDE_SIZE
from nnfast._bench.run import PREDICT_ROWS as PREDICT_SIZES

# pyproject.toml's --import-mode=importlib keeps bench/ off sys.path, so the
# sibling modules are imported relative to this one; under pytest's default
# prepend mode bench/ is on sys.path and the relative import has no package.
try:
    from . import competitors
    from .test_net import _assert_healthy, _label
except ImportError:
    import competitors
    from test_net import _assert_healthy, _label

NETS = {"nnfast": nnfast.Net, "reference": nnfast.reference.Net}
TRAINERS = [*NETS, *competitors.TRAINERS]
PREDICTORS = [*NETS, *competitors.PREDICTORS]

# At the seed size a product is a handful of multiply-adds: no gemm rate.
GEMM_ROWS = [row for row in STEP_ROWS if row != "step-seed"]

PREDICT_ROWS = [pytest.param(row, size, np.dtype(dtype).type, id=f"{row}-{dtype}") for row, size, dtype in PREDICT_SIZES]

dtypes = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])


# -- contenders ----------------------------------------------------------------

def _require(contender):
    """Skip the test unless the libraries ``contender`` needs are installed."""
    for module in competitors.REQUIRES.get(contender, ()):
        pytest.importorskip(module, reason=f"{contender} needs {module}, which is optional")


def _label_contender(benchmark, row, contender, size, dtype, **extra):
    """Skip unless ``contender`` is installed; then ``test_net._label``, plus its libraries' versions."""
    _require(contender)
    if contender in competitors.REQUIRES:
        extra["version"] = competitors.version(contender)
    _label(benchmark, row, contender, size, dtype, **extra)


def _net(implementation, size, dtype, loss=LOSS, bias=True):
    """A net of ``size`` from ``seed=0``: nnfast and the reference start from the same parameters."""
    _, n_in, n_hidden, n_out = size
    return NETS[implementation]([n_in, n_hidden, n_out], loss=loss, bias=bias, dtype=dtype, seed=0)


def _start(size, dtype, loss=LOSS, bias=True):
    """A fresh nnfast net, whose parameters every contender starts from."""
    return _net("nnfast", size, dtype, loss, bias)


def _trainer(contender, size, dtype, x, y, loss=LOSS, bias=True):
    """nnfast's or the reference's net, or a competitor's trainer, at nnfast's initial parameters."""
    if contender in NETS:
        return _net(contender, size, dtype, loss, bias)
    start = _start(size, dtype, loss, bias)
    return competitors.TRAINERS[contender](start.weights, start.biases, x, y, LR, loss)


def _step_call(trainer, x, y):
    """``(function, args, kwargs)`` of one step.

    A net's own ``train_step`` is timed, not a wrapper: nnfast's seed-size
    step takes ~0.3 µs, and a Python wrapper would add a sixth to it.
    """
    if isinstance(trainer, tuple(NETS.values())):
        return trainer.train_step, (x, y, LR), {}
    return trainer.step, (), {}


def _fit_call(trainer, x, y, epochs):
    """``(function, args, kwargs)`` of a full-batch fit of ``epochs`` plain SGD steps."""
    if isinstance(trainer, tuple(NETS.values())):
        return trainer.fit, (x, y), dict(epochs=epochs, lr=LR, batch_size=None)
    return trainer.fit, (epochs,), {}


def _parameters(trainer):
    """``(weights, biases)`` of a net or a competitor, as NumPy arrays."""
    if isinstance(trainer, tuple(NETS.values())):
        return trainer.weights, trainer.biases
    return trainer.parameters()


def _flat(weights, biases):
    return np.concatenate([np.ravel(array) for array in [*weights, *biases]]).astype(np.float64)


def _assert_same_update(start, trainer, expected, dtype):
    """Fail unless ``trainer`` moved the parameters from ``start`` as nnfast moved them to ``expected``.

    The moves are compared rather than the parameters, which one step
    barely changes: a trainer that took no step at all would pass a
    comparison of parameters. float64 agrees to rounding; float32 loses
    ~1e-5 relative per step at the tutorial size to other summation orders.
    """
    origin = _flat(start.weights, start.biases)
    want = _flat(*_parameters(expected)) - origin
    got = _flat(*_parameters(trainer)) - origin
    rtol = 1e-3 if dtype == np.float32 else 1e-9
    assert np.linalg.norm(want) > 0
    assert np.linalg.norm(got - want) <= rtol * np.linalg.norm(want), "the contender computes another step"


def _assert_finite(trainer):
    assert np.isfinite(_flat(*_parameters(trainer))).all()


# -- training rows ---------------------------------------------------------------

@pytest.mark.parametrize("contender", TRAINERS)
@dtypes
def test_fit_seed(benchmark, training_data, contender, dtype):
    size = SEED_SIZE
    options = dict(loss="sse", bias=False)
    _label_contender(benchmark, "fit-seed", contender, size, dtype, steps=SEED_FIT_EPOCHS, lr=LR, **options)
    x, y = training_data(size, dtype)
    trainer = _trainer(contender, size, dtype, x, y, **options)
    function, args, kwargs = _fit_call(trainer, x, y, SEED_FIT_EPOCHS)
    # The first call compiles JAX's loop and sizes nnfast's buffers; it is also the check.
    function(*args, **kwargs)
    expected = _start(size, dtype, **options)
    expected.fit(x, y, epochs=SEED_FIT_EPOCHS, lr=LR)
    _assert_same_update(_start(size, dtype, **options), trainer, expected, dtype)
    benchmark(function, *args, **kwargs)
    _assert_finite(trainer)


def _time_step(benchmark, row, contender, size, dtype, x, y, **extra):
    """Check ``contender``'s first step against nnfast's, then time its steps from there."""
    _label_contender(benchmark, row, contender, size, dtype, steps=1, lr=LR, loss=LOSS,
                     flops=competitors.step_flops(size), **extra)
    trainer = _trainer(contender, size, dtype, x, y)
    function, args, kwargs = _step_call(trainer, x, y)
    loss = function(*args, **kwargs)
    expected = _start(size, dtype)
    np.testing.assert_allclose(loss, expected.train_step(x, y, LR), rtol=1e-4 if dtype == np.float32 else 1e-10)
    _assert_same_update(_start(size, dtype), trainer, expected, dtype)
    benchmark(function, *args, **kwargs)
    if contender in NETS:
        _assert_healthy(trainer)
    else:
        _assert_finite(trainer)


@pytest.mark.parametrize("contender", TRAINERS)
@dtypes
@pytest.mark.parametrize("row", list(STEP_ROWS))
@pytest.mark.benchmark(max_time=0.5)
def test_step(benchmark, training_data, row, dtype, contender):
    size = STEP_ROWS[row]
    _time_step(benchmark, row, contender, size, dtype, *training_data(size, dtype))


def _time_gemm(benchmark, standard_normal, row, size, dtype, **extra):
    """Time NumPy's matmul on the five products of a step at ``size``."""
    _label(benchmark, row, "numpy-gemm", size, dtype, flops=competitors.step_flops(size), **extra)
    batch, n_in, n_hidden, n_out = size
    products = competitors.GemmProducts(*standard_normal(
        (batch, n_in), (n_in, n_hidden), (n_hidden, n_out), (batch, n_hidden), (batch, n_out), dtype=dtype
    ))
    products.run()
    products.check()
    benchmark(products.run)


@dtypes
@pytest.mark.parametrize("row", GEMM_ROWS)
@pytest.mark.benchmark(max_time=0.5)
def test_step_gemm(benchmark, standard_normal, row, dtype):
    _time_gemm(benchmark, standard_normal, row, STEP_ROWS[row], dtype)


# -- prediction rows -------------------------------------------------------------

@pytest.mark.parametrize("contender", PREDICTORS)
@pytest.mark.parametrize(("row", "size", "dtype"), PREDICT_ROWS)
@pytest.mark.benchmark(max_time=0.5)
def test_predict(benchmark, training_data, row, size, dtype, contender):
    _label_contender(benchmark, row, contender, size, dtype)
    x, _ = training_data(size, dtype)
    net = _start(size, dtype)
    if contender in NETS:
        predictor = _net(contender, size, dtype)
    else:
        predictor = competitors.PREDICTORS[contender](net.weights, net.biases)
    # The first call sizes nnfast's buffers and compiles JAX's function; it is also the check.
    out = predictor.predict(x)
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, net.predict(x), rtol=rtol, atol=rtol * np.abs(out).max())
    benchmark(predictor.predict, x)


# -- two threads ---------------------------------------------------------------

THREADED = ["nnfast", "torch-nn", "numpy-gemm"]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("contender", THREADED)
@dtypes
@pytest.mark.benchmark(max_time=0.5)
def test_threads(benchmark, training_data, standard_normal, dtype, contender, threads):
    # JAX's pool is sized once per process (competitors.jax_module), so it has no two-thread run.
    _require(contender)
    torch = competitors.torch_module() if contender.startswith("torch") else None
    # Every pool threadpoolctl sees (both OpenBLAS and torch's OpenMP), for this test only.
    with threadpool_limits(limits=threads):
        blas = {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
        assert blas == {threads}, f"BLAS runs on {blas} threads"
        if torch is not None:
            torch.set_num_threads(threads)
        try:
            if contender == "numpy-gemm":
                _time_gemm(benchmark, standard_normal, "threads", WIDE_SIZE, dtype, threads=threads)
            else:
                _time_step(benchmark, "threads", contender, WIDE_SIZE, dtype, *training_data(WIDE_SIZE, dtype),
                           threads=threads)
        finally:
            if torch is not None:
                torch.set_num_threads(1)


# -- memory --------------------------------------------------------------------

# A data set large next to the parameters (33 MB of float32 against 0.4 MB)
# for the peak, and a small problem whose fit of 1000 epochs is quick
# (8,000 steps of ~10 µs) for the growth with epochs.
MEMORY_SIZE = (64, 1000, 100, 10)  # batch, n_in, n_hidden, n_out
MEMORY_SAMPLES = 8192
GROWTH_SIZE = (32, 32, 64, 4)
GROWTH_SAMPLES = 256
GROWTH_EPOCHS = (10, 1000)
# "plus a few MB" in the bound.
MEMORY_SLACK = 4 * 2**20
ADAMW_STATE = 2  # moment buffers of AdamW, each one parameter vector


def _traced_fit(net, x, y, epochs, batch_size):
    """Fit ``net`` under tracemalloc; return the peak and the NumPy blocks the fit left alive.

    Tracing must be on. The peak counts everything traced since tracing
    started, so whether it includes the data depends on when that was.

    Returns
    -------
    dict
        ``peak``: bytes traced at the fit's peak; ``numpy_blocks``: NumPy
        data buffers allocated during the fit and still alive after it
        (the returned History's included).
    """
    before = tracemalloc.take_snapshot()
    tracemalloc.reset_peak()
    net.fit(x, y, epochs=epochs, batch_size=batch_size, optimizer=nnfast.AdamW(LR), seed=0)
    _, peak = tracemalloc.get_traced_memory()
    after = tracemalloc.take_snapshot()
    # NumPy reports its array data to tracemalloc under its own domain; counting
    # only those blocks leaves out Python's small objects (ints above 256 are
    # allocated, smaller ones are cached, so a step count alone changes them).
    numpy_domain = tracemalloc.DomainFilter(inclusive=True, domain=np.lib.tracemalloc_domain)
    new = after.filter_traces([numpy_domain]).compare_to(before.filter_traces([numpy_domain]), "traceback")
    return dict(peak=peak, numpy_blocks=sum(stat.count_diff for stat in new))


def _record_bytes(epochs, steps):
    """Bytes of a fit's per-step and per-epoch records alive at its peak.

    The run's step losses and epoch losses (float64), room for copies of
    them in the returned History (it holds views today), and the per-epoch
    learning rates of the schedule: an upper bound of what a fit
    legitimately sizes by its number of epochs.
    """
    return 8 * (2 * (steps + epochs) + epochs)


def _peak_report(contender, x, y, batch_size):
    """Peak of a fit over ``x`` against the issue's bound, traced from before the data existed."""
    _, n_in, n_hidden, n_out = MEMORY_SIZE
    itemsize = x.itemsize
    tracemalloc.start()
    try:
        x, y = x.copy(), y.copy()  # so that the data counts towards the peak, as in a program
        net = _net(contender, MEMORY_SIZE, x.dtype)
        traced = _traced_fit(net, x, y, 1, batch_size)
    finally:
        tracemalloc.stop()
    steps = -(-x.shape[0] // batch_size)
    data = x.nbytes + y.nbytes
    parameters = net.n_params * itemsize * (2 + ADAMW_STATE)  # parameters, gradient, state
    activations = batch_size * (n_in + n_hidden + n_out) * itemsize
    return dict(
        peak=traced["peak"], data=data, parameters=parameters, activations=activations,
        records=_record_bytes(1, steps), slack=MEMORY_SLACK,
        bound=data + parameters + activations + _record_bytes(1, steps) + MEMORY_SLACK,
    )


def _growth_report(standard_normal):
    """The peak and the NumPy blocks a fit keeps, for GROWTH_EPOCHS epochs (nnfast)."""
    batch, n_in, n_hidden, n_out = GROWTH_SIZE
    x, y = standard_normal((GROWTH_SAMPLES, n_in), (GROWTH_SAMPLES, n_out), dtype=np.float32)
    steps_per_epoch = -(-GROWTH_SAMPLES // batch)
    report = []
    for epochs in GROWTH_EPOCHS:
        net = _net("nnfast", GROWTH_SIZE, np.float32)
        net.fit(x, y, epochs=1, batch_size=batch, seed=0, lr=LR)  # buffers sized before tracing
        tracemalloc.start()
        try:
            traced = _traced_fit(net, x, y, epochs, batch)
        finally:
            tracemalloc.stop()
        report.append(dict(traced, epochs=epochs, steps=epochs * steps_per_epoch,
                           records=_record_bytes(epochs, epochs * steps_per_epoch)))
    return report


@pytest.mark.parametrize("contender", list(NETS))
def test_memory(benchmark, standard_normal, contender):
    batch, n_in, _, n_out = MEMORY_SIZE
    _label(benchmark, "memory", contender, MEMORY_SIZE, np.float32, samples=MEMORY_SAMPLES,
           optimizer="AdamW", epochs=1)
    # Drawn in float64: 8 M float32 draws include an exact zero, which conftest refuses.
    x, y = (array.astype(np.float32) for array in standard_normal(
        (MEMORY_SAMPLES, n_in), (MEMORY_SAMPLES, n_out), dtype=np.float64
    ))
    memory = dict(peak=_peak_report(contender, x, y, batch))
    # The reference allocates on every step by design; its growth would take
    # seconds under tracemalloc and say nothing about nnfast.
    if contender == "nnfast":
        memory["growth"] = _growth_report(standard_normal)
    # The measurement works: the data alone is in the peak.
    assert memory["peak"]["peak"] >= memory["peak"]["data"]
    benchmark.extra_info["memory"] = memory
    net = _net(contender, MEMORY_SIZE, np.float32)
    net.fit(x, y, epochs=1, batch_size=batch, optimizer=nnfast.AdamW(LR), seed=0)
    history = benchmark(net.fit, x, y, epochs=1, batch_size=batch, seed=0)
    assert np.isfinite(history.loss).all()


# -- subnormal -------------------------------------------------------------------

# A fit with nothing to learn but zero targets under weight decay: every
# step shrinks the parameters by at least SUBNORMAL_LR * WEIGHT_DECAY = 5 %.
# The gradient, a product of several parameters, shrinks faster: it crosses
# the subnormal range first and becomes zero; then the parameters cross it
# and settle at the smallest subnormals, where SGD's decay rounds to no
# change (float64 after ~14,500 steps, float32 after ~2,000). The long fit
# runs once per dtype, window by window, recording each window's time and
# magnitudes; the benchmarks then time PHASE_STEPS steps from three of its
# states.
SUBNORMAL_SIZE = (64, 32, 64, 4)
SUBNORMAL_LR = 0.05
WEIGHT_DECAY = 1.0
LONG_FIT_STEPS = 16_000
PHASE_STEPS = 100  # steps per timed window, along the long fit and per benchmark round
PHASE_ROUNDS = 30
# start: the initial parameters; transit: the first window end at which most
# of the gradient's entries are subnormal (float64 after ~5,500 steps,
# float32 after ~700); end: after LONG_FIT_STEPS.
PHASES = ["start", "transit", "end"]

_long_fits = {}


def _magnitudes(arrays, dtype):
    """Largest magnitude and the fractions of subnormal and zero entries."""
    values = np.abs(np.concatenate([np.ravel(array) for array in arrays]))
    tiny = np.finfo(dtype).tiny
    return dict(max=float(values.max()), subnormal=float(np.mean((values > 0) & (values < tiny))),
                zero=float(np.mean(values == 0)))


def _state(net, x, y):
    """Magnitudes of the parameters and of the gradient at the net's current parameters."""
    weight_grads, bias_grads = net.gradients(x, y)
    return dict(params=_magnitudes(net.weights + net.biases, net.dtype),
                grads=_magnitudes(weight_grads + bias_grads, net.dtype))


def _long_fit(x, y, dtype):
    """Run the long fit once per dtype (nnfast); return its phases' parameters and its trajectory."""
    key = np.dtype(dtype).name
    if key not in _long_fits:
        net = _start(SUBNORMAL_SIZE, dtype)
        phases = dict(start=(net.weights, net.biases))
        net.fit(x, y, epochs=1, optimizer=nnfast.SGD(SUBNORMAL_LR, weight_decay=WEIGHT_DECAY))  # kept by the net
        trajectory = []
        for window in range(LONG_FIT_STEPS // PHASE_STEPS):
            began = time.perf_counter()
            net.fit(x, y, epochs=PHASE_STEPS)
            per_step = (time.perf_counter() - began) / PHASE_STEPS
            state = _state(net, x, y)
            if "transit" not in phases and state["grads"]["subnormal"] >= 0.5:
                phases["transit"] = net.weights, net.biases
            trajectory.append(dict(steps=1 + (window + 1) * PHASE_STEPS, per_step_s=per_step, **state))
        phases["end"] = net.weights, net.biases
        _long_fits[key] = dict(phases=phases, trajectory=trajectory)
    return _long_fits[key]


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("contender", list(NETS))
@dtypes
def test_subnormal(benchmark, training_data, dtype, contender, phase):
    x, _ = training_data(SUBNORMAL_SIZE, dtype)
    y = np.zeros((x.shape[0], SUBNORMAL_SIZE[-1]), dtype=dtype)
    long_fit = _long_fit(x, y, dtype)
    weights, biases = long_fit["phases"][phase]
    net = _net(contender, SUBNORMAL_SIZE, dtype)
    net.fit(x, y, epochs=1, optimizer=nnfast.SGD(SUBNORMAL_LR, weight_decay=WEIGHT_DECAY))  # kept by the net

    def restore():
        net.weights, net.biases = weights, biases

    restore()
    extra = dict(long_fit=dict(steps=LONG_FIT_STEPS, trajectory=long_fit["trajectory"])) if contender == "nnfast" else {}
    _label(benchmark, "subnormal", contender, SUBNORMAL_SIZE, dtype, phase=phase, steps=PHASE_STEPS,
           lr=SUBNORMAL_LR, weight_decay=WEIGHT_DECAY, state=_state(net, x, y), **extra)
    # Every round starts from the same parameters: from the start the net would
    # decay away from them, and the rounds would time ever later steps.
    benchmark.pedantic(net.fit, (x, y), dict(epochs=PHASE_STEPS), setup=restore, rounds=PHASE_ROUNDS)
    assert np.isfinite(_flat(net.weights, net.biases)).all()
