"""`colorizer-train`: train a pix2pix colorizer on a folder of color photos."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from colorizer.trainer.config import TrainConfig
from colorizer.trainer.degrade import FILTERS
from colorizer.trainer.networks import GENERATOR_NAMES, DiscriminatorConfig, GeneratorConfig

EFFUNET_WIDTH = 16

EPILOG = """
examples:
  colorizer-train ~/photos -o runs/first                      # train, or resume runs/first
  colorizer-train ~/photos -o runs/first --gan-steps 20000    # resume and train longer
  colorizer-train ~/photos --val ~/held_out -o runs/v2 --old-photo sepia grain blur faded jpeg
  colorizer-train ~/cifar_like -o runs/tiny --small           # 32x32 images, as the early seeds
  colorizer-train ~/photos -o runs/v2 --generator effunet --lr-schedule cosine   # ImageNet encoder
  colorizer-train ~/photos -o runs/v2b --generator effunet \
      --init-from assets/models/generator.safetensors          # continue from the shipped model

DATA may also be a .txt file listing image paths, one per line (relative to the list's folder).

A run folder holds checkpoints/last.safetensors (resumed automatically when the command is run
again with the same settings), metrics.jsonl, samples/*.png, train.log and, at the end,
generator.safetensors for colorizer-export. Ctrl-C saves a checkpoint before stopping.
"""


def build_parser() -> argparse.ArgumentParser:
    d, g, dc = TrainConfig, GeneratorConfig(), DiscriminatorConfig()
    p = argparse.ArgumentParser(
        prog="colorizer-train", description="Train a pix2pix colorization GAN (U-Net generator, PatchGAN "
        "discriminator, Lab color space): phase 1 pretrains the generator on L1, phase 2 adds the GAN loss.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="+", type=Path, help="folders (searched recursively) or files of color photos")
    p.add_argument("-o", "--out", type=Path, required=True, help="run folder for checkpoints, logs and samples")
    p.add_argument("--val", nargs="+", type=Path, default=(), help="validation photos (default: hold out "
                   "--val-fraction of DATA, chosen by file name hash, the same on every run)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="held-out share when --val is absent")
    p.add_argument("--val-images", type=int, default=d.val_images, help="validation images used per validation")
    p.add_argument("--size", type=int, default=d.size, help="training crop size in pixels; also the render "
                   "size recorded for the runtime (default %(default)s)")
    p.add_argument("--small", action="store_true", help="CIFAR-style small-image mode: 32x32 crops, U-Net depth 5")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--pretrain-steps", type=int, default=d.pretrain_steps, help="phase 1 steps (L1 only)")
    p.add_argument("--gan-steps", type=int, default=d.gan_steps, help="phase 2 steps (GAN + lambda*L1)")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate for both networks")
    p.add_argument("--lr-d", type=float, default=d.lr_d,
                   help="discriminator learning rate if it differs from --lr (e.g. a fresh PatchGAN next to a "
                        "warm-started generator)")
    p.add_argument("--beta1", type=float, default=d.beta1)
    p.add_argument("--beta2", type=float, default=d.beta2)
    p.add_argument("--lambda-l1", type=float, default=d.lambda_l1, help="weight of the L1 loss")
    p.add_argument("--gan-mode", choices=("vanilla", "lsgan"), default=d.gan_mode,
                   help="vanilla: BCE on logits; lsgan: least squares")
    p.add_argument("--generator", choices=GENERATOR_NAMES, default=g.name,
                   help="unet: pix2pix U-Net trained from scratch; effunet: U-Net decoder over an "
                   "ImageNet-pretrained EfficientNet-Lite0 encoder (needs the trainer extra)")
    p.add_argument("--generator-width", type=int, default=None,
                   help=f"channels of the first U-Net stage (unet, default {g.width}) or of the "
                   f"full-resolution head (effunet, default {EFFUNET_WIDTH})")
    p.add_argument("--generator-depth", type=int, default=None,
                   help=f"U-Net stages (default {g.depth}; effunet: always 5); images are padded to "
                   "multiples of 2**depth")
    p.add_argument("--init-from", type=Path, default=None, metavar="GENERATOR",
                   help="warm-start the generator from a generator file or checkpoint of the same architecture "
                   "(e.g. assets/models/generator.safetensors) instead of ImageNet/random weights")
    p.add_argument("--hint-inputs", action="store_true",
                   help="effunet: a hint-conditioned generator that also takes the dense guidance of color hints "
                   "(colorizer.hint_guidance), trained on hints simulated from the true colors; with --init-from a "
                   "generator without them, the new weights start at zero (step 0 computes what it did)")
    p.add_argument("--hint-encoder", action="store_true",
                   help="with --hint-inputs (effunet): the guidance also enters the encoder, added after its "
                        "stride-2, 4, 8 and 16 stages (new weights, zero at first; train the encoder with "
                        "--encoder-lr-scale above 0 for it to learn them)")
    p.add_argument("--hint-p-none", type=float, default=d.hint_p_none,
                   help="with --hint-inputs: share of training samples given no hint at all")
    p.add_argument("--hint-count-p", type=float, default=d.hint_count_p,
                   help="with --hint-inputs: the number of hints of a sample is geometric with this p (mean 1/p; "
                   "Zhang et al.'s 1/8 by default; larger: more samples with one or two hints)")
    p.add_argument("--hint-weights-only", action="store_true",
                   help="with --hint-inputs and --init-from: train only the new guidance weights (every other "
                   "weight and BatchNorm statistic kept), so that without hints the model computes exactly what "
                   "the generator it started from did")
    p.add_argument("--no-hint-copies", action="store_true",
                   help="with --no-hint-teacher: each sample given hints is also trained without them, on the "
                   "teacher's colors (every step holds the automatic colors, at about 1.7x the cost of a step)")
    p.add_argument("--no-hint-teacher", action="store_true",
                   help="with --hint-inputs and --init-from: the samples given no hint learn the colors the "
                   "--init-from generator predicts (a frozen copy), not the true ones, so that without hints the "
                   "model keeps the automatic colors it started from while the whole decoder learns the hints")
    p.add_argument("--keep-batchnorm", action="store_true",
                   help="effunet with --init-from: every BatchNorm layer keeps the statistics of the generator it "
                   "started from (by default only the encoder's are kept): batches with hints do not move the "
                   "decoder's statistics away from the colors it makes without them")
    p.add_argument("--encoder-lr-scale", type=float, default=d.encoder_lr_scale,
                   help="learning rate of a pretrained encoder relative to --lr (0 freezes it)")
    p.add_argument("--encoder-frozen-blocks", type=int, default=d.encoder_frozen_blocks,
                   help="keep the stem and the first N of the encoder's 16 blocks frozen (5: train only the "
                   "stride-16/32 blocks, much faster on a CPU)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine"), default=d.lr_schedule,
                   help="cosine: decay to --lr-final-scale x lr at the last step")
    p.add_argument("--lr-final-scale", type=float, default=d.lr_final_scale)
    p.add_argument("--pixel-loss", choices=("l1", "huber"), default=d.pixel_loss,
                   help="the reconstruction loss weighted by --lambda-l1")
    p.add_argument("--huber-delta", type=float, default=d.huber_delta, help="Huber transition on ab/110")
    p.add_argument("--chroma-weight", type=float, default=d.chroma_weight,
                   help="weight of a hinge on under-saturation added to the pixel loss (0: off): pulls the "
                   "chroma's magnitude up where the truth has more")
    p.add_argument("--norm", choices=("batch", "instance"), default=g.norm, help="normalization in both networks")
    p.add_argument("--dropout", type=float, default=g.dropout,
                   help="dropout in the inner decoder stages (pix2pix's noise)")
    p.add_argument("--discriminator", choices=("patchgan", "global"), default=dc.name,
                   help="patchgan: 70x70 patches (pix2pix); global: one score per image (early seeds)")
    p.add_argument("--discriminator-width", type=int, default=dc.width)
    p.add_argument("--discriminator-layers", type=int, default=dc.n_layers)
    p.add_argument("--old-photo", nargs="*", default=(), choices=sorted(FILTERS), metavar="FILTER",
                   help=f"degrade the L input like an old scan; any of: {', '.join(sorted(FILTERS))}")
    p.add_argument("--old-photo-p", type=float, default=d.old_photo_p, help="probability of each filter")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay, help="EMA of generator weights (0: off)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--limit", type=int, default=d.limit, help="use at most N training images (0: all)")
    p.add_argument("--samples", type=int, default=d.samples, help="rows in each sample grid")
    p.add_argument("--val-every", type=int, default=d.val_every, help="validate and write samples every N steps")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="keep every checkpoint as checkpoints/step_N.safetensors (to pick the best one later)")
    p.add_argument("--log-every", type=int, default=d.log_every)
    p.add_argument("--workers", type=int, default=d.workers, help="data loading processes")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=d.threads, help="CPU threads for torch (0: default)")
    p.add_argument("--no-resume", action="store_true", help="start over even if the run folder has a checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    default_depth = 5 if args.generator == "effunet" else GeneratorConfig().depth
    # `is None`, not `or`: an explicit 0 is refused (TrainConfig.check, define_generator), not the default
    depth = default_depth if args.generator_depth is None else args.generator_depth
    width = args.generator_width
    if width is None:
        width = EFFUNET_WIDTH if args.generator == "effunet" else GeneratorConfig().width
    size, depth = (32, 5) if args.small else (args.size, depth)
    return TrainConfig(
        data=tuple(str(p) for p in args.data), out=str(args.out), val_data=tuple(str(p) for p in args.val),
        val_fraction=args.val_fraction, size=size, batch_size=args.batch_size,
        pretrain_steps=args.pretrain_steps, gan_steps=args.gan_steps, lr=args.lr, lr_d=args.lr_d, beta1=args.beta1,
        beta2=args.beta2, lambda_l1=args.lambda_l1, gan_mode=args.gan_mode,
        generator=GeneratorConfig(name=args.generator, width=width, depth=depth, norm=args.norm,
                                  dropout=args.dropout, hint_channels=3 if args.hint_inputs else 0,
                                  hint_encoder=bool(args.hint_encoder and args.hint_inputs)),
        pixel_loss=args.pixel_loss, huber_delta=args.huber_delta,
        chroma_weight=args.chroma_weight, lr_schedule=args.lr_schedule,
        lr_final_scale=args.lr_final_scale, encoder_lr_scale=args.encoder_lr_scale,
        encoder_frozen_blocks=args.encoder_frozen_blocks,
        init_from=str(args.init_from) if args.init_from else "",
        discriminator=DiscriminatorConfig(name=args.discriminator, width=args.discriminator_width,
                                          n_layers=args.discriminator_layers, norm=args.norm),
        old_photo_filters=tuple(args.old_photo), old_photo_p=args.old_photo_p, ema_decay=args.ema_decay,
        hint_p_none=args.hint_p_none, hint_count_p=args.hint_count_p, hint_weights_only=args.hint_weights_only,
        no_hint_teacher=args.no_hint_teacher, no_hint_copies=args.no_hint_copies,
        keep_batchnorm=args.keep_batchnorm,
        seed=args.seed, limit=args.limit, val_images=args.val_images, samples=args.samples, val_every=args.val_every,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints, log_every=args.log_every,
        workers=args.workers, device=args.device, threads=args.threads,
    )


def setup_logging(log_file: Path | None = None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers)


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    try:
        cfg.check()
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} is a file, not a run folder; choose another --out")
        setup_logging(Path(cfg.out) / "train.log")
    except (ValueError, OSError) as exc:
        print(f"colorizer-train: error: {exc}", file=sys.stderr)
        return 2
    from colorizer.trainer.train import build_trainer  # torch import after argument parsing

    # SIGTERM (a scheduler, `kill`, a shutdown) stops like Ctrl-C: a checkpoint is saved to resume from.
    # (Background jobs of a non-interactive shell ignore SIGINT; SIGTERM still reaches them.)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        trainer = build_trainer(cfg, resume=not args.no_resume, progress=not args.quiet)
        generator = trainer.fit()
    except KeyboardInterrupt:
        print(f"\ninterrupted; run the same command again to resume from {cfg.out}", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # OSError: a full disk, a lost mount, no permission (names the file)
        print(f"colorizer-train: error: {exc}", file=sys.stderr)
        return 2
    print(f"generator written to {generator}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
