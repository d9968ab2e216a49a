"""Durations, ratios and Markdown tables for the benchmark reports (``nnfast bench`` and ``bench/``)."""

__all__ = ["format_seconds", "format_difference", "format_ratio", "markdown_table"]


def format_seconds(seconds):
    """Format a duration with three significant digits in ns, µs, ms or s.

    Parameters
    ----------
    seconds : float or None

    Returns
    -------
    str
        ``"—"`` for None.
    """
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_difference(seconds):
    """Format a signed duration like ``format_seconds`` (``"-120 ns"``, ``"+3.1 µs"``)."""
    return ("-" if seconds < 0 else "+") + format_seconds(abs(seconds))


def format_ratio(numerator, denominator):
    """Format ``numerator / denominator`` as ``"2.50×"``, or ``"—"`` if either is missing."""
    if numerator is None or denominator is None:
        return "—"
    return f"{numerator / denominator:.2f}×"


def markdown_table(headers, rows, align):
    """Return a Markdown table.

    Parameters
    ----------
    headers : list of str
    rows : list of list of str
    align : str
        One character per column: ``"l"`` or ``"r"``.
    """
    rule = ["---:" if side == "r" else "---" for side in align]
    lines = [headers, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
