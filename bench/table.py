"""Run bench/test_targets.py once and print the performance issue's targets table (#4) as Markdown.

Usage::

    python bench/table.py [pytest options ...]
    python bench/table.py --json results.json

Every row of the issue's table gets nnfast's median, the reference's and
the installed competitors' (PyTorch, JAX, onnxruntime), the speed-up over
the reference, the share of NumPy's measured gemm rate where the row has
one, the target, and whether it is met, computed from the run's numbers.
Notes on the memory and subnormal rows follow the table. pytest's own
output goes to stderr; ``--json`` renders a file saved earlier by
``pytest bench/test_targets.py --benchmark-json=FILE`` instead of running.
"""
import os

from report import argument_parser, header_line, load_or_run

from nnfast._bench.table import LEGEND, collect_lines, competitor_versions, notes, targets_table

MODULE = "test_targets.py"


def render(results, command, load=None):
    """The whole Markdown report of a ``test_targets.py`` run.

    Parameters
    ----------
    results : dict
        pytest-benchmark's ``--benchmark-json`` document.
    command : str
        What produced it, for the header.
    load : tuple of float, optional
        The 1-minute load average before and after the run.

    Returns
    -------
    str
    """
    lines = collect_lines(results)
    conditions = (f"Competitors: {competitor_versions(results)}; PyTorch pinned with `torch.set_num_threads(1)`, "
                  "JAX's CPU pool sized to one thread, onnxruntime with `intra_op_num_threads=1`; the two-thread "
                  "lines raise BLAS and PyTorch to two threads.")
    if load is not None:
        conditions += f" Load average (1 min) before and after the run: {load[0]:.2f}, {load[1]:.2f}."
    parts = [header_line(results, command), conditions, targets_table(lines), LEGEND, "\n".join(notes(lines))]
    return "\n\n".join(part for part in parts if part)


def main(argv=None):
    """Run test_targets.py (or read ``--json``) and print the report to stdout.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments without the program name; ``sys.argv[1:]`` by default.
    """
    parser = argument_parser(__doc__.split("\n\n")[0])
    # The 1-minute load average around the run: two threads need an idle second core.
    results, command, _, load = load_or_run(parser, MODULE, argv, around_run=lambda: os.getloadavg()[0])
    print(render(results, command, load))


if __name__ == "__main__":
    main()
