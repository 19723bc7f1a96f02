"""Saving a run's figures: written as PNG atomically, like every other file of the run."""
from __future__ import annotations

from cgpa_rnn.rundir import RunDir


def save_figure(figure, run: RunDir, name: str) -> None:
    """Save a matplotlib Figure (the object API: no global pyplot state, safe across threads) as run/name."""
    figure.tight_layout()
    with run.atomic(name) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
