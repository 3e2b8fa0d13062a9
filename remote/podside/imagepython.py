"""What the image's interpreter (RT_PYTHON) already provides, and a fingerprint of it.

A RunPod pytorch image ships torch (and its CUDA libraries) in the interpreter's site-packages. The
training venv is created with --system-site-packages so it sees them, and it is keyed on the image:
venv/.rt-image holds the fingerprint the venv was built against (line 1) and the stamps of the
image's site-packages folders (line 2: "<path>|<mtime_ns>" for each), so a warm start compares stamps
and starts no Python. A changed stamp means a new probe; a changed fingerprint (another image:
another Python version, other site-packages folders or installed distributions) rebuilds the venv.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import List, Optional, Tuple

IMAGE_RECORD = ".rt-image"

# Runs under RT_PYTHON: its version, site-packages folders and installed distributions, as JSON.
PROBE = r"""
import json, site, sys, sysconfig
from importlib import metadata
paths = sysconfig.get_paths()
sites = []
for p in [paths.get("purelib"), paths.get("platlib")] + list(getattr(site, "getsitepackages", lambda: [])()):
    if p and p not in sites:
        sites.append(p)
dists = sorted({"%s==%s" % (d.metadata["Name"], d.version) for d in metadata.distributions(path=sites)
                if d.metadata["Name"]})
print(json.dumps({"version": sys.version.splitlines()[0], "executable": sys.executable, "sites": sites,
                  "dists": dists}))
"""


@dataclass(frozen=True)
class ImagePython:
    version: str  # first line of sys.version
    executable: str
    sites: Tuple[str, ...]  # its site-packages folders
    dists: Tuple[str, ...]  # "Name==version", sorted

    @property
    def fingerprint(self) -> str:
        # Not the executable's path: a copy of the same interpreter elsewhere is the same image (the
        # venv's own interpreter check catches one whose files went away).
        blob = json.dumps([self.version, list(self.sites), list(self.dists)])
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def has(self, name: str) -> bool:
        want = name.lower().replace("_", "-")
        return any(d.split("==", 1)[0].lower().replace("_", "-") == want for d in self.dists)


def parse_probe(out: Optional[str]) -> Optional[ImagePython]:
    """The probe's JSON -> ImagePython; None when the output is not what the probe prints."""
    if not out:
        return None
    try:
        data = json.loads(out.strip().splitlines()[-1])
        return ImagePython(
            version=str(data["version"]),
            executable=str(data["executable"]),
            sites=tuple(str(s) for s in data["sites"]),
            dists=tuple(str(d) for d in data["dists"]),
        )
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def site_stamps(sites: List[str]) -> str:
    """ "<path>|<mtime_ns>" of each site-packages folder (a folder's mtime moves when a package is
    added or removed); "<path>|-" for one that does not exist."""
    parts = []
    for path in sites:
        try:
            parts.append(f"{path}|{os.stat(path).st_mtime_ns}")
        except OSError:
            parts.append(f"{path}|-")
    return " ".join(parts)


def stamp_paths(stamps: str) -> List[str]:
    return [part.rsplit("|", 1)[0] for part in stamps.split(" ") if part]


def read_image_record(path: str) -> Tuple[Optional[str], Optional[str]]:
    """(fingerprint, stamps) from venv/.rt-image, (None, None) when it is missing or torn."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except (OSError, ValueError):
        return None, None
    if len(lines) >= 2 and len(lines[0]) == 64 and lines[1]:
        return lines[0], lines[1]
    return None, None
