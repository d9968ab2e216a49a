"""Ctrl-C and failures inside long compiled loops.

A real SIGINT is sent to a child process while it runs a compiled ``fit``
(or a long ``predict``, ``loss`` or ``gradients``): the child must raise
within 0.1 s or one unit of work (a training step, a row block), whichever
is longer, keep the parameters of the last completed step, and report the
losses so far. An exception from a callback, or a MemoryError between
epochs, must leave the net as consistent as a fit that ended there.
"""
import copy
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import nnfast
import nnfast.reference
from tests.conftest import params_of

# Ctrl-C must stop a fit within 0.1 s or one step, whichever is longer (issue 8).
LATENCY = 0.1
# Runs of a child whose latency is over the bound before the test fails (see assert_stops_in_time).
ATTEMPTS = 3

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix",
                                reason="sends SIGINT to a child process (POSIX)")


# Prepended to every child's code. Python's C-level handler writes the number of each
# signal to the wakeup fd as the signal is delivered; a thread blocked on the other end
# (the compiled loops run without the GIL, so it gets it at once) notes the time. The
# latency is measured from there, not from the parent's kill(): the time a busy machine
# takes to schedule the child and deliver the signal is not nnfast's to answer for.
SIGNAL_WATCH = """
import signal, socket, threading, time

_wake_read, _wake_write = socket.socketpair()
_wake_write.setblocking(False)
signal.set_wakeup_fd(_wake_write.fileno())
_delivered = []
_watcher = threading.Thread(target=lambda: (_wake_read.recv(1), _delivered.append(time.monotonic())),
                            daemon=True)
_watcher.start()


def delivered():
    \"\"\"When SIGINT reached this process (time.monotonic).\"\"\"
    _watcher.join(10)
    return _delivered[0]
"""


