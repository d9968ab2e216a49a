"""One net, many threads: what ``nnfast.Net``'s per-net lock (nnfast/_lock.pyx) promises.

- Readers (predict, predict_proba, predict_classes, forward, loss,
  gradients, reading weights/biases, save, pickling/deepcopy) run in
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
import copy
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
            except BaseException:  # noqa: B036 - KeyboardInterrupt in a worker is a failure too
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
    """Something equal for two results exactly when they are equal to the bit (dtype and shape included)."""
    if isinstance(value, (list, tuple)):
        return tuple(fingerprint(item) for item in value)
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
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

# (layers, loss, activation, batch sizes): products on BLAS even for one row,
# but for the last layer below 7 rows (BLAS_MIN_WORK is 1728 multiply-adds);
# plain loops up to 143 rows and BLAS above (rows * 3 * 4); and hidden layers
# totalling 3,074 units, so that block_rows (85 in float64, 170 in float32) is
# below the largest batches, which predict, loss and gradients then run in row
# blocks. Its 1-unit bottlenecks keep each product small enough for OpenBLAS
# to run it on one thread, which keeps the test fast on a busy machine.
READER_NETS = [
    ([32, 64, 64, 4], "cross_entropy", "relu", [1, 6, 7, 33, 64, 300]),
    ([3, 4, 2], "binary_cross_entropy", "relu", [1, 2, 143, 144, 300]),
    ([1, 1024, 1, 1024, 1, 1024, 1], "mse", "tanh", [1, 2, 84, 85, 86, 171, 200]),
]


def reader_calls(net, x, y, path):
    """The read-only calls of the interface, each returning something ``fingerprint`` takes."""
    calls = {
        "predict": lambda: net.predict(x),
        "predict (list)": lambda: net.predict(x.tolist()),  # the validating path
        "predict (Fortran order)": lambda: net.predict(np.asfortranarray(x)),
        "forward": lambda: net.forward(x),
        "loss": lambda: net.loss(x, y),
        "gradients": lambda: net.gradients(x, y),
        "weights": lambda: net.weights,
        "biases": lambda: net.biases,
        "deepcopy": lambda: (lambda c: (c.weights, c.biases, c.predict(x)))(copy.deepcopy(net)),
        "pickle": lambda: (lambda c: (c.weights, c.biases))(pickle.loads(pickle.dumps(net))),
        "save": lambda: (lambda c: (c.weights, c.biases))(nnfast.load(net.save(path))),
    }
    if net.loss_name in ("cross_entropy", "binary_cross_entropy"):
        calls["predict_proba"] = lambda: net.predict_proba(x)
        calls["predict_classes"] = lambda: net.predict_classes(x)
    return calls


def readers_agree_with_one_at_a_time(net_class, dtype, tmp_path, n_threads, seconds, nets):
    rng = np.random.default_rng(0)
    cases = []  # (name, net, x, y)
    for index, (layers, loss, activation, rows) in enumerate(nets):
        net = make_net(net_class, layers, seed=index, loss=loss, activation=activation, dtype=dtype)
        if net_class is nnfast.Net and index == 2:
            assert net._fast.block_rows < max(rows), "the wide net should run its largest batches in blocks"
        for n in rows:
            x, y = random_data(rng, n, layers, loss)
            cases.append((f"{layers} on {n} rows", net, x.astype(dtype), y))
    # One at a time, first.
    expected = {}
    for case, (_, net, x, y) in enumerate(cases):
        for name, call in reader_calls(net, x, y, tmp_path / "expected.npz").items():
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
                calls = reader_calls(net, x, y, path)
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
