"""The trainer base: one loop over optimizer steps that EgoAgent, EgoM2P and the LEGO LDM plug into.

The loop owns the order of things, which is what makes a resumed run repeat the uninterrupted one: for each
optimizer step from ``start_step`` to ``total_steps`` it runs the subclass's :meth:`StepTrainer.optimizer_step`,
then at logging steps (every ``logging_steps`` and the last) writes :meth:`log_record` to the log, then writes any
:meth:`extra_records` (evaluations), then at save steps (every ``save_steps`` and the last) calls
:meth:`save_checkpoint` and keeps the ``save_total_limit`` newest checkpoints. A subclass sets these attributes in
:meth:`setup` (model, optimizer, resume position: everything pipeline-specific) and finishes in :meth:`finish`;
then the main process prints one :func:`summary_line` (steps, final loss, time, output folder), the last line of
every egoforge trainer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from egoforge.train.checkpoints import rotate_checkpoints
from egoforge.train.loss_log import LossLog


def due(done: int, every: int, total: int) -> bool:
    """True on every ``every``-th step and on the last one (``every`` < 1 counts as 1)."""
    return done % max(1, every) == 0 or done == total


def summary_line(name: str, start: int, done: int, loss: Any, seconds: float, output: Path) -> str:
    """``NAME finished: N steps, final loss L, M s -> OUTPUT``: what a finished run did and where it wrote."""
    ran = f"{done - start} steps" if start == 0 else f"{done - start} steps (resumed at step {start})"
    final = f"final loss {loss:.4g}" if isinstance(loss, (int, float)) and math.isfinite(loss) else "no loss logged"
    return f"{name} finished: {ran}, {final}, {seconds:.1f} s -> {output}"


def steps_plan(schedule_steps: int, max_steps: int | None, lr: Callable[[int], float] | None = None) -> str:
    """The steps a run will really take, for a trainer's header: ``N steps``, or, when ``max_steps`` stops the run
    before the learning-rate schedule ends, both numbers and why the last learning rate (``lr(step)``) is not the
    schedule's final one."""
    if not max_steps or max_steps >= schedule_steps:
        return f"{schedule_steps} steps"
    rates = f" (last lr {lr(max_steps - 1):.3g}, schedule's final {lr(schedule_steps - 1):.3g})" if lr else ""
    return (f"{max_steps} steps (max_steps) of a {schedule_steps}-step learning-rate schedule, which it stops before "
            f"the decay ends{rates}")


class StepTrainer:
    """Subclasses implement ``setup``, ``optimizer_step``, ``log_record``, ``save_checkpoint`` and ``finish``."""

    name = "train"
    # set by setup()
    accelerator: Any
    output_dir: Path
    log_path: Path
    start_step: int = 0
    total_steps: int = 0
    logging_steps: int = 10
    save_steps: int = 1000
    save_total_limit: int | None = None
    progress: bool = True

    # --- what a pipeline provides ----------------------------------------------------------------------------------
    def setup(self) -> None:
        raise NotImplementedError

    def optimizer_step(self, step: int) -> Any:
        """Train step ``step`` (all its micro-batches); returns what :meth:`log_record` averages over a window."""
        raise NotImplementedError

    def log_record(self, done: int, window: list) -> dict:
        """The log record after ``done`` steps from the window of step results since the last record
        (collective: every process calls it)."""
        raise NotImplementedError

    def extra_records(self, done: int) -> list[dict]:
        """Records written after the step's log record (e.g. a validation loss); collective."""
        return []

    def save_checkpoint(self, done: int) -> Path | None:
        """Write ``checkpoint-<done>`` (collective: every process calls it)."""
        raise NotImplementedError

    def finish(self, record: dict) -> Any:
        """After the last step: final model, plot, ``end_training``; returns what :meth:`fit` returns."""
        return record

    def postfix(self, record: dict) -> dict:
        return {"loss": f"{record['loss']:.4f}"} if isinstance(record.get("loss"), float) else {}

    # --- the loop ----------------------------------------------------------------------------------------------------
    def fit(self) -> Any:
        from tqdm import tqdm

        started = time.perf_counter()
        self.setup()
        main = self.accelerator.is_main_process
        log = LossLog(self.log_path, enabled=main)
        bar = tqdm(total=self.total_steps, initial=self.start_step, desc=self.name, unit="step",
                   disable=not (self.progress and self.accelerator.is_local_main_process))
        window: list = []
        record: dict = {}
        done = self.start_step
        for step in range(self.start_step, self.total_steps):
            window.append(self.optimizer_step(step))
            done = step + 1
            bar.update(1)
            if due(done, self.logging_steps, self.total_steps):
                record, window = self.log_record(done, window), []
                log.write(record)
                bar.set_postfix(self.postfix(record))
            for extra in self.extra_records(done):
                log.write(extra)
            if due(done, self.save_steps, self.total_steps):
                self.save_checkpoint(done)
                if main:
                    rotate_checkpoints(self.output_dir, self.save_total_limit)
        bar.close()
        result = self.finish(record)
        if main:
            print(summary_line(self.name, self.start_step, done, record.get("loss"),
                               time.perf_counter() - started, self.output_dir), flush=True)
        return result
