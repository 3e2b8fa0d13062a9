"""A stand-in `pulumi` executable for tests and benchmarks (the real CLI is not installable here).

`StubPulumi.create(dir)` writes `<dir>/bin/pulumi`, a Python script that records each call
(argv, cwd, the names of the RUNPOD_*/PULUMI_CONFIG* variables it saw, and whether RUNPOD_API_KEY equals
`expect_api_key` — never the value itself) to calls.jsonl and answers from behaviour.json:
  `stack output …`  prints `outputs` as JSON (or `stdout` verbatim), `stderr`, exits `exit_code`
  `up …`            prints `up_lines` one per line, runs `up_hook` (below), exits `up_exit_code`;
                    `--replace URN` is accepted (and recorded as "replace" in the call); when the
                    outputs name a pod_urn, any other URN fails as Pulumi fails on an unknown resource
  `version`         prints v3.272.0
`up_hook` plays the Pulumi provider recreating the pod, against the fake RunPod API over its /_fake/
HTTP controls: {"fake_url": ..., "add_pod": {FakeRunPod.add_pod kwargs}, "outputs": {overrides},
"rp_env_file": path (optional)}. It creates the pod (POST /_fake/add_pod), sets the outputs that the
next `stack output` prints (pod_id = the new pod, plus the overrides), writes the new pod's
/etc/rp_environment stand-in (RUNPOD_POD_ID, its pod key, RUNPOD_REST_URL) when rp_env_file is given,
prints `+ runpod:Pod created <id>`, and is used once (it is removed from behaviour.json). With
`--replace` the hook first deletes the pod the outputs name (REST DELETE /v2/pods/<id> with the
RUNPOD_API_KEY the stub was given), as the pod provider's delete-before-replace does, and prints
`- runpod:Pod deleted <id>`.
Tests use the `stub_pulumi` fixture (tests/fixtures/stub_pulumi.py), which also sets PULUMI_BINARY.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = r"""#!{python}
import json, os, sys
here = {here!r}
with open(os.path.join(here, "behaviour.json")) as fh:
    b = json.load(fh)
args = sys.argv[1:]
replace = None
for i, a in enumerate(args):
    if a == "--replace" and i + 1 < len(args):
        replace = args[i + 1]
    elif a.startswith("--replace="):
        replace = a.split("=", 1)[1]
with open(os.path.join(here, "calls.jsonl"), "a") as fh:
    fh.write(json.dumps({{
        "argv": args,
        "cwd": os.getcwd(),
        "env_keys": sorted(k for k in os.environ if k.startswith(("RUNPOD_", "PULUMI_CONFIG"))),
        "api_key_matches": os.environ.get("RUNPOD_API_KEY") == b.get("expect_api_key"),
        "stdin_is_tty": os.isatty(0),
        "replace": replace,
    }}) + "\n")
if args[:1] == ["version"]:
    print("v3.272.0"); sys.exit(0)
if args[:2] == ["stack", "output"]:
    if b.get("stdout") is not None:
        sys.stdout.write(b["stdout"])
    elif b.get("outputs") is not None:
        print(json.dumps(b["outputs"], indent=2))
    if b.get("stderr"):
        sys.stderr.write(b["stderr"])
    sys.exit(b.get("exit_code", 0))
