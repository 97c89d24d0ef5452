import numpy as np
from synthetic import synthetic_photo

from colorizer.trainer.evaluate import gray_baseline
from colorizer.trainer.metrics import colorfulness, delta_e2000, mean_scores, score


def test_identical_images_score_perfectly():
    img = synthetic_photo(0)
    s = score(img, img)
    assert s.delta_e == 0 and s.ssim == 1 and s.psnr == float("inf") and s.colorfulness_abs_diff == 0


def test_gray_image_has_zero_colorfulness():
    gray = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 3, axis=2).repeat(8, 0)
    assert colorfulness(gray) == 0


def test_colorful_image_scores_higher_than_its_gray_baseline():
    img = synthetic_photo(1)
    base = gray_baseline(img)
    assert colorfulness(base) < 1 < colorfulness(img)
    assert delta_e2000(img, base) > 5


def test_mean_scores_ratio():
    img = synthetic_photo(2)
    m = mean_scores([score(img, img), score(img, gray_baseline(img))])
    assert m["images"] == 2 and 0.4 < m["colorfulness_ratio"] < 0.6
