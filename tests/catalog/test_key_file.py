"""tools/api_key.py: the key `make run` hands catalog and gateway, and compose's env file."""

import stat
from pathlib import Path

import pytest

from catalog.config import Settings
from tools.api_key import KEY_SETTINGS, main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "darkroom.env.example"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_env(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return dict(pairs)


def test_the_key_is_made_once_private_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "data" / "api-key"
    assert main([str(path)]) == 0
    key = path.read_text()
    assert key.endswith("\n")
    assert len(key.strip()) == 43  # 32 random bytes, URL-safe base64
    assert mode(path) == 0o600
    path.chmod(0o644)
    assert main([str(path)]) == 0
    assert path.read_text() == key  # kept across runs
    assert mode(path) == 0o600  # and private again
    assert key.strip() not in capsys.readouterr().out


def test_every_run_of_a_new_file_makes_a_new_key(tmp_path: Path) -> None:
    keys = set()
    for n in range(3):
        main([str(tmp_path / f"key-{n}")])
        keys.add((tmp_path / f"key-{n}").read_text())
    assert len(keys) == 3


def test_the_env_file_gives_catalog_and_gateway_one_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "darkroom.env"
    assert main([str(path), "--template", str(EXAMPLE)]) == 0
    assert mode(path) == 0o600
    env = read_env(path)
    assert set(KEY_SETTINGS) <= set(env)
    keys = {env[name] for name in KEY_SETTINGS}
    assert len(keys) == 1
    key = keys.pop()
    assert len(key) == 43
    # The catalog reads the file's value as one write key.
    monkeypatch.setenv("CATALOG_API_KEYS", env["CATALOG_API_KEYS"])
    assert [k.get_secret_value() for k in Settings().api_keys] == [key]
    # The example itself holds no key.
    assert all(read_env(EXAMPLE)[name] == "" for name in KEY_SETTINGS)


def test_a_template_without_key_settings_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "other.env"
    template.write_text("CATALOG_STORE=sqlite:///x.db\n")
    assert main([str(tmp_path / "out.env"), "--template", str(template)]) == 2
    assert not (tmp_path / "out.env").exists()
