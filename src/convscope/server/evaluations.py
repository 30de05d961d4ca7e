"""Evaluations on the server: a model version scored on MNIST or on a labelled folder the server was given.

Datasets are named, never given as paths: ``mnist:test`` and ``mnist:train`` for the MNIST models, and
``folder:<name>`` for each sub-folder of the ``datasets_dir`` setting (one sub-folder of images per class). An
evaluation runs in a thread of the worker that was asked, one at a time per server; each batch goes through the
worker's model thread, so predictions are still answered while it runs. Its progress, then its report, are kept
in the database, where any worker reads them; one whose worker died reads as failed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import torch
from sqlalchemy import select, update

from ..data.labelled import IMAGE_SUFFIXES, LabelledFiles, image_folder, labelled_csv
from ..data.mnist import load_mnist
from ..errors import ConvscopeError, DataError, InputError
from ..evaluation import FileSet, MnistSet, evaluate_model, files_for
from .db.tables import Evaluation, iso, utcnow
from .errors import Conflict, NotFound
from .slots import insert_holding_the_slot
from .jobs import owner_gone, process_identity

log = logging.getLogger("convscope.server")
MNIST_SPLITS = ("test", "train")
PROGRESS_EVERY_S = 0.5  # how often a running evaluation writes its progress (its heartbeat)
STALE_AFTER_S = 120.0  # a running evaluation that has not written for this long lost its worker
# Images per batch on the server: each batch holds the worker's model thread, so predictions wait at most one
# batch (VGG16: 16 images, about 1.5 s here).
SERVER_BATCH = 16


@dataclass(frozen=True)
class Dataset:
    name: str  # "mnist:test", "folder:<name>" or "csv:<name>"
    kind: str  # "mnist", "folder" or "csv"
    root: Path | None = None  # the folder its files are named inside: the dataset's own, or datasets_dir for a CSV
    csv: Path | None = None  # for "csv:" datasets

    @property
    def label(self) -> str:
        """How answers name where it is: the folder's or the CSV file's name, never a server path."""
        return self.csv.name if self.csv is not None else self.root.name

    def files(self) -> LabelledFiles:
        """Its images with their labels; a CSV row naming a file outside ``root`` is skipped, not read."""
        if self.csv is None:
            return image_folder(self.root, min_classes=1)
        data = labelled_csv(self.csv)
        inside = self.root.resolve()
        keep = [inside in f.resolve().parents for f in data.files]
        return LabelledFiles([f for f, k in zip(data.files, keep, strict=True) if k],
                             [y for y, k in zip(data.labels, keep, strict=True) if k], data.class_names, data.source,
                             "csv", data.skipped + [{"file": f.name, "reason": "outside the datasets folder"}
                                                    for f, k in zip(data.files, keep, strict=True) if not k])


def _entries(datasets_dir: Path | None) -> dict[str, Dataset]:
    """The folders (``folder:<name>``) and CSV files (``csv:<name>``, file names relative to ``datasets_dir``) in
    ``datasets_dir``."""
    if datasets_dir is None or not datasets_dir.is_dir():
        return {}
    found = {}
    for p in sorted(datasets_dir.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            found[f"folder:{p.name}"] = Dataset(f"folder:{p.name}", "folder", p)
        elif p.suffix.lower() == ".csv" and p.is_file():
            found[f"csv:{p.stem}"] = Dataset(f"csv:{p.stem}", "csv", datasets_dir, p)
    return found


def find_dataset(name: str, datasets_dir: Path | None) -> Dataset:
    kind, _, rest = name.partition(":")
    if kind == "mnist" and rest in MNIST_SPLITS:
        return Dataset(name, "mnist")
    found = _entries(datasets_dir).get(name)
    if found is None:
        raise NotFound(f"no dataset {name!r}: GET /api/datasets lists them")
    return found


def list_datasets(settings) -> list[dict]:
    """Every dataset with its size and classes; one that cannot be used says why."""
    items = []
    for split in MNIST_SPLITS:
        item = {"name": f"mnist:{split}", "kind": "mnist", "for": "the MNIST models"}
        try:
            item["count"] = len(load_mnist(split, settings.engine_settings(), download=False).labels)
        except ConvscopeError as e:
            item.update(count=0, problem=str(e).splitlines()[0])
        items.append(item)
    for name, dataset in _entries(settings.datasets_folder).items():
        item = {"name": name, "kind": dataset.kind,
                "for": "a model whose classes the sub-folders name" if dataset.kind == "folder"
                else "a model whose classes the labels name"}
        try:
            files = dataset.files()
            item.update(count=len(files), classes=files.counts())
        except ConvscopeError as e:
            item.update(count=0, problem=_named(str(e), dataset))
        items.append(item)
    return items


def _named(message: str, dataset: Dataset) -> str:
    """A message with the dataset's path on the server replaced by its name."""
    if dataset.csv is not None:
        message = message.replace(str(dataset.csv), dataset.csv.name)
    return message.replace(str(dataset.root), dataset.label) if dataset.root is not None else message


