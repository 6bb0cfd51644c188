"""Giving memory back after large work (issue 14 item 2: memory returns to its level).

A large import or analysis frees its objects when it ends, but glibc keeps the freed heap
pages of each arena mapped for reuse (malloc(3): only the top of a heap is trimmed, and
only past M_TRIM_THRESHOLD), so the process's resident size stays at its peak. Measured on
the demo city: reading a 62 MB GeoJSON of 480,000 points that is then refused left the
server 81 MB larger for good; ``malloc_trim(0)`` — which releases the free pages inside
every arena too (glibc ≥ 2.8, madvise MADV_DONTNEED) — gave back 90 of its 100 MB.
``release`` is called where large work ends: an import job (imports/jobs.py), an access
job (access/jobs.py) and a siting (access/routes.py); an isochrone, even a 4096² raster,
left nothing behind (its buffers are mmap'd and unmapped when freed). Elsewhere (musl,
macOS) it only collects garbage.

What stays: about 1 MB per very large read, pymalloc arenas (1 MiB each) that a few small
objects kept by library caches (pyproj, pandas) pin; they are freed only when empty, so
trimming cannot return them. Started with ``PYTHONMALLOC=malloc`` the server puts small
objects on the C heap too and this residue went away in the same measurement (flat over
eight 62 MB reads), at pymalloc's speed for small objects (docs/http.md, "Limits").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import urllib.parse
from functools import lru_cache


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release() -> bool:
    """Collect garbage (cycles keep numpy buffers and GeoDataFrames alive) and return the
    C heap's free pages to the operating system. True if pages were returned. Costs a few
    milliseconds (a full collection and a walk of the heaps): call it after large work,
    not per request."""
    # urlsplit keeps its last 128 answers (functools.lru_cache): each upload's new path,
    # parsed by pyogrio, is one more small object pinning a 1 MiB pymalloc arena
    urllib.parse.clear_cache()
    gc.collect()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
