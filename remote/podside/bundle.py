"""What the runner streams to the pod: the shim remote/remote_train.sh plus this package as a zipapp.

launcher_script() is the exact text to send after the `export NAME=<quoted value>` lines: the shim's
functions, then the program (a deterministic zip of remote/podside/, base64 in a quoted heredoc),
then the call of the shim's rt_main with the program's content hash. The shim writes the program to
<workspace>/.runner/podside-<hash>.pyz (temp file, then rename; kept and reused while the hash is
the same) and runs it with the pod's python3. This module runs on the runner's side only and is not
part of the zip.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import io
import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SHIM = PACKAGE_DIR.parent / "remote_train.sh"
PACKAGE_NAME = "podside"
NOT_SHIPPED = {"bundle.py"}
ZIP_ROOT_MAIN = (
    "import sys\n"
    "from podside.__main__ import main\n"
    "sys.exit(main())\n"
)
HEREDOC_END = "RT_PODSIDE_PROGRAM"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    info.create_system = 3
    zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


@functools.lru_cache(maxsize=1)
def program_bytes() -> bytes:
    """The zipapp: __main__.py plus podside/*.py, sorted, fixed timestamps: same sources, same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _entry(zf, "__main__.py", ZIP_ROOT_MAIN.encode())
        for path in sorted(PACKAGE_DIR.glob("*.py")):
            if path.name not in NOT_SHIPPED:
                _entry(zf, f"{PACKAGE_NAME}/{path.name}", path.read_bytes())
    return buf.getvalue()


def program_digest() -> str:
    return hashlib.sha256(program_bytes()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def launcher_script() -> str:
    """The shim, the embedded program and the call that runs it (cached per process)."""
    shim = SHIM.read_text(encoding="utf-8")
    encoded = base64.encodebytes(program_bytes()).decode("ascii")
    return (f"{shim.rstrip()}\n\n"
            f"rt_program() {{\n  cat <<'{HEREDOC_END}'\n{encoded}{HEREDOC_END}\n}}\n\n"
            f"rt_main {program_digest()} </dev/null\n")
