"""Run an nnfast benchmark module and print its results as Markdown.

Usage::

    python bench/report.py [--matmul] [pytest options ...]
    python bench/report.py [--matmul] --json results.json

Without ``--matmul`` it runs ``bench/test_net.py`` and prints, per
operation, size and dtype, the median time of the NumPy reference and of
nnfast and the speed-up. With ``--matmul`` it runs ``bench/test_matmul.py``
and prints loops against BLAS per product shape and dtype, and from which
``m * n * k`` BLAS wins. Other options (``-k``, ``--benchmark-max-time``,
...) go to pytest. pytest's own output goes to stderr, so stdout is the
Markdown alone (``python bench/report.py > results.md``). ``--json``
renders a file saved earlier by ``pytest --benchmark-json`` instead.
"""
import argparse
import json
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# In the package, for nnfast bench; imported from here by the other bench scripts.
from nnfast._bench.formatting import format_difference, format_ratio, format_seconds, markdown_table  # noqa: F401

BENCH_DIR = Path(__file__).resolve().parent


def run_benchmarks(module, pytest_args):
    """Run one benchmark module in a pytest process and return its JSON results.

    Parameters
    ----------
    module : str
        File name of the module in ``bench/``.
    pytest_args : list of str
        Extra pytest / pytest-benchmark options.

    Returns
    -------
    results : dict
        pytest-benchmark's ``--benchmark-json`` document.
    command : str
        The pytest command line, for the report header.
    """
    options = ["-p", "no:cacheprovider", "-q"]
    with tempfile.TemporaryDirectory() as tmp:
        json_path = Path(tmp) / "benchmarks.json"
        command = [sys.executable, "-m", "pytest", str(BENCH_DIR / module), *options,
                   f"--benchmark-json={json_path}", *pytest_args]
        # Run from bench/: `python -m pytest` puts its working directory first on
        # sys.path, and from the repository root that would be the uncompiled
        # source tree instead of the installed package (or the in-place build
        # named by PYTHONPATH).
        status = subprocess.run(command, cwd=BENCH_DIR, stdout=sys.stderr).returncode
        if status < 0:
            sys.exit(f"report.py: pytest was killed by {signal.Signals(-status).name}; no report")
        if status != 0:
            # A failed benchmark is left out of the JSON: a table without it would mislead.
            sys.exit(f"report.py: pytest exited with status {status}; no report")
        results = json.loads(json_path.read_text())
    shown = ["python", "-m", "pytest", f"bench/{module}", *options, "--benchmark-json=<tmp>", *pytest_args]
    return results, shlex.join(shown)


def header_line(results, command):
    """One line with the date, CPU, BLAS threads, nnfast's kernel build and command of a run."""
    machine = results["machine_info"]
    cpu = machine.get("cpu", {})
    brand = cpu.get("brand_raw") or machine.get("processor") or "unknown CPU"
    threads = ", ".join(map(str, machine.get("blas_threads", []))) or "not recorded"
    libraries = ", ".join(
        f"{pool.get('prefix')} {pool.get('version')} {pool.get('architecture') or ''}".rstrip()
        for pool in machine.get("threadpools", []) if pool.get("user_api") == "blas"
    )
    caches = machine.get("caches")
    date = results["datetime"].replace("T", " ")[:19] + " UTC"
    kernels = machine.get("nnfast_kernels", "not recorded")
    crossover = machine.get("nnfast_crossover")
    if crossover:
        kernels += f" (BLAS beyond {crossover['loops_cache_bytes'] // 1024} KiB of reused rows)"
    family = f", family {cpu['family']} model {cpu['model']}" if "family" in cpu else ""
    return (
        f"{date} · CPU: {brand}{family} ({cpu.get('count', '?')} logical{', ' + caches if caches else ''}) · "
        f"BLAS threads: {threads} ({libraries}) · nnfast kernels: {kernels} · `{command}`"
    )



