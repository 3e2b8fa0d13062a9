"""remote/podside/bundle.py ships bytecode beside the sources: used by a pod whose python3 has the
runner's magic number, ignored (the .py imported instead) by any other."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import zipfile

from remote.podside import bundle

PROBE = "import sys; sys.path.insert(0, sys.argv[1]); import podside.launch as m; print(m.__file__)"


def test_the_program_imports_its_bytecode(tmp_path):
    pyz = tmp_path / "p.pyz"
    pyz.write_bytes(bundle.program_bytes())
    out = subprocess.run([sys.executable, "-I", "-c", PROBE, str(pyz)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{pyz}/podside/launch.pyc"


def test_bytecode_of_another_python_falls_back_to_the_source(tmp_path):
    names = zipfile.ZipFile(io.BytesIO(bundle.program_bytes())).namelist()
    assert "podside/launch.py" in names and "podside/launch.pyc" in names
    foreign = tmp_path / "foreign.pyz"
    with zipfile.ZipFile(io.BytesIO(bundle.program_bytes())) as src, zipfile.ZipFile(foreign, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".pyc"):
                assert data[:4] == importlib.util.MAGIC_NUMBER
                data = b"\x00\x00" + data[2:]  # another interpreter's magic number
            dst.writestr(info, data)
    out = subprocess.run([sys.executable, "-I", "-c", PROBE, str(foreign)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{foreign}/podside/launch.py"
