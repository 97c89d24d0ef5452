"""Training configuration: one frozen dataclass, stored in every checkpoint."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field

from colorizer.trainer.networks import DiscriminatorConfig, GeneratorConfig

# Fields a resumed run may change; every other field must match the checkpoint's.
RESUME_OVERRIDABLE = frozenset(
    {"pretrain_steps", "gan_steps", "val_every", "checkpoint_every", "log_every", "workers", "device",
     "threads", "val_images", "samples", "out", "keep_checkpoints"}
)


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...]
    out: str
    val_data: tuple[str, ...] = ()  # empty: hold out val_fraction of `data`
    val_fraction: float = 0.05
    size: int = 128  # training crop size (square); also the model's render size
    batch_size: int = 16
    pretrain_steps: int = 2000  # phase 1: generator on L1 alone
    gan_steps: int = 2000  # phase 2: GAN + lambda * L1
    lr: float = 2e-4
    lr_d: float = 0.0  # discriminator learning rate (0: the same as lr)
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_l1: float = 100.0
    pixel_loss: str = "l1"  # l1 | huber (smooth L1 on ab/110, beta huber_delta)
    huber_delta: float = 0.05
    chroma_weight: float = 0.0  # weight of the under-saturation hinge (pixel_loss): 0 = off
    lr_schedule: str = "constant"  # constant | cosine (to lr * lr_final_scale at total_steps)
    lr_final_scale: float = 0.05
    encoder_lr_scale: float = 0.1  # pretrained encoder's learning rate = lr * this (0: frozen)
    encoder_frozen_blocks: int = 0  # keep the stem and the first N blocks of a pretrained encoder frozen
    init_from: str = ""  # generator (.safetensors) to start from instead of random/ImageNet weights
    gan_mode: str = "vanilla"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    old_photo_filters: tuple[str, ...] = ()
    old_photo_p: float = 0.3
    ema_decay: float = 0.0  # 0 disables the EMA of generator weights
    hint_p_none: float = 0.1  # generator with hint inputs: share of training samples without any hint
    hint_count_p: float = 1 / 8  # hint inputs: the hint count is geometric with this p (mean 1/p)
    hint_weights_only: bool = False  # hint inputs: train the guidance weights only (no hint: the start's output)
    no_hint_teacher: bool = False  # hint inputs: samples without hints learn the start's colors, not the truth
    no_hint_copies: bool = False  # with the teacher: each hinted sample also comes without its hints (teacher's colors)
    keep_batchnorm: bool = False  # effunet: every BatchNorm keeps the start's statistics (not only the encoder's)
    seed: int = 0
    limit: int = 0  # use at most this many training images (0: all)
    val_images: int = 200
    samples: int = 8  # rows in each sample grid
    val_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: bool = False  # also keep checkpoints/step_XXXXXXX.safetensors at every checkpoint
    log_every: int = 20
    workers: int = 2
    device: str = "auto"
    threads: int = 0  # torch CPU threads (0: torch's default)

    @property
    def total_steps(self) -> int:
        return self.pretrain_steps + self.gan_steps

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> TrainConfig:
        raw = dict(raw)
        raw["generator"] = GeneratorConfig(**raw.get("generator", {}))
        raw["discriminator"] = DiscriminatorConfig(**raw.get("discriminator", {}))
        for key in ("data", "val_data", "old_photo_filters"):
            raw[key] = tuple(raw.get(key, ()))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})

    def check(self) -> None:
        """Refuse settings no run can train with, naming the option (a zero step interval divided by zero
        mid-run, a crop the generator cannot take failed inside its first convolution, a negative step
        count wrote an untrained generator as if trained)."""
        problems = []

        def need(ok: bool, option: str, value: object, what: str) -> None:
            if not ok:
                problems.append(f"--{option} must be {what}, got {value}")

        for name in ("batch_size", "checkpoint_every", "log_every", "val_every"):
            need(getattr(self, name) >= 1, name.replace("_", "-"), getattr(self, name), "at least 1")
        for name in ("pretrain_steps", "gan_steps", "limit", "val_images", "samples", "workers", "threads",
                     "encoder_frozen_blocks"):
            need(getattr(self, name) >= 0, name.replace("_", "-"), getattr(self, name), "0 or more")
        for name in ("lr", "lr_d", "lambda_l1", "huber_delta", "chroma_weight", "encoder_lr_scale",
                     "lr_final_scale"):
            value = getattr(self, name)
            need(math.isfinite(value) and value >= 0 and (value > 0 or name != "lr"), name.replace("_", "-"),
                 value, "a positive number" if name == "lr" else "0 or a positive number")
        for name in ("val_fraction", "ema_decay", "beta1", "beta2"):
            need(0 <= getattr(self, name) < 1, name.replace("_", "-"), getattr(self, name), "in [0, 1)")
        for name in ("old_photo_p", "hint_p_none"):
            need(0 <= getattr(self, name) <= 1, name.replace("_", "-"), getattr(self, name), "in [0, 1]")
        need(0 < self.hint_count_p <= 1, "hint-count-p", self.hint_count_p, "in (0, 1]")
        need(self.generator.width >= 1, "generator-width", self.generator.width, "at least 1")
        multiple = self.generator.size_multiple
        need(self.size >= multiple and self.size % multiple == 0, "size", self.size,
             f"a multiple of {multiple} (the generator halves the crop {self.generator.depth} times)")
        if problems:
            raise ValueError("; ".join(problems))

    def resumed_with(self, requested: TrainConfig) -> TrainConfig:
        """This (checkpointed) config with the overridable fields of ``requested``; refuse other changes."""
        mine, theirs = self.to_dict(), requested.to_dict()
        changed = sorted(k for k in mine if k not in RESUME_OVERRIDABLE and mine[k] != theirs[k])
        if changed:
            raise ValueError(
                f"the run folder {self.out} holds a checkpoint trained with different settings "
                f"({', '.join(changed)}); resume with the same settings, or pass --no-resume with a new --out"
            )
        return dataclasses.replace(self, **{k: getattr(requested, k) for k in RESUME_OVERRIDABLE})
