"""`colorizer-average`: average the generator weights of several checkpoints of one run.

Averaging the generators of the last checkpoints of a GAN run (as stochastic weight averaging
and EMA do) smooths out the oscillation of adversarial training: on our default run it lowered
the validation ΔE markedly (see docs/model-card.md). BatchNorm statistics are averaged too.

    colorizer-average runs/mine/averaged.safetensors runs/mine/checkpoints/step_00030*.safetensors
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from colorizer.trainer.checkpoint import GeneratorFile, load_generator, save_generator_as


def average_generators(files: Sequence[Path]) -> tuple[dict[str, torch.Tensor], list[GeneratorFile]]:
    """Mean of the generator weights in ``files`` (same architecture required); integer buffers from the last."""
    gens = [load_generator(Path(f)) for f in files]
    if not gens:
        raise ValueError("no checkpoints to average")
    first = gens[0]
    for path, g in zip(files[1:], gens[1:], strict=True):
        if g.generator_config != first.generator_config or g.state.keys() != first.state.keys():
            raise ValueError(f"checkpoints with different generator architectures cannot be averaged: {path} "
                             f"holds {g.generator_config}, {files[0]} {first.generator_config}")
    state = {}
    for key, value in first.state.items():
        if value.is_floating_point():
            state[key] = torch.stack([g.state[key].float() for g in gens]).mean(0)
        else:
            state[key] = gens[-1].state[key]
    return state, gens


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="colorizer-average", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path, help="generator file to write (.safetensors)")
    p.add_argument("checkpoints", nargs="+", type=Path, help="training checkpoints or generator files of one run")
    args = p.parse_args(argv)
    try:
        if args.out.is_dir():
            raise ValueError(f"{args.out} is a folder; give the generator file to write (.safetensors)")
        if any(args.out.resolve() == Path(c).resolve() for c in args.checkpoints):
            raise ValueError(f"{args.out} is one of the checkpoints to average; write the average to a new file")
        state, gens = average_generators(args.checkpoints)
        last = max(gens, key=lambda g: g.step)
        steps = ", ".join(str(g.step) for g in gens)
        save_generator_as(args.out, last, state=state,
                          training_data=f"{last.training_data}; generator averaged over steps {steps}")
    except (ValueError, OSError) as exc:  # OSError: a full disk, no permission (the message names the file)
        print(f"colorizer-average: error: {exc}", file=sys.stderr)
        return 2
    print(f"averaged {len(gens)} generators (steps {steps}) into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
