"""Run directory: validated append-only results store and per-generation checkpoints.

Layout of a run directory::

    spec.yaml            the validated experiment spec
    meta.json            genome layout, objective names, hypervolume normalisation, baselines
    evaluations.jsonl    one JSON object per evaluated individual, appended and fsync'ed per
                         batch, in evaluation order (keys: gen, idx, genes, then metrics, and
                         ``_crc``: the CRC-32 of the record's JSON text without that key)
    checkpoint.npz       the algorithm's state (population, random generator, counters: see
                         :mod:`jaqmoo.search.algo_state`) and the history after the last
                         completed generation, as data only (:mod:`jaqmoo.datafile`), replaced
                         atomically. Older versions wrote ``checkpoint.pkl`` (a pickle): it is
                         never read; ``jaqmoo repair`` moves it aside and resume replays.
    history.csv          hypervolume and best value per objective after each generation
    run.lock             present while a process writes the folder (:mod:`jaqmoo.locking`)

Why JSON lines with a checksum per record, not SQLite: the file stays readable with any
tool (``grep``, ``jq``, pandas), appends are a single ``write`` + ``fsync`` per batch, a
damaged byte is confined to the line it hits and found by its checksum, and it works on the
network file systems that clusters share (SQLite's own locking is unreliable there, and its
WAL mode needs shared memory). What SQLite would add, atomic multi-record transactions, is
not needed: a record is the unit of work, and one writer per folder is enforced by the lock.

Integrity rules (:meth:`ResultsStore.read_records`): every line must be a JSON object with an
integer ``gen`` >= 1, ``idx`` >= 0, a list of integer ``genes`` and, when present, a matching
``_crc``. A damaged line raises :class:`DamagedRunError` naming the file, the line and the fix
(``jaqmoo repair RUN_DIR``); nothing is skipped silently. Only a torn last line (no final
newline: a write cut by a kill) is ignored on read and moved to a quarantine file on resume.
Resume never rewrites the evaluations file with fewer records than it holds: records of the
interrupted generation stay in place and are not appended twice.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jaqmoo.datafile import (
    DataFileError,
    load_bundle,
    plain_data,
    refuse_pickle,
    save_bundle,
    tag_floats,
    untag_floats,
)
from jaqmoo.errors import JaqmooError
from jaqmoo.safe_write import append_durable, atomic_write

EVALUATIONS = "evaluations.jsonl"
CHECKPOINT = "checkpoint.npz"
OLD_CHECKPOINT = "checkpoint.pkl"  # written by jaqmoo before data-only checkpoints; never read
META = "meta.json"
HISTORY = "history.csv"
SPEC = "spec.yaml"
CRC_KEY = "_crc"
QUARANTINE_PREFIX = "evaluations.quarantine-"


class DamagedRunError(JaqmooError):
    """A run folder file is damaged; the message names the file, the line and the fix."""


def _jsonable(value: Any) -> Any:
    return plain_data(value, lambda v: None)  # a non-finite float is stored as null


def _crc(text: str) -> str:
    return f"{zlib.crc32(text.encode('utf-8')):08x}"


def encode_record(record: dict) -> str:
    """One JSONL line (with its ``_crc``) for ``record``."""
    body = {k: v for k, v in _jsonable(record).items() if k != CRC_KEY}
    text = json.dumps(body, allow_nan=False)
    return text[:-1] + (", " if body else "") + f'"{CRC_KEY}": "{_crc(text)}"}}\n'


def decode_record(line: str) -> dict:
    """Parse and validate one line; ``ValueError`` says what is wrong with it."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"not a JSON object (a {type(record).__name__})")
    crc = record.pop(CRC_KEY, None)
    if crc is not None and crc != _crc(json.dumps(record, allow_nan=False)):
        raise ValueError("checksum mismatch (the line was altered after it was written)")
    gen, idx, genes = record.get("gen"), record.get("idx"), record.get("genes")
    if not isinstance(gen, int) or isinstance(gen, bool) or gen < 1:
        raise ValueError(f"'gen' must be an integer >= 1 (got {gen!r})")
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
        raise ValueError(f"'idx' must be an integer >= 0 (got {idx!r})")
    if not isinstance(genes, list) or not all(isinstance(g, int) and not isinstance(g, bool) for g in genes):
        raise ValueError("'genes' must be a list of integers")
    return record


@dataclass
class ScanResult:
    """What :func:`scan_evaluations` found in an evaluations file."""

    records: list[dict] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # line number of each record
    damaged: list[tuple[int, str, str]] = field(default_factory=list)  # (line, raw text, why)
    torn: str = ""  # a last line without newline (a write cut by a kill)
    good_bytes: int = 0  # length of the file up to the end of the last complete line


