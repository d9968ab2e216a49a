"""Built-in example problems."""
from collections import namedtuple

import numpy as np

SeedProblem = namedtuple("SeedProblem", "x y weights layers lr epochs")
SeedProblem.__doc__ = """The seed notebook's problem; see ``seed_problem``."""


def seed_problem():
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
