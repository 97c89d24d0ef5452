"""The window at an archive's scale: a drop of hundreds or thousands of scans (on a slow disk), a queue of
thousands of rows, a large photo fitted in the before/after view, a photo holding the most hints.

What is tested is the mechanism (the GUI thread's longest pause measured by a heartbeat timer with
bounds far from the failure, counts of signals and of work done), never a speed. Slow disks are
simulated: each file's format sniff sleeps (``slow_disk``), as on a network share. Each test here
failed before its fix (see the docstrings); figures: ``bench/bench_hint_preview.py`` and the report
of the session that wrote them.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("PySide6.QtWidgets", reason="the gui extra (PySide6) is not installed")

from app_helpers import make_window, small_clip, stop_all  # noqa: E402
from PIL import Image  # noqa: E402
from PySide6.QtCore import QPointF, QTimer  # noqa: E402
from PySide6.QtGui import QColor, QImage  # noqa: E402

from colorizer.desktop.app.compare_view import CompareView  # noqa: E402
from colorizer.desktop.app.inputs import SYNC_ADD_LIMIT, collect, collect_in_chunks, count_files  # noqa: E402
from colorizer.desktop.app.preview import array_to_qimage  # noqa: E402
from colorizer.desktop.app.queue_model import QUEUED, QueueItem, QueueModel  # noqa: E402
from colorizer.desktop.core import TaskKind  # noqa: E402
from colorizer.desktop.pipeline import tasks as planning  # noqa: E402

pytest_plugins = ["app_fixtures"]

MANY = SYNC_ADD_LIMIT + 64  # more than is added at once: listed off the GUI thread
SNIFF_S = 0.004  # a slow disk: each file takes this long to be recognized (the old window froze MANY times it)
FROZEN_S = 0.6  # a pause of the GUI thread this long is a freeze (the old code: over MANY * SNIFF_S = 1.3 s)


class Heartbeat:
    """A 10 ms timer on the GUI thread; ``longest`` is the longest it waited between two beats."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._last = time.perf_counter()
        self._timer = QTimer(interval=10)
        self._timer.timeout.connect(self._beat)
        self._timer.start()

    def _beat(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def stop(self) -> float:
        self._beat()
        self._timer.stop()
        return self.longest


def scans(folder: Path, n: int, per_box: int = 100) -> list[Path]:
    """``n`` tiny gray scans in boxes of ``per_box`` (box00/scan_00000.png, ...)."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"box{i // per_box:02d}" / f"scan_{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (6, 8), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def slow_disk(monkeypatch):
    """Every file's format sniff takes SNIFF_S (the sleep lets other threads run, as a read does)."""
    sniff = planning.detect_format

    def slow(path):
        time.sleep(SNIFF_S)
        return sniff(path)

    monkeypatch.setattr(planning, "detect_format", slow)


# ---------------------------------------------------------------------------- a drop of an archive
def test_a_large_drop_is_listed_off_the_gui_thread_and_its_rows_come_in_chunks(qtbot, store, tmp_path, slow_disk):
    """Before: add_paths planned the whole folder on the GUI thread (every file opened): 5,000 scans froze
    the window 0.7 s, 20,000 for 3 s on a local disk, MANY on a slow one for 1.3 s here."""
    window = make_window(qtbot, store)
    paths = scans(tmp_path / "archive", MANY)
    inserted = []
    window.queue.rowsInserted.connect(lambda _parent, first, last: inserted.append(last - first + 1))
    finished = []
    window.adding_finished.connect(finished.append)
    beat = Heartbeat()
    returned = window.add_paths([tmp_path / "archive"])
    rows_at_once = window.queue.rowCount()
    qtbot.waitUntil(lambda: window.queue.rowCount() == MANY and not window.adding, timeout=30_000)
    assert beat.stop() < FROZEN_S
    assert returned == [] and rows_at_once == 0  # nothing at once: the rows come in chunks
    assert [i.source for i in window.queue.items()] == paths  # every scan, in the order a small drop has
    assert len(finished[0].added) == MANY and sum(inserted) == MANY and len(inserted) > 1
    assert window.table.currentIndex().row() == 0  # the first row is selected, as for a small drop
    assert f"Added {MANY} items" in window.statusBar().currentMessage()

    # the same archive again: found queued already (said so), nothing added twice
    with qtbot.waitSignal(window.adding_finished, timeout=30_000) as again:
        window.add_paths([tmp_path / "archive"])
    assert again.args[0].already == MANY and window.queue.rowCount() == MANY

    # Clear while a drop is being added stops it: no row comes after
    scans(tmp_path / "more", MANY)
    window.clear_queue()
    window.add_paths([tmp_path / "more"])
    qtbot.waitUntil(lambda: window.queue.rowCount() > 0, timeout=30_000)
    window.clear_queue()
    window.filler.wait()
    qtbot.wait(50)
    assert window.queue.rowCount() == 0 and not window.adding


def test_the_folder_of_an_archive_is_planned_in_the_same_order_piece_by_piece(tmp_path):
    """A tree where a file is named before a subfolder and after another: the chunks give :func:`collect`'s
    items in its order, and its refusals (before: no chunked listing existed)."""
    root = tmp_path / "tree"
    for name in ("a.png", "b.png", "c.png", "a b/x.png", "ab/y.png", "b/z/w.png", "b/v.png", "B.png",
                 ".hidden.png", "zz/q.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / name)
    (root / "bad.jpg").write_text("not a photo")
    (root / "notes.txt").write_text("not ours")
    (root / "empty").mkdir()
    items, refused = collect([root])
    chunks = list(collect_in_chunks([root]))
    assert [i.source for c, _ in chunks for i in c] == [i.source for i in items]
    assert sorted(r for _, rs in chunks for r in rs) == sorted(refused) and refused
    assert all(i.root == root for c, _ in chunks for i in c)
    assert list(collect_in_chunks([root / "empty"])) == [collect([root / "empty"])]


def test_telling_a_large_drop_from_a_small_one_stops_looking_once_past_the_limit(tmp_path, monkeypatch):
    """The count that decides whether a drop is listed off the GUI thread (on it) looks at a few more names
    than the limit, however many a folder holds. Before: every name of the folder was looked at (on a
    share, a stat each), the limit checked only between folders."""
    folder = tmp_path / "flat"
    folder.mkdir()
    for i in range(400):
        (folder / f"scan_{i:04d}.png").touch()
    looked = []
    scandir = os.scandir

    class Counted:
        def __init__(self, path):
            self._entries = scandir(path)

        def __enter__(self):
            return (looked.append(entry) or entry for entry in self._entries.__enter__())

        def __exit__(self, *exc):
            return self._entries.__exit__(*exc)

    monkeypatch.setattr(os, "scandir", Counted)
    assert count_files([folder], 50) > 50
    assert len(looked) <= 52


def test_start_of_a_large_queue_waits_for_the_drop_plans_off_the_gui_thread_and_marks_rows_at_once(
        qtbot, store, model, tmp_path, stop_runs, slow_disk):
    """Start pressed while a drop is still coming runs all of it once it is in; planning the outputs (every
    file opened again) is done off the GUI thread, and the rows become "queued" in one signal. Before:
    plan_run on the GUI thread froze Start for 1.8 s per 5,000 scans, then one dataChanged per row."""
    window = make_window(qtbot, store, model, tmp_path / "out")
    stop_runs(window)
    scans(tmp_path / "archive", MANY)
    changes = []
    window.queue.dataChanged.connect(lambda first, last, _roles=(): changes.append((first.row(), last.row())))
    beat = Heartbeat()
    window.add_paths([tmp_path / "archive"])
    window.start()  # while the rows are still coming
    running_at_once, said = window.running, window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: window.running, timeout=30_000)
    assert beat.stop() < FROZEN_S
    assert not running_at_once and "as soon as" in said
    assert len(window.runs.queued) == MANY  # every scan dropped, not the rows there when Start was pressed
    assert (0, MANY - 1) in changes and len(changes) < 10  # "queued": one signal for every row
    assert all(i.status != QUEUED or i.output is not None for i in window.queue.items())
    stop_all([window])


def test_a_large_drop_holding_films_names_their_outputs_without_planning_the_archive_on_the_gui_thread(
        qtbot, store, tmp_path, slow_disk):
    """A film's row names its output as soon as it is queued. Before: each chunk holding a film planned the
    whole dropped archive again (every file sniffed) on the GUI thread to name it: the drop froze the
    window as long as before chunks existed, once per such chunk."""
    window = make_window(qtbot, store)
    scans(tmp_path / "archive", MANY)
    films = [small_clip(tmp_path / "archive" / box / "reel.mp4") for box in ("box00", "box03")]
    beat = Heartbeat()
    window.add_paths([tmp_path / "archive"])
    qtbot.waitUntil(lambda: window.queue.rowCount() == MANY + 2 and not window.adding, timeout=30_000)
    films_rows = [i for i in window.queue.items() if i.kind == TaskKind.VIDEO]
    qtbot.waitUntil(lambda: all(i.output is not None for i in films_rows), timeout=30_000)
    assert beat.stop() < FROZEN_S
    outputs = {i.source: i.output for i in films_rows}
    assert sorted(outputs) == films and all(o is not None and o.parent.name in ("box00", "box03")
                                            for o in outputs.values())


# ---------------------------------------------------------------------------- a queue of thousands of rows
def test_a_queue_of_thousands_finds_a_file_queued_and_removes_rows_without_going_over_all_of_them(
        qtbot, monkeypatch):
    """Before: each add resolved every queued path again (adding one file to 20,000 rows: 0.8 s), and each
    removed row rebuilt the row index and was its own signal (every other row of 5,000: 2.6 s)."""
    model = QueueModel()
    n = 4000
    model.add([QueueItem(Path(f"/archive/box/scan_{i:05d}.png"), TaskKind.IMAGE) for i in range(n)])
    resolved = []
    resolve = Path.resolve
    monkeypatch.setattr(Path, "resolve", lambda self, *a, **k: resolved.append(self) or resolve(self, *a, **k))
    assert model.add([QueueItem(Path("/archive/box/scan_00007.png"), TaskKind.IMAGE)]) == []  # queued already
    assert len(model.add([QueueItem(Path("/archive/new.png"), TaskKind.IMAGE)])) == 1
    assert len(resolved) <= 2

    signals = []
    for name in ("rowsRemoved", "modelReset"):
        getattr(model, name).connect(lambda *_a, name=name: signals.append(name))
    items = model.items()
    model.remove_rows(list(range(0, n, 2)))  # every other row
    assert len(signals) <= 1 and model.rowCount() == n + 1 - n // 2
    assert model.items() == items[1::2][: n // 2] + [items[-1]]
    assert model.item_by_id(items[1].id) is items[1] and model.item_by_id(items[0].id) is None
    model.remove_rows(list(range(10, 1010)))  # a block of rows: one removal
    assert signals[-1] == "rowsRemoved" and len(signals) == 2 and model.rowCount() == n + 1 - n // 2 - 1000
    assert model.add([items[0]]) == [items[0]]  # a removed file can be queued again
    assert model.item_by_id(items[-1].id) is items[-1]
    assert model.index(model.rowCount() - 1, 0).data() == items[0].source.name


# ---------------------------------------------------------------------------- a large photo and many hints
def _photo(width: int, height: int) -> QImage:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.dstack([(x * 255 // width), (y * 255 // height), np.full_like(x, 90)]).astype(np.uint8)
    return array_to_qimage(rgb)


def test_a_large_photo_fitted_is_scaled_once_per_zoom_level_not_at_every_repaint(qtbot):
    """Before: every repaint (each mouse move of a pan, of the split, of a hint) filtered the whole 3000-pixel
    preview again, twice: 10 ms a repaint, 17 s for 1,000 moves of a pan over a 100 MP scan."""
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(600, 400)
    before, after = _photo(3000, 2000), _photo(3000, 2000)
    view.set_images(before, after)
    view.show()
    qtbot.waitExposed(view)
    drawn = view.display_pixmap(before, view.image_rect())
    assert drawn is not None and drawn.width() == round(view.image_rect().width())
    for i in range(50):  # a pan, a drag of the split
        view.pan_by(1 if i % 2 else -1, 0)
        view.set_split(0.3 + i / 100)
        view.repaint()
    assert view.display_pixmap(before, view.image_rect()).cacheKey() == drawn.cacheKey()  # the same pixmap
    shown = view.grab().toImage()
    r = view.image_rect()
    for fx, fy in ((0.1, 0.2), (0.9, 0.8)):  # what is on the screen is the photo, at its place, both sides
        pos = QPointF(r.x() + fx * r.width(), r.y() + fy * r.height())
        color = shown.pixelColor(round(pos.x()), round(pos.y()))
        assert abs(color.red() - 255 * fx) < 12 and abs(color.green() - 255 * fy) < 12 and abs(color.blue() - 90) < 12
    view.zoom_by(1.25)  # another zoom level: scaled again, once
    assert view.display_pixmap(before, view.image_rect()).cacheKey() != drawn.cacheKey()
    view.actual_size()  # 1:1 and closer: drawn as it is (only the part in view)
    assert view.display_pixmap(before, view.image_rect()) is None


def test_a_large_photo_fitted_on_a_high_density_screen_is_scaled_to_the_screen_pixels(qtbot):
    """On a screen of 2 device pixels per pixel, the photo scaled once is as sharp as the photo drawn as it
    is: one of its pixels per screen pixel. Before: scaled to the view's pixels, then stretched 2x."""
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(600, 400)
    before = _photo(3000, 2000)
    view.set_images(before, None)
    view.devicePixelRatioF = lambda: 2.0
    target = view.image_rect()
    drawn = view.display_pixmap(before, target)
    assert drawn.width() == round(2 * target.width()) and drawn.devicePixelRatio() == 2.0
    assert abs(drawn.deviceIndependentSize().width() - target.width()) < 1


def test_the_most_hints_a_photo_holds_are_drawn_from_one_marker_per_color(qtbot):
    """Before: 500 points were 1,000 antialiased rings a repaint (25 ms): a drag of one point over a photo
    holding the most hints took 16 s for 300 moves and froze the window up to 0.4 s."""
    from colorizer.hints import MAX_POINTS

    view = CompareView()
    qtbot.addWidget(view)
    view.resize(800, 600)
    view.set_images(_photo(4000, 3000), None)
    view.set_hint_mode(True)
    view.set_photo_size((4000, 3000))
    colors = [QColor(c) for c in ("#b03a2e", "#3a6ea5", "#2e8b57", "#d4a017", "#6b3fa0")]
    rng = np.random.default_rng(2)
    points, checked = [], {7: (2000.0, 1500.0), 8: (500.0, 500.0)}  # nothing drawn over these two
    while len(points) < MAX_POINTS:
        i = len(points)
        x, y = checked.get(i, (float(rng.integers(0, 4000)), float(rng.integers(0, 3000))))
        if i in checked or all(abs(x - cx) > 150 or abs(y - cy) > 150 for cx, cy in checked.values()):
            points.append((x, y, colors[i % 5]))
    view.set_hints(points, selected=7)
    view.show()
    qtbot.waitExposed(view)
    view._markers.clear()
    shown = view.grab().toImage()
    assert len(view._markers) == len(colors)  # one marker drawn per color, copied for every point
    for index in (7, 8):  # each point's color at its center (the selected one drawn larger)
        c = view.photo_to_view(*points[index][:2])
        assert shown.pixelColor(round(c.x()), round(c.y())) == points[index][2]
    assert view.hint_at(view.photo_to_view(500.0, 500.0)) in [
        i for i, p in enumerate(points) if abs(p[0] - 500) < 60 and abs(p[1] - 500) < 60]
