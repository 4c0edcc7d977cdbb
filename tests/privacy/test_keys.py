"""Pseudonym tokens: stable, key-dependent, domain-separated; keys refused when weak or absent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.errors import ConfigError, ExitCode
from privacy.keys import PseudonymKey

KEY = PseudonymKey(b"k" * 32, "test")


def test_tokens_are_stable_and_key_dependent() -> None:
    assert KEY.token("CN_MOBILE", "13800138000") == KEY.token("CN_MOBILE", "13800138000")
    other = PseudonymKey(b"j" * 32, "test")
    assert other.token("CN_MOBILE", "13800138000") != KEY.token("CN_MOBILE", "13800138000")
    assert KEY.token("EMAIL", "x") != KEY.token("CN_MOBILE", "x")


def test_tokens_have_no_digits_so_a_rescan_finds_nothing() -> None:
    token = KEY.token("d", "v")
    assert re.fullmatch(r"tok_[a-p]{24}", token)


def test_key_from_env_and_file_give_the_same_tokens(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STEWARD_TEST_KEY", "s" * 40)
    (tmp_path / "key").write_text("s" * 40 + "\n")
    from_env = PseudonymKey.from_env("STEWARD_TEST_KEY")
    from_file = PseudonymKey.from_file(tmp_path / "key")
    assert from_env.token("d", "v") == from_file.token("d", "v")
    assert from_env.key_id == from_file.key_id


def test_refuses_missing_or_short_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STEWARD_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="STEWARD_TEST_KEY is not set") as missing:
        PseudonymKey.from_env("STEWARD_TEST_KEY")
    assert missing.value.exit_code == ExitCode.CONFIG
    with pytest.raises(ConfigError, match="cannot read"):
        PseudonymKey.from_file(tmp_path / "absent")
    with pytest.raises(ConfigError, match="at least 32"):
        PseudonymKey(b"short", "test")


def test_repr_never_shows_the_key() -> None:
    secret = PseudonymKey(b"very-secret-material-0123456789abcdef", "test")
    assert "very-secret" not in repr(secret) and "very-secret" not in str(secret)
