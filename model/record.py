"""What a run directory holds about its model, read once into dataclasses.

A training writes its config (config.json), and what it trained on and measured (metrics.json,
the same record inside model.pt). Every reader (the card, the export's metadata, verify, the
demo, the CLI) goes through `RunRecord` instead of indexing nested dicts, so a misspelt field
is an AttributeError at the line that reads it and this file says what a run holds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cgpa_rnn.data.cohort import Cohort
from cgpa_rnn.encoding import COLLEGE_CODES, DEFAULT_SCALE, Groups, Scale
from cgpa_rnn.errors import UserError
from cgpa_rnn.model.baselines import EVIDENCE
from cgpa_rnn.model.config import TrainConfig
from cgpa_rnn.model.metrics import best_baseline_name
from cgpa_rnn.rundir import RunDir


@dataclass(frozen=True)
class DataInfo:
    """The cohort a model was trained on: where it came from (a file name and fingerprint, never a path)."""

    source: dict  # data.sources' description: name, sha256, shipped or synthetic
    fingerprint: str
    synthetic: bool
    students: int
    semester_names: list[str]
    scale: Scale = DEFAULT_SCALE
    groups: Groups = COLLEGE_CODES  # the group column and its vocabulary (text labels or integers)

    @classmethod
    def of(cls, cohort: Cohort) -> DataInfo:
        return cls(cohort.source, cohort.fingerprint(), cohort.is_synthetic, len(cohort), cohort.semester_names,
                   cohort.scale, cohort.groups)

    @classmethod
    def from_dict(cls, values: dict) -> DataInfo:
        return cls(values["source"], values["fingerprint"], values["synthetic"], values["students"],
                   list(values["semester_names"]), Scale.from_json(values.get("scale", DEFAULT_SCALE.to_json())),
                   Groups.from_json(values.get("groups", COLLEGE_CODES.to_json())))

    def to_dict(self) -> dict:
        return {"source": self.source, "fingerprint": self.fingerprint, "synthetic": self.synthetic,
                "students": self.students, "semester_names": self.semester_names, "scale": self.scale.to_json(),
                "groups": self.groups.to_json()}


@dataclass(frozen=True)
class Split:
    """The held-out test students of a training."""

    seed: int
    test_share: float
    train_students: int
    test_students: int


@dataclass(frozen=True)
class TargetScores:
    """Held-out scores for one target ("next" or "last"): the model's and each baseline's metrics."""

    model: dict  # model.metrics.regression_metrics, plus by_semester
    baselines: dict[str, dict]

    @property
    def best_baseline(self) -> str:
        return best_baseline_name(self.baselines)

    def to_dict(self) -> dict:
        return {"model": self.model, **self.baselines}

    def mae(self, name: str) -> float:
        return self.model["mae"] if name == "model" else self.baselines[name]["mae"]


@dataclass(frozen=True)
class RunRecord:
    """A trained model's config, data and held-out measurements (metrics.json / the checkpoint)."""

    config: TrainConfig
    data: DataInfo
    command: str  # the command line that trained it, shown in the card as the way to reproduce it
    split: Split
    test: dict[str, TargetScores]  # target name -> scores
    colleges: list[int]
    train_seconds: float
    chosen_weight_decay: float
    time_limited_networks: int = 0  # members a time budget stopped before early stopping did
    tuning: dict[str, float] = field(default_factory=dict)
    prior: dict = field(default_factory=dict)  # {"persistence": bool, "evidence_against_persistence": float}

    @property
    def cell(self) -> str:
        return self.config.model.cell

    @property
    def synthetic(self) -> bool:
        return self.data.synthetic

    def prior_sentence(self) -> str:
        """Whether the forecast is the network's or persistence's, and the evidence that decided it."""
        if not self.prior:
            return ""
        evidence = self.prior["evidence_against_persistence"]
        if self.prior["persistence"]:
            return (f"On the training students the best damped-deviation fit beat repeating the last grade by only "
                    f"{evidence:.2f} standard errors ({EVIDENCE:g} needed), so the forecast is the last grade "
                    "itself; the network gives the calibrated interval.")
        return (f"On the training students the damped-deviation prior beat repeating the last grade by {evidence:.2f} "
                f"standard errors ({EVIDENCE:g} needed), so the network learns from it.")

    @classmethod
    def from_dicts(cls, config: dict, metrics: dict) -> RunRecord:
        test = {target: TargetScores(entry["model"], {k: v for k, v in entry.items() if k != "model"})
                for target, entry in metrics["test"].items()}
        tuning = metrics.get("tuning", {})
        return cls(TrainConfig.from_dict(config), DataInfo.from_dict(metrics["data"]), metrics.get("command", ""),
                   Split(**metrics["split"]), test, list(metrics["colleges"]), metrics["train_seconds"],
                   tuning.get("chosen_weight_decay", config.get("weight_decay", 0.0)),
                   metrics.get("time_limited_networks", 0), tuning.get("weight_decay_validation_loss", {}),
                   metrics.get("prior", {}))

    @classmethod
    def from_payload(cls, payload: dict) -> RunRecord:
        """From a loaded checkpoint's payload (model.checkpoint.load_checkpoint)."""
        return cls.from_dicts(payload["config"], payload["metrics"])

    @classmethod
    def read(cls, run: str | Path | RunDir) -> RunRecord | None:
        """From the run directory's config.json and metrics.json; None before any training."""
        run = RunDir.of(run)
        config, metrics = run.read_json(RunDir.CONFIG), run.read_json(RunDir.METRICS)
        if config is None or metrics is None:
            return None
        try:
            return cls.from_dicts(config, metrics)
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"{run / RunDir.METRICS}: not a run record this version reads ({error!r})") from None
