"""The supernet benchmark scripts run end to end at their tiny preset (slow: minutes), and their
RESULT lines are parsed strictly: a figure the benchmark must deliver may not be ``nan``."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jaqmoo.data import FASHION_MNIST_DIR

ROOT = Path(__file__).resolve().parents[1]
needs_data = pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")


def parse_result(line: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, float]:
    """The ``name=value`` figures of a ``RESULT`` line: exactly ``required`` + ``optional`` names,
    every value a number, every ``required`` one finite (``nan`` there fails)."""
    assert line.startswith("RESULT "), line
    pairs = [item.split("=", 1) for item in line.split()[1:]]
    assert all(len(p) == 2 for p in pairs), line
    values = {k: float(v) for k, v in pairs}
    assert list(values) == [k for k, _ in pairs] and set(values) == set(required) | set(optional), line
    missing = [k for k in required if not math.isfinite(values[k])]
    assert not missing, f"{', '.join(missing)} must be a number, got nan/inf: {line}"
    return values


def test_parse_result_rejects_nan_where_a_figure_is_required():
    line = "RESULT tau=0.800 band_tau=nan seconds=1.5"
    assert parse_result(line, ("tau", "seconds"), ("band_tau",))["tau"] == 0.8
    with pytest.raises(AssertionError, match="band_tau must be a number"):
        parse_result(line, ("tau", "band_tau", "seconds"))
    with pytest.raises(AssertionError):
        parse_result("RESULT tau=0.8 extra=1", ("tau",))  # an unexpected name
    with pytest.raises(ValueError):
        parse_result("RESULT tau=high", ("tau",))
    with pytest.raises(AssertionError):
        parse_result("tau=0.8", ("tau",))


def _run(script: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--preset", "tiny", "--threads", "1",
                           "--quiet", *args], cwd=cwd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


LEAGUE_FIGURES = ("tau_supernet", "tau_ptq", "tau_predictor", "seconds_per_supernet_estimate",
                  "seconds_per_ptq_estimate")
#: at the tiny preset (near-chance truths of 3-policy bands) a band tau may be undefined
LEAGUE_OPTIONAL = ("band_tau_supernet", "band_tau_ptq", "band_tau_predictor", "band_tau_truth_seeds")


@pytest.mark.slow
@needs_data
def test_accuracy_fidelity_tiny(tmp_path):
    cache = tmp_path / "cache"
    last = _run("accuracy_fidelity.py", "--work-dir", str(cache), "--policies", "4", "--predictor-samples", "8",
                "--truth-only", cwd=tmp_path)
    truth = parse_result(last, ("truth_policies", "truth_seconds", "convergence_tau", "convergence_mean_diff_points"),
                         ("band_tau_truth_seeds",))
    assert truth["truth_policies"] == 10  # 4 spread + 2 bands of 3
    files = list((cache / "truth").glob("*.json"))
    assert len(files) == 10 + 6 + 7  # seed 0, band policies at seed 1, the convergence set at 2B
    last = _run("accuracy_fidelity.py", "--work-dir", str(cache), "--policies", "4", "--predictor-samples", "8",
                cwd=tmp_path)
    parse_result(last, LEAGUE_FIGURES, LEAGUE_OPTIONAL)
    assert len(list((cache / "truth").glob("*.json"))) == len(files)  # the league reused the cached truth


@pytest.mark.slow
@needs_data
def test_csq_memory_tiny(tmp_path):
    last = _run("csq_memory.py", "--memory-only", "--memory-batch", "16", "--no-rss", cwd=tmp_path)
    m = re.fullmatch(r"RESULT peak_memory_ratio_vs_lean_4bit=([\d.]+) peak_memory_ratio_vs_lean_8bit=([\d.]+) "
                     r"peak_memory_ratio_vs_csq_all_8bit=([\d.]+) peak_memory_ratio_vs_lean=([\d.]+) "
                     r"tau_lean=nan tau_csq=nan csq_fraction=0.25", last)
    assert m, last
    # saved-for-backward bytes of CSQ 0.1 against the fused LSQ sandwich step at 4 and 8 bits, against
    # CSQ with every channel, and of CSQ 0.25's single step against the fused LSQ step
    assert float(m.group(1)) < 0.3 and float(m.group(2)) < 0.3 and float(m.group(3)) < 1.0
    assert float(m.group(4)) < 0.5


def _fidelity_module():
    import importlib.util

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("accuracy_fidelity", ROOT / "benchmarks" / "accuracy_fidelity.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_truth_shards_split_every_job_once():
    import numpy as np

    mod = _fidelity_module()
    bands = np.array([-1, -1, -1, 0, 0, 0, 1, 1, 1])
    jobs = mod.truth_jobs(list(range(9)), bands, conv=[3, 4, 0], seeds=2)
    # convergence set at B and 2B, the other policies at seed 0, the 6 band policies at seed 1
    assert len(jobs) == 3 + 3 + 6 + 6 and len(set(jobs)) == len(jobs)
    shards = [jobs[k::3] for k in range(3)]
    assert sorted(j for s in shards for j in s) == sorted(jobs)
    check = [j for k in range(2) for j in mod.shard_jobs(jobs, 3, True, k, 2)]
    assert sorted(check) == sorted(jobs[:6]) and all(j[0] in (3, 4, 0) for j in check)
    assert mod.shard_jobs(jobs, 3, False, 1, 3) == shards[1]
    assert mod.parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "x", "1-2"):
        with pytest.raises(SystemExit, match="truth-shard"):
            mod.parse_shard(bad)
