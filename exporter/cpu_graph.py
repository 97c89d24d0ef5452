"""Graph rewrites that make the exported ONNX faster under ONNX Runtime on a CPU, same arithmetic.

ONNX Runtime runs convolutions on a CPU in a blocked channel layout (NCHWc: 8 channels on AVX2, 16 on
AVX-512) only when their input channels come in multiples of 8. A U-Net decoder block that concatenates
features with a few channels of something else (effunet's full-resolution block: 32 channels of
features + L = 33) falls off that path onto a much slower one: that one convolution was 21 % of the
shipped model's CPU time at 720p. A convolution of a concatenation is the sum of the convolutions of
its parts (the weights split along the input channels), so :func:`split_concat_convs` rewrites it
that way: each part keeps or gets the fast path, and the concatenation's copy goes. Only the order of
the float additions changes (|Δ| ~ 1e-7 of the output's scale).
"""

from __future__ import annotations

from itertools import chain

import numpy as np

NCHWC_BLOCK = 8
"""Channels per block of ONNX Runtime's CPU layout on AVX2 (16 on AVX-512, where it pads a count that is a
multiple of 8: effunet's 232- and 152-channel concatenations ran as fast whole as split, measured)."""


def _attribute(node, name: str, default):
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def tensor_links(nodes) -> tuple[dict[str, list[int]], dict[str, int]]:
    """For a graph's ``nodes`` (a list): the indices of the nodes reading each tensor, and of the node
    writing it."""
    readers: dict[str, list[int]] = {}
    producers: dict[str, int] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            readers.setdefault(name, []).append(index)
        for name in node.output:
            producers[name] = index
    return readers, producers


def _channel_counts(model) -> dict[str, int]:
    """The static channel count (dimension 1) of every tensor whose shape inference knows it."""
    from onnx import shape_inference

    graph = shape_inference.infer_shapes(model).graph
    counts = {}
    for info in chain(graph.input, graph.value_info, graph.output):
        dims = info.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            counts[info.name] = dims[1].dim_value
    return counts


def split_concat_convs(model, block: int = NCHWC_BLOCK) -> int:
    """Rewrite in place every ``Conv(Concat(a, b, ...))`` over channels whose total is not a multiple
    of ``block`` as ``Conv(a) + Conv(b) + ...``; returns how many were rewritten.

    Only where nothing else reads the concatenation, the convolution is not grouped, its weights
    (and bias) are initializers in float32, and every part's channel count is known."""
    from onnx import helper, numpy_helper

    graph = model.graph
    nodes = list(graph.node)
    initializers = {i.name: i for i in graph.initializer}
    readers, _ = tensor_links(nodes)
    outputs = {o.name for o in graph.output}
    counts = _channel_counts(model)
    replaced: dict[int, list] = {}  # index of a conv -> its replacement; the concats are dropped
    dropped: set[int] = set()
    for at, concat in enumerate(nodes):
        if concat.op_type != "Concat" or _attribute(concat, "axis", None) not in (1, -3):
            continue
        (tensor,) = concat.output
        users = readers.get(tensor, [])
        if tensor in outputs or len(users) != 1 or nodes[users[0]].op_type != "Conv":
            continue
        conv = nodes[users[0]]
        if conv.input[0] != tensor or _attribute(conv, "group", 1) != 1 or conv.input[1] not in initializers:
            continue
        weight = numpy_helper.to_array(initializers[conv.input[1]])
        parts = [counts.get(name) for name in concat.input]
        if weight.dtype != np.float32 or None in parts or sum(parts) != weight.shape[1] or \
                weight.shape[1] % block == 0:
            continue
        bias = conv.input[2] if len(conv.input) > 2 and conv.input[2] else None
        new_nodes, sums, start = [], [], 0
        for k, (name, channels) in enumerate(zip(concat.input, parts, strict=True)):
            w_name = f"{conv.input[1]}_part{k}"
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight[:, start:start + channels]),
                                                             w_name))
            start += channels
            part = f"{conv.output[0]}_part{k}"
            inputs = [name, w_name] + ([bias] if bias and k == 0 else [])
            node = helper.make_node("Conv", inputs, [part], name=f"{conv.name}_part{k}")
            node.attribute.extend(conv.attribute)
            new_nodes.append(node)
            sums.append(part)
        total = sums[0]
        for k, part in enumerate(sums[1:], 1):
            out = conv.output[0] if k == len(sums) - 1 else f"{conv.output[0]}_sum{k}"
            new_nodes.append(helper.make_node("Add", [total, part], [out], name=f"{conv.name}_sum{k}"))
            total = out
        replaced[users[0]] = new_nodes
        dropped.add(at)
    if not replaced:
        return 0
    rewritten = []
    for index, node in enumerate(nodes):
        if index not in dropped:
            rewritten.extend(replaced.get(index, [node]))
    used = {name for node in rewritten for name in node.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.node[:]
    graph.node.extend(rewritten)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return len(replaced)
