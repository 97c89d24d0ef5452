"""The pix2pix training loop: phase 1 pretrains the generator on L1, phase 2 adds the GAN loss.

A run folder holds everything: ``checkpoints/last.safetensors`` (resumed automatically),
``metrics.jsonl`` (train losses and validation metrics), ``samples/step_XXXXXXX.png`` (gray input |
ground truth | output), ``generator.safetensors`` (the final generator, for the exporter) and
``train.log``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import logging
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from colorizer.colorize import colorize
from colorizer.fileio import atomic_path
from colorizer.hint_spread import DEFAULT_PARAMS
from colorizer.trainer import checkpoint as ckpt
from colorizer.trainer.config import TrainConfig
from colorizer.trainer.data import ColorPhotoDataset, HintSampling, list_images, read_rgb, usable_spread
from colorizer.trainer.degrade import OldPhotoFilter
from colorizer.trainer.evaluate import evaluate_predictor, torch_predictor
from colorizer.trainer.metrics_log import MetricsLog
from colorizer.trainer.networks import GANLoss, GeneratorConfig, define_discriminator, define_generator

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def split_holdout(files: list[Path], fraction: float) -> tuple[list[Path], list[Path]]:
    """Deterministic hold-out by a hash of the file name: the same files are held out on every run."""
    def bucket(p: Path) -> float:
        return int(hashlib.sha1(str(p).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    val = [p for p in files if bucket(p) < fraction]
    train = [p for p in files if bucket(p) >= fraction]
    return train, val


def data_summary(cfg: TrainConfig, dataset: ColorPhotoDataset) -> str:
    roots = ", ".join("/".join(Path(d).resolve().parts[-2:]) for d in cfg.data)
    gray, unreadable = dataset.skipped()
    return (f"{roots}: {len(dataset) - gray - unreadable} color photos ({gray} grayscale and "
            f"{unreadable} unreadable skipped so far), {cfg.size}px crops")


def files_digest(files: list[Path]) -> str:
    """A fingerprint of the training photos' list (names and order), recorded in each checkpoint."""
    digest = hashlib.sha1()
    for path in files:
        digest.update(str(path).encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


@dataclass
class Trainer:
    cfg: TrainConfig
    progress: bool = True

    def __post_init__(self) -> None:
        cfg = self.cfg
        cfg.check()
        self.run_dir = Path(cfg.out)
        self.device = pick_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.G = define_generator(cfg.generator, pretrained=not cfg.init_from)
        if cfg.init_from:
            self.G.load_state_dict(_warm_start_state(Path(cfg.init_from), cfg.generator))
            log.info("generator warm-started from %s", cfg.init_from)
        if cfg.no_hint_teacher and not (cfg.generator.hint_channels and cfg.init_from):
            raise ValueError("--no-hint-teacher needs --hint-inputs and --init-from")
        if cfg.no_hint_copies and not cfg.no_hint_teacher:
            raise ValueError("--no-hint-copies needs --no-hint-teacher")
        if cfg.hint_weights_only:
            if not (cfg.generator.hint_channels and cfg.init_from and hasattr(self.G, "train_guidance_only")):
                raise ValueError("--hint-weights-only needs --hint-inputs, --init-from and the effunet generator")
            self.G.train_guidance_only()
        if cfg.keep_batchnorm:
            if not (cfg.init_from and hasattr(self.G, "keep_batchnorm_statistics")):
                raise ValueError("--keep-batchnorm needs --init-from and the effunet generator")
            self.G.keep_batchnorm_statistics()
        self.G.to(self.device)
        self.D = define_discriminator(cfg.discriminator).to(self.device)
        if self.device.type == "cuda" or cfg.generator.name == "effunet":  # depthwise convs: faster on CPU too
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        # the start's frozen copy: what samples without hints learn (--no-hint-teacher)
        self.teacher = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.no_hint_teacher else None
        betas = (cfg.beta1, cfg.beta2)
        self.opt_g = torch.optim.Adam(_generator_param_groups(self.G, cfg), lr=cfg.lr, betas=betas)
        lr_d = cfg.lr_d or cfg.lr
        self.opt_d = torch.optim.Adam([{"params": self.D.parameters(), "base_lr": lr_d}], lr=lr_d, betas=betas)
        self.ema = copy.deepcopy(self.G).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
        self.gan_loss = GANLoss(cfg.gan_mode).to(self.device)
        self.step = 0

    # ------------------------------------------------------------------ state
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.safetensors"

    def save(self) -> None:
        ckpt.save_training(self.checkpoint_path, step=self.step, config=self.cfg_dict(), generator=self.G,
                           discriminator=self.D, optimizer_g=self.opt_g, optimizer_d=self.opt_d, ema=self.ema,
                           hint_spread=self.hint_spread())
        if self.cfg.keep_checkpoints:  # whole or absent, as last.safetensors (a full disk, a kill mid-copy)
            with atomic_path(self.checkpoint_path.with_name(f"step_{self.step:07d}.safetensors")) as partial:
                shutil.copyfile(self.checkpoint_path, partial)

    def cfg_dict(self) -> dict:
        dataset = getattr(self, "dataset", None)
        if dataset is not None:  # with the gray and unreadable photos met so far
            self.summary = data_summary(self.cfg, dataset)
        data = {}
        if hasattr(self, "data_files"):  # a resumed run says when its photos changed (prepare_data)
            data = {"data_files": self.data_files[0], "data_digest": self.data_files[1]}
        return self.cfg.to_dict() | {"data_summary": getattr(self, "summary", "")} | data

    def load(self, path: Path) -> None:
        state = ckpt.load_training(path)
        self.G.load_state_dict(state.generator)
        self.D.load_state_dict(state.discriminator)
        self.opt_g.load_state_dict(state.optimizer_g)
        self.opt_d.load_state_dict(state.optimizer_d)
        if self.ema is not None and state.ema:
            self.ema.load_state_dict(state.ema)
        if state.torch_rng is not None:
            torch.set_rng_state(state.torch_rng)
        self.step = state.step
        self.resumed_config = state.config

    # ------------------------------------------------------------------ steps
    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def set_learning_rate(self) -> None:
        """Each group's rate at this step: its base rate times the schedule's factor (a pure function of
        the step, so a resumed run continues the same curve)."""
        factor = _lr_factor(self.cfg, self.step)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = group.get("base_lr", self.cfg.lr) * factor

    def pixel_loss(self, fake: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return pixel_loss(fake, ab, self.cfg)

    def taught_targets(self, l_norm: torch.Tensor, ab: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
        """``ab`` with each sample that was given no hint (zero confidence plane) replaced by the
        teacher's colors for it (--no-hint-teacher); ``ab`` itself when every sample has hints."""
        none = hints[:, 2].flatten(1).amax(1) <= 0
        if not bool(none.any()):
            return ab
        with torch.no_grad(), self.autocast():
            taught = self.teacher(l_norm[none], hints[none]).float()
        ab = ab.clone()
        ab[none] = taught.to(ab.dtype)
        return ab

    def train_step(self, l_norm: torch.Tensor, ab: torch.Tensor, hints: torch.Tensor | None = None
                   ) -> dict[str, float]:
        """One step; ``hints``: the guidance planes of a generator with hint inputs (None: none)."""
        cfg = self.cfg
        if self.teacher is not None and hints is not None and cfg.no_hint_copies:
            hinted = hints[:, 2].flatten(1).amax(1) > 0  # their copies without hints: the teacher's colors
            l_norm, ab = torch.cat([l_norm, l_norm[hinted]]), torch.cat([ab, ab[hinted]])
            hints = torch.cat([hints, torch.zeros_like(hints[hinted])])
        if self.teacher is not None and hints is not None:
            ab = self.taught_targets(l_norm, ab, hints)
        gan_phase = self.step >= cfg.pretrain_steps
        self.set_learning_rate()
        self.G.train()
        self.D.train()
        with self.autocast():
            fake = self.G(l_norm) if hints is None else self.G(l_norm, hints)
        losses: dict[str, float] = {}
        if gan_phase:
            self.D.requires_grad_(True)
            self.opt_d.zero_grad(set_to_none=True)
            with self.autocast():
                pred_fake = self.D(torch.cat([l_norm, fake.detach()], 1))
                pred_real = self.D(torch.cat([l_norm, ab], 1))
                loss_d = 0.5 * (self.gan_loss(pred_fake.float(), False) + self.gan_loss(pred_real.float(), True))
            loss_d.backward()
            self.opt_d.step()
            self.D.requires_grad_(False)
            losses["D"] = loss_d.item()
        self.opt_g.zero_grad(set_to_none=True)
        with self.autocast():
            loss_pixel = self.pixel_loss(fake.float(), ab)
            loss_g = cfg.lambda_l1 * loss_pixel
            if gan_phase:
                loss_gan = self.gan_loss(self.D(torch.cat([l_norm, fake], 1)).float(), True)
                loss_g = loss_g + loss_gan
                losses["G_gan"] = loss_gan.item()
        loss_g.backward()
        self.opt_g.step()
        losses["L1"] = (loss_pixel.item() if cfg.pixel_loss == "l1" and not cfg.chroma_weight
                        else torch.nn.functional.l1_loss(fake.detach().float(), ab).item())
        if self.ema is not None:
            with torch.no_grad():
                ema_p, p = list(self.ema.parameters()), list(self.G.parameters())
                torch._foreach_lerp_(ema_p, p, 1.0 - cfg.ema_decay)
                for b_ema, b in zip(self.ema.buffers(), self.G.buffers(), strict=True):
                    b_ema.copy_(b)
        self.step += 1
        return losses

    # ------------------------------------------------------------------ validation
    def inference_generator(self) -> torch.nn.Module:
        return (self.ema if self.ema is not None else self.G).eval()

    def validate(self, val_files: list[Path]) -> dict:
        net = self.inference_generator()
        predict = torch_predictor(net, self.device)
        report = evaluate_predictor(predict, val_files, render_size=self.cfg.size,
                                    size_multiple=self.cfg.generator.size_multiple, progress=False)
        self.write_samples(val_files[: self.cfg.samples], predict)
        return report

    def write_samples(self, files: list[Path], predict: Callable) -> None:
        rows = []
        for path in files:
            rgb = read_rgb(path)
            if rgb is None:
                continue
            rgb = cv2.resize(rgb, (self.cfg.size * 2, self.cfg.size * 2), interpolation=cv2.INTER_AREA)
            gray = cv2.cvtColor(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            out = colorize(rgb, predict, self.cfg.size, self.cfg.generator.size_multiple)
            rows.append(np.hstack([gray, rgb, (out * 255 + 0.5).astype(np.uint8)]))
        if rows:
            path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))

    # ------------------------------------------------------------------ the loop
    def prepare_data(self) -> tuple[ColorPhotoDataset, list[Path]]:
        """The training set and the validation photos. The training photos are listed, not opened (the
        dataset skips gray and unreadable ones as it meets them); only the validation photos are checked,
        about ``val_images`` of them."""
        cfg = self.cfg
        listed = list_images([Path(d) for d in cfg.data])
        if cfg.limit:
            listed = listed[: cfg.limit]
        if cfg.val_data:
            train_files, held_out = listed, list_images([Path(d) for d in cfg.val_data])
        else:
            train_files, held_out = split_holdout(listed, cfg.val_fraction)
        val = usable_spread(held_out, cfg.val_images)
        val_files = val.files
        log.info("%d training photos listed (grayscale and unreadable ones are skipped as training meets them); "
                 "%d validation photos (%d grayscale and %d unreadable passed over)", len(train_files),
                 len(val_files), len(val.grayscale), len(val.unreadable))
        if not val_files:
            log.warning("no validation photos: metrics and sample grids are not written")
        if len(train_files) < cfg.batch_size:
            raise ValueError(f"only {len(train_files)} usable training photos; need at least one batch "
                             f"({cfg.batch_size})")
        old_photo = OldPhotoFilter(cfg.old_photo_filters, cfg.old_photo_p) if cfg.old_photo_filters else None
        hints = HintSampling(p_none=cfg.hint_p_none, p=cfg.hint_count_p) if cfg.generator.hint_channels else None
        self.dataset = ColorPhotoDataset(train_files, cfg.size, train=True, seed=cfg.seed, old_photo=old_photo,
                                         hints=hints)
        self.data_files = (len(train_files), files_digest(train_files))
        self.summary = data_summary(cfg, self.dataset)
        resumed = getattr(self, "resumed_config", None)
        if resumed and "data_digest" in resumed and resumed["data_digest"] != self.data_files[1]:
            log.warning("the training photos changed since the checkpoint of step %d (%s photos then, %d now): the "
                        "run goes on with the photos as they are, in another order than the interrupted run would "
                        "have seen", self.step, resumed.get("data_files", "?"), len(train_files))
        return self.dataset, val_files

    def fit(self, stop_after: int | None = None) -> Path:
        """Train until ``total_steps`` (or ``stop_after`` more steps); return the generator file."""
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        dataset, val_files = self.prepare_data()
        (self.run_dir / "config.json").write_text(json.dumps(self.cfg_dict(), indent=2))
        steps_per_epoch = len(dataset) // cfg.batch_size
        end = cfg.total_steps if stop_after is None else min(cfg.total_steps, self.step + stop_after)
        log.info("training %d -> %d steps on %s (%d images, %d steps per epoch)", self.step, end,
                 self.device, len(dataset), steps_per_epoch)
        metrics = MetricsLog(self.run_dir)
        bar = tqdm(total=end, initial=self.step, disable=not self.progress, unit="step", dynamic_ncols=True)
        started, t0, last = time.time(), time.time(), {}
        batches = None
        try:
            while self.step < end:
                epoch, offset = divmod(self.step, steps_per_epoch)
                dataset.set_epoch(epoch)
                order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(cfg.seed + epoch))
                indices = order[offset * cfg.batch_size : steps_per_epoch * cfg.batch_size].tolist()
                # Own generator: a DataLoader otherwise draws its base seed from the global RNG, which
                # would shift the dropout masks of a resumed run.
                loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=indices, drop_last=True,
                                    num_workers=cfg.workers, pin_memory=self.device.type == "cuda",
                                    generator=torch.Generator().manual_seed(cfg.seed + epoch),
                                    worker_init_fn=_ignore_stop_signals)
                with stop_signals_held():  # a worker forked before it ignores them would die of a stop
                    batches = iter(loader)
                for l_norm, ab, *guidance in batches:
                    l_norm = l_norm.to(self.device, non_blocking=True)
                    ab = ab.to(self.device, non_blocking=True)
                    hints = guidance[0].to(self.device, non_blocking=True) if guidance else None
                    with stops_after_the_step():  # a stop mid-step would save D updated, G not, step not counted
                        last = self.train_step(l_norm, ab, hints)
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in last.items()}, refresh=False)
                    phase = "gan" if self.step > cfg.pretrain_steps else "pretrain"
                    if self.step % cfg.log_every == 0:
                        rate = cfg.log_every * cfg.batch_size / max(time.time() - t0, 1e-9)
                        t0 = time.time()
                        metrics.write(self.step, {"kind": "train", "phase": phase, **last,
                                                          "images_per_s": round(rate, 2)})
                    if val_files and (self.step % cfg.val_every == 0 or self.step == cfg.total_steps):
                        report = self.validate(val_files)
                        metrics.write(self.step, {"kind": "val", "phase": phase, **report["model"],
                                                          "gray_delta_e": report["gray"]["delta_e"]})
                        log.info("step %d validation: %s", self.step, _short(report["model"]))
                    if self.step % cfg.checkpoint_every == 0:
                        self.save()
                    if self.step >= end:
                        break
        except KeyboardInterrupt:
            log.warning("interrupted at step %d; saving a checkpoint to resume from", self.step)
            self.save()
            raise
        finally:
            _stop_workers(batches)
            bar.close()
            metrics.close()
        self.save()
        log.info("reached step %d in %.1f min; %d grayscale and %d unreadable photos skipped", self.step,
                 (time.time() - started) / 60, *dataset.skipped())
        return self.export_generator()

    def hint_spread(self) -> dict | None:
        """The spread settings the hint guidance is made with in training (:func:`.data.guidance_for`:
        the runtime's defaults), recorded with the weights; None without hint inputs."""
        return dataclasses.asdict(DEFAULT_PARAMS) if self.cfg.generator.hint_channels else None

    def export_generator(self) -> Path:
        path = self.run_dir / "generator.safetensors"
        ckpt.save_generator(path, self.inference_generator().state_dict(),
                            generator_config=self.cfg.generator.to_dict(), render_size=self.cfg.size,
                            step=self.step, training_data=getattr(self, "summary", ""),
                            hint_spread=self.hint_spread())
        return path


