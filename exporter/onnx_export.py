"""Checkpoint -> self-contained ONNX with the color contract in its metadata, and FP16 ONNX.

The generator is rebuilt from the checkpoint's own config, deep-copied, switched to eval mode
(dropout off, BatchNorm on running statistics) and dry-run before export. Tensor names, dynamic
axes and the opset are fixed here; convolutions of concatenations that would miss ONNX Runtime's fast
CPU layout are split (:mod:`.cpu_graph`); the contract (colorizer.contract.ModelContract) goes into
``metadata_props`` so the runtime can check what the model computes before it runs it.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch

from colorizer import __version__
from colorizer.contract import INPUT_NAME, METADATA_PREFIX, OUTPUT_NAME, ModelContract
from colorizer.exporter.cpu_graph import split_concat_convs
from colorizer.fileio import atomic_path
from colorizer.trainer.checkpoint import GeneratorFile, load_generator
from colorizer.trainer.networks import GeneratorConfig, define_generator

log = logging.getLogger(__name__)

OPSET = 17
PRECISION_KEY = METADATA_PREFIX + "precision"


@dataclass(frozen=True)
class LoadedGenerator:
    net: torch.nn.Module  # eval mode, CPU, float32
    file: GeneratorFile
    config: GeneratorConfig


class ChromaGain(torch.nn.Module):
    """The generator with its ab multiplied by a fixed gain: the model's default colorfulness."""

    def __init__(self, net: torch.nn.Module, gain: float) -> None:
        super().__init__()
        self.net = net
        self.gain = gain

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        return self.net(l_norm) * self.gain


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
                   render_size: int | None = None) -> ModelContract:
    return ModelContract(
        size_multiple=loaded.config.size_multiple,
        render_size=render_size or loaded.file.render_size,
        model_name=model_name,
        model_version=model_version,
        training_data=f"{loaded.file.training_data}; {loaded.file.step} steps",
        checkpoint_sha256=loaded.file.sha256,
        architecture=loaded.config.to_dict(),
        chroma_gain=getattr(loaded.net, "gain", 1.0),
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
    dummy = torch.zeros(1, 1, m * 2, m * 3)
    with torch.inference_mode():
        out = loaded.net(dummy)  # dry run: fails here, with a torch traceback, rather than inside export
    if out.shape != (1, 2, m * 2, m * 3):
        raise RuntimeError(f"generator returned shape {tuple(out.shape)} for input {tuple(dummy.shape)}")
    axes = {0: "batch", 2: "height", 3: "width"}
    tmp = path.with_name(path.name + ".torch.partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.onnx.export(loaded.net, (dummy,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes}, opset_version=opset,
                          do_constant_folding=True, dynamo=False)
        model = onnx.load(str(tmp))
    finally:
        tmp.unlink(missing_ok=True)
    model.producer_name = "colorizer-export"
    model.producer_version = __version__
    model.doc_string = (f"Colorizer {contract.model_name} {contract.model_version}: L (N,1,H,W) -> ab (N,2,H,W); "
                        f"H, W multiples of {contract.size_multiple}")
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
