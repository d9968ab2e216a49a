"""One net, many threads: what ``nnfast.Net``'s per-net lock (nnfast/_lock.pyx) promises.

- Readers (predict, predict_proba, predict_classes, forward, loss,
  gradients, loss_and_gradients, reading weights/biases/parameters, save,
  pickling/deepcopy) run in
  parallel and return, to the bit, what the same calls return one at a time.
- Writers (fit, partial_fit, train_step, assigning weights/biases,
  reset_optimizer) run one at a time per net; a fit's callback may train,
  assign and predict on the same net (the lock is reentrant for its owner).
- A reader running while a fit runs elsewhere sees the parameters after a
  whole number of steps, never half an update, and is let in after every
  step rather than starved until the fit ends.

Every thread records what it saw and the main thread asserts on it (an
assert inside a thread would not fail the test); every thread is joined
with a timeout, so a deadlock fails its test instead of hanging the run.
Expectations are computed beforehand, one call at a time, on the net itself
or on a twin put through the same calls in order. Nothing here asserts on
timing: liveness is shown by a reader seeing a state that existed only
while the writer was running.
"""
import contextlib
import copy
import hashlib
import pickle
import signal
import threading
import time
import traceback

import numpy as np
import pytest

import nnfast
import nnfast.reference
from tests.conftest import make_net, params_of, random_data

# Generous: a join waits this long before calling the thread deadlocked.
JOIN_TIMEOUT = 60.0


# -- helpers ----------------------------------------------------------------


def run_threads(*workers, timeout=JOIN_TIMEOUT):
    """Run each callable in its own thread, started together at a barrier; fail if one
    raised (with its traceback) or is still running after ``timeout`` seconds."""
    barrier = threading.Barrier(len(workers))
    failures = []

    def wrap(work):
        def run():
            try:
                barrier.wait(timeout)
                work()
            except BaseException:  # KeyboardInterrupt in a worker is a failure too
                failures.append(traceback.format_exc())

        return run

    threads = [threading.Thread(target=wrap(work), name=getattr(work, "__name__", "worker"), daemon=True)
               for work in workers]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    alive = [thread.name for thread in threads if thread.is_alive()]
    assert not alive, f"still running after {timeout:g} s (deadlocked?): {alive}; failures: {failures}"
    assert not failures, "a thread failed:\n" + "\n".join(failures)


def fingerprint(value):
    """Something equal for two results exactly when they are equal to the bit (dtype and
    shape included); a digest of the bytes, so that many states fit in memory."""
    if isinstance(value, (list, tuple)):
        return tuple(fingerprint(item) for item in value)
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, hashlib.blake2b(value.tobytes(), digest_size=16).digest())
    if isinstance(value, (float, np.floating)):
        return ("float", np.float64(value).tobytes())
    raise TypeError(f"no fingerprint for {type(value).__name__}")


def assert_unlocked(net):
    """Assert no thread reads, owns or modifies ``net``, and no one waits to."""
    if isinstance(net, nnfast.Net):
        lock = net._fast.lock
        state = dict(owner=lock.owner, depth=lock.depth, readers=lock.readers,
                     waiting_readers=lock.waiting_readers, modifying=lock.modifying,
                     modifier_waiting=lock.modifier_waiting)
        assert state == dict(owner=0, depth=0, readers=0, waiting_readers=0, modifying=False,
                             modifier_waiting=False), f"the lock is not released: {state}"
        return
    # The reference's RLock: free if another thread can take it at once.
    taken = []

    def probe():
        if net._lock.acquire(blocking=False):
            taken.append(True)
            net._lock.release()

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join(JOIN_TIMEOUT)
    assert taken, "the reference net's lock is still held"


def pool_of_states(layers, count, rng, dtype):
    """``count`` (weights, biases) sets for ``layers``, small enough to keep outputs tame."""
    states = []
    for _ in range(count):
        weights = [rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
                   for fan_in, fan_out in zip(layers[:-1], layers[1:])]
        biases = [0.1 * rng.standard_normal(fan_out) for fan_out in layers[1:]]
        states.append(([w.astype(dtype) for w in weights], [b.astype(dtype) for b in biases]))
    return states


# -- 1. readers in parallel return what they return one at a time ------------

# (layers, loss, activation, batch sizes): batches from one row (nnfast's
# loops) to 300 rows, where the widest products go to BLAS on CPUs whose L2 is
# 1 MB or less (nnfast._matmul.uses_blas_for); and hidden layers totalling
# 3,074 units, so that block_rows (85 in float64, 170 in float32) is below
# the largest batches, which predict, loss and gradients then run in row
# blocks. Its 1-unit bottlenecks keep each product small enough for OpenBLAS
# to run it on one thread, which keeps the test fast on a busy machine.
READER_NETS = [
    ([32, 64, 64, 4], "cross_entropy", "relu", [1, 6, 7, 33, 64, 300]),
    ([3, 4, 2], "binary_cross_entropy", "relu", [1, 2, 143, 144, 300]),
    ([1, 1024, 1, 1024, 1, 1024, 1], "mse", "tanh", [1, 2, 84, 85, 86, 171, 200]),
]


def reader_calls(net, x, y, path):
    """The read-only calls of the interface, each returning something ``fingerprint`` takes."""
    weights = np.linspace(0.25, 2.0, len(x))  # sample weights, all different
    calls = {
        "predict": lambda: net.predict(x),
        "predict (list)": lambda: net.predict(x.tolist()),  # the validating path
        "predict (Fortran order)": lambda: net.predict(np.asfortranarray(x)),
        "forward": lambda: net.forward(x),
        "loss": lambda: net.loss(x, y),
        "gradients": lambda: net.gradients(x, y),
        "loss_and_gradients": lambda: net.loss_and_gradients(x, y),
        "loss_and_gradients (sample_weight)": lambda: net.loss_and_gradients(x, y, sample_weight=weights),
        "weights": lambda: net.weights,
        "biases": lambda: net.biases,
        "parameters": lambda: net.parameters,
        "deepcopy": lambda: (lambda c: (c.weights, c.biases, c.predict(x)))(copy.deepcopy(net)),
        "pickle": lambda: (lambda c: (c.weights, c.biases))(pickle.loads(pickle.dumps(net))),
        "save": lambda: (lambda c: (c.weights, c.biases))(nnfast.load(net.save(path))),
    }
    if net.loss_name in ("cross_entropy", "binary_cross_entropy"):
        calls["predict_proba"] = lambda: net.predict_proba(x)
        calls["predict_classes"] = lambda: net.predict_classes(x)
    return calls


