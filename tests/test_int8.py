"""The INT8 twin for CPUs: calibrated on photos, metadata kept, output layer in float, checked
against FP32 on held-out photos, and run by the CPU backend only when asked (--cpu-int8)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from synthetic import synthetic_photo, write_rgb
from tiny_model import tiny_generator_file

from colorizer.desktop.backends import open_backend
from colorizer.desktop.backends.base import ModelFiles
from colorizer.exporter.cli import main as export_main
from colorizer.exporter.export import export_model
from colorizer.exporter.int8 import _float_nodes, _output_layer_nodes, quantize_int8
from colorizer.exporter.parity import ParityError

pytest.importorskip("onnxruntime.quantization", reason="ONNX Runtime's quantization tools are not installed")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    for i in range(8):
        write_rgb(folder / f"p{i}.png", synthetic_photo(i, 40, 56))
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory, photos):
    tmp = tmp_path_factory.mktemp("int8")
    gen = tiny_generator_file(tmp / "tiny.safetensors")
    return export_model(gen, tmp / "model", name="tiny", version="t1", fp16=False, int8_photos=[photos])


def test_int8_twin_is_written_with_the_contract_and_a_parity_report(exported):
    assert exported.int8_onnx == exported.onnx.with_name("tiny.int8.onnx") and exported.int8_onnx.is_file()
    meta = {p.key: p.value for p in onnx.load(str(exported.int8_onnx)).metadata_props}
    fp32_meta = {p.key: p.value for p in onnx.load(str(exported.onnx)).metadata_props}
    assert meta["colorizer.precision"] == "int8"
    assert fp32_meta.pop("colorizer.precision") == "fp32"
    assert {k: v for k, v in meta.items() if k in fp32_meta} == fp32_meta
    assert 0.8 < float(meta["colorizer.int8_chroma_correction"]) < 1.25
    report = json.loads(exported.report.read_text())["int8"]
    assert report["passed"] and report["criterion"] == "mean" and report["mean_abs"] <= 0.01
    assert len(report["shapes"]) == 4  # the held-out half of 8 photos


def test_int8_model_is_quantized_except_its_output_layer(exported):
    model = onnx.load(str(exported.int8_onnx))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 5 and "DequantizeLinear" in ops
    assert ops[-1] == "Mul"  # the chroma correction, in float
    fp32_tail = _output_layer_nodes(onnx.load(str(exported.onnx)))
    assert fp32_tail and all(name in {n.name for n in model.graph.node} for name in fp32_tail)


def test_cpu_backend_runs_the_int8_twin_only_when_asked(exported):
    files = ModelFiles.from_path(exported.int8_onnx)
    assert files.onnx == exported.onnx and files.int8_onnx == exported.int8_onnx
    assert files.cpu_onnx() == exported.onnx and files.cpu_onnx(int8=True) == exported.int8_onnx
    int8 = open_backend(exported.onnx, "cpu", cpu_int8=True)
    fp32 = open_backend(exported.onnx, "cpu")
    assert int8.name == "onnxruntime-cpu-int8" and fp32.name == "onnxruntime-cpu"
    x = np.random.default_rng(0).uniform(-1, 1, (2, 1, 32, 48)).astype(np.float32)
    a, b = int8.predict(x), fp32.predict(x)
    assert a.shape == b.shape == (2, 2, 32, 48)
    assert 0 < np.abs(a - b).mean() < 0.05


def test_a_failing_int8_parity_is_an_error(exported, photos, monkeypatch, tmp_path):
    monkeypatch.setattr("colorizer.exporter.int8._INT8_MEAN_TOLERANCE", 0.0)
    from colorizer.desktop.backends import read_contract

    with pytest.raises(ParityError, match="int8"):
        quantize_int8(exported.onnx, tmp_path / "x.int8.onnx", read_contract(exported.onnx), [photos])


def test_export_cli_int8_needs_photos(tmp_path, capsys):
    gen = tiny_generator_file(tmp_path / "tiny.safetensors")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_main([str(gen), "-o", str(tmp_path / "m"), "--no-fp16", "--int8-calibration", str(empty)]) == 2
    assert "INT8 calibration needs at least 2 readable photos" in capsys.readouterr().err


def _graph_reading_l_again(full_block: list) -> onnx.ModelProto:
    """L -> input layer -> a middle convolution -> ``full_block`` (reads L again) -> two convolutions."""
    from onnx import TensorProto, helper

    def node(op, inputs, output, name):
        return helper.make_node(op, inputs, [output], name=name)

    nodes = [node("Mul", ["l", "k"], "lin", "to_linear"), node("Pow", ["lin", "g"], "srgb", "gamma"),
             node("Conv", ["srgb", "w1"], "c1", "stem"), node("Relu", ["c1"], "r1", "act"),
             node("Conv", ["r1", "w2"], "c2", "middle"), node("Relu", ["c2"], "r2", "act2"),
             *[node(*args) for args in full_block],
             node("Relu", ["c3"], "r3", "act3"), node("Conv", ["r3", "w4"], "c4", "middle2"),
             node("Conv", ["c4", "w5"], "c5", "head"), node("Tanh", ["c5"], "ab", "tanh")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("l", TensorProto.FLOAT, [1, 1, 8, 8])],
                              [helper.make_tensor_value_info("ab", TensorProto.FLOAT, [1, 2, 8, 8])])
    return helper.make_model(graph)


def test_the_input_layer_its_skips_and_the_output_layer_stay_in_float():
    """Everything up to the second convolution (effunet's L -> linear light -> sRGB: 8-bit linear
    light loses the shadows; then the first convolution), a block that reads L again (up to its
    convolution's activation), and from the last convolution on."""
    model = _graph_reading_l_again([("Concat", ["r2", "l"], "cat", "skip"), ("Conv", ["cat", "w3"], "c3", "full")])
    assert _float_nodes(model) == ["to_linear", "gamma", "stem", "act", "skip", "full", "act3", "head", "tanh"]


def test_a_split_convolution_that_reads_l_again_stays_in_float_whole():
    """The exporter's CPU rewrite (``cpu_graph``) turns that block into a sum of convolutions: every
    part of the sum stays in float, the features' part too."""
    model = _graph_reading_l_again([("Conv", ["r2", "w3a"], "c3a", "full_part0"),
                                    ("Conv", ["l", "w3b"], "c3b", "full_part1"),
                                    ("Add", ["c3a", "c3b"], "c3", "full_sum1")])
    assert _float_nodes(model) == ["to_linear", "gamma", "stem", "act", "full_part0", "full_part1", "full_sum1",
                                   "act3", "head", "tanh"]


def test_the_cpu_backend_warns_of_int8_on_an_x86_cpu_without_vnni(exported, monkeypatch, caplog, tmp_path):
    from colorizer.desktop.backends import onnxruntime as ort_backend

    monkeypatch.setattr(ort_backend.platform, "machine", lambda: "x86_64")
    without, with_vnni = tmp_path / "plain", tmp_path / "vnni"
    without.write_text("processor : 0\nflags : fpu sse2 avx2 fma\n")
    with_vnni.write_text("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_vnni\n")
    assert ort_backend._x86_without_vnni(without) and not ort_backend._x86_without_vnni(with_vnni)
    assert not ort_backend._x86_without_vnni(tmp_path / "missing")
    monkeypatch.setattr(ort_backend, "_x86_without_vnni", lambda: True)
    with caplog.at_level("WARNING"):
        open_backend(exported.onnx, "cpu").close()
        assert "VNNI" not in caplog.text  # FP32: nothing to say
        open_backend(exported.onnx, "cpu", cpu_int8=True).close()
    assert "no VNNI" in caplog.text
