"""The supernet benchmark scripts run end to end at their tiny preset (slow: minutes)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from jaqmoo.data import FASHION_MNIST_DIR

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed"),
]


def _run(script: str, *args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--preset", "tiny", "--threads", "1",
                           "--quiet", *args], cwd=cwd, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.strip().splitlines()[-1]


def test_accuracy_fidelity_tiny(tmp_path):
    last = _run("accuracy_fidelity.py", "--work-dir", str(tmp_path / "cache"), "--policies", "6",
                "--predictor-samples", "8", cwd=tmp_path)
    m = re.fullmatch(r"RESULT kendall_tau=(\S+) tau_ci_low=(\S+) tau_ci_high=(\S+) mean_abs_gap=[\d.]+ "
                     r"seconds_per_supernet_estimate=[\d.]+ seconds_per_predictor_estimate=[\d.]+", last)
    assert m, last
    assert list((tmp_path / "cache").glob("*/truth-*.json"))  # the truth is cached for the other benchmark


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
