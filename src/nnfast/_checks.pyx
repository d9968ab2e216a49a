"""Input scans for the validation layer: one compiled pass instead of several NumPy calls."""
cimport numpy as cnp
from cython cimport floating

from nnfast._arrays cimport all_finite, is_float32, vector_data

cnp.import_array()


cdef Py_ssize_t first_non_finite_typed(floating* kind, cnp.ndarray values) except -2:
    cdef Py_ssize_t i, found = -1, size = cnp.PyArray_SIZE(values)
    cdef const floating* flat = vector_data(values, kind, 0, False)
    with nogil:
        if all_finite(flat, size):  # the usual case, found by a faster loop
            return -1
        for i in range(size):
            # x - x is 0 for every finite x and NaN for NaN and +-inf.
            if flat[i] - flat[i] != 0:
                found = i
                break
    return found


def first_non_finite(cnp.ndarray values):
    """Return the flat index of the first NaN or infinity in ``values``, or -1.

    Parameters
    ----------
    values : ndarray of float32 or float64, C-contiguous, any shape
        Not modified.
    """
    if is_float32(values):
        return first_non_finite_typed(<float*>NULL, values)
    return first_non_finite_typed(<double*>NULL, values)


cdef extern from *:
    """
    #if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    /* libgcc's CPU model also checks that the OS saves the AVX registers. */
    static int nnfast_cpu_has_avx2(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx2"); }
    static int nnfast_cpu_has_avx512f(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx512f"); }
    #include <cpuid.h>
    #include <string.h>
    /* AMD's Zen cores (family 17h and later, and Hygon's, which are Zen) add on
       pipes of their own, beside the ones that multiply or fuse a multiply-add;
       Intel's cores, and AMD's older ones, add on the multiply-add ports. */
    static int nnfast_cpu_adds_on_own_pipes(void) {
        unsigned int eax, ebx, ecx, edx, family;
        char vendor[13];
        if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx))
            return 0;
        memcpy(vendor, &ebx, 4);
        memcpy(vendor + 4, &edx, 4);
        memcpy(vendor + 8, &ecx, 4);
        vendor[12] = 0;
        if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
            return 0;
        family = (eax >> 8) & 0xf;
        if (family == 0xf)
            family += (eax >> 20) & 0xff;
        return (!strcmp(vendor, "AuthenticAMD") && family >= 0x17) || !strcmp(vendor, "HygonGenuine");
    }
    #else
    static int nnfast_cpu_has_avx2(void) { return 0; }
    static int nnfast_cpu_has_avx512f(void) { return 0; }
    static int nnfast_cpu_adds_on_own_pipes(void) { return 0; }
    #endif
    """
    int nnfast_cpu_has_avx2() nogil
    int nnfast_cpu_has_avx512f() nogil
    int nnfast_cpu_adds_on_own_pipes() nogil


def cpu_has_avx2():
    """Return whether this CPU (and OS) can run the AVX2 build of the kernels."""
    return bool(nnfast_cpu_has_avx2())


def cpu_has_avx512f():
    """Return whether this CPU (and OS) runs AVX-512F, as OpenBLAS's SkylakeX kernels need."""
    return bool(nnfast_cpu_has_avx512f())


def cpu_adds_on_own_pipes():
    """Return whether this CPU adds floating-point vectors on pipes of their own (AMD's
    Zen cores), so that a multiply and an add issue together as fast as one fused
    multiply-add; False for Intel's cores and every other, where both take the
    multiply-add ports."""
    return bool(nnfast_cpu_adds_on_own_pipes())
