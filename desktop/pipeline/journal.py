"""The output folder's journal: which outputs a run finished, and which runs are using the folder.

``OUTPUT/.colorize-journal.jsonl`` gets one line per output, appended (and fsynced) right after
the output was written, verified and renamed: its path relative to the output folder, its size and
modification time. A re-run skips an output only when

* the journal lists it with the size and time it has on disk, or
* it is not listed (written by an older version, or the run was killed between the rename and the
  journal line) but decodes completely; it is then listed.

A line also holds the digest of the color hints the output was made with (``"hints"``, absent when
it had none): an output whose hints have changed since (a sidecar added, edited or removed, or
``--no-hints``) is redone, and an unlisted output is taken as finished only when it has no hints.

Anything else under a final name (a truncated file an older version left when the disk filled, a
file changed since) is redone. One run at a time writes to an output folder: a run holds an
exclusive ``flock`` on ``OUTPUT/.colorize-run.lock`` while it runs, with a line saying who it is
(process, start time, command); a second run started into the same folder stops before it decodes
anything or writes a report, with :class:`OutputFolderBusy` naming the first (two runs used to
colorize every file twice, and the second report replaced the first). The run holding the lock
removes the temporary ``.partial`` files that killed runs left in the folders it writes to, and
compacts the journal. The kernel drops the lock of a killed process, so a ``kill -9`` never blocks
the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from colorizer.desktop.core import TaskKind
from colorizer.errors import ColorizerError
from colorizer.fileio import atomic_write, is_partial_file, remove_quietly, write_all

log = logging.getLogger(__name__)

JOURNAL_NAME = ".colorize-journal.jsonl"
LOCK_NAME = ".colorize-run.lock"
JOURNAL_VERSION = 1

Validator = Callable[[Path], bool]


class OutputFolderBusy(ColorizerError):
    """Another run is writing to the output folder; the message names it and what to do."""

    def __init__(self, folder: Path, holder: str) -> None:
        super().__init__(f"another run is writing to {folder} ({holder or 'a process that did not say who it is'}): "
                         "wait for it to finish, or choose another output folder")
        self.folder, self.holder = folder, holder


def _holder_info(fd: int) -> dict:
    """What the run that holds (or last held) the lock wrote in it: pid, start, command, inputs in flight."""
    try:
        size = os.fstat(fd).st_size
        info = json.loads(os.pread(fd, size, 0).decode("utf-8", errors="replace") or "{}") if size else {}
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        return {}


def _holder_text(info: dict) -> str:
    """A run, in words, from what it wrote in the lock (empty if it wrote nothing usable)."""
    try:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        return f"process {int(info['pid'])}, started {when}: {info.get('command', '?')}"
    except (ValueError, KeyError, TypeError):
        return ""


def _claim(fd: int, folder: Path) -> dict:
    """Take the folder's run lock for this process or raise :class:`OutputFolderBusy`; returns what
    the previous holder left in it (a run that ended cleanly leaves nothing in flight)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputFolderBusy(folder, _holder_text(_holder_info(fd))) from None
    return _holder_info(fd)