def run_child(code, delay):
    """Run ``code`` in a child Python (after ``SIGNAL_WATCH``); once it prints "started",
    wait ``delay`` s, send SIGINT, and return the JSON the child prints last, with the
    time of the kill() as ``"sent"``."""
    # This same nnfast: the installed one, or the in-place build PYTHONPATH names.
    package_root = os.path.dirname(os.path.dirname(nnfast.__file__))
    paths = [package_root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(paths))
    child = subprocess.Popen([sys.executable, "-c", SIGNAL_WATCH + textwrap.dedent(code)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=package_root)
    try:
        assert child.stdout.readline().strip() == "started", child.stderr.read()
        time.sleep(delay)
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    result["sent"] = sent
    return result


def assert_stops_in_time(code, delay):
    """Run the child ``code`` (see ``run_child``) and assert it caught the interrupt within
    the bound; return what it printed.

    The child reports ``caught`` (the time it caught the exception), ``delivered()`` and
    ``unit``: the time one unit of work takes, which it measured before "started". The
    bound is ``LATENCY`` plus one unit (the signal may land just after a unit began),
    from the signal's delivery. A busy machine can still stall the child after the
    delivery, so a run over the bound is repeated, up to ``ATTEMPTS`` runs in all: a
    loop that does not poll in time fails every one of them.
    """
    runs = []
    for _ in range(ATTEMPTS):
        result = run_child(code, delay)
        assert result["sent"] <= result["delivered"], "the watcher saw a signal before the SIGINT"
        latency, bound = result["caught"] - result["delivered"], LATENCY + result["unit"]
        runs.append(f"{latency * 1e3:.1f} ms from delivery ({(result['caught'] - result['sent']) * 1e3:.1f} ms "
                    f"from kill), bound {bound * 1e3:.1f} ms")
        if latency <= bound:
            break
    print("SIGINT to the exception: " + "; ".join(runs))
    assert latency <= bound, f"not within 0.1 s or one unit of work in {ATTEMPTS} runs: " + "; ".join(runs)
    return result


FIT_CHILD = """
import json, time
import numpy as np
import nnfast

rng = np.random.default_rng(0)
x, y = rng.standard_normal((64, 32)), rng.standard_normal((64, 4))
net = nnfast.Net([32, 64, 4], dtype=np.{dtype}, seed=1)
twin = nnfast.Net([32, 64, 4], dtype=np.{dtype}, seed=1)
probe = nnfast.Net([32, 64, 4], dtype=np.{dtype}, seed=1)
start = time.monotonic()
probe.fit(x, y, epochs=2000, lr=1e-4)
unit = (time.monotonic() - start) / 2000   # one step
print("started", flush=True)
try:
    net.fit(x, y, epochs=5 * 10**6, lr=1e-4)   # a minute or more of steps, one compiled call
    raise SystemExit("the fit was not interrupted")
except nnfast.TrainingInterrupted as error:
    caught = time.monotonic()
    history, keyboard = error.history, isinstance(error, KeyboardInterrupt)
steps = len(history.loss)
replay = twin.fit(x, y, epochs=steps, lr=1e-4)
print(json.dumps(dict(
    caught=caught, delivered=delivered(), unit=unit, steps=steps, epochs=history.epochs, keyboard=keyboard,
    same_params=all(np.array_equal(a, b) for a, b in zip(net.weights + net.biases, twin.weights + twin.biases)),
    same_losses=bool(np.array_equal(history.loss, replay.loss)),
    step_count=net.optimizer.step_count,
    lock_free=net._fast.lock.owner == 0 and not net._fast.lock.modifying,
    continues=bool(np.isfinite(net.fit(x, y, epochs=3, lr=1e-4).loss).all()),
)))
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigint_stops_a_compiled_fit_after_a_whole_step(dtype):
    result = assert_stops_in_time(FIT_CHILD.format(dtype=dtype), delay=0.5)
    assert result["keyboard"], "TrainingInterrupted must be a KeyboardInterrupt"
    assert result["steps"] > 0 and result["epochs"] == result["steps"]  # full batch: a step an epoch
    assert result["same_params"], "the net must hold the parameters after its last completed step"
    assert result["same_losses"]
    assert result["step_count"] == result["steps"]
    assert result["lock_free"] and result["continues"]


MINIBATCH_CHILD = """
import json, time
import numpy as np
import nnfast

rng = np.random.default_rng(0)
x, labels = rng.standard_normal((300, 8)), rng.integers(0, 3, 300)
net = nnfast.Net([8, 16, 3], loss="cross_entropy", seed=1)
options = dict(batch_size=7, seed=0, validation_fraction=0.2, early_stopping=True, patience=10**9)
probe = nnfast.Net([8, 16, 3], loss="cross_entropy", seed=1)
start = time.monotonic()
probe_steps = len(probe.fit(x, labels, epochs=50, optimizer=nnfast.Adam(1e-3), **options).loss)
unit = (time.monotonic() - start) / probe_steps   # a step, with its share of the epochs' validation
print("started", flush=True)
try:
    net.fit(x, labels, epochs=10**6, optimizer=nnfast.Adam(1e-3), **options)
    raise SystemExit("the fit was not interrupted")
except nnfast.TrainingInterrupted as error:
    caught = time.monotonic()
    history = error.history
print(json.dumps(dict(
    caught=caught, delivered=delivered(), unit=unit, steps=len(history.loss), step_count=net.optimizer.step_count,
    epochs=history.epochs, epoch_losses=len(history.epoch_loss), val_losses=len(history.val_loss),
    finite=bool(all(np.isfinite(w).all() for w in net.weights)),
    moments_finite=bool(np.isfinite(net.optimizer.buffers).all()),
)))
"""


def test_sigint_mid_epoch_keeps_the_optimizer_in_step():
    """Interrupted between two mini-batches of an epoch: the step count matches the
    steps recorded, and the epoch records cover the whole epochs only."""
    result = assert_stops_in_time(MINIBATCH_CHILD, delay=0.5)
    assert result["step_count"] == result["steps"] > 0
    assert result["epoch_losses"] == result["val_losses"] == result["epochs"]
    assert result["finite"] and result["moments_finite"]


BLOCKS_CHILD = """
import json, time
import numpy as np
import nnfast


def flat(result):
    if isinstance(result, (list, tuple)):
        return np.concatenate([flat(item) for item in result])
    return np.ravel(result)


net = nnfast.Net([64, 512, 512, 4], seed=1)
x, y = np.ones((400_000, 64)), np.zeros((400_000, 4))   # 1,569 row blocks, seconds of work
call = dict(predict=lambda x, y: net.predict(x), loss=net.loss, gradients=net.gradients)["{call}"]
assert net._fast.block_rows < 400_000
times = []
for _ in range(3):
    start = time.monotonic()
    call(x[:net._fast.block_rows], y[:net._fast.block_rows])
    times.append(time.monotonic() - start)
unit = sorted(times)[1]   # one row block
before = flat(call(x[:5], y[:5]))
print("started", flush=True)
try:
    call(x, y)
    raise SystemExit("{call} was not interrupted")
except KeyboardInterrupt:
    caught = time.monotonic()
print(json.dumps(dict(caught=caught, delivered=delivered(), unit=unit,
                      same=bool(np.array_equal(flat(call(x[:5], y[:5])), before)),
                      lock_free=net._fast.lock.readers == 0)))
"""


@pytest.mark.parametrize("call", ["predict", "loss", "gradients"])
def test_sigint_stops_a_long_call_between_row_blocks(call):
    """The README's claim: a long predict, loss or gradients stops between two row blocks,
    and the net answers as before afterwards."""
    result = assert_stops_in_time(BLOCKS_CHILD.format(call=call), delay=0.3)
    assert result["same"] and result["lock_free"]


# -- failures between epochs --------------------------------------------------


def data(rows=40):
    rng = np.random.default_rng(3)
    return rng.standard_normal((rows, 5)), rng.standard_normal((rows, 2))


@pytest.mark.parametrize("failure", [MemoryError, RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_an_exception_between_epochs_leaves_the_net_as_after_those_epochs(failure, optimizer):
    """The net, its optimizer's state and step count are exactly those of a fit of
    the epochs done, the lock is free, and training goes on from there."""
    x, y = data()
    make = (lambda: nnfast.SGD(0.01, momentum=0.9)) if optimizer == "sgd" else (lambda: nnfast.Adam(1e-2))
    net = nnfast.Net([5, 7, 2], seed=2)
    twin = copy.deepcopy(net)

    def callback(epoch, history):
        if epoch == 2:
            raise failure("out of luck")

    expected = KeyboardInterrupt if failure is KeyboardInterrupt else failure
    with pytest.raises(expected, match="out of luck"):
        net.fit(x, y, epochs=10, batch_size=8, optimizer=make(), seed=5, callback=callback)
    twin.fit(x, y, epochs=3, batch_size=8, optimizer=make(), seed=5)
    np.testing.assert_array_equal(params_of(net), params_of(twin))
    assert net.optimizer.step_count == twin.optimizer.step_count == 15
    np.testing.assert_array_equal(net.optimizer.buffers, twin.optimizer.buffers)
    lock = net._fast.lock
    assert (lock.owner, lock.depth, lock.readers, lock.modifying) == (0, 0, 0, False)
    done = []
    worker = threading.Thread(target=lambda: done.append(net.fit(x, y, epochs=2, batch_size=8)))
    worker.start()
    worker.join(timeout=30)
    assert done, "another thread could not train the net after the exception"


def test_keyboard_interrupt_from_a_callback_carries_the_history():
    x, y = data()
    net = nnfast.Net([5, 7, 2], seed=2)

    def callback(epoch, history):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(nnfast.TrainingInterrupted) as caught:
        net.fit(x, y, epochs=10, batch_size=8, lr=0.01, seed=5, callback=callback)
    assert caught.value.history.epochs == 2
    assert len(caught.value.history.loss) == 10


@pytest.mark.parametrize("net_class", [nnfast.Net, nnfast.reference.Net], ids=["fast", "reference"])
@pytest.mark.parametrize("batch_size", [4, 10], ids=["mini-batches", "full-batch"])
def test_a_cancel_flag_stops_a_fit_after_its_current_step(net_class, batch_size):
    """What nnfast.Ensemble does to its worker threads' fits on Ctrl-C: with the flag of
    ``_training.cancelling`` set, a fit stops after one step (and, if that ended an epoch,
    its bookkeeping), keeping that step, and raises TrainingInterrupted."""
    from nnfast import _training

    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    net, twin = (net_class([3, 4, 2], seed=2) for _ in range(2))
    flag = np.ones(1, dtype=np.uint8)
    with _training.cancelling(flag), pytest.raises(nnfast.TrainingInterrupted) as error:
        net.fit(x, y, epochs=5, lr=0.01, batch_size=batch_size, shuffle=False)
    history = error.value.history
    assert len(history.loss) == 1 and history.epochs == (1 if batch_size == 10 else 0)
    twin.train_step(x[:batch_size], y[:batch_size], 0.01)
    np.testing.assert_array_equal(net.parameters, twin.parameters)
    # Outside the block, fits run on.
    assert net.fit(x, y, epochs=2, lr=0.01, batch_size=batch_size).epochs == 2
