"""The database tables (SQLAlchemy 2 declarative). Alembic migrations in ``migrations/`` create them; never
``create_all``.

Everything a server worker needs lives here, input images and trained checkpoints included, so several workers
on one PostgreSQL need no shared disk.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Integer, LargeBinary, String,
                        Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC. SQLite hands back naive datetimes; everything here is written in UTC."""
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).isoformat()


class Base(DeclarativeBase):
    pass


class ModelVersion(Base):
    """One set of weights for a registered model: the packaged default (version 1) or a trained run."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # "packaged", "pretrained", "user", "trained" or "finetuned"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    test_accuracy: Mapped[float | None] = mapped_column(Float)
    # The checkpoint's own metadata: training config and command, history, test metrics, data hashes.
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    # The safetensors file; NULL for packaged weights, which ship inside the package. Deferred: listing versions
    # must not read megabytes.
    checkpoint: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("training_jobs.id", ondelete="SET NULL"))


class ActiveModel(Base):
    """Which version of each model answers when a request names no version."""

    __tablename__ = "active_models"

    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class TrainingJob(Base):
    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), index=True)  # see jobs.py: queued ... failed
    # 1 while the job is queued or running, NULL afterwards: the unique constraint lets at most one job hold the
    # training slot, across every worker sharing the database.
    slot: Mapped[int | None] = mapped_column(Integer, unique=True)
    config: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Written every few seconds while the job runs: a job whose heartbeat stopped lost its server.
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # "host:pid:start" of the server worker running it (see jobs.py process_identity): a server on the same host
    # knows at once when that process is gone.
    owner: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list] = mapped_column(JSON, default=list)
    test_metrics: Mapped[dict | None] = mapped_column(JSON)
    progress: Mapped[dict | None] = mapped_column(JSON)  # the latest progress event
    events: Mapped[list[JobEvent]] = relationship(order_by="JobEvent.seq", cascade="all, delete-orphan",
                                                  passive_deletes=True)


class JobEvent(Base):
    """Every event a job emitted, in order, so a client that reconnects (or another worker) can catch up."""

    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict] = mapped_column(JSON)


class Prediction(Base):
    """A saved prediction: the input image as the user gave it, and what the server computed from it."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    model: Mapped[str] = mapped_column(String(64), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    input_kind: Mapped[str] = mapped_column(String(16))  # "drawing", "upload" or "pixels"
    preprocess: Mapped[bool] = mapped_column(Boolean)
    # As the server wrote it: a JPEG upload as JPEG, anything else as PNG; never the client's own bytes.
    input_image: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    input_format: Mapped[str] = mapped_column(String(8), default="png")  # "png", "jpeg" or "webp"
    input_bytes: Mapped[int] = mapped_column(Integer, default=0)  # its size, which the store's cap sums
    predicted: Mapped[int] = mapped_column(Integer, index=True)  # the class index
    predicted_class: Mapped[str] = mapped_column(String(200))  # its name in the model's class list
    confidence: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[list] = mapped_column(JSON)
    version: Mapped[ModelVersion] = relationship(lazy="joined")
    reports: Mapped[list[Report]] = relationship(back_populates="prediction", order_by="Report.id",
                                                 cascade="all, delete-orphan", passive_deletes=True)
    reruns: Mapped[list[Rerun]] = relationship(order_by="Rerun.id", cascade="all, delete-orphan",
                                               passive_deletes=True)


class Rerun(Base):
    """A later run of a saved prediction's input, with the version it ran on. The original stays as it was."""

    __tablename__ = "reruns"

    id: Mapped[int] = mapped_column(primary_key=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    predicted: Mapped[int] = mapped_column(Integer)
    predicted_class: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[list] = mapped_column(JSON)
    version: Mapped[ModelVersion] = relationship(lazy="joined")


class Report(Base):
    """A user's statement that a saved prediction is wrong: the correct class and why. The reason is plain text."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), index=True)
    # A class index of the prediction's model and its name; both None: "none of these" (the reason says what)
    correct_label: Mapped[int | None] = mapped_column(Integer)
    correct_class: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    prediction: Mapped[Prediction] = relationship(back_populates="reports")


class Evaluation(Base):
    """A model version scored on a labelled set (``mnist:test``, ``folder:<name>``): its progress while it runs, then
    the whole report (metrics, reliability bins, confusion, mistakes) as JSON."""

    __tablename__ = "evaluations"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    model: Mapped[str] = mapped_column(String(64), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    dataset: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))  # "running", "completed" or "failed"
    done: Mapped[int] = mapped_column(Integer, default=0)  # examples scored so far
    total: Mapped[int] = mapped_column(Integer, default=0)
    accuracy: Mapped[float | None] = mapped_column(Float)  # top-1, for listings
    report: Mapped[dict | None] = deferred(mapped_column(JSON))
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(200))  # "host:pid:start" of the worker running it
    # 1 while running, NULL after: unique, so a second start fails on the database's constraint on any worker
    slot: Mapped[int | None] = mapped_column(Integer, unique=True)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[ModelVersion] = relationship(lazy="joined")
