"""Per-run attempt accounting in the local pool: a run that kills its worker fails alone."""

from __future__ import annotations

import sweep_helpers

from jaqmoo.sweep.executor import LocalPool, Task, run_graph


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
