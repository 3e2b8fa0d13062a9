"""remote/podside/checkpoints.py in-process: completeness against the Hugging Face Trainer layout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from remote.podside import checkpoints
from remote.podside.checkpoints import checkpoint_problem, safetensors_problem, scan
from tests.fixtures.pod_harness import safetensors_bytes, tiny_tensors, torch_zip_bytes


def trainer_save(
    out: Path, step: int, *, layout: str = "single", cut: str | None = None, cut_bytes: int = 1, state: bool = True
) -> Path:
    """Write checkpoint-<step> in the Trainer's order: weights, optimizer/scheduler/rng, trainer_state.json.
    cut: the file (by name) that a kill cut short, by cut_bytes."""
    d = out / f"checkpoint-{step}"
    d.mkdir(parents=True)
    files: dict[str, bytes] = {}
    if layout == "single":
        files["model.safetensors"] = safetensors_bytes(tiny_tensors(step % 200))
    elif layout == "bin":
        files["pytorch_model.bin"] = torch_zip_bytes()
    elif layout == "sharded":
        names = [f"model-0000{i}-of-00002.safetensors" for i in (1, 2)]
        for i, name in enumerate(names):
            files[name] = safetensors_bytes({f"layer{i}.weight": ("F32", [4], bytes(range(16)))})
        index = {"metadata": {"total_size": 32}, "weight_map": {"layer0.weight": names[0], "layer1.weight": names[1]}}
        files["model.safetensors.index.json"] = json.dumps(index).encode()
    elif layout == "adapter":
        files["adapter_model.safetensors"] = safetensors_bytes(tiny_tensors())
        files["adapter_config.json"] = b"{}"
    files.update({"optimizer.pt": torch_zip_bytes(), "scheduler.pt": torch_zip_bytes(), "rng_state.pth": b"rng"})
    for name, data in files.items():
        (d / name).write_bytes(data[:-cut_bytes] if name == cut else data)
    if state:
        (d / "trainer_state.json").write_text(json.dumps({"global_step": step, "log_history": [], "epoch": 1.0}))
    return d


@pytest.mark.parametrize("layout", ["single", "bin", "sharded", "adapter"])
def test_a_whole_checkpoint_of_each_layout_is_complete(tmp_path, layout):
    d = trainer_save(tmp_path, 10, layout=layout)
    assert checkpoint_problem(str(d), 10) is None
    assert scan(str(tmp_path)) == (str(d), [])


@pytest.mark.parametrize(
    "layout, cut",
    [
        ("single", "model.safetensors"),
        ("bin", "pytorch_model.bin"),
        ("sharded", "model-00002-of-00002.safetensors"),
        ("adapter", "adapter_model.safetensors"),
    ],
)
def test_a_truncated_weights_file_makes_it_incomplete(tmp_path, layout, cut):
    d = trainer_save(tmp_path, 10, layout=layout, cut=cut)
    why = checkpoint_problem(str(d), 10)
    assert why and "truncated" in why and cut in why


def test_every_prefix_of_a_safetensors_file_is_judged_truncated(tmp_path):
    whole = safetensors_bytes(tiny_tensors())
    path = tmp_path / "model.safetensors"
    for n in range(len(whole)):
        path.write_bytes(whole[:n])
        assert safetensors_problem(str(path)), f"prefix of {n} of {len(whole)} bytes passed"
    path.write_bytes(whole)
    assert safetensors_problem(str(path)) is None


def test_trainer_state_must_parse_and_match_the_folder(tmp_path):
    missing = trainer_save(tmp_path, 30, state=False)
    assert checkpoint_problem(str(missing), 30) == "trainer_state.json missing (killed mid-save?)"
    torn = trainer_save(tmp_path, 31)
    (torn / "trainer_state.json").write_text('{"global_step": 31, "log_hi')
    assert checkpoint_problem(str(torn), 31) == "trainer_state.json unreadable or truncated"
    other = trainer_save(tmp_path, 32)
    (other / "trainer_state.json").write_text(json.dumps({"global_step": 16}))
    assert "global_step 16 does not match 32" in checkpoint_problem(str(other), 32)
    flag = trainer_save(tmp_path, 1)
    (flag / "trainer_state.json").write_text(json.dumps({"global_step": True}))
    assert "does not match" in checkpoint_problem(str(flag), 1)


def test_sharded_needs_every_shard_the_index_names(tmp_path):
    d = trainer_save(tmp_path, 5, layout="sharded")
    (d / "model-00001-of-00002.safetensors").unlink()
    assert checkpoint_problem(str(d), 5) == "weight shard model-00001-of-00002.safetensors missing"
    (d / "model.safetensors.index.json").write_text("{not json")
    assert checkpoint_problem(str(d), 5) == "model.safetensors.index.json unreadable"


def test_no_weights_at_all(tmp_path):
    d = trainer_save(tmp_path, 5, layout="none")
    assert checkpoint_problem(str(d), 5).startswith("no model weights")


def test_scan_picks_the_newest_complete_and_lists_the_newer_incomplete(tmp_path):
    trainer_save(tmp_path, 10)
    good = trainer_save(tmp_path, 20, layout="sharded")
    trainer_save(tmp_path, 30, cut="model.safetensors", cut_bytes=7)
    trainer_save(tmp_path, 40, state=False)
    trainer_save(tmp_path, 100, layout="bin")  # numeric order, not text order
    (tmp_path / "checkpoint-50").write_text("a file")
    (tmp_path / "tmp-checkpoint-60").mkdir()
    (tmp_path / "checkpoint-x").mkdir()
    assert scan(str(tmp_path)) == (str(tmp_path / "checkpoint-100"), [])
    (tmp_path / "checkpoint-100" / "trainer_state.json").unlink()
    newest, skipped = scan(str(tmp_path))
    assert newest == str(good)
    assert [s.split(":")[0] for s in skipped] == ["checkpoint-100", "checkpoint-40", "checkpoint-30"]
    assert "model.safetensors truncated" in skipped[2]


def test_scan_of_a_missing_dir_finds_nothing(tmp_path):
    assert scan(str(tmp_path / "absent")) == (None, [])
    assert checkpoints.newest(None) is None
