"""The main window: queue, before/after viewer, settings, log; runs go to a worker thread.

Every run request (start, pause, resume, cancel, close) goes through :class:`RunController` and
its state machine (:mod:`.run_state`); the window only shows the state it is told about.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDockWidget,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QStyle,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from colorizer.desktop.app import dialogs
from colorizer.desktop.app import settings as app_settings
from colorizer.desktop.app.adding import AddSummary, QueueFiller
from colorizer.desktop.app.backend_probe import BackendProbe
from colorizer.desktop.app.background import BackgroundCall
from colorizer.desktop.app.drop_zone import DropZone, local_paths
from colorizer.desktop.app.engine_dialog import EngineBuildDialog
from colorizer.desktop.app.hint_mode import HintEditor
from colorizer.desktop.app.inputs import (
    SYNC_ADD_LIMIT,
    collect,
    collect_frames,
    count_files,
    film_in_folder,
    film_output,
    film_outputs,
    plan_run,
    with_hint_counts,
)
from colorizer.desktop.app.log_view import LogView
from colorizer.desktop.app.queue_model import (
    DONE,
    FAILED,
    HINTS,
    NAME,
    PROGRESS,
    QUEUED,
    RESULT,
    SKIPPED,
    STATUS,
    TYPE,
    WAITING,
    WORKING,
    ProgressDelegate,
    QueueItem,
    QueueModel,
)
from colorizer.desktop.app.run_clock import format_duration
from colorizer.desktop.app.run_controller import RunController
from colorizer.desktop.app.run_state import ACTIVE, CANCELLING, CLOSING, IDLE, PAUSED, PAUSING, RunState
from colorizer.desktop.app.settings import AppSettings
from colorizer.desktop.app.settings_panel import SettingsPanel
from colorizer.desktop.app.viewer import ItemViewer
from colorizer.desktop.app.worker import OpenBackend, QueuedTask, WorkerOutcome
from colorizer.desktop.backends import BACKEND_LABELS
from colorizer.desktop.backends.detect import Detection
from colorizer.desktop.core import TaskKind
from colorizer.desktop.media.formats import parse_format_option
from colorizer.desktop.pipeline.frames import FrameSequence
from colorizer.desktop.pipeline.report import FileResult
from colorizer.fileio import FORMAT_SUFFIXES, VIDEO_SUFFIXES

log = logging.getLogger("colorizer.app")


def file_filter() -> str:
    """The Add files dialog's filter, from the runtime's tables of what it reads (files are still
    recognized by content: the filter only names the likely suffixes)."""
    photos = " ".join(f"*{s}" for suffixes in FORMAT_SUFFIXES.values() for s in suffixes)
    videos = " ".join(f"*{s}" for s in sorted(VIDEO_SUFFIXES))
    return (f"Photos and videos ({photos} {videos});;Photos ({photos});;Videos ({videos});;"
            "All files (*)")


_FILE_FILTER = file_filter()
PROGRESS_INTERVAL_MS = 100  # a film's frame progress is shown at most this often (its frames come faster)

STATE_MESSAGES = {
    PAUSING: "Pausing: the batch in progress is finishing…",
    PAUSED: "Paused. Resume (Ctrl+P) goes on where it stopped.",
    CANCELLING: "Cancelling: finishing the files being written (no half-written file is left)…",
    CLOSING: "Closing: the window closes as soon as the files being written are finished…",
}


def _stored_bytes(store: QSettings, key: str) -> QByteArray | None:
    """A saved window state (bytes); None when there is none, or the settings file holds something else
    there (edited by hand, or damaged): the window then opens as it does the first time."""
    value = store.value(key)
    if isinstance(value, QByteArray):
        return value
    if isinstance(value, bytes | bytearray):
        return QByteArray(bytes(value))
    return None


class MainWindow(QMainWindow):
    run_started = Signal()
    item_finished = Signal(int, object, int, int)  # item id, FileResult, finished count, total (GUI thread)
    run_finished = Signal(object)  # WorkerOutcome
    adding_finished = Signal(object)  # AddSummary of a large drop, once its last row is in the queue

    def __init__(self, store: QSettings, open_backend: OpenBackend | None = None, detect=None, parent=None) -> None:
        """``open_backend`` and ``detect`` (what can run here) default to the runtime's; tests inject others."""
        super().__init__(parent)
        self.store = store
        self._engine_dialog: EngineBuildDialog | None = None
        self.last_refused: list[tuple[Path, str]] = []
        self.open_url = QDesktopServices.openUrl  # tests replace it

        self.setWindowTitle("Colorizer")
        self.setAcceptDrops(True)
        self.queue = QueueModel(self)
        self.filler = QueueFiller(self.queue, self)  # large drops, off the GUI thread
        self.filler.rows_added.connect(self._rows_added)
        self.filler.finished.connect(self._adding_done)
        self._start_when_added = False
        self._planning = BackgroundCall(self)  # Start's planning of a large queue, off the GUI thread
        self._naming = BackgroundCall(self)  # the films' outputs in a large queue, off the GUI thread
        self.settings_panel = SettingsPanel(app_settings.load(store))
        self.settings_panel.changed.connect(self._settings_changed)
        self.viewer = ItemViewer(self)
        self.compare = self.viewer.compare
        self.compare.show_in_folder.connect(self.show_result_in_folder)
        self.queue.dataChanged.connect(self._row_changed)
        self.log_view = LogView()
        self._log_handler = self.log_view.attach(logging.getLogger("colorizer"))
        self.backends = BackendProbe(detect, self)
        self.backends.ready.connect(self._backends_found)
        self.runs = RunController(open_backend, self.backends.choose, self)
        self.runs.state_changed.connect(self._state_changed)
        self.runs.backend_ready.connect(self._backend_ready)
        self.runs.engine_progress.connect(self._engine_progress)
        self.runs.item_started.connect(lambda item_id: self.queue.update(item_id, status=WORKING))
        self.runs.item_progress.connect(self._item_progress)
        self.runs.item_finished.connect(self._item_finished)
        self.runs.finished.connect(self._run_finished)
        self.hints = HintEditor(self.compare, self.queue, store, lambda: self.app_settings, open_backend,
                                self.backends.choose, self)
        self.hints.message.connect(lambda text, ms: self.statusBar().showMessage(text, ms))
        self.addAction(self.hints.action)

        self._build_actions()
        self._build_layout()
        self._timer = QTimer(self, interval=1000)
        self._timer.timeout.connect(self._update_overall)
        self._progress_timer = QTimer(self, interval=PROGRESS_INTERVAL_MS, singleShot=True)
        self._progress_timer.timeout.connect(self._show_film_progress)
        self._state_changed(IDLE, IDLE)
        geometry = _stored_bytes(store, "ui/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1400, 860)
        if self.backends.detection is not None:  # found before the signal was connected
            self._backends_found(self.backends.detection)

    # ------------------------------------------------------------------ construction
    def _action(self, text: str, slot, shortcut=None, icon=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [shortcut])
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())
        action.setToolTip(f"{tip or text} ({keys})" if keys else tip or text)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.add_files_action = self._action("Add files…", self.choose_files, QKeySequence("Ctrl+O"),
                                             sp.SP_FileIcon, "Add photos or videos")
        self.add_folder_action = self._action("Add folder…", self.choose_folder, QKeySequence("Ctrl+Shift+O"),
                                              sp.SP_DirIcon, "Add a folder with its subfolders")
        self.add_frames_action = self._action("Add frame folder…", self.choose_frame_folder, None, sp.SP_DirIcon,
                                              "Add a folder of numbered frames, colorized as one film")
        self.remove_action = self._action("Remove", self.remove_selected, QKeySequence.StandardKey.Delete,
                                          sp.SP_TrashIcon, "Remove the selected items from the queue")
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.clear_action = self._action("Clear", self.clear_queue, None, sp.SP_DialogResetButton,
                                         "Empty the queue")
        self.start_action = self._action("Start", self.start, [QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")],
                                         sp.SP_MediaPlay, "Colorize the queue")
        self.pause_action = self._action("Pause", self.set_paused, None, sp.SP_MediaPause,
                                         "Pause after the current batch; press again to resume")
        self.pause_action.setCheckable(True)
        self.pause_action.setShortcut(QKeySequence("Ctrl+P"))
        self.cancel_action = self._action("Cancel", self.cancel_run, QKeySequence(Qt.Key.Key_Escape),
                                          sp.SP_MediaStop, "Stop after the files being written")
        self.open_output_action = self._action("Open output folder", self.open_output_folder, None,
                                               sp.SP_DirOpenIcon)
        self.quit_action = self._action("Quit", self.close, QKeySequence("Ctrl+Q"))

        bar = QToolBar("Run")
        bar.setObjectName("run-toolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (self.add_files_action, self.add_folder_action, self.remove_action, self.clear_action, None,
                       self.start_action, self.pause_action, self.cancel_action, None, self.open_output_action):
            if action is None:
                bar.addSeparator()
            else:
                bar.addAction(action)
        self.addToolBar(bar)
        self._fix_width(bar.widgetForAction(self.pause_action), ("Pause", "Resume"))

    @staticmethod
    def _fix_width(button, texts) -> None:
        """A tool button as wide as its widest text, so the toolbar does not shift when the text changes."""
        if button is None:
            return
        shown = button.text()
        widths = []
        for text in texts:
            button.setText(text)
            widths.append(button.sizeHint().width())
        button.setText(shown)
        button.setMinimumWidth(max(widths))

    def _build_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.queue)
        table.setItemDelegateForColumn(PROGRESS, ProgressDelegate(table))
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(24)
        table.setAlternatingRowColors(True)
        table.setWordWrap(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)  # every column can be widened
        header.setStretchLastSection(True)  # the result takes what is left
        table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # a long name keeps its start and its number
        fm = table.fontMetrics()
        for column, text in ((NAME, "scan_0001_grandmother.jpg"), (TYPE, "frames"), (HINTS, "10 hints"),
                             (STATUS, "cancelled"),
                             (PROGRESS, "100%"), (RESULT, "→ film.mp4…")):
            table.setColumnWidth(column, fm.horizontalAdvance(text) + 28)
        table.addAction(self.remove_action)
        table.selectionModel().currentRowChanged.connect(lambda current, _: self._select_row(current.row()))
        return table

    def _build_layout(self) -> None:
        self.drop_zone = DropZone()
        self.drop_zone.dropped.connect(self.add_paths)
        self.drop_zone.add_files_clicked.connect(self.choose_files)
        self.drop_zone.add_folder_clicked.connect(self.choose_folder)
        self.drop_zone.add_frames_clicked.connect(self.choose_frame_folder)
        self.table = self._build_table()
        self.overall = QProgressBar()
        self.overall.setValue(0)
        self.eta_label = QLabel("Add photos to begin.")
        left = QWidget()
        layout = QVBoxLayout(left)
        layout.setContentsMargins(6, 6, 0, 6)
        for widget, stretch in ((self.drop_zone, 0), (self.table, 1), (self.viewer.details, 0), (self.overall, 0),
                                (self.eta_label, 0)):
            layout.addWidget(widget, stretch)

        settings_scroll = QScrollArea()
        settings_scroll.setWidget(self.settings_panel)
        settings_scroll.setWidgetResizable(True)
        settings_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        settings_scroll.setMinimumWidth(300)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        for i, (widget, stretch) in enumerate(((left, 0), (self.compare, 1), (settings_scroll, 0))):
            self.splitter.addWidget(widget)
            self.splitter.setStretchFactor(i, stretch)
        self.setCentralWidget(self.splitter)
        self._splitter_placed = False

        dock = QDockWidget("Log", self)
        dock.setObjectName("log-dock")
        dock.setWidget(self.log_view)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                         QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        self.resizeDocks([dock], [130], Qt.Orientation.Vertical)
        self.statusBar()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._splitter_placed:  # once the window has its real size
            self._splitter_placed = True
            state = _stored_bytes(self.store, "ui/splitter")
            if state is None or not self.splitter.restoreState(state):
                width = self.splitter.width()
                left, right = max(430, round(width * 0.31)), 330
                self.splitter.setSizes([left, max(240, width - left - right), right])

    # ------------------------------------------------------------------ queue
    def dragEnterEvent(self, event) -> None:
        if local_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    def ask_film_or_photos(self, folder: Path, sequence: FrameSequence) -> str | None:
        """A folder of numbered frames was added: "film", "photos" or None (tests replace this)."""
        return dialogs.ask_film_or_photos(self, folder, sequence)

    @property
    def adding(self) -> bool:
        """Whether a large drop is still being listed, its rows still coming (``adding_finished`` follows)."""
        return self.filler.busy

    def add_paths(self, paths: list[Path], *, as_frames: bool = False) -> list[QueueItem]:
        """Queue what can be colorized among ``paths`` (``as_frames``: each a folder of numbered frames,
        colorized as one film; a folder that holds one is asked about); refused inputs are reported.

        Up to :data:`SYNC_ADD_LIMIT` files are added at once and returned. More (an archive's folder), or a
        drop made while one is being added, are listed off the GUI thread and their rows come in chunks
        (:attr:`adding`; ``adding_finished`` says what became of them): nothing is returned then."""
        inputs = []
        for path in map(Path, paths):
            film = as_frames or (path.is_dir() and self._asked_film(path))
            if film is not None:
                inputs.append((path, film))
        plain = [path for path, film in inputs if not film]
        if self.filler.busy or count_files(plain, SYNC_ADD_LIMIT) > SYNC_ADD_LIMIT:
            self.filler.add(inputs)
            self._say_adding()
            return []
        was_empty = self.queue.rowCount() == 0
        items, refused = [], []
        for path, film in inputs:
            found, why = collect_frames(path) if film else collect([path])
            items += found
            refused += why
        added = self.queue.add(with_hint_counts(items))
        self._plan_film_outputs(added)
        self._rows_added(added, was_empty=was_empty)
        self._say_added(AddSummary(added, len(items) - len(added), refused))
        return added

    def _rows_added(self, added: list[QueueItem], *, was_empty: bool | None = None) -> None:
        """Rows just put in the queue (all of a small drop, or a chunk of a large one)."""
        if was_empty is None:
            was_empty = self.queue.rowCount() == len(added)
        if was_empty and added:
            self.table.selectRow(0)
        self._queue_changed()
        if self.filler.busy:
            self._say_adding()

    def _say_adding(self) -> None:
        n = self.filler.added_so_far()
        self.statusBar().showMessage(f"Adding… {n:,} item{'s' * (n != 1)} so far (the window can be used "
                                     "meanwhile; Clear stops it)")

    def _adding_done(self, summary: AddSummary) -> None:
        self._plan_film_outputs(summary.added)  # once for the whole drop, not a walk of its tree per chunk
        self._say_added(summary)
        self.adding_finished.emit(summary)
        if self._start_when_added:
            self._start_when_added = False
            self.start()

    def _say_added(self, summary: AddSummary) -> None:
        """The status bar and the log: what a drop came to."""
        added, refused = summary.added, summary.refused
        self.last_refused = refused
        for path, reason in refused:
            log.warning("not added: %s", reason if str(path) in reason else f"{path}: {reason}")
        parts = [f"added {len(added):,} item{'s' * (len(added) != 1)}"]
        if summary.already:
            parts.append(f"{summary.already:,} already queued")
        if refused:
            names = ", ".join(p.name for p, _ in refused[:3]) + (" …" if len(refused) > 3 else "")
            parts.append(f"refused {len(refused):,} ({names}; see the log for why)")
        self.statusBar().showMessage("; ".join(parts).capitalize(), 10000)

    def _asked_film(self, folder: Path) -> bool | None:
        sequence = film_in_folder(folder)
        if sequence is None:
            return False
        answer = self.ask_film_or_photos(folder, sequence)
        return None if answer is None else answer == "film"

    def _plan_film_outputs(self, items: list[QueueItem]) -> None:
        """Name the output of each film among ``items`` in its row (:func:`film_outputs`). In a queue of
        more than :data:`SYNC_ADD_LIMIT` rows (an archive: planning sniffs every file of the trees the
        films were found in again) off the GUI thread, for every film queued: the latest call's
        outputs are shown, with the settings of that call."""
        if not any(i.kind != TaskKind.IMAGE for i in items):
            return
        s = self.app_settings
        if self.queue.rowCount() <= SYNC_ADD_LIMIT:
            if self._naming.busy:  # being named with earlier settings: every film named here instead
                self._naming.forget()
                items = self.queue.items()
            self._show_film_outputs(film_outputs(items, s))
            return
        films = [i for i in self.queue.items() if i.kind != TaskKind.IMAGE]
        self._naming.call(lambda: film_outputs(films, s), self._show_film_outputs)

    def _show_film_outputs(self, outputs: dict[int, Path] | None, error: BaseException | None = None) -> None:
        if error is not None:
            log.warning("naming the films' outputs failed: %s", error, exc_info=error)
        self.queue.update_many({item_id: dict(output=output) for item_id, output in (outputs or {}).items()})

    def _queue_changed(self) -> None:
        if not self.runs.busy:
            self.runs.clock = None  # the last run's totals no longer describe the queue
        self._update_overall()

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add photos or videos", self._last_dir(), _FILE_FILTER)
        if files:
            self._remember_dir(Path(files[0]).parent)
            self.add_paths([Path(f) for f in files])

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder", self._last_dir())
        if folder:
            self._remember_dir(Path(folder).parent)
            self.add_paths([Path(folder)])

    def choose_frame_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of numbered frames", self._last_dir())
        if folder:
            self._remember_dir(Path(folder).parent)
            self.add_paths([Path(folder)], as_frames=True)

    def _last_dir(self) -> str:
        return str(self.store.value("ui/last_dir", str(Path.home())))

    def _remember_dir(self, folder: Path) -> None:
        self.store.setValue("ui/last_dir", str(folder))

    def remove_selected(self) -> None:
        if not self.running:
            self.queue.remove_rows([i.row() for i in self.table.selectionModel().selectedRows()])
            self._select_row(self.table.currentIndex().row())
            self._queue_changed()

    def clear_queue(self) -> None:
        if not self.running:
            self.filler.cancel()  # a drop still being added stops too
            self._planning.forget()  # and a Start being prepared
            self._naming.forget()
            self._start_when_added = False
            self.start_action.setEnabled(True)
            self.queue.clear()
            self.viewer.clear()
            self.hints.show_item(None)
            self._queue_changed()

    # ------------------------------------------------------------------ settings
    @property
    def app_settings(self) -> AppSettings:
        return self.settings_panel.settings()

    def _settings_changed(self, s: AppSettings) -> None:
        app_settings.save(self.store, s)
        if not self.running:
            self._plan_film_outputs(self.queue.items())
        self.hints.settings_changed()

    def _backends_found(self, detection: Detection) -> None:
        if self.settings_panel.detection is detection:  # found before the signal was connected: shown once
            return
        self.settings_panel.set_detection(detection)
        log.info("can run here: %s", ", ".join(BACKEND_LABELS[c] for c in detection.usable()))

    # ------------------------------------------------------------------ run
    @property
    def running(self) -> bool:
        return self.runs.busy

    @property
    def state(self) -> RunState:
        return self.runs.state

    def start(self) -> None:
        """Colorize the queue. The outputs of up to :data:`SYNC_ADD_LIMIT` rows are planned at once; more
        (an archive: every file is opened again) off the GUI thread, and the run starts when they are."""
        if self.runs.busy or self._planning.busy:
            return
        if self.filler.busy:  # the rest of a drop is still coming: the run takes it all
            self._start_when_added = True
            self.statusBar().showMessage("Starts as soon as every file dropped is in the queue…")
            return
        s = self.app_settings
        pending = [i for i in self.queue.items() if s.overwrite or i.status not in (DONE, SKIPPED)]
        if not pending:
            self.statusBar().showMessage("Nothing to colorize: add photos, or turn on “Redo files whose output "
                                         "exists” to run finished items again.", 10000)
            return
        app_settings.save(self.store, s)

        def plan():
            return plan_run(pending, s.output_folder, parse_format_option(s.output_format),
                            s.video_settings().encoding)

        if len(pending) <= SYNC_ADD_LIMIT:
            try:
                self._start_planned(pending, s, plan(), None)
            except OSError as exc:
                self._start_planned(pending, s, None, exc)
            return
        self.start_action.setEnabled(False)
        self.statusBar().showMessage(f"Preparing {len(pending):,} files (where each output goes)…")
        self._planning.call(plan, lambda planned, error: self._start_planned(pending, s, planned, error))

    def _start_planned(self, pending: list[QueueItem], s: AppSettings, planned_refused, error) -> None:
        """The run of ``pending`` as planned (``error``: why it could not be): rows removed meanwhile are left out."""
        self.start_action.setEnabled(not self.runs.busy)
        if error is not None:
            if not isinstance(error, OSError):
                log.error("planning the run failed", exc_info=error)
            self.statusBar().showMessage(f"Cannot start: {error}", 15000)
            return
        planned, refused = planned_refused
        pending = [item for item in pending if self.queue.item_by_id(item.id) is item]
        self.queue.update_many({item_id: dict(status=FAILED, progress=0, message=reason)
                                for item_id, reason in refused.items()})
        queued = [QueuedTask(item.id, planned[item.id]) for item in pending if item.id in planned]
        if not queued:
            self.statusBar().showMessage("Nothing to colorize: every item was refused (see the details).")
            return
        self.queue.update_many({q.item_id: dict(status=QUEUED, progress=0, message="", output=film_output(q.task, s))
                                for q in queued})
        if self.runs.start(queued, s):
            self.settings_panel.show_backend("opening…")
            log.info("colorizing %d item(s) into %s", len(queued), s.output_folder)
            for item in self.hints.unsaved_items():
                log.warning("%s: its hints could not be saved beside it: colorized without them", item.source)
            self.run_started.emit()

    def set_paused(self, paused: bool) -> None:
        if paused:
            self.runs.pause()
        else:
            self.runs.resume()
        self._state_changed(self.runs.state, self.runs.state)  # a refused request leaves the button as it was

    def cancel_run(self) -> None:
        self.runs.cancel()

    def _state_changed(self, _old: RunState, new: RunState) -> None:
        busy = new != IDLE
        pausing = new in (PAUSING, PAUSED)
        self.start_action.setEnabled(not busy)
        self.pause_action.setEnabled(new in ACTIVE)
        self.pause_action.setChecked(pausing)
        self.pause_action.setText("Resume" if pausing else "Pause")
        self.pause_action.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPlay if pausing else QStyle.StandardPixmap.SP_MediaPause))
        self.cancel_action.setEnabled(new in ACTIVE)
        for widget in (self.remove_action, self.clear_action, self.settings_panel):
            widget.setEnabled(not busy)
        if new in STATE_MESSAGES:
            self.statusBar().showMessage(STATE_MESSAGES[new])
        elif _old in (PAUSING, PAUSED) and new != IDLE:
            self.statusBar().showMessage("Resumed.", 3000)
        if busy:
            self._timer.start()
        else:
            self._timer.stop()
        self._update_overall()

    # ------------------------------------------------------------------ worker signals (GUI thread)
    def _backend_ready(self, name: str) -> None:
        self._close_engine_dialog()
        self.settings_panel.show_backend(name)
        self.statusBar().showMessage(f"Running on {name}", 5000)
        log.info("backend in use: %s", name)

    def _engine_progress(self, phase: str, step: int, total: int) -> None:
        if self._engine_dialog is None:
            self._engine_dialog = EngineBuildDialog(self, self.cancel_run)
        self._engine_dialog.show_progress(phase, step, total)

    def _close_engine_dialog(self) -> None:
        if self._engine_dialog is not None:
            self._engine_dialog.canceled.disconnect()
            self._engine_dialog.close()
            self._engine_dialog.deleteLater()
            self._engine_dialog = None

    def _item_progress(self, item_id: int, progress) -> None:
        """A film's frame progress (every frame: hundreds a second on a fast backend): the overall bar at
        once, its row (the table's repaint, the details of the row shown) at most every
        PROGRESS_INTERVAL_MS (:meth:`_show_film_progress`)."""
        if progress.fraction is not None:
            self.queue.set_progress(item_id, progress.fraction)
            if not self._progress_timer.isActive():
                self._progress_timer.start()
        self._update_overall()

    def _show_film_progress(self) -> None:
        """The films' rows whose frame progress changed since they were shown: one ``dataChanged``."""
        self.queue.show_progress()

    def _item_finished(self, item_id: int, result: FileResult, finished: int, total: int) -> None:
        self.queue.apply_result(item_id, result)
        if result.status == FAILED:
            log.warning("failed: %s", result.reason)
        self._update_overall()
        current = self._current_item()
        if current is not None and current.id == item_id:
            self._select_row(self.table.currentIndex().row())
        self.item_finished.emit(item_id, result, finished, total)

    def _run_finished(self, outcome: WorkerOutcome) -> None:
        self._close_engine_dialog()
        self._show_film_progress()  # a film's last frames, before what became of the run is said
        self._progress_timer.stop()
        queued = self.runs.queued
        if outcome.error:
            for q in queued:
                self.queue.update(q.item_id, status=FAILED, message=outcome.error)
            self.settings_panel.show_backend("—")
            self.statusBar().showMessage(f"Could not start: {outcome.error.splitlines()[0]} (see the details)")
            self.runs.clock = None
        else:
            finished = {r.input for r in outcome.results}
            for q in queued:  # nothing should be left "queued"; be safe anyway
                item = self.queue.item_by_id(q.item_id)
                if item is not None and item.status in (QUEUED, WORKING) and q.task.source not in finished:
                    self.queue.update(q.item_id, status=WAITING)
            text = self.runs.clock.counts_text().split(" · ", 1)[-1] if self.runs.clock else ""
            where = f" on {outcome.backend}" if outcome.backend else ""
            report = f"; report: {Path(outcome.report).name}" if outcome.report else ""
            self.statusBar().showMessage(("Cancelled: " if outcome.cancelled else "Finished: ") + text + where + report)
        self._update_overall()
        self._select_row(self.table.currentIndex().row())
        self.run_finished.emit(outcome)
        if self.runs.close_when_done:
            QTimer.singleShot(0, self.close)

    def _update_overall(self) -> None:
        clock = self.runs.clock
        if clock is None:
            n = self.queue.rowCount()
            self.overall.setRange(0, 1)
            self.overall.setValue(0)
            self.overall.setFormat(f"{n} in the queue" if n else "")
            self.eta_label.setText("Ready." if n else "Add photos to begin.")
            return
        value, maximum = clock.bar()
        self.overall.setRange(0, maximum)
        self.overall.setValue(value)
        text = clock.counts_text()
        if self.runs.busy and clock.films:
            text += f" · {100 * value // maximum} %"
        self.overall.setFormat(text)  # only %p, %v and %m are placeholders
        state = self.runs.state
        parts = [format_duration(clock.elapsed())]
        if state == IDLE:
            parts = ["took " + parts[0]]
        elif state in (PAUSING, PAUSED):
            parts.insert(0, "paused" if state == PAUSED else "pausing")
        elif state in (CANCELLING, CLOSING):
            parts.insert(0, "stopping")
        else:
            parts.append(clock.film_text())
            eta = clock.eta()
            parts.append(f"about {format_duration(eta)} left" if eta is not None else "estimating…")
        self.eta_label.setText(" · ".join(p for p in parts if p))

    # ------------------------------------------------------------------ viewer
    def _current_item(self) -> QueueItem | None:
        row = self.table.currentIndex().row()
        return self.queue.item(row) if 0 <= row < self.queue.rowCount() else None

    def _select_row(self, row: int) -> None:
        item = self.queue.item(row) if 0 <= row < self.queue.rowCount() else None
        self.viewer.show(item)
        self.hints.show_item(item)

    def _row_changed(self, top_left, bottom_right, _roles=()) -> None:
        row = self.table.currentIndex().row()
        if top_left.row() <= row <= bottom_right.row():  # one row, or many (a Start: one signal for all)
            self.viewer.item_changed(self.queue.item(row))

    def show_result_in_folder(self) -> None:
        item = self._current_item()
        result = self.viewer.result_path(item) if item is not None else None
        if result is None:
            self.statusBar().showMessage("The selected item has no result yet.", 8000)
            return
        self._open_folder(result if result.is_dir() else result.parent, result)

    def open_output_folder(self) -> None:
        folder = self.app_settings.output_folder
        if not folder.is_dir():
            self.statusBar().showMessage(f"{folder} does not exist yet: it is created by the first run.", 8000)
            return
        self._open_folder(folder, folder)

    def _open_folder(self, folder: Path, shown: Path) -> bool:
        """Open ``folder`` in the file manager; where nothing can, say so and copy ``shown``'s path."""
        if self.open_url(QUrl.fromLocalFile(str(folder))):
            self.statusBar().showMessage(f"Opened {folder}", 5000)
            return True
        QApplication.clipboard().setText(str(shown))
        message = (f"No file manager could open {folder} (none is set up on this computer). "
                   f"The path {shown} is copied to the clipboard.")
        log.warning("%s", message)
        self.statusBar().showMessage(message, 20000)
        return False

    # ------------------------------------------------------------------ closing
    def confirm_stop(self) -> bool:
        """Ask whether to stop the run in progress and quit (tests replace this)."""
        return dialogs.confirm_stop(self, self.run_finished)

    def closeEvent(self, event) -> None:
        if self.runs.busy:
            if self.runs.state != CLOSING and not self.confirm_stop():
                event.ignore()
                return
            if not self.runs.close():  # still running (the run may have ended while the question was open)
                event.ignore()
                return
        app_settings.save(self.store, self.app_settings)
        self.store.setValue("ui/geometry", self.saveGeometry())
        self.store.setValue("ui/splitter", self.splitter.saveState())
        self.store.sync()
        logging.getLogger("colorizer").removeHandler(self._log_handler)
        self.filler.cancel()
        for call in (self._planning, self._naming):
            call.forget()
        self.filler.wait()
        for call in (self._planning, self._naming):
            call.wait()
        self.viewer.wait()
        self.hints.close()
        super().closeEvent(event)
