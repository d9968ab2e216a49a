"""Facts of this machine that decide how the kernels compute a product.

The kernels choose between nnfast's blocked loops and BLAS from the shape of
a product and from facts that do not change while a process runs: the size
of the CPU's L2 cache, the vector width of nnfast's kernel build, and the
vector width of the kernels OpenBLAS runs. Nothing is timed, so a run gives
the same bits every time on a machine. ``describe()`` returns the facts for
benchmark headers.
"""
import os

from nnfast import _checks

# Used when neither sysconf nor sysfs tells the L2 size: the smallest L2
# per core of the x86-64 CPUs of the last decade.
DEFAULT_L2_BYTES = 256 * 1024
# OpenBLAS's kernels by vector width, as OPENBLAS_CORETYPE names them
# (lower case); any other name is taken to run 16-byte vectors.
OPENBLAS_CORES = {
    64: ("skylakex", "cooperlake", "sapphirerapids"),
    32: ("haswell", "zen", "sandybridge", "skylake"),
}


def l2_cache_bytes():
    """The L2 cache per core in bytes: sysconf, else Linux's sysfs, else DEFAULT_L2_BYTES."""
    try:
        size = os.sysconf("SC_LEVEL2_CACHE_SIZE")
    except (ValueError, OSError, AttributeError):
        size = 0
    if size > 0:
        return size
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(root)):
            with open(os.path.join(root, index, "level")) as level:
                if level.read().strip() != "2":
                    continue
            with open(os.path.join(root, index, "size")) as text:
                value = text.read().strip().upper()
            scale = {"K": 1024, "M": 1024**2}.get(value[-1:], 1)
            return int(value.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return DEFAULT_L2_BYTES


def blas_vector_bytes():
    """The vector width of the kernels OpenBLAS runs here: the core that
    OPENBLAS_CORETYPE forces, else the widest this CPU has (as OpenBLAS's
    own dispatch chooses)."""
    core = os.environ.get("OPENBLAS_CORETYPE", "").strip().lower()
    if core:
        return next((width for width, names in OPENBLAS_CORES.items() if core in names), 16)
    if _checks.cpu_has_avx512f():
        return 64
    return 32 if _checks.cpu_has_avx2() else 16


def loops_cache_bytes(build_vector_bytes):
    """The most bytes of op(a) a product may reuse and still run on nnfast's loops.

    The blocked kernels read the rows of op(a) in one slice of the inner
    dimension once per block of columns, so they keep BLAS's pace while that
    part stays in L2, and a quarter of L2 leaves the rest of it to the slice
    of b, the rows of c and the other layers' data. Where OpenBLAS's vectors
    are wider than this build's, BLAS does proportionally more per cycle
    once its call is paid for, and the share shrinks by the ratio.

    Parameters
    ----------
    build_vector_bytes : int
        The vector width of the kernel build asking (0 for plain C).

    Returns
    -------
    int
    """
    vector = max(build_vector_bytes, 8)
    return l2_cache_bytes() // 4 * vector // max(blas_vector_bytes(), vector)


def describe():
    """The facts, for a benchmark's header.

    Returns
    -------
    dict
        ``l2_bytes``, ``blas_vector_bytes`` and ``OPENBLAS_CORETYPE`` (or None).
    """
    return dict(l2_bytes=l2_cache_bytes(), blas_vector_bytes=blas_vector_bytes(),
                openblas_coretype=os.environ.get("OPENBLAS_CORETYPE"))
