"""The color contract shared by the trainer, the exporter and the runtime.

One implementation, numpy/OpenCV only (no torch), so every part computes colors the same way:

* Color space: CIE Lab from float32 RGB in [0, 1], as OpenCV's float conversion computes it
  (sRGB gamma, D65 white; L in [0, 100], a and b in about [-128, 127]).
* Model input ``L``: float32 (N, 1, H, W), ``L / 50 - 1``.
* Model output ``ab``: float32 (N, 2, H, W), ``ab / 110``: the generator's tanh (in [-1, 1]) times the
  model's chroma gain (``colorizer.chroma_gain``, e.g. 1.35), so up to +-gain; not clipped.
* H and W are multiples of ``size_multiple`` (2 ** U-Net depth); callers pad (reflect or edge),
  never stretch, and crop the padding off the output.
* A model with hint inputs (format version 2, :class:`HintInputs`) also takes ``hints``: float32
  (N, 3, H, W), the dense guidance of the user's color hints the runtime computes
  (:func:`colorizer.hint_guidance.guidance_map`: hinted a/110, b/110 spread edge-aware over the photo,
  and a confidence in [0, 1]), padded to L's padded shape by repeating its edge; zeros mean "no
  hint". Models without it (version 1: every model exported before, and users' own) keep working
  unchanged.

:class:`ModelContract` is what the exporter writes into an ONNX model's ``metadata_props`` and
what the runtime reads back; a model whose contract is missing or unknown is refused.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from colorizer.errors import ColorizerError

FORMAT_VERSION = 1
HINTS_FORMAT_VERSION = 2  # version 1 + a second input: the dense guidance of color hints (HintInputs)
SUPPORTED_FORMAT_VERSIONS = (FORMAT_VERSION, HINTS_FORMAT_VERSION)
HINT_INPUT_NAME = "hints"
HINT_CHANNELS = ("a/110", "b/110", "confidence")
HINT_GUIDANCE = "geodesic-spread-v1"
HINT_GUIDANCE_VERSION = 1
COLOR_SPACE = "cielab-d65-srgb-opencv-float"
INPUT_NAME = "L"
OUTPUT_NAME = "ab"
L_NORMALIZATION = "L/50-1"
AB_NORMALIZATION = "ab/110"
AB_SCALE = 110.0
METADATA_PREFIX = "colorizer."


class ContractError(ColorizerError, ValueError):
    """A model or array does not follow the color contract; the message says why."""


# --------------------------------------------------------------------------- color space
def to_float_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float RGB (H, W, 3) to float32 RGB in [0, 1]."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ContractError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype == np.uint16:
        return image.astype(np.float32) / 65535.0
    return np.clip(image.astype(np.float32, copy=False), 0.0, 1.0)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """RGB (H, W, 3), any of uint8/uint16/float in [0, 1] -> float32 Lab (H, W, 3)."""
    return cv2.cvtColor(to_float_rgb(rgb), cv2.COLOR_RGB2Lab)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """float32 Lab (H, W, 3) -> float32 RGB in [0, 1] (out-of-gamut values clipped)."""
    rgb = cv2.cvtColor(np.ascontiguousarray(lab, dtype=np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb, 0.0, 1.0, out=rgb)


def rgb_to_l(rgb: np.ndarray) -> np.ndarray:
    """The luminance channel L in [0, 100] (H, W) of an RGB image.

    Gray images (8 or 16 bits, R = G = B everywhere, as black-and-white photos decode) take a
    shortcut: L then depends on the gray level only and is looked up (:func:`gray_to_l`), the
    same values several times faster and without the float32 RGB and Lab planes."""
    gray = gray_plane(rgb)
    return gray_to_l(gray) if gray is not None else rgb_to_lab(rgb)[..., 0]


def gray_plane(rgb: np.ndarray) -> np.ndarray | None:
    """The gray levels (H, W) (a new contiguous array) of a uint8 / uint16 RGB image whose three
    channels are equal everywhere; None for any other image (color, float, another shape)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype not in (np.uint8, np.uint16) or rgb.size == 0:
        return None
    if not np.array_equal(rgb[:1, :, 1:], rgb[:1, :, :2]):  # a color photo usually shows it in its first row
        return None
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype == np.uint8:  # OpenCV: one pass, no temporaries (numpy's strided compare is ~20x slower)
        red, green, blue = cv2.split(rgb)
    else:  # (OpenCV's split is slow for 16 bits)
        red, green, blue = (cv2.extractChannel(rgb, c) for c in range(3))
    same = cv2.norm(red, green, cv2.NORM_INF) == 0 and cv2.norm(green, blue, cv2.NORM_INF) == 0
    return red.reshape(rgb.shape[:2]) if same else None


@functools.cache
def _gray_l_table(dtype_name: str) -> np.ndarray:
    """L of every gray level of ``dtype_name`` (uint8: 256 entries, uint16: 65536), as rgb_to_lab computes it."""
    levels = np.arange(256 if dtype_name == "uint8" else 65536, dtype=dtype_name)
    table = np.ascontiguousarray(rgb_to_lab(np.repeat(levels[None, :, None], 3, axis=2))[0, :, 0])
    table.flags.writeable = False
    return table


