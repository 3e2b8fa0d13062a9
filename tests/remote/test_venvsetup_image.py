"""The cold start reuses what the image's interpreter provides, and skips nothing the image lacks.

The "image" is a separate Python installation (bench/imagepython.py: a prefix of its own with its own
site-packages, this machine's pip linked in) with a hand-made distribution `imgpkg 1.0` installed.
Real `python -m venv`, real pip and the real uv; wheels from a local folder (no network)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.imagepython import link_pip, make_image_python, site_packages
from remote.podside.children import Children
from remote.podside.contract import VENV_REQUIREMENTS_MARKER
from remote.podside.installer import missing_lines
from remote.podside.venvsetup import SAME_FILES_NOTE, VenvSetup
from tests.fixtures.pod_harness import make_wheel

UV = shutil.which("uv", path=os.path.dirname(sys.executable)) or shutil.which("uv")


def install_by_hand(site: Path, name: str, version: str) -> None:
    """A distribution as an image ships it: the package and its .dist-info in site-packages."""
    (site / name).mkdir()
    (site / name / "__init__.py").write_text(f"VERSION = {version!r}\nWHERE = 'image'\n")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "RECORD").write_text("")


@pytest.fixture(scope="module")
def image_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("image")
    python = make_image_python(root / "python")
    link_pip(python)
    install_by_hand(site_packages(python), "imgpkg", "1.0")
    return root / "python"


class World:
    def __init__(self, tmp: Path, template: Path, uv: bool):
        self.image = tmp / "image"
        shutil.copytree(template, self.image, symlinks=True)
        self.python = str(self.image / "bin" / "python3")
        self.repo = tmp / "repo"
        self.repo.mkdir()
        self.wheels = tmp / "wheels"
        self.log = tmp / "log"
        self.cache = tmp / "cache"
        self.notes: list[str] = []
        path = [str(self.image / "bin"), "/usr/bin", "/bin"]
        if uv:
            assert UV, "uv is a test dependency (pyproject [test])"
            uv_bin = tmp / "uv-bin"
            uv_bin.mkdir()
            (uv_bin / "uv").symlink_to(UV)
            path.insert(0, str(uv_bin))
        # Any index but the requirements' --find-links folder is a closed port on loopback: an installer
        # that looked past --no-index would fail (and the tests below would see its fallback).
        dead = "http://127.0.0.1:9/simple"
        self.environ = {"PATH": os.pathsep.join(path), "HOME": str(tmp), "UV_INDEX_URL": dead, "PIP_INDEX_URL": dead}

    def requirements(self, *lines: str) -> None:
        head = f"--no-index\n--find-links {self.wheels}\n"
        (self.repo / "requirements.txt").write_text(head + "".join(f"{ln}\n" for ln in lines))

    def ensure(self) -> list[str]:
        start = len(self.notes)
        VenvSetup(
            str(self.repo),
            self.python,
            Children(str(self.log)),
            self.notes.append,
            cache_dir=str(self.cache),
            environ=self.environ,
        ).ensure()
        return self.notes[start:]

    def venv_import(self, name: str) -> tuple[str, str]:
        out = subprocess.run(
            [
                str(self.repo / "venv" / "bin" / "python"),
                "-c",
                f"import {name}; print({name}.VERSION); print({name}.__file__)",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        version, where = out.stdout.split()
        return version, where

    def venv_site(self) -> Path:
        return next((self.repo / "venv").glob("lib/python3*/site-packages"))


@pytest.fixture(params=["pip", "uv"])
def world(request, tmp_path, image_template) -> World:
    return World(tmp_path, image_template, uv=request.param == "uv")


def test_what_the_image_satisfies_is_used_in_place_not_installed(world):
    world.requirements("imgpkg==1.0")
    notes = world.ensure()
    version, where = world.venv_import("imgpkg")
    assert version == "1.0" and where.startswith(str(world.image)), where
    assert not list(world.venv_site().glob("imgpkg*")), "nothing installed into the venv"
    assert (world.repo / "venv" / "pyvenv.cfg").read_text().count("include-system-site-packages = true") == 1
    if world.environ["PATH"].split(os.pathsep)[0].endswith("uv-bin"):
        assert any("already satisfy" in n for n in notes), notes


def test_a_version_the_image_lacks_is_installed_into_the_venv(world):
    make_wheel(world.wheels, "imgpkg", "2.0")
    make_wheel(world.wheels, "extrapkg", "0.3")
    world.requirements("imgpkg==2.0", "extrapkg")
    notes = world.ensure()
    version, where = world.venv_import("imgpkg")
    assert version == "2.0" and where.startswith(str(world.venv_site())), where
    assert world.venv_import("extrapkg")[0] == "0.3"
    image_version = subprocess.run(
        [world.python, "-c", "import imgpkg; print(imgpkg.VERSION)"], capture_output=True, text=True, timeout=60
    ).stdout.strip()
    assert image_version == "1.0", "the image itself is left alone"
    if "uv-bin" in world.environ["PATH"]:
        assert any(n.startswith("venv: uv installs 2 missing package(s)") for n in notes), notes
        assert not any("falling back" in n for n in notes), notes
    else:
        assert any("running pip install" in n for n in notes), notes


def test_a_changed_requirements_file_installs_again(world):
    world.requirements("imgpkg")
    world.ensure()
    assert world.ensure()[-1] == "venv: requirements unchanged since the last install; nothing to install"
    make_wheel(world.wheels, "newdep", "1.5")
    world.requirements("imgpkg", "newdep==1.5")
    notes = world.ensure()
    assert any("requirements.txt or Python changed" in n for n in notes), notes
    assert world.venv_import("newdep")[0] == "1.5"
    assert not any("recreating" in n for n in notes), "a requirement change keeps the venv"


def test_a_changed_image_rebuilds_the_venv(world):
    make_wheel(world.wheels, "imgpkg", "2.0")
    world.requirements("imgpkg>=1.0")
    world.ensure()
    (world.venv_site() / "left-from-the-old-image.txt").write_text("x")
    assert world.venv_import("imgpkg")[0] == "1.0"
    # Another image: same interpreter path, but it ships imgpkg 2.0 (and so a different fingerprint).
    site = site_packages(Path(world.python))
    shutil.rmtree(site / "imgpkg")
    shutil.rmtree(site / "imgpkg-1.0.dist-info")
    install_by_hand(site, "imgpkg", "2.0")
    notes = world.ensure()
    assert any("recreating" in n for n in notes), notes
    assert not (world.venv_site() / "left-from-the-old-image.txt").exists()
    version, where = world.venv_import("imgpkg")
    assert version == "2.0" and where.startswith(str(world.image)), where


def test_a_warm_start_starts_no_python_and_installs_nothing(world):
    world.requirements("imgpkg")
    world.ensure()
    marker = (world.repo / "venv" / VENV_REQUIREMENTS_MARKER).read_text()
    started: list[list[str]] = []
    setup = VenvSetup(
        str(world.repo),
        world.python,
        Children(str(world.log)),
        world.notes.append,
        cache_dir=str(world.cache),
        environ=world.environ,
    )
    real_output, real_run = setup.children.output, setup.children.run
    setup.children.output = lambda argv, timeout=120.0: (started.append(argv), real_output(argv))[1]
    setup.children.run = lambda argv, env=None: (started.append(argv), real_run(argv, env))[1]
    setup.ensure()
    assert started == []
    assert any(n.startswith(SAME_FILES_NOTE) for n in world.notes)
    assert (world.repo / "venv" / VENV_REQUIREMENTS_MARKER).read_text() == marker


def test_a_venv_from_before_the_image_keying_is_rebuilt_once(tmp_path, image_template):
    w = World(tmp_path, image_template, uv=False)
    w.requirements("imgpkg")
    subprocess.run([w.python, "-m", "venv", "--without-pip", str(w.repo / "venv")], check=True)
    notes = w.ensure()
    assert any("not built to see the image's site-packages" in n for n in notes), notes
    assert w.venv_import("imgpkg")[1].startswith(str(w.image))
    assert not any("recreating" in n for n in w.ensure())


def test_uv_resolves_alone_when_it_agrees_with_the_image(tmp_path, image_template):
    w = World(tmp_path, image_template, uv=True)
    make_wheel(w.wheels, "imgpkg", "1.0")  # the image's version is in the index too
    make_wheel(w.wheels, "extrapkg", "0.3")
    w.requirements("imgpkg", "extrapkg")
    notes = w.ensure()
    assert "venv: uv installs 1 missing package(s): extrapkg" in notes, notes
    assert not any("asking pip" in n or "falling back" in n for n in notes), notes
    assert w.venv_import("imgpkg")[1].startswith(str(w.image))
    assert w.venv_import("extrapkg")[1].startswith(str(w.venv_site()))


def test_missing_lines_keeps_the_image_and_defers_to_pip_on_disagreement():
    image = ["torch==2.4.0+cu124", "numpy==1.26.4"]
    locked = (
        "--index-url https://pypi.org/simple\ntorch==2.4.0\nnumpy==1.26.4\nsafetensors==0.4.3 ; python_version >= '3'\n"
    )
    assert missing_lines(locked, image) == (
        ["--index-url https://pypi.org/simple"],
        ["safetensors==0.4.3 ; python_version >= '3'"],
    )
    assert missing_lines("torch==2.5.1\n", image) is None  # pip decides whether 2.4.0 would do
    assert missing_lines("Torch @ https://example.invalid/t.whl\n", image) is None
    assert missing_lines("newpkg @ file:///wheels/newpkg-1.0-py3-none-any.whl\n", image) == (
        [],
        ["newpkg @ file:///wheels/newpkg-1.0-py3-none-any.whl"],
    )
