"""Evaluate a colorizer on a folder of color photos, next to the gray baseline (ab = 0).

Each photo is reduced to its L and colorized exactly as the runtime does it (render size,
padding, ab upsampled to full resolution and merged with the full-resolution L); metrics compare
the result with the original photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from colorizer.colorize import Predictor, colorize
from colorizer.contract import merge_l_ab, rgb_to_l
from colorizer.trainer.data import read_rgb
from colorizer.trainer.metrics import mean_scores, score


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def gray_baseline(rgb: np.ndarray) -> np.ndarray:
    """What a colorizer that adds no color gives: L kept, ab = 0."""
    l_channel = rgb_to_l(rgb)
    return to_uint8(merge_l_ab(l_channel, np.zeros((*l_channel.shape, 2), np.float32)))


def torch_predictor(net: torch.nn.Module, device: torch.device | str = "cpu") -> Predictor:
    net = net.eval()

    @torch.inference_mode()
    def predict(l_norm: np.ndarray) -> np.ndarray:
        return net(torch.from_numpy(l_norm).to(device)).float().cpu().numpy()

    return predict


def evaluate_predictor(predict: Predictor, files: Sequence[Path], render_size: int, size_multiple: int,
                       upsampling: str = "guided", progress: bool = True, saturation: float = 1.0) -> dict:
    """Mean metrics of the model and of the gray baseline over ``files``, plus per-image rows."""
    model_scores, gray_scores, rows = [], [], []
    for path in tqdm(files, desc="evaluating", disable=not progress, unit="img"):
        rgb = read_rgb(path)
        if rgb is None:
            continue
        out = to_uint8(colorize(rgb, predict, render_size, size_multiple, saturation, upsampling))
        s_model, s_gray = score(rgb, out), score(rgb, gray_baseline(rgb))
        model_scores.append(s_model)
        gray_scores.append(s_gray)
        rows.append({"file": str(path), "delta_e": s_model.delta_e, "gray_delta_e": s_gray.delta_e,
                     "colorfulness": s_model.colorfulness, "colorfulness_gt": s_model.colorfulness_gt})
    if not rows:
        raise ValueError("no readable images to evaluate")
    return {"model": mean_scores(model_scores), "gray": mean_scores(gray_scores), "per_image": rows}
