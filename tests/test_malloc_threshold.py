"""Large arrays go back to the system when freed (issue 14 item 7, the soak's growth).

glibc raises its mmap threshold past every mmap'd block that is freed, so arrays of one
value per case then come from the heap, where a few small blocks still alive between them
keep their pages resident after they are freed (benchmarks/RESULTS.md, "Soak").
``memory.fix_mmap_threshold`` (called by ``create_app``) keeps the threshold fixed.

Each case runs in a fresh interpreter (the threshold is per process and cannot be read
back): one large array is freed first, as the cube's first load is, then 64 arrays of
just over 1 MiB with a small block kept after each, like a report's new columns beside a
request's small objects; the arrays are freed and the resident size measured. The test
checks both outcomes, so it shows the mechanism as well as the fix.
"""

from __future__ import annotations

import subprocess
import sys

ARRAYS = 64
SCRIPT = f"""
import sys
from pathlib import Path

import numpy as np

from gis_service.memory import fix_mmap_threshold

def rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
big = np.ones(16 << 20, np.uint8)  # mmap'd, and freed: glibc would raise its threshold
del big
before = rss_mib()
arrays, kept = [], []
for i in range({ARRAYS}):
    arrays.append(np.ones((1 << 20) + i * 4096, np.uint8))  # growing, as the case count does
    kept.append(np.ones(2048, np.uint8))  # a small block on the heap, still alive after
del arrays
print(rss_mib() - before)
"""


def retained_mib(mode: str) -> float:
    """MiB still resident after the arrays are freed, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def test_freed_arrays_stay_resident_under_glibcs_dynamic_threshold() -> None:
    """The mechanism: without the fix most of the 64 MiB stays resident."""
    assert retained_mib("dynamic") > ARRAYS / 2


def test_fixed_threshold_returns_freed_arrays() -> None:
    assert retained_mib("fixed") < 8


ARENAS_SCRIPT = """
import ctypes, os, sys, threading

from gis_service.memory import cap_arenas

if sys.argv[1] == "capped":
    assert cap_arenas(2)
barrier = threading.Barrier(8)
keep = []

def work():
    barrier.wait()
    keep.append(ctypes.create_string_buffer(4096))  # a malloc on this thread
    barrier.wait()

threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
os.dup2(1, 2)  # malloc_stats(3) writes to stderr: bring it to stdout
ctypes.CDLL("libc.so.6").malloc_stats()
"""


def arenas(mode: str) -> int:
    """How many malloc arenas a fresh process has after 8 threads each allocated."""
    out = subprocess.run(
        [sys.executable, "-c", ARENAS_SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return sum(1 for line in out.stdout.splitlines() if line.startswith("Arena "))


def test_request_threads_share_the_capped_arenas() -> None:
    """memory.cap_arenas (create_app, GIS_MALLOC_ARENA_MAX): 8 threads, 2 arenas; without
    the cap glibc gives each thread one of its own (the mechanism)."""
    assert arenas("default") > 4
    assert arenas("capped") <= 2


TRIM_SCRIPT = """
import sys, time
from pathlib import Path

import numpy as np

from gis_service.memory import Trimmer, fix_mmap_threshold

def rss_mib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

fix_mmap_threshold()
trimmer = Trimmer(0.1 if sys.argv[1] == "trimmed" else 0).start()
blocks = [np.ones(64 * 1024 - 512, np.uint8) for _ in range(1024)]  # 64 MiB on the heap
kept = blocks[::64]  # one in 64 stays alive: the heap cannot shrink from its top
before = rss_mib()
del blocks
time.sleep(0.5)
print(before - rss_mib(), trimmer.trims)
trimmer.stop()
"""


def returned_mib(mode: str) -> tuple[float, int]:
    """MiB given back within 0.5 s after 63 of 64 heap blocks are freed, and the trims."""
    out = subprocess.run(
        [sys.executable, "-c", TRIM_SCRIPT, mode], capture_output=True, text=True, check=True
    )
    freed, trims = out.stdout.split()
    return float(freed), int(trims)


def test_the_trimmer_returns_free_pages_between_live_blocks() -> None:
    """memory.Trimmer (the app's lifespan, GIS_MALLOC_TRIM_SECONDS): free pages between
    live blocks go back to the system; without it they stay resident (the mechanism)."""
    freed, trims = returned_mib("untrimmed")
    assert freed < 8 and trims == 0
    freed, trims = returned_mib("trimmed")
    assert freed > 48 and trims >= 1
