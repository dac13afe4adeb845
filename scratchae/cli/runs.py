"""Run folders and data for the commands: the files a run holds, output checks, loading the data a
command names, and library messages in the command line's words."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from ..data import DATASETS, Dataset
from ..data import load as load_data
from ..data.sources import SYSTEM_DIRS, find_idx_files
from ..errors import ArgumentError, DataError, DataNotFoundError, ScratchAEError
from ..models import Model
from ..run_info import RUN_FILE, RunInfo

IDX_SETS = tuple(SYSTEM_DIRS)  # the data sets read from IDX files
CHECKPOINT_FILE = "checkpoint.npz"
# what train (and sample without -o) write into a run folder: what --overwrite deletes of the old run
RUN_OUTPUTS = (
    CHECKPOINT_FILE,
    "metrics.json",
    "history.csv",
    RUN_FILE,
    *(f"{name}.png" for name in ("loss", "denoising", "reconstructions", "latent", "class_samples", "samples")),
    "manifold.png",
    "traversal.png",
)
SAMPLES_FILE = re.compile(r"samples(_class\d+)?_seed\d+\.png")  # what sample writes without -o, and nothing else


def is_run_output(name: str) -> bool:
    """Whether a file of this name in a run folder is one that train or sample writes there."""
    return name in RUN_OUTPUTS or SAMPLES_FILE.fullmatch(name) is not None


def run_outputs(folder: Path) -> list[Path]:
    """The files in ``folder`` that train or sample wrote there (by name), sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_run_output(p.name))


# --- runs: what a run folder holds besides the checkpoint ---


def run_folder(path: str) -> Path:
    """The run folder of ``path`` (the folder itself, or a checkpoint file's folder); refused if missing."""
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"no run at {p}: expected a folder written by 'scratchae train' or a checkpoint file")
    return p if p.is_dir() else p.parent


def check_output_file(flag: str, path: Path, run: str, example: str, renamed_into_place: bool = False) -> None:
    """Refuse an output file that is a folder, one that cannot be written, or one of the run's own files
    (its checkpoint, what train wrote beside it: RUN_OUTPUTS but the samples that sample writes, and the
    data file it was trained on), before any work is done. ``renamed_into_place``: the file is written
    beside and renamed over the old one (``write_atomic``), so its folder must be writable, not the file."""
    if path.is_dir():
        raise ArgumentError(f"{flag} {path} is a folder: give a file name, e.g. {path / example}")
    folder = run_folder(run)
    if path.resolve() == Path(run).resolve():
        raise ArgumentError(f"{flag} {path} is the checkpoint {run} itself: write to another file")
    if path.resolve() in {(folder / name).resolve() for name in RUN_OUTPUTS}:
        raise ArgumentError(f"{flag} {path} is a file of the run in {folder}: write to another file")
    existing = path.exists() and not renamed_into_place
    writable = path if existing else next(p for p in path.absolute().parents if p.exists())
    if not os.access(writable, os.W_OK):  # refused now, not after the work
        where = "it" if writable == path else f"its folder {writable}"
        raise ArgumentError(f"{flag} {path}: {where} cannot be written (no permission, or a read-only file system)")
    info = RunInfo.read(folder)
    if info is not None and data_key(info.data, "data") == str(path.resolve()):  # a data set's name never is
        raise ArgumentError(f"{flag} {path} is the data file the run in {folder} was trained on: write to another file")


def holds_run_file(folder: Path) -> bool:
    """Whether ``folder`` holds a readable run.json of train's (a damaged or foreign one does not count)."""
    try:
        return RunInfo.read(folder) is not None
    except DataError:
        return False


