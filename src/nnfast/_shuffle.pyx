"""Fisher-Yates shuffling driven by SplitMix64; ``nnfast/_random.py`` is its specification."""
from libc.stdint cimport uint64_t


cdef inline uint64_t splitmix64(uint64_t* state) noexcept nogil:
    """Advance the state and return the next 64 random bits."""
    state[0] += 0x9E3779B97F4A7C15ULL
    cdef uint64_t z = state[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef void shuffle_indices(Py_ssize_t* order, Py_ssize_t n, uint64_t* state) noexcept nogil:
    """Shuffle ``order[:n]`` in place, as ``nnfast._random.shuffle`` does."""
    cdef Py_ssize_t i, j, swap
    for i in range(n - 1, 0, -1):
        j = <Py_ssize_t>(splitmix64(state) % <uint64_t>(i + 1))
        swap = order[i]
        order[i] = order[j]
        order[j] = swap


def shuffle(Py_ssize_t[::1] order, uint64_t state):
    """Shuffle ``order`` in place and return the generator's new state.

    Parameters
    ----------
    order : ndarray of intp, shape (n,)
        Modified in place.
    state : int
        The generator state, as from ``nnfast._random.shuffle_state``.
    """
    if order.shape[0] > 0:
        shuffle_indices(&order[0], order.shape[0], &state)
    return state
