"""Fused kernels for the hot paths: Numba on the CPU, CUDA C through CuPy on the GPU.

Shipped as the subpackage ``scratchae.kernels``. Every kernel has a plain NumPy/CuPy
reference expression beside it and a test that the two agree.
"""
