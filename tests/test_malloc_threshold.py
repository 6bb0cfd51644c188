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
