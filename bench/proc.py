"""A process's resident memory and CPU time from /proc (Linux), for the operator benchmarks."""

from __future__ import annotations

import os
from pathlib import Path


def rss_mib(pid: int) -> float:
    """Resident memory now, MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib(pid: int) -> float:
    """The most resident memory the process has had, MiB (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command's closing parenthesis: state is field 3, utime 14 and stime 15 (proc(5)).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


MB_PER_MIB = 1.048576  # the memory targets are MB (10^6 bytes); /proc reports KiB
ARENA_RESERVE_KIB = 64 * 1024  # glibc's non-main arenas: 64 MiB reserved each (HEAP_MAX_SIZE, 64-bit)


def resident_by_allocator(pid: int) -> dict[str, float]:
    """Where the resident memory is, MiB, from /proc/PID/smaps (Linux, glibc's layout):

    - `heap`: glibc's main arena (the brk heap, `[heap]`);
    - `thread arenas`: glibc's per-thread arenas: an anonymous read-write map followed by the
      PROT_NONE rest of its 64 MiB reservation (a thread that calls malloc gets one, up to 8 per
      core);
    - `anonymous`: every other anonymous map: pymalloc's 1 MiB arenas (adjacent ones merge into
      one map), malloc's own mmaps of large blocks, thread stacks;
    - `files`: mapped files (the interpreter, shared libraries, extension modules).
    """
    maps: list[tuple[int, str, str, int]] = []  # (size KiB, perms, path, Rss KiB)
    size = 0
    perms = path = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if not head:
            continue
        if "-" in head[0] and not head[0].endswith(":"):
            start, _, end = head[0].partition("-")
            size = (int(end, 16) - int(start, 16)) // 1024
            perms, path = head[1], (head[5] if len(head) > 5 else "")
        elif head[0] == "Rss:":
            maps.append((size, perms, path, int(head[1])))
    kib = {"heap": 0, "thread arenas": 0, "anonymous": 0, "files": 0}
    for i, (size, perms, path, rss) in enumerate(maps):
        following = maps[i + 1] if i + 1 < len(maps) else None
        if path == "[heap]":
            kib["heap"] += rss
        elif path.startswith("/"):
            kib["files"] += rss
        elif (
            not path
            and perms.startswith("rw")
            and following is not None
            and not following[2]
            and following[1].startswith("---")
            and (size + following[0]) % ARENA_RESERVE_KIB == 0
        ):
            kib["thread arenas"] += rss
        else:
            kib["anonymous"] += rss
    return {name: value / 1024 for name, value in kib.items()}
