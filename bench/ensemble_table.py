"""Run ``bench/test_ensemble.py`` and print an ensemble's fit against a loop of fits and on two threads.

Usage::

    python bench/ensemble_table.py [pytest options ...]
    python bench/ensemble_table.py --json results.json

One row per size: the median time of fitting 8 members as a loop of
``Net.fit`` calls and as one ``Ensemble.fit`` on one and on two threads,
the time per net-step, and the two-thread speed-up (target: 1.8×); and
64 seed-size members on one thread, which train side by side in SIMD
lanes (target: 50 ns per net-step), against JAX's ``jit(vmap(scan))`` of
the same 64 fits where JAX is installed (the issue: about 3× faster).
"""
try:
    from . import report
except ImportError:
    import report

TARGET = 1.8


def ensemble_report(results):
    """A markdown table from ``test_ensemble.py`` results."""
    table = report._medians(results, ("size",), "variant")
    rows = []
    for (size,), entry in table.items():
        loop, one, two = (entry.get(v) for v in ("loop", "ensemble-1-thread", "ensemble-2-threads"))
        one = one or entry.get("ensemble-lanes-1-thread")  # the seed-size members, in SIMD lanes
        steps = entry["info"]["steps"]
        speedup = None if one is None or two is None else one / two
        fastest = two or one
        jax = entry.get("jax-vmap")
        rows.append([size, report.format_seconds(loop), report.format_seconds(one), report.format_seconds(two),
                     report.format_seconds(fastest / steps) if fastest else "—", report.format_ratio(loop, one),
                     "—" if speedup is None else f"{speedup:.2f}× ({'met' if speedup >= TARGET else '**missed**'}"
                                                 f", ≥ {TARGET:g}×)",
                     "—" if jax is None else f"{report.format_seconds(jax)}, {report.format_ratio(jax, one)}"])
    return report.markdown_table(
        ["size", "loop of Net.fit", "Ensemble, 1 thread", "Ensemble, 2 threads", "per net-step (fastest)",
         "loop / Ensemble (1 thread)", "2 threads vs 1", "JAX vmap, and / Ensemble"], rows, "lrrrrrlr")


def main(argv=None):
    report.print_table(__doc__, "test_ensemble.py", ensemble_report, argv)


if __name__ == "__main__":
    main()
