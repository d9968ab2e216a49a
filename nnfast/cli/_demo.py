"""``nnfast demo`` (and ``python -m nnfast``): train the 3-3-1 example network and compare with the NumPy reference.

Prints an excerpt of the loss trace from both implementations, the final
prediction, and how long a whole ``fit`` and a single ``train_step`` take
in each, measured side by side in this process.
"""
import argparse
import platform
import timeit

import numpy as np

import nnfast
import nnfast.reference
from nnfast._bench.formatting import format_seconds
from nnfast.examples import seed_problem

TRACE_STEPS = (0, 1, 2, 3, 4, 50, 100, 200, 300, 400, 499)


def _seed_net(cls, problem):
    net = cls(problem.layers, bias=False)
    net.weights = problem.weights
    return net


def _best_time(function, setup, number, repeats):
    """Best time of one call of ``function``, over ``repeats`` runs of ``number`` calls,
    each run after a fresh ``setup()``."""
    return min(timeit.Timer(function, setup).repeat(repeat=repeats, number=number)) / number


def add_arguments(parser):
    """Add the demo's options to ``parser`` (an ``argparse.ArgumentParser``)."""
    parser.add_argument("--no-timing", action="store_true", help="skip the speed comparison")


def main(argv=None):
    """Run the demonstration; ``--no-timing`` skips the speed comparison.

    Parameters
    ----------
    argv : list of str, optional
        The options, ``sys.argv[1:]`` by default.
    """
    parser = argparse.ArgumentParser(prog="python -m nnfast", description=(__doc__ or " ").splitlines()[0])
    add_arguments(parser)
    run(parser.parse_args(argv))


def run(args):
    """Run the demonstration with the parsed options ``args``; return the exit status (0)."""
    problem = seed_problem()
    fast = _seed_net(nnfast.Net, problem)
    reference = _seed_net(nnfast.reference.Net, problem)
    fast_history = fast.fit(problem.x, problem.y, epochs=problem.epochs, lr=problem.lr)
    reference_history = reference.fit(problem.x, problem.y, epochs=problem.epochs, lr=problem.lr)

    print(f"nnfast {nnfast.__version__}: the 3-3-1 example network, layers {list(problem.layers)}, ReLU, no bias,")
    print(f"sum of squared errors, full-batch SGD with lr={problem.lr:g} for {problem.epochs} steps\n")
    print(f"{'step':>5}  {'nnfast.Net':>16}  {'reference.Net':>16}")
    for step in TRACE_STEPS:
        print(f"{step:>5}  {fast_history.loss[step]:>16.12g}  {reference_history.loss[step]:>16.12g}")
    difference = np.max(np.abs(fast_history.loss - reference_history.loss) / reference_history.loss)
    print(f"largest relative difference over all {problem.epochs} steps: {difference:.1e}\n")

    np.set_printoptions(precision=8, suppress=True)
    print("prediction after training:", fast.predict(problem.x).ravel())
    print("target:                   ", problem.y.ravel().astype(float))

    if args.no_timing:
        return 0
    x = problem.x.astype(np.float64)
    y = problem.y.astype(np.float64)
    print(f"\nspeed, float64, this machine ({platform.machine()}, one thread), best of repeats:")
    print(f"{'':>24}  {'nnfast.Net':>12}  {'reference.Net':>14}  {'speed-up':>9}")
    for label, call, number in (
        (f"fit, {problem.epochs} epochs", lambda net: net.fit(x, y, epochs=problem.epochs, lr=problem.lr), 1),
        ("train_step", lambda net: net.train_step(x, y, problem.lr), 200),
        ("predict", lambda net: net.predict(x), 200),
    ):
        # Every run starts from the seed's weights, so repeated training
        # cannot drift the numbers (towards subnormal gradients, say).
        times = [
            _best_time(lambda: call(net), lambda: setattr(net, "weights", problem.weights), number, 30)
            for net in (fast, reference)
        ]
        print(
            f"{label:>24}  {format_seconds(times[0]):>12}  {format_seconds(times[1]):>14}  "
            f"{times[1] / times[0]:>8.1f}x"
        )
    return 0