def _open_lock(path: Path) -> int:
    """The run lock's file, open to lock it: read and write (to say who holds it), or, where this process
    may not write it (another user's, read-only), read only: ``flock`` works on that too, so the folder
    is still one run's at a time (the holder then says nothing about itself)."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            raise exc from None
        log.info("the run lock %s cannot be written (%s): locked read-only", path, exc.strerror or exc)
        return fd


def _command_line() -> str:
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:1000] if sys.argv and sys.argv[0] else "?"


def other_run(folder: Path) -> str | None:
    """The run writing to ``folder`` now, in words (None: none), without taking the folder: for a
    message before a run loads its model (:meth:`RunJournal.open` is the check that counts)."""
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return _holder_text(_holder_info(fd)) or "another process"
    except OSError:
        return None
    finally:
        os.close(fd)  # releases a lock taken here


def _image_is_complete(path: Path) -> bool:
    from colorizer.desktop.media.image_read import DECODER_MAX_PIXELS, read_image

    try:
        read_image(path, max_pixels=DECODER_MAX_PIXELS)  # as large as a run may write (the memory decides)
        return True
    except Exception as exc:  # noqa: BLE001 - any failure means "redo it"
        log.info("%s is not a complete image (%s): it will be redone", path, exc)
        return False


def _video_is_complete(path: Path) -> bool:
    from colorizer.desktop.media.video_source import verify_video

    reason = verify_video(path)
    if reason:
        log.info("%s is not a complete video (%s): it will be redone", path, reason)
    return reason is None


VALIDATORS: dict[TaskKind, Validator] = {TaskKind.IMAGE: _image_is_complete, TaskKind.VIDEO: _video_is_complete,
                                         TaskKind.FRAMES: _image_is_complete}


class RunJournal:
    """The journal and run marker of one output folder, for one run (thread-safe)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, int]] = {}
        self._hints: dict[str, str] = {}  # output -> digest of the hints it was made with (absent: none)
        self._marker = -1
        self._journal = -1
        self._lines = 0  # lines in the journal file when it was read
        self._in_flight: set[str] = set()  # inputs between their first read and their result
        self._identity = {"pid": os.getpid(), "started": time.time(), "command": _command_line()}
        self.previous_run: dict | None = None  # a run that died here: who it was, what it was working on

    @classmethod
    def open(cls, root: Path, folders: Iterable[Path] = ()) -> RunJournal:
        """Take ``root`` for this run (:class:`OutputFolderBusy` if another run has it), remove the
        temporary files killed runs left in ``folders`` (the folders this run writes to) and compact
        the journal."""
        journal = cls(root)
        root.mkdir(parents=True, exist_ok=True)
        journal._marker = _open_lock(root / LOCK_NAME)
        try:
            previous = _claim(journal._marker, root)
        except BaseException:
            journal.close()
            raise
        if previous.get("in_flight"):  # it died (a crash, kill -9, a second Ctrl-C) with these unfinished
            journal.previous_run = {"run": _holder_text(previous), "in_flight": list(previous["in_flight"])}
            log.warning("the last run in %s (%s) stopped while working on %s: %s done again now if not finished",
                        root, journal.previous_run["run"] or "unknown", ", ".join(previous["in_flight"]),
                        "it is" if len(previous["in_flight"]) == 1 else "they are")
        journal._publish()
        journal._load()
        removed = remove_leftovers({root, *folders})
        if removed:
            log.info("removed %d temporary files left by an interrupted run", removed)
        journal._compact()
        journal._open_for_appending()
        return journal

    def _open_for_appending(self) -> None:
        """Open the journal to append to it. One this process may not write (another user's, read-only) is
        replaced by a copy of its own (the folder is writable); if even that fails, the run goes on and
        the next run checks this run's outputs by decoding them."""
        path = self.root / JOURNAL_NAME
        for attempt in range(2):
            try:
                self._journal = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                return
            except OSError as exc:
                if attempt or not self._compact(force=True):
                    log.warning("cannot add to the journal %s (%s): the next run checks this run's outputs by "
                                "decoding them", path, exc.strerror or exc)

    @classmethod
    def read_only(cls, root: Path) -> RunJournal:
        """The journal of ``root`` as it is, without taking the folder or writing anything (what a run
        would find there: ``--dry-run``); outputs it finds finished are remembered, not listed."""
        journal = cls(root)
        journal._load()
        return journal

    def lists(self, output: Path) -> bool:
        """Whether ``output`` is listed as finished, as it is now on disk (made with whichever hints)."""
        stat = file_state(output)
        with self._lock:
            return stat is not None and self._entries.get(self._key(output)) == stat

    def _key(self, path: Path) -> str:
        path = Path(os.path.abspath(path))
        try:
            return str(path.relative_to(os.path.abspath(self.root)))
        except ValueError:
            return str(path)

    def _load(self) -> None:
        try:
            text = (self.root / JOURNAL_NAME).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        except OSError as exc:  # unreadable: every output is checked again
            log.warning("could not read the journal in %s: %s", self.root, exc)
            return
        lines = text.splitlines()
        self._lines = len(lines)
        for line in lines:
            try:
                entry = json.loads(line)
                self._entries[entry["output"]] = (int(entry["size"]), int(entry["mtime_ns"]))
                self._set_hints(entry["output"], entry.get("hints"))
            except (ValueError, KeyError, TypeError, RecursionError):
                continue  # a line cut short by a kill (or garbled): that output is checked again

    def _compact(self, force: bool = False) -> bool:
        """Rewrite the journal with the entries that still match the disk (the run holds the folder);
        ``force``: even when they all do. Whether it was rewritten."""
        kept = {k: v for k, v in self._entries.items() if file_state(self.root / k) == v}
        if len(kept) == self._lines and not force:
            return False
        self._entries = kept
        try:
            atomic_write(self.root / JOURNAL_NAME,
                         "".join(_line(k, v, self._hints.get(k)) for k, v in sorted(kept.items())).encode())
            return True
        except OSError as exc:
            log.warning("could not compact the journal in %s: %s", self.root, exc)
            return False

    def done(self, output: Path, kind: TaskKind = TaskKind.IMAGE, hints: str | None = None) -> bool:
        """Whether ``output`` is a finished output made with the hints of digest ``hints`` (None: no
        hints): journaled as it is now with those hints, or (with no hints) complete when checked."""
        stat = file_state(output)
        if stat is None:
            return False
        key = self._key(output)
        with self._lock:
            if self._entries.get(key) == stat:
                return self._hints.get(key) == hints
        if hints is not None:  # not listed: whether it was made with these hints is unknown
            return False
        if not VALIDATORS[kind](Path(output)):
            return False
        self.record(output)
        return True

    def record(self, output: Path, hints: str | None = None) -> None:
        """List ``output`` as finished (call after it was renamed into place), made with the hints of
        digest ``hints`` (None: none)."""
        self.record_all([output], hints)

    def record_all(self, outputs: Sequence[Path], hints: str | None = None) -> None:
        """:meth:`record` each of ``outputs`` (one film's: a frame folder's frames), in one write and one
        fsync (one each took 29 s of 60,000 frames on a fast disk, the progress bar at its end)."""
        lines = []
        with self._lock:
            for output in outputs:
                stat = file_state(output)
                if stat is None:
                    continue
                key = self._key(output)
                self._entries[key] = stat
                self._set_hints(key, hints)
                lines.append(_line(key, stat, hints))
            if self._journal < 0 or not lines:
                return
            try:
                write_all(self._journal, "".join(lines).encode())
                os.fsync(self._journal)
            except OSError as exc:  # a full disk: the outputs are checked again by the next run
                log.info("could not add %s to the journal: %s", outputs[0] if len(outputs) == 1 else
                         f"{len(lines)} outputs", exc)

    def working_on(self, source: Path) -> None:
        """``source`` is being read, colorized or written: should this process die now (a native
        crash, a kill), the next run says so. Cheap: a small write to the lock file, no fsync."""
        with self._lock:
            self._in_flight.add(str(source))
            self._publish()

    def finished_with(self, source: Path) -> None:
        with self._lock:
            if str(source) in self._in_flight:
                self._in_flight.discard(str(source))
                self._publish()

    def _publish(self) -> None:
        """Who this run is and what it is working on, in the lock file (for the next run, or a second one)."""
        if self._marker < 0:
            return
        data = json.dumps(self._identity | {"in_flight": sorted(self._in_flight)}).encode()
        with contextlib.suppress(OSError):  # a courtesy to the next run; the lock is what counts
            os.pwrite(self._marker, data, 0)
            os.ftruncate(self._marker, len(data))

    def _set_hints(self, key: str, hints: str | None) -> None:
        if hints:
            self._hints[key] = str(hints)
        else:
            self._hints.pop(key, None)

    def close(self) -> None:
        """The run ended (however): nothing is in flight any more; the folder is free."""
        with self._lock:
            self._in_flight.clear()
            self._publish()
            for fd in (self._journal, self._marker):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)  # releases the flock
            self._journal = self._marker = -1


