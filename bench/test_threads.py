"""Throughput of one net shared by threads: ``predict`` of large batches from one and from two threads.

Each round makes the same number of predictions (``CALLS``) on one shared
net, from one thread or split between two; BLAS stays pinned to one thread
(``conftest.py``), so any speed-up comes from the two predictions running at
once on two cores, which nnfast's lock allows (readers run in parallel).
The reference serializes its calls with one lock, so it has no speed-up to
show; it is timed for context. ``nnfast-own-nets`` is the control: each
thread predicts on a net of its own, so that nothing is shared, and its
ratio is what the machine allows. ``bench/threads.py`` prints the table
with the throughput ratio against the target (at least 1.8x one thread's).

Before timing, the predictions made by two threads are compared with the
single-threaded ones, bit for bit.
"""
import threading

import numpy as np
import pytest

import nnfast
import nnfast.reference

SIZES = [(2048, 256, 256, 16)]
CALLS = 8
NETS = {"nnfast": nnfast.Net, "reference": nnfast.reference.Net}


def predict_in_threads(nets, x, threads, calls=CALLS):
    """Make ``calls`` predictions of ``x``, split evenly between ``threads`` threads,
    thread ``i`` on ``nets[i % len(nets)]``; return the outputs."""
    outputs = [None] * calls
    share = calls // threads

    def work(thread):
        net = nets[thread % len(nets)]
        for index in range(thread * share, (thread + 1) * share):
            outputs[index] = net.predict(x)

    if threads == 1:
        work(0)
        return outputs
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outputs


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("implementation", [*NETS, "nnfast-own-nets"])
@pytest.mark.parametrize("threads", [1, 2])
def test_predict_threads(benchmark, standard_normal, size, dtype, implementation, threads):
    batch, n_in, n_hidden, n_out = size
    make = NETS[implementation.split("-")[0]]
    nets = [make([n_in, n_hidden, n_out], loss="mse", dtype=dtype, seed=0)
            for _ in range(threads if implementation.endswith("own-nets") else 1)]
    (x,) = standard_normal((batch, n_in), dtype=dtype)
    expected = nets[0].predict(x)
    for out in predict_in_threads(nets, x, threads):
        np.testing.assert_array_equal(out, expected)
    benchmark.group = f"predict-threads {size} {np.dtype(dtype).name}"
    benchmark.extra_info.update(operation="predict-threads", size=list(size), dtype=np.dtype(dtype).name,
                                implementation=implementation, threads=threads, calls=CALLS)
    benchmark(predict_in_threads, nets, x, threads)
