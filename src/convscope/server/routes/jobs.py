import asyncio
from contextlib import aclosing

from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy import func, select

from ...data.labelled import image_folder
from ...errors import DataError, InputError
from ...models.registry import MODELS
from ...training import FineTuneConfig, TrainConfig
from ..db.tables import TrainingJob
from ..errors import NotFound
from ..jobs import job_body, job_version
from ..evaluations import find_dataset
from ..schemas import INT4_MAX, FineTuneRequest, JobRequest, RecordId, errors
from ..security import require_admin
from ..state import AppState, app_state
from ._documented import DocumentedRoute

router = APIRouter(prefix="/jobs", tags=["training jobs"], route_class=DocumentedRoute)


def _job(state: AppState, job_id: int) -> dict:
    with state.db.session() as session:
        job = session.get(TrainingJob, job_id)
        if job is None:
            raise NotFound(f"no training job {job_id}")
        return job_body(job, job_version(session, job_id))


@router.post("", status_code=202, summary="Start training in a separate process (admin; one job at a time)",
             dependencies=[Depends(require_admin)],
             responses=errors(e404="unknown model", e409="a job is already running: one at a time",
                              e503="MNIST is not here and cannot be downloaded"))
def start(request: JobRequest, state: AppState = Depends(app_state)) -> dict:
    job_id = state.jobs.start(TrainConfig(**request.model_dump(), probes=10))  # events carry 10 probe digits
    return _job(state, job_id)


@router.post("/finetune", status_code=202, dependencies=[Depends(require_admin)],
             summary="Fine-tune a model on a folder dataset into a new model, in a separate process (admin; one "
                     "job at a time)",
             responses=errors(e404="unknown base model or dataset", e409="a job is already running, or the name "
                              "is taken", e422="not a folder dataset, or a folder that cannot be learned from"))
def start_finetune(request: FineTuneRequest, state: AppState = Depends(app_state)) -> dict:
    """The job follows as a training job does (events, cancel); once it ends well its model is registered under
    ``name``, version 1, active, and answers like any other."""
    dataset = find_dataset(request.dataset, state.settings.datasets_folder)
    if dataset.kind != "folder":
        raise InputError(f"{request.dataset} is not an image folder: fine-tuning takes folder:<name>")
    if request.base not in MODELS or MODELS[request.base].dataset not in ("mnist", "imagenet", "user"):
        raise NotFound(f"{request.base!r} cannot be fine-tuned here: choose a built-in model or one the server was "
                       "started with")
    try:
        image_folder(dataset.root, min_classes=2)  # a folder it cannot learn from is a 422 now, not a failed job
    except DataError as e:
        raise InputError(str(e).replace(str(dataset.root), dataset.root.name)) from None
    config = FineTuneConfig(**request.model_dump(exclude={"dataset"}))
    return _job(state, state.jobs.start_finetune(config, request.dataset, dataset.root))


@router.get("", summary="Training jobs, newest first")
def list_jobs(state: AppState = Depends(app_state), limit: int = Query(20, ge=1, le=200),
              offset: int = Query(0, ge=0, le=INT4_MAX)) -> dict:
    state.jobs.fail_stale_jobs()  # a job whose server stopped reads as failed, not as running forever
    with state.db.session() as session:
        total = session.scalar(select(func.count()).select_from(TrainingJob))
        jobs = session.scalars(select(TrainingJob).order_by(TrainingJob.id.desc()).limit(limit).offset(offset))
        items = [job_body(job, job_version(session, job.id)) for job in jobs]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{job_id}", summary="A job's status, progress, history, test metrics and the version it made")
def get_job(job_id: RecordId, state: AppState = Depends(app_state)) -> dict:
    state.jobs.fail_stale_jobs()
    return _job(state, job_id)


@router.post("/{job_id}/cancel", status_code=202, summary="Cancel a running job (admin)",
             dependencies=[Depends(require_admin)], responses=errors(e409="the job already ended"))
def cancel(job_id: RecordId, state: AppState = Depends(app_state)) -> dict:
    state.jobs.cancel(job_id)
    return _job(state, job_id)


def existing_job(job_id: RecordId, state: AppState = Depends(app_state)) -> int:
    """Dependency: runs before a stream starts, so an unknown job is a plain 404."""
    _job(state, job_id)
    return job_id


@router.get("/{job_id}/events", response_class=EventSourceResponse,
            summary="Live Server-Sent Events: started, progress, epoch (with conv-1 filters and validation "
                    "accuracy), finished or failed, then end (the job record)")
async def events(job_id: int = Depends(existing_job), state: AppState = Depends(app_state),
                 after: int = Query(0, ge=0, le=INT4_MAX, description="resume after this event id"),
                 last_event_id: int | None = Header(None, description="sent by EventSource on reconnect")):
    """Each event's ``id`` is its sequence number: a client that reconnects (``Last-Event-ID``) catches up."""
    # aclosing: a client that goes away closes this generator at its yield, and with it the feed it follows at
    # once (a database reader per job is shared by its followers), not whenever the feed is garbage-collected
    async with aclosing(state.jobs.follow(job_id, max(after, last_event_id or 0))) as feed:
        async for event in feed:
            yield ServerSentEvent(raw_data=event.wire, event=event.type, id=str(event.seq))
    yield ServerSentEvent(data=await asyncio.to_thread(_job, state, job_id), event="end")
