"""CPU time as the benchmarks read it, from /proc (Linux)."""

from __future__ import annotations

import math
import os


def machine_busy_seconds() -> float:
    """CPU time all processes (and hypervisor steal) have used since boot, from /proc/stat; NaN elsewhere."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
