"""The shuffling generator, written once in plain Python as the specification.

``fit`` reshuffles the sample order every epoch with Fisher-Yates driven by
SplitMix64. The compiled loop (``src/_shuffle.pyx``) implements the very
same sequence, so ``nnfast.Net`` and ``nnfast.reference.Net`` see identical
mini-batches for a given seed; a test checks the two agree.
"""
import numpy as np

_MASK64 = (1 << 64) - 1


def shuffle_state(seed):
    """Return the 64-bit starting state of the shuffle generator for ``seed``.

    ``None`` draws fresh entropy from the operating system; an int gives a
    reproducible state (mixed through ``numpy.random.SeedSequence`` so that
    nearby seeds give unrelated streams).
    """
    return int(np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0])


def splitmix64(state):
    """Advance SplitMix64 once: return ``(new_state, random 64-bit int)``."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return state, z ^ (z >> 31)


def shuffle(order, state):
    """Shuffle the int array ``order`` in place (Fisher-Yates); return the new state.

    ``j = r % (i + 1)`` has a modulo bias below ``n / 2**64``, far under
    anything a training run can detect.
    """
    for i in range(len(order) - 1, 0, -1):
        state, r = splitmix64(state)
        j = r % (i + 1)
        order[i], order[j] = order[j], order[i]
    return state
