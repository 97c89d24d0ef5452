"""Training checkpoints in safetensors (never pickle).

One ``.safetensors`` file holds every tensor under a prefix — ``G.`` generator, ``D.``
discriminator, ``optG.``/``optD.`` optimizer state, ``rng.torch`` — and its string metadata holds
the step, the phase, the training config, the contract version and the optimizers' param groups.
A generator-only file (``save_generator``) is what ships and what the exporter starts from.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from colorizer.contract import FORMAT_VERSION
from colorizer.fileio import atomic_path

KIND_TRAINING = "colorizer-training-checkpoint"
KIND_GENERATOR = "colorizer-generator"


class CheckpointError(ValueError):
    """A file that is not a readable Colorizer checkpoint or generator file; the message names it and says why."""


def _not_safetensors(path: Path, exc: Exception) -> CheckpointError:
    suffix = Path(path).suffix.lower()
    hint = {".onnx": "an exported ONNX model; give the generator .safetensors it was exported from",
            ".pt": "a PyTorch pickle, which is never loaded; Colorizer's checkpoints are .safetensors",
            ".pth": "a PyTorch pickle, which is never loaded; Colorizer's checkpoints are .safetensors",
            }.get(suffix, "damaged, cut short, or another kind of file")
    return CheckpointError(f"{path} cannot be read as a safetensors file ({exc}): {hint}")


def _write_error(path: Path, exc: SafetensorError) -> OSError:
    """safetensors' write failure (a full disk, a lost mount) as the OSError it is, naming the file."""
    found = re.search(r"os error (\d+)", str(exc))
    code = int(found.group(1)) if found else errno.EIO
    return OSError(code, f"cannot write {path}: {os.strerror(code) if found else exc}")


