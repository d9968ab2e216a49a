"""Ensembles across the workers of a Dask cluster: ``fit_ensemble``.

``fit_ensemble(client, ensemble, x, y, **fit_kwargs)`` splits the members
of an ``nnfast.Ensemble`` into one part per worker, sends the data to each
worker once (``client.scatter(..., broadcast=True)``), runs every part as
one ``Ensemble.fit`` on that worker's cores, and gathers the fitted members
back into ``ensemble``: the same members, bit for bit, that
``ensemble.fit(x, y, **fit_kwargs)`` computes on one machine.

Dask is an optional dependency of nnfast: ``pip install nnfast[dask]``.
"""
from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

try:
    import distributed
except ImportError as error:
    raise ImportError(
        "nnfast.distributed needs dask.distributed, which is not installed: "
        "pip install nnfast[dask] (or pip install 'dask[distributed]')"
    ) from error

from nnfast.ensemble import BaseEnsemble

__all__ = ["fit_ensemble"]

_Ensemble = TypeVar("_Ensemble", bound=BaseEnsemble)

# Ensemble.fit's arguments that hold one value per member.
_PER_MEMBER = ("lr", "weight_decay", "momentum")


def fit_ensemble(client: distributed.Client, ensemble: _Ensemble, x: ArrayLike, y: ArrayLike, *,
                 n_parts: int | None = None, **fit_kwargs: Any) -> _Ensemble:
    """Fit ``ensemble``'s members on the workers of ``client``'s cluster; return ``ensemble``.

    Parameters
    ----------
    client : distributed.Client
    ensemble : nnfast.Ensemble
        Updated in place, as ``ensemble.fit`` would update it: its members,
        ``fit_seeds``, ``diverged`` and ``histories``.
    x, y : array_like
        Sent to each worker once, whatever the number of members.
    n_parts : int, optional
        How many parts to split the members into (one task each): default,
        one per worker, at most one per member.
    **fit_kwargs
        As for ``Ensemble.fit``. Per-member values (``lr``, ``weight_decay``,
        ``momentum`` as sequences, a ``(n_members, n_samples)``
        ``sample_weight``, ``seeds``) go to the members they belong to;
        ``n_threads`` applies on each worker, and is by default the
        worker's own thread count (``--nthreads``).

    Returns
    -------
    nnfast.Ensemble
        ``ensemble``, fitted.
    """
    if not isinstance(ensemble, BaseEnsemble):
        raise TypeError(f"ensemble must be an nnfast.Ensemble, got {type(ensemble).__name__}")
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
    n_members = ensemble.n_members
    n_workers = len(client.scheduler_info()["workers"])
    if n_workers == 0:  # scattering to every worker would wait for one to join
        raise ValueError("the cluster has no workers (start some, or wait with client.wait_for_workers(n))")
    if n_parts is None:
        n_parts = n_workers
    parts = [indices for indices in np.array_split(np.arange(n_members), min(n_parts, n_members)) if len(indices)]
    # hash=False: fresh keys for every fit. Scattering the same arrays again under the keys
    # of the last fit, while the cluster is still releasing them, can wait forever.
    x_future, y_future = client.scatter([np.asarray(x), np.asarray(y)], broadcast=True, hash=False)
    futures = [client.submit(_fit_part, ensemble._part(indices), x_future, y_future,
                             _part_kwargs(fit_kwargs, indices, n_members), pure=False)
               for indices in parts]
    fitted = client.gather(futures)
    ensemble._merge(parts, fitted)
    return ensemble


def _fit_part(part, x, y, fit_kwargs):
    """On a worker: fit the part's members, on as many threads as the worker has; return the part."""
    kwargs = dict(fit_kwargs)
    if kwargs.get("n_threads") is None:
        # The worker's share of its machine, rather than the machine's cores: workers side by side
        # on one machine would otherwise each run a thread per core.
        kwargs["n_threads"] = distributed.get_worker().state.nthreads
    part.fit(x, y, **kwargs)
    return part


def _part_kwargs(fit_kwargs, indices, n_members):
    """``fit_kwargs`` for the members ``indices``: per-member values sliced to them."""
    kwargs = dict(fit_kwargs)
    for name in _PER_MEMBER:
        value = kwargs.get(name)
        if value is not None and np.ndim(value) == 1 and len(value) == n_members:
            kwargs[name] = [value[i] for i in indices]
    weights = kwargs.get("sample_weight")
    if weights is not None and np.ndim(weights) == 2:
        kwargs["sample_weight"] = np.asarray(weights)[indices]
    seeds = kwargs.get("seeds")
    if seeds is not None:
        if len(seeds) != n_members:
            raise ValueError(f"seeds must be {n_members} ints >= 0, one per member, got {seeds!r}")
        kwargs["seeds"] = [seeds[i] for i in indices]
    return kwargs