def pixel_loss(fake: torch.Tensor, ab: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    """The reconstruction loss: L1 (or Huber) on ab/110, plus with ``cfg.chroma_weight`` a hinge on
    under-saturation, mean(max(0, |ab| - |fake|)) over pixels (|.| the chroma, sqrt(a^2 + b^2)): L1's
    average of the plausible colors of an object is grayer than any of them, and this term pulls
    the chroma's magnitude (not its hue) up where the truth has more, never down."""
    if cfg.pixel_loss == "huber":
        loss = torch.nn.functional.smooth_l1_loss(fake, ab, beta=cfg.huber_delta)
    else:
        loss = torch.nn.functional.l1_loss(fake, ab)
    if cfg.chroma_weight:
        chroma = torch.sqrt(fake.pow(2).sum(1) + 1e-8)
        target = torch.sqrt(ab.pow(2).sum(1))
        loss = loss + cfg.chroma_weight * torch.relu(target - chroma).mean()
    return loss


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _ignore_stop_signals(worker_id: int) -> None:
    """In a data-loading process: SIGINT and SIGTERM are for the training process alone. A stop sent
    to the whole process group (Ctrl-C in a terminal, ``pkill -f colorizer-train``, a scheduler)
    would otherwise kill the workers first, and the training process would die of their death
    instead of saving a checkpoint; it stops them itself once saved."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # held since the fork (stop_signals_held): a held one is dropped
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


@contextlib.contextmanager
def stops_after_the_step():
    """Ctrl-C or SIGTERM during the block takes effect when it ends, as the KeyboardInterrupt it would
    have raised: a training step is all or nothing, so the checkpoint saved on a stop is one the run
    passed through (a stop between the discriminator's and the generator's updates saved the first
    with the step uncounted, and the resumed run applied it twice). Where signal handlers cannot be
    set (a thread other than the main one), the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def note(signum: int, frame: object) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, note) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        handler = previous[caught[0]]
        if callable(handler):  # the CLI's SIGTERM handler, Python's SIGINT one: each raises KeyboardInterrupt
            handler(caught[0], None)
        elif handler == signal.SIG_DFL:
            signal.raise_signal(caught[0])


