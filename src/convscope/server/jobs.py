"""Training jobs: one at a time, each in its own process, its events streamed live and kept in the database.

The job row's ``slot`` column is unique and set only while a job is queued or running, so a second start fails
on the database's constraint (409) whichever worker tries it. A monitor thread per job reads the process's
events, publishes them to live subscribers (:class:`JobFeed`, for Server-Sent Events), stores them, and at the end
registers the trained checkpoint as a new model version. A job whose process dies, or whose server died (its
heartbeat stopped), is marked failed; a job whose loss or weights become NaN or infinite is stopped and marked
diverged, with no version; the active model is only ever changed by an explicit activation.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import multiprocessing
import os
import queue
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, update

from ..errors import InputError
from ..models.registry import MODELS
from ..models.user import MODEL_NAME
from ..settings import Settings as EngineSettings
from ..training import FineTuneConfig, TrainConfig
from .db.database import Database
from .db.tables import JobEvent, ModelVersion, TrainingJob, iso, utcnow
from .errors import Conflict, NotFound
from .slots import insert_holding_the_slot
from .model_store import ModelStore
from .worker import run_job

log = logging.getLogger("convscope.server")

ACTIVE = ("queued", "running")
HEARTBEAT_S = 2.0
STALE_AFTER_S = 15.0  # a queued or running job without a heartbeat for this long lost its server
# Progress events are written to the database at most this often; streams served by another worker read them
# from there (routes/jobs.py polls every 0.1 s), so they lag by at most about 0.2 s.
FLUSH_S = 0.1
SHUTDOWN_WAIT_S = 10.0
WATCHED = ("progress", "epoch", "finished")  # the events whose numbers tell whether training diverged
SUCCESSFUL = ("completed", "target_reached", "stopped_early")  # runs whose model is kept


def finite(value):
    """``value`` (JSON-ready data) with every NaN or infinite number replaced by None, and whether it had one.
    (JSON has no NaN: PostgreSQL refuses it, and browsers' JSON.parse too.)"""
    if isinstance(value, float):
        return (value, False) if math.isfinite(value) else (None, True)
    if isinstance(value, dict):
        pairs = [(key, finite(item)) for key, item in value.items()]
        return {key: item for key, (item, _) in pairs}, any(bad for _, (_, bad) in pairs)
    if isinstance(value, list):
        items = [finite(item) for item in value]
        return [item for item, _ in items], any(bad for _, bad in items)
    return value, False


def process_identity(pid: int | None = None) -> str | None:
    """"host:pid:start" of a process running on this host (start: its start time, from /proc where there is one,
    so that a reused pid is another identity); None when no process has that pid."""
    pid = pid or os.getpid()
    host = socket.gethostname()
    try:
        # /proc/<pid>/stat: after the command's closing ")" come fields 3 onwards; field 22 is the start time
        start = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except OSError:
        try:
            os.kill(pid, 0)  # no /proc (macOS): whether the pid exists is all there is to know
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        start = ""
    return f"{host}:{pid}:{start}"


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def owner_gone(owner: str) -> bool:
    """Whether the process an ``owner`` string names has certainly stopped (it ran on this host and is gone)."""
    host, pid, _ = owner.rsplit(":", 2)
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's process: only its heartbeat can tell
    return process_identity(int(pid)) != owner


@dataclass
class FeedEvent:
    seq: int  # 1-based, per job
    type: str
    data: dict

    @functools.cached_property
    def wire(self) -> str:
        """The data as JSON, encoded once however many streams send it (an epoch's filters are kilobytes)."""
        return json.dumps(self.data, separators=(",", ":"), allow_nan=False)


# A feed keeps its newest events in memory; a follower further behind (a page opened late on a long job) reads the
# older ones from the database. Every event stayed in memory while its job ran: a progress event with its probes
# is about 25 KB, so a worker grew about 10 MB a minute during a long job (bench/load_soak.py --soak). 256 events
# are a minute of progress, long after they were written to the database (every FLUSH_S).
KEEP_EVENTS = 256

# (after, up_to) -> the first stored events with after < seq <= up_to (at most READ_PAGE of them)
EarlierEvents = Callable[[int, int], list["FeedEvent"]]
READ_PAGE = 500  # events per database read: about 12 MB of progress events at most in memory at once


class JobFeed:
    """A running job's events for any number of async subscribers; written from the monitor thread. Seqs run from 1
    without gaps; the oldest events beyond ``keep`` leave memory and are read back with ``earlier`` (in a thread)
    for a follower that needs them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, earlier: EarlierEvents | None = None,
                 keep: int | None = None):
        self.events: list[FeedEvent] = []
        self.dropped = 0  # events no longer in memory: events[i] has seq dropped + i + 1
        self.done = False
        self.error: str | None = None  # why the feed broke off (its followers raise; the job may still run)
        self._loop = loop
        self._earlier = earlier
        self._keep = keep or KEEP_EVENTS
        self._waiters: set[asyncio.Event] = set()

    def publish(self, event: FeedEvent | None) -> None:
        """Add an event (None: the job ended) and wake the subscribers. Thread-safe."""
        if event is None:
            self.done = True
        else:
            self.events.append(event)
            extra = len(self.events) - self._keep
            if extra > 0:  # a new list: a follower on the loop's thread may be reading the old one
                self.events, self.dropped = self.events[extra:], self.dropped + extra
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the server's loop has closed (shutdown): nobody is listening any more
            pass

    def _wake(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    async def follow(self, after: int = 0) -> AsyncIterator[FeedEvent]:
        """Events with seq > ``after``, then each new one as it comes, until the job ends."""
        position = after
        while True:
            waiter = asyncio.Event()
            self._waiters.add(waiter)  # before looking, so an event published meanwhile still wakes us
            try:
                if position < self.dropped:  # behind what memory holds: from the database, a page at a time
                    page = await asyncio.to_thread(self._earlier, position, self.dropped) if self._earlier else []
                    for event in page:
                        yield event
                    position = page[-1].seq if page else self.dropped
                    continue
                while position - self.dropped < len(self.events):
                    event = self.events[position - self.dropped]
                    yield event
                    position = event.seq
                if self.done:
                    if self.error:  # a stream that breaks off (no "end") makes an EventSource reconnect and resume
                        raise ConnectionError(self.error)
                    return
                await waiter.wait()
            finally:
                self._waiters.discard(waiter)


READ_ATTEMPTS = 5  # database reads in a row that may fail (waiting 0.2, 0.4, ... s between) before streams break

StoredRead = Callable[[int, int], tuple[list[tuple[int, str, dict]], bool]]


class StoredFeeds:
    """The events of jobs this worker does not run (another worker runs them, or they ended), read from the
    database by one task per job however many streams here follow it, every ``poll_s``: each stream used to poll
    on its own (0.65% of a core apiece). The task stops when its last follower leaves or the job ends.

    ``read(job_id, after)`` gives the stored events with seq > after, [(seq, type, data)], and whether the job
    has ended; it runs in a thread."""

    def __init__(self, read: StoredRead, loop: asyncio.AbstractEventLoop, poll_s: float = 0.1):
        self.read, self.loop, self.poll_s = read, loop, poll_s
        self._feeds: dict[int, tuple[JobFeed, asyncio.Task]] = {}
        self._followers: dict[int, int] = {}

    def earlier(self, job_id: int) -> EarlierEvents:
        """What a job's feed reads when a follower is behind what it keeps: the stored events."""
        def read(after: int, up_to: int) -> list[FeedEvent]:
            return [FeedEvent(seq, kind, data) for seq, kind, data in self.read(job_id, after)[0] if seq <= up_to]
        return read

    async def follow(self, job_id: int, after: int = 0) -> AsyncIterator[FeedEvent]:
        if job_id not in self._feeds:
            feed = JobFeed(self.loop, self.earlier(job_id))
            self._feeds[job_id] = feed, asyncio.create_task(self._poll(job_id, feed))
        feed, task = self._feeds[job_id]
        self._followers[job_id] = self._followers.get(job_id, 0) + 1
        try:
            async for event in feed.follow(after):
                yield event
        finally:
            self._followers[job_id] -= 1
            if not self._followers[job_id]:
                del self._followers[job_id], self._feeds[job_id]
                task.cancel()

    async def _poll(self, job_id: int, feed: JobFeed) -> None:
        position = 0  # stored events are contiguous from seq 1, so a feed's list index is seq - 1 as JobFeed expects
        failures = 0
        while True:
            try:
                stored, ended = await asyncio.to_thread(self.read, job_id, position)
            except Exception:  # the database is away: try again, a few times, then let the streams break off
                failures += 1
                log.warning("reading the events of training job %s failed (%d)", job_id, failures, exc_info=True)
                if failures == READ_ATTEMPTS:
                    feed.error = "the job's events could not be read from the database"
                    break
                await asyncio.sleep(self.poll_s * 2 ** failures)
                continue
            failures = 0
            for seq, kind, data in stored:
                feed.publish(FeedEvent(seq, kind, data))
                position = seq
            if ended:
                break
            if len(stored) < READ_PAGE:  # a full page may have left more behind: read on at once
                await asyncio.sleep(self.poll_s)
        feed.publish(None)


@dataclass
class _LiveJob:
    id: int
    model: str
    process: multiprocessing.process.BaseProcess
    events: multiprocessing.queues.Queue
    cancel: multiprocessing.synchronize.Event
    feed: JobFeed
    checkpoint: Path
    monitor: threading.Thread | None = None
    terminal: dict | None = field(default=None)  # the "finished" or "failed" event
    diverged: str | None = None  # why the job was stopped: its loss or weights became NaN or infinite


class JobManager:
    def __init__(self, db: Database, store: ModelStore, engine_settings: EngineSettings,
                 loop: asyncio.AbstractEventLoop):
        self.db, self.store, self.engine_settings, self.loop = db, store, engine_settings, loop
        # Each finished job's checkpoint also stays here as a file, for the CLI (`convscope evaluate --checkpoint`);
        # the database copy is the one the server uses.
        self.models_dir = engine_settings.models_dir
        self._live: dict[int, _LiveJob] = {}
        self.stored = StoredFeeds(self._read_stored, loop)
        self._context = multiprocessing.get_context("spawn")  # never fork a process that holds threads and torch

    # --- starting and stopping -------------------------------------------------------------------------------

    def _log_dir(self, model: str, job_id: int) -> str | None:
        from ..training.tensorboard import tensorboard_available
        return str(self.engine_settings.runs_dir / f"{model}-job{job_id}") if tensorboard_available() else None

    def start(self, config: TrainConfig) -> int:
        """Train ``config.model`` from scratch in its own process."""
        if config.model not in MODELS:
            raise NotFound(f"unknown model {config.model!r}; known models: {', '.join(MODELS)}")
        if not MODELS[config.model].trainable:
            raise InputError(f"{config.model} is not an MNIST model: train it from scratch? fine-tune it on a folder "
                             "of images instead (POST /api/jobs/finetune)")
        return self._start(config.model, config, command="POST /api/jobs")

    def start_finetune(self, config: FineTuneConfig, dataset: str, folder: Path) -> int:
        """Fine-tune ``config.base`` on an image ``folder`` (the dataset so named) into the new model
        ``config.name``."""
        if config.base not in MODELS or not MODELS[config.base].loadable:
            raise NotFound(f"unknown or not loadable model {config.base!r}: GET /api/models lists them")
        if not MODEL_NAME.fullmatch(config.name):
            raise InputError(f"model name {config.name!r}: use 1-64 letters, digits, '_', '.' or '-'")
        with self.db.session() as session:
            taken = session.scalar(select(ModelVersion.id).where(ModelVersion.model == config.name).limit(1))
        if config.name in MODELS or taken is not None:
            raise Conflict(f"there is already a model called {config.name!r}: give the fine-tuned one a new name")
        # the job's process knows only the built-in models: a model of the user's own goes with it, by its files
        base_model = MODELS[config.base].user
        return self._start(config.name, config, {"kind": "finetune", "dataset": dataset}, str(folder),
                           "POST /api/jobs/finetune", base_model)

    def _start(self, model: str, config, extra: dict | None = None, folder: str | None = None,
               command: str = "POST /api/jobs", base_model=None) -> int:
        config.threads = config.threads or max(1, (os.cpu_count() or 2) - 1)  # leave a core to the server
        stored = {**(extra or {}), **config.as_dict()}
        self.fail_stale_jobs()
        job = TrainingJob(model=model, status="queued", slot=1, config=stored, history=[], owner=process_identity())
        job_id = insert_holding_the_slot(self.db, job, lambda running: f"training job {running} is still running: "
                                                                       "one job at a time; cancel it or wait")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        live = _LiveJob(job_id, model, None, self._context.Queue(), self._context.Event(),
                        JobFeed(self.loop, self.stored.earlier(job_id)),
                        self.models_dir / f"{model}-job{job_id}.safetensors")
        # Each job logs to TensorBoard as a CLI run does (when the tensorboard package is installed); the folder
        # (like the dataset's) stays out of the job's stored config, which the API shows: no server paths.
        logged = {**stored, "tensorboard_dir": self._log_dir(model, job_id)}
        live.process = self._context.Process(
            target=run_job, name=f"convscope-job-{job_id}", daemon=True,
            args=(logged, self.engine_settings, str(live.checkpoint), live.events, live.cancel, os.getpid(),
                  f"{command} {stored}", folder, base_model))
        self._live[job_id] = live
        try:
            live.process.start()
        except Exception as e:  # noqa: BLE001 - no process could be made (memory, process limits; spawn's own
            # RuntimeErrors): the job fails, the slot frees, and shutdown has no unstarted process to join
            self._live.pop(job_id)
            with self.db.session(write=True) as session:
                job = session.get(TrainingJob, job_id)
                job.status, job.slot, job.finished_at = "failed", None, utcnow()
                job.error = f"the training process could not start: {e}"
            return job_id
        live.monitor = threading.Thread(target=self._monitor, args=(live,), name=f"job-{job_id}-monitor",
                                        daemon=True)
        live.monitor.start()
        return job_id

    def cancel(self, job_id: int) -> None:
        self.fail_stale_jobs()  # a job whose server stopped cannot be cancelled: it has ended, and says how
        with self.db.session(write=True) as session:
            job = session.get(TrainingJob, job_id)
            if job is None:
                raise NotFound(f"no training job {job_id}")
            if job.status not in ACTIVE:
                raise Conflict(f"training job {job_id} already ended ({job.status})")
            job.cancel_requested = True  # seen by the worker that runs it, if that is not this one
        live = self._live.get(job_id)
        if live is not None:
            live.cancel.set()

    def follow(self, job_id: int, after: int = 0) -> AsyncIterator[FeedEvent]:
        """The job's events with seq > ``after``, then each new one, until it ends: from its process if this
        worker runs it, else from the database (StoredFeeds)."""
        live = self._live.get(job_id)
        return live.feed.follow(after) if live else self.stored.follow(job_id, after)

    def _read_stored(self, job_id: int, after: int) -> tuple[list[tuple[int, str, dict]], bool]:
        """The first READ_PAGE stored events with seq > after, and whether the job has ended with none left."""
        with self.db.session() as session:
            status = session.scalar(select(TrainingJob.status).where(TrainingJob.id == job_id))
            rows = session.execute(select(JobEvent.seq, JobEvent.type, JobEvent.data).where(
                JobEvent.job_id == job_id, JobEvent.seq > after).order_by(JobEvent.seq).limit(READ_PAGE)).all()
        # finite(): an older database may hold NaN, which JSON (and so the stream) cannot carry
        ended = status not in ACTIVE and len(rows) < READ_PAGE
        return [(seq, kind, finite(data)[0]) for seq, kind, data in rows], ended

    def fail_stale_jobs(self) -> None:
        """Jobs left queued or running by a server that stopped: failed, and the training slot freed. A job whose
        server process (its ``owner``) was on this host and is gone is settled at once; any other, once its
        heartbeat is STALE_AFTER_S old. Run at start-up, before a job starts, and when jobs are read."""
        cutoff = utcnow() - timedelta(seconds=STALE_AFTER_S)
        with self.db.session() as session:  # a read first: most of the time there is nothing to settle
            active = session.execute(select(TrainingJob.id, TrainingJob.owner, TrainingJob.heartbeat_at).where(
                TrainingJob.status.in_(ACTIVE), TrainingJob.id.not_in(list(self._live) or [-1]))).all()
        gone = [job_id for job_id, owner, _ in active if owner and owner_gone(owner)]
        stale = [job_id for job_id, _, heartbeat in active if _aware(heartbeat) < cutoff]
        if not gone and not stale:
            return
        with self.db.session(write=True) as session:
            session.execute(update(TrainingJob).where(
                TrainingJob.status.in_(ACTIVE),
                TrainingJob.id.in_(gone) | (TrainingJob.id.in_(stale) & (TrainingJob.heartbeat_at < cutoff))).values(
                status="failed", slot=None, finished_at=utcnow(),
                error="interrupted: the server stopped while this job was running"))

    def shutdown(self) -> None:
        """Cancel the running job and wait for it to end (it is recorded as cancelled)."""
        for live in list(self._live.values()):
            live.cancel.set()
        for live in list(self._live.values()):
            live.process.join(SHUTDOWN_WAIT_S)
            if live.process.is_alive():
                live.process.terminate()
            if live.monitor:
                live.monitor.join(SHUTDOWN_WAIT_S)

    # --- the monitor thread ----------------------------------------------------------------------------------

    def _monitor(self, live: _LiveJob) -> None:
        pending: list[FeedEvent] = []
        seq, last_flush, last_beat = 0, time.monotonic(), time.monotonic()
        try:
            while True:
                try:
                    data = live.events.get(timeout=FLUSH_S)
                except queue.Empty:
                    data = None
                    if not live.process.is_alive():
                        data = self._next_left_over(live)
                        if data is None:
                            break
                if data is not None:
                    data = self._check_finite(live, data)
                    if isinstance(data.get("checkpoint"), str):  # the file the run wrote: its name, not its path
                        data["checkpoint"] = Path(data["checkpoint"]).name
                    seq += 1
                    event = FeedEvent(seq, data.get("type", "event"), data)
                    live.feed.publish(event)
                    pending.append(event)
                    if event.type in ("finished", "failed"):
                        live.terminal = data
                now = time.monotonic()
                if pending and (now - last_flush >= FLUSH_S or pending[-1].type != "progress"):
                    self._store_events(live.id, pending)
                    pending, last_flush, last_beat = [], now, now
                elif now - last_beat >= HEARTBEAT_S:
                    self._heartbeat(live)
                    last_beat = now
            if pending:
                self._store_events(live.id, pending)
            self._finish(live)
        except Exception:
            log.exception("monitoring training job %s failed", live.id)
            self._finish(live, error="the server failed while recording this job; see its log")
        finally:
            live.feed.publish(None)
            self._live.pop(live.id, None)

    @staticmethod
    def _check_finite(live: _LiveJob, data: dict) -> dict:
        """The event with NaN and infinities as None; the first one in a training event stops the job (diverged)."""
        clean, bad = finite(data)
        if bad and data.get("type") in WATCHED and live.diverged is None:
            live.diverged = (f"the loss became NaN or infinite at step {data.get('step', '?')}: the run diverged "
                             "(try a lower learning rate); it was stopped and no model was saved")
            live.cancel.set()
        return clean

    @staticmethod
    def _next_left_over(live: _LiveJob) -> dict | None:
        try:
            return live.events.get(timeout=0.5)  # what the process sent just before it exited
        except queue.Empty:
            return None

    def _heartbeat(self, live: _LiveJob) -> None:
        with self.db.session(write=True) as session:
            job = session.get(TrainingJob, live.id)
            job.heartbeat_at = utcnow()
            if job.cancel_requested:
                live.cancel.set()

    def _store_events(self, job_id: int, events: list[FeedEvent]) -> None:
        with self.db.session(write=True) as session:
            job = session.get(TrainingJob, job_id)
            for event in events:
                session.add(JobEvent(job_id=job_id, seq=event.seq, type=event.type, data=event.data))
                if event.type in ("preparing", "started"):
                    job.status = "running"
                elif event.type == "progress":
                    job.progress = {k: v for k, v in event.data.items() if k != "first_conv_weight"}
                elif event.type == "epoch":
                    job.history = [*job.history, {k: v for k, v in event.data.items()
                                                  if k not in ("type", "first_conv_weight", "probes", "emitted_at")}]
                elif event.type == "finished":
                    job.test_metrics = event.data.get("test_metrics")
                elif event.type == "failed":
                    job.error = event.data.get("error")
            job.heartbeat_at = utcnow()
            if job.cancel_requested:
                self._live[job_id].cancel.set()

    def _finish(self, live: _LiveJob, error: str | None = None) -> None:
        terminal = live.terminal or {}
        status = terminal.get("status", "failed") if terminal.get("type") == "finished" else "failed"
        if error is None and not terminal:
            error = f"the training process stopped unexpectedly (exit code {live.process.exitcode})"
        if error is None and live.diverged:
            status = "diverged"
        if status in SUCCESSFUL and error is None:
            try:
                self.store.register(live.model, live.checkpoint.read_bytes(), job_id=live.id)
            except Exception as e:  # noqa: BLE001 - a job that cannot be registered failed, whatever the reason
                log.exception("registering the checkpoint of job %s failed", live.id)
                status, error = "failed", f"the trained model could not be stored: {e}"
        with self.db.session(write=True) as session:
            job = session.get(TrainingJob, live.id)
            job.status = "failed" if error else status
            job.error = error or live.diverged or job.error
            job.slot = None
            job.finished_at = utcnow()


def job_body(job: TrainingJob, version: ModelVersion | None) -> dict:
    return {
        "id": job.id, "model": job.model, "status": job.status, "config": job.config,
        "created_at": iso(job.created_at), "finished_at": iso(job.finished_at),
        "cancel_requested": job.cancel_requested, "error": job.error, "progress": job.progress,
        "history": job.history, "test_metrics": job.test_metrics,
        "version": version.version if version else None,
    }


def job_version(session, job_id: int) -> ModelVersion | None:
    return session.scalar(select(ModelVersion).where(ModelVersion.job_id == job_id))
