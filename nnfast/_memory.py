"""Refusing allocations that cannot fit in memory, before making them.

On Linux a large ``malloc`` usually succeeds whatever its size, and the
process is killed later, when the pages are touched. So nnfast compares
what a call will allocate with the memory available first, and raises a
``MemoryError`` that names the size instead.
"""
import os

__all__ = ["available_memory", "check_allocation"]

# Allocations below this are made without asking: asking reads /proc.
CHECK_ABOVE = 256 * 2**20


def _cgroup_room():
    """Bytes the process's cgroup (v2) still allows, or None where there is no limit."""
    try:
        with open("/sys/fs/cgroup/memory.max") as limit, open("/sys/fs/cgroup/memory.current") as used:
            maximum = limit.read().strip()
            return None if maximum == "max" else max(int(maximum) - int(used.read()), 0)
    except (OSError, ValueError):
        return None


def available_memory():
    """Return the bytes of memory a new allocation can use, or None if unknown.

    Linux's ``MemAvailable`` (or the physical memory elsewhere), and no more
    than the cgroup's limit allows.
    """
    available = None
    try:
        with open("/proc/meminfo", "rb") as meminfo:
            for line in meminfo:
                if line.startswith(b"MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            pass
    room = _cgroup_room()
    if room is not None:
        available = room if available is None else min(available, room)
    return available


def _format_bytes(count):
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{count} B"
        count /= 1024


def check_allocation(nbytes, what):
    """Raise ``MemoryError`` if ``nbytes`` bytes, for ``what``, exceed the memory available.

    Parameters
    ----------
    nbytes : int
    what : callable
        Returns what the memory is for, as the message names it; called
        only for the message, since most calls never need one.
    """
    if nbytes < CHECK_ABOVE:
        return
    available = available_memory()
    if available is not None and nbytes > available:
        raise MemoryError(
            f"{what()} would need {_format_bytes(nbytes)} of memory, but only "
            f"{_format_bytes(available)} is available"
        )
