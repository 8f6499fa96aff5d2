"""What one training produces and what a network costs: the values every evaluator returns.

Kept apart from the trainers so the search, the store and the batched evaluator agree on
one shape without importing each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

# Why a training ended; the store and the UI show these words as they are.
MAX_EPOCHS = "max_epochs"  # ran every epoch
PATIENCE = "patience"  # no new best validation result for `patience` epochs
LOW_ACCURACY = "low_accuracy"  # validation accuracy under the floor after the check epoch
DIVERGED = "diverged"  # validation loss > ratio x running train loss
NAN = "nan"  # loss became NaN/inf: stopped, scored from its best completed epoch (failed if none)
BUILD_FAILED = "build_failed"  # the network could not be built or run
USER_STOP = "stopped"  # the user stopped the search mid-training


class CandidateStatus(StrEnum):
    """How one candidate's training ended; the value is what the store keeps.

    `ok`: trained and scored; `failed`: no usable result (it never completed an epoch, or
    could not be built); `stopped`: the user stopped the search while it trained.
    """

    OK = "ok"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def scored(self) -> bool:
        return self is CandidateStatus.OK


@dataclass
class TrainResult:
    """One candidate's (or one final job's) outcome. Quality is accuracy (CNN) or perplexity (RNN)."""

    status: str = CandidateStatus.OK
    accuracy: float | None = None  # best validation accuracy, a fraction (CNN)
    perplexity: float | None = None  # validation perplexity of the best epoch (RNN); NaN if failed
    epochs: int = 0
    stop_reason: str = MAX_EPOCHS
    wall_s: float = 0.0
    error: str = ""
    history: list[dict] = field(default_factory=list)  # per-epoch metrics, for plots and logs

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Cost:
    """Size and compute of a network per input: MACs for CNNs, FLOPs (edges x h^2) for RNN cells."""

    params: int
    macs: int | None = None
    flops: int | None = None
