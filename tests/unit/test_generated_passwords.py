"""The local services' generated passwords (app/tools/services.py `ensure_password`): made once, kept, owner-only."""

from __future__ import annotations

import stat
from pathlib import Path

from app.settings import Settings
from app.tools.services import ensure_password


def test_a_password_is_made_once_for_its_owner_only_and_then_kept(tmp_path: Path) -> None:
    settings = Settings(credentials_dir=tmp_path / "credentials")
    first = ensure_password(settings, "cassandra-password")
    assert len(first) >= 32 and ensure_password(settings, "cassandra-password") == first
    path = settings.credentials_dir / "cassandra-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.credentials_dir.stat().st_mode) == 0o700
    assert ensure_password(settings, "postgres-password") != first  # one per service
    assert settings.credential("cassandra-password", None) == first  # what every process then reads
    assert [p.name for p in settings.credentials_dir.iterdir() if p.name.startswith(".")] == []  # no drafts left


def test_an_empty_password_file_is_made_again(tmp_path: Path) -> None:
    settings = Settings(credentials_dir=tmp_path)
    (tmp_path / "kafka-password").write_text("\n")
    made = ensure_password(settings, "kafka-password")
    assert made and (tmp_path / "kafka-password").read_text().strip() == made
