"""glibc malloc tunables for image-sized buffers, set from inside the process.

A 1080p RGB array is 6 MB. glibc serves blocks over its mmap threshold (128 kB
at start, rising to at most 32 MB as freed blocks teach it) with fresh mmaps,
and gives freed heap tops back to the kernel past its trim threshold; either
way each request's arrays page-fault in again, ~1 ms per MB here (13 ms for
``np.asarray`` on a fresh 1080p decode). Raising both thresholds keeps freed
buffers mapped and reused. Setting them with ``mallopt`` at start, rather than
``MALLOC_*_`` variables, covers every way the service runs (uvicorn, Procfile,
Docker, tests, the benchmark) without each launcher having to carry them.
"""

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 * 1024 * 1024  # serve image buffers from the heap, never mmap
TRIM_THRESHOLD = 512 * 1024 * 1024  # keep up to this much freed heap mapped


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds; False where malloc is not glibc's."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS, Windows: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