def readers_agree_with_one_at_a_time(net_class, dtype, tmp_path, n_threads, seconds, nets, names=None):
    """``n_threads`` threads make random ``reader_calls`` (those of ``names``, default all) on
    shared nets of ``nets`` for ``seconds``; every result must equal, to the bit, what
    the same call returned one at a time beforehand."""
    rng = np.random.default_rng(0)

    def calls_of(net, x, y, path):
        calls = reader_calls(net, x, y, path)
        return calls if names is None else {name: calls[name] for name in names}

    cases = []  # (name, net, x, y)
    for index, (layers, loss, activation, rows) in enumerate(nets):
        net = make_net(net_class, layers, seed=index, loss=loss, activation=activation, dtype=dtype)
        for n in rows:
            x, y = random_data(rng, n, layers, loss)
            cases.append((f"{layers} on {n} rows", net, x.astype(dtype), y))
    if net_class is nnfast.Net and len(nets) == len(READER_NETS):
        assert any(len(x) > net._fast.block_rows for _, net, x, _ in cases), "no batch runs in row blocks"
    # One at a time, first.
    expected = {}
    for case, (_, net, x, y) in enumerate(cases):
        for name, call in calls_of(net, x, y, tmp_path / "expected.npz").items():
            expected[case, name] = fingerprint(call())

    stop_at = time.monotonic() + seconds
    mismatches, counts = [], []

    def reader(seed):
        def work():
            local = np.random.default_rng(seed)
            path = tmp_path / f"reader{seed}.npz"
            done = 0
            while time.monotonic() < stop_at and len(mismatches) < 10:
                case = int(local.integers(len(cases)))
                label, net, x, y = cases[case]
                calls = calls_of(net, x, y, path)
                name = list(calls)[int(local.integers(len(calls)))]
                if fingerprint(calls[name]()) != expected[case, name]:
                    mismatches.append(f"{name} of {label} differs from the one-at-a-time result")
                done += 1
            counts.append(done)

        return work

    run_threads(*[reader(seed) for seed in range(n_threads)])
    assert not mismatches, mismatches
    assert sum(counts) >= n_threads, counts
    for _, net, _, _ in cases:
        assert_unlocked(net)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_parallel_readers_return_what_they_return_one_at_a_time(dtype, tmp_path):
    readers_agree_with_one_at_a_time(nnfast.Net, dtype, tmp_path, n_threads=8, seconds=1.0,
                                     nets=READER_NETS)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_parallel_parameters_and_loss_and_gradients_return_what_they_return_one_at_a_time(dtype, tmp_path):
    """The calls added after the test above was written, on their own so that they overlap
    each other often: reading ``parameters``, and ``loss_and_gradients`` with and without
    sample weights, at every batch size of ``READER_NETS`` (row blocks included)."""
    readers_agree_with_one_at_a_time(nnfast.Net, dtype, tmp_path, n_threads=8, seconds=0.5, nets=READER_NETS,
                                     names=["parameters", "loss_and_gradients",
                                            "loss_and_gradients (sample_weight)"])


# -- 2. a writer's steps, seen by readers: whole, and in order -------------

WRITER_LAYERS = [32, 64, 64, 4]


def probe_targets(net, probes):
    """Targets of ``net`` for the largest probe, for loss_and_gradients."""
    return np.zeros((len(probes[-1]), net.layers[-1]), dtype=net.dtype)


def record_views(views, probes, net, k):
    """Note under what each reader call returns on ``net`` that it is state ``k``."""
    for index, probe in enumerate(probes):
        views.setdefault((f"predict on {len(probe)} rows", fingerprint(net.predict(probe))), []).append(k)
    for kind in ("forward", "weights", "parameters", "loss_and_gradients"):
        views.setdefault((kind, read_view(net, probes, kind)), []).append(k)


def step_views(net, x, y, lr, n_steps, probes):
    """Return ``(views, twin)``: the views of the states p_0 .. p_N that ``n_steps``
    train_steps on a twin of ``net`` pass through (a full-batch plain SGD fit
    takes the same steps), and the twin after them."""
    twin = copy.deepcopy(net)
    views = {}
    record_views(views, probes, twin, 0)
    for k in range(1, n_steps + 1):
        twin.train_step(x, y, lr)
        record_views(views, probes, twin, k)
    return views, twin


def read_view(net, probes, kind):
    if kind == "forward":
        return fingerprint(net.forward(probes[-1]))
    if kind == "weights":
        return fingerprint(net.weights)
    if kind == "parameters":
        return fingerprint(net.parameters)
    if kind == "loss_and_gradients":
        return fingerprint(net.loss_and_gradients(probes[-1], probe_targets(net, probes)))
    rows = int(kind.split()[2])
    return fingerprint(net.predict(next(p for p in probes if len(p) == rows)))


def state_reader(net, probes, views, started, finished, failures, seen, seed):
    """A reader that maps every result to the whole-step states it could come from, checks
    the states it sees never go back, and reads once more after the writer has finished.
    It releases ``started`` after its first read."""
    kinds = sorted({kind for kind, _ in views})

    def work():
        local = np.random.default_rng(seed)
        last, to_release = 0, started
        try:
            while True:
                done = finished.is_set()
                kind = kinds[int(local.integers(len(kinds)))]
                states = views.get((kind, read_view(net, probes, kind)))
                if to_release is not None:
                    to_release.release()
                    to_release = None
                if states is None:
                    failures.append(f"{kind} after step {last}: matches the parameters after no whole step")
                    return
                later = [k for k in states if k >= last]
                if not later:
                    failures.append(f"{kind}: back to step {max(states)} after step {last}")
                    return
                last = min(later)
                seen.append(last)
                if done:
                    return
        finally:
            if to_release is not None:  # failed before its first read: do not keep the writer waiting
                to_release.release()

    return work


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("writer", ["train_step", "fit"])
def test_readers_see_a_concurrent_writer_after_whole_steps_in_order(writer, dtype):
    rng = np.random.default_rng(1)
    x, y = random_data(rng, 64, WRITER_LAYERS, "mse")
    x, y = x.astype(dtype), y.astype(dtype)
    probes = [rng.standard_normal((n, WRITER_LAYERS[0])).astype(dtype) for n in (1, 7, 64)]
    net = make_net(nnfast.Net, WRITER_LAYERS, seed=3, loss="mse", dtype=dtype)
    n_steps, lr = 400, 0.01
    views, twin = step_views(net, x, y, lr, n_steps, probes)

    n_readers = 4
    started, finished = threading.Semaphore(0), threading.Event()

    def write():
        try:
            # Once every reader is reading, so that they overlap the writer.
            for _ in range(n_readers):
                assert started.acquire(timeout=JOIN_TIMEOUT), "a reader never started"
            if writer == "train_step":
                for step in range(n_steps):
                    net.train_step(x, y, lr)
                    if step % 50 == 49:
                        # The steps take about 6 ms in all: pause now and then, so that
                        # readers busy in Python between their calls land between steps.
                        time.sleep(0.001)
            else:
                net.fit(x, y, epochs=n_steps, lr=lr)
        finally:
            finished.set()

    failures, seen = [], []
    run_threads(write, *[state_reader(net, probes, views, started, finished, failures, seen, seed)
                         for seed in range(n_readers)])
    assert not failures, failures
    np.testing.assert_array_equal(params_of(net), params_of(twin))
    assert any(0 < k < n_steps for k in seen), "no read happened while the writer ran: the test proved nothing"
    assert_unlocked(net)


