"""Per-run attempt accounting in the local pool: a run that kills its worker fails alone."""

from __future__ import annotations

import psutil
import pytest
import sweep_helpers

from jaqmoo.errors import JaqmooError
from jaqmoo.sweep.executor import DaskBackend, LocalPool, Task, make_backend, run_graph
from jaqmoo.sweep.tasks import SHARED_MARKER, checked_task, write_shared_marker


def test_a_task_killing_its_worker_three_times_fails_alone(tmp_path):
    counter = tmp_path / "tries"
    tasks = [Task("bad", sweep_helpers.always_crash, (str(counter),))]
    tasks += [Task(f"ok{i}", sweep_helpers.slow_record, ("done", i, 0.3)) for i in range(4)]
    pool = LocalPool(2)
    try:
        results = run_graph(tasks, pool, max_attempts=3)
    finally:
        pool.close()
    # its first death broke the pool while ok0 ran beside it: nobody is charged, both re-run alone;
    # then it kills its worker three times running alone and fails with three charged attempts
    assert counter.read_text() == "xxxx"
    assert results["bad"]["status"] == "failed" and "3 time(s)" in results["bad"]["error"]
    assert results["bad"]["attempts"] == 4
    for i in range(4):  # every other run finished, whatever ran beside the crashing one
        assert results[f"ok{i}"]["status"] == "done" and results[f"ok{i}"]["value"] == i


def _listening(proc) -> list[tuple[str, int]]:
    out = []
    for p in [proc, *proc.children(recursive=True)]:
        try:
            conns = p.net_connections(kind="inet")
        except psutil.Error:
            continue
        out += [(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    return out


def test_local_dask_cluster_listens_on_loopback_only():
    backend = DaskBackend("local", workers=1)
    try:
        sockets = _listening(psutil.Process())
        dashboard = backend.dashboard
    finally:
        backend.close()
    assert sockets, "the scheduler listens somewhere"
    assert all(ip in ("127.0.0.1", "::1") for ip, _ in sockets), sockets  # scheduler, worker, nanny, dashboard
    if dashboard:  # bokeh installed: the dashboard's port is among the loopback sockets
        port = int(dashboard.split(":")[2].split("/")[0])
        assert ("127.0.0.1", port) in sockets


def test_listen_is_only_for_a_local_cluster():
    with pytest.raises(JaqmooError, match="--listen"):
        make_backend(1, "tcp://10.0.0.1:8786", listen="0.0.0.0")


def test_a_worker_that_does_not_see_the_sweep_folder_fails_the_task(tmp_path):
    shared = write_shared_marker(tmp_path / "sweep")
    assert checked_task(shared, sweep_helpers.record, "done", 1)["status"] == "done"
    elsewhere = {**shared, "marker": str(tmp_path / "other-machine" / SHARED_MARKER)}  # the path is not there
    record = checked_task(elsewhere, sweep_helpers.record, "done", 1)
    assert record["status"] == "failed"
    assert str(tmp_path / "other-machine") in record["error"] and "shared file system" in record["error"]
    stale = {**shared, "token": "0" * 32}  # another launch's marker (a stale copy, not the shared folder)
    assert "another launch" in checked_task(stale, sweep_helpers.record, "done", 1)["error"]
