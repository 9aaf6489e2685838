"""The trainer base (egoforge.train): exact resume through the step loop, checkpoint find/rotate, parameter groups,
precision names and the epochs <-> steps arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from egoforge.train import checkpoints, param_groups, steps
from egoforge.train.accelerator import make_accelerator, mixed_precision
from egoforge.train.loop import StepTrainer, due
from egoforge.train.loss_log import LossLog, plot_loss_log, read_log

STATE = "trainer_state.json"


class TinyRegression(StepTrainer):
    """A linear model on (seed, step)-derived batches: the smallest pipeline that exercises model, optimizer,
    scheduler, global RNG (dropout) and data position."""

    name = "tiny"

    def __init__(self, out: Path, total: int, save_steps: int = 2, keep: int | None = None, accum: int = 2) -> None:
        self.out, self.total, self.save_every, self.keep, self.accum = out, total, save_steps, keep, accum

    def setup(self) -> None:
        self.accelerator = make_accelerator("no", self.accum, seed=0)
        self.output_dir, self.log_path = self.out, self.out / "log.jsonl"
        self.total_steps, self.logging_steps, self.save_steps = self.total, 1, self.save_every
        self.save_total_limit, self.progress = self.keep, False
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Dropout(0.3), torch.nn.Linear(8, 1))
        groups = param_groups.decay_groups(model, param_groups.bias_or_1d, 0.1)
        optimizer = torch.optim.AdamW(groups, lr=0.05)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        resume = checkpoints.resolve_resume("auto", self.out, STATE)
        self.start_step = 0
        if resume is not None:
            model.load_state_dict(torch.load(resume / "model.pt", weights_only=True))
            checkpoints.load_optimizer_state(resume, optimizer, scheduler)
            state = json.loads((resume / STATE).read_text())
            self.start_step = state["step"]
            torch.set_rng_state(torch.tensor(state["rng"], dtype=torch.uint8))
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(model, optimizer, scheduler)

    def optimizer_step(self, step: int) -> float:
        losses = []
        for micro in range(self.accum):
            g = torch.Generator().manual_seed(step * 100 + micro)  # the data position is the step
            x = torch.randn(3, 4, generator=g)
            with self.accelerator.accumulate(self.model):
                loss = (self.model(x).squeeze(-1) - x.sum(-1)).pow(2).mean()
                self.accelerator.backward(loss)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad()
            losses.append(float(loss.detach()))
        return sum(losses) / len(losses)

    def log_record(self, done: int, window: list) -> dict:
        return {"step": done, "loss": sum(window) / len(window), "lr": self.optimizer.param_groups[0]["lr"]}

    def save_checkpoint(self, done: int) -> Path:
        folder = checkpoints.checkpoint_dir(self.out, done)
        folder.mkdir(parents=True)
        torch.save(self.accelerator.unwrap_model(self.model).state_dict(), folder / "model.pt")
        checkpoints.save_optimizer_state(folder, self.optimizer.optimizer, self.scheduler.scheduler)
        state = {"step": done, "rng": torch.get_rng_state().tolist()}
        (folder / STATE).write_text(json.dumps(state))
        return folder

    def finish(self, record: dict) -> dict:
        self.accelerator.end_training()
        return record


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "model.pt", weights_only=True)


def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path):
    TinyRegression(tmp_path / "straight", total=6).fit()
    TinyRegression(tmp_path / "resumed", total=3).fit()  # stops after step 3 (checkpoint-3 is the last step)
    assert checkpoints.latest_checkpoint(tmp_path / "resumed", STATE).name == "checkpoint-3"
    TinyRegression(tmp_path / "resumed", total=6).fit()
    a, b = _weights(tmp_path / "straight" / "checkpoint-6"), _weights(tmp_path / "resumed" / "checkpoint-6")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log_a, log_b = read_log(tmp_path / "straight" / "log.jsonl"), read_log(tmp_path / "resumed" / "log.jsonl")
    assert [r["step"] for r in log_a] == list(range(1, 7))
    assert log_a == log_b
    # the test can fail: a run that ignores the checkpoint (a fresh start at step 0) differs
    fresh = _weights(tmp_path / "straight" / "checkpoint-2")
    assert not all(torch.equal(fresh[k], a[k]) for k in a)


def test_loop_saves_at_save_steps_and_the_last_and_rotation_keeps_the_newest(tmp_path):
    TinyRegression(tmp_path / "run", total=7, save_steps=2, keep=2).fit()
    assert [p.name for p in checkpoints.list_checkpoints(tmp_path / "run")] == ["checkpoint-6", "checkpoint-7"]


def test_rotation_keeps_the_newest_k_by_step_number_not_by_name(tmp_path):
    for step in (1, 2, 10, 9, 100):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-best").mkdir()  # not a step: never counted, never deleted
    (tmp_path / "checkpoint-3").write_text("a file, not a checkpoint")
    deleted = checkpoints.rotate_checkpoints(tmp_path, 2)
    assert sorted(p.name for p in deleted) == ["checkpoint-1", "checkpoint-2", "checkpoint-9"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-100", "checkpoint-3",
                                                          "checkpoint-best"]
    assert checkpoints.rotate_checkpoints(tmp_path, None) == [] and (tmp_path / "checkpoint-10").is_dir()


def test_latest_and_resume_skip_incomplete_checkpoints(tmp_path):
    for step in (2, 11):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-2" / STATE).write_text("{}")  # checkpoint-11 was interrupted: no state file
    assert checkpoints.latest_checkpoint(tmp_path, STATE).name == "checkpoint-2"
    assert checkpoints.latest_checkpoint(tmp_path).name == "checkpoint-11"
    assert checkpoints.resolve_resume("auto", tmp_path, STATE).name == "checkpoint-2"
    assert checkpoints.resolve_resume("none", tmp_path, STATE) is None
    with pytest.raises(FileNotFoundError, match="checkpoint-11.*no trainer_state.json"):
        checkpoints.resolve_resume(str(tmp_path / "checkpoint-11"), tmp_path, STATE)
    assert checkpoints.latest_checkpoint(tmp_path / "missing", STATE) is None


@pytest.mark.parametrize("epochs, samples, batch, expected", [
    (1, 100, 10, 10), (1, 101, 10, 11), (0.5, 100, 16, 4), (200, 50, 304, 33), (0.001, 10, 10, 1)])
def test_epochs_to_steps_rounds_up_and_is_at_least_one(epochs, samples, batch, expected):
    assert steps.epochs_to_steps(epochs, samples, batch) == expected


def test_steps_per_epoch_and_position():
    assert steps.global_batch(4, 2, 3) == 24
    assert steps.steps_per_epoch(batches_per_epoch=7, gradient_accumulation_steps=2) == 3  # partial step dropped
    assert steps.epoch_position(7, 3) == (2, 1) and steps.epoch_position(6, 3) == (2, 0)
    with pytest.raises(ValueError, match="at least one optimizer step"):
        steps.epoch_position(3, 0)


def test_due_counts_every_nth_and_the_last_step():
    assert [d for d in range(1, 8) if due(d, 3, 7)] == [3, 6, 7]
    assert [d for d in range(1, 4) if due(d, 0, 3)] == [1, 2, 3]


def test_parameter_groups_follow_each_trainers_rule():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    model.register_parameter("scale", torch.nn.Parameter(torch.ones(())))  # 0-d: DINO decays it, 4M does not
    model[0].weight.requires_grad_(False)
    dino = param_groups.decay_groups(model, param_groups.bias_or_1d)
    assert [p.shape for p in dino[0]["params"]] == [torch.Size([])] and "weight_decay" not in dino[0]
    assert len(dino[1]["params"]) == 3 and dino[1]["weight_decay"] == 0.0
    four_m = param_groups.decay_groups(model, param_groups.below_2d, 0.05)
    assert four_m[0] == {"params": [], "weight_decay": 0.05} and len(four_m[1]["params"]) == 4
    named = param_groups.decay_groups(model, param_groups.named({"1.weight"}), 0.05)
    assert len(named[1]["params"]) == 1 and len(named[0]["params"]) == 3


def test_mixed_precision_reads_yaml_no_and_refuses_unknown_names():
    assert mixed_precision(False) == mixed_precision(None) == mixed_precision("no") == "no"
    assert mixed_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="float16"):
        mixed_precision("float16")


def test_loss_log_keeps_the_last_record_per_step_and_plots(tmp_path):
    log = LossLog(tmp_path / "log.jsonl")
    for record in ({"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0, "loss_rgb": 1.0}, {"step": 2, "loss": 1.5}):
        log.write(record)
    LossLog(tmp_path / "log.jsonl", enabled=False).write({"step": 9, "loss": 0.0})  # another process: no write
    assert read_log(tmp_path / "log.jsonl") == [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 1.5}]
    assert plot_loss_log(tmp_path / "log.jsonl", tmp_path / "loss.png", "t").read_bytes()[:4] == b"\x89PNG"
    assert plot_loss_log(tmp_path / "none.jsonl", tmp_path / "none.png", "t") is None
    assert not (tmp_path / "none.png").exists()


def test_recipes_read_exponent_floats_as_numbers_and_stay_safe(tmp_path):
    """PyYAML's YAML 1.1 reads ``1e-4`` as a string, which TRL's GRPOConfig then fails on (a TypeError): recipes and
    overrides read it as the float every trainer's docs mean; Python tags are still refused."""
    import yaml

    from egoforge.train.recipe import load_recipe, parse_override

    recipe = tmp_path / "r.yaml"
    recipe.write_text("trainer: x\noptim:\n  learning_rate: 1e-4\n  name: 1e4x\n  steps: 5\n")
    loaded = load_recipe(recipe, ["optim.weight_decay=5e-2", "optim.betas=[0.9, 0.99]"])
    assert loaded["optim"] == {"learning_rate": 1e-4, "name": "1e4x", "steps": 5, "weight_decay": 0.05,
                               "betas": [0.9, 0.99]}
    assert parse_override("a=-2E+3") == (["a"], -2000.0)
    recipe.write_text("trainer: !!python/object/apply:os.system [echo hi]\n")
    with pytest.raises(Exception, match="not valid YAML|could not determine a constructor"):
        load_recipe(recipe)
    assert isinstance(yaml.safe_load("lr: 1e-4")["lr"], str)  # the PyYAML behaviour this guards against


