"""A tiny randomly initialized generator, saved and exported the way the real one is (for tests)."""

from __future__ import annotations

from pathlib import Path

import torch

from colorizer.trainer.checkpoint import save_generator
from colorizer.trainer.networks import GeneratorConfig, define_generator

TINY = GeneratorConfig(width=4, depth=3)


def tiny_generator_file(path: Path, seed: int = 0, render_size: int = 32) -> Path:
    torch.manual_seed(seed)
    net = define_generator(TINY)
    # random BatchNorm statistics, so eval mode differs from train mode as in a trained model
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    save_generator(path, net.state_dict(), generator_config=TINY.to_dict(), render_size=render_size, step=7,
                   training_data="synthetic test photos")
    return path


def tiny_onnx(tmp_path: Path, fp16: bool = False) -> Path:
    from colorizer.exporter.export import export_model

    gen = tiny_generator_file(tmp_path / "tiny.safetensors")
    return export_model(gen, tmp_path / "model", name="tiny", version="t1", fp16=fp16).onnx
