"""Model versions and the loaded models that answer requests.

Every registered model's packaged weights are version 1; each finished training job adds the next version, its
checkpoint stored in the database. Versions never change once written, so a loaded model is cached by version
id (a few at a time) and loaded at most once per worker. Which version is active is read from the database on
every request (one primary-key lookup, about 0.1 ms), so an activation applies at once on every worker.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..errors import InputError, ModelError
from ..inspect import Inspector
from ..models.checkpoint import Checkpoint, checkpoint_from_bytes, load_model, read_metadata
from ..models.finetuned import FineTuned, register_finetuned
from ..models.registry import MODELS
from .db.database import Database
from .db.tables import ActiveModel, ModelVersion
from .errors import Conflict, NotFound

CACHE_SIZE = 6


@dataclass(frozen=True)
class VersionRef:
    id: int
    model: str
    version: int


@dataclass
class LoadedModel:
    ref: VersionRef
    checkpoint: Checkpoint
    inspector: Inspector


def _test_accuracy(metadata: dict) -> float | None:
    return (metadata.get("test_metrics") or {}).get("accuracy")


def _details(metadata: dict) -> dict:
    """What a version listing shows; the architecture is served from the loaded model instead. Where the run's
    TensorBoard log went is a path on the server: left out."""
    details = {k: metadata.get(k) for k in ("created", "convscope_version", "parameters", "training", "history",
                                            "test_metrics", "validation_metrics", "finetuned", "data", "source")}
    data = details.get("data")
    if isinstance(data, dict) and isinstance(data.get("source"), str):  # a fine-tuning folder: its name only
        details["data"] = {**data, "source": Path(data["source"]).name}
    config = (details.get("training") or {}).get("config")
    if isinstance(config, dict) and "tensorboard_dir" in config:
        details["training"] = {**details["training"], "config": {k: v for k, v in config.items()
                                                                 if k != "tensorboard_dir"}}
    return details


FROM_THE_SPEC = ("packaged", "pretrained", "user")  # version 1 sources: loaded by name, not from the database


def _first_version(spec) -> tuple[str, dict]:
    """Version 1 of a model: its source and the metadata shown for it."""
    if spec.user is not None:
        return "user", {"source": spec.user.public_source()}
    if spec.weights:
        record = spec.weights[0]
        return "pretrained", {"source": {"weights": record.key, "url": record.url, "sha256": record.sha256},
                              "test_metrics": {"imagenet_acc1": record.acc1, "imagenet_acc5": record.acc5}}
    return "packaged", read_metadata(spec.default_weights_path())


class ModelStore:
    def __init__(self, db: Database, replicas: int = 1):
        self.db = db
        self.replicas = replicas  # model copies per version: one per thread that inspects at once
        self._loaded: OrderedDict[int, LoadedModel] = OrderedDict()
        self._refs: dict[tuple[str, int], VersionRef] = {}
        self._lock = threading.Lock()

    def seed(self) -> None:
        """Record every model's packaged weights (or a user's model as the server was started with it) as
        version 1 and make it active where nothing is (idempotent, and safe when several workers start at once);
        register the fine-tuned models the database holds."""
        for spec in MODELS.values():
            if spec.loadable:
                self.seed_model(spec)
        self.sync_finetuned()

    def sync_finetuned(self) -> list[str]:
        """Register the fine-tuned models that are in the database but not yet in this worker's registry (made by
        a job another worker ran); their architecture comes from their checkpoint's metadata. Returns them."""
        with self.db.session() as session:
            names = set(session.scalars(select(ModelVersion.model).where(ModelVersion.source == "finetuned")
                                        .distinct())) - set(MODELS)
            for name in sorted(names):
                row = session.scalars(select(ModelVersion).where(ModelVersion.model == name)
                                      .order_by(ModelVersion.version.desc())).first()
                register_finetuned(FineTuned.from_metadata(name, row.details["finetuned"]))
        return sorted(names)

    def seed_model(self, spec) -> None:
        """One model's version 1 (see :meth:`seed`); also run when pretrained weights arrive while serving."""
        source, metadata = _first_version(spec)
        try:
            with self.db.session(write=True) as session:
                exists = session.scalar(select(ModelVersion.id).where(ModelVersion.model == spec.name,
                                                                      ModelVersion.version == 1))
                if exists is None:
                    row = ModelVersion(model=spec.name, version=1, source=source,
                                       test_accuracy=_test_accuracy(metadata), details=_details(metadata))
                    session.add(row)
                    session.flush()
                    exists = row.id
                if session.get(ActiveModel, spec.name) is None:
                    session.add(ActiveModel(model=spec.name, version_id=exists))
        except IntegrityError:  # another worker seeded it first
            pass

    def seed_if_arrived(self, model: str) -> bool:
        """Record version 1 of a pretrained model whose weights arrived while the server ran (downloaded, or
        placed by hand); call it where the model was found to have no version. True when it is loadable now."""
        spec = MODELS[model]
        if not (spec.weights and spec.loadable):
            return False
        self.seed_model(spec)
        return True

    def resolve(self, model: str, version: int | None = None) -> VersionRef:
        """The named version, or the active one."""
        if model not in MODELS and model not in self.sync_finetuned():
            raise NotFound(f"unknown model {model!r}; known models: {', '.join(MODELS)}")
        if version is None:
            return self.active(model)
        ref = self._refs.get((model, version))
        if ref is None:
            with self.db.session() as session:
                row_id = session.scalar(select(ModelVersion.id).where(ModelVersion.model == model,
                                                                      ModelVersion.version == version))
            if row_id is None:
                raise NotFound(f"{model} has no version {version}")
            ref = self._refs.setdefault((model, version), VersionRef(row_id, model, version))
        return ref

    def class_names(self, model: str) -> tuple[str, ...]:
        if model not in MODELS:
            raise InputError(f"the model {model!r} is not loaded on this server")
        return tuple(MODELS[model].class_names)

    def active(self, model: str) -> VersionRef:
        with self.db.engine.connect() as connection:  # Core, not a session: this runs on every request
            row = connection.execute(select(ModelVersion.id, ModelVersion.version).join(
                ActiveModel, ActiveModel.version_id == ModelVersion.id).where(ActiveModel.model == model)).first()
        if row is None and self.seed_if_arrived(model):
            return self.active(model)
        if row is None:
            if MODELS[model].weights:
                raise NotFound(f"{model} has no active version: its pretrained weights are not on this server yet "
                               f"(download them: POST /api/models/{model}/download, or `convscope weights fetch "
                               f"{model}`)")
            raise NotFound(f"{model} has no active version: train one first")
        return VersionRef(row.id, model, row.version)

    def activate(self, model: str, version: int) -> VersionRef:
        ref = self.resolve(model, version)
        loaded = self.load(ref)  # a version that cannot load must not become the one every request uses
        if not all(torch.isfinite(p).all() for p in loaded.checkpoint.model.parameters()):
            raise Conflict(f"{model} v{version} has NaN or infinite weights (its training diverged): it cannot be "
                           "activated")
        with self.db.session(write=True) as session:
            active = session.get(ActiveModel, model)
            if active is None:
                session.add(ActiveModel(model=model, version_id=ref.id))
            else:
                active.version_id = ref.id
        return ref

    def load(self, ref: VersionRef) -> LoadedModel:
        with self._lock:
            loaded = self._loaded.get(ref.id)
            if loaded is not None:
                self._loaded.move_to_end(ref.id)
                return loaded
            checkpoint = self._read_checkpoint(ref)
            loaded = LoadedModel(ref, checkpoint, Inspector(checkpoint.adapter, replicas=self.replicas))
            self._loaded[ref.id] = loaded
            while len(self._loaded) > CACHE_SIZE:
                self._loaded.popitem(last=False)
            return loaded

    def _read_checkpoint(self, ref: VersionRef) -> Checkpoint:
        with self.db.session() as session:
            row = session.get(ModelVersion, ref.id)
            source, data = row.source, row.checkpoint
        if source in FROM_THE_SPEC:
            if ref.model not in MODELS or not MODELS[ref.model].loadable:
                raise ModelError(f"the weights of {ref.model} are missing from this installation")
            return load_model(ref.model)
        return checkpoint_from_bytes(data)

    def register(self, model: str, checkpoint: bytes, job_id: int | None = None) -> VersionRef:
        """Store a trained checkpoint as the model's next version: activated only when it is the model's first
        (a fine-tuned model), so that a new model answers at once and a retrained one waits for activation."""
        metadata = checkpoint_from_bytes(checkpoint).metadata  # refuse a checkpoint that does not load
        if metadata.get("model") != model:
            raise ModelError(f"the checkpoint holds a {metadata.get('model')} model, not {model}")
        with self.db.session(write=True) as session:
            latest = session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.model == model))
            source = "finetuned" if "finetuned" in metadata else "trained"
            row = ModelVersion(model=model, version=(latest or 0) + 1, source=source, checkpoint=checkpoint,
                               test_accuracy=_test_accuracy(metadata), details=_details(metadata), job_id=job_id)
            session.add(row)
            session.flush()
            if session.get(ActiveModel, model) is None:  # a new model's first version: it answers at once
                session.add(ActiveModel(model=model, version_id=row.id))
            return VersionRef(row.id, model, row.version)
