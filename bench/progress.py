"""What ``fit(..., verbose=...)`` costs: the progress display against a silent fit.

Usage::

    python bench/progress.py [--repeats N]

Two fits, each timed with every kind of display, the kinds alternating so
that drift on a shared machine hits them alike, BLAS on one thread:

- a net and data sized so that one epoch takes about 100 ms, 20 epochs (the
  issue's bound: the display must cost less than 1% there);
- 10,000 tiny epochs (8 samples of a 3-4-1 net), where the silent fit is
  one compiled call of a few milliseconds and any Python per epoch shows.

The displays: ``verbose=0``; ``verbose=2`` (a line per epoch); ``verbose=1``
on a file (which prints the lines of ``verbose=2``); ``verbose=1`` on a
terminal, drawn by tqdm and by the plain fallback (tqdm hidden from
import); and, for comparison, a callback, which runs one epoch per compiled
call. The "terminal" is a StringIO that says it is one, so what is timed is
nnfast's and tqdm's work, not a terminal emulator's drawing. Prints the
best and the median of the repeats and each best against the silent fit's;
on a shared machine those ratios wander by several percent either way, so
one more, instrumented fit of each display counts its compiled calls and
adds up the time spent in the display's own code, which is what the
display adds besides the calls.
"""
import argparse
import contextlib
import copy
import datetime
import io
import platform
import statistics
import sys
import time

import numpy as np
import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, so that threadpoolctl can pin it)
from threadpoolctl import threadpool_limits

import nnfast
from nnfast import _machine, _progress


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def cpu_model():
    """The CPU's model name, as lscpu shows it."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


@contextlib.contextmanager
def without_tqdm():
    """``import tqdm`` fails inside this block, as where tqdm is not installed."""
    saved = {name: sys.modules.get(name) for name in ("tqdm", "tqdm.autonotebook")}
    sys.modules["tqdm"] = sys.modules["tqdm.autonotebook"] = None
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                del sys.modules[name]
            else:
                sys.modules[name] = module


def tqdm_version():
    try:
        import tqdm
    except ImportError:
        return None
    return tqdm.__version__


def displays():
    """``(label, fit keyword arguments, make the stdout stream, context)`` of each display."""
    found = [
        ("verbose=0", {}, io.StringIO, contextlib.nullcontext),
        ("verbose=2, file", dict(verbose=2), io.StringIO, contextlib.nullcontext),
        ("verbose=1, file", dict(verbose=1), io.StringIO, contextlib.nullcontext),
    ]
    if tqdm_version() is not None:
        found.append(("verbose=1, terminal, tqdm", dict(verbose=1), FakeTerminal, contextlib.nullcontext))
    found.append(("verbose=1, terminal, plain", dict(verbose=1), FakeTerminal, without_tqdm))
    found.append(("callback (1 epoch a call)", dict(callback=lambda epoch, history: None), io.StringIO,
                  contextlib.nullcontext))
    return found


def time_fit(net, x, y, epochs, kwargs, make_stream, context):
    """Seconds of one ``fit`` of a copy of ``net``, with stdout going to a new ``make_stream()``."""
    net = copy.deepcopy(net)
    stream = make_stream()
    with context(), contextlib.redirect_stdout(stream):
        start = time.perf_counter()
        net.fit(x, y, epochs=epochs, lr=1e-4, batch_size=64, seed=0, **kwargs)
        return time.perf_counter() - start


def sized_for_100_ms_epochs():
    """A net and data whose epoch (batches of 64, shuffled) takes about 0.1 s here."""
    rng = np.random.default_rng(0)
    layers = [64, 256, 256, 1]
    net = nnfast.Net(layers, seed=0)
    probe = 4096
    x, y = rng.standard_normal((probe, 64)), rng.standard_normal((probe, 1))
    time_fit(net, x, y, 1, {}, io.StringIO, contextlib.nullcontext)  # warm up
    per_epoch = min(time_fit(net, x, y, 3, {}, io.StringIO, contextlib.nullcontext) for _ in range(3)) / 3
    n_samples = max(64, int(probe * 0.1 / per_epoch))
    return net, rng.standard_normal((n_samples, 64)), rng.standard_normal((n_samples, 1)), layers


@contextlib.contextmanager
def display_clock():
    """Within this block, count the compiled calls of fits and add up the time the progress
    display itself takes (``nnfast._progress``: starting, chunk sizes, updates, closing).

    Yields a dict with ``seconds`` and ``calls``. The wrappers' own cost (a few clock reads
    a call) is counted as the display's.
    """
    totals = dict(seconds=0.0, calls=0)
    saved = {}

    def timed(owner, name):
        original = saved[owner, name] = getattr(owner, name)

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals["seconds"] += time.perf_counter() - start

        setattr(owner, name, wrapper)

    for name in ("epochs_to_run", "update", "close"):
        timed(_progress.Progress, name)
    timed(_progress, "start")
    run_epochs = saved[nnfast.Net, "_run_epochs"] = nnfast.Net._run_epochs

    def counting(*args):
        totals["calls"] += 1
        return run_epochs(*args)

    nnfast.Net._run_epochs = counting
    try:
        yield totals
    finally:
        for (owner, name), original in saved.items():
            setattr(owner, name, original)


def measure(title, net, x, y, epochs, repeats):
    """Time every display ``repeats`` times, alternating, and print the table."""
    cases = displays()
    times = {label: [] for label, *_ in cases}
    for _ in range(repeats):
        for label, kwargs, make_stream, context in cases:
            times[label].append(time_fit(net, x, y, epochs, kwargs, make_stream, context))
    own = {}
    for label, kwargs, make_stream, context in cases:
        with display_clock() as totals:
            time_fit(net, x, y, epochs, kwargs, make_stream, context)
        own[label] = totals
    base = min(times["verbose=0"])
    print(f"\n{title}\n")
    print("| display | best | median | best / verbose=0's best | compiled calls | display's own time "
          "(share of the silent fit) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, values in times.items():
        best = min(values)
        print(f"| {label} | {best * 1e3:.2f} ms | {statistics.median(values) * 1e3:.2f} ms | "
              f"{best / base:.4f}× ({(best / base - 1) * 100:+.2f}%) | {own[label]['calls']:,} | "
              f"{own[label]['seconds'] * 1e3:.3f} ms ({own[label]['seconds'] / base * 100:.3f}%) |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timings of each display per fit (default 5)")
    args = parser.parse_args(argv)
    l2 = _machine.l2_cache_bytes()
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · CPU: {cpu_model()} "
          f"(L2 {l2 // 1024} KiB per core) · BLAS threads: 1 · nnfast {nnfast.__version__} · "
          f"tqdm {tqdm_version() or 'not installed'} · `python bench/progress.py --repeats {args.repeats}`")
    with threadpool_limits(limits=1):
        net, x, y, layers = sized_for_100_ms_epochs()
        epoch = time_fit(net, x, y, 1, {}, io.StringIO, contextlib.nullcontext)
        measure(f"20 epochs of {x.shape[0]:,} samples, net {layers}, batches of 64 "
                f"(one epoch {epoch * 1e3:.0f} ms)", net, x, y, 20, args.repeats)
        rng = np.random.default_rng(1)
        tiny = nnfast.Net([3, 4, 1], seed=0)
        measure("10,000 epochs of 8 samples, net [3, 4, 1], one batch each", tiny, rng.standard_normal((8, 3)),
                rng.standard_normal((8, 1)), 10_000, max(args.repeats, 7))


if __name__ == "__main__":
    main()
