import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tiny_model import tiny_generator_file

from colorizer.contract import ContractError, ModelContract
from colorizer.desktop.backends import OnnxRuntimeBackend, read_contract
from colorizer.exporter.export import export_model
from colorizer.exporter.onnx_export import load_eval_generator
from colorizer.exporter.parity import ParityError, check_parity


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    gen = tiny_generator_file(tmp / "tiny.safetensors")
    return gen, export_model(gen, tmp / "model", name="tiny", version="t1", fp16=True)


def test_export_writes_onnx_fp16_and_parity_report(exported):
    _, result = exported
    assert result.onnx.is_file() and result.fp16_onnx.is_file()
    assert not list(result.onnx.parent.glob("*.data"))  # one self-contained file
    assert result.parity.passed and result.parity.max_abs <= 1e-4
    assert result.fp16_parity.passed and result.fp16_parity.max_abs <= 1e-2
    assert len(result.parity.shapes) >= 3 and {s.shape[0] for s in result.parity.shapes} >= {1, 2, 3}
    report = json.loads(result.report.read_text())
    assert report["fp32"]["passed"] and report["fp16"]["passed"]


def test_onnx_has_names_dynamic_axes_and_contract(exported):
    gen, result = exported
    model = onnx.load(str(result.onnx))
    assert [i.name for i in model.graph.input] == ["L"] and [o.name for o in model.graph.output] == ["ab"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]
    contract = read_contract(result.onnx)
    assert contract.size_multiple == 8 and contract.render_size == 32
    assert contract.model_name == "tiny" and contract.model_version == "t1"
    assert contract.checkpoint_sha256 == load_eval_generator(gen).file.sha256
    assert "synthetic test photos" in contract.training_data
    assert read_contract(result.fp16_onnx) == contract


@pytest.mark.parametrize("shape", [(1, 1, 8, 8), (2, 1, 24, 16), (4, 1, 40, 64)])
def test_onnx_matches_torch_at_other_shapes(exported, shape):
    gen, result = exported
    net = load_eval_generator(gen).net
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    with torch.inference_mode():
        expected = net(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(result.onnx), providers=["CPUExecutionProvider"]).run(None, {"L": x})[0]
    assert np.abs(got - expected).max() < 1e-4


def test_parity_check_catches_a_wrong_model(exported, tmp_path):
    gen, result = exported
    other = load_eval_generator(tiny_generator_file(tmp_path / "other.safetensors", seed=5)).net
    with pytest.raises(ParityError, match="differs from PyTorch"):
        check_parity(other, str(result.onnx), 8)


def _strip_contract(src, dst, change=None):
    model = onnx.load(str(src))
    props = [(p.key, p.value) for p in model.metadata_props]
    del model.metadata_props[:]
    for key, value in props:
        if change is None:
            continue
        model.metadata_props.add(key=key, value=change.get(key, value))
    onnx.save(model, str(dst))
    return dst


def test_model_without_contract_is_refused(exported, tmp_path):
    bare = _strip_contract(exported[1].onnx, tmp_path / "bare.onnx")
    with pytest.raises(ContractError, match="no Colorizer contract"):
        OnnxRuntimeBackend(bare, ["CPUExecutionProvider"])


def test_model_with_unknown_contract_version_is_refused(exported, tmp_path):
    future = _strip_contract(exported[1].onnx, tmp_path / "future.onnx", {"colorizer.format_version": "99"})
    with pytest.raises(ContractError, match="format version '99'"):
        read_contract(future)


def test_model_with_a_render_size_of_zero_is_refused(exported, tmp_path):
    broken = _strip_contract(exported[1].onnx, tmp_path / "zero.onnx", {"colorizer.render_size": "0"})
    with pytest.raises(ContractError, match="render_size 0"):
        read_contract(broken)


def test_contract_from_metadata_matches_written(exported):
    meta = {p.key: p.value for p in onnx.load(str(exported[1].onnx)).metadata_props}
    assert ModelContract.from_metadata(meta).to_metadata().items() <= meta.items()


def test_export_cli_help_and_engine(tmp_path, capsys, monkeypatch):
    import importlib.util
    import sys

    from colorizer.exporter.cli import main as export_main

    with pytest.raises(SystemExit):
        export_main(["--help"])
    assert "--engine" in capsys.readouterr().out
    gen = tiny_generator_file(tmp_path / "g.safetensors")
    args = [str(gen), "-o", str(tmp_path / "m"), "--name", "t", "--engine", "--engine-dir", str(tmp_path / "eng"),
            "--max-render-size", "32", "--max-batch", "2"]
    have_trt = any(importlib.util.find_spec(m) for m in ("tensorrt", "tensorrt_rtx"))
    if have_trt:  # a real engine build (tensorrt_rtx builds without a GPU)
        assert export_main(args) == 0
        assert list((tmp_path / "eng").glob("*.engine")) and list((tmp_path / "eng").glob("*.engine.json"))
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    assert export_main(args) == 3  # ONNX written, engine impossible: says why
    assert "no TensorRT engine" in capsys.readouterr().err
    assert (tmp_path / "m" / "t.onnx").is_file()


def test_chroma_gain_is_baked_into_the_model_and_recorded(exported, tmp_path):
    gen, result = exported
    gained = export_model(gen, tmp_path / "gained", name="tiny", version="t1", fp16=False, chroma_gain=1.5)
    assert gained.parity.passed
    assert read_contract(gained.onnx).chroma_gain == 1.5
    assert read_contract(result.onnx).chroma_gain == 1.0
    x = np.random.default_rng(2).uniform(-1, 1, (1, 1, 16, 24)).astype(np.float32)
    plain = ort.InferenceSession(str(result.onnx), providers=["CPUExecutionProvider"]).run(None, {"L": x})[0]
    boosted = ort.InferenceSession(str(gained.onnx), providers=["CPUExecutionProvider"]).run(None, {"L": x})[0]
    np.testing.assert_allclose(boosted, 1.5 * plain, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        load_eval_generator(gen, chroma_gain=0)


def test_a_twin_of_another_checkpoint_is_not_used(exported, tmp_path, caplog):
    """A model copied over an older one, the older one's FP16 twin left beside it: the GPU would run the
    older model. A twin whose checkpoint is not the FP32 model's is left out, with a warning."""
    import logging
    import shutil

    from colorizer.desktop.backends.base import ModelFiles

    gen, result = exported
    files = ModelFiles.from_path(result.onnx)
    assert files.same_model_twins().fp16_onnx == result.fp16_onnx  # the twin of the same checkpoint stays

    other = export_model(tiny_generator_file(tmp_path / "other.safetensors", seed=3), tmp_path / "other",
                         name="tiny", version="t2", fp16=False).onnx
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(other, mixed / "tiny.onnx")
    shutil.copy(result.fp16_onnx, mixed / "tiny.fp16.onnx")
    files = ModelFiles.from_path(mixed / "tiny.onnx")
    assert files.fp16_onnx is not None  # paired by name
    with caplog.at_level(logging.WARNING):
        checked = files.same_model_twins()
    assert checked.fp16_onnx is None and checked.gpu_onnx == mixed / "tiny.onnx"
    assert "exported from another checkpoint" in caplog.text