if args[:1] == ["up"]:
    known = (b.get("outputs") or {{}}).get("pod_urn")
    if replace is not None and known and replace != known:
        sys.stderr.write("error: no resource named '%s' found\n" % replace)
        sys.exit(255)
    for line in b.get("up_lines", []):
        print(line, flush=True)
    hook = b.pop("up_hook", None)
    if hook and b.get("up_exit_code", 0) == 0:
        import urllib.request
        def fake(method, path, body=None, key=None):
            data = None if body is None else json.dumps(body).encode()
            headers = {{"Content-Type": "application/json"}}
            if key:
                headers["Authorization"] = "Bearer " + key
            req = urllib.request.Request(hook["fake_url"] + path, data=data, method=method, headers=headers)
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return json.loads(raw) if raw.strip() else None
        old = (b.get("outputs") or {{}}).get("pod_id")
        if replace is not None and old:
            fake("DELETE", "/v2/pods/%s" % old, key=os.environ.get("RUNPOD_API_KEY"))
            print("    - runpod:Pod deleted %s" % old, flush=True)
        pod = fake("POST", "/_fake/add_pod", hook.get("add_pod") or {{}})
        b["outputs"] = {{**(b.get("outputs") or {{}}), **(hook.get("outputs") or {{}}), "pod_id": pod["id"]}}
        if hook.get("rp_env_file"):
            env = fake("GET", "/_fake/pods/%s/rp_environment" % pod["id"])
            lines = {{"RUNPOD_POD_ID": pod["id"], "RUNPOD_API_KEY": env["RUNPOD_API_KEY"],
                      "RUNPOD_REST_URL": hook["fake_url"]}}
            with open(hook["rp_env_file"], "w") as fh:
                fh.write("".join('export %s="%s"\n' % kv for kv in lines.items()))
        tmp = os.path.join(here, "behaviour.json.tmp")
        with open(tmp, "w") as fh:
            json.dump(b, fh)
        os.replace(tmp, os.path.join(here, "behaviour.json"))
        print("    + runpod:Pod created %s" % pod["id"], flush=True)
    sys.exit(b.get("up_exit_code", 0))
sys.stderr.write("stub pulumi: unexpected arguments %r\n" % (args,))
sys.exit(99)
"""


@dataclass
class StubPulumi:
    root: Path

    @property
    def path(self) -> Path:
        return self.root / "bin" / "pulumi"

    @classmethod
    def create(cls, root: Path) -> StubPulumi:
        (root / "bin").mkdir(parents=True, exist_ok=True)
        stub = cls(root)
        stub.path.write_text(_SCRIPT.format(python=sys.executable, here=str(root)))
        stub.path.chmod(0o755)
        stub.set()
        return stub

    def set(self, **behaviour) -> None:
        """outputs, stdout, stderr, exit_code, up_lines, up_exit_code, up_hook, expect_api_key."""
        (self.root / "behaviour.json").write_text(json.dumps(behaviour))

    def update(self, **behaviour) -> None:
        """Change some keys, keep the others."""
        self.set(**{**self.behaviour(), **behaviour})

    def behaviour(self) -> dict:
        return json.loads((self.root / "behaviour.json").read_text())

    def replaced(self) -> list[str | None]:
        """The --replace URN of each `up` call (None: a plain `up`)."""
        return [c.get("replace") for c in self.up_calls()]

    def up_calls(self) -> list[dict]:
        return [c for c in self.calls() if c["argv"][:1] == ["up"]]

    def calls(self) -> list[dict]:
        f = self.root / "calls.jsonl"
        if not f.exists():
            return []
        return [json.loads(line) for line in f.read_text().splitlines() if line]


POD_URN = "urn:pulumi:dev::runpod-trainer::pulumi-python:dynamic/runpod:SpotPod::pod"
# Outputs as the stack exports them (docs/reference/stack.md).
SAMPLE_OUTPUTS = {
    "pod_id": "pod-abc123",
    "ssh_host": "203.0.113.7",
    "ssh_port": 40022,
    "ssh_user": "root",
    "volume_id": "vol-xyz",
    "data_center": "EU-RO-1",
    "gpu_type": "NVIDIA GeForce RTX 4090",
    "gpu_count": 1,
    "market": "spot",
    "bid_per_gpu": 0.35,
    "cost_per_hr": 0.35,
    "workspace": "/workspace",
    "spot_fallback": "fail",
    "max_on_demand_price": None,
    "pod_name": "runpod-trainer-dev",
    "image": "runpod/pytorch:1.0.3-cu1290-torch291-ubuntu2204",
    "pod_urn": POD_URN,
    "idle_stop_minutes": 20,
}

__all__ = ["POD_URN", "SAMPLE_OUTPUTS", "StubPulumi"]
