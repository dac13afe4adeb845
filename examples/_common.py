"""What every example script shares: its command line, the data it runs on, where it writes.

Each example runs on the embedded 8x8 digits by default (in under a minute on 2 CPU
cores), on Fashion-MNIST with ``--data fashion-mnist``, on the GPU with ``--device gpu``,
and in a few seconds with ``--quick`` (the test suite's setting).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

import scratchae
from scratchae.cli.args import image_shape, non_negative_int
from scratchae.cli.runs import flag_words, load_cli_data
from scratchae.data import Dataset
from scratchae.progress import plural  # noqa: F401  (the scripts' counts: from _common import plural)

# What an example may need of its data, and the one line that says so when the data lack it.
NEEDS: dict[str, tuple[Callable[[Dataset], bool], str, str]] = {
    "images": (
        lambda d: d.image_shape is not None,
        "draws images",
        "give --data images (N, H, W), flat rows with --image-shape HxW, or a data set",
    ),
    "labels": (
        lambda d: d.y_train is not None and d.y_test is not None,
        "needs class labels",
        "give --data a data set, or an .npz with the labels as y",
    ),
}


@dataclass
class Setup:
    args: argparse.Namespace
    data: Dataset
    out: Path

    @property
    def device(self) -> str:
        return self.args.device

    @property
    def seed(self) -> int:
        return self.args.seed

    @property
    def quick(self) -> bool:
        return self.args.quick

    @property
    def full(self) -> bool:
        """True on a 28x28 data set without --quick: the published-size settings."""
        return not self.args.quick and self.data.name != "digits"

    def pick(self, table: dict[str, Any]) -> Any:
        """The entry of a settings table for this run: ``"quick"``, ``"full"`` or ``"default"``."""
        return table["quick" if self.quick else "full" if self.full else "default"]

    def held(self, ok: bool) -> str:
        """A prediction's verdict; a --quick run's miss says that its training is too short to test it."""
        return held(ok) if ok or not self.quick else f"{held(ok)} (--quick trains too little to test this)"

    def figure(self, path: Path) -> Path:
        """Say that the figure at ``path`` was written (a plotting function's return value), and return it."""
        print(f"wrote {path}")
        return path

    def save_json(self, name: str, payload: dict[str, Any]) -> Path:
        """Write ``payload`` to ``out/name``; NumPy scalars and arrays in it are written as Python values."""
        path = self.out / name
        path.write_text(json.dumps(payload, indent=2, default=_python_value) + "\n")
        print(f"wrote {path}")
        return path


def fail(prog: str, message: Any) -> NoReturn:
    """End the script with ``prog: error: message`` (one line, the command line's words) and exit status 2."""
    print(f"{prog}: error: {flag_words(message)}", file=sys.stderr)
    raise SystemExit(2)


def run_script(main: Callable[[], Any]) -> None:
    """Run a script's ``main``: a library error (data outside what the model takes, ...) or a file that
    cannot be written ends it in one line."""
    try:
        main()
    except (scratchae.ScratchAEError, OSError) as exc:
        fail(Path(sys.argv[0]).name, exc)


def held(ok: bool) -> str:
    """A prediction's verdict."""
    return "held" if ok else "did NOT hold"


def _python_value(value: Any) -> Any:
    """A NumPy bool, number or array as the Python value json can write (``json.dumps``'s ``default``)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def parser(description: str) -> argparse.ArgumentParser:
    """The options every example takes; a script adds its own before calling ``setup``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data", default="digits", help="digits (default), fashion-mnist, mnist, or a .npy/.npz/.csv path")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (mnist, fashion-mnist)")
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu"))
    p.add_argument("--image-shape", type=image_shape, metavar="HxW", help="HxW of the images, for files of flat rows")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny settings, a few seconds (used by the tests)")
    p.add_argument("--out", default=None, help="output folder (default runs/examples/<script name>)")
    return p


def setup(
    p: argparse.ArgumentParser, argv: list[str] | None = None, quick_examples: int = 300, needs: tuple[str, ...] = ()
) -> Setup:
    """Parse the command line, load the data (first ``quick_examples`` with --quick), make the output folder.

    ``needs``: keys of NEEDS the data must have. A library error (missing data set, no GPU, ...)
    or data without what the script needs ends it with one line on stderr.
    """
    args = p.parse_args(argv)
    out = Path(args.out or Path("runs") / "examples" / Path(sys.argv[0]).stem)
    if out.exists() and not out.is_dir():  # refused before the data are read
        fail(p.prog, f"--out {out} is a file, not a folder")
    try:
        scratchae.backend.check_device(args.device)
        limit = quick_examples if args.quick else None
        data = load_cli_data(
            args.data, args.data_dir, "--data-dir", n_train=limit, n_test=limit, image_shape=args.image_shape
        )
    except scratchae.ScratchAEError as exc:
        fail(p.prog, exc)
    missing = [NEEDS[need] for need in needs if not NEEDS[need][0](data)]
    if missing:  # all at once: one run of the script says everything the data lack
        what = " and ".join(w for _, w, _ in missing)
        fail(p.prog, f"this example {what}, and {data.name} has none: {'; '.join(h for _, _, h in missing)}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(p.prog, f"--out {out}: {exc.strerror or exc}")
    print(
        f"data: {data.name}, {len(data.X_train)} train / {len(data.X_test)} test examples, "
        f"{data.n_features} features; device {args.device}; output {out}"
    )
    return Setup(args, data, out)