def _flatten_optimizer(prefix: str, state_dict: Mapping) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict] = {}
    for idx, state in state_dict["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(prefix: str, tensors: Mapping[str, torch.Tensor], meta: Mapping) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            idx, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for idx, values in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def _atomic_save(tensors: dict[str, torch.Tensor], metadata: dict[str, str], path: Path) -> None:
    with atomic_path(path) as partial:  # a failed write leaves the previous file whole and no partial file
        try:
            save_file(tensors, str(partial), metadata=metadata)
        except SafetensorError as exc:
            raise _write_error(path, exc) from exc


def _prefixed(prefix: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in state.items()}


def _strip(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


@dataclass
class TrainingState:
    step: int
    config: dict
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor]
    optimizer_g: dict
    optimizer_d: dict
    torch_rng: torch.Tensor | None
    ema: dict[str, torch.Tensor] | None = None


def _hint_spread_meta(hint_spread: Mapping[str, object] | None) -> dict[str, str]:
    """The metadata entry of the spread settings a generator with hint inputs was trained with (the
    exporter records them in the model's contract, and the runtime makes the guidance with them)."""
    return {} if hint_spread is None else {"hint_spread": json.dumps(dict(hint_spread), sort_keys=True)}


def save_training(path: Path, *, step: int, config: dict, generator: torch.nn.Module,
                  discriminator: torch.nn.Module, optimizer_g: torch.optim.Optimizer,
                  optimizer_d: torch.optim.Optimizer, ema: torch.nn.Module | None = None,
                  hint_spread: Mapping[str, object] | None = None) -> None:
    tensors = _prefixed("G", generator.state_dict()) | _prefixed("D", discriminator.state_dict())
    if ema is not None:
        tensors |= _prefixed("EMA", ema.state_dict())
    opt_g, meta_g = _flatten_optimizer("optG", optimizer_g.state_dict())
    opt_d, meta_d = _flatten_optimizer("optD", optimizer_d.state_dict())
    tensors |= opt_g | opt_d
    tensors["rng.torch"] = torch.get_rng_state()
    metadata = {
        "kind": KIND_TRAINING,
        "contract_format_version": str(FORMAT_VERSION),
        "step": str(step),
        "config": json.dumps(config),
        "optimizer_g": json.dumps(meta_g),
        "optimizer_d": json.dumps(meta_d),
        **_hint_spread_meta(hint_spread),
    }
    _atomic_save(tensors, metadata, path)


def read_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except SafetensorError as exc:
        raise _not_safetensors(path, exc) from None


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except SafetensorError as exc:
        raise _not_safetensors(path, exc) from None


def load_training(path: Path) -> TrainingState:
    meta = read_metadata(path)
    if meta.get("kind") != KIND_TRAINING:
        raise CheckpointError(f"{path} is not a Colorizer training checkpoint (kind={meta.get('kind')!r})")
    tensors = _load_tensors(path)
    ema = _strip("EMA", tensors) or None
    try:
        return _training_state(meta, tensors, ema)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: its training metadata is damaged ({type(exc).__name__}: {exc})") from None


def _training_state(meta: dict[str, str], tensors: dict[str, torch.Tensor], ema: dict | None) -> TrainingState:
    return TrainingState(
        step=int(meta["step"]),
        config=json.loads(meta["config"]),
        generator=_strip("G", tensors),
        discriminator=_strip("D", tensors),
        optimizer_g=_unflatten_optimizer("optG", tensors, json.loads(meta["optimizer_g"])),
        optimizer_d=_unflatten_optimizer("optD", tensors, json.loads(meta["optimizer_d"])),
        torch_rng=tensors.get("rng.torch"),
        ema=ema,
    )


def save_generator(path: Path, generator_state: Mapping[str, torch.Tensor], *, generator_config: dict,
                   render_size: int, step: int, training_data: str, half: bool = False,
                   hint_spread: Mapping[str, object] | None = None) -> None:
    """The shippable generator: weights (optionally float16) + what the exporter needs to rebuild it."""
    state = {k: (v.half() if half and v.is_floating_point() else v) for k, v in generator_state.items()}
    metadata = {
        "kind": KIND_GENERATOR,
        "contract_format_version": str(FORMAT_VERSION),
        "generator_config": json.dumps(generator_config),
        "render_size": str(render_size),
        "step": str(step),
        "training_data": training_data,
        **_hint_spread_meta(hint_spread),
    }
    _atomic_save({k: v.detach().cpu().contiguous() for k, v in state.items()}, metadata, path)


@dataclass(frozen=True)
class GeneratorFile:
    state: dict[str, torch.Tensor]
    generator_config: dict
    render_size: int
    step: int
    training_data: str
    sha256: str
    hint_spread: dict | None = None  # the spread settings its hint guidance was trained with (None: not recorded)


def save_generator_as(path: Path, generator: GeneratorFile, *, state: Mapping[str, torch.Tensor] | None = None,
                      training_data: str | None = None, half: bool = False) -> None:
    """Write ``generator`` (as loaded: :func:`load_generator`) again as a generator file, with every
    field it recorded (architecture, render size, step, training data, hint spread); ``state``: other
    weights of the same architecture (an average), ``training_data``: a new account of them."""
    save_generator(path, generator.state if state is None else state, generator_config=generator.generator_config,
                   render_size=generator.render_size, step=generator.step,
                   training_data=generator.training_data if training_data is None else training_data, half=half,
                   hint_spread=generator.hint_spread)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_generator(path: Path, use_ema: bool = True) -> GeneratorFile:
    """Generator weights from a shipped generator file or from a training checkpoint (EMA if present)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    meta = read_metadata(path)
    kind = meta.get("kind")
    if kind not in (KIND_GENERATOR, KIND_TRAINING):
        raise CheckpointError(f"{path} is not a Colorizer checkpoint (metadata kind={kind!r})")
    tensors = _load_tensors(path)
    try:
        if kind == KIND_GENERATOR:
            state, gen_cfg = tensors, json.loads(meta["generator_config"])
            render_size, step, data = int(meta["render_size"]), int(meta["step"]), meta.get("training_data", "")
        else:
            config = json.loads(meta["config"])
            state = (_strip("EMA", tensors) if use_ema else {}) or _strip("G", tensors)
            gen_cfg, render_size, step = config["generator"], int(config["size"]), int(meta["step"])
            data = config.get("data_summary", "")
        spread = json.loads(meta["hint_spread"]) if "hint_spread" in meta else None
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: its metadata is damaged ({type(exc).__name__}: {exc})") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return GeneratorFile(state, gen_cfg, render_size, step, data, sha256_of(path), spread)
