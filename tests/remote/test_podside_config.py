"""remote/podside/configfile.py: output_dir from any config, with PyYAML or with the fallback parser."""

from __future__ import annotations

import sys

import pytest

from remote.podside import configfile
from remote.podside.configfile import ConfigError, output_dir, parse_top_level

CONFIG = (
    "# experiment\nmodel:\n  output_dir: wrong/nested\n"
    'output_dir: "checkpoints/exp one"  # quoted, with a comment\n'
    "audio_dirs:\n  - data/audio_0\nmax_steps: 3\n"
)


@pytest.fixture(params=["pyyaml", "fallback"])
def parser(request, monkeypatch):
    if request.param == "pyyaml":
        import yaml  # noqa: F401  (a dependency of the project: pyproject.toml)
    else:
        monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` raises ImportError
    return request.param


def test_output_dir_is_the_top_level_key_relative_to_the_repo(tmp_path, parser):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(CONFIG)
    assert output_dir(str(cfg), "/ws/repo") == "/ws/repo/checkpoints/exp one"


def test_absolute_and_home_relative_output_dirs(tmp_path, parser):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("output_dir: /data/out/../run\n")
    assert output_dir(str(cfg), "/ws/repo") == "/data/run"


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_steps: 3\nmodel:\n  output_dir: nested/is/not/it\n", "has no top-level output_dir"),
        ("output_dir:\n", "has no top-level output_dir"),
        ("output_dir: ~\n", "has no top-level output_dir"),
    ],
)
def test_a_config_without_output_dir_is_a_clear_error(tmp_path, parser, text, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        output_dir(str(cfg), "/r")


def test_unreadable_config(tmp_path, parser):
    with pytest.raises(ConfigError, match="cannot read config"):
        output_dir(str(tmp_path / "missing.yaml"), "/r")


def test_fallback_parser_reads_top_level_scalars_only():
    data = parse_top_level("a: 1\n  b: 2\nc: 'x # not a comment'\nd: y # comment\ne: null\n- item\n")
    assert data == {"a": "1", "c": "x # not a comment", "d": "y", "e": None}


def test_pyyaml_is_used_when_importable(tmp_path):
    cfg = tmp_path / "flow.yaml"
    cfg.write_text("{output_dir: flow/style, max_steps: 3}\n")  # only real YAML reads a flow mapping
    assert output_dir(str(cfg), "/r") == "/r/flow/style"
    assert configfile.load_mapping(str(cfg)) == {"output_dir": "flow/style", "max_steps": 3}


def test_a_cached_output_dir_is_used_for_the_same_text_and_parsed_again_for_another(tmp_path, parser, monkeypatch):
    cfg, cache = tmp_path / "exp.yaml", str(tmp_path / "config-cache.json")
    cfg.write_text(CONFIG)
    assert output_dir(str(cfg), "/ws/repo", cache) == "/ws/repo/checkpoints/exp one"
    parses = []
    real = configfile._parse_output_dir
    monkeypatch.setattr(configfile, "_parse_output_dir", lambda *a: parses.append(a) or real(*a))
    assert output_dir(str(cfg), "/ws/repo", cache) == "/ws/repo/checkpoints/exp one"
    assert parses == [], "the same text: from the cache, no YAML parse"
    assert output_dir(str(cfg), "/ws/other", cache) == "/ws/other/checkpoints/exp one" and len(parses) == 1
    cfg.write_text(CONFIG.replace("exp one", "exp two"))  # a git update changed it
    assert output_dir(str(cfg), "/ws/repo", cache) == "/ws/repo/checkpoints/exp two" and len(parses) == 2
    cfg.write_text("max_steps: 3\n")  # errors are never cached
    for _ in range(2):
        with pytest.raises(ConfigError, match="no top-level output_dir"):
            output_dir(str(cfg), "/ws/repo", cache)
    assert len(parses) == 4


def test_the_cache_is_keyed_on_the_parser_and_survives_a_broken_file(tmp_path, monkeypatch):
    cfg, cache = tmp_path / "exp.yaml", tmp_path / "config-cache.json"
    cfg.write_text("output_dir: a\n")
    cache.write_text("{not json")
    assert output_dir(str(cfg), "/r", str(cache)) == "/r/a"
    import yaml  # noqa: F401

    with_yaml = configfile._cache_key(str(cfg), "/r", "output_dir: a\n")
    monkeypatch.setitem(sys.modules, "yaml", None)
    assert configfile._cache_key(str(cfg), "/r", "output_dir: a\n") != with_yaml