def evaluation_body(row: Evaluation, with_report: bool = False) -> dict:
    body = {"id": row.id, "model": row.model, "version": row.version.version, "dataset": row.dataset,
            "status": row.status, "done": row.done, "total": row.total, "accuracy": row.accuracy,
            "error": row.error, "created_at": iso(row.created_at), "finished_at": iso(row.finished_at)}
    if with_report:
        body["report"] = row.report
    return body


def _relative(report: dict, dataset: Dataset) -> dict:
    """The report with file paths inside the dataset's folder (no server paths in answers)."""
    if dataset.root is None:
        return report

    def inside(path: str) -> str:
        path = Path(path)
        return path.relative_to(dataset.root).as_posix() if path.is_relative_to(dataset.root) else path.name

    report["misclassified"] = [{**e, "source": inside(e["source"])} for e in report["misclassified"]]
    report["skipped"] = [{"file": inside(s["file"]), "reason": _named(s["reason"], dataset)} for s in report["skipped"]]
    report["dataset"]["source"] = dataset.label
    return report


class _Cancelled(Exception):
    """Raised from the progress callback when the evaluation was cancelled."""


class Evaluations:
    def __init__(self, state):
        self.state = state

    def settle_stale(self) -> None:
        """An evaluation whose worker is gone (on this host), or that has not written for STALE_AFTER_S (on any
        host), reads as failed and frees the slot, instead of blocking every later one. Reads first: this runs on
        every poll, and only a stale row needs a write."""
        cutoff = utcnow() - timedelta(seconds=STALE_AFTER_S)
        with self.state.db.session() as session:
            running = session.execute(select(Evaluation.id, Evaluation.owner, Evaluation.heartbeat_at)
                                      .where(Evaluation.status == "running")).all()
        stale = [row.id for row in running if (row.owner and owner_gone(row.owner))
                 or _aware(row.heartbeat_at) < cutoff]
        if stale:
            self._update_where(Evaluation.id.in_(stale), Evaluation.status == "running", status="failed", slot=None,
                               finished_at=utcnow(),
                               error="interrupted: the server stopped while this evaluation was running")

    def start(self, model: str, version: int | None, dataset_name: str, misclassified: int) -> int:
        state = self.state
        dataset = find_dataset(dataset_name, state.settings.datasets_folder)
        ref = state.models.resolve(model, version)
        loaded = state.infer_blocking(lambda: state.models.load(ref))
        adapter = loaded.checkpoint.adapter
        if dataset.kind == "mnist":
            if loaded.checkpoint.spec.dataset != "mnist":
                raise InputError(f"{model} does not read MNIST digits: evaluate it on a folder dataset")
            split = dataset_name.partition(":")[2]
            data = MnistSet(load_mnist(split, state.settings.engine_settings()), split)
        else:  # the dataset's classes must map onto the model's: a 422 now, not a failed evaluation later
            try:
                data = files_for(adapter, dataset.files())
            except DataError as e:  # the dataset, named as the API names it
                raise InputError(_named(str(e), dataset)) from None
            if not len(data):
                raise InputError(f"{dataset.label} names no image that can be used: "
                                 + "; ".join(f"{s['file']}: {s['reason']}" for s in data.skipped[:3]))
        self.settle_stale()
        row = Evaluation(model=model, version_id=ref.id, dataset=dataset_name, status="running", done=0,
                         total=len(data), owner=process_identity(), slot=1)
        evaluation_id = insert_holding_the_slot(state.db, row,
                                                lambda running: f"evaluation {running} is still running: one at a time")
        threading.Thread(target=self._run, args=(evaluation_id, adapter, data, dataset, misclassified),
                         name=f"convscope-evaluation-{evaluation_id}", daemon=True).start()
        return evaluation_id

    def cancel(self, evaluation_id: int) -> None:
        with self.state.db.session(write=True) as session:
            row = session.get(Evaluation, evaluation_id)
            if row is None:
                raise NotFound(f"no evaluation {evaluation_id}")
            if row.status != "running":
                raise Conflict(f"evaluation {evaluation_id} already ended ({row.status})")
            row.cancel_requested = True  # seen by the worker that runs it at its next progress write

    def _run(self, evaluation_id: int, adapter, data: MnistSet | FileSet, dataset: Dataset, misclassified: int):
        last_write = 0.0

        def forward(x: torch.Tensor) -> torch.Tensor:
            def on_model_thread():
                with torch.inference_mode():
                    return adapter.logits(x)
            return self.state.infer_blocking(on_model_thread)

        def progress(done: int, total: int) -> None:
            """Writes the progress (the heartbeat too) twice a second, and stops a cancelled evaluation."""
            nonlocal last_write
            if time.monotonic() - last_write >= PROGRESS_EVERY_S:
                last_write = time.monotonic()
                self._update_where(Evaluation.id == evaluation_id, done=done, heartbeat_at=utcnow())
                with self.state.db.session() as session:
                    if session.scalar(select(Evaluation.cancel_requested).where(Evaluation.id == evaluation_id)):
                        raise _Cancelled

        try:
            report = evaluate_model(adapter, data, batch_size=SERVER_BATCH, progress=progress,
                                    misclassified_limit=misclassified, forward=forward).as_dict()
            self._end(evaluation_id, status="completed", done=report["metrics"]["count"],
                      accuracy=report["metrics"]["accuracy"], report=_relative(report, dataset))
        except _Cancelled:
            self._end(evaluation_id, status="cancelled")
        except Exception as e:  # noqa: BLE001 - whatever went wrong, the record says so and the server goes on
            log.exception("evaluation %s failed", evaluation_id)
            message = str(e) if isinstance(e, ConvscopeError) else f"{type(e).__name__}: {e}"
            self._end(evaluation_id, status="failed", error=_named(message, dataset))

    def _end(self, evaluation_id: int, **values) -> None:
        self._update_where(Evaluation.id == evaluation_id, slot=None, finished_at=utcnow(), **values)

    def _update_where(self, *where, **values) -> None:
        with self.state.db.session(write=True) as session:
            session.execute(update(Evaluation).where(*where).values(**values))


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything here is written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def dataset_file(dataset: Dataset, relative: str) -> Path:
    """A file of a folder or CSV dataset by its path inside its folder: only an image the dataset lists. A folder's
    rule is checked on the one path (no listing of thousands of files per thumbnail): inside the folder once
    resolved, within a class sub-folder, an image suffix, no hidden part."""
    root = dataset.root.resolve()
    wanted = (dataset.root / relative).resolve()
    parts = Path(relative).parts
    if dataset.csv is not None:
        listed = wanted in {f.resolve() for f in dataset.files().files}
    else:
        listed = (len(parts) >= 2 and not any(part.startswith(".") for part in parts)
                  and wanted.suffix.lower() in IMAGE_SUFFIXES and wanted.is_file())
    if root not in wanted.parents or not listed:
        raise NotFound(f"no image {relative!r} in {dataset.name}")
    return wanted
