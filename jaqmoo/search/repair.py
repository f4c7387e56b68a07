"""``jaqmoo repair RUN_DIR``: make a damaged run folder resumable without losing anything.

What it does, under the run folder's lock (:mod:`jaqmoo.locking`):

1. Every damaged line of ``evaluations.jsonl`` (bad JSON, checksum mismatch, missing fields,
   not UTF-8), a torn last line, and every extra copy of an already stored ``(gen, idx)``
   goes, verbatim and with its line number and the reason, to a new side file
   ``evaluations.quarantine-<UTC time>.jsonl``. Nothing is deleted.
2. Every intact record, including those *after* a damaged line, is kept; the file is
   rewritten atomically in ``(gen, idx)`` order.
3. A damaged ``meta.json`` is moved aside to ``meta.json.damaged-<UTC time>``; the next
   ``jaqmoo run SPEC --resume`` rewrites it (its spec is compared with ``spec.yaml``).
4. A checkpoint of the old pickled format (``checkpoint.pkl``) is moved aside, unread, to
   ``checkpoint.pkl.unread-<UTC time>`` (a pickle can run code when loaded); resume then
   replays the search from its seed and writes a data-only ``checkpoint.npz``. A damaged
   ``checkpoint.npz`` is moved aside the same way.
5. The individuals the checkpoint (or ``history.csv``) says were evaluated but that are no
   longer stored are listed; ``jaqmoo run SPEC --out RUN_DIR --resume`` then replays the
   search from its seed, reusing every stored record and evaluating only those.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from jaqmoo.errors import JaqmooError
from jaqmoo.locking import FolderLock
from jaqmoo.safe_write import atomic_write
from jaqmoo.search.store import (
    HISTORY,
    META,
    ResultsStore,
    encode_record,
    expected_counts,
    missing_keys,
    scan_evaluations,
)


@dataclass
class RepairReport:
    """What :func:`repair_run` found and did."""

    run_dir: Path
    kept: int = 0
    quarantined: int = 0
    quarantine_file: Path | None = None
    meta_moved_to: Path | None = None
    checkpoint_moved_to: Path | None = None
    missing: list[tuple[int, int]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"{self.run_dir}: kept {self.kept} intact records"]
        if self.quarantine_file is not None:
            lines.append(f"moved {self.quarantined} damaged, torn or duplicate line(s) to {self.quarantine_file}")
        else:
            lines.append("no damaged lines")
        if self.meta_moved_to is not None:
            lines.append(f"moved the damaged {META} to {self.meta_moved_to}; resuming rewrites it")
        if self.checkpoint_moved_to is not None:
            lines.append(f"moved the checkpoint (old pickled format or damaged) unread to {self.checkpoint_moved_to}; "
                         f"`jaqmoo run SPEC --out {self.run_dir} --resume` replays the search from its seed, reusing "
                         "every stored evaluation, and writes a new one")
        if self.missing:
            gens = sorted({g for g, _ in self.missing})
            lines.append(f"{len(self.missing)} evaluated individuals are missing (generations {gens}); "
                         f"`jaqmoo run SPEC --out {self.run_dir} --resume` re-evaluates them and continues")
        elif self.quarantine_file is None and self.meta_moved_to is None and self.checkpoint_moved_to is None:
            lines.append("nothing to repair")
        return "\n".join(lines)


def _history_counts(store: ResultsStore) -> dict[int, int]:
    """Records per generation from the checkpoint, else from ``history.csv``."""
    try:
        checkpoint = store.load_checkpoint()
    except JaqmooError:
        checkpoint = None
    if checkpoint is not None:
        return expected_counts(checkpoint.history)
    path = store.dir / HISTORY
    if not path.is_file():
        return {}
    rows = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not rows:
        return {}
    head = rows[0].split(",")
    return expected_counts([dict(zip(head, r.split(","), strict=False)) for r in rows[1:]])


def _set_aside_checkpoint(store: ResultsStore) -> Path | None:
    """Move an old-format (pickled) or damaged checkpoint aside without reading its content."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    moved = None
    if store.old_checkpoint_path.exists():
        moved = store.old_checkpoint_path.with_name(f"{store.old_checkpoint_path.name}.unread-{stamp}")
        store.old_checkpoint_path.replace(moved)
    if store.checkpoint_path.exists():
        try:
            store.load_checkpoint()
        except JaqmooError:
            moved = store.checkpoint_path.with_name(f"{store.checkpoint_path.name}.damaged-{stamp}")
            store.checkpoint_path.replace(moved)
    return moved


def repair_run(run_dir: str | Path) -> RepairReport:
    """Quarantine damaged lines, keep every intact record, list what must be re-evaluated."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise JaqmooError(f"run directory {run_dir} does not exist; give the --out folder of `jaqmoo run`")
    store = ResultsStore(run_dir)
    if not store.exists() and not store.meta_path.exists():
        raise JaqmooError(f"{run_dir} is not a jaqmoo run directory (no {store.evaluations_path.name}, "
                          f"checkpoint or {META})")
    report = RepairReport(run_dir)
    with FolderLock(run_dir, what="run"):
        scan = scan_evaluations(store.evaluations_path)
        bad = list(scan.damaged)
        if scan.torn:
            bad.append((len(scan.lines) + len(scan.damaged) + 1, scan.torn, "torn last line (a write cut by a kill)"))
        kept: dict[tuple[int, int], dict] = {}
        first_line: dict[tuple[int, int], int] = {}
        for line, record in zip(scan.lines, scan.records, strict=True):
            key = (record["gen"], record["idx"])
            if key in kept:
                bad.append((line, encode_record(record).rstrip("\n"),
                            f"duplicate of gen {key[0]} idx {key[1]} first stored at line {first_line[key]}"))
                continue
            kept[key] = record
            first_line[key] = line
        records = [kept[k] for k in sorted(kept)]
        if bad:
            report.quarantine_file = store.quarantine(sorted(bad), "removed by jaqmoo repair")
            report.quarantined = len(bad)
        if bad or [(r["gen"], r["idx"]) for r in scan.records] != sorted(kept):
            # every line not kept is in the quarantine file: nothing is lost by this rewrite
            atomic_write(store.evaluations_path, "".join(encode_record(r) for r in records).encode(),
                         "the evaluations file")
        report.kept = len(records)
        if store.meta_path.exists():
            try:
                store.read_meta()
            except JaqmooError:
                stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
                report.meta_moved_to = store.meta_path.with_name(f"{META}.damaged-{stamp}")
                store.meta_path.replace(report.meta_moved_to)
        report.checkpoint_moved_to = _set_aside_checkpoint(store)
        report.missing = missing_keys(records, _history_counts(store))
    return report


def repair_report_json(report: RepairReport) -> str:
    """The report as JSON (for scripts)."""
    return json.dumps({"run_dir": str(report.run_dir), "kept": report.kept, "quarantined": report.quarantined,
                       "quarantine_file": str(report.quarantine_file) if report.quarantine_file else None,
                       "meta_moved_to": str(report.meta_moved_to) if report.meta_moved_to else None,
                       "checkpoint_moved_to": str(report.checkpoint_moved_to) if report.checkpoint_moved_to else None,
                       "missing": [list(k) for k in report.missing]})
