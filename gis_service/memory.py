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
import threading
import urllib.parse
from functools import lru_cache

#: mallopt(3) parameter numbers (glibc malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: blocks from this size up are mmap'd of their own and unmapped when freed: glibc's
#: starting value, made fixed (see ``fix_mmap_threshold``)
MMAP_THRESHOLD = 128 * 1024


@lru_cache(maxsize=1)
def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def _mallopt(param: int, value: int) -> bool:
    """glibc's mallopt(3); False off glibc or when refused."""
    libc = _libc()
    mallopt = getattr(libc, "mallopt", None) if libc is not None else None
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(param, int(value)))


def cap_arenas(arena_max: int) -> bool:
    """Let the request threads share at most ``arena_max`` malloc arenas (0: glibc's
    default, 8 per core). True if set. Called once per process when the app is made,
    before the request threads start (arenas already made stay).

    Why (issue 14 item 7, benchmarks/RESULTS.md "Soak"): glibc gives a thread its own
    arena when the others are busy, up to 8 per core, and each arena keeps the free
    pages of its heap. A worker's ~40 request threads (anyio's default pool) spread a
    report's, a tile's and a statistics answer's short-lived blocks over 16 arenas, each
    holding its share of free pages: in the soak the resident size grew with the
    number of arenas in use, not with live objects (runs B and I: two arenas grew less
    than half as much). The GIL lets one thread run Python at a time, so two arenas cost
    no measurable throughput on the report path (benchmarks/soak.py)."""
    if arena_max <= 0:
        return False
    return _mallopt(M_ARENA_MAX, arena_max)


class Trimmer:
    """A daemon thread that returns the C heap's free pages every ``seconds``
    (``malloc_trim(0)``: every arena, glibc ≥ 2.8; a few milliseconds, taken between
    requests' allocations under each arena's lock). What a long-running worker frees in
    small blocks between large ones otherwise stays resident for good; trimming returns
    only free pages, so live memory — a leak — still shows in the resident size.
    ``stop()`` ends it (the app's shutdown)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._stop = threading.Event()
        self.trims = 0
        self._thread: threading.Thread | None = None

    def start(self) -> Trimmer:
        if self.seconds > 0 and _malloc_trim() is not None:
            self._thread = threading.Thread(target=self._run, name="malloc-trim", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        trim = _malloc_trim()
        while not self._stop.wait(self.seconds):
            trim(0)
            self.trims += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Keep glibc's mmap threshold fixed, so a large block always goes back to the
    system when freed. True if set (False off glibc). Called once per process when the
    app is made (app.py ``create_app``), before the request threads start.

    Why (issue 14 item 7, benchmarks/RESULTS.md "Soak"): glibc raises the threshold
    past the size of every mmap'd block that is freed (up to 32 MiB on 64 bits) and the
    trim threshold with it to twice that (mallopt(3), M_MMAP_THRESHOLD). The statistics
    cube and the tiles make arrays of one value per case — 200 KB and more each, a new
    set on every report, since each report changes the cube — so after the first large
    frees these arrays come from the heaps instead, one malloc arena per request thread
    (up to 8 per core), and a heap keeps up to the raised trim threshold of free pages.
    Under the soak's mix a worker stayed flat for minutes, then grew 15–30 MiB a minute
    in those arenas. Setting the threshold explicitly turns the dynamic adjustment off:
    arrays from 128 KiB up are mapped and unmapped each time (a few µs), heaps trim
    back past 128 KiB of free top."""
    return _mallopt(M_MMAP_THRESHOLD, threshold)


@lru_cache(maxsize=1)
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is None:
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
