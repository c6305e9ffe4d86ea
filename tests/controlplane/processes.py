"""Child processes that never outlive the test run.

Each binary runs in its own process group with its output in a log file. `stop` sends SIGTERM to
the group, then SIGKILL after a deadline. Every started process is also registered for an atexit
stop, and on Linux asks the kernel (PR_SET_PDEATHSIG) to send it SIGKILL when the process that
started it dies, so even a killed pytest leaves no orphan (SIGKILL, not SIGTERM: kube-apiserver
hangs in its graceful shutdown once etcd, killed alongside, is gone). (The kernel ties that to the starting
*thread*: start the control plane from a thread that lives as long as it does, e.g. the main one.)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def preexec() -> None:  # runs in the child between fork and exec
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return preexec


class ManagedProcess:
    """One binary, started in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.log = log
        self._env = env
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the binary; its stdout and stderr go to the log file."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
                env=self._env,
            )
        with _live_lock:
            _live.add(self)

    @property
    def pid(self) -> int | None:
        """The process id, once started."""
        return None if self._popen is None else self._popen.pid

    def exit_code(self) -> int | None:
        """None while running (or never started), else the exit status (negative: killed by a signal)."""
        return None if self._popen is None else self._popen.poll()

    def running(self) -> bool:
        """Started and not exited."""
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the log, for error messages."""
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def death_report(self) -> str:
        """Why this exited process is gone: its exit, command, the start of the last Go panic in
        its log (a panic's goroutine dump pushes the `panic:` line far from the tail) and the tail."""
        code = self.exit_code()
        report = [
            f"{self.name} (pid {self.pid}) {exit_reason(code) if code is not None else 'is still running'}",
            f"command: {' '.join(self.argv)}",
        ]
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            lines = []
        panics = [i for i, line in enumerate(lines) if line.startswith("panic:")]
        if panics:
            report += [f"the last panic in {self.log}:", *lines[panics[-1] : panics[-1] + 12]]
        report += [f"last lines of {self.log}:", self.log_tail()]
        return "\n".join(report)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; idempotent."""
        popen = self._popen
        if popen is None:
            return
        if popen.poll() is None:
            self._signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal_group(popen.pid, signal.SIGKILL)
                popen.wait(timeout=grace)
        # Anything else left in the group (nothing is expected) goes too.
        self._signal_group(popen.pid, signal.SIGKILL)
        with _live_lock:
            _live.discard(self)

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


class StartupError(RuntimeError):
    """A control-plane binary failed to start: which one, why, and the tail of its log."""

    def __init__(self, process: ManagedProcess, reason: str) -> None:
        self.process = process
        self.reason = reason
        super().__init__(
            f"{process.name} failed to start: {reason}\n"
            f"command: {' '.join(process.argv)}\n"
            f"last lines of {process.log}:\n{process.log_tail()}"
        )


def exit_reason(code: int) -> str:
    """A Popen return code in words: "killed by SIGKILL" (negative codes) or "exited with status 2"."""
    if code >= 0:
        return f"exited with status {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def stop_all(grace: float = 5.0) -> None:
    """Stop every process still registered (the atexit path), newest first."""
    with _live_lock:
        processes = sorted(_live, key=lambda p: p.pid or 0, reverse=True)
    for process in processes:
        process.stop(grace)


atexit.register(stop_all)


def wait_until(
    condition: Callable[[], bool], deadline: float, what: str, watched: list[ManagedProcess]
) -> None:
    """Poll `condition` until true; raise StartupError if a watched process exits or time runs out."""
    while True:
        for process in watched:
            code = process.exit_code()
            if code is not None:
                raise StartupError(process, f"{exit_reason(code)} while waiting for {what}")
        with contextlib.suppress(OSError):
            if condition():
                return
        if time.monotonic() > deadline:
            raise StartupError(watched[-1], f"timed out waiting for {what}")
        time.sleep(0.1)
