"""Time nnfast, the NumPy reference and the installed competitors in this process, without pytest.

``run_benchmarks`` times the rows of the performance issue's table that
need no special measurement (the whole seed ``fit``, training steps at
five sizes with NumPy's gemm rate beside them, and predictions) and
returns records shaped as pytest-benchmark's JSON, which
``nnfast._bench.table`` renders. The sizes, learning rate and loss are the
ones ``bench/test_targets.py`` uses; that suite adds the memory, thread
and subnormal rows and pytest-benchmark's calibration.

Every contender starts from the parameters of the same seeded nnfast net,
and its first call is checked against nnfast's (the loss of its first step,
or its predictions) before it is timed: a contender that computes
something else is left out with a note rather than timed.
"""
import statistics
import time

import numpy as np

import nnfast
import nnfast.reference
from nnfast._bench import competitors

__all__ = ["run_benchmarks", "draw_normal", "LR", "LOSS", "SEED_SIZE", "SEED_FIT_EPOCHS", "WIDE_SIZE", "STEP_ROWS",
           "PREDICT_ROWS", "QUICK", "FULL"]

# With the mean loss one learning rate suits every size, and a net keeps
# training across repeats without leaving the normal range.
LR = 1e-3
LOSS = "mse"
SEED_SIZE = (4, 3, 3, 1)
SEED_FIT_EPOCHS = 500
WIDE_SIZE = (256, 1024, 1024, 16)
# row -> (batch, n_in, n_hidden, n_out) of a training step
STEP_ROWS = {
    "step-seed": SEED_SIZE,
    "step-small": (64, 32, 64, 4),
    "step-tutorial": (64, 1000, 100, 10),
    "step-wide": WIDE_SIZE,
    "step-one-sample": (1, 1000, 100, 10),
}
# (row, size, dtype name) of the prediction lines
PREDICT_ROWS = [
    ("predict-one", (1, 32, 64, 4), "float64"),
    ("predict-one", (1, 32, 64, 4), "float32"),
    ("predict-batch", (1024, 1000, 100, 10), "float32"),
]
# The seed of every data draw (bench/conftest.py's too).
DATA_SEED = 20240611

# What a run covers: its rows, dtypes, and how long each timing takes.
FULL = dict(rows=["fit-seed", *STEP_ROWS, *sorted({row for row, _, _ in PREDICT_ROWS})],
            dtypes=("float64", "float32"), repeats=7, min_run_seconds=0.05)
# Under a minute on a 2-core machine with PyTorch and onnxruntime: no wide
# step (its reference step alone takes ~30 ms), float64 for the steps.
QUICK = dict(rows=["fit-seed", "step-seed", "step-small", "step-tutorial", "predict-one", "predict-batch"],
             dtypes=("float64",), repeats=3, min_run_seconds=0.01)

NETS = {"nnfast": nnfast.Net, "reference": nnfast.reference.Net}


def draw_normal(*shapes, dtype):
    """N(0, 1) arrays of ``shapes`` from a generator seeded with ``DATA_SEED``, one per shape, in order.

    Every entry has magnitude at least ``sqrt(finfo(dtype).tiny)``, so that
    products of two entries are normal numbers: subnormal operands can be
    a hundred times slower on x86 and would make a timing measure the data.
    """
    rng = np.random.default_rng(DATA_SEED)
    floor = np.sqrt(np.finfo(dtype).tiny)
    arrays = tuple(rng.standard_normal(shape, dtype=dtype) for shape in shapes)
    for array in arrays:
        # A draw this close to zero has probability ~1e-19 per entry;
        # with a fixed seed this either always holds or never does.
        if np.abs(array).min() < floor:
            raise RuntimeError("change DATA_SEED: a draw is too close to zero")
    return arrays


def _time(function, repeats, min_run_seconds):
    """The median over ``repeats`` runs of one call's time; each run repeats the call for >= ``min_run_seconds``."""
    number = 1
    while True:  # calibrate, as timeit.autorange does
        start = time.perf_counter()
        for _ in range(number):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= min_run_seconds:
            break
        number *= 10 if elapsed < min_run_seconds / 10 else 2
    times = [elapsed / number]
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(number):
            function()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def _start_net(size, dtype, loss=LOSS, bias=True, cls=nnfast.Net):
    _, n_in, n_hidden, n_out = size
    return cls([n_in, n_hidden, n_out], loss=loss, bias=bias, dtype=dtype, seed=0)


def _record(row, contender, size, dtype, median, **extra):
    if contender in competitors.REQUIRES:
        extra["version"] = competitors.version(contender)
    return {"extra_info": dict(operation=row, implementation=contender, size=list(size), dtype=dtype, **extra),
            "stats": {"median": median}}


def _trainers(size, dtype, x, y, loss=LOSS, bias=True):
    """``{contender: (net or trainer)}`` for every installed trainer, all at the same parameters."""
    trainers = {name: _start_net(size, dtype, loss, bias, cls) for name, cls in NETS.items()}
    start = _start_net(size, dtype, loss, bias)
    for name, cls in competitors.TRAINERS.items():
        if competitors.installed(name):
            trainers[name] = cls(start.weights, start.biases, x, y, LR, loss)
    return trainers


