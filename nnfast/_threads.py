"""How many threads nnfast's own parallel work uses: ``set_num_threads``.

An ``Ensemble.fit`` (and a ``cross_validate``) without ``n_threads`` fits
that many members at once, at most one per member; BLAS runs on one thread
meanwhile where threadpoolctl is installed (``nnfast.ensemble``). nnfast
does not split a single net's ``fit`` across threads, whatever this says;
the BLAS calls inside it run on the threads BLAS is set to.
"""
from __future__ import annotations

import concurrent.futures
import os

from nnfast._validation import check_int

_num_threads: int | None = None


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return os.cpu_count() or 1


def set_num_threads(n: int | None) -> None:
    """Set how many threads nnfast's parallel work uses by default.

    Parameters
    ----------
    n : int >= 1, or None
        Threads an ``Ensemble.fit`` uses when it is given no ``n_threads``
        (at most one per member). ``None`` restores the default: the CPUs
        this process may run on. The results never depend on it.

    Raises
    ------
    TypeError, ValueError
        For anything but an int >= 1 or None.

    Examples
    --------
    >>> import nnfast
    >>> nnfast.set_num_threads(1)     # ensembles fit one member at a time
    >>> nnfast.get_num_threads()
    1
    >>> nnfast.set_num_threads(None)  # back to every CPU this process may use
    """
    global _num_threads
    _num_threads = None if n is None else check_int("n", n, 1)


def get_num_threads() -> int:
    """Return the threads nnfast's parallel work uses by default (see ``set_num_threads``).

    Returns
    -------
    int
        The value set, else the CPUs this process may run on.
    """
    return available_cpus() if _num_threads is None else _num_threads


def run_on_threads(tasks, n_threads, flag):
    """Call each of ``tasks`` (callables without arguments) on a pool of ``n_threads`` threads.

    On Ctrl-C in this thread, set ``flag[0]`` (the cancel flag of the tasks'
    training runs: they stop after their current step), wait for every
    task, and raise the KeyboardInterrupt.

    Returns
    -------
    list
        The tasks' results, in order.

    Raises
    ------
    Exception
        The first task's error, in task order, after every task has ended.
    """
    with concurrent.futures.ThreadPoolExecutor(n_threads, thread_name_prefix="nnfast") as pool:
        futures = [pool.submit(task) for task in tasks]
        try:
            pending = set(futures)
            while pending:  # short waits: Ctrl-C reaches this thread between them
                _, pending = concurrent.futures.wait(pending, timeout=0.05)
        except KeyboardInterrupt:
            flag[0] = 1
            for future in futures:
                future.cancel()
            concurrent.futures.wait(futures)
            raise
        return [future.result() for future in futures]