# -- 3. an assignment of weights is seen whole or not at all -----------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_readers_see_one_whole_weight_assignment_or_another(dtype):
    rng = np.random.default_rng(2)
    net = make_net(nnfast.Net, WRITER_LAYERS, seed=4, loss="mse", dtype=dtype)
    (a, _), (b, _) = pool_of_states(WRITER_LAYERS, 2, rng, dtype)
    # Assigned as given, as float64 and in Fortran order: the conversions happen before the lock.
    assignments = [("A", a), ("B", b), ("A", [w.astype(np.float64) for w in a]),
                   ("B", [np.asfortranarray(w) for w in b])]
    probe = rng.standard_normal((20, WRITER_LAYERS[0])).astype(dtype)
    y = rng.standard_normal((20, WRITER_LAYERS[-1]))
    twin = copy.deepcopy(net)
    names = {}
    for name, weights in [("initial", None), ("A", a), ("B", b)]:
        if weights is not None:
            twin.weights = weights
        for kind, value in [("predict", twin.predict(probe)), ("weights", twin.weights),
                            ("loss", twin.loss(probe, y))]:
            names[kind, fingerprint(value)] = name

    stop_at = time.monotonic() + 0.5
    failures, seen, assigned = [], set(), []

    def write():
        while time.monotonic() < stop_at:
            name, weights = assignments[len(assigned) % len(assignments)]
            net.weights = weights
            assigned.append(name)

    def read():
        while time.monotonic() < stop_at and not failures:
            for kind, value in [("predict", net.predict(probe)), ("weights", net.weights),
                                ("loss", net.loss(probe, y))]:
                name = names.get((kind, fingerprint(value)))
                if name is None:
                    failures.append(f"{kind} matches neither the initial weights, A nor B: a mix")
                seen.add(name)

    run_threads(write, read, read, read)
    assert not failures, failures
    assert len(assigned) >= 2 and {"A", "B"} <= seen, (len(assigned), seen)
    assert_unlocked(net)


# -- 4. two fits at once run one after the other ----------------------------

FIT_SETUPS = {
    "compiled full-batch SGD with momentum": (lambda: nnfast.SGD(0.01, momentum=0.9), {}),
    "per-epoch callback, shuffled batches, Adam": (
        lambda: nnfast.Adam(1e-3), dict(batch_size=5, seed=7, callback=lambda epoch, history: None)),
}


def two_fits_run_one_after_the_other(net_class, dtype, setup, layers, epochs):
    make_optimizer, options = FIT_SETUPS[setup]
    rng = np.random.default_rng(5)
    data = [tuple(a.astype(dtype) for a in random_data(rng, 16, layers, "mse")) for _ in range(2)]
    net = make_net(net_class, layers, seed=6, loss="mse", dtype=dtype)
    # An epoch-0 fit gives the net its optimizer; both fits below continue with it.
    net.fit(*data[0], epochs=0, optimizer=make_optimizer())
    outcomes = {}
    for order in [(0, 1), (1, 0)]:
        twin = copy.deepcopy(net)
        losses = {i: twin.fit(*data[i], epochs=epochs[i], **options).loss for i in order}
        outcomes[order] = (params_of(twin), losses, twin.optimizer.step_count)

    histories = {}

    def fitter(i):
        def work():
            histories[i] = net.fit(*data[i], epochs=epochs[i], **options)

        return work

    run_threads(fitter(0), fitter(1))
    final = params_of(net)
    orders = [order for order, (params, _, _) in outcomes.items() if np.array_equal(final, params)]
    assert orders, "the parameters match neither order of the two fits: their steps interleaved"
    _, losses, step_count = outcomes[orders[0]]
    for i in (0, 1):
        np.testing.assert_array_equal(histories[i].loss, losses[i])
    steps = sum(len(histories[i].loss) for i in (0, 1))
    assert net.optimizer.step_count == step_count == steps
    assert_unlocked(net)


