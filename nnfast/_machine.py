"""Facts of this machine that decide how the kernels compute a product.

The kernels choose between nnfast's blocked loops and BLAS from the shape of
a product and from facts that do not change while a process runs: the sizes
of the CPU's L1 data and L2 caches, whether its cores add on pipes of their
own, and the vector width of the kernels OpenBLAS runs. Nothing is timed, so
a run gives the same bits every time on a machine. ``describe()`` returns
the facts for benchmark headers.
"""
import os

from nnfast import _checks

# Used when neither sysconf nor sysfs tells a cache's size: the smallest per
# core of the x86-64 CPUs of the last decade.
DEFAULT_CACHE_BYTES = {1: 32 * 1024, 2: 256 * 1024}
# OpenBLAS's kernels by vector width, as OPENBLAS_CORETYPE names them
# (lower case); any other name is taken to run 16-byte vectors.
OPENBLAS_CORES = {
    64: ("skylakex", "cooperlake", "sapphirerapids"),
    32: ("haswell", "zen", "sandybridge", "skylake"),
}


def cache_bytes(level):
    """The level-1 data or the level-2 cache per core in bytes: sysconf, else
    Linux's sysfs, else ``DEFAULT_CACHE_BYTES``."""
    name = {1: "SC_LEVEL1_DCACHE_SIZE", 2: "SC_LEVEL2_CACHE_SIZE"}[level]
    try:
        size = os.sysconf(name)
    except (ValueError, OSError, AttributeError):
        size = 0
    if size > 0:
        return size
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(root)):
            with open(os.path.join(root, index, "level")) as text:
                if text.read().strip() != str(level):
                    continue
            with open(os.path.join(root, index, "type")) as text:
                if text.read().strip() == "Instruction":
                    continue
            with open(os.path.join(root, index, "size")) as text:
                value = text.read().strip().upper()
            scale = {"K": 1024, "M": 1024**2}.get(value[-1:], 1)
            return int(value.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return DEFAULT_CACHE_BYTES[level]


def l2_cache_bytes():
    """The L2 cache per core in bytes (see ``cache_bytes``)."""
    return cache_bytes(2)


def l1d_cache_bytes():
    """The L1 data cache per core in bytes (see ``cache_bytes``)."""
    return cache_bytes(1)


def adds_on_own_pipes():
    """Whether this CPU's cores add floating-point vectors on pipes of their own
    (AMD's Zen), beside those that multiply: see ``loops_cache_bytes``."""
    return _checks.cpu_adds_on_own_pipes()


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


def loops_cache_bytes(vector_bytes):
    """The most bytes of op(a) a product may reuse and still run on nnfast's loops.

    nnfast's loops multiply and then add, two roundings as in every build,
    where OpenBLAS's kernels (Haswell's and wider) fuse the two. On cores
    that add on pipes of their own (AMD's Zen) a multiply and an add issue
    together, so the blocked kernels keep BLAS's pace while the rows of
    op(a) they reread once per block of columns stay in L2: a quarter of L2
    leaves the rest of it to the slice of b, the rows of c and the other
    layers' data; where OpenBLAS's vectors are wider than the loops', BLAS
    does proportionally more per cycle once its call is paid for, and the
    share shrinks by the ratio. Where adds take the multiply-add ports
    (Intel's cores) the loops run at half BLAS's rate or less, and win only
    while a product is so small that BLAS's call and packing cost as much
    as the arithmetic: while it reads at most an eighth of L1. Where
    OpenBLAS runs vectors narrower than the loops' (its kernels then do not
    fuse either), the L2 rule applies on every core.

    Parameters
    ----------
    vector_bytes : int
        The loops' vector width: every kernel build passes the AVX2 build's,
        so that all builds choose alike on one machine.

    Returns
    -------
    int
    """
    vector = max(vector_bytes, 8)
    blas_vector = blas_vector_bytes()
    if not adds_on_own_pipes() and blas_vector >= vector:
        return l1d_cache_bytes() // 8
    return l2_cache_bytes() // 4 * vector // max(blas_vector, vector)


def describe():
    """The facts, for a benchmark's header.

    Returns
    -------
    dict
        ``l1d_bytes``, ``l2_bytes``, ``adds_on_own_pipes``, ``blas_vector_bytes``
        and ``OPENBLAS_CORETYPE`` (or None).
    """
    return dict(l1d_bytes=l1d_cache_bytes(), l2_bytes=l2_cache_bytes(), adds_on_own_pipes=adds_on_own_pipes(),
                blas_vector_bytes=blas_vector_bytes(),
                openblas_coretype=os.environ.get("OPENBLAS_CORETYPE"))