def gray_to_l(gray: np.ndarray) -> np.ndarray:
    """L in [0, 100] (H, W) float32 of gray levels (uint8 or uint16), by table lookup: the values
    :func:`rgb_to_lab` gives the RGB pixel (v, v, v)."""
    if gray.dtype not in (np.uint8, np.uint16):
        raise ContractError(f"gray levels must be uint8 or uint16, got {gray.dtype}")
    table = _gray_l_table(gray.dtype.name)
    if gray.dtype == np.uint8:
        return cv2.LUT(np.ascontiguousarray(gray), table).reshape(gray.shape)
    return table[gray]


def merge_l_ab(l_channel: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Full-resolution L (H, W) plus ab (H, W, 2) -> float32 RGB in [0, 1]."""
    lab = np.empty((*l_channel.shape, 3), dtype=np.float32)
    lab[..., 0] = l_channel
    lab[..., 1:] = ab
    return lab_to_rgb(lab)


# --------------------------------------------------------------------------- normalization
def normalize_l(l_channel: np.ndarray) -> np.ndarray:
    return (np.asarray(l_channel, dtype=np.float32) / 50.0) - 1.0


def denormalize_l(l_norm: np.ndarray) -> np.ndarray:
    return (np.asarray(l_norm, dtype=np.float32) + 1.0) * 50.0


def normalize_ab(ab: np.ndarray) -> np.ndarray:
    return np.asarray(ab, dtype=np.float32) / AB_SCALE


def denormalize_ab(ab_norm: np.ndarray) -> np.ndarray:
    return np.asarray(ab_norm, dtype=np.float32) * AB_SCALE


# --------------------------------------------------------------------------- padding
@dataclass(frozen=True)
class Padding:
    """Pixels added on each side to reach the size multiple; crop() removes them again."""

    top: int
    bottom: int
    left: int
    right: int

    def crop(self, array: np.ndarray) -> np.ndarray:
        """Crop the last two axes (..., H, W) back to the unpadded size."""
        h, w = array.shape[-2], array.shape[-1]
        return array[..., self.top : h - self.bottom, self.left : w - self.right]


def padded_size(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def pad_to_multiple(plane: np.ndarray, multiple: int, mode: str = "reflect") -> tuple[np.ndarray, Padding]:
    """Pad the last two axes (..., H, W) up to multiples of ``multiple``, centred.

    ``mode`` is "reflect" or "edge"; reflect falls back to edge where the image is too small to
    mirror (numpy's reflect needs pad < size).
    """
    if mode not in ("reflect", "edge"):
        raise ContractError(f"unknown padding mode {mode!r}; use 'reflect' or 'edge'")
    h, w = plane.shape[-2], plane.shape[-1]
    ph, pw = padded_size(h, multiple) - h, padded_size(w, multiple) - w
    pad = Padding(ph // 2, ph - ph // 2, pw // 2, pw - pw // 2)
    if ph == 0 and pw == 0:
        return plane, pad
    if mode == "reflect" and (max(pad.top, pad.bottom) >= h or max(pad.left, pad.right) >= w):
        mode = "edge"
    widths = [(0, 0)] * (plane.ndim - 2) + [(pad.top, pad.bottom), (pad.left, pad.right)]
    return np.pad(plane, widths, mode=mode), pad


# --------------------------------------------------------------------------- metadata
@dataclass(frozen=True)
class HintInputs:
    """A model's second input, the guidance of color hints: its name, planes, how they are made
    (``guidance`` + ``guidance_version``, with the spread settings it was trained with: recorded by the
    trainer beside the weights, copied by the exporter) and the guided share."""

    name: str = HINT_INPUT_NAME
    channels: tuple[str, ...] = HINT_CHANNELS
    guidance: str = HINT_GUIDANCE
    guidance_version: int = HINT_GUIDANCE_VERSION
    spread: Mapping[str, object] = field(default_factory=dict)  # colorizer.hint_spread.SpreadParams fields
    guided_share: float = 1.0
    """With hints, the runtime takes ``guided_share`` x the model's prediction with the guidance +
    (1 - guided_share) x its prediction without (zero guidance) where the hints reach, fading to the
    prediction without them where the spread's weights fade (chosen on validation); 1: the guided
    prediction alone, everywhere. The merge's spread then moves that toward the hints."""

    def __post_init__(self) -> None:
        if not 0.0 < self.guided_share <= 1.0:
            raise ContractError(f"hint inputs: guided_share must be in (0, 1], got {self.guided_share}")

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "shape": ["batch", len(self.channels), "height", "width"],
                           "channels": list(self.channels), "guidance": self.guidance,
                           "guidance_version": self.guidance_version, "spread": dict(self.spread),
                           "guided_share": self.guided_share})

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> HintInputs:
        try:
            raw = json.loads(text)
            hints = cls(name=str(raw["name"]), channels=tuple(raw["channels"]), guidance=str(raw["guidance"]),
                        guidance_version=int(raw["guidance_version"]), spread=dict(raw.get("spread", {})),
                        guided_share=float(raw.get("guided_share", 1.0)))
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise ContractError(f"{source}: its hint inputs' metadata is malformed ({exc})") from exc
        if (hints.guidance, hints.guidance_version, hints.channels) != (HINT_GUIDANCE, HINT_GUIDANCE_VERSION,
                                                                        HINT_CHANNELS):
            raise ContractError(
                f"{source} takes hint guidance {hints.guidance!r} version {hints.guidance_version} with planes "
                f"{list(hints.channels)}; this Colorizer makes {HINT_GUIDANCE!r} version {HINT_GUIDANCE_VERSION} "
                f"({list(HINT_CHANNELS)}). Use the Colorizer release that made the model.")
        return hints


