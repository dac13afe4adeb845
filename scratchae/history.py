"""``History``: one record of numbers per training epoch."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class History:
    """Per-epoch records, e.g. ``{"epoch": 3, "loss": 105.2, "recon": 90.1, "kl": 15.1, "val_loss": ...}``.

    ``history["loss"]`` is the list of that key over the epochs.
    """

    def __init__(self, records: list[dict[str, float]] | None = None):
        self.records: list[dict[str, float]] = [dict(r) for r in records or []]

    def append(self, record: dict[str, float]) -> None:
        self.records.append(dict(record))

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.records:
            seen.update(dict.fromkeys(r))
        return list(seen)

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.keys():
            raise KeyError(f"history has no {key!r}; it has {', '.join(self.keys())}")
        return [r.get(key, float("nan")) for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"History({len(self)} epochs, keys={self.keys()})"

    def to_dict(self) -> dict[str, list[float]]:
        return {k: self[k] for k in self.keys()}

    def to_csv(self, path: str | Path) -> None:
        keys = self.keys()
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            for r in self.records:
                writer.writerow({k: r.get(k, "") for k in keys})

    def last(self) -> dict[str, Any]:
        return dict(self.records[-1]) if self.records else {}
