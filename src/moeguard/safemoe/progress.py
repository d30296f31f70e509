"""One rich progress bar for fine-tuning, instead of the Trainer's tqdm bar and printed log dicts."""

from __future__ import annotations

from transformers import TrainerCallback


class RichProgressCallback(TrainerCallback):
    """A single bar over optimiser steps; the latest loss (and routing loss) in its description."""

    def __init__(self) -> None:
        self._bar = None
        self._task = None

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        from moeguard.progress import progress_bar

        self._bar = progress_bar()
        self._bar.start()
        self._task = self._bar.add_task("fine-tuning", total=state.max_steps, completed=state.global_step)

    def on_step_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.update(self._task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self._bar is None or not logs:
            return
        parts = [f"{key} {logs[key]:.3f}" for key in ("loss", "route_loss", "safety_route_loss") if key in logs]
        if parts:
            self._bar.update(self._task, description="fine-tuning (" + ", ".join(parts) + ")")

    def on_train_end(self, args, state, control, **kwargs):
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def use_rich_progress(trainer) -> None:
    """Replace the Trainer's console output (tqdm bar, printed dicts) by :class:`RichProgressCallback`."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(RichProgressCallback())