@dataclass(frozen=True)
class ModelContract:
    """What a colorization model computes; written into and read back from ONNX metadata."""

    size_multiple: int
    render_size: int
    model_name: str = "colorizer-unet"
    model_version: str = "0"
    training_data: str = ""
    checkpoint_sha256: str = ""
    architecture: Mapping[str, object] = field(default_factory=dict)
    # The exported graph multiplies the generator's ab by this (its default colorfulness, chosen on
    # validation data); runtimes apply nothing more than the user's own saturation on top.
    chroma_gain: float = 1.0
    hint_inputs: HintInputs | None = None  # a model with hint inputs (format version 2); None: L only
    format_version: int = FORMAT_VERSION
    color_space: str = COLOR_SPACE
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    l_normalization: str = L_NORMALIZATION
    ab_normalization: str = AB_NORMALIZATION

    def __post_init__(self) -> None:
        if self.hint_inputs is not None and self.format_version == FORMAT_VERSION:
            object.__setattr__(self, "format_version", HINTS_FORMAT_VERSION)

    def to_metadata(self) -> dict[str, str]:
        """Flat string map for ONNX ``metadata_props``."""
        out = {}
        for key, value in asdict(self).items():
            if key == "hint_inputs":
                continue
            out[METADATA_PREFIX + key] = json.dumps(value) if isinstance(value, dict) else str(value)
        if self.hint_inputs is not None:
            out[METADATA_PREFIX + "hint_inputs"] = self.hint_inputs.to_json()
        return out

    @property
    def takes_hints(self) -> bool:
        """True when the model has a hint guidance input (:class:`HintInputs`)."""
        return self.hint_inputs is not None

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str], source: str = "model") -> ModelContract:
        """Read and check a contract; raise :class:`ContractError` saying why it is refused."""
        meta = {k[len(METADATA_PREFIX) :]: v for k, v in metadata.items() if k.startswith(METADATA_PREFIX)}
        if not meta:
            raise ContractError(
                f"{source} carries no Colorizer contract (no '{METADATA_PREFIX}*' metadata): it was not "
                "exported by colorizer-export, so its color space and normalization are unknown. "
                "Export it with `colorizer-export CHECKPOINT`."
            )
        try:
            version = int(meta.get("format_version", "-1"))
        except ValueError:
            version = -1
        if version not in SUPPORTED_FORMAT_VERSIONS:
            raise ContractError(
                f"{source} uses contract format version {meta.get('format_version')!r}; this Colorizer "
                f"understands versions {', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}. Re-export the model "
                "with this version of colorizer-export, or use the Colorizer release that made it."
            )
        hint_inputs = None
        if version == HINTS_FORMAT_VERSION:
            if "hint_inputs" not in meta:
                raise ContractError(f"{source}: contract format version {version} needs the hint_inputs metadata")
            hint_inputs = HintInputs.from_json(meta["hint_inputs"], source)
        expected = {
            "color_space": COLOR_SPACE,
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "l_normalization": L_NORMALIZATION,
            "ab_normalization": AB_NORMALIZATION,
        }
        for key, want in expected.items():
            if meta.get(key) != want:
                raise ContractError(f"{source}: contract field {key}={meta.get(key)!r}, expected {want!r}")
        try:
            if int(meta["render_size"]) < 1 or int(meta["size_multiple"]) < 1:
                raise ValueError(f"render_size {meta['render_size']} and size_multiple {meta['size_multiple']} "
                                 "must be at least 1")
            return cls(
                size_multiple=int(meta["size_multiple"]),
                render_size=int(meta["render_size"]),
                model_name=meta.get("model_name", ""),
                model_version=meta.get("model_version", ""),
                training_data=meta.get("training_data", ""),
                checkpoint_sha256=meta.get("checkpoint_sha256", ""),
                architecture=json.loads(meta.get("architecture", "{}")),
                chroma_gain=float(meta.get("chroma_gain", "1.0")),
                hint_inputs=hint_inputs,
                format_version=version,
            )
        except (KeyError, ValueError) as exc:
            raise ContractError(f"{source}: contract metadata is incomplete or malformed ({exc})") from exc
