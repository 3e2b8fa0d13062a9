"""What the runner streams to the pod: the shim remote/remote_train.sh plus this package as a zipapp.

launcher_script() is the exact text to send after the `export NAME=<quoted value>` lines: the shim's
functions, then the program (a deterministic zip of remote/podside/, base64 in a quoted heredoc),
then the call of the shim's rt_main with the program's content hash. The shim writes the program to
<workspace>/.runner/podside-<hash>.pyz (temp file, then rename; kept and reused while the hash is
the same) and runs it with the pod's python3. This module runs on the runner's side only and is not
part of the zip.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import zipfile

PACKAGE_DIR = Path(__file__).resolve().parent
SHIM = PACKAGE_DIR.parent / "remote_train.sh"
PACKAGE_NAME = "podside"
NOT_SHIPPED = {"bundle.py"}
ZIP_ROOT_MAIN = "import sys\nfrom podside.__main__ import main\nsys.exit(main())\n"
HEREDOC_END = "RT_PODSIDE_PROGRAM"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    import zipfile

    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.create_system = 3
    zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


@functools.lru_cache(maxsize=1)
def program_bytes() -> bytes:
    """The zipapp: __main__.py plus podside/*.py, sorted, fixed timestamps: same sources, same bytes."""
    import io
    import zipfile

    buf = io.BytesIO()
    shipped = _shipped()
    codes = _bytecodes([f"{PACKAGE_NAME}/{path.name}" for path in shipped], shipped)
    with zipfile.ZipFile(buf, "w") as zf:
        _entry(zf, "__main__.py", ZIP_ROOT_MAIN.encode())
        for path in shipped:
            name = f"{PACKAGE_NAME}/{path.name}"
            source = path.read_bytes()
            _entry(zf, name, source)
            if name in codes:
                _entry(zf, name + "c", _pyc(source, codes[name]))
    return buf.getvalue()


# Compiles in a child with a fixed hash seed: marshal writes a set constant (`x in {"a", "b"}`) in
# its iteration order, which depends on the seed, and the program must be the same bytes in every
# process (its hash names it on the pod, and the launcher script is cached by source digest).
_COMPILE = r"""
import marshal, sys
out = sys.stdout.buffer
for name, path in zip(sys.argv[1::2], sys.argv[2::2]):
    with open(path, "rb") as fh:
        data = marshal.dumps(compile(fh.read(), name, "exec", dont_inherit=True))
    out.write(len(data).to_bytes(8, "little") + data)
"""


def _bytecodes(names: list[str], paths: list[Path]) -> dict[str, bytes]:
    """name -> marshalled code object, compiled by this interpreter; {} when that fails (the
    program then ships its sources only, which work the same, a little slower to start)."""
    import subprocess
    import sys

    argv = [sys.executable, "-I", "-c", _COMPILE]
    for name, path in zip(names, paths):
        argv += [name, str(path)]
    try:
        proc = subprocess.run(argv, capture_output=True, env={"PYTHONHASHSEED": "0"}, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if proc.returncode != 0:
        return {}
    data, codes, pos = proc.stdout, {}, 0
    for name in names:
        size = int.from_bytes(data[pos : pos + 8], "little")
        codes[name] = data[pos + 8 : pos + 8 + size]
        pos += 8 + size
    return codes if pos == len(data) else {}


def _pyc(source: bytes, code: bytes) -> bytes:
    """A checked hash-based .pyc (PEP 552) of this interpreter: zipimport never writes bytecode, so
    without it the launcher and the supervisor each compile every module on every start (~50 ms
    each on the launch's critical path). A pod whose python3 is another version sees a foreign
    magic number and imports the .py beside it instead; the hash ties the .pyc to its source."""
    import importlib.util

    flags = (0b11).to_bytes(4, "little")  # hash-based, checked against the source
    return importlib.util.MAGIC_NUMBER + flags + importlib.util.source_hash(source) + code


def _shipped() -> list[Path]:
    return [path for path in sorted(PACKAGE_DIR.glob("*.py")) if path.name not in NOT_SHIPPED]


# ---------------------------------------------------------------- the pod's start command
# The part of the program the idle watcher needs (idlewatch.py and what it imports), small enough
# to travel inside the pod's start command, where no volume file can be relied on yet. Without a
# launch's program on the volume there is no run to report either: the slice sends no event.
IDLE_MODULES = (
    "__init__.py",
    "contract.py",
    "staterecord.py",
    "volumepaths.py",
    "runfiles.py",
    "rpenvfile.py",
    "record.py",
    "selfstop.py",
    "sshsessions.py",
    "idlewatch.py",
)
IDLE_MAIN = (
    "import sys\n"
    "from podside.idlewatch import main\n"
    "sys.exit(main(sys.argv[2:] if sys.argv[1:2] == ['idlewatch'] else sys.argv[1:]))\n"
)
IDLE_COMMAND_MARK = "idlewatch --idle-seconds"  # in every start command built here (runner doctor looks for it)
IMAGE_START = "/start.sh"  # what RunPod's images run as their command (reference section 3)


@functools.lru_cache(maxsize=1)
def idle_program_bytes() -> bytes:
    """The idle watcher's zipapp: the modules without docstrings and comments, entries stored (the
    whole is xz-compressed for the trip), about 12 kB in the start command."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in [
            ("__main__.py", IDLE_MAIN.encode()),
            *((f"{PACKAGE_NAME}/{n}", _minified(PACKAGE_DIR / n)) for n in IDLE_MODULES),
        ]:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _minified(path: Path) -> bytes:
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return (ast.unparse(tree) + "\n").encode()


def idle_watch_script(
    idle_s: float, workspace: str, rp_env_file: str | None = None, ssh_ports: str | None = None, slot: str = ""
) -> str:
    """Shell text (no single quotes: RunPod wraps a start command in them) that starts the watcher
    detached with --ensure: the volume's program when a launch left it there (.runner/podside-current.pyz:
    it also sends `idle-stopped`), else the slice written to /tmp. Never fails the caller: without
    python3 or a mounted volume it does nothing. slot: the pod's name in a stack of several (its records
    and log are its own)."""
    import base64
    import lzma
    import shlex

    blob = base64.b64encode(lzma.compress(idle_program_bytes(), preset=9 | lzma.PRESET_EXTREME)).decode("ascii")
    digest = hashlib.sha256(idle_program_bytes()).hexdigest()[:12]
    unpack = "import base64,lzma,sys; sys.stdout.buffer.write(lzma.decompress(base64.b64decode(sys.stdin.read())))"
    ws = shlex.quote(workspace)
    logs = _log_dir(ws, slot)
    env_file = f" --rp-env-file {shlex.quote(rp_env_file)}" if rp_env_file else ""
    env_file += f" --pod-slot {_checked_slot(slot)}" if slot else ""
    ports = f"RT_IDLE_SSH_PORTS={shlex.quote(ssh_ports)} " if ssh_ports else ""
    return (
        f"RT_IW=/tmp/rt-idlewatch-{digest}.pyz; RT_IV={ws}/.runner/podside-current.pyz; "
        f"mkdir -p {logs} 2>/dev/null && "
        f'if [ -f "$RT_IV" ]; then RT_IW=$RT_IV; else echo {blob} | python3 -c "{unpack}" > $RT_IW; fi && '
        f"({ports}setsid python3 $RT_IW {IDLE_COMMAND_MARK} {idle_s:g} --workspace {ws}{env_file} --ensure "
        f"</dev/null >>{logs}/idlewatch.log 2>&1 &)"
    )


def _checked_slot(slot: str) -> str:
    from remote.podside.contract import POD_SLOT_RE

    if not POD_SLOT_RE.match(slot):
        raise ValueError(f"a pod's name in its stack must be lower-case letters, digits and '-', got {slot!r}")
    return slot


def _log_dir(ws: str, slot: str) -> str:
    """The pod's log folder (contract.VolumePaths.log_dir) in shell text; ws is quoted already."""
    return f"{ws}/logs/pods/{_checked_slot(slot)}" if slot else f"{ws}/logs"


HOST_KEY_DIR = ".runner/ssh-host-keys"  # on the volume: the pod's SSH host keys, kept across restarts
HOST_KEY_TYPES = ("ed25519", "ecdsa", "rsa")


def host_key_script(workspace: str) -> str:
    """Shell text (no single quotes) that gives sshd the same host keys on every container start: the
    ones kept on the volume (<workspace>/.runner/ssh-host-keys, 0700, keys 0600) are copied into
    /etc/ssh (RT_SSH_HOST_KEY_DIR) before the image's start script runs; on the first start they are
    generated there first and kept. The image's /start.sh only generates the keys that are missing, so
    sshd serves these. Without ssh-keygen or a mounted volume it does nothing (sshd makes its own)."""
    import shlex

    kept = shlex.quote(f"{workspace.rstrip('/')}/{HOST_KEY_DIR}")
    generate = "; ".join(
        f'[ -f $D/ssh_host_{t}_key ] || ssh-keygen -q -t {t} -N "" -f $D/ssh_host_{t}_key' for t in HOST_KEY_TYPES
    )
    return (
        f"D=${{RT_SSH_HOST_KEY_DIR:-/etc/ssh}}; K={kept}; "
        f"if ls $K/ssh_host_*_key >/dev/null 2>&1; then "
        f"mkdir -p $D && cp -p $K/ssh_host_* $D/ && chmod 600 $D/ssh_host_*_key; "
        f"elif [ -d {shlex.quote(workspace)} ] && command -v ssh-keygen >/dev/null 2>&1; then "
        f"mkdir -p $D && {generate} && "
        f"(umask 077; mkdir -p $K && cp -p $D/ssh_host_*_key $D/ssh_host_*_key.pub $K/); "
        f"fi 2>/dev/null"
    )


AUTORESUME_MARK = "autoresume --workspace"  # in every start command built here (runner doctor may look for it)


def autoresume_script(workspace: str, slot: str = "") -> str:
    """Shell text (no single quotes) that starts `podside autoresume` detached when a launch left the
    program on the volume (.runner/podside-current.pyz); it resumes the pod's unfinished run
    (autoresume.py). Never fails the caller: without the program or python3 it does nothing."""
    import shlex

    ws = shlex.quote(workspace)
    logs = _log_dir(ws, slot)
    pod = f" --pod-slot {slot}" if slot else ""
    return (
        f"RT_AR={ws}/.runner/podside-current.pyz; "
        f"if [ -f $RT_AR ] && mkdir -p {logs} 2>/dev/null; then "
        f"(setsid python3 $RT_AR {AUTORESUME_MARK} {ws}{pod} </dev/null >>{logs}/autoresume.log 2>&1 &); fi"
    )


def start_command(idle_s: float, workspace: str, slot: str = "") -> str:
    """The pod's start command (RunPod: REST v2 `args`, GraphQL `dockerArgs`), run at every container
    start: the pod's SSH host keys kept on the volume, the auto-resume, the idle watcher (when idle_s > 0),
    then the image's own start script
    (RT_IMAGE_START, default /start.sh: sshd, keys, sleep), which it becomes. slot: the pod's name in a
    stack of several pods on one volume ("" for the first: its command is what it always was)."""
    import re

    if not re.fullmatch(r"/[A-Za-z0-9_./-]*", workspace):  # RunPod puts the command in single quotes
        raise ValueError(f"the pod's volume mount path must be a plain absolute path, got {workspace!r}")
    steps = [host_key_script(workspace), autoresume_script(workspace, slot)]
    if idle_s > 0:
        steps.append(idle_watch_script(idle_s, workspace, slot=slot))
    start = f"S=${{RT_IMAGE_START:-{IMAGE_START}}}; if [ -x $S ]; then exec $S; fi; exec sleep infinity"
    # `sh -c '<script>'`, the shape of the official SDK's own start commands (runpod/apps/shim.py): POSIX sh,
    # so an image without bash works too.
    return f"sh -c '{'; '.join(steps)}; {start}'"


def program_digest() -> str:
    return hashlib.sha256(program_bytes()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def launcher_script() -> str:
    """The shim, the embedded program and the call that runs it (cached per process).

    Building it (zipfile, deflate, base64) costs the runner ~20 ms on every launch, so the result is
    also kept next to this package's bytecode, like a .pyc: __pycache__/launcher-<hash of the
    sources>.sh. A source change gives another name; an unwritable install just builds each time."""
    import importlib.util

    digest = hashlib.sha256(importlib.util.MAGIC_NUMBER)  # the program holds this Python's bytecode
    for path in [SHIM, Path(__file__), *_shipped()]:  # this file: how the program is built
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    cached = PACKAGE_DIR / "__pycache__" / f"launcher-{digest.hexdigest()[:24]}.sh"
    try:
        return cached.read_text(encoding="utf-8")
    except OSError:
        pass
    text = build_launcher_script()
    _keep(cached, text)
    return text


@functools.lru_cache(maxsize=1)
def short_launcher_script() -> str:
    """The shim and `rt_cached <hash>`, without the embedded program (~3 kB instead of ~200 kB): for a
    pod that already has .runner/podside-<hash>.pyz. The hash is read off launcher_script()'s last
    line (cached on disk), so this builds no zip."""
    return f"{SHIM.read_text(encoding='utf-8').rstrip()}\n\nrt_cached {launched_digest()} </dev/null\n"


def launched_digest() -> str:
    """program_digest() of the program launcher_script() embeds, read off its last line (no zip built)."""
    return launcher_script().rstrip().rsplit("\n", 1)[-1].split()[1]


def build_launcher_script() -> str:
    import base64

    shim = SHIM.read_text(encoding="utf-8")
    encoded = base64.encodebytes(program_bytes()).decode("ascii")
    return (
        f"{shim.rstrip()}\n\n"
        f"rt_program() {{\n  cat <<'{HEREDOC_END}'\n{encoded}{HEREDOC_END}\n}}\n\n"
        f"rt_main {program_digest()} </dev/null\n"
    )


def _keep(path: Path, text: str) -> None:
    """Write the cache atomically and drop older launcher-*.sh; any failure only costs the cache."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        for old in path.parent.glob("launcher-*.sh"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        tmp.unlink(missing_ok=True)
