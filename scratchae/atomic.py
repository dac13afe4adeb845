"""Writing a file whole or not at all: a crash or a full disk leaves the old file (or none), never a part."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, flushed to disk, then renamed over
    ``path`` (one step on POSIX); the folder's entry is flushed too. The temporary file never stays."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if exc.filename is not None:
            raise
        # a full disk fails the write or the flush, whose error names no file: name the one being written
        raise OSError(exc.errno, f"{exc.strerror or exc}, writing", str(path)) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
