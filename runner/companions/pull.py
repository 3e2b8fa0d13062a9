"""`runner pull [PATH] [DEST] [--config C] [--log] [--via s3|ssh]`: results home, with or without a pod.

The S3 path (runner/volume/fetch.py S3Source) needs no pod and makes no RunPod API call. Without S3 the
pod must be running (this command never starts it: that is what S3 is for); then the same pull logic
runs over SFTP on the pod's SSH (SftpSource below). Which folder: PATH, else --config's output_dir, else
the output_dir of the run in <workspace>/.runner/state.json, else the last run recorded on this machine.
"""

from __future__ import annotations

import argparse
import stat as statmod
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from remote.podside.contract import parse_json_object
from runner.errors import EXIT_INTERRUPTED, PodNotRunning, UsageError
from runner.output import plain as _say
from runner.output import plural
from runner.pod.stack import read_outputs_for
from runner.pod.stack_outputs import StackOutputs
from runner.safepath import UnsafeName, check_component, open_for_write
from runner.settings import Settings
from runner.termtext import VALUE, for_stream
from runner.volume.fetch import Pulled, RemoteFile, pull_newest_checkpoint, pull_tree
from runner.volume.sync import choose
from runner.volume.transfer import CHUNK, Progress, partial_path


class SftpSource:
    """The pod's filesystem over SFTP on the runner's SSH connection (the pod must run)."""

    where = "over SSH from the running pod"

    def __init__(self, conn: Any):
        import paramiko

        sftp = paramiko.SFTPClient.from_transport(conn._transport)
        if sftp is None:
            from runner.errors import SshError

            raise SshError(
                "the pod's SSH server refused an SFTP session; use the S3 path (--via s3) or "
                "`python -m runner ssh` to copy by hand."
            )
        self.sftp = sftp
        self.refused: list[str] = []  # names in the pod's listings that were not single safe names

    def files(self, path: str) -> list[RemoteFile]:
        try:
            st = self.sftp.stat(path)
        except OSError:
            return []
        if not statmod.S_ISDIR(st.st_mode or 0):
            return [RemoteFile("", int(st.st_size or 0), st.st_mtime)]
        out: list[RemoteFile] = []
        stack = [""]
        while stack:
            rel = stack.pop()
            for entry in self.sftp.listdir_attr(f"{path.rstrip('/')}/{rel}" if rel else path):
                child = f"{rel}/{entry.filename}" if rel else entry.filename
                try:
                    check_component(entry.filename)
                except UnsafeName as e:
                    self.refused.append(f"{child!r}: {e.why}")
                    continue
                if statmod.S_ISDIR(entry.st_mode or 0):
                    stack.append(child)
                elif statmod.S_ISREG(entry.st_mode or 0):
                    out.append(RemoteFile(child, int(entry.st_size or 0), entry.st_mtime))
        return sorted(out, key=lambda f: f.rel)

    def download(self, path: str, items: Sequence[tuple[RemoteFile, Path]], progress: Progress) -> None:
        import os

        try:
            for f, local in items:
                remote = path if f.rel == "" else f"{path.rstrip('/')}/{f.rel}"
                local.parent.mkdir(parents=True, exist_ok=True)
                tmp = partial_path(local)
                have = tmp.stat().st_size if tmp.exists() else 0
                have = have if have <= f.size else 0
                progress.add(have)
                with self.sftp.open(remote, "rb") as src, open_for_write(tmp, append=bool(have)) as dst:
                    src.seek(have)
                    while chunk := src.read(CHUNK):
                        dst.write(chunk)
                        progress.add(len(chunk))
                if tmp.stat().st_size != f.size:
                    raise UsageError(
                        f"{remote} arrived with {tmp.stat().st_size} of {f.size} bytes (it changed while "
                        "being read?); run the pull again."
                    )
                os.replace(tmp, local)
                if f.mtime is not None:
                    os.utime(local, (f.mtime, f.mtime))
                progress.file_done()
        finally:
            progress.close()