def file_state(path: Path) -> tuple[int, int] | None:
    """What the journal records of a file (size, modification time in ns); None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _line(key: str, stat: tuple[int, int], hints: str | None = None) -> str:
    entry = {"v": JOURNAL_VERSION, "output": key, "size": stat[0], "mtime_ns": stat[1]}
    return json.dumps(entry | ({"hints": hints} if hints else {})) + "\n"


def remove_leftovers(folders: Iterable[Path]) -> int:
    """Remove the temporary files of atomic writes directly in ``folders``; how many were removed."""
    removed = 0
    for folder in folders:
        try:
            names = [p for p in Path(folder).iterdir() if is_partial_file(p) and p.is_file()]
        except OSError:
            continue
        for path in names:
            remove_quietly(path)
            removed += not path.exists()
    return removed


def output_done(output: Path, kind: TaskKind, journal: RunJournal | None, hints: str | None = None) -> bool:
    """Whether ``output`` counts as finished (made with the hints of digest ``hints``): with a journal,
    see :meth:`RunJournal.done`; without one (a library caller), whether it exists."""
    return output.exists() if journal is None else journal.done(output, kind, hints)


def check_writable(folder: Path) -> str | None:
    """Why nothing can be written in ``folder`` (created if needed), or None when a file can be."""
    from colorizer.fileio import atomic_path, os_error_reason

    try:
        with atomic_path(Path(folder) / ".colorize-write-test") as probe:
            fd = os.open(probe, os.O_WRONLY)
            try:
                write_all(fd, b"\0" * 4096)
                os.fsync(fd)
            finally:
                os.close(fd)
            raise _Probed()
    except _Probed:
        return None
    except OSError as exc:
        return f"cannot write in the output folder {folder}: {os_error_reason(exc)}"


class _Probed(Exception):
    """Ends the write test without renaming the probe file (atomic_path removes it)."""
