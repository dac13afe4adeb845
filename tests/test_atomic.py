"""write_atomic: the file is replaced whole or not at all, and a failure names the file."""

from __future__ import annotations

import errno
import os

import pytest

from scratchae.atomic import write_atomic


def test_a_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_bytes(b"old")
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["metrics.json"]


def test_a_full_disk_keeps_the_old_file_and_names_the_new_one(tmp_path, monkeypatch):
    """The flush fails as on a full disk (its error names no file): the error names the file being
    written, the old file is whole, and the temporary file is gone."""
    path = tmp_path / "run.json"
    path.write_bytes(b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"No space left on device, writing: '.*run\.json'") as info:
        write_atomic(path, b"new")
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["run.json"]