def load_run(path: str, device: str) -> tuple[Model, RunInfo | None]:
    """The model of the run at ``path`` on ``device``, and its run.json (None for a run without one)."""
    from ..checkpoint import load

    folder = run_folder(path)
    if Path(path).is_dir() and not (folder / CHECKPOINT_FILE).is_file():
        runs = sorted(p.parent.name for p in folder.glob(f"*/{CHECKPOINT_FILE}"))
        inside = f"; the runs in it: {', '.join(runs[:8])}{', ...' if len(runs) > 8 else ''}" if runs else ""
        if holds_run_file(folder):  # train wrote run.json, then stopped before its first checkpoint
            raise DataNotFoundError(
                f"no run at {folder} yet: its {RUN_FILE} is of a run stopped before its first epoch ended (no "
                f"{CHECKPOINT_FILE}){inside}"
            )
        raise DataNotFoundError(
            f"no run at {folder}: it holds no {CHECKPOINT_FILE} (give a folder written by 'scratchae train'){inside}"
        )
    return load(path, device=device), RunInfo.read(folder)


def shown_value(value: Any, flag: str | None = None) -> str:
    """A data flag's value as the command line writes it (HxW for a shape); None as what it meant for ``flag``."""
    if value is None:
        return "all examples" if flag == "limit" else f"no --{str(flag).replace('_', '-')}"
    return "x".join(str(n) for n in value) if isinstance(value, (list, tuple)) else str(value)


def data_key(value: Any, flag: str) -> Any:
    """A data flag's value as compared on --resume: data sets by name, files by absolute path."""
    if flag != "data" or not isinstance(value, str):
        return tuple(value) if isinstance(value, (list, tuple)) else value
    name = value.lower().replace("_", "-")
    return name if name in DATASETS else str(Path(value).resolve())


# Library wording -> the command line's flags, for the errors of loading the data a command names.
NOT_IN_NAME = (r"(?<![\w/.\-\"'])", r"(?![\w/.\-\"'])")  # an argument's name, not part of a path or a quoted key
CLI_WORDS = (
    (r"no data_dir was given", "no --data-dir was given"),
    (r"pass data_dir=", "pass --data-dir "),
    (rf"{NOT_IN_NAME[0]}image_shape{NOT_IN_NAME[1]}", "--image-shape"),
    (rf"{NOT_IN_NAME[0]}n_train{NOT_IN_NAME[1]}", "--limit"),
    (r"scale='minmax' or None", "--scale minmax or none"),
    (
        r"test_fraction=(\S+) of (\d+) examples leaves an empty train or test set: .*",
        r"a test part of \1 of the \2 examples would leave an empty training or test part: give more "
        r"examples, or a test part of their own (X_test and y_test in an .npz file)",
    ),
)


def load_cli_data(name: str, data_dir: str | None, dir_flag: str, **kwargs: Any) -> Dataset:
    """``data.load(name, data_dir, **kwargs)`` for a command: ``data_dir`` (given as ``dir_flag``) must exist
    and hold the IDX files; errors name the command's flags instead of ``load``'s arguments."""
    key = str(name).lower().replace("_", "-")
    if kwargs.get("csv_labels") and Path(name).suffix.lower() != ".csv":
        raise ArgumentError(f"--csv-labels applies to a .csv file, not to --data {name}")
    try:
        if data_dir is not None:
            if key not in IDX_SETS:
                raise ArgumentError(f"{dir_flag} applies to {' and '.join(IDX_SETS)}, not to --data {name}")
            if not Path(data_dir).is_dir():
                what = "is a file, not a folder" if Path(data_dir).exists() else "no such folder"
                raise DataNotFoundError(f"{dir_flag} {data_dir}: {what}")
            find_idx_files(key, data_dir, system_dirs=False)
        return load_data(name, data_dir, **kwargs)
    except ScratchAEError as exc:
        raise type(exc)(flag_words(exc)) from exc


def flag_words(message: Any) -> str:
    """A library message on one line and in the command line's words (``device='cpu'`` -> ``--device cpu``,
    ``data_dir`` -> ``--data-dir``, ...): what the CLI and the examples print."""
    text = one_line(message).replace("device='cpu'", "--device cpu")
    for pattern, words in CLI_WORDS:
        text = re.sub(pattern, words, text)
    return text


def one_line(message: Any) -> str:
    """``message`` as text on one line, its whitespace runs made single spaces."""
    return " ".join(str(message).split())
