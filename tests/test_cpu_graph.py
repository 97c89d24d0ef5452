"""The exporter's CPU rewrite: a convolution of a concatenation whose channels miss ONNX Runtime's
blocked layout becomes a sum of convolutions, with the same results; other graphs stay as they are."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, checker, helper, numpy_helper

from colorizer.exporter.cpu_graph import split_concat_convs

ort = pytest.importorskip("onnxruntime")


def concat_conv_model(feature_channels: int, extra_reader: bool = False, with_bias: bool = True):
    """features (N, C, H, W) and L (N, 1, H, W) -> Concat -> 3x3 Conv (8 out) -> Relu."""
    rng = np.random.default_rng(feature_channels)
    weight = rng.normal(0, 0.3, (8, feature_channels + 1, 3, 3)).astype(np.float32)
    initializers = [numpy_helper.from_array(weight, "w")]
    conv_inputs = ["cat", "w"]
    if with_bias:
        initializers.append(numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b"))
        conv_inputs.append("b")
    nodes = [helper.make_node("Relu", ["x"], ["features"], name="features"),
             helper.make_node("Concat", ["features", "L"], ["cat"], name="skip", axis=1),
             helper.make_node("Conv", conv_inputs, ["c"], name="full", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["ab"], name="act")]
    outputs = [helper.make_tensor_value_info("ab", TensorProto.FLOAT, ["n", 8, "h", "w"])]
    if extra_reader:
        nodes.append(helper.make_node("Identity", ["cat"], ["cat_copy"], name="copy"))
        outputs.append(helper.make_tensor_value_info("cat_copy", TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", feature_channels, "h", "w"]),
         helper.make_tensor_value_info("L", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        outputs, initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model, x, l_plane):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["ab"], {"x": x, "L": l_plane})[0]


@pytest.mark.parametrize("with_bias", [True, False])
def test_a_concatenation_off_the_blocked_layout_is_split_with_the_same_results(with_bias):
    model = concat_conv_model(16, with_bias=with_bias)  # 17 channels: not a multiple of 8
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 16, 12, 20)).astype(np.float32)
    l_plane = rng.uniform(-1, 1, (2, 1, 12, 20)).astype(np.float32)
    want = run(model, x, l_plane)
    assert split_concat_convs(model) == 1
    checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    assert ops == ["Relu", "Conv", "Conv", "Add", "Relu"]
    assert {i.name for i in model.graph.initializer} == {"w_part0", "w_part1"} | ({"b"} if with_bias else set())
    got = run(model, x, l_plane)
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    assert split_concat_convs(model) == 0  # nothing left to split


def test_concatenations_on_the_layout_or_read_elsewhere_stay():
    whole = concat_conv_model(15)  # 16 channels: on the fast path already
    assert split_concat_convs(whole) == 0 and [n.op_type for n in whole.graph.node].count("Concat") == 1
    shared = concat_conv_model(16, extra_reader=True)  # the concatenation is needed anyway
    assert split_concat_convs(shared) == 0 and [n.op_type for n in shared.graph.node].count("Concat") == 1