def scan_evaluations(path: Path) -> ScanResult:
    """Read every line of ``path``, separating intact records from damaged lines."""
    out = ScanResult()
    if not path.exists():
        return out
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    out.good_bytes = end
    if end < len(data):
        out.torn = data[end:].decode("utf-8", errors="replace")
    for n, raw in enumerate(data[:end].split(b"\n")[:-1], start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            out.damaged.append((n, raw.decode("utf-8", errors="replace"), "not UTF-8 text"))
            continue
        if not line.strip():
            out.damaged.append((n, line, "empty line"))
            continue
        try:
            out.records.append(decode_record(line))
            out.lines.append(n)
        except ValueError as exc:
            out.damaged.append((n, line, str(exc)))
    return out


@dataclass
class Checkpoint:
    """What a checkpoint holds: the algorithm's state after ``generation`` plus the run's history.

    ``state`` is :func:`jaqmoo.search.algo_state.capture`'s ``(header, arrays)`` (plain data).
    """

    generation: int
    history: list[dict]
    n_evaluations: int
    hv_scale: list[float] | None = None  # per-objective normalisation of the hypervolume
    state: tuple[dict, dict[str, np.ndarray]] = field(default_factory=lambda: ({}, {}))


def expected_counts(history: list[dict]) -> dict[int, int]:
    """Records per generation implied by a run's history (cumulative ``evaluations`` column)."""
    out, prev = {}, 0
    for row in history:
        try:
            gen, total = int(row["generation"]), int(row["evaluations"])
        except (KeyError, TypeError, ValueError):
            continue
        out[gen] = total - prev
        prev = total
    return out


def missing_keys(records: list[dict], counts: dict[int, int]) -> list[tuple[int, int]]:
    """(gen, idx) pairs the history says were evaluated but ``records`` lacks."""
    have = {(r["gen"], r["idx"]) for r in records}
    return [(g, i) for g, n in sorted(counts.items()) for i in range(n) if (g, i) not in have]


class ResultsStore:
    """Reads and writes one run directory (see the module doc)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self._keys: dict[tuple[int, int], str] | None = None  # (gen, idx) in the file -> its JSON line
        self._last: tuple[int, int] = (0, -1)
        self.out_of_order = False

    # ------------------------------------------------------------------ files
    @property
    def evaluations_path(self) -> Path:
        return self.dir / EVALUATIONS

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / CHECKPOINT

    @property
    def meta_path(self) -> Path:
        return self.dir / META

    @property
    def old_checkpoint_path(self) -> Path:
        return self.dir / OLD_CHECKPOINT

    def exists(self) -> bool:
        return (self.evaluations_path.exists() or self.checkpoint_path.exists()
                or self.old_checkpoint_path.exists())

    def create(self, overwrite: bool = False) -> None:
        """Start a fresh run directory (refusing to clobber a previous run unless ``overwrite``)."""
        if self.exists() and not overwrite:
            raise JaqmooError(
                f"{self.dir} already holds a run; pass --resume to continue it or --out to choose another directory"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in (EVALUATIONS, CHECKPOINT, OLD_CHECKPOINT, HISTORY):
            (self.dir / name).unlink(missing_ok=True)
        atomic_write(self.evaluations_path, b"", "the evaluations file")
        self._keys, self._last, self.out_of_order = {}, (0, -1), False

    # ------------------------------------------------------------------ records
    def _damaged(self, scan: ScanResult) -> DamagedRunError:
        line, text, why = scan.damaged[0]
        after = sum(1 for n in scan.lines if n > line)
        more = f" ({len(scan.damaged) - 1} more damaged line(s) after it)" if len(scan.damaged) > 1 else ""
        return DamagedRunError(
            f"{self.evaluations_path}: line {line} is damaged: {why}{more}; {len(scan.records)} intact records "
            f"({after} after it) were not touched. Run `jaqmoo repair {self.dir}` to move the damaged lines to a "
            f"quarantine file and keep every intact record; `jaqmoo run SPEC --out {self.dir} --resume` then "
            f"re-evaluates what is missing. Line starts: {text[:80]!r}")

    def read_records(self) -> list[dict]:
        """Every record in evaluation order; :class:`DamagedRunError` on a damaged line.

        A torn last line (a write cut by a kill: no final newline) is ignored.
        """
        scan = scan_evaluations(self.evaluations_path)
        if scan.damaged:
            raise self._damaged(scan)
        return scan.records

    def _index(self, records: list[dict]) -> None:
        self._keys = {(r["gen"], r["idx"]): encode_record(r) for r in records}
        self._last = max(self._keys, default=(0, -1))

    def append(self, records: Iterable[dict]) -> None:
        """Append records and force them to disk (one call per evaluated batch).

        A record already stored under its (gen, idx) with the same content is not written again
        (a resumed run re-runs the interrupted generation and hands its stored records back); a
        *different* record under a stored (gen, idx) is an error, never a silent duplicate.
        """
        if self._keys is None:
            self._index(self.read_records())
        keys = self._keys
        assert keys is not None
        new: dict[tuple[int, int], str] = {}
        for r in records:
            key = (int(r["gen"]), int(r["idx"]))
            line = encode_record(r)
            old = keys.get(key, new.get(key))
            if old is not None:
                if old != line:
                    raise JaqmooError(
                        f"{self.evaluations_path}: gen {key[0]} idx {key[1]} is already stored with other values; "
                        "each (gen, idx) is evaluated once: a second writer or a non-deterministic evaluator? "
                        "Nothing was written")
                continue
            new[key] = line
        if not new:
            return
        # a failed append is cut back (nothing torn) and raises before anything is marked stored
        append_durable(self.evaluations_path, "".join(new.values()), "the evaluations file")
        for key, line in new.items():
            keys[key] = line
            if key < self._last:
                self.out_of_order = True
            self._last = max(self._last, key)

    def rewrite(self, records: list[dict]) -> None:
        """Atomically replace the evaluations file with ``records`` (never fewer than it holds)."""
        held = len(scan_evaluations(self.evaluations_path).records)
        if len(records) < held:
            raise JaqmooError(f"{self.evaluations_path}: refusing to replace {held} records by {len(records)}")
        atomic_write(self.evaluations_path, "".join(encode_record(r) for r in records).encode(), "the evaluations file")
        self._index(records)
        self.out_of_order = False

    def sort_records(self) -> None:
        """Rewrite the file in (gen, idx) order if a replay appended records out of order."""
        if self.out_of_order:
            self.rewrite(sorted(self.read_records(), key=lambda r: (r["gen"], r["idx"])))

    def quarantine(self, lines: list[tuple[int, str, str]], note: str) -> Path:
        """Save damaged ``(line, text, why)`` entries to a new side file; returns its path."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        path = self.dir / f"{QUARANTINE_PREFIX}{stamp}.jsonl"
        n = 1
        while path.exists():
            n += 1
            path = self.dir / f"{QUARANTINE_PREFIX}{stamp}-{n}.jsonl"
        body = "".join(json.dumps({"line": ln, "why": why, "text": text, "note": note}) + "\n" for ln, text, why in lines)
        atomic_write(path, body.encode(), "a quarantine file")
        return path

    def drop_torn_tail(self) -> Path | None:
        """Move a torn last line (a kill mid-write) to a quarantine file and cut it off."""
        scan = scan_evaluations(self.evaluations_path)
        if not scan.torn:
            return None
        side = self.quarantine([(len(scan.lines) + len(scan.damaged) + 1, scan.torn, "torn last line")],
                               "a write cut by a kill")
        with open(self.evaluations_path, "r+b") as fh:
            fh.truncate(scan.good_bytes)
            fh.flush()
            os.fsync(fh.fileno())
        return side

    # ------------------------------------------------------------------ metadata
    def write_meta(self, meta: dict) -> None:
        atomic_write(self.meta_path, json.dumps(_jsonable(meta), indent=1).encode(), "the run metadata")

    def read_meta(self) -> dict:
        """``meta.json`` as a dict; a missing or damaged file is a :class:`JaqmooError` saying the fix."""
        path = self.meta_path
        if not path.exists():
            raise JaqmooError(f"{self.dir} is not a jaqmoo run directory (no {META}); give the folder `jaqmoo run` wrote")
        try:
            meta = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DamagedRunError(
                f"{path} is damaged ({exc}); run `jaqmoo repair {self.dir}` (it rebuilds {META} from "
                f"{SPEC} and the checkpoint) or resume with `jaqmoo run SPEC --out {self.dir} --resume`") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("objectives"), list):
            raise DamagedRunError(f"{path} is damaged (no 'objectives' list); run `jaqmoo repair {self.dir}` "
                                  f"or `jaqmoo run SPEC --out {self.dir} --resume` to rewrite it")
        return meta

    def write_history(self, history: list[dict]) -> None:
        if not history:
            return
        keys = list(history[0])
        lines = [",".join(keys)] + [",".join(str(h.get(k, "")) for k in keys) for h in history]
        atomic_write(self.dir / HISTORY, ("\n".join(lines) + "\n").encode(), "the history")

    def history_evaluations(self) -> int | None:
        """The evaluation count ``history.csv`` states for the last completed generation."""
        path = self.dir / HISTORY
        if not path.is_file():
            return None
        try:
            rows = path.read_text(encoding="utf-8").splitlines()
            col = rows[0].split(",").index("evaluations")
            return int(rows[-1].split(",")[col]) if len(rows) > 1 else None
        except (ValueError, IndexError, UnicodeDecodeError):
            return None

    def check_complete(self, records: list[dict]) -> None:
        """Raise :class:`DamagedRunError` if ``history.csv`` states more evaluations than stored."""
        stated = self.history_evaluations()
        if stated is not None and len(records) < stated:
            what = "is missing" if not self.evaluations_path.exists() else f"holds {len(records)} records"
            raise DamagedRunError(
                f"{self.evaluations_path} {what} but {HISTORY} says {stated} individuals were evaluated: records "
                f"were lost (truncated or deleted file). Run `jaqmoo repair {self.dir}`, then "
                f"`jaqmoo run SPEC --out {self.dir} --resume` re-evaluates the missing ones")

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Write ``checkpoint`` (data only: JSON header + arrays, :mod:`jaqmoo.datafile`) atomically."""
        header, arrays = checkpoint.state
        meta = {"format": "jaqmoo-checkpoint", "version": 1, "generation": checkpoint.generation,
                "n_evaluations": checkpoint.n_evaluations, "hv_scale": tag_floats(checkpoint.hv_scale),
                "history": tag_floats(checkpoint.history), "algorithm": header}
        save_bundle(self.checkpoint_path, meta, arrays, what="the checkpoint")

    def load_checkpoint(self) -> Checkpoint | None:
        """The last checkpoint (``None`` when there is none); an old pickled one is refused unread."""
        fix = (f"delete it (`rm {self.checkpoint_path}`) and resume: the search is replayed from its seed, reusing "
               "every stored evaluation")
        if not self.checkpoint_path.exists():
            if self.old_checkpoint_path.exists():
                raise refuse_pickle(self.old_checkpoint_path, (
                    f"Run `jaqmoo repair {self.dir}` (it moves the file aside, unread), then `jaqmoo run SPEC --out "
                    f"{self.dir} --resume`: the search is replayed from its seed, every stored evaluation is reused "
                    "(none is computed again) and a data-only checkpoint.npz is written. Export, plot and report "
                    "read the folder as it is."))
            return None
        meta, arrays = load_bundle(self.checkpoint_path, fix)
        try:
            if meta.get("format") != "jaqmoo-checkpoint" or meta.get("version") != 1:
                raise ValueError("not a jaqmoo checkpoint of version 1")
            generation, n_evals = meta["generation"], meta["n_evaluations"]
            history, scale, header = untag_floats(meta["history"]), untag_floats(meta["hv_scale"]), meta["algorithm"]
            if not (isinstance(generation, int) and generation >= 0 and isinstance(n_evals, int) and n_evals >= 0
                    and isinstance(history, list) and all(isinstance(h, dict) for h in history)
                    and isinstance(header, dict) and (scale is None or isinstance(scale, list))):
                raise ValueError("fields of the wrong type")
        except (KeyError, ValueError) as exc:
            raise DataFileError(f"{self.checkpoint_path}: damaged checkpoint ({exc}); {fix}") from None
        return Checkpoint(generation, history, n_evals, scale, (header, arrays))

    def prepare_resume(self) -> tuple[Checkpoint | None, dict[tuple[int, int], dict]]:
        """Load the checkpoint and hand back the stored records to reuse.

        Nothing stored is removed: a torn last line goes to a quarantine file, every intact
        record stays in the file. When the records of the checkpoint's generations are
        complete, the checkpoint is returned with the interrupted generation's records (keyed
        by ``(gen, idx)``) to reuse. When some are missing (a repaired or partly deleted
        file, or no checkpoint), ``None`` is returned with *every* record: the search is then
        replayed from its seed, reusing each stored record and evaluating only the missing ones.
        """
        self.drop_torn_tail()
        checkpoint = self.load_checkpoint()
        records = self.read_records()
        self._index(records)
        done = checkpoint.generation if checkpoint else 0
        if checkpoint is None or missing_keys(records, expected_counts(checkpoint.history)):
            return None, {(r["gen"], r["idx"]): r for r in records}
        return checkpoint, {(r["gen"], r["idx"]): r for r in records if r["gen"] == done + 1}