def _fit_seed_records(dtype, repeats, min_run_seconds, skipped):
    size = SEED_SIZE
    x, y = draw_normal((size[0], size[1]), (size[0], size[3]), dtype=dtype)
    records = []
    expected = _start_net(size, dtype, "sse", False).fit(x, y, epochs=SEED_FIT_EPOCHS, lr=LR).loss
    for name, trainer in _trainers(size, dtype, x, y, loss="sse", bias=False).items():
        if name in NETS:
            def call(trainer=trainer):
                return trainer.fit(x, y, epochs=SEED_FIT_EPOCHS, lr=LR, batch_size=None).loss
        else:
            def call(trainer=trainer):
                return trainer.fit(SEED_FIT_EPOCHS)
        losses = np.asarray(call(), dtype=np.float64)  # the first call compiles JAX's loop; the check too
        if not np.allclose(losses, expected, rtol=1e-3 if dtype == "float32" else 1e-9):
            skipped.append(f"{name} fit-seed {dtype}: its losses differ from nnfast's")
            continue
        records.append(_record("fit-seed", name, size, dtype, _time(call, repeats, min_run_seconds),
                               steps=SEED_FIT_EPOCHS, lr=LR))
    return records


def _step_records(row, dtype, repeats, min_run_seconds, skipped):
    size = STEP_ROWS[row]
    x, y = draw_normal((size[0], size[1]), (size[0], size[3]), dtype=dtype)
    expected = float(_start_net(size, dtype).train_step(x, y, LR))
    records = []
    for name, trainer in _trainers(size, dtype, x, y).items():
        call = (lambda trainer=trainer: trainer.train_step(x, y, LR)) if name in NETS else trainer.step
        if not np.isclose(float(call()), expected, rtol=1e-4 if dtype == "float32" else 1e-10):
            skipped.append(f"{name} {row} {dtype}: its first step's loss differs from nnfast's")
            continue
        records.append(_record(row, name, size, dtype, _time(call, repeats, min_run_seconds),
                               steps=1, lr=LR, loss=LOSS, flops=competitors.step_flops(size)))
    if row != "step-seed":  # at the seed size a product is a handful of multiply-adds: no gemm rate
        batch, n_in, n_hidden, n_out = size
        products = competitors.GemmProducts(*draw_normal(
            (batch, n_in), (n_in, n_hidden), (n_hidden, n_out), (batch, n_hidden), (batch, n_out), dtype=dtype))
        records.append(_record(row, "numpy-gemm", size, dtype, _time(products.run, repeats, min_run_seconds),
                               flops=competitors.step_flops(size)))
    return records


def _predict_records(row, size, dtype, repeats, min_run_seconds, skipped):
    x, _ = draw_normal((size[0], size[1]), (size[0], size[3]), dtype=dtype)
    start = _start_net(size, dtype)
    expected = start.predict(x)
    predictors = {name: _start_net(size, dtype, cls=cls) for name, cls in NETS.items()}
    for name, cls in competitors.PREDICTORS.items():
        if competitors.installed(name):
            predictors[name] = cls(start.weights, start.biases)
    records = []
    for name, predictor in predictors.items():
        out = predictor.predict(x)  # sizes nnfast's buffers, compiles JAX's function; the check
        rtol = 1e-4 if dtype == "float32" else 1e-12
        if not np.allclose(out, expected, rtol=rtol, atol=rtol * np.abs(expected).max()):
            skipped.append(f"{name} {row} {dtype}: its predictions differ from nnfast's")
            continue
        records.append(_record(row, name, size, dtype,
                               _time(lambda predictor=predictor: predictor.predict(x), repeats, min_run_seconds)))
    return records


def run_benchmarks(rows, dtypes, repeats, min_run_seconds, progress=None):
    """Time the table's ``rows`` at ``dtypes`` for every installed contender.

    Parameters
    ----------
    rows : list of str
        Rows of the table: ``"fit-seed"``, the keys of ``STEP_ROWS``,
        ``"predict-one"``, ``"predict-batch"`` (each at its own dtypes).
    dtypes : sequence of str
        ``"float64"`` and/or ``"float32"``, for the fit and step rows.
    repeats : int
        Timed runs per contender; the median is reported.
    min_run_seconds : float
        Each run repeats the call until it takes this long.
    progress : callable, optional
        Called with a short text before each row and dtype.

    Returns
    -------
    (dict, list of str)
        The records (``{"benchmarks": [...]}``, as pytest-benchmark's JSON
        has them) and the notes on contenders left out.
    """
    benchmarks, skipped = [], []
    for row in rows:
        for dtype in dtypes:
            if row in ("fit-seed", *STEP_ROWS) and progress:
                progress(f"{row} {dtype}")
            if row == "fit-seed":
                benchmarks += _fit_seed_records(dtype, repeats, min_run_seconds, skipped)
            elif row in STEP_ROWS:
                benchmarks += _step_records(row, dtype, repeats, min_run_seconds, skipped)
        for predict_row, size, dtype in PREDICT_ROWS:
            if predict_row == row:
                if progress:
                    progress(f"{row} {dtype}")
                benchmarks += _predict_records(row, size, dtype, repeats, min_run_seconds, skipped)
    return {"benchmarks": benchmarks}, skipped
