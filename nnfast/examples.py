"""Built-in example problems."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numpy.typing import NDArray

SeedProblem = namedtuple("SeedProblem", "x y weights layers lr epochs")
SeedProblem.__doc__ = """The seed notebook's problem; see ``seed_problem``."""


def seed_problem() -> SeedProblem:
    """The problem of the notebook nnfast started from.

    A 3-3-1 ReLU network without biases, trained with the sum of squared
    errors by full-batch SGD at ``lr = 1e-3`` for 500 steps on four
    samples, from the weights ``np.random.seed(83832)`` draws.

    Returns
    -------
    SeedProblem
        ``x`` (4, 3) and ``y`` (4, 1) integer arrays, ``weights`` (the two
        initial weight matrices, (3, 3) and (3, 1)), ``layers`` ``(3, 3, 1)``,
        ``lr`` and ``epochs``.

    Examples
    --------
    >>> import nnfast
    >>> problem = nnfast.examples.seed_problem()
    >>> net = nnfast.Net(problem.layers, bias=False)
    >>> net.weights = problem.weights
    >>> history = net.fit(problem.x, problem.y, epochs=problem.epochs, lr=problem.lr)
    >>> round(float(history.loss[0]), 12)
    0.160537076323
    """
    x = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
    y = np.array([[0, 1, 1, 0]]).T
    rng = np.random.RandomState(83832)  # the notebook's np.random.seed(seed=83832)
    weights = [rng.randn(3, 3), rng.randn(3, 1)]
    return SeedProblem(x, y, weights, (3, 3, 1), 1e-3, 500)


def spirals(n_per_class: int = 200, noise: float = 0.2,
            seed: int | None = 0) -> tuple[NDArray[np.float64], NDArray[np.intp]]:
    """Two interleaved spirals in the plane: a small, not linearly separable classification set.

    Parameters
    ----------
    n_per_class : int, default 200
        Points per spiral.
    noise : float, default 0.2
        Standard deviation of the Gaussian noise added to each coordinate.
    seed : int or None, default 0
        Seed of the noise and the positions along the spirals.

    Returns
    -------
    x : ndarray of float64, shape (2 * n_per_class, 2)
    labels : ndarray of intp, shape (2 * n_per_class,)
        0 for the first spiral, 1 for the second.

    Examples
    --------
    >>> x, labels = nnfast.examples.spirals(100)
    >>> x.shape, labels.shape
    ((200, 2), (200,))
    """
    rng = np.random.default_rng(seed)
    # Radius grows with the angle, over 1.75 turns; the second spiral is the first turned by pi.
    angle = np.sqrt(rng.uniform(0, 1, n_per_class)) * 3.5 * np.pi
    arm = np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1) / (3.5 * np.pi) * 4
    x = np.concatenate([arm, -arm]) + rng.normal(0, noise, (2 * n_per_class, 2))
    labels = np.repeat(np.arange(2, dtype=np.intp), n_per_class)
    return x, labels
