"""Checkpoint -> self-contained ONNX with the color contract in its metadata, and FP16 ONNX.

The generator is rebuilt from the checkpoint's own config, deep-copied, switched to eval mode
(dropout off, BatchNorm on running statistics) and dry-run before export. Tensor names, dynamic
axes and the opset are fixed here; convolutions of concatenations that would miss ONNX Runtime's fast
CPU layout are split (:mod:`.cpu_graph`); the contract (colorizer.contract.ModelContract) goes into
``metadata_props`` so the runtime can check what the model computes before it runs it.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from colorizer import __version__
from colorizer.contract import INPUT_NAME, METADATA_PREFIX, OUTPUT_NAME, HintInputs, ModelContract
from colorizer.exporter.cpu_graph import split_concat_convs
from colorizer.fileio import atomic_path
from colorizer.trainer.checkpoint import GeneratorFile, load_generator
from colorizer.trainer.networks import GeneratorConfig, define_generator, hint_channels_of

log = logging.getLogger(__name__)

OPSET = 17
HINT_GAIN_FADE = 8
"""Power of (1 - confidence) the chroma gain of a model with hint inputs fades by (ChromaGain); on
50 held-out Imagenette-train photos, gain 1.9, it gave 0.856x / 0.668x gray at 3 / 10 hints against
0.923x / 0.731x with a power of 1 (docs/model-card.md, v4)."""
PRECISION_KEY = METADATA_PREFIX + "precision"


@dataclass(frozen=True)
class LoadedGenerator:
    net: torch.nn.Module  # eval mode, CPU, float32
    file: GeneratorFile
    config: GeneratorConfig


class ChromaGain(torch.nn.Module):
    """The generator with its ab multiplied by a fixed gain: the model's default colorfulness.

    A generator with hint inputs takes the guidance too, and the gain fades where the hints reach
    (plane 2 of the guidance, the confidence c = 1 - exp(-sum of weights), 1 at a hint):
    ``ab * (1 + (gain - 1) * (1 - c) ** HINT_GAIN_FADE)``: the power makes it fade wherever any hint
    reaches (1 - (1 - c) ** k = 1 - exp(-k * sum of weights)), so colors that follow hints are not
    amplified while the rest keeps the model's default colorfulness."""

    def __init__(self, net: torch.nn.Module, gain: float) -> None:
        super().__init__()
        self.net = net
        self.gain = gain
        self.hint_channels = getattr(net, "hint_channels", 0)
        self.fade = HINT_GAIN_FADE

    def forward(self, l_norm: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        if not self.hint_channels:
            return self.net(l_norm) * self.gain
        if hints is None:
            return self.net(l_norm) * self.gain
        return self.net(l_norm, hints) * (1 + (self.gain - 1) * (1 - hints[:, 2:3]) ** self.fade)


class WithoutHints(torch.nn.Module):
    """A generator with hint inputs as one without: its guidance is zeros (no hint), L is its only input
    (what the INT8 twin is made of: the runtime spreads hints over such a model's colors)."""

    hint_channels = 0  # what hint_channels_of reads: this model takes L only

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.gain = getattr(net, "gain", 1.0)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.net(l_norm)


def model_inputs(net: torch.nn.Module, l_norm: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """The inputs ``net`` takes for ``l_norm``: (L,) or (L, guidance) with a test guidance (smooth
    colors, confidence from 0 to 1, exact hints at a few pixels), deterministic per ``seed``."""
    channels = hint_channels_of(net)
    if not channels:
        return (l_norm,)
    n, _, h, w = l_norm.shape
    gen = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, h).view(1, 1, h, 1)
    x = torch.linspace(0, 1, w).view(1, 1, 1, w)
    phase = torch.rand(n, 2, 1, 1, generator=gen) * 6
    ab = 0.4 * torch.sin(6 * x + phase) * torch.cos(4 * y + phase)
    confidence = torch.exp(-((x - 0.3) ** 2 + (y - 0.6) ** 2) * 8).expand(n, 1, h, w).clone()
    confidence[:, :, h // 3, w // 2] = 1.0
    return (l_norm, torch.cat([ab, confidence], 1)[:, :channels].contiguous())


def load_eval_generator(checkpoint: Path, chroma_gain: float = 1.0) -> LoadedGenerator:
    """The generator of a checkpoint (EMA weights if any), on CPU, in eval mode; with ``chroma_gain``
    other than 1 its output is multiplied by that gain (what the exported model computes)."""
    if not chroma_gain > 0:
        raise ValueError(f"chroma gain must be positive, got {chroma_gain}")
    gen_file = load_generator(checkpoint)
    config = GeneratorConfig(**gen_file.generator_config)
    net = define_generator(config)
    net.load_state_dict(gen_file.state)
    net = copy.deepcopy(net).eval().float().requires_grad_(False)
    if chroma_gain != 1.0:
        net = ChromaGain(net, chroma_gain).eval()
    return LoadedGenerator(net, gen_file, config)


def build_contract(loaded: LoadedGenerator, model_name: str, model_version: str,
                   render_size: int | None = None, guided_share: float = 1.0) -> ModelContract:
    hint_inputs = None
    if hint_channels_of(loaded.net):
        from colorizer.hint_spread import DEFAULT_PARAMS

        # the settings it was trained with (recorded since session 11; earlier files: the defaults, which
        # every hint model so far was trained with)
        spread = loaded.file.hint_spread or dataclasses.asdict(DEFAULT_PARAMS)
        hint_inputs = HintInputs(spread=dict(spread), guided_share=guided_share)
    return ModelContract(
        size_multiple=loaded.config.size_multiple,
        render_size=render_size or loaded.file.render_size,
        model_name=model_name,
        model_version=model_version,
        training_data=f"{loaded.file.training_data}; {loaded.file.step} steps",
        checkpoint_sha256=loaded.file.sha256,
        architecture=loaded.config.to_dict(),
        chroma_gain=getattr(loaded.net, "gain", 1.0),
        hint_inputs=hint_inputs,
    )


def set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    """Replace Colorizer keys in ``metadata_props``; keep others."""
    keep = [p for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)


def read_metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def _save_atomic(model: onnx.ModelProto, path: Path) -> None:
    with atomic_path(path) as partial:
        onnx.save_model(model, str(partial), save_as_external_data=False)


def export_onnx(loaded: LoadedGenerator, contract: ModelContract, path: Path, opset: int = OPSET) -> Path:
    """Write the FP32 ONNX model (one file, dynamic N/H/W) and check it."""
    m = contract.size_multiple
    dummy = model_inputs(loaded.net, torch.zeros(1, 1, m * 2, m * 3))
    if (len(dummy) > 1) != contract.takes_hints:
        raise RuntimeError("the contract and the generator disagree on hint inputs")
    with torch.inference_mode():
        out = loaded.net(*dummy)  # dry run: fails here, with a torch traceback, rather than inside export
    if out.shape != (1, 2, m * 2, m * 3):
        raise RuntimeError(f"generator returned shape {tuple(out.shape)} for input {tuple(dummy[0].shape)}")
    axes = {0: "batch", 2: "height", 3: "width"}
    names = [INPUT_NAME] + ([contract.hint_inputs.name] if contract.hint_inputs else [])
    tmp = path.with_name(path.name + ".torch.partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.onnx.export(loaded.net, dummy, str(tmp), input_names=names, output_names=[OUTPUT_NAME],
                          dynamic_axes={name: axes for name in [*names, OUTPUT_NAME]}, opset_version=opset,
                          do_constant_folding=True, dynamo=False)
        model = onnx.load(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)
    model.producer_name = "colorizer-export"
    model.producer_version = __version__
    hint_doc = f" + {contract.hint_inputs.name} (N,{len(contract.hint_inputs.channels)},H,W)" \
        if contract.hint_inputs else ""
    model.doc_string = (f"Colorizer {contract.model_name} {contract.model_version}: L (N,1,H,W){hint_doc} -> ab "
                        f"(N,2,H,W); H, W multiples of {contract.size_multiple}")
    split = split_concat_convs(model)
    if split:
        log.info("split %d concatenation+convolution(s) for ONNX Runtime's fast CPU layout", split)
    set_metadata(model, contract.to_metadata() | {PRECISION_KEY: "fp32"})
    onnx.checker.check_model(model, full_check=True)
    _save_atomic(model, path)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path


def convert_fp16(fp32_path: Path, path: Path) -> Path:
    """FP16 weights and arithmetic inside, float32 inputs and outputs (keep_io_types)."""
    from onnxconverter_common import float16

    model = onnx.load(str(fp32_path))
    metadata = read_metadata(model)
    with warnings.catch_warnings():  # one warning per weight below fp16's range, which is clamped: expected
        warnings.filterwarnings("ignore", message="the float32 number", category=UserWarning)
        half = float16.convert_float_to_float16(model, keep_io_types=True)
    set_metadata(half, metadata | {PRECISION_KEY: "fp16"})
    onnx.checker.check_model(half)
    _save_atomic(half, path)
    log.info("wrote %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path