def _medians(results, key_fields, variant_field):
    """Median per variant, for each distinct value of ``key_fields`` in extra_info.

    Returns ``{key: {"info": extra_info, variant: median}}`` in first-seen order.
    """
    table = {}
    for bench in results["benchmarks"]:
        info = bench["extra_info"]
        key = tuple(tuple(value) if isinstance(value, list) else value for value in map(info.get, key_fields))
        entry = table.setdefault(key, {"info": info})
        entry[info[variant_field]] = bench["stats"]["median"]
    return table


def _first_seen_order(values):
    """Map each value to the position of its first occurrence."""
    order = {}
    for value in values:
        order.setdefault(value, len(order))
    return order


def net_report(results):
    """Markdown table of reference against nnfast from ``test_net.py`` results."""
    table = _medians(results, ("operation", "size", "dtype"), "implementation")
    operation_order = _first_seen_order(key[0] for key in table)

    def sort_key(key):
        operation, (batch, n_in, n_hidden, n_out), dtype = key
        return operation_order[operation], batch * (n_in * n_hidden + n_hidden * n_out), dtype != "float64"

    rows = []
    for key in sorted(table, key=sort_key):
        operation, size, dtype = key
        entry = table[key]
        if "epochs" in entry["info"]:
            operation = f"{operation} ({entry['info']['epochs']} epochs)"
        reference, nnfast = entry.get("reference"), entry.get("nnfast")
        rows.append([
            operation, str(size), dtype, format_seconds(reference), format_seconds(nnfast),
            format_ratio(reference, nnfast),
        ])
    return markdown_table(
        ["operation", "size (batch, in, hidden, out)", "dtype", "reference", "nnfast", "speed-up"],
        rows, "lllrrr",
    ) + (
        "\n\nMedians. Speed-up = reference / nnfast. A fit row times the whole call "
        "(full batch, one step per epoch)."
    )


def _blas_thresholds(entries):
    """Smallest ``m*n*k`` where BLAS wins, and smallest from which it wins at every larger shape.

    ``entries`` is a list of ``(work, blas_wins)``; either result is None
    when there is no such work.
    """
    wins = [work for work, blas_wins in entries if blas_wins]
    losses = [work for work, blas_wins in entries if not blas_wins]
    first_win = min(wins, default=None)
    beyond_losses = [work for work in wins if work > max(losses, default=0)]
    return first_win, min(beyond_losses, default=None)


def matmul_report(results):
    """Markdown tables of loops against BLAS from ``test_matmul.py`` results."""
    table = _medians(results, ("product", "m", "n", "k", "dtype"), "method")
    product_order = _first_seen_order(key[0] for key in table)
    keys = sorted(
        table, key=lambda key: (product_order[key[0]], key[4] != "float64", key[1] * key[2] * key[3], key)
    )
    rows, outcomes = [], {}
    for key in keys:
        product, m, n, k, dtype = key
        entry = table[key]
        loops, blas = entry.get("loops"), entry.get("blas")
        info = entry["info"]
        operands = ("a.T" if info["trans_a"] else "a") + " @ " + ("b.T" if info["trans_b"] else "b")
        winner = "—" if loops is None or blas is None else ("blas" if blas < loops else "loops")
        if winner != "—":
            outcomes.setdefault((product, dtype), []).append((m * n * k, winner == "blas"))
        rows.append([
            product, operands, f"{m} × {n} × {k}", str(m * n * k), dtype,
            format_seconds(loops), format_seconds(blas), winner, format_ratio(loops, blas),
            "—" if winner == "—" else format_difference(blas - loops),
        ])
    shapes = markdown_table(
        ["product", "op", "m × n × k", "m·n·k", "dtype", "loops", "blas", "faster", "loops / blas",
         "blas − loops"],
        rows, "lllrlrrlrr",
    )
    summary_rows, everywhere = [], []
    for (product, dtype), entries in outcomes.items():
        first_win, wins_from = _blas_thresholds(entries)
        everywhere.append(wins_from)
        summary_rows.append([product, dtype, str(first_win or "never"), str(wins_from or "never")])
    summary = markdown_table(
        ["product", "dtype", "smallest m·n·k where BLAS wins", "BLAS wins at every measured m·n·k from"],
        summary_rows, "llrr",
    )
    limits = {bench["extra_info"].get("loops_cache_bytes") for bench in results["benchmarks"]}
    if everywhere and None not in everywhere:
        overall = (
            f"Over all products and dtypes BLAS wins at every measured shape from m·n·k = {max(everywhere)}"
        )
    else:
        overall = "For some product and dtype BLAS loses at the largest measured shape"
    return (
        f"{shapes}\n\nMedians, each including the same Python call overhead (compare the two "
        "methods by their difference, not their ratio, at small sizes). "
        f"loops / blas > 1 means BLAS is faster.\n\n{summary}\n\n{overall}. "
        "`method=\"auto\"` takes BLAS for the products whose pass over a block of columns reads more than "
        f"{', '.join(sorted(map(str, limits)))} bytes, with m of 4 or more, and a @ b.T of fewer rows "
        "whose b is larger (`nnfast._matmul.crossover()`)."
    )


