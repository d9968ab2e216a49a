# Array arguments of the kernel entry points.
#
# Entry points take plain ndarrays rather than typed memoryviews: acquiring
# a memoryview costs ~0.14 us per argument, which at the seed's size is
# more than the whole training step. These helpers check, in a few C
# comparisons, everything the unchecked loops rely on (dtype, native byte
# order, alignment, C order, shape, writeability) and return the data pointer.
cimport numpy as cnp
from cython cimport floating
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy


cdef inline floating* vector_data(cnp.ndarray array, floating* kind, Py_ssize_t min_size,
                                  bint writeable) except NULL:
    """Data of a C-contiguous array of ``floating`` holding at least ``min_size`` elements."""
    cdef int typenum = cnp.NPY_DOUBLE if floating is double else cnp.NPY_FLOAT
    if (cnp.PyArray_TYPE(array) != typenum or not cnp.PyArray_IS_C_CONTIGUOUS(array)
            or not cnp.PyArray_ISBEHAVED_RO(array) or cnp.PyArray_SIZE(array) < min_size
            or (writeable and not cnp.PyArray_ISWRITEABLE(array))):
        raise ValueError(
            f"kernel argument must be an aligned, native-order, C-contiguous{' writeable' if writeable else ''} "
            f"{'float64' if floating is double else 'float32'} array of at least {min_size} "
            f"elements, got {(<object>array).dtype} of shape {(<object>array).shape}"
        )
    return <floating*>cnp.PyArray_DATA(array)


cdef inline floating* matrix_data(cnp.ndarray array, floating* kind, Py_ssize_t rows,
                                  Py_ssize_t cols, bint writeable) except NULL:
    """Data of a C-contiguous (rows, cols) array of ``floating``; ``rows`` -1 takes any."""
    if (cnp.PyArray_NDIM(array) != 2 or cnp.PyArray_DIM(array, 1) != cols
            or cnp.PyArray_DIM(array, 0) < 1
            or (rows >= 0 and cnp.PyArray_DIM(array, 0) != rows)):
        raise ValueError(f"kernel argument must have shape ({rows}, {cols}), got {(<object>array).shape}")
    return vector_data(array, kind, 0, writeable)


cdef inline Py_ssize_t* index_data(cnp.ndarray array, Py_ssize_t size) except NULL:
    """Data of a C-contiguous writeable intp array of exactly ``size`` elements."""
    if (cnp.PyArray_TYPE(array) != cnp.NPY_INTP or not cnp.PyArray_IS_C_CONTIGUOUS(array)
            or cnp.PyArray_SIZE(array) != size or not cnp.PyArray_ISWRITEABLE(array)):
        raise ValueError(f"kernel argument must be a writeable intp array of {size} elements")
    return <Py_ssize_t*>cnp.PyArray_DATA(array)


cdef inline bint is_float32(cnp.ndarray array) noexcept:
    """Whether the entry point should run its float32 specialization."""
    return cnp.PyArray_TYPE(array) == cnp.NPY_FLOAT


cdef struct NanBits:
    # Accumulated bit patterns of ``x - x``: zero while every x was finite.
    # float32 patterns are kept in 32 bits: widening each to 64 bits costs
    # the update loops a quarter of their time.
    uint64_t wide
    uint32_t narrow


cdef inline void add_nan_bits(NanBits* bits, floating value) noexcept nogil:
    """OR the bit pattern of ``value - value`` (zero for finite values, a NaN's
    otherwise) into ``bits``.

    Loops check finiteness this way rather than by comparing: an integer OR
    vectorizes, where a compare folded into an int flag does not for
    float64 under SSE2 (GCC leaves such a loop scalar).
    """
    cdef floating zero = value - value
    cdef uint64_t wide
    cdef uint32_t narrow
    if floating is double:
        memcpy(&wide, &zero, 8)
        bits.wide |= wide
    else:
        memcpy(&narrow, &zero, 4)
        bits.narrow |= narrow


cdef inline bint no_nan_bits(const NanBits* bits) noexcept nogil:
    """Whether every value added to ``bits`` was finite."""
    return bits.wide == 0 and bits.narrow == 0


cdef inline bint all_finite(const floating* values, Py_ssize_t size) noexcept nogil:
    """Whether no entry of ``values[:size]`` is NaN or infinite."""
    cdef Py_ssize_t i
    cdef NanBits bits = NanBits(0, 0)
    # An OR over the whole array instead of stopping at the first hit: free of
    # branches, the loop vectorizes (measured 2.5x faster for float64, 3x for
    # float32, than a loop with an early exit).
    for i in range(size):
        add_nan_bits(&bits, values[i])
    return no_nan_bits(&bits)
