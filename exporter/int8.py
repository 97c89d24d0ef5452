"""An INT8 twin of the FP32 ONNX for CPUs: static quantization calibrated on real photos.

Opt-in (``colorize-batch --cpu-int8``), not the default: on average its colors are within about
1 Lab unit of the FP32 model's, but a quantized network can go wrong locally where averages do not
show it (``bench/int8_local_check.py`` measures such local failures; see the model card).

EfficientNet-Lite was made for integer inference (ReLU6, no squeeze-excitation), and on a CPU
the convolutions in 8 bits take about half the time (ONNX Runtime's MLAS u8s8 kernels). The
quantization is ONNX Runtime's own (``quantize_static``, QDQ, weights per channel in int8,
activations in uint8), calibrated on the L of real photos at the model's render size: what the
runtime feeds it. Two ends stay in float (:func:`_float_nodes`). The input layer: the input
conversion (L -> linear light -> sRGB gamma -> ImageNet normalization in ``effunet``) and the first
convolution. In 8 bits, linear light has almost no codes for the shadows, which flipped dark skies
(the launch pad: half its night sky orange), and a quantized first convolution browned a lawn
(``bench/int8_local_check.py``); both cost little time in float. Where L comes back (effunet's
full-resolution block concatenates it with the decoder's features, which then share one 8-bit
scale), the block stays in float too: quantized, it turned lips purplish. The output layer (the last
convolution and what follows it): quantizing it costs more color than time. What quantization
still takes from the chroma on average (1-2 %) is given back by one factor on the output,
measured on the calibration photos
(``colorizer.int8_chroma_correction`` in the metadata). Half of the photos given calibrate, the
other half check it: the INT8 model's ab against the FP32 model's on them (normalized units; a
mean of 0.01 is 1.1 Lab units), recorded in the parity report. Use training photos, never the
photos a model is evaluated on.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from colorizer.colorize import prepare
from colorizer.contract import INPUT_NAME, ModelContract
from colorizer.exporter.cpu_graph import tensor_links
from colorizer.exporter.parity import ParityReport, ShapeResult, judge
from colorizer.trainer.data import list_images, read_rgb, spread

log = logging.getLogger(__name__)

_INT8_MEAN_TOLERANCE = 0.01
"""Largest mean |ab difference| (normalized) of the INT8 model from the FP32 one on real photos."""


def calibration_inputs(photos: Sequence[Path], contract: ModelContract, count: int) -> list[np.ndarray]:
    """(1, 1, h, w) model inputs of up to ``count`` photos spread over ``photos`` (folders, files
    or .txt lists), at the model's render size, as the runtime prepares them."""
    files = spread(list_images([Path(p) for p in photos]), count)
    inputs = []
    for path in files:
        rgb = read_rgb(path)
        if rgb is not None:
            inputs.append(prepare(rgb, contract.render_size, contract.size_multiple).model_input[None])
    if len(inputs) < 2:
        raise ValueError(f"INT8 calibration needs at least 2 readable photos; found {len(inputs)} in "
                         f"{', '.join(map(str, photos))}")
    return inputs


