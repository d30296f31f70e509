"""Evaluation: offline judges, HF-model judges and behaviour metrics.

Judges share one interface (:class:`moeguard.eval.judges.Judge`: prompts + replies → verdicts). HF-model
judges live in :mod:`moeguard.eval.guard` and :mod:`moeguard.eval.strongreject` (imported on use: they need
torch and transformers).
"""

from moeguard.eval.judge import is_refusal, refusal_rate
from moeguard.eval.judges import Judge, RefusalJudge, Verdict, label_rate, mean_score, rate_judge
from moeguard.eval.organism_judge import CountingJudge, OrganismJudge

__all__ = [
    "CountingJudge",
    "Judge",
    "OrganismJudge",
    "RefusalJudge",
    "Verdict",
    "is_refusal",
    "label_rate",
    "mean_score",
    "rate_judge",
    "refusal_rate",
]
