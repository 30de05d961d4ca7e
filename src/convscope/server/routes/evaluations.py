"""Evaluating a model version on a named dataset, in the background, and the report it leaves; the datasets."""

from fastapi import APIRouter, Depends, File, Query, Response, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy import func, select

from ..db.tables import Evaluation
from ..errors import NotFound
from ..evaluations import dataset_file, evaluation_body, find_dataset, list_datasets
from ..schemas import INT4_MAX, EvaluationRequest, RecordId, errors
from ..security import require_admin
from ..uploads import add_images, delete_dataset
from ..state import AppState, app_state
from ._documented import DocumentedRoute

router = APIRouter(tags=["evaluation"], route_class=DocumentedRoute)


@router.get("/datasets", summary="The labelled sets models can be evaluated and fine-tuned on: MNIST's splits and "
                                 "the server's image folders and CSV files, with their classes")
def datasets(state: AppState = Depends(app_state)) -> dict:
    return {"items": list_datasets(state.settings)}


@router.get("/datasets/{name}/image", summary="One image of a folder dataset, by its path inside the folder",
            response_class=FileResponse,
            responses={200: {"content": {"image/*": {}}}, **errors(e404="no such dataset or image")})
def dataset_image(name: str, file: str = Query(max_length=1000, description="e.g. cat/1.jpg, as a report names it"),
                  state: AppState = Depends(app_state)) -> FileResponse:
    dataset = find_dataset(name, state.settings.datasets_folder)
    if dataset.root is None:
        raise NotFound(f"{name} has no image files: GET /api/samples?index=N&split=... gives MNIST's")
    return FileResponse(dataset_file(dataset, file), headers={"Cache-Control": "no-cache"})


def _upload_name(name: str) -> str:
    kind, _, rest = name.partition(":")
    if kind != "folder" or not rest:
        raise NotFound(f"{name!r}: images are uploaded to a folder dataset, folder:<name>")
    return rest


@router.post("/datasets/{name}/images", status_code=201, dependencies=[Depends(require_admin)],
             summary="Upload images to a folder dataset (admin): each file named class/file.jpg; a new name makes "
                     "a new dataset",
             responses=errors(e404="not a folder:<name>", e409="a folder placed by hand, or over the size limit",
                              e413="a request over the body limit: send the images in several requests",
                              e415="not a multipart request",
                              e422="a bad dataset name"))
def upload_images(name: str, files: list[UploadFile] = File(description="images, each named class/file"),
                  state: AppState = Depends(app_state)) -> dict:
    """Every file is decoded before it is kept; those that are not images come back in ``refused`` with why."""
    images = [(upload.filename or "", upload.file.read()) for upload in files]
    return add_images(state.settings.datasets_folder, _upload_name(name), images, state.settings.max_image_pixels)


@router.delete("/datasets/{name}", status_code=204, dependencies=[Depends(require_admin)],
               summary="Delete an uploaded folder dataset (admin); a folder placed by hand stays",
               responses=errors(e404="no such folder dataset", e409="a folder placed on the server by hand"))
def delete(name: str, state: AppState = Depends(app_state)) -> Response:
    delete_dataset(state.settings.datasets_folder, _upload_name(name))
    return Response(status_code=204)


@router.post("/evaluations", status_code=202, summary="Evaluate a model version on a dataset, in the background "
                                                       "(admin; one at a time)", dependencies=[Depends(require_admin)],
             responses=errors(e404="unknown model, version or dataset", e409="an evaluation is already running",
                              e422="a dataset the model cannot read: MNIST for a photo model, or folder names "
                                   "that are not its classes"))
def start(request: EvaluationRequest, state: AppState = Depends(app_state)) -> dict:
    """Follow it with GET /api/evaluations/{id}: ``done`` of ``total`` while it runs, then the report."""
    evaluation_id = state.evaluations.start(request.model, request.version, request.dataset, request.misclassified)
    return _one(state, evaluation_id, with_report=False)


@router.post("/evaluations/{evaluation_id}/cancel", status_code=202, dependencies=[Depends(require_admin)],
             summary="Cancel a running evaluation (admin)", responses=errors(e409="the evaluation already ended"))
def cancel(evaluation_id: RecordId, state: AppState = Depends(app_state)) -> dict:
    """It stops at its next progress write (within about a second) and reads as cancelled."""
    state.evaluations.cancel(evaluation_id)
    return _one(state, evaluation_id, with_report=False)


@router.get("/evaluations", summary="Evaluations, newest first, without their reports")
def list_evaluations(state: AppState = Depends(app_state), model: str | None = Query(None, max_length=64),
                     limit: int = Query(20, ge=1, le=200), offset: int = Query(0, ge=0, le=INT4_MAX)) -> dict:
    state.evaluations.settle_stale()
    query = select(Evaluation).order_by(Evaluation.id.desc())
    counted = select(func.count()).select_from(Evaluation)
    if model is not None:
        query, counted = query.where(Evaluation.model == model), counted.where(Evaluation.model == model)
    with state.db.session() as session:
        items = [evaluation_body(row) for row in session.scalars(query.limit(limit).offset(offset))]
        total = session.scalar(counted)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/evaluations/{evaluation_id}", summary="An evaluation: its progress, then its report (metrics, "
                                                    "reliability bins, confusion, the most confident mistakes)")
def get_evaluation(evaluation_id: RecordId, state: AppState = Depends(app_state)) -> dict:
    state.evaluations.settle_stale()
    return _one(state, evaluation_id, with_report=True)


def _one(state: AppState, evaluation_id: int, with_report: bool) -> dict:
    with state.db.session() as session:
        row = session.get(Evaluation, evaluation_id)
        if row is None:
            raise NotFound(f"no evaluation {evaluation_id}")
        return evaluation_body(row, with_report)