@contextlib.contextmanager
def stop_signals_held():
    """SIGINT and SIGTERM held, not lost, while data-loading workers are started: a worker forked in
    that window inherits the hold until :func:`_ignore_stop_signals` ignores them, instead of dying of a
    stop meant for the run (the run then died of its worker's death, or waited at exit for workers it
    never got to know); the run receives a held stop as soon as its workers exist."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks (and no fork)
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop_workers(batches) -> None:
    """Stop a DataLoader iterator's worker processes now, however its loop ended. They ignore stop
    signals (:func:`_ignore_stop_signals`), so an iterator left to the garbage collector could outlive
    the run: at exit, multiprocessing would SIGTERM them and wait for them forever."""
    shutdown = getattr(batches, "_shutdown_workers", None)  # torch's multi-process iterator; no-op otherwise
    if shutdown is not None:
        shutdown()
    # A stop that lands inside torch's own shutdown of an exhausted iterator (the end of an epoch)
    # leaves it marked shut down with a worker still running, and a SIGTERM does not end that worker
    for worker in getattr(batches, "_workers", ()):
        if worker.is_alive():
            worker.kill()
            worker.join()


def _lr_factor(cfg: TrainConfig, step: int) -> float:
    """Learning-rate multiplier at ``step``: 1, or a cosine from 1 to ``lr_final_scale`` at ``total_steps``."""
    if cfg.lr_schedule == "constant":
        return 1.0
    if cfg.lr_schedule != "cosine":
        raise ValueError(f"unknown learning-rate schedule {cfg.lr_schedule!r}; use constant or cosine")
    progress = min(step / max(cfg.total_steps, 1), 1.0)
    return cfg.lr_final_scale + (1 - cfg.lr_final_scale) * 0.5 * (1 + math.cos(math.pi * progress))


def _generator_param_groups(net: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """One group for a pretrained encoder (``lr * encoder_lr_scale``; frozen at 0) and one for the rest."""
    encoder = getattr(net, "encoder", None)
    if cfg.hint_weights_only:  # only what train_guidance_only left trainable
        return [{"params": [p for p in net.parameters() if p.requires_grad], "base_lr": cfg.lr}]
    if encoder is None:
        return [{"params": list(net.parameters()), "base_lr": cfg.lr}]
    encoder_ids = {id(p) for p in encoder.parameters()}
    rest = [p for p in net.parameters() if id(p) not in encoder_ids]
    if cfg.encoder_lr_scale <= 0:
        encoder.requires_grad_(False)
        return [{"params": rest, "base_lr": cfg.lr}]
    if cfg.encoder_frozen_blocks > 0:  # the high-resolution layers cost most to train and change least
        encoder._conv_stem.requires_grad_(False)
        encoder._bn0.requires_grad_(False)
        for block in encoder._blocks[: cfg.encoder_frozen_blocks]:
            block.requires_grad_(False)
    trainable = [p for p in encoder.parameters() if p.requires_grad]
    return [{"params": trainable, "base_lr": cfg.lr * cfg.encoder_lr_scale, "lr": cfg.lr * cfg.encoder_lr_scale},
            {"params": rest, "base_lr": cfg.lr}]


def _warm_start_state(path: Path, generator: GeneratorConfig) -> dict[str, torch.Tensor]:
    """Generator weights to start a new run from (a shipped generator or a checkpoint, EMA preferred),
    refused with a clear message when the architecture differs. Hint inputs may be added (zero weights)
    or dropped (a generator without them computes what one with them does without hints)."""
    loaded = ckpt.load_generator(path)
    source = GeneratorConfig(**loaded.generator_config)
    other_hints = source.hint_channels != generator.hint_channels and 0 not in (source.hint_channels,
                                                                                 generator.hint_channels)
    same = dataclasses.replace(source, hint_channels=generator.hint_channels, hint_encoder=generator.hint_encoder)
    if same != generator or other_hints or (source.hint_encoder and not generator.hint_encoder
                                            and generator.hint_channels):
        raise ValueError(f"--init-from {path}: that generator was built as {loaded.generator_config}, "
                         f"this run asks for {generator.to_dict()}; use the same generator settings")
    if source.hint_channels == generator.hint_channels:
        if generator.hint_encoder and not source.hint_encoder:  # the encoder's guidance weights added, zero
            fresh = define_generator(generator).state_dict()
            added = {k: torch.zeros_like(v) for k, v in fresh.items() if k.startswith("encoder_guides.")}
            return dict(loaded.state) | added
        return loaded.state
    if generator.hint_channels == 0:
        return without_guidance_inputs(loaded.state, source)
    return with_guidance_inputs(loaded.state, generator)


def without_guidance_inputs(state: dict[str, torch.Tensor], source: GeneratorConfig) -> dict[str, torch.Tensor]:
    """The weights of a generator with hint inputs, for the same generator without them: each decoder
    stage's first convolution loses its guidance channels (the last of its input), which is what zero
    guidance (no hint) multiplies by nothing."""
    target = define_generator(dataclasses.replace(source, hint_channels=0)).state_dict()
    out = {k: v for k, v in state.items() if not k.startswith("encoder_guides.")}  # zero guidance adds nothing
    for key, want in target.items():
        have = state.get(key)
        if have is not None and have.shape != want.shape:
            out[key] = have[:, : want.shape[1]].contiguous()
    return out


def with_guidance_inputs(state: dict[str, torch.Tensor], generator: GeneratorConfig) -> dict[str, torch.Tensor]:
    """The weights of a generator without hint inputs, for the same generator with them: each decoder
    stage's first convolution gets zero weights on the guidance channels (the last of its input), so the
    warm-started network computes what the old one did until it learns to use the hints."""
    target = define_generator(generator).state_dict()
    out = dict(state)
    for key, want in target.items():
        have = state.get(key)
        if have is not None and have.shape != want.shape:
            if have.dim() != 4 or have.shape[1] + generator.hint_channels != want.shape[1]:
                raise ValueError(f"cannot add hint inputs to {key}: {tuple(have.shape)} -> {tuple(want.shape)}")
            out[key] = torch.cat([have, have.new_zeros(have.shape[0], generator.hint_channels, *have.shape[2:])], 1)
    return out


def _remove_stale_partials(folder: Path) -> None:
    """Remove the temporary files a checkpoint write killed outright (kill -9, a power cut) left in
    ``folder``: each is a checkpoint's size, hidden, and no later run writes to the same name."""
    from colorizer.fileio import PARTIAL_MARKER

    if not folder.is_dir():
        return
    for pattern in (f".last{PARTIAL_MARKER}*.safetensors", f".step_*{PARTIAL_MARKER}*.safetensors"):
        for stale in folder.glob(pattern):
            log.info("removing %s, left by a checkpoint write that was killed", stale)
            stale.unlink(missing_ok=True)


