"""glibc malloc settings that give large response buffers back to the system when freed.

The gateway holds originals (megabytes) and results (up to tens of megabytes) only for
the length of a request, besides what its result cache keeps. glibc serves blocks over
its mmap threshold with their own mappings, returned to the kernel on free, but raises
that threshold to the size of each such block freed (up to 32 MB): after a few large
responses, buffers of that size come from the heap instead, where the holes they leave
keep resident memory growing long after the requests are gone. A fixed threshold turns
that adjustment off, so resident memory is what the cache and the requests in flight
hold. Set in-process so it holds however the gateway is started.
"""

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 1024 * 1024  # blocks from 1 MiB up get their own mapping
TRIM_THRESHOLD = 8 * 1024 * 1024  # give freed heap tops back beyond this
ARENA_MAX = 2  # the event loop and a few helper threads need no arena each


def release_large_buffers() -> bool:
    """Fix glibc's mmap threshold and bound its arenas; False where malloc is not glibc's."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # musl, macOS, Windows: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = [
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        mallopt(M_ARENA_MAX, ARENA_MAX),
    ]
    return all(applied)
