"""remote/podside/bundle.py and the shim: what is streamed, and that it is small and deterministic."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

from remote.podside import bundle


def test_the_zipapp_is_deterministic_and_ships_the_package_without_bundle_py():
    first = bundle.program_bytes()
    bundle.program_bytes.cache_clear()
    assert bundle.program_bytes() == first
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert names[0] == "__main__.py" and "podside/contract.py" in names and "podside/__main__.py" in names
    assert "podside/bundle.py" not in names
    assert names == ["__main__.py"] + sorted(names[1:])


def test_launcher_script_is_the_shim_then_the_program_then_the_call():
    text = bundle.launcher_script()
    assert text is bundle.launcher_script(), "cached per process"
    shim = bundle.SHIM.read_text()
    assert text.startswith(shim.rstrip())
    assert len(shim.splitlines()) < 100
    assert text.rstrip().splitlines()[-1] == f"rt_main {bundle.program_digest()} </dev/null"
    assert "<<'RT_PODSIDE_PROGRAM'" in text


def test_the_shipped_program_runs_under_isolated_python(tmp_path):
    pyz = tmp_path / "p.pyz"
    pyz.write_bytes(bundle.program_bytes())
    out = subprocess.run(
        [sys.executable, "-I", "-S", str(pyz)],
        capture_output=True,
        text=True,
        env={"RT_ACTION": "deploy", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 2 and out.stderr == "error: RT_ACTION must be 'launch' or 'inspect' (got 'deploy')\n"


def test_no_module_is_large():
    # "No module over ~400 lines" (shared/tools/structure.py big 400): contract.py is the largest.
    for path in bundle.PACKAGE_DIR.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path.name


def test_the_shipped_modules_parse_as_python_3_8():
    # The pod image's python3 may be old; the program promises 3.8+ (run end to end with a 3.8 by hand).
    import ast

    for path in bundle.PACKAGE_DIR.glob("*.py"):
        ast.parse(path.read_text(), str(path), feature_version=(3, 8))


def test_launcher_script_is_cached_next_to_the_bytecode_and_equals_a_fresh_build():
    bundle.launcher_script.cache_clear()
    text = bundle.launcher_script()  # builds or reads the cache
    cached = list((bundle.PACKAGE_DIR / "__pycache__").glob("launcher-*.sh"))
    assert len(cached) == 1 and cached[0].read_text(encoding="utf-8") == text
    assert text == bundle.build_launcher_script()
    bundle.launcher_script.cache_clear()
    assert bundle.launcher_script() == text  # now from the cache
