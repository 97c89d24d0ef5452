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
from colorizer.hints import patch_pixels, simulated_hints
from colorizer.trainer.data import read_rgb
from colorizer.trainer.metrics import delta_e2000, mean_scores, score
from colorizer.trainer.networks import hint_channels_of


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)


def gray_baseline(rgb: np.ndarray) -> np.ndarray:
    """What a colorizer that adds no color gives: L kept, ab = 0."""
    l_channel = rgb_to_l(rgb)
    return to_uint8(merge_l_ab(l_channel, np.zeros((*l_channel.shape, 2), np.float32)))


class TorchPredictor:
    """A PyTorch generator as a predictor: called with L, or ``predict(l_norm, hints=None)``; a generator
    with hint inputs says so in ``contract`` (:func:`colorizer.colorize.predict_prepared` then feeds it
    the hints' guidance, made with the runtime's spread settings)."""

    def __init__(self, net: torch.nn.Module, device: torch.device | str = "cpu") -> None:
        self.net = net.eval()
        self.device = device
        self.contract = None
        if hint_channels_of(net):
            from dataclasses import asdict

            from colorizer.contract import HintInputs, ModelContract
            from colorizer.hint_spread import DEFAULT_PARAMS

            self.contract = ModelContract(size_multiple=32, render_size=0,
                                          hint_inputs=HintInputs(spread=asdict(DEFAULT_PARAMS)))

    @torch.inference_mode()
    def predict(self, l_norm: np.ndarray, hints: np.ndarray | None = None) -> np.ndarray:
        x = torch.from_numpy(l_norm).to(self.device)
        if hints is None:
            return self.net(x).float().cpu().numpy()
        guidance = torch.from_numpy(np.ascontiguousarray(hints, np.float32)).to(self.device)
        return self.net(x, guidance).float().cpu().numpy()

    def __call__(self, l_norm: np.ndarray) -> np.ndarray:
        return self.predict(l_norm)


def torch_predictor(net: torch.nn.Module, device: torch.device | str = "cpu") -> Predictor:
    return TorchPredictor(net, device)


def evaluate_predictor(predict: Predictor, files: Sequence[Path], render_size: int, size_multiple: int,
                       upsampling: str = "guided", progress: bool = True, saturation: float = 1.0,
                       hints: int = 0, hints_seed: int = 0) -> dict:
    """Mean metrics of the model and of the gray baseline over ``files``, plus per-image rows. With
    ``hints``, each photo gets that many simulated ground-truth color hints (3x3 px patches at
    positions seeded by ``hints_seed`` and the photo's place in ``files``, colored with the patch's
    mean; :func:`colorizer.hints.simulated_hints`), spread as colorize-batch spreads a sidecar's;
    ``hint_delta_e`` is then the mean ΔE2000 at the hint pixels. Photos that cannot be read are left out
    and listed in ``unreadable``."""
    model_scores, gray_scores, rows, at_hints, unreadable = [], [], [], [], []
    for index, path in enumerate(tqdm(files, desc="evaluating", disable=not progress, unit="img")):
        rgb = read_rgb(path)
        if rgb is None:  # left out of the figures, and named in the result's "unreadable"
            unreadable.append(str(path))
            continue
        photo_hints = simulated_hints(rgb, hints, np.random.default_rng([hints_seed, index])) if hints else None
        out = to_uint8(colorize(rgb, predict, render_size, size_multiple, saturation, upsampling, photo_hints))
        if photo_hints is not None:
            at_hints.append(delta_e2000(patch_pixels(rgb, photo_hints), patch_pixels(out, photo_hints)))
        s_model, s_gray = score(rgb, out), score(rgb, gray_baseline(rgb))
        model_scores.append(s_model)
        gray_scores.append(s_gray)
        rows.append({"file": str(path), "delta_e": s_model.delta_e, "gray_delta_e": s_gray.delta_e,
                     "colorfulness": s_model.colorfulness, "colorfulness_gt": s_model.colorfulness_gt})
    if not rows:
        raise ValueError("no readable images to evaluate")
    result = {"model": mean_scores(model_scores), "gray": mean_scores(gray_scores), "per_image": rows,
              "unreadable": unreadable}
    if hints:
        result["hints"] = {"per_photo": hints, "seed": hints_seed, "hint_delta_e": float(np.mean(at_hints))}
    return result