def _short(metrics: dict) -> str:
    return ", ".join(f"{k}={metrics[k]:.3f}" for k in ("delta_e", "psnr", "colorfulness_ratio") if k in metrics)


def build_trainer(cfg: TrainConfig, resume: bool = True, progress: bool = True) -> Trainer:
    """A Trainer for ``cfg``, continuing the checkpoint in its run folder when there is one."""
    cfg.check()
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a run folder; choose another --out")
    path = out / "checkpoints" / "last.safetensors"
    _remove_stale_partials(path.parent)
    if resume and path.exists():
        try:
            meta = ckpt.read_metadata(path)
            if meta.get("kind") != ckpt.KIND_TRAINING:
                raise ckpt.CheckpointError(f"{path} is not a training checkpoint (metadata kind={meta.get('kind')!r})")
            saved = TrainConfig.from_dict(json.loads(meta["config"]))
        except (ckpt.CheckpointError, KeyError, TypeError, ValueError) as exc:
            raise ckpt.CheckpointError(f"cannot resume from the run folder's checkpoint: {exc}; move it away "
                                       "(a kept checkpoints/step_*.safetensors may replace it), or start over "
                                       "with --no-resume") from None
        trainer = Trainer(saved.resumed_with(cfg), progress=progress)
        trainer.load(path)
        log.info("resuming %s from step %d", cfg.out, trainer.step)
        return trainer
    return Trainer(cfg, progress=progress)
