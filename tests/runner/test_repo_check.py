"""runner/train/repo_check.py's object lookups in a real git checkout (one git for all the names)."""

from __future__ import annotations

from runner.train.repo_check import _objects_exist
from tests.fixtures.pod_harness import git


def test_each_name_is_answered_in_order(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "a b.yaml").write_text("output_dir: x\n")
    (tmp_path / "train.py").write_text("print(1)\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    head = git(tmp_path, "rev-parse", "HEAD").strip()

    names = [
        f"{head}^{{commit}}",
        f"{head}:train.py",
        f"{head}:configs/a b.yaml",
        f"{head}:configs",
        f"{head}:missing.py",
        f"{head}:train.py^{{commit}}",
        "0" * 40 + "^{commit}",
    ]
    assert _objects_exist(tmp_path, names) == [True, True, True, True, False, False, False]
    # a name git's line protocol cannot carry is still answered (one git per name)
    assert _objects_exist(tmp_path, [f"{head}:train.py", f"{head}:bad\nname"]) == [True, False]
    assert _objects_exist(tmp_path, []) == []
