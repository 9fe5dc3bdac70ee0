"""One training loop for every advsig job: joint W+F training and each generator family's fine-tune.

A job is a :class:`Recipe`: the modules it trains (and checkpoints by name), its optimizer, and
one step's update. :class:`Engine` gives every job the same Accelerate setup, resume (weights,
optimizer, EMA and each process's RNG states), an EMA of one module, TensorBoard trackers, a
progress bar on the main process, atomic checkpoints with rotation and the wall time.
Why one loop: the four copies it replaces had drifted (the latent one discarded its restored EMA
on resume).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from advsig.errors import ConfigError, TrainingError
from advsig.training.checkpoint import (
    finish_checkpoint,
    load_checkpoint,
    resolve_resume,
    write_process_rng,
)

logger = logging.getLogger(__name__)

EMA_NAME = "ema"  # checkpoint file stem of the EMA weights


@dataclass(frozen=True)
class LoopConfig:
    """How the loop runs, whatever it trains.

    Attributes:
        steps: total optimisation steps (a resumed run continues to the same total).
        work: folder of ``checkpoint-{step}`` folders.
        project_dir: folder of the TensorBoard logs (default: ``work``).
        ema_decay: ceiling of the EMA decay of the recipe's ``ema_module`` (warmed up from 0);
            ``None``: no EMA.
        max_grad_norm: gradient clipping in :meth:`Engine.update`; 0 = off.
        tracker: the TensorBoard run name. description: the progress bar's label.
        hparams: the job's own configuration, written into trackers and every checkpoint.
    """

    steps: int
    work: Path
    project_dir: Path | None = None
    resume: str | None = None
    seed: int = 0
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    log_every: int = 10
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 0.0
    ema_decay: float | None = None
    tracker: str = "train"
    description: str = "train"
    hparams: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("steps", "checkpoint_every", "log_every", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.ema_decay is not None and not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")


class Recipe(Protocol):
    """What one training job supplies to :meth:`Engine.run`.

    ``modules``: the trained networks by checkpoint name, unwrapped (Accelerate's wrappers share
    their parameters). ``ema_module``: which of them gets an EMA, or ``None``. ``extra``: state a
    resumed run must find again (written into each checkpoint's ``state.json``).
    """

    modules: dict[str, nn.Module]
    optimizer: torch.optim.Optimizer
    ema_module: str | None
    extra: dict

    def prepare(self, engine: Engine) -> None:
        """Wrap the networks that run forward and the optimizer with ``engine.accelerator``."""
        ...

    def step(self, engine: Engine, step: int, *, log: bool) -> dict[str, float]:
        """One optimisation step (through :meth:`Engine.update`); scalars to log when ``log``."""
        ...


@dataclass
class LoopResult:
    """What a finished loop hands back: the EMA module (``None`` without EMA) and timings."""

    wall_time_s: float
    ema: nn.Module | None
    extra: dict


class Engine:
    """Accelerate, seeds and the data generator for one job; :meth:`run` drives its recipe.

    Built before the recipe, so the recipe can build its networks on ``device`` and draw its
    batches from ``data_gen`` (seeded per process, restored on resume).
    """

    def __init__(self, config: LoopConfig) -> None:
        from accelerate import Accelerator
        from accelerate.utils import set_seed

        self.config = config
        self.step = 0  # the step being run, for messages
        # Tiny residuals and their gradients drift into denormal floats, which run many times
        # slower on x86 CPUs; flushing them to zero changes nothing measurable.
        torch.set_flush_denormal(True)
        self.accelerator = Accelerator(
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            log_with="tensorboard",
            project_dir=str(config.project_dir or config.work),
        )
        set_seed(config.seed)  # identical initialisation on every process
        rank = self.accelerator.process_index
        self.data_gen = torch.Generator().manual_seed(config.seed * 1000 + rank)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    def update(self, loss: torch.Tensor, optimizer, params=None) -> None:
        """Backward, clip ``params`` to ``max_grad_norm`` (when both are set), step, zero.

        A loss that is not finite stops the run before it reaches the weights. Why: one NaN
        step turns every weight into NaN, and the run would otherwise go on for hours and write
        NaN checkpoints over the good ones (stop 45: a tiny kit trained 1,500 such steps).
        """
        if not torch.isfinite(loss.detach()).all():
            raise TrainingError(
                f"training diverged at step {self.step + 1}: the loss is {loss.item()}. Nothing "
                f"after it was saved; the last checkpoint in {self.config.work} holds the "
                "weights before it. Lower the learning rate, or look for constant or corrupt "
                "images in the data."
            )
        self.accelerator.backward(loss)
        if self.config.max_grad_norm and params is not None:
            self.accelerator.clip_grad_norm_(params, self.config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def wait(self) -> None:
        self.accelerator.wait_for_everyone()

    def run(self, recipe: Recipe) -> LoopResult:
        """Resume if asked, train to ``config.steps``, checkpoint on the way; return the EMA."""
        from diffusers.training_utils import EMAModel

        cfg, acc = self.config, self.accelerator
        ema_copy = None
        if recipe.ema_module is not None and cfg.ema_decay is not None:
            ema_copy = copy.deepcopy(recipe.modules[recipe.ema_module]).eval().requires_grad_(False)
        saved = {**recipe.modules, **({EMA_NAME: ema_copy} if ema_copy is not None else {})}
        start_step, elapsed = 0, 0.0
        resume_from = resolve_resume(cfg.work, cfg.resume)
        if resume_from is not None:
            state = load_checkpoint(
                resume_from, models=saved, optimizer=recipe.optimizer,
                rank=acc.process_index, data_generator=self.data_gen,
            )  # fmt: skip
            start_step, elapsed = state["step"], state.get("elapsed_s", 0.0)
            recipe.extra.update({**state.get("extra", {}), **recipe.extra})
            logger.info("resumed from %s at step %d", resume_from, start_step)
        ema = None
        if ema_copy is not None:  # built from the restored EMA weights, not the trained ones
            ema = EMAModel(ema_copy.parameters(), decay=cfg.ema_decay, use_ema_warmup=True)
            ema.optimization_step = start_step
        recipe.prepare(self)
        if ema is not None:
            ema.to(self.device)
        acc.init_trackers(
            cfg.tracker,
            config={k: v for k, v in cfg.hparams.items() if isinstance(v, (int, float, str, bool))},
        )
        t0 = time.time() - elapsed
        bar = tqdm(
            range(start_step, cfg.steps), initial=start_step, total=cfg.steps,
            desc=cfg.description, disable=not acc.is_main_process,
        )  # fmt: skip
        keys = getattr(recipe, "progress_keys", None)
        for step in bar:
            self.step, done = step, step + 1
            log = done % cfg.log_every == 0 or done == cfg.steps
            logs = recipe.step(self, step, log=log)
            if ema is not None:
                ema.step(recipe.modules[recipe.ema_module].parameters())
            if log:
                if ema is not None:
                    logs = {**logs, "ema_decay": ema.cur_decay_value or 0.0}
                acc.log(logs, step=done)
                shown = {k: v for k, v in logs.items() if keys is None or k in keys}
                bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})
            if done % cfg.checkpoint_every == 0 and done < cfg.steps:
                if ema is not None:
                    ema.copy_to(ema_copy.parameters())
                self._checkpoint(recipe, saved, done, time.time() - t0)
        bar.close()
        wall = time.time() - t0
        acc.wait_for_everyone()
        acc.end_training()
        if ema is not None:
            ema.copy_to(ema_copy.parameters())
        return LoopResult(wall, ema_copy, recipe.extra)

    def _checkpoint(self, recipe: Recipe, saved: dict, step: int, elapsed: float) -> None:
        acc = self.accelerator
        write_process_rng(self.config.work, step, acc.process_index, self.data_gen)
        acc.wait_for_everyone()
        if acc.is_main_process:
            optimizer = getattr(recipe.optimizer, "optimizer", recipe.optimizer)
            finish_checkpoint(
                self.config.work, step, models=saved, optimizer=optimizer,
                state={"elapsed_s": elapsed, "config": self.config.hparams, "extra": recipe.extra},
                keep=self.config.keep_checkpoints,
            )  # fmt: skip
        acc.wait_for_everyone()
