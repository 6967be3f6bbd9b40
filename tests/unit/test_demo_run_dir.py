"""The demo's run folder: it empties only a folder it marked as its own, never anything
else, and never what a link inside it points to."""

from __future__ import annotations

import pytest

from slawatch.dev.demo import RUN_DIR_MARK, prepare_run_dir
from slawatch.errors import SlawatchError


def test_a_new_folder_is_created_and_marked(tmp_path) -> None:
    run_dir = tmp_path / "a" / "b"
    prepare_run_dir(run_dir)
    assert [p.name for p in run_dir.iterdir()] == [RUN_DIR_MARK]


def test_an_empty_folder_is_adopted(tmp_path) -> None:
    prepare_run_dir(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [RUN_DIR_MARK]


def test_its_own_folder_is_emptied_but_not_what_links_point_to(tmp_path) -> None:
    run_dir = tmp_path / "run"
    prepare_run_dir(run_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep")
    (run_dir / "data").mkdir()
    (run_dir / "data" / "table").write_text("old")
    (run_dir / "worker.log").write_text("old")
    (run_dir / "link").symlink_to(outside, target_is_directory=True)
    prepare_run_dir(run_dir)
    assert [p.name for p in run_dir.iterdir()] == [RUN_DIR_MARK]
    assert (outside / "precious").read_text() == "keep"


@pytest.mark.parametrize("content", ["file", "folder", "hidden"])
def test_a_folder_that_is_not_its_own_is_refused_and_left_alone(tmp_path, content) -> None:
    if content == "folder":
        (tmp_path / "src").mkdir()
    else:
        (tmp_path / ("notes.txt" if content == "file" else ".git")).write_text("mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SlawatchError, match=r"is not empty .* not the demo's own"):
        prepare_run_dir(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_mark_that_is_a_link_or_a_folder_does_not_count(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / RUN_DIR_MARK).mkdir()
    with pytest.raises(SlawatchError, match="not the demo's own"):
        prepare_run_dir(tmp_path)
    (tmp_path / RUN_DIR_MARK).rmdir()
    elsewhere = tmp_path.parent / f"{tmp_path.name}-mark"
    elsewhere.write_text("")
    (tmp_path / RUN_DIR_MARK).symlink_to(elsewhere)
    with pytest.raises(SlawatchError, match="not the demo's own"):
        prepare_run_dir(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_file_or_a_link_is_not_a_run_folder(tmp_path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("mine")
    with pytest.raises(SlawatchError, match="not a folder"):
        prepare_run_dir(a_file)
    link = tmp_path / "link"
    link.symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(SlawatchError, match="not a folder"):
        prepare_run_dir(link)
    assert a_file.read_text() == "mine"
