"""Time nnfast's two kernel builds side by side in one process.

Usage::

    python bench/kernel_builds.py

For a few sizes ``(batch, n_in, n_hidden, n_out)`` and both dtypes it times
a plain-SGD ``train_step``, an Adam epoch and, at the seed's size, a
5000-epoch ``fit``, once with the baseline build and once with the AVX2
build, alternating between them, BLAS on one thread, and prints the best
of several repeats with the ratio. This is the measurement behind
``nnfast._kernels.TINY_WIDTH`` (nets no wider than 4 keep the baseline).
"""
import timeit

import numpy as np
import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, so that threadpoolctl can pin it)
from threadpoolctl import threadpool_limits

import nnfast
from nnfast import _kernels

SIZES = [(4, 3, 3, 1), (64, 32, 64, 4), (1, 1000, 100, 10), (64, 1000, 100, 10)]
REPEATS = 7


def net_with(kernels, layers, dtype):
    """A seeded net that runs ``kernels`` whatever ``_kernels.for_layers`` would pick."""
    net = nnfast.Net(layers, loss="mse", dtype=dtype, seed=0)
    net._make_runtime(kernels)
    return net


def best_time(function, number):
    """Best of REPEATS timings of ``number`` calls, per call, in µs."""
    return min(timeit.repeat(function, number=number, repeat=REPEATS)) / number * 1e6


def cases(size, dtype):
    """``(label, make_call, calls per timing)``: each ``make_call(net)`` returns what to time."""
    batch, n_in, _, n_out = size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, n_in)).astype(dtype)
    y = rng.standard_normal((batch, n_out)).astype(dtype)
    number = max(10, int(2e5 / (batch * n_in * 100 + 1000)))

    def sgd_step(net):
        net.train_step(x, y, 1e-3)
        return lambda: net.train_step(x, y, 1e-3)

    def adam_epoch(net):
        net.fit(x, y, epochs=1, optimizer=nnfast.Adam(1e-3))
        return lambda: net.fit(x, y, epochs=1)

    def seed_fit(net):
        net.fit(x, y, epochs=1, lr=1e-3)
        return lambda: net.fit(x, y, epochs=5000, lr=1e-3)

    found = [("train_step", sgd_step, number), ("Adam epoch", adam_epoch, number)]
    if size == SIZES[0]:
        found.append(("fit, 5000 epochs", seed_fit, 3))
    return found


def main():
    """Print one line per size, dtype and operation."""
    if _kernels.AVX2 is None:
        raise SystemExit("kernel_builds.py: no AVX2 build can run here (or NNFAST_KERNELS=baseline)")
    builds = [_kernels.BASELINE, _kernels.AVX2]
    print(f"{'operation':<18} {'size':<20} {'dtype':<8} {'baseline':>12} {'avx2':>12} {'baseline/avx2':>14}")
    with threadpool_limits(limits=1):
        for size in SIZES:
            layers = list(size[1:])
            for dtype in (np.float64, np.float32):
                for label, make_call, number in cases(size, dtype):
                    calls = [make_call(net_with(build, layers, dtype)) for build in builds]
                    times = [float("inf")] * len(builds)
                    for _ in range(2):  # alternate, so that drift hits both builds alike
                        for index, call in enumerate(calls):
                            times[index] = min(times[index], best_time(call, number))
                    print(f"{label:<18} {str(size):<20} {np.dtype(dtype).name:<8} {times[0]:>10.2f}us "
                          f"{times[1]:>10.2f}us {times[0] / times[1]:>13.2f}x")


if __name__ == "__main__":
    main()
