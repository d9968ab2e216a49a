"""Session setup shared by the nnfast benchmarks.

Every benchmark runs with BLAS pinned to one thread: the compiled kernels
call SciPy's OpenBLAS and the reference calls NumPy's, two separate
libraries with their own thread pools, and comparing a single-threaded loop
against a multi-threaded gemm (or timing thread wake-ups on tiny products)
would measure the machine's core count rather than the code. The pinned
state, the BLAS libraries and the CPU end up in the ``machine_info`` of
``--benchmark-json`` output, which ``bench/report.py`` prints.
"""
import importlib
from pathlib import Path

import pytest

# Both BLAS libraries must be loaded before the limit is set: threadpoolctl
# only sees libraries that are already in the process. NumPy's comes with
# numpy itself; SciPy's comes with scipy.linalg, which nnfast's kernels
# cimport (importing nnfast._matmul loads it the same way they do).
import scipy.linalg  # noqa: F401
import nnfast._matmul  # noqa: F401
from nnfast import _kernels
from threadpoolctl import threadpool_info, threadpool_limits

BLAS_THREADS = 1

# One fixed seed (nnfast._bench.run.DATA_SEED, which draws the data):
# nnfast and the reference must see identical data in a group, and runs
# must see identical data across commits.

_LIMITER_KEY = pytest.StashKey()


def pytest_configure(config):
    # Pinned here rather than in a fixture so that the limit also covers
    # collection and stays in force until pytest-benchmark writes its JSON
    # in pytest_sessionfinish (fixtures are torn down before that).
    limiter = threadpool_limits(limits=BLAS_THREADS)
    config.stash[_LIMITER_KEY] = limiter
    unpinned = [info["filepath"] for info in threadpool_info() if info["num_threads"] != BLAS_THREADS]
    if unpinned:
        raise pytest.UsageError(f"could not pin BLAS to {BLAS_THREADS} thread(s): {unpinned}")


def pytest_unconfigure(config):
    limiter = config.stash.get(_LIMITER_KEY, None)
    if limiter is not None:
        limiter.restore_original_limits()


def pytest_benchmark_update_machine_info(config, machine_info):
    """Add the BLAS thread pools (as pinned for the run) to ``machine_info``.

    Parameters
    ----------
    config : pytest.Config
    machine_info : dict
        pytest-benchmark's machine description (it already holds ``cpu``,
        from py-cpuinfo); updated in place with the BLAS pools and the
        kernel build (``nnfast._kernels.BEST``; nets no wider than 4 use the
        baseline build whatever it is) and that build's crossover to BLAS.
    """
    pools = threadpool_info()
    blas = [pool for pool in pools if pool["user_api"] == "blas"]
    machine_info["blas_threads"] = sorted({pool["num_threads"] for pool in blas})
    machine_info["threadpools"] = pools
    machine_info["nnfast_kernels"] = _kernels.BEST.name
    machine_info["caches"] = cpu_caches()
    matmul = importlib.import_module(_kernels.BEST.dense.__name__.rsplit(".", 1)[0] + "._matmul")
    machine_info["nnfast_crossover"] = matmul.crossover()


def cpu_caches():
    """The first CPU's data caches as Linux's sysfs lists them (what ``lscpu`` reads), e.g.
    ``"L1d 32K, L2 1024K, L3 32768K (shared by 0-1)"``; None elsewhere."""
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size, shared = (
                (index / name).read_text().strip() for name in ("level", "type", "size", "shared_cpu_list"))
        except OSError:
            continue
        if kind != "Instruction":
            name = f"L{level}{'d' if kind == 'Data' else ''}"
            caches.append(f"{name} {size}" + (f" (shared by {shared})" if shared != "0" else ""))
    return ", ".join(caches) or None


@pytest.fixture
def standard_normal():
    """Return a factory of fresh N(0, 1) arrays from a freshly seeded generator.

    Each call ``standard_normal(*shapes, dtype=...)`` starts a new
    ``numpy.random.Generator`` from the same seed and draws one array per
    shape, in order, so equal arguments give equal arrays. Every entry has
    magnitude at least ``sqrt(finfo(dtype).tiny)``, so that even the product
    of two entries is a normal number: subnormal operands can be a hundred
    times slower on x86 and would turn a timing into a measure of the data.

    Returns
    -------
    callable
        ``(*shapes, dtype) -> tuple of ndarray`` (C-contiguous).
    """

    from nnfast._bench.run import draw_normal  # the draws of nnfast bench, too

    return draw_normal


@pytest.fixture
def training_data(standard_normal):
    """Return a factory of ``(x, y)`` for a network size and dtype.

    Returns
    -------
    callable
        ``(size, dtype) -> (x, y)`` where ``size`` is ``(batch, n_in,
        n_hidden, n_out)``, ``x`` has shape ``(batch, n_in)`` and ``y`` shape
        ``(batch, n_out)``, both N(0, 1) as drawn by ``standard_normal``.
    """

    def make(size, dtype):
        batch, n_in, _, n_out = size
        return standard_normal((batch, n_in), (batch, n_out), dtype=dtype)

    return make
