"""The main window: queue, before/after viewer, settings, log; runs go to a worker thread."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QThread, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QStyle,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from colorizer.desktop.app import settings as app_settings
from colorizer.desktop.app.compare_view import ComparePanel, FrameSource
from colorizer.desktop.app.drop_zone import DropZone, local_paths
from colorizer.desktop.app.engine_dialog import EngineBuildDialog
from colorizer.desktop.app.inputs import collect, collect_frames, plan_run
from colorizer.desktop.app.log_view import LogView
from colorizer.desktop.app.preview import FrameFolderFrames, PreviewLoader
from colorizer.desktop.app.queue_model import (
    DONE,
    ERROR,
    FAILED,
    NAME,
    PROGRESS,
    QUEUED,
    SKIPPED,
    STATUS,
    TYPE,
    WAITING,
    WORKING,
    ProgressDelegate,
    QueueItem,
    QueueModel,
)
from colorizer.desktop.app.run_clock import RunClock, format_duration
from colorizer.desktop.app.settings import AppSettings
from colorizer.desktop.app.settings_panel import SettingsPanel
from colorizer.desktop.app.worker import OpenBackend, QueuedTask, RunControl, RunWorker, WorkerOutcome
from colorizer.desktop.core import TaskKind
from colorizer.desktop.media.formats import parse_format_option
from colorizer.desktop.pipeline.frames import find_frame_sequences
from colorizer.desktop.pipeline.report import FileResult, summarize

log = logging.getLogger("colorizer.app")

FILE_FILTER = ("Photos and videos (*.jpg *.jpeg *.png *.tif *.tiff *.webp *.bmp *.mp4 *.mkv *.mov *.avi *.webm);;"
               "All files (*)")
QUEUED_CONNECTION = Qt.ConnectionType.QueuedConnection


class MainWindow(QMainWindow):
    run_started = Signal()
    item_finished = Signal(int, object, int, int)  # item id, FileResult, finished count, total (GUI thread)
    run_finished = Signal(object)  # WorkerOutcome

    def __init__(self, store: QSettings, open_backend: OpenBackend | None = None, parent=None) -> None:
        super().__init__(parent)
        self.store = store
        self._open_backend = open_backend  # None: the runtime's open_backend (tests inject another)
        self._thread: QThread | None = None
        self._worker: RunWorker | None = None
        self._control: RunControl | None = None
        self._clock: RunClock | None = None
        self._engine_dialog: EngineBuildDialog | None = None
        self._close_when_stopped = False
        self.last_refused: list[tuple[Path, str]] = []
        self.last_outcome: WorkerOutcome | None = None

        self.setWindowTitle("Colorizer")
        self.setAcceptDrops(True)
        self.queue = QueueModel(self)
        self.settings_panel = SettingsPanel(app_settings.load(store))
        self.settings_panel.changed.connect(self._settings_changed)
        self.compare = ComparePanel()
        self.preview = PreviewLoader(self)
        self.preview.ready.connect(self._show_preview)
        self.log_view = LogView()
        self._log_handler = self.log_view.attach(logging.getLogger("colorizer"))

        self._build_actions()
        self._build_layout()
        self._timer = QTimer(self, interval=1000)
        self._timer.timeout.connect(self._update_overall)
        self._set_running(False)
        geometry = store.value("ui/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)

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
                                          sp.SP_MediaStop, "Stop after the files in progress")
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

    def _build_layout(self) -> None:
        self.drop_zone = DropZone()
        self.drop_zone.dropped.connect(self.add_paths)
        self.drop_zone.add_files_clicked.connect(self.choose_files)
        self.drop_zone.add_folder_clicked.connect(self.choose_folder)
        self.drop_zone.add_frames_clicked.connect(self.choose_frame_folder)

        self.table = QTableView()
        self.table.setModel(self.queue)
        self.table.setItemDelegateForColumn(PROGRESS, ProgressDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(False)
        for column, width in ((TYPE, 54), (STATUS, 70), (PROGRESS, 86), (ERROR, 110)):
            self.table.setColumnWidth(column, width)
        self.table.addAction(self.remove_action)
        self.table.selectionModel().currentRowChanged.connect(lambda current, _: self._select_row(current.row()))

        self.overall = QProgressBar()
        self.overall.setFormat("%v / %m")
        self.overall.setValue(0)
        self.eta_label = QLabel("Add photos to begin.")
        row = QHBoxLayout()
        row.addWidget(self.overall, 1)
        row.addWidget(self.eta_label)
        left = QWidget()
        layout = QVBoxLayout(left)
        layout.setContentsMargins(6, 6, 0, 6)
        layout.addWidget(self.drop_zone)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)

        settings_scroll = QScrollArea()
        settings_scroll.setWidget(self.settings_panel)
        settings_scroll.setWidgetResizable(True)
        settings_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        settings_scroll.setMinimumWidth(300)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.compare)
        self.splitter.addWidget(settings_scroll)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setStretchFactor(2, 0)
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
            state = self.store.value("ui/splitter")
            if state is None or not self.splitter.restoreState(state):
                width = self.splitter.width()
                left, right = max(430, round(width * 0.31)), 320
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

    def add_paths(self, paths: list[Path], *, as_frames: bool = False) -> list[QueueItem]:
        """Queue what can be colorized among ``paths`` (``as_frames``: each a folder of numbered frames,
        colorized as one film); refused inputs are reported, not queued."""
        was_empty = self.queue.rowCount() == 0
        if as_frames:
            items, refused = [], []
            for folder in paths:
                found, why = collect_frames(folder)
                items += found
                refused += why
        else:
            items, refused = collect(paths)
        added = self.queue.add(items)
        self.last_refused = refused
        for path, reason in refused:
            log.warning("not added: %s", reason if str(path) in reason else f"{path}: {reason}")
        parts = [f"added {len(added)} item{'s' * (len(added) != 1)}"]
        if len(items) > len(added):
            parts.append(f"{len(items) - len(added)} already queued")
        if refused:
            names = ", ".join(p.name for p, _ in refused[:3]) + (" …" if len(refused) > 3 else "")
            parts.append(f"refused {len(refused)} ({names}; see the log for why)")
        self.statusBar().showMessage("; ".join(parts).capitalize(), 10000)
        if was_empty and added:
            self.table.selectRow(0)
        self._queue_changed()
        return added

    def _queue_changed(self) -> None:
        if not self.running:
            self._clock = None  # the last run's totals no longer describe the queue
        self._update_overall()

    def choose_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add photos or videos", self._last_dir(), FILE_FILTER)
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
            self._queue_changed()

    def clear_queue(self) -> None:
        if not self.running:
            self.queue.clear()
            self.compare.view.clear()
            self._queue_changed()

    # ------------------------------------------------------------------ settings
    @property
    def app_settings(self) -> AppSettings:
        return self.settings_panel.settings()

    def _settings_changed(self, s: AppSettings) -> None:
        app_settings.save(self.store, s)

    # ------------------------------------------------------------------ run
    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self.running:
            return
        s = self.app_settings
        pending = [i for i in self.queue.items() if s.overwrite or i.status not in (DONE, SKIPPED)]
        if not pending:
            self.statusBar().showMessage("Nothing to colorize: add photos, or turn on “Redo files whose output "
                                         "exists” to run finished items again.", 10000)
            return
        app_settings.save(self.store, s)
        try:
            planned, refused = plan_run(pending, s.output_folder, parse_format_option(s.output_format),
                                        s.video_settings().encoding)
        except OSError as exc:
            self.statusBar().showMessage(f"Cannot start: {exc}", 15000)
            return
        for item_id, reason in refused.items():
            self.queue.update(item_id, status=FAILED, progress=0, message=reason)
        queued = [QueuedTask(item.id, planned[item.id]) for item in pending if item.id in planned]
        if not queued:
            self.statusBar().showMessage("Nothing to colorize: every item was refused (see the Error column).")
            return
        for q in queued:
            self.queue.update(q.item_id, status=QUEUED, progress=0, message="")
        self._control = RunControl()
        self._worker = RunWorker(queued, s, self._control, self._open_backend)
        self._thread = QThread(self)
        self._worker.moveToThread(self._thread)
        w = self._worker
        w.backend_ready.connect(self._backend_ready, QUEUED_CONNECTION)
        w.engine_progress.connect(self._engine_progress, QUEUED_CONNECTION)
        w.item_started.connect(self._item_started, QUEUED_CONNECTION)
        w.item_progress.connect(self._item_progress, QUEUED_CONNECTION)
        w.item_finished.connect(self._item_finished, QUEUED_CONNECTION)
        w.finished.connect(self._run_finished, QUEUED_CONNECTION)
        self._thread.started.connect(w.run)
        self._clock = RunClock(len(queued))
        self.settings_panel.show_backend("opening…")
        self._set_running(True)
        log.info("colorizing %d item(s) into %s", len(queued), s.output_folder)
        self._thread.start()
        self.run_started.emit()

    def set_paused(self, paused: bool) -> None:
        if self._control is None or self._control.cancelled:
            self.pause_action.setChecked(False)
            return
        if paused:
            self._control.pause()
            self.statusBar().showMessage("Paused: the run waits after the batch in progress.")
        else:
            self._control.resume()
            self.statusBar().showMessage("Resumed.", 3000)
        self.pause_action.setChecked(paused)
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_action.setIcon(self.style().standardIcon(
            QStyle.StandardPixmap.SP_MediaPlay if paused else QStyle.StandardPixmap.SP_MediaPause))
        self._clock.pause(paused)
        self._update_overall()

    def cancel_run(self) -> None:
        if self._control is None or self._control.cancelled:
            return
        self._control.cancel()
        if self._clock is not None:
            self._clock.pause(False)
        self.cancel_action.setEnabled(False)
        self.pause_action.setEnabled(False)
        self.statusBar().showMessage("Stopping after the files in progress (no half-written file is left)…")
        log.info("cancel requested")

    def _set_running(self, running: bool) -> None:
        self.start_action.setEnabled(not running)
        self.pause_action.setEnabled(running)
        self.pause_action.setChecked(False)
        self.pause_action.setText("Pause")
        self.pause_action.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        self.cancel_action.setEnabled(running)
        self.remove_action.setEnabled(not running)
        self.clear_action.setEnabled(not running)
        self.settings_panel.setEnabled(not running)
        if running:
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

    def _item_started(self, item_id: int) -> None:
        self.queue.update(item_id, status=WORKING)

    def _item_progress(self, item_id: int, fraction: float) -> None:
        self.queue.update(item_id, progress=fraction)

    def _item_finished(self, item_id: int, result: FileResult, finished: int, total: int) -> None:
        self.queue.apply_result(item_id, result)
        if result.status == FAILED:
            log.warning("failed: %s", result.reason)
        if self._clock is not None:
            self._clock.add(result)
        self._update_overall()
        if self._current_item() is not None and self._current_item().id == item_id:
            self._select_row(self.table.currentIndex().row())
        self.item_finished.emit(item_id, result, finished, total)

    def _run_finished(self, outcome: WorkerOutcome) -> None:
        self._close_engine_dialog()
        self.last_outcome = outcome
        queued = self._worker.queued if self._worker else []
        if outcome.error:
            for q in queued:
                self.queue.update(q.item_id, status=FAILED, message=outcome.error)
            self.settings_panel.show_backend("—")
            self.statusBar().showMessage(f"Could not start: {outcome.error}", 30000)
        else:
            finished = {r.input for r in outcome.results}
            for q in queued:  # nothing should be left "queued"; be safe anyway
                item = self.queue.item_by_id(q.item_id)
                if item is not None and item.status in (QUEUED, WORKING) and q.task.source not in finished:
                    self.queue.update(q.item_id, status=WAITING)
            counts = summarize(outcome.results)
            text = (f"{counts['done']} colorized, {counts['skipped']} skipped, {counts['failed']} failed"
                    + (f", {counts['cancelled']} cancelled" if counts["cancelled"] else "")
                    + (f" on {outcome.backend}" if outcome.backend else ""))
            self.statusBar().showMessage(("Cancelled: " if outcome.cancelled else "Finished: ") + text)
        self._thread.quit()
        self._thread.wait()
        self._worker.deleteLater()
        self._thread.deleteLater()
        self._thread = self._worker = self._control = None
        self._set_running(False)
        self.run_finished.emit(outcome)
        if self._close_when_stopped:
            self.close()

    def _update_overall(self) -> None:
        clock = self._clock
        if clock is None:
            n = self.queue.rowCount()
            self.overall.setRange(0, max(1, n))
            self.overall.setValue(0)
            self.overall.setFormat("%v / %m" if n else "")
            self.eta_label.setText(f"{n} in the queue" if n else "Add photos to begin.")
            return
        self.overall.setFormat("%v / %m")
        self.overall.setRange(0, max(1, clock.total))
        self.overall.setValue(clock.finished)
        elapsed = format_duration(clock.elapsed())
        if not self.running:
            self.eta_label.setText(f"took {elapsed}")
        elif clock.paused_at is not None:
            self.eta_label.setText(f"paused · {elapsed}")
        else:
            eta = clock.eta()
            self.eta_label.setText(f"{elapsed} · " + (f"about {format_duration(eta)} left" if eta is not None
                                                      else "estimating…"))

    # ------------------------------------------------------------------ viewer
    def _current_item(self) -> QueueItem | None:
        row = self.table.currentIndex().row()
        return self.queue.item(row) if 0 <= row < self.queue.rowCount() else None

    def _select_row(self, row: int) -> None:
        if not 0 <= row < self.queue.rowCount():
            self.compare.view.clear()
            self.compare.caption.setText("")
            return
        item = self.queue.item(row)
        self.compare.caption.setText(str(item.source) + (f"  →  {item.output}" if item.status == DONE else ""))
        if item.kind != TaskKind.IMAGE:
            try:
                frames = self._video_frames(item)
                self.compare.set_frame_source(frames)
            except Exception as exc:  # an unreadable frame must not take the window down
                log.warning("cannot show %s: %s", item.source, exc)
                frames = None
                self.compare.set_frame_source(None)
            if frames is None:
                self.compare.view.clear(f"{item.source.name}: the before/after view of videos is not available "
                                        "yet; open the result in a video player.")
            return
        self.compare.set_frame_source(None)
        self.preview.request(item.source, item.output if item.status == DONE else None)

    def _video_frames(self, item: QueueItem) -> FrameSource | None:
        """Frames for the scrubber: a frame folder's numbered files (and their results when done).

        Videos: the hook is here; a FrameSource that decodes frame i of the source and of the
        result (e.g. with PyAV, seeking to the frame's timestamp) plugs in the same way.
        """
        if item.kind != TaskKind.FRAMES:
            return None
        try:
            sequences = find_frame_sequences(item.source)
        except OSError:
            return None
        if len(sequences) != 1:
            return None
        return FrameFolderFrames(list(sequences[0].frames), item.output if item.status == DONE else None)

    def _show_preview(self, before, after, message: str) -> None:
        item = self._current_item()
        if message:
            self.compare.view.clear(message)
            return
        if after is None and item is not None:
            message = {FAILED: "Failed (see the Error column)", SKIPPED: "Skipped"}.get(item.status,
                                                                                        "Not colorized yet")
        self.compare.view.set_images(before, after, message=message)

    def open_output_folder(self) -> None:
        folder = self.app_settings.output_folder
        if not folder.is_dir():
            self.statusBar().showMessage(f"{folder} does not exist yet: it is created by the first run.", 8000)
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # ------------------------------------------------------------------ closing
    def confirm_stop(self) -> bool:
        """Ask whether to stop the run in progress and quit (tests replace this)."""
        answer = QMessageBox.question(self, "Stop colorizing?",
                                      "A run is in progress. Stop it and quit?\n\nFiles being written are "
                                      "finished first; the rest are colorized the next time you start.",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:
        if self.running:
            if self._close_when_stopped or self.confirm_stop():
                self._close_when_stopped = True
                self.cancel_run()
                self.statusBar().showMessage("Stopping… the window closes when the files in progress are written.")
            event.ignore()
            return
        app_settings.save(self.store, self.app_settings)
        self.store.setValue("ui/geometry", self.saveGeometry())
        self.store.setValue("ui/splitter", self.splitter.saveState())
        self.store.sync()
        logging.getLogger("colorizer").removeHandler(self._log_handler)
        self.preview.wait()
        super().closeEvent(event)
