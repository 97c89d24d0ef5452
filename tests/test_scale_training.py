"""The training tools given a user's big archive: many photos (none opened before the first step),
huge photos (decoded only as large as a crop needs), gray photos among them (skipped once, known to every
data-loading process), a resume on photos that changed, and an evaluation with broken photos among many."""

import logging

import cv2
import numpy as np
import pytest
import torch
from synthetic import synthetic_photo, write_rgb
from test_training import tiny_config
from tiny_model import tiny_generator_file
from torch.utils.data import DataLoader

from colorizer.exporter.evaluate_cli import main as eval_main
from colorizer.trainer import data
from colorizer.trainer.data import ColorPhotoDataset, jpeg_size, read_rgb
from colorizer.trainer.train import build_trainer


def _count_reads(monkeypatch) -> list:
    opened = []
    real = data.read_rgb

    def counting(path, *args, **kwargs):
        opened.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(data, "read_rgb", counting)
    return opened


def test_no_training_photo_is_opened_before_training_starts(photo_folder, tmp_path, monkeypatch):
    """Every photo was decoded before the first step, on every run and resume (100,000 photos of an
    archive: their whole decode time); now only the validation photos are checked, about --val-images."""
    opened = _count_reads(monkeypatch)
    trainer = build_trainer(tiny_config(photo_folder, tmp_path / "run", val_fraction=0.0), progress=False)
    dataset, val = trainer.prepare_data()
    assert len(dataset) == 16 and val == [] and opened == []

    trainer = build_trainer(tiny_config(photo_folder, tmp_path / "run2", val_fraction=0.5, val_images=2),
                            progress=False)
    dataset, val = trainer.prepare_data()
    assert 1 <= len(val) <= 2 and len(opened) == len(val)  # all colorful: one open per validation photo


def test_a_huge_jpeg_is_decoded_reduced_for_a_training_crop(tmp_path, monkeypatch):
    """A 70 MP photo was decoded whole (~420 MB) to take a 128 px crop; a JPEG is now decoded at 1/2, 1/4
    or 1/8 of its size by libjpeg, its short side still twice the crop."""
    rgb = cv2.resize(synthetic_photo(3), (1024, 768), interpolation=cv2.INTER_LINEAR)
    big = tmp_path / "big.jpg"
    progressive = tmp_path / "progressive.jpg"
    cv2.imwrite(str(big), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(progressive), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    for path in (big, progressive):
        assert jpeg_size(np.fromfile(str(path), np.uint8)) == (1024, 768)
        assert read_rgb(path).shape == (768, 1024, 3)  # whole where no size is asked (evaluation)
        assert read_rgb(path, min_side=64).shape == (96, 128, 3)  # 1/8: 96 >= 64
        assert read_rgb(path, min_side=200).shape == (384, 512, 3)  # 1/2: 384 >= 200, 1/4 would be 192
    decoded = []
    real = cv2.imdecode
    monkeypatch.setattr(data.cv2, "imdecode", lambda buf, flag: decoded.append(r := real(buf, flag)) or r)
    l_t, ab_t = ColorPhotoDataset([big], 32, train=True)[0]
    assert l_t.shape == (1, 32, 32) and decoded[0].shape == (96, 128, 3)
    png = tmp_path / "big.png"
    write_rgb(png, rgb)
    assert read_rgb(png, min_side=64).shape == (768, 1024, 3)  # no reduced decoding: whole, as before


def test_gray_photos_are_skipped_as_met_and_decoded_once_by_all_workers(tmp_path, monkeypatch):
    """Gray photos are skipped as training meets them (not in a scan before it), marked in shared
    memory so that no data-loading process of any epoch decodes them again, and counted."""
    files = []
    for i in range(8):
        color, gray = tmp_path / f"c{i}.png", tmp_path / f"g{i}.png"
        write_rgb(color, synthetic_photo(i))
        write_rgb(gray, np.repeat(synthetic_photo(i).mean(2, keepdims=True).astype(np.uint8), 3, 2))
        files += [color, gray]
    dataset = ColorPhotoDataset(files, 32, train=True)
    loader = DataLoader(dataset, batch_size=4, num_workers=2)
    for _, ab in loader:  # the workers learn which photos are gray; the training process sees it
        assert float(ab.abs().flatten(1).mean(1).min()) > 0.01  # never a gray sample
    assert dataset.skipped() == (8, 0)
    opened = _count_reads(monkeypatch)
    for epoch in range(2):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            dataset[i]
    assert not [p for p in opened if p.name.startswith("g")]  # known gray: never decoded again


def test_a_resume_on_changed_photos_says_so(photo_folder, tmp_path, caplog):
    """Photos added or removed between runs changed the resumed run's epoch order silently."""
    cfg = tiny_config(photo_folder, tmp_path / "run", pretrain_steps=4, gan_steps=0)
    build_trainer(cfg, progress=False).fit(stop_after=1)
    with caplog.at_level(logging.WARNING):
        build_trainer(cfg, progress=False).fit(stop_after=1)
    assert "photos changed" not in caplog.text
    for i in range(16, 20):
        write_rgb(photo_folder / "new" / f"img_{i:02d}.png", synthetic_photo(i))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build_trainer(cfg, progress=False).fit(stop_after=1)
    assert "training photos changed since the checkpoint of step 2 (16 photos then, 20 now)" in caplog.text


def test_eval_names_and_counts_the_photos_it_could_not_read(tmp_path, capsys):
    """A broken photo among many was left out of the figures without a word."""
    photos = tmp_path / "photos"
    for i in range(3):
        write_rgb(photos / f"img_{i}.png", synthetic_photo(i))
    (photos / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    model = tiny_generator_file(tmp_path / "g.safetensors")
    assert eval_main([str(model), str(photos), "--quiet", "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr()
    assert "1 photo could not be read" in out.out + out.err and "broken.jpg" in out.out + out.err
    import json

    result = json.loads((tmp_path / "e.json").read_text())
    assert result["unreadable"] == [str(photos / "broken.jpg")] and result["model"]["images"] == 3


@pytest.fixture(autouse=True)
def _few_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
