"""A worker's table stores belong to its consumer group: another set of agents restores into a folder of its own."""

from __future__ import annotations

from pathlib import Path

from app.settings import Settings
from app.streams.faust_app import create_app


def test_each_consumer_group_keeps_its_tables_in_a_folder_of_its_own(tmp_path: Path) -> None:
    # The same worker folder, run first with one set of agents and then with another (as after an upgrade that
    # merged two agents): the second must not find the first group's stores, which hold offsets of changelogs it
    # does not read (Faust stops with a ConsistencyError).
    before = create_app(Settings(worker_dir=tmp_path, agents="purchases,popular_items"))
    after = create_app(Settings(worker_dir=tmp_path, agents="purchases"))
    assert Path(before.conf.datadir).parent == Path(after.conf.datadir).parent == tmp_path
    assert before.conf.datadir != after.conf.datadir
    assert Path(before.conf.datadir).name == Settings(agents="purchases,popular_items").consumer_group
