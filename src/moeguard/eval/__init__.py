"""Evaluation: offline judges and behaviour metrics."""

from moeguard.eval.judge import is_refusal, refusal_rate

__all__ = ["is_refusal", "refusal_rate"]
