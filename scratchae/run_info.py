"""``run.json``: how a run's data were loaded, so that eval, sample, encode and --resume read them again."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_atomic
from .errors import DataError

RUN_FILE = "run.json"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _list_of(fits: Callable[[Any], bool], length: int | None = None) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and (length is None or len(v) == length) and all(fits(x) for x in v)


# each field: (a test of its value when not None, what it should be); REQUIRED ones are never None
FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "kind": (lambda v: isinstance(v, str), "a model kind"),
    "data": (lambda v: isinstance(v, str), "a data set's name or a file's path"),
    "data_dir": (lambda v: isinstance(v, str), "a folder's path or null"),
    "limit": (lambda v: _is_int(v) and v > 0, "a positive integer or null"),
    "image_shape": (_list_of(lambda x: _is_int(x) and x > 0), "a list of positive integers or null"),
    "n_classes": (lambda v: _is_int(v) and v > 0, "a positive integer or null"),
    "class_names": (_list_of(lambda x: isinstance(x, str)), "a list of strings or null"),
    "val_fraction": (lambda v: _is_number(v) and 0 <= v < 1, "a fraction in [0, 1) or null"),
    "csv_labels": (lambda v: isinstance(v, str), "first, last or null"),
    "scale": (lambda v: isinstance(v, str), "auto, minmax or none"),
    "minmax": (_list_of(_is_number, 2), "two numbers or null"),
    "grey_scale": (_list_of(_is_number, 2), "two numbers or null"),
    "full_scale": (lambda v: _is_number(v) and v > 0, "a positive number or null"),
    "digests": (
        lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()),
        "the parts' hashes or null",
    ),
}
REQUIRED = ("kind", "data", "scale")


@dataclass
class RunInfo:
    """How a run's data were loaded (to load the same test part again) and what they look like."""

    kind: str
    data: str
    data_dir: str | None
    limit: int | None
    image_shape: list[int] | None
    n_classes: int | None
    class_names: list[str] | None
    val_fraction: float | None = None  # None in the run.json of versions that did not record it
    csv_labels: str | None = None
    scale: str = "auto"
    minmax: list[float] | None = None  # the raw training part's (min, max) that --scale minmax mapped onto [0, 1]
    grey_scale: list[float] | None = None  # the training data's display limits: the sample figures' scale
    full_scale: float | None = None  # what --scale auto divided the data by (digits 16, uint8 255), if anything
    digests: dict[str, str] | None = None  # the train and test parts' hashes (Dataset.digests), as loaded

    def check_same_data(self, now: dict[str, str], parts: Sequence[str], folder: Path, command: str) -> None:
        """Refuse data whose hashes ``now`` (``Dataset.digests``) differ from the run's own in ``parts``
        ("train", "test"), as recorded (a run from before the hashes were recorded: not checked)."""
        if self.digests is None:
            return
        changed = [f"{part} part" for part in parts if now[part] != self.digests.get(part)]
        if changed:
            raise DataError(
                f"{command}: the data {self.data} have changed since the run in {folder} was trained (their "
                f"{' and '.join(changed)} {'differ' if len(changed) > 1 else 'differs'} from the run's, as "
                f"{RUN_FILE} records it): {command} uses the run's own data; train a new run on the new data"
                + (", or give --data to evaluate on other data" if command == "eval" else "")
            )

    @classmethod
    def read(cls, folder: Path) -> RunInfo | None:
        """The run.json in ``folder`` (None where there is none); a damaged one raises DataError naming it."""
        path = folder / RUN_FILE
        if not path.is_file():
            return None
        try:
            fields = json.loads(path.read_bytes().decode("utf-8"))
            info = cls(**fields)
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:  # TypeError: keys missing or unknown
            raise DataError(f"{path} is not a scratchae run description: {exc}") from exc
        for name, value in fields.items():
            fits, expected = FIELDS[name]
            if not (value is None and name not in REQUIRED or fits(value)):
                raise DataError(f'{path} is damaged: "{name}" is {json.dumps(value)[:60]}, expected {expected}')
        return info

    def write(self, folder: Path) -> None:
        write_atomic(folder / RUN_FILE, (json.dumps(self.__dict__, indent=2) + "\n").encode())