def _reader(inputs: list[np.ndarray]):
    """onnxruntime.quantization's CalibrationDataReader over a list of inputs."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(inputs)

        def get_next(self) -> dict | None:
            batch = next(self._it, None)
            return None if batch is None else {INPUT_NAME: batch}

    return Reader()


def input_layer_nodes(model) -> list[str]:
    """Names of the nodes of ``model``'s graph before its second convolution: the input conversion
    and the first convolution with its activation (kept in float). In the order the exporter writes
    them (the network's): a topological re-sort may put a convolution that reads the input again first."""
    nodes = list(model.graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type in ("Conv", "ConvTranspose")]
    return [n.name for n in nodes[: convs[1] if len(convs) > 1 else 0]]


def input_skip_nodes(model) -> list[str]:
    """Names of the nodes after the input layer that read the graph's input (a U-Net's skip of L:
    effunet's full-resolution block concatenates it with the decoder's features), with the nodes
    after each up to the convolution it feeds and that convolution's activation (kept in float: a
    concatenation shares one 8-bit scale, and L at the decoder's scale loses the fine detail). A
    convolution split into a sum of convolutions (:mod:`.cpu_graph`) counts whole: its parts and sums."""
    nodes = list(model.graph.node)
    readers, producers = tensor_links(nodes)

    def only_reader(index: int) -> int | None:
        found = readers.get(nodes[index].output[0], [])
        return found[0] if len(found) == 1 else None

    inputs = {i.name for i in model.graph.input}
    start = len(input_layer_nodes(model))
    chosen: set[int] = set()
    for i in range(start, len(nodes)):
        if not inputs.intersection(nodes[i].input):
            continue
        block, j = [i], i
        while nodes[j].op_type not in ("Conv", "ConvTranspose"):
            j = only_reader(j)
            if j is None:
                break
            block.append(j)
        nxt = only_reader(j) if j is not None else None
        while nxt is not None and nodes[nxt].op_type == "Add":  # the sum of a split convolution
            parts = [producers.get(name) for name in nodes[nxt].input]
            block += [k for k in parts if k is not None and nodes[k].op_type == "Conv"] + [nxt]
            j, nxt = nxt, only_reader(nxt)
        if nxt is not None and nodes[nxt].op_type in ("Relu", "Clip"):
            block.append(nxt)
        chosen.update(block)
    return [nodes[k].name for k in sorted(chosen)]


def _float_nodes(model) -> list[str]:
    """The nodes the INT8 twin keeps in float: the input layer, the skips of the input, the output layer."""
    names = input_layer_nodes(model) + input_skip_nodes(model)
    return names + [n for n in _output_layer_nodes(model) if n not in names]


def _output_layer_nodes(model) -> list[str]:
    """Names of the last convolution of ``model``'s graph and of every node after it (kept in float)."""
    nodes = list(model.graph.node)
    last = max((i for i, n in enumerate(nodes) if n.op_type in ("Conv", "ConvTranspose")), default=len(nodes))
    return [n.name for n in nodes[last:]]


def _scale_output(model, factor: float) -> None:
    """Multiply ``model``'s single output by ``factor`` (a Mul node appended in float)."""
    from onnx import helper, numpy_helper

    output = model.graph.output[0].name
    inner = output + "_before_int8_correction"
    for node in model.graph.node:
        node.output[:] = [inner if o == output else o for o in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), "int8_chroma_correction"))
    model.graph.node.append(helper.make_node("Mul", [inner, "int8_chroma_correction"], [output],
                                             name="/int8_chroma_correction"))


def _mean_abs(session, inputs: list[np.ndarray]) -> float:
    return float(np.mean([np.abs(session.run(None, {INPUT_NAME: x})[0]).mean() for x in inputs]))


def quantize_int8(onnx_path: Path, out_path: Path, contract: ModelContract, photos: Sequence[Path],
                  count: int = 64, inputs: list[np.ndarray] | None = None) -> ParityReport:
    """Write the INT8 twin of ``onnx_path`` to ``out_path`` (metadata kept) and return its parity
    against the FP32 model on the held-out half of the photos (``inputs``: their
    :func:`calibration_inputs`, when already read); raises ParityError beyond
    :data:`_INT8_MEAN_TOLERANCE` (leaving the file for inspection)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from colorizer.fileio import atomic_path

    if inputs is None:
        inputs = calibration_inputs(photos, contract, count)
    calibrate, check = inputs[0::2], inputs[1::2]
    with tempfile.TemporaryDirectory(prefix="colorizer-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        quantized = Path(tmp) / "int8.onnx"
        quantize_static(str(pre), str(quantized), _reader(calibrate), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=_float_nodes(onnx.load(str(onnx_path))))
        fp32 = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        correction = _mean_abs(fp32, calibrate) / max(
            1e-12, _mean_abs(ort.InferenceSession(str(quantized), providers=["CPUExecutionProvider"]), calibrate))
        model = onnx.load(str(quantized))
        _scale_output(model, correction)
        source_meta = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
        source_meta["colorizer.precision"] = "int8"
        source_meta["colorizer.int8_chroma_correction"] = f"{correction:.5f}"
        del model.metadata_props[:]
        for key, value in source_meta.items():
            model.metadata_props.add(key=key, value=value)
        with atomic_path(out_path) as partial:
            onnx.save(model, str(partial))
    int8 = ort.InferenceSession(str(out_path), providers=["CPUExecutionProvider"])
    results = []
    for batch in check:
        (want,) = fp32.run(None, {INPUT_NAME: batch})
        (got,) = int8.run(None, {INPUT_NAME: batch})
        results.append(ShapeResult.of(batch, got, want))
    report = judge(str(out_path), "int8", _INT8_MEAN_TOLERANCE, results, f"the FP32 model on {len(check)} photos",
                   criterion="mean")
    log.info("INT8 parity on %d photos: mean |diff| %.2e, max %.2e", len(check), report.mean_abs, report.max_abs)
    return report
