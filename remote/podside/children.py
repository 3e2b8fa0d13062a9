"""The supervisor's child processes (venv creation, pip, training), one at a time.

Signal handlers run in the supervisor's main thread between bytecodes, also while it waits for a
child (PEP 475), so a SIGTERM is handled at once, not when a long pip install or training ends.
The handlers find the running child here to pass the signal on.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import List, Mapping, Optional


def exit_status(returncode: int) -> int:
    """A shell-style exit status: 128 + N for a child killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


class Children:
    def __init__(self, log_path: str):
        self.log_path = log_path
        self.current: Optional[subprocess.Popen] = None

    def start(
        self, argv: List[str], env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None
    ) -> subprocess.Popen:
        """Start argv with stdout and stderr appended to the log, stdin from /dev/null."""
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self.current = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        finally:
            os.close(fd)
        return self.current

    def wait(self) -> int:
        proc = self.current
        assert proc is not None
        code = proc.wait()
        self.current = None
        return exit_status(code)

    def wait_for(self, timeout: float) -> Optional[int]:
        """The running child's exit status once it ends within timeout, else None (it still runs)."""
        proc = self.current
        assert proc is not None
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.current = None
        return exit_status(code)

    def end(self, grace_s: float) -> int:
        """Ask the running child to stop (SIGTERM), SIGKILL it after grace_s; its exit status."""
        self.signal(signal.SIGTERM)
        code = self.wait_for(grace_s)
        if code is None:
            self.signal(signal.SIGKILL)
            code = self.wait()
        return code

    def run(self, argv: List[str], env: Optional[Mapping[str, str]] = None) -> int:
        """Run argv to the end (output to the log); its exit status (127 if it cannot start)."""
        try:
            self.start(argv, env)
        except OSError as exc:
            from .logbook import append_line

            append_line(self.log_path, f"cannot run {argv[0]}: {exc.strerror}")
            return 127
        return self.wait()

    def output(
        self,
        argv: List[str],
        timeout: float = 120.0,
        env: Optional[Mapping[str, str]] = None,
        stderr_to_log: bool = False,
    ) -> Optional[str]:
        """argv's stdout (stderr discarded, or appended to the log), or None when it fails or cannot start."""
        err = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if stderr_to_log else None
        try:
            self.current = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL if err is None else err,
                universal_newlines=True,
                env=dict(env) if env is not None else None,
            )
        except OSError:
            return None
        finally:
            if err is not None:
                os.close(err)
        try:
            out, _ = self.current.communicate(timeout=timeout)
            code = self.current.returncode
        except subprocess.TimeoutExpired:
            self.current.kill()
            self.current.communicate()
            return None
        finally:
            self.current = None
        return out if code == 0 else None

    def signal(self, signum: int = signal.SIGTERM) -> Optional[subprocess.Popen]:
        """Pass a signal on to the running child, if any; returns it."""
        proc = self.current
        if proc is not None and proc.returncode is None:
            try:
                proc.send_signal(signum)
            except OSError:
                pass
        return proc
