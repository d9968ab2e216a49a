"""What fitting an ensemble on a Dask cluster costs next to fitting it here.

Usage::

    python bench/dask_ensemble.py

Eight members of a (64, 1000, 100, 10) net (256 rows, batches of 64, 10
epochs of Adam, float64) fitted by ``nnfast.distributed.fit_ensemble`` on a
``LocalCluster`` of two worker processes (one thread each), and by
``Ensemble.fit`` with two threads in this process, three times each,
alternating; both give the same members, which the script checks. It also
prints the bytes that travel: the data, once to each worker, and the
members' parameters and optimizer state, there and back.
"""
import time

import numpy as np
from distributed import Client, LocalCluster
from threadpoolctl import threadpool_limits

import nnfast
import nnfast.distributed

LAYERS = [1000, 100, 10]


def _blas_on_one_thread():
    threadpool_limits(1)  # for the worker process's lifetime


def main():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((256, LAYERS[0])), rng.standard_normal((256, LAYERS[-1]))
    options = dict(epochs=10, batch_size=64, optimizer=nnfast.Adam(1e-3))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client, threadpool_limits(1):
        client.run(_blas_on_one_thread)
        times = {"fit_ensemble on 2 Dask workers": [], "Ensemble.fit on 2 threads": []}
        for _ in range(3):
            remote, local = (nnfast.Ensemble(LAYERS, seeds=range(8), loss="mse") for _ in range(2))
            start = time.perf_counter()
            nnfast.distributed.fit_ensemble(client, remote, x, y, **options)
            times["fit_ensemble on 2 Dask workers"].append(time.perf_counter() - start)
            start = time.perf_counter()
            local.fit(x, y, n_threads=2, **options)
            times["Ensemble.fit on 2 threads"].append(time.perf_counter() - start)
            assert all(np.array_equal(a.parameters, b.parameters) for a, b in zip(remote.members, local.members))
    for name, values in times.items():
        print(f"{name}: {', '.join(f'{t * 1e3:.0f} ms' for t in values)}")
    state = sum(m.parameters.nbytes + m.optimizer.buffers.nbytes for m in local.members)
    print(f"data: {(x.nbytes + y.nbytes) / 1e6:.1f} MB to each worker, once; members: "
          f"{sum(m.parameters.nbytes for m in local.members) / 1e6:.1f} MB out, {state / 1e6:.1f} MB back")


if __name__ == "__main__":
    main()
