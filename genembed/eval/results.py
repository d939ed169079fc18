"""The results folder of `genembed eval` and `genembed benchmark`, reader and writer side by side.

OUT/results.json is read when a run starts and rewritten whole (atomically) after every score, so a
killed run loses at most the score in flight and a rerun resumes from the file. Each score keeps what
made it ("made_by": the method's identity: its weights, backend and precision), so a score made by
another version of a method is found and never reported as this one's. OUT/results.md and
OUT/results.png are written from the file at the end of a run.

matplotlib is imported only when a chart is drawn, and never changes the process's backend: a chart is a
`Figure` on its own Agg canvas, not a pyplot figure.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..atomic import replace_file, write_text


class ResultsFile:
    """OUT/results.json as a dict (`data`): read on opening (`empty` when there is no file yet), written
    whole by `save` (JSON indented by `indent`, then a newline)."""

    def __init__(self, out_dir: str | Path, empty: Callable[[], dict], indent: int):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.path, self.indent = self.out_dir / "results.json", indent
        self.data = json.loads(self.path.read_text()) if self.path.exists() else empty()

    def save(self) -> None:
        write_text(self.path, json.dumps(self.data, indent=self.indent) + "\n")

    def report(self, markdown: Callable[[dict], str], plot: Callable[[dict, Path], None]) -> None:
        """What the data shows: OUT/results.md and OUT/results.png."""
        write_text(self.out_dir / "results.md", markdown(self.data))
        plot(self.data, self.out_dir / "results.png")


def made_otherwise(entry: dict, made_by: dict) -> bool:
    """Whether a stored score was made by another version of its method than `made_by` (a score that
    records no maker, from an older file, counts as this one's)."""
    return entry.get("made_by", made_by) != made_by


def cell(x) -> str:
    """A score as a table cell: three decimals, "–" for none."""
    return "–" if x is None else f"{x:.3f}"


def figure(figsize: tuple[float, float]):
    """A matplotlib Figure drawn by its own Agg canvas: no pyplot, no global backend touched."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def colours(n: int) -> tuple:
    """Distinct bar colours for n series (tab10, tab20 beyond ten: no two bars share a colour)."""
    from matplotlib import colormaps

    return colormaps["tab10" if n <= 10 else "tab20"].colors


def save_png(fig, path: Path) -> None:
    """The figure as a PNG at `path`, written whole."""
    fig.tight_layout()
    replace_file(path, lambda p: fig.savefig(p, dpi=120, format="png"))
