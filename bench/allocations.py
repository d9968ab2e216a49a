"""A mini-batch fit of a given number of epochs, to count its heap allocations under valgrind.

Usage::

    valgrind --tool=memcheck python bench/allocations.py 10
    valgrind --tool=memcheck python bench/allocations.py 1000

Each run prints valgrind's "total heap usage: N allocs" line at exit. The
two fits take 80 and 8,000 steps (256 samples, batch 32, Adam, a 32-64-4
net); if the training loop allocated anything per step, or per epoch, the
second count would be larger by thousands. tracemalloc cannot show this:
it sees NumPy's and Python's allocations but not C's, and not a block
allocated and freed within a step. (Use the real interpreter, not a
launcher script such as a pyenv shim: valgrind follows only the first
program.)
"""
import argparse

import numpy as np

import nnfast


def main(argv=None):
    """Warm up (imports, scratch buffers), then run the fit.

    Parameters
    ----------
    argv : list of str, optional
        ``sys.argv[1:]`` by default: the number of epochs.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("epochs", type=int, help="epochs of the measured fit (8 steps each)")
    epochs = parser.parse_args(argv).epochs
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((256, 32)), rng.standard_normal((256, 4))
    net = nnfast.Net([32, 64, 4], loss="mse", seed=0)
    net.fit(x, y, epochs=1, optimizer=nnfast.Adam(1e-3), batch_size=32, seed=0)
    history = net.fit(x, y, epochs=epochs, batch_size=32, seed=0)
    print(f"{len(history.loss)} steps, last loss {history.loss[-1]:.6g}")


if __name__ == "__main__":
    main()
