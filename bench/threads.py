"""Run ``bench/test_threads.py`` and print the throughput of one shared net on one and two threads.

Usage::

    python bench/threads.py [pytest options ...]
    python bench/threads.py --json results.json

For each size and dtype: the median time of a round of predictions from
one thread and from two, and the throughput ratio (one thread's time over
two threads'), against the target of at least 1.8x. The ratio needs an
idle second core; the ``nnfast-own-nets`` rows, where each thread has a net
of its own and nothing is shared, show what the machine allows meanwhile.
"""
try:
    from . import report
except ImportError:
    import report

TARGET = 1.8


def threads_report(results):
    """Markdown table of one against two threads from ``test_threads.py`` results."""
    table = report._medians(results, ("size", "dtype", "implementation"), "threads")
    rows = []
    for (size, dtype, implementation), entry in table.items():
        one, two = entry.get(1), entry.get(2)
        ratio = None if one is None or two is None else one / two
        verdict = "—" if ratio is None or implementation != "nnfast" else (
            f"{'met' if ratio >= TARGET else '**missed**'}: {ratio:.2f}× one thread's throughput")
        rows.append([
            implementation, str(size), dtype, str(entry["info"]["calls"]), report.format_seconds(one),
            report.format_seconds(two), report.format_ratio(one, two), verdict,
        ])
    return report.markdown_table(
        ["implementation", "size (batch, in, hidden, out)", "dtype", "predictions a round",
         "1 thread", "2 threads", "throughput ratio", f"target ≥ {TARGET}×"],
        rows, "lllrrrrl",
    )


def main(argv=None):
    report.print_table(__doc__, "test_threads.py", threads_report, argv)


if __name__ == "__main__":
    main()
