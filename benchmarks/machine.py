"""What every benchmark row names: the machine it was measured on (CPUs of one kind differ)."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_model() -> str:
    """The processor's name from ``/proc/cpuinfo`` ("unknown CPU" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def machine_line() -> str:
    """CPU model, core count and the load average, for a table's caption."""
    return (f"{cpu_model()}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} at the start")