def _output_dir(args: argparse.Namespace, settings: Settings, outputs: StackOutputs, state: dict | None) -> str:
    paths = outputs.volume_paths
    repo_dir = (state or {}).get("repo_dir") or paths.default_repo_dir(settings.repo_url)
    config = getattr(args, "config", None)
    if config:
        from runner.train.train_config import load_train_config

        out = load_train_config(config, settings.project_root).output_dir
        if PurePosixPath(out).is_absolute():
            return out
        if not repo_dir:
            raise UsageError(
                f"output_dir {out} of {config} is relative to the training repo, whose place on the "
                "volume is unknown: set REPO_URL in .runpod.env, or pass the folder as PATH."
            )
        return str(PurePosixPath(repo_dir) / out)
    if state and state.get("output_dir"):
        return str(state["output_dir"])
    from runner.train import run_record as runrecord

    try:
        run_id = settings.paths.last_run.read_text().strip()
    except OSError:
        run_id = ""
    record = runrecord.load(settings.paths, run_id) if run_id else None
    if record is not None and record.output_dir:
        return record.output_dir
    raise UsageError(
        "no run known to take the checkpoint from (no .runner/state.json on the volume, no run started "
        "from this machine); pass --config configs/<name>.yaml or the folder as PATH."
    )


def _report(pulled: Pulled, where: str, refused_in_listing: Sequence[str] = ()) -> None:
    for note in pulled.skipped:
        _say(f"skipped incomplete {note}")
    for note in (*refused_in_listing, *pulled.refused):
        _say(f"warning: not written, a name from the pod that is not a safe relative path: {note}")
    if pulled.already_here:
        _say(f"{pulled.path} is already here and complete ({plural(pulled.files, 'file')}); nothing to transfer.")
    else:
        _say(f"pulled {plural(pulled.files, 'file')}, {pulled.bytes / 1e6:.1f} MB {where} -> {pulled.path}")
    print(for_stream(str(pulled.path), sys.stdout, VALUE))


def run(args: argparse.Namespace, settings: Settings) -> int:
    path_arg, dest_arg = getattr(args, "path", None), getattr(args, "dest", None) or getattr(args, "dest_opt", None)
    if getattr(args, "log", False) and path_arg:
        if dest_arg:
            raise UsageError("--log pulls the run's log: pass at most a DEST (`runner pull --log [DEST]`), not a PATH.")
        path_arg, dest_arg = None, path_arg  # `runner pull --log DIR`: the one positional is the destination
    dest = Path(dest_arg or ".").expanduser().resolve()
    outputs = read_outputs_for(settings)
    paths = outputs.volume_paths
    vs = choose(settings, outputs, getattr(args, "via", None), "pulling results")
    conn = None
    source: Any
    try:
        if vs is not None:
            from runner.volume.fetch import S3Source
            from runner.volume.s3 import VolumeClient

            client = VolumeClient(vs)
            source = S3Source(client)
            state_raw = client.read(vs.key_for(paths.state_file))
        else:
            from runner.pod.link import open_pod_link

            try:
                link = open_pod_link(settings, start_if_stopped=False, outputs=outputs)
            except PodNotRunning as e:
                raise PodNotRunning(
                    e.summary,
                    hint="Without RunPod's S3 API `runner pull` needs the running pod. Set RUNPOD_S3_ACCESS_KEY and "
                    "RUNPOD_S3_SECRET_KEY (docs/guide/data.md) to pull with it stopped, or start it "
                    "(`python -m runner train`).",
                ) from None
            conn = link.connect()
            source = SftpSource(conn)
            state_raw = conn.read_file(paths.state_file)
        state = parse_json_object(state_raw)
        dest.mkdir(parents=True, exist_ok=True)
        if getattr(args, "log", False):
            pulled = pull_tree(source, paths.log, dest)
        elif path_arg:
            path = (
                path_arg if PurePosixPath(path_arg).is_absolute() else str(PurePosixPath(outputs.workspace) / path_arg)
            )
            pulled = pull_tree(source, path, dest)
        else:
            pulled = pull_newest_checkpoint(source, _output_dir(args, settings, outputs, state), dest)
        _report(pulled, source.where, source.refused)
        return 0
    except KeyboardInterrupt:
        _say("pull interrupted; run it again to continue (finished files are kept, partial ones resume).")
        return EXIT_INTERRUPTED
    finally:
        if conn is not None:
            conn.close()


__all__ = ["SftpSource", "run"]
