"""The app's run state machine: every transition, pause/resume/cancel/close through it, and honest progress."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

pytest_plugins = ["app_fixtures"]  # the fixtures model, store, stop_runs

import time  # noqa: E402

from app_helpers import RUN_TIMEOUT_MS, files_in, slow_window_with_photos  # noqa: E402

from colorizer.desktop.app.run_state import (  # noqa: E402
    _TRANSITIONS,
    CANCELLING,
    CLOSING,
    IDLE,
    PAUSED,
    PAUSING,
    RUNNING,
    RunState,
    RunStateMachine,
)


def test_every_transition_is_allowed_or_refused_as_the_table_says(qtbot):
    for start in RunState:
        for target in RunState:
            machine = RunStateMachine()
            machine._state = start
            seen = []
            machine.changed.connect(lambda old, new, seen=seen: seen.append((old, new)))
            allowed = target in _TRANSITIONS[start]
            assert machine.go(target) is allowed
            assert machine.state == (target if allowed else start)
            assert seen == ([(start, target)] if allowed else [])
    for state in RunState:  # every state can get back to idle, so nothing can stay stuck
        path, machine_state = [state], state
        while machine_state != IDLE:
            machine_state = IDLE if IDLE in _TRANSITIONS[machine_state] else CLOSING
            path.append(machine_state)
            assert len(path) < 4, path


def test_pause_resume_cancel_go_through_the_states(qtbot, store, tmp_path, model, stop_runs):
    window = slow_window_with_photos(qtbot, store, model, tmp_path, stop_runs, 0.05, 12)
    window.start()
    assert window.state == RUNNING and not window.start_action.isEnabled()
    window.pause_action.trigger()
    assert window.state in (PAUSING, PAUSED) and window.pause_action.text() == "Resume"
    qtbot.waitUntil(lambda: window.state == PAUSED, timeout=5000)  # the run reached the gate
    assert "Paused" in window.statusBar().currentMessage()
    window.pause_action.trigger()
    assert window.state == RUNNING and window.pause_action.text() == "Pause"
    window.start()  # refused while running: nothing changes
    window.cancel_action.trigger()
    assert window.state == CANCELLING and not window.cancel_action.isEnabled() and not window.pause_action.isEnabled()
    window.set_paused(True)  # refused while cancelling
    assert window.state == CANCELLING and not window.pause_action.isChecked()
    qtbot.waitUntil(lambda: window.state == IDLE, timeout=RUN_TIMEOUT_MS)
    assert window.runs.machine.history == [IDLE, RUNNING, PAUSING, PAUSED, RUNNING, CANCELLING, IDLE]
    assert window.start_action.isEnabled() and window.settings_panel.isEnabled()


def test_closing_when_the_run_ends_while_the_question_is_open_closes(qtbot, store, tmp_path, model, stop_runs):
    """The stuck "Stopping…" bug: the run finishes while "Stop colorizing?" is open, then the user says yes."""
    window = slow_window_with_photos(qtbot, store, model, tmp_path, stop_runs, 0.01, 3)
    window.show()

    def answer_after_the_run_has_ended():
        qtbot.waitUntil(lambda: not window.running, timeout=RUN_TIMEOUT_MS)
        return True

    window.confirm_stop = answer_after_the_run_has_ended
    window.start()
    assert window.running
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert window.state == IDLE and window.runs.machine.history[-2:] == [RUNNING, IDLE]


def test_closing_twice_asks_once_and_closes_after_the_run(qtbot, store, tmp_path, model, stop_runs):
    window = slow_window_with_photos(qtbot, store, model, tmp_path, stop_runs, 0.1, 12)
    window.show()
    asked = []
    window.confirm_stop = lambda: asked.append(1) or True
    window.start()
    window.pause_action.trigger()
    assert not window.close() and window.state == CLOSING
    assert not window.close() and window.state == CLOSING  # a second close does not ask again
    window.cancel_run()  # refused while closing: still closing
    assert asked == [1] and window.state == CLOSING and "Closing" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=RUN_TIMEOUT_MS)
    assert window.state == IDLE and CLOSING in window.runs.machine.history


def test_closing_refused_keeps_the_run_going(qtbot, store, tmp_path, model, stop_runs):
    window = slow_window_with_photos(qtbot, store, model, tmp_path, stop_runs, 0.05, 6)
    window.show()
    window.confirm_stop = lambda: False
    window.start()
    assert not window.close() and window.state == RUNNING and window.isVisible()
    qtbot.waitUntil(lambda: window.state == IDLE, timeout=RUN_TIMEOUT_MS)
    assert window.isVisible()


def test_cancel_stops_within_a_second_and_the_bar_counts_each_status_apart(qtbot, store, tmp_path, model, stop_runs):
    out = tmp_path / "out"
    window = slow_window_with_photos(qtbot, store, model, tmp_path, stop_runs, 0.05, 30)
    at_cancel = {}

    def cancel_once(*_):
        if not at_cancel:
            at_cancel.update(time=time.monotonic(), written=len(files_in(out)))
            window.cancel_action.trigger()

    window.item_finished.connect(cancel_once)
    with qtbot.waitSignal(window.run_finished, timeout=RUN_TIMEOUT_MS) as blocker:
        window.start()
    took = time.monotonic() - at_cancel["time"]
    outcome = blocker.args[0]
    counts = {s: [r.status for r in outcome.results].count(s) for s in ("done", "cancelled")}
    assert outcome.cancelled and counts["cancelled"] >= 20
    assert len(files_in(out)) - at_cancel["written"] <= 2  # only the files being written (two writers)
    assert took < 1.0, f"the run took {took:.2f} s to stop"
    assert window.overall.value() < window.overall.maximum()  # never a full bar after a cancel
    done, cancelled = counts["done"], counts["cancelled"]
    assert window.overall.format() == f"{done} of 30 · {done} done · {cancelled} cancelled"
    assert window.statusBar().currentMessage().startswith(f"Cancelled: {counts['done']} done · "
                                                          f"{counts['cancelled']} cancelled")
    assert "took" in window.eta_label.text()