@pytest.mark.parametrize("setup", list(FIT_SETUPS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_two_fits_at_once_run_one_after_the_other(dtype, setup):
    two_fits_run_one_after_the_other(nnfast.Net, dtype, setup, WRITER_LAYERS, epochs=(150, 200))


# -- 5. a fit's callback may use its own net --------------------------------


def reentrant_callback(net, x2, y2, lr2, probe, weights, biases, log, states):
    """A callback that predicts, takes a train_step (on the fast and on the validating path)
    and assigns weights or biases on ``net``, logging what it got and noting in ``states``
    the prediction of each state it leaves the net in."""

    def note():
        states.add(fingerprint(net.predict(probe)))

    def callback(epoch, history):
        log.append(("predict", fingerprint(net.predict(probe))))
        batch = (x2, y2) if epoch % 2 else (x2.tolist(), y2.tolist())
        log.append(("train_step", net.train_step(*batch, lr2)))
        note()
        if epoch % 4 == 1:
            net.weights = weights
            note()
        elif epoch % 4 == 3:
            net.biases = biases
            note()
        log.append(("weights", fingerprint(net.weights)))

    return callback, note


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_a_callback_may_predict_train_and_assign_on_its_own_net(dtype):
    """The callback runs while its fit owns the net; its train_step and assignments
    reenter the lock (waiting for the concurrent readers to leave) instead of deadlocking,
    and the whole fit does what the same calls one after the other do."""
    rng = np.random.default_rng(7)
    x, y = (a.astype(dtype) for a in random_data(rng, 16, WRITER_LAYERS, "mse"))
    x2, y2 = (a.astype(dtype) for a in random_data(rng, 5, WRITER_LAYERS, "mse"))
    probe = rng.standard_normal((9, WRITER_LAYERS[0])).astype(dtype)
    [(weights, biases)] = pool_of_states(WRITER_LAYERS, 1, rng, dtype)
    epochs, lr, lr2 = 12, 0.01, 0.02
    net = make_net(nnfast.Net, WRITER_LAYERS, seed=8, loss="mse", dtype=dtype)

    # One call after the other on a twin: a full-batch plain SGD fit step is a train_step.
    twin = copy.deepcopy(net)
    expected_log, states = [], set()
    callback, note = reentrant_callback(twin, x2, y2, lr2, probe, weights, biases, expected_log, states)
    note()
    expected_loss = []
    for epoch in range(epochs):
        expected_loss.append(twin.train_step(x, y, lr))
        note()
        callback(epoch, None)

    log, finished, failures, results = [], threading.Event(), [], {}
    callback, _ = reentrant_callback(net, x2, y2, lr2, probe, weights, biases, log, set())

    def fit():
        try:
            results["history"] = net.fit(x, y, epochs=epochs, lr=lr, callback=callback)
        finally:
            finished.set()

    def read():
        while not finished.is_set():
            if fingerprint(net.predict(probe)) not in states:
                failures.append("a reader saw a state that the calls one after the other never pass through")
                return

    run_threads(fit, read, read, read)
    assert not failures, failures
    assert log == expected_log
    np.testing.assert_array_equal(results["history"].loss, expected_loss)
    np.testing.assert_array_equal(params_of(net), params_of(twin))
    assert_unlocked(net)


# -- 6. after an exception the lock is free ---------------------------------


def raise_in_callback(error):
    def callback(epoch, history):
        if epoch == 1:
            raise error

    return callback


def call_in_callback(call):
    def callback(epoch, history):
        if epoch == 1:
            call()

    return callback


def bad_weights(net):
    return [w[:, :-1] for w in net.weights]


# name: (the failing call on (net, x, y), the exception it raises)
FAILURES = {
    "callback raises": (
        lambda net, x, y: net.fit(x, y, epochs=4, lr=0.01, callback=raise_in_callback(RuntimeError("no"))),
        RuntimeError),
    "callback raises KeyboardInterrupt": (
        lambda net, x, y: net.fit(x, y, epochs=4, lr=0.01, callback=raise_in_callback(KeyboardInterrupt())),
        nnfast.TrainingInterrupted),
    "compiled fit diverges": (lambda net, x, y: net.fit(x, y, epochs=50, lr=1e300), nnfast.DivergenceError),
    "mini-batch fit with a callback diverges": (
        lambda net, x, y: net.fit(x, y, epochs=50, lr=1e300, batch_size=3, callback=lambda e, h: None),
        nnfast.DivergenceError),
    "train_step diverges": (lambda net, x, y: [net.train_step(x, y, 1e300) for _ in range(50)],
                            nnfast.DivergenceError),
    "train_step diverges in a callback": (
        lambda net, x, y: net.fit(x, y, epochs=4, lr=0.01,
                                  callback=call_in_callback(lambda: [net.train_step(x, y, 1e300) for _ in range(50)])),
        nnfast.DivergenceError),
    "bad weights assigned in a callback": (
        lambda net, x, y: net.fit(x, y, epochs=4, lr=0.01,
                                  callback=call_in_callback(lambda: setattr(net, "weights", bad_weights(net)))),
        ValueError),
    "fit on NaN": (lambda net, x, y: net.fit(np.where(x > 1, np.nan, x), y, epochs=3, lr=0.01), ValueError),
    "train_step on targets of the wrong shape": (lambda net, x, y: net.train_step(x, y[:, :1], 0.01), ValueError),
    "predict on the wrong number of features": (lambda net, x, y: net.predict(x[:, :-1]), ValueError),
    "weights of the wrong shapes": (lambda net, x, y: setattr(net, "weights", bad_weights(net)), ValueError),
    "gradients on too few targets": (lambda net, x, y: net.gradients(x, y[:-1]), ValueError),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_after_an_exception_the_lock_is_free(case):
    call, error = FAILURES[case]
    rng = np.random.default_rng(9)
    x, y = random_data(rng, 12, WRITER_LAYERS, "sse")
    net = make_net(nnfast.Net, WRITER_LAYERS, seed=10, loss="sse")
    finished, raised = threading.Event(), []

    def fail():
        try:
            call(net, x, y)
        except BaseException as exception:  # the KeyboardInterrupt case included
            raised.append(exception)
        finally:
            finished.set()

    def read():  # a reader alongside, so that the failing call meets a busy lock
        while not finished.is_set():
            # Not finite, after a step of lr=1e300 (that step was finite, so it was applied).
            assert net.predict(x).shape == y.shape

    run_threads(fail, read)
    assert len(raised) == 1 and isinstance(raised[0], error), raised
    assert_unlocked(net)

    # Another thread can train and predict at once, as a fresh net would.
    [(weights, biases)] = pool_of_states(WRITER_LAYERS, 1, rng, np.float64)
    twin = make_net(nnfast.Net, WRITER_LAYERS, seed=10, loss="sse")
    results = {}

    def train_and_predict(target):
        target.weights, target.biases = weights, biases
        target.fit(x, y, epochs=3, lr=1e-3)
        return target.predict(x)

    run_threads(lambda: results.setdefault("net", train_and_predict(net)))
    np.testing.assert_array_equal(results["net"], train_and_predict(twin))
    np.testing.assert_array_equal(params_of(net), params_of(twin))
    assert_unlocked(net)


# -- Ctrl-C: a thread waiting on a busy net answers it and leaves no trace ----


@contextlib.contextmanager
def sigint_raises():
    """Let SIGINT raise KeyboardInterrupt in the main thread inside the block only; one
    arriving later is counted in the yielded dict instead of interrupting the test run."""
    state = {"armed": True, "late": 0}

    def handler(signum, frame):
        if state["armed"]:
            raise KeyboardInterrupt("SIGINT sent by the test")
        state["late"] += 1

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        state["armed"] = False
        time.sleep(0.05)  # a pending handler runs here, disarmed
        signal.signal(signal.SIGINT, previous)


def interrupt_main_thread_once(condition, delay=0.0):
    """Start a thread that waits for ``condition()``, then ``delay`` seconds, then sends
    SIGINT to the main thread (as Ctrl-C would). Setting the thread's ``cancel`` event
    first stops it from sending; it sends anyway after JOIN_TIMEOUT, to free a main
    thread that hangs, and then leaves its ``condition_met`` False."""
    main = threading.main_thread().ident
    cancel = threading.Event()

    def send():
        deadline = time.monotonic() + JOIN_TIMEOUT
        while not condition() and time.monotonic() < deadline:
            if cancel.wait(0.001):
                return
        thread.condition_met = condition()
        time.sleep(delay)
        if not cancel.is_set():
            signal.pthread_kill(main, signal.SIGINT)

    thread = threading.Thread(target=send, daemon=True)
    thread.cancel, thread.condition_met = cancel, False
    thread.start()
    return thread


@contextlib.contextmanager
def interrupted_by(sigint, sender):
    """Around the one call that SIGINT should interrupt: afterwards, however it ended,
    a signal still to come is only counted as late, and a signal sent before the call
    was where the test wanted it fails the test."""
    try:
        yield
    finally:
        sender.cancel.set()
        sigint["armed"] = False
        assert joined(sender)
        assert sender.condition_met, "the call never reached the wait the signal was meant for"


class Gate:
    """Held as ``net.optimizer`` (a plain attribute), it makes ``copy.deepcopy(net)`` hold
    the net's read lock until ``release`` is set: a reader that stays as long as a test needs."""

    def __init__(self):
        self.entered, self.release = threading.Event(), threading.Event()

    def __deepcopy__(self, memo):
        self.entered.set()
        assert self.release.wait(JOIN_TIMEOUT), "the gate was never opened"
        return self


def started_thread(work):
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def joined(thread):
    thread.join(JOIN_TIMEOUT)
    return not thread.is_alive()


# The writer calls that wait for another thread's ownership to end.
OWNING_CALLS = {
    "assign weights": lambda net, x, y, weights: setattr(net, "weights", weights),
    "train_step": lambda net, x, y, weights: net.train_step(x, y, 0.01),
    "fit": lambda net, x, y, weights: net.fit(x, y, epochs=2, lr=0.01),
    "reset_optimizer": lambda net, x, y, weights: net.reset_optimizer(),
}


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
@pytest.mark.parametrize("call", list(OWNING_CALLS))
def test_ctrl_c_reaches_a_writer_waiting_for_another_threads_fit(call):
    rng = np.random.default_rng(11)
    x, y = random_data(rng, 8, WRITER_LAYERS, "mse")
    net = make_net(nnfast.Net, WRITER_LAYERS, seed=12, loss="mse")
    [(weights, _)] = pool_of_states(WRITER_LAYERS, 1, rng, np.float64)
    owning, release = threading.Event(), threading.Event()

    def callback(epoch, history):  # the fit owns the net while its callback waits
        owning.set()
        assert release.wait(JOIN_TIMEOUT)

    fitter = started_thread(lambda: net.fit(x, y, epochs=1, lr=0.01, callback=callback))
    try:
        assert owning.wait(JOIN_TIMEOUT)
        before = params_of(net)
        calling = threading.Event()
        with sigint_raises() as sigint:
            sender = interrupt_main_thread_once(calling.is_set, delay=0.1)
            with pytest.raises(KeyboardInterrupt), interrupted_by(sigint, sender):
                calling.set()
                OWNING_CALLS[call](net, x, y, weights)
        assert sigint["late"] == 0
        lock = net._fast.lock
        assert (lock.owner, lock.depth) == (fitter.ident, 1), "the interrupted waiter changed the ownership"
        np.testing.assert_array_equal(params_of(net), before)
    finally:
        release.set()
        assert joined(fitter)
    assert_unlocked(net)


def gated_reader(net):
    """Start a thread whose deepcopy of ``net`` holds the read lock until the gate opens."""
    gate = Gate()
    net.optimizer = gate
    reader = started_thread(lambda: copy.deepcopy(net))
    assert gate.entered.wait(JOIN_TIMEOUT)
    assert net._fast.lock.readers == 1
    return gate, reader


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
def test_ctrl_c_reaches_a_writer_waiting_for_readers_and_lets_new_readers_in():
    rng = np.random.default_rng(13)
    x, _ = random_data(rng, 8, WRITER_LAYERS, "mse")
    net = make_net(nnfast.Net, WRITER_LAYERS, seed=14, loss="mse")
    [(weights, _)] = pool_of_states(WRITER_LAYERS, 1, rng, np.float64)
    before, expected = params_of(net), net.predict(x)
    lock = net._fast.lock
    gate, reader = gated_reader(net)
    try:
        with sigint_raises() as sigint:
            # The assignment owns the net and waits for the reader, holding new readers back.
            sender = interrupt_main_thread_once(lambda: lock.modifier_waiting, delay=0.05)
            with pytest.raises(KeyboardInterrupt), interrupted_by(sigint, sender):
                net.weights = weights
        assert sigint["late"] == 0
        assert (lock.owner, lock.depth, lock.modifying, lock.modifier_waiting) == (0, 0, False, False)
        assert lock.readers == 1
        # A new reader gets in at once, beside the gated one.
        results = []
        run_threads(lambda: results.append(net.predict(x)))
        np.testing.assert_array_equal(results[0], expected)
    finally:
        gate.release.set()
        assert joined(reader)
        net.optimizer = None
    assert_unlocked(net)
    np.testing.assert_array_equal(params_of(net), before)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
@pytest.mark.parametrize("call", ["predict", "weights", "loss"])
def test_ctrl_c_reaches_a_reader_waiting_for_a_writer(call):
    rng = np.random.default_rng(15)
    x, y = random_data(rng, 8, WRITER_LAYERS, "mse")
    net = make_net(nnfast.Net, WRITER_LAYERS, seed=16, loss="mse")
    [(weights, _)] = pool_of_states(WRITER_LAYERS, 1, rng, np.float64)
    lock = net._fast.lock
    gate, reader = gated_reader(net)
    # A writer waits for the gated reader; readers arriving now wait behind it.
    writer = started_thread(lambda: setattr(net, "weights", weights))
    calls = {"predict": lambda: net.predict(x), "weights": lambda: net.weights, "loss": lambda: net.loss(x, y)}
    try:
        deadline = time.monotonic() + JOIN_TIMEOUT
        while not lock.modifier_waiting and time.monotonic() < deadline:
            time.sleep(0.001)
        calling = threading.Event()
        with sigint_raises() as sigint:
            sender = interrupt_main_thread_once(lambda: calling.is_set() and lock.waiting_readers > 0)
            with pytest.raises(KeyboardInterrupt), interrupted_by(sigint, sender):
                calling.set()
                calls[call]()
        assert sigint["late"] == 0
        assert (lock.readers, lock.waiting_readers, lock.modifier_waiting) == (1, 0, True)
    finally:
        gate.release.set()
        assert joined(reader) and joined(writer)
        net.optimizer = None
    assert_unlocked(net)
    for got, want in zip(net.weights, weights):
        np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals reach the main thread")
def test_ctrl_c_stops_a_compiled_fit_after_a_whole_step_and_frees_the_lock():
    rng = np.random.default_rng(17)
    x, y = random_data(rng, 16, WRITER_LAYERS, "mse")
    net = make_net(nnfast.Net, WRITER_LAYERS, seed=18, loss="mse")
    twin = copy.deepcopy(net)
    probe = x[:3].copy()
    initial = net.predict(probe)
    stop, changed = threading.Event(), threading.Event()

    def read():  # alongside the fit; it also tells the sender that the fit has stepped
        while not stop.is_set():
            if not np.array_equal(net.predict(probe), initial):
                changed.set()

    reader = started_thread(read)
    try:
        with sigint_raises() as sigint:
            sender = interrupt_main_thread_once(changed.is_set, delay=0.05)
            # Half a minute uninterrupted; Ctrl-C stops it within about 0.02 s.
            with pytest.raises(nnfast.TrainingInterrupted) as interrupted, interrupted_by(sigint, sender):
                net.fit(x, y, epochs=10**6, lr=1e-3)
        assert sigint["late"] == 0
    finally:
        stop.set()
        assert joined(reader)
    assert_unlocked(net)
    steps = len(interrupted.value.history.loss)
    assert steps > 0
    twin.fit(x, y, epochs=steps, lr=1e-3)
    np.testing.assert_array_equal(params_of(net), params_of(twin))
    assert net.optimizer.step_count == steps


# -- 7. a long fit lets readers in between its steps -------------------------

# About half a millisecond a step on 16 rows; each product small enough for one BLAS thread.
LIVENESS_LAYERS = [64] + [120] * 8 + [8]


def test_readers_are_let_in_between_the_steps_of_a_long_fit():
    """Without the fit letting waiting readers in after each step, a reader that
    arrives during the one compiled call would wait until it returns."""
    rng = np.random.default_rng(19)
    x, y = random_data(rng, 16, LIVENESS_LAYERS, "mse")
    probes = [rng.standard_normal((n, LIVENESS_LAYERS[0])) for n in (1, 5)]
    net = make_net(nnfast.Net, LIVENESS_LAYERS, seed=20, loss="mse")
    n_steps, lr = 300, 1e-3
    views, twin = step_views(net, x, y, lr, n_steps, probes)

    n_readers = 2
    started, finished = threading.Semaphore(0), threading.Event()
    during = []  # per read: whether it returned before the fit did

    def fit():
        try:
            for _ in range(n_readers):
                assert started.acquire(timeout=JOIN_TIMEOUT), "a reader never started"
            net.fit(x, y, epochs=n_steps, lr=lr)
        finally:
            finished.set()

    failures, seen = [], []
    readers = [state_reader(net, probes, views, started, finished, failures, seen, seed)
               for seed in range(n_readers)]

    def count_during():
        while not finished.is_set():
            net.predict(probes[0])
            during.append(not finished.is_set())

    run_threads(fit, *readers, count_during)
    assert not failures, failures
    assert sum(during) > 0, "no predict returned while the fit ran"
    assert any(0 < k < n_steps for k in seen), "no reader saw a state between the fit's first and last step"
    np.testing.assert_array_equal(params_of(net), params_of(twin))
    assert_unlocked(net)


# -- 8. stress: a random mix of every call on three shared nets ---------------


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def check_array(value, shape, dtype, what):
    check(isinstance(value, np.ndarray) and value.shape == shape and value.dtype == dtype,
          f"{what}: {type(value).__name__} {getattr(value, 'shape', '')} {getattr(value, 'dtype', '')}, "
          f"expected {shape} {np.dtype(dtype)}")
    check(np.isfinite(value).all(), f"{what} is not finite")


class Stress:
    """The nets, data and expectations of the stress test, and its operations.

    - ``read_only`` (float32, cross-entropy): only read; every result must equal the one
      computed before the threads started.
    - ``assigned`` (float64): only assigned weights or biases from a pool of three
      each; every read must be one of the nine (weights, biases) states.
    - ``trained`` (float32, binary cross-entropy): fit, partial_fit (with callbacks
      that train and predict, early stopping restoring the best epoch), train_step,
      reset_optimizer and assignments, beside reads, which must be finite and shaped
      right, and calls that must fail.
    """

    def __init__(self, tmp_path):
        rng = np.random.default_rng(21)
        self.tmp_path = tmp_path
        self.read_only = make_net(nnfast.Net, WRITER_LAYERS, seed=22, loss="cross_entropy", dtype=np.float32)
        self.read_cases = []
        for n in (1, 7, 64, 300):
            x, y = random_data(rng, n, WRITER_LAYERS, "cross_entropy")
            self.read_cases.append((x.astype(np.float32), y))
        self.expected = self.read_only_results(tmp_path / "expected.npz")

        self.assigned_layers = [16, 32, 3]
        self.assigned = make_net(nnfast.Net, self.assigned_layers, seed=23, loss="mse")
        pool = pool_of_states(self.assigned_layers, 2, rng, np.float64)
        self.weight_sets = [self.assigned.weights] + [w for w, _ in pool]
        self.bias_sets = [self.assigned.biases] + [b for _, b in pool]
        self.assigned_probe = rng.standard_normal((10, 16))
        twin = copy.deepcopy(self.assigned)
        self.assigned_states = {}
        for i, weights in enumerate(self.weight_sets):
            for j, biases in enumerate(self.bias_sets):
                twin.weights, twin.biases = weights, biases
                self.assigned_states[fingerprint(twin.predict(self.assigned_probe))] = (i, j)
        self.weight_prints = {fingerprint(w): i for i, w in enumerate(self.weight_sets)}
        self.bias_prints = {fingerprint(b): j for j, b in enumerate(self.bias_sets)}

        self.trained_layers = [8, 24, 24, 2]
        self.trained = make_net(nnfast.Net, self.trained_layers, seed=24, loss="binary_cross_entropy",
                                dtype=np.float32)
        self.trained.fit(*self.trained_data(rng, 4), epochs=0, optimizer=nnfast.Adam(1e-3))
        self.trained_pool = pool_of_states(self.trained_layers, 3, rng, np.float32)
        self.trained_x, self.trained_y = self.trained_data(rng, 40)

    def trained_data(self, rng, n):
        x, y = random_data(rng, n, self.trained_layers, "binary_cross_entropy")
        return x.astype(np.float32), y.astype(np.float32)

    def read_only_results(self, path):
        return {(case, name): fingerprint(call())
                for case, (x, y) in enumerate(self.read_cases)
                for name, call in reader_calls(self.read_only, x, y, path).items()}

    # -- the operations: each takes a Generator and a per-thread path -------

    def read_only_call(self, rng, path):
        case = int(rng.integers(len(self.read_cases)))
        calls = reader_calls(self.read_only, *self.read_cases[case], path)
        name = list(calls)[int(rng.integers(len(calls)))]
        check(fingerprint(calls[name]()) == self.expected[case, name],
              f"{name} on {len(self.read_cases[case][0])} rows differs from the one-at-a-time result")

    def assign(self, rng, path):
        if rng.integers(2):
            weights = self.weight_sets[int(rng.integers(3))]
            self.assigned.weights = weights if rng.integers(2) else [np.asfortranarray(w) for w in weights]
        else:
            biases = self.bias_sets[int(rng.integers(3))]
            self.assigned.biases = biases if rng.integers(2) else [b.tolist() for b in biases]

    def read_assigned(self, rng, path):
        net = self.assigned
        kind = int(rng.integers(4))
        if kind == 0:
            check(fingerprint(net.predict(self.assigned_probe)) in self.assigned_states,
                  "a prediction of the assigned net matches none of its nine states")
        elif kind == 1:
            check(fingerprint(net.weights) in self.weight_prints, "weights read match none assigned")
        elif kind == 2:
            check(fingerprint(net.biases) in self.bias_prints, "biases read match none assigned")
        else:
            snapshot = copy.deepcopy(net)
            state = (self.weight_prints.get(fingerprint(snapshot.weights)),
                     self.bias_prints.get(fingerprint(snapshot.biases)))
            check(self.assigned_states.get(fingerprint(snapshot.predict(self.assigned_probe))) == state,
                  f"a deepcopy of the assigned net holds no whole state: {state}")

    def train(self, rng, path):
        net, layers = self.trained, self.trained_layers
        x, y = self.trained_x, self.trained_y
        kind = int(rng.integers(7))
        if kind == 0:
            rows = int(rng.integers(1, len(x) + 1))
            loss = net.train_step(x[:rows], y[:rows], 0.01)
            check(np.isfinite(loss), "train_step's loss is not finite")
        elif kind == 1:
            optimizer = [nnfast.SGD(0.01, momentum=0.9), nnfast.Adam(1e-3), nnfast.AdamW(1e-3), None][
                int(rng.integers(4))]
            history = net.fit(x, y, epochs=int(rng.integers(1, 6)), optimizer=optimizer,
                              batch_size=int(rng.integers(1, len(x) + 1)), seed=int(rng.integers(100)))
            check(np.isfinite(history.loss).all(), "a fit's losses are not finite")
        elif kind == 2:
            def callback(epoch, history):  # reentrant: train and predict on the fitting net
                net.train_step(x[:5], y[:5], 0.01)
                check_array(net.predict(x[:3]), (3, layers[-1]), np.float32, "predict in a callback")

            net.fit(x, y, epochs=3, batch_size=8, seed=1, callback=callback)
        elif kind == 3:
            history = net.fit(x[:30], y[:30], epochs=6, lr=0.01, validation_data=(x[30:], y[30:]),
                              early_stopping=True, patience=2, seed=2)
            check(history.best_epoch is not None, "early stopping found no best epoch")
        elif kind == 4:
            net.partial_fit(x, y, batch_size=10, seed=3)
        elif kind == 5:
            net.reset_optimizer()
        else:
            weights, biases = self.trained_pool[int(rng.integers(3))]
            net.weights, net.biases = weights, biases

    def read_trained(self, rng, path):
        net, layers = self.trained, self.trained_layers
        rows = int(rng.integers(1, len(self.trained_x) + 1))
        x, y = self.trained_x[:rows], self.trained_y[:rows]
        out = (rows, layers[-1])
        kind = int(rng.integers(8))
        if kind == 0:
            check_array(net.predict(x), out, np.float32, "predict")
        elif kind == 1:
            probabilities = net.predict_proba(x)
            check_array(probabilities, out, np.float32, "predict_proba")
            check(((0 <= probabilities) & (probabilities <= 1)).all(), "probabilities outside [0, 1]")
        elif kind == 2:
            classes = net.predict_classes(x)
            check(classes.shape == out and set(np.unique(classes)) <= {0, 1}, "predict_classes")
        elif kind == 3:
            output, hidden = net.forward(x)
            check_array(output, out, np.float32, "forward")
            for size, layer in zip(layers[1:-1], hidden):
                check_array(layer, (rows, size), np.float32, "forward's hidden layer")
        elif kind == 4:
            check(np.isfinite(net.loss(x, y)), "loss is not finite")
        elif kind == 5:
            weight_grads, bias_grads = net.gradients(x, y)
            for grad, size in zip(weight_grads + bias_grads, [(a, b) for a, b in zip(layers, layers[1:])] + [
                    (b,) for b in layers[1:]]):
                check_array(grad, size, np.float32, "a gradient")
        elif kind == 6:
            snapshot = pickle.loads(pickle.dumps(net)) if rng.integers(2) else copy.deepcopy(net)
            check(np.isfinite(params_of(snapshot)).all(), "a copy's parameters are not finite")
            check_array(snapshot.predict(x), out, np.float32, "a copy's predict")
        else:
            for w, (fan_in, fan_out) in zip(net.weights, zip(layers, layers[1:])):
                check_array(w, (fan_in, fan_out), np.float32, "weights")

    def fail(self, rng, path):
        """Calls that must raise ValueError, on any of the nets, and leave them as they were."""
        net = [self.read_only, self.assigned, self.trained][int(rng.integers(3))]
        width = net.layers[0]
        calls = [
            lambda: net.predict(np.zeros((2, width + 1))),
            lambda: net.loss(np.zeros((2, width)), np.zeros((3, net.layers[-1]))),
            lambda: net.train_step(np.full((2, width), np.nan), np.zeros((2, net.layers[-1])), 0.01),
            lambda: net.fit(np.zeros((2, width)), np.zeros((2, net.layers[-1])), epochs=1, lr=-1.0),
            lambda: setattr(net, "weights", [w[:-1] for w in net.weights]),
        ]
        with pytest.raises(ValueError):
            calls[int(rng.integers(len(calls)))]()

    OPERATIONS = ("read_only_call", "assign", "read_assigned", "train", "read_trained", "fail")
    WEIGHTS = (4, 1, 3, 1, 3, 1)


def test_stress_a_random_mix_of_every_call_on_three_shared_nets(tmp_path):
    stress = Stress(tmp_path)
    stop_at = time.monotonic() + 3.0
    failures, ran = [], set()
    weights = np.array(Stress.WEIGHTS) / sum(Stress.WEIGHTS)

    def worker(seed):
        def work():
            rng = np.random.default_rng([25, seed])
            path = tmp_path / f"stress{seed}.npz"
            while time.monotonic() < stop_at and len(failures) < 10:
                name = Stress.OPERATIONS[int(rng.choice(len(weights), p=weights))]
                try:
                    getattr(stress, name)(rng, path)
                except Exception:
                    failures.append(f"{name}:\n{traceback.format_exc()}")
                ran.add(name)

        return work

    run_threads(*[worker(seed) for seed in range(6)])
    assert not failures, "\n".join(failures)
    assert ran == set(Stress.OPERATIONS), ran

    nets = [stress.read_only, stress.assigned, stress.trained]
    for net in nets:
        assert_unlocked(net)
    # Each net still predicts and trains as a net that never saw the threads.
    assert stress.read_only_results(tmp_path / "after.npz") == stress.expected
    stress.assigned.weights, stress.assigned.biases = stress.weight_sets[1], stress.bias_sets[2]
    assert stress.assigned_states[fingerprint(stress.assigned.predict(stress.assigned_probe))] == (1, 2)
    fresh = make_net(nnfast.Net, stress.trained_layers, seed=99, loss="binary_cross_entropy", dtype=np.float32)
    x, y = stress.trained_x, stress.trained_y
    for net in (stress.trained, fresh):
        net.weights, net.biases = stress.trained_pool[0]
        net.fit(x, y, epochs=3, optimizer=nnfast.Adam(1e-3), batch_size=7, seed=4)
        net.train_step(x, y, 0.01)
    np.testing.assert_array_equal(params_of(stress.trained), params_of(fresh))
    np.testing.assert_array_equal(stress.trained.predict(x), fresh.predict(x))
    for net in nets:
        assert_unlocked(net)


# -- 9. nnfast.reference.Net: one call at a time, under its RLock ------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_reference_readers_in_threads_return_what_they_return_one_at_a_time(dtype, tmp_path):
    readers_agree_with_one_at_a_time(nnfast.reference.Net, dtype, tmp_path, n_threads=4, seconds=0.3,
                                     nets=READER_NETS[:2])


@pytest.mark.parametrize("setup", list(FIT_SETUPS))
def test_reference_two_fits_at_once_run_one_after_the_other(setup):
    two_fits_run_one_after_the_other(nnfast.reference.Net, np.float64, setup, [8, 16, 3], epochs=(15, 20))


# -- regressions: bugs these tests found ----------------------------------------
#
# A test that cannot set up its situation fails with pytest.fail (through
# ``require``) rather than passing without having tested anything.


def require(condition, message):
    """Fail the test outright, not as the expected failure, unless ``condition``."""
    if not condition:
        pytest.fail(message)


def fit_in_thread_once_stepped(net, x, y, **options):
    """Start ``net.fit(x, y, **options)`` in a thread; return it once the parameters have
    changed, so that at least one step has run."""
    before = params_of(net)
    fitter = started_thread(lambda: net.fit(x, y, **options))
    deadline = time.monotonic() + JOIN_TIMEOUT
    while np.array_equal(params_of(net), before):
        if not fitter.is_alive() or time.monotonic() > deadline:
            pytest.fail("the fit took no step that a reader could see")
        time.sleep(0.001)
    return fitter


def test_save_during_a_fit_writes_the_parameters_of_one_moment(tmp_path, monkeypatch):
    rng = np.random.default_rng(27)
    x, y = random_data(rng, 16, WRITER_LAYERS, "mse")
    net = make_net(nnfast.Net, WRITER_LAYERS, seed=28, loss="mse")
    stop = threading.Event()
    # Stoppable: with a callback the fit returns once the callback says so.
    fitter = fit_in_thread_once_stepped(net, x, y, epochs=10**6, lr=1e-4, callback=lambda e, h: stop.is_set())
    # The save is slow where it writes the arrays: a fit that the save does not hold
    # back takes steps meanwhile.
    written = {}
    savez = np.savez

    def slow_savez(file, **arrays):
        written["params"] = arrays["params"].copy()
        time.sleep(0.05)
        savez(file, **arrays)

    monkeypatch.setattr(np, "savez", slow_savez)
    try:
        path = net.save(tmp_path / "during.npz")
    finally:
        stop.set()
        require(joined(fitter), "the fit did not stop")
    require("params" in written, "nnfast.io.save no longer writes through np.savez: rewrite this test")
    saved = nnfast.load(path)
    assert np.array_equal(saved._params, written["params"]), \
        "the saved parameters changed while they were written: a mix of several steps"


def test_a_copy_taken_during_a_fit_pairs_its_parameters_with_their_step_count():
    rng = np.random.default_rng(29)
    x, y = random_data(rng, 16, WRITER_LAYERS, "mse")
    net = make_net(nnfast.Net, WRITER_LAYERS, seed=30, loss="mse")
    twin = copy.deepcopy(net)
    n_steps = 10_000  # one compiled call, long enough to copy the net in the middle of it
    fitter = fit_in_thread_once_stepped(net, x, y, epochs=n_steps, optimizer=nnfast.Adam(1e-4))
    try:
        copies = {"deepcopy": copy.deepcopy(net), "pickle": pickle.loads(pickle.dumps(net))}
    finally:
        require(joined(fitter), "the fit did not end")
    final = params_of(net)
    for how, snapshot in copies.items():
        require(not np.array_equal(params_of(snapshot), final),
                f"the {how} was taken after the fit ended: make the fit longer")
    for how, snapshot in copies.items():
        steps = snapshot.optimizer.step_count
        replay = copy.deepcopy(twin)
        replay.fit(x, y, epochs=steps, optimizer=nnfast.Adam(1e-4))
        assert np.array_equal(params_of(snapshot), params_of(replay)), (
            f"the {how}'s parameters are not those after its optimizer's {steps} steps")


def test_a_reader_gets_the_same_bits_whichever_thread_holds_the_spare_workspace():
    rng = np.random.default_rng(31)
    layers, loss, activation, _ = READER_NETS[2]
    net = make_net(nnfast.Net, layers, seed=32, loss=loss, activation=activation)
    block_rows = net._fast.block_rows
    x, y = random_data(rng, block_rows + 28, layers, loss)  # more than a block
    big_x, big_y = random_data(rng, 3 * block_rows, layers, loss)
    # An ordinary step on a large batch: the net keeps its workspace as the spare.
    net.train_step(big_x, big_y, 1e-6)
    require(net._fast.spare_length > net._layout.workspace_length(block_rows),
            "the net keeps no spare workspace larger than a block of rows any more, so this "
            "test no longer sets up a spare of another size")

    one_at_a_time, in_callback, release = {}, threading.Event(), threading.Event()

    def callback(epoch, history):
        # Nothing else runs: the same calls one at a time, on the parameters the test reads.
        one_at_a_time["predict"] = net.predict(x)
        one_at_a_time["gradients"] = net.gradients(x, y)
        in_callback.set()
        release.wait(JOIN_TIMEOUT)

    fitter = started_thread(lambda: net.fit(x[:4], y[:4], epochs=1, lr=1e-6, callback=callback))
    stepper = None
    try:
        require(in_callback.wait(JOIN_TIMEOUT), "the fit never called its callback")
        # This train_step takes the spare workspace, then waits for the fit to end.
        stepper = started_thread(lambda: net.train_step(big_x, big_y, 1e-6))
        deadline = time.monotonic() + JOIN_TIMEOUT
        while net._fast.spare_length > 0:
            if time.monotonic() > deadline:
                pytest.fail("the waiting train_step never took the spare workspace")
            time.sleep(0.001)
        in_parallel = {"predict": net.predict(x), "gradients": net.gradients(x, y)}
    finally:
        release.set()
        require(joined(fitter) and (stepper is None or joined(stepper)), "the fit or the train_step hangs")
    require(net._fast.lock.owner == 0 and net._fast.lock.readers == 0, "the lock is not released")
    for name in ("predict", "gradients"):
        assert fingerprint(in_parallel[name]) == fingerprint(one_at_a_time[name]), (
            f"{name} on {len(x)} rows: other bits than the same call one at a time")
