"""Fixtures of the hostile-pod suite: a 1 MiB volume that a test can fill (a real tmpfs), and the idle
watcher started as the pod's start command starts it."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

SMALL_VOLUME = "1m"  # room for the pod-side program (~250 KB) and a launch; the test fills the rest


@dataclass
class SmallVolume:
    path: Path

    def fill(self) -> int:
        """Write until the file system is full (ENOSPC), as checkpoints fill a network volume; the
        bytes written."""
        written = 0
        with open(self.path / "filler.bin", "ab", buffering=0) as fh:
            while True:
                try:
                    written += fh.write(b"\0" * 4096)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
        for n in range(64):  # the last few blocks a small write may still find
            try:
                with open(self.path / f"filler-{n}.bin", "wb", buffering=0) as fh:
                    fh.write(b"\0" * 512)
            except OSError:
                break
        return written

    def free(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize


def mount_small(path: Path, size: str = SMALL_VOLUME) -> SmallVolume:
    """A tmpfs of `size` at path (the directory may hold files already: they are hidden under it)."""
    if os.geteuid() != 0:
        pytest.fail(
            "the full-volume tests mount a 1 MiB tmpfs and need root (the suite runs as root: scripts/test.sh)",
            pytrace=False,
        )
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)], check=True)
    return SmallVolume(path)


@pytest.fixture
def small_volume():
    """mount(path) makes path a 1 MiB file system for the test; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(path: Path, size: str = SMALL_VOLUME) -> SmallVolume:
        volume = mount_small(path, size)
        mounted.append(path)
        return volume

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def start_idle_watcher(fake_runpod, pod_id: str, workspace: Path, tmp_path: Path, ssh_ports: Iterable[int]) -> None:
    """The idle watcher (idle after 0.5 s) as the pod's start command starts it, with the pod's own key
    from an rp_environment file; connections to ssh_ports count as sessions."""
    from remote.podside import bundle

    rp_env = tmp_path / "rp_environment"
    values = {**fake_runpod.rp_environment(pod_id), "RUNPOD_REST_URL": fake_runpod.rest_url}
    rp_env.write_text("".join(f'export {k}="{v}"\n' for k, v in values.items()))
    subprocess.run(
        ["bash", "-s"],
        input=bundle.idle_watch_script(0.5, str(workspace), str(rp_env)).encode(),
        check=True,
        timeout=30,
        env={**os.environ, "RT_IDLE_SSH_PORTS": ",".join(map(str, ssh_ports))},
    )
