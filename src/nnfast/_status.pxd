# Outcome of a training step; nnfast/_history.py holds the same numbers.
cdef enum:
    STEP_OK = 0
    LOSS_NOT_FINITE = 1
    UPDATE_NOT_FINITE = 2
