"""Giving memory back to the system once a burst of reconciles is over (issue 17 point 6).

Holds `MemoryReturn`: it counts the reconciles in flight and, once none has run for `QUIET`
seconds, asks the C allocator to hand its free pages back (glibc's `malloc_trim(0)`). A restart
over 1,000 resources runs all their reconciles at once; what they held (specs, desired and
observed bindings, statuses, decoded answers) is freed when they finish, but glibc keeps the free
pages in its heaps, so the process's resident memory stayed at the burst's peak until it exited
(docs/design.md, Memory after a burst). Where the C library has no `malloc_trim` (musl, macOS)
it does nothing. It must not decide anything about resources or bindings.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Callable, Iterator

log = logging.getLogger("entra_rbac.triggers")

# Seconds without a reconcile before the free memory is returned: a burst (a restart, a refresh of
# every resource, a namespace matched by hundreds) is over, not merely between two reconciles.
QUIET = 2.0


def malloc_trim() -> Callable[[], None] | None:
    """glibc's `malloc_trim(0)` (every arena, free pages in the middle of a heap included), or None."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def release() -> None:
        trim(0)

    return release


class MemoryReturn:
    """Counts reconciles in flight; `QUIET` seconds after the last one ends, returns free memory."""

    def __init__(self, release: Callable[[], None] | None, quiet: float = QUIET) -> None:
        self._release = release
        self._quiet = quiet
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._last_end = 0.0  # loop time the last reconcile ended

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Around one reconcile (it runs on the event loop's thread, so no lock is needed)."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0 and self._release is not None:
                loop = asyncio.get_running_loop()
                self._last_end = loop.time()
                # One timer for the whole burst, moved on when it fires early: a refresh of 1,000
                # unchanged resources ends a reconcile 1,000 times, and a timer scheduled and
                # cancelled each time was a tenth of its CPU (py-spy).
                if self._timer is None:
                    self._timer = loop.call_at(self._last_end + self._quiet, self._return)

    def _return(self) -> None:
        self._timer = None
        if self._in_flight or self._release is None:
            return  # the one in flight sets the timer again when it ends
        loop = asyncio.get_running_loop()
        due = self._last_end + self._quiet
        if loop.time() < due:
            self._timer = loop.call_at(due, self._return)
            return
        self._release()


# One per process: the allocator's heaps are the process's, whichever loop runs the reconciles.
MEMORY = MemoryReturn(malloc_trim())