def argument_parser(description):
    """A parser with ``--json``; the options it does not know go to pytest."""
    parser = argparse.ArgumentParser(
        description=description, epilog="Unrecognized options are passed on to pytest."
    )
    parser.add_argument(
        "--json", metavar="PATH", type=Path,
        help="render an existing --benchmark-json file of the module instead of running it",
    )
    return parser


def print_table(doc, module, make_report, argv=None):
    """The ``main`` of a table script: run ``module`` (or read ``--json``), then print the
    header line and ``make_report(results)``; ``doc`` is the script's docstring."""
    parser = argument_parser(doc.split("\n\n")[0])
    results, command, _, _ = load_or_run(parser, module, argv)
    print(header_line(results, command))
    print()
    print(make_report(results))


def load_or_run(parser, module, argv=None, around_run=None):
    """Parse ``argv``, then read ``--json`` or run ``module``; return what a report needs.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        From ``argument_parser``.
    module : str or callable
        The module's file name in ``bench/``, or a function of the parsed
        options that returns it.
    argv : list of str, optional
        ``sys.argv[1:]`` by default.
    around_run : callable, optional
        Called with no argument before and after a run (not with ``--json``).

    Returns
    -------
    results : dict
    command : str
    options : argparse.Namespace
    around : tuple or None
        ``around_run``'s two results.
    """
    options, pytest_args = parser.parse_known_args(argv)
    if any(arg.startswith("--benchmark-json") for arg in pytest_args):
        parser.error("--benchmark-json is set here; run pytest directly to keep the JSON")
    around = None
    if options.json is not None:
        if pytest_args:
            parser.error(f"--json runs nothing; unexpected arguments {pytest_args}")
        results, command = json.loads(options.json.read_text()), f"results from {options.json}"
    else:
        before = around_run() if around_run else None
        results, command = run_benchmarks(module(options) if callable(module) else module, pytest_args)
        around = (before, around_run()) if around_run else None
    if not results["benchmarks"]:
        sys.exit(f"{parser.prog}: no benchmark results (all deselected, or --benchmark-disable?)")
    return results, command, options, around


def main(argv=None):
    """Run the chosen benchmark module and print the Markdown report to stdout.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments without the program name; ``sys.argv[1:]`` by default.
    """
    parser = argument_parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--matmul", action="store_true", help="report bench/test_matmul.py instead of test_net.py"
    )
    results, command, options, _ = load_or_run(
        parser, lambda options: "test_matmul.py" if options.matmul else "test_net.py", argv
    )
    print(header_line(results, command))
    print()
    print((matmul_report if options.matmul else net_report)(results))


if __name__ == "__main__":
    main()
