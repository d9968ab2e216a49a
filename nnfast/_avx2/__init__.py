"""The kernels built for CPUs with AVX2 (see setup.py); ``nnfast._kernels`` chooses them."""
