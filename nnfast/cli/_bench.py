"""``nnfast bench [--quick]``: nnfast against the NumPy reference and the installed peers, as a table.

The performance issue's table (``bench/table.py``) for the rows that need
no special measurement, timed in this process on one thread: PyTorch,
JAX and onnxruntime appear where they are installed. ``--quick`` times
fewer sizes, in float64 only, with fewer repeats: well under a minute.
"""
import os
import platform
import sys
import time

import numpy as np


def add_arguments(parser):
    """Add ``bench``'s arguments to ``parser``."""
    parser.add_argument("--quick", action="store_true",
                        help="fewer sizes (no wide step), float64 only, 3 repeats: well under a minute")


def _one_blas_thread():
    """A context pinning BLAS to one thread (threadpoolctl, where installed), and its description."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext(), "BLAS threads not pinned (pip install threadpoolctl to pin them)"
    return threadpool_limits(1, user_api="blas"), "BLAS pinned to one thread with threadpoolctl"


def header(quick, blas_note, seconds):
    """The lines above the table: what ran, where, and how long it took."""
    import nnfast
    from nnfast._bench import competitors

    peers = [name for name in ("torch", "jax", "onnxruntime") if competitors.installed(
        {"torch": "torch-nn", "jax": "jax", "onnxruntime": "onnxruntime"}[name])]
    return (f"nnfast {nnfast.__version__} bench{' --quick' if quick else ''}: {platform.machine()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, NumPy {np.__version__}; "
            f"peers installed: {', '.join(peers) or 'none'}; {blas_note}; PyTorch and onnxruntime on one "
            f"thread. Took {seconds:.1f} s.")


def run(args):
    """Time the contenders and print the table; return the exit status."""
    from nnfast._bench.run import FULL, QUICK, run_benchmarks
    from nnfast._bench.table import LEGEND, collect_lines, targets_table

    start = time.perf_counter()
    pinned, blas_note = _one_blas_thread()
    with pinned:
        results, skipped = run_benchmarks(**(QUICK if args.quick else FULL),
                                          progress=lambda text: print(f"timing {text} ...", file=sys.stderr,
                                                                      flush=True))
    print(header(args.quick, blas_note, time.perf_counter() - start))
    print()
    print(targets_table(collect_lines(results)))
    print()
    print(LEGEND)
    for note in skipped:
        print(f"- left out: {note}")
    return 0