def test_every_trainer_ends_with_one_summary_line_naming_steps_loss_and_output(tmp_path, capsys):
    TinyRegression(tmp_path / "run", total=3).fit()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("tiny finished: 3 steps, final loss ")
    assert last.endswith(f"-> {tmp_path / 'run'}")
    TinyRegression(tmp_path / "run", total=4).fit()  # resumes from checkpoint-2 (save_steps=2)... and the last, 3
    assert "1 steps (resumed at step 3)" in capsys.readouterr().out


def test_loss_figure_is_titled_labelled_and_puts_each_unit_on_its_own_axes():
    from egoforge.train.loss_log import loss_figure

    steps = range(1, 51)
    curves = {"loss": [(s, 10.0 / s) for s in steps], "loss_rep": [(s, 5.0) for s in steps],
              "loss_pred": [(s, 5.0) for s in steps], "loss_act": [(s, 0.3) for s in steps]}
    units = {"loss_rep": "cross-entropy (nats)", "loss_pred": "cross-entropy (nats)", "loss_act": "MPJPE (m)"}
    fig = loss_figure(curves, "stage 2", xlabel="optimiser step", ylabel="weighted total", units=units)
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == ["weighted total", "cross-entropy (nats)", "MPJPE (m)"]
    assert axes[0].get_title() == "stage 2" and axes[-1].get_xlabel() == "optimiser step"
    assert axes[0].get_yscale() == "log"  # 10 .. 0.2: a linear axis would flatten it
    assert axes[1].get_yscale() == "linear"
    rep, pred = axes[1].get_lines()
    # two identical curves stay distinguishable: other colour, other style, the later one thinner on top
    assert rep.get_color() != pred.get_color() and rep.get_linestyle() != pred.get_linestyle()
    assert rep.get_linewidth() > pred.get_linewidth()
    for ax in axes:  # the legend is outside the data area (anchored right of the axes)
        legend = ax.get_legend()
        assert legend is not None and legend.get_bbox_to_anchor().x0 >= ax.get_window_extent().x1 - 1
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_loss_plot_png_is_large_enough_to_read(tmp_path):
    from PIL import Image

    log = LossLog(tmp_path / "log.jsonl")
    for step in range(1, 6):
        log.write({"step": step, "loss": 1.0 / step, "loss_a": 0.5})
    png = plot_loss_log(tmp_path / "log.jsonl", tmp_path / "loss.png", "t", units={"loss_a": "metres (m)"})
    width, height = Image.open(png).size
    assert width >= 700 and height >= 500


def test_steps_plan_says_both_step_counts_when_max_steps_stops_the_schedule_early():
    from egoforge.train.loop import steps_plan

    assert steps_plan(175, None) == "175 steps" and steps_plan(175, 200) == "175 steps"
    line = steps_plan(175, 100, lambda step: 1.0 - step / 174)
    assert line.startswith("100 steps (max_steps) of a 175-step learning-rate schedule")
    assert "last lr 0.431, schedule's final 0" in line


def test_a_cpu_run_prints_no_deepspeed_accelerator_notice():
    pytest.importorskip("deepspeed")
    import os
    import subprocess
    import sys

    code = ("import torch\nfrom egoforge.train.accelerator import make_accelerator\n"
            "a = make_accelerator('no'); m = a.prepare(torch.nn.Linear(2, 2)); a.unwrap_model(m)\n"
            "import logging; logging.getLogger('DeepSpeed').warning('other DeepSpeed warnings stay')\n")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Setting accelerator to CPU" not in out.stdout + out.stderr
    assert "other DeepSpeed warnings stay" in out.stdout + out.stderr
