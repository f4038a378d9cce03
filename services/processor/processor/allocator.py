"""glibc malloc tunables for image-sized buffers, set from inside the process.

A 1080p RGB array is 6 MB. glibc serves blocks over its mmap threshold (128 kB
at start, rising to at most 32 MB as freed blocks teach it) with fresh mmaps,
and gives freed heap tops back to the kernel past its trim threshold; either
way each request's arrays page-fault in again, ~1 ms per MB here (13 ms for
``np.asarray`` on a fresh 1080p decode). Raising both thresholds keeps freed
buffers mapped and reused. Setting them with ``mallopt`` at start, rather than
``MALLOC_*_`` variables, covers every way the service runs (uvicorn, Procfile,
Docker, tests, the benchmark) without each launcher having to carry them.

What is kept is bounded: jobs run on whichever of the thread pool's threads is free,
and glibc gives threads arenas of their own (up to eight per core), each keeping up to
the trim threshold of freed memory. Two arenas shared by every thread bound the freed
memory kept to about 2 x ``TRIM_THRESHOLD``, so resident memory levels off after
warm-up instead of growing with every new thread that runs a job.

Freed blocks in the middle of a heap are not given back by the trim threshold, which
only looks at the top; a mix of image sizes leaves such holes. ``trim_above`` gives
them back (``malloc_trim``) whenever resident memory passes a soft limit, so a burst of
large jobs does not leave the process at its peak for good.
"""

import ctypes
import ctypes.util
import functools
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 256 * 1024 * 1024  # serve image buffers from the heap, never mmap
TRIM_THRESHOLD = 256 * 1024 * 1024  # keep up to this much freed heap mapped, per arena
ARENA_MAX = 2


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has mallopt and malloc_trim), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - the lookup is the test: musl, macOS and Windows lack it
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim.restype = ctypes.c_int
    return libc


def resident_bytes() -> int:
    """Resident memory of the process, in bytes (Linux /proc; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def trim_above(limit_bytes: int) -> bool:
    """Give freed heap memory back to the system if resident memory is over the limit."""
    libc = _libc()
    if libc is None or limit_bytes <= 0 or resident_bytes() <= limit_bytes:
        return False
    libc.malloc_trim(0)
    return True


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds and bound its arenas; False if malloc is not glibc."""
    libc = _libc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_ARENA_MAX, ARENA_MAX),
    )
    return all([bool(mallopt(option, value)) for option, value in settings])
