from fastapi import APIRouter, Depends, Query, Response

from .. import records
from ..errors import NotFound
from ..inference import Options, response_body, run
from ..inputs import MEDIA_TYPES, UserImage, from_stored
from ..schemas import INT4_MAX, RecordId, RerunRequest, SaveRequest, errors
from ..security import require_admin
from ..state import AppState, app_state
from ._inputs import UploadFields, json_image
from ._documented import DocumentedRoute

router = APIRouter(prefix="/predictions", tags=["saved predictions"], route_class=DocumentedRoute)


def _save(state: AppState, image: UserImage, model: str, version: int | None) -> dict:
    """The server computes the prediction itself from the image as it keeps it (a JPEG or WebP re-encoded: a re-run then
    sees the very pixels the prediction was made from): nothing the client says about it is kept."""
    stored = image.stored()  # encoded before the write transaction, which would otherwise wait on it
    if stored[1] != "png":  # lossy
        image = from_stored(stored[0], image.kind, image.preprocess)
    result = state.infer_blocking(lambda: run(state.models, image, Options(model=model, version=version, layers=())))
    with state.db.session(write=True) as session:
        saved = records.save_prediction(session, image, stored, result, state.settings.max_stored_image_bytes)
        body = records.prediction_body(saved)
    return body  # only after the commit: a 201 means the row is on disk


@router.post("", status_code=201, summary="Save a prediction of a drawing (data URL) or a 28x28 array",
             responses=errors(415, 507, e404="unknown model or version"))
def save(request: SaveRequest, state: AppState = Depends(app_state)) -> dict:
    return _save(state, json_image(request, state.settings), request.model, request.version)


@router.post("/upload", status_code=201, summary="Save a prediction of an uploaded image (multipart)",
             responses=errors(415, 507, e404="unknown model or version"))
def save_upload(fields: UploadFields = Depends(), state: AppState = Depends(app_state)) -> dict:
    return _save(state, fields.image(state.settings), fields.model, fields.version)


@router.get("", summary="Saved predictions, newest first, with filters and paging")
def list_saved(state: AppState = Depends(app_state),
               predicted: int | None = Query(None, ge=0, le=INT4_MAX, description="the predicted class index"),
               digit: int | None = Query(None, ge=0, le=INT4_MAX, description="the same as predicted (MNIST)"),
               model: str | None = None, reported: bool | None = None,
               limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=INT4_MAX)) -> dict:
    with state.db.session() as session:
        items, total = records.list_predictions(session, predicted if predicted is not None else digit, model,
                                                reported, limit, offset)
        return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{prediction_id}", summary="One saved prediction with its input image, reports and re-runs")
def get_saved(prediction_id: RecordId, state: AppState = Depends(app_state)) -> dict:
    with state.db.session() as session:
        return records.prediction_body(records.get_prediction(session, prediction_id), with_image=True)


@router.get("/{prediction_id}/image", summary="The saved input image (a JPEG or lossy WebP upload as such, the rest "
            "as PNG)", response_class=Response,
            responses={200: {"content": {media_type: {} for media_type in MEDIA_TYPES.values()}}})
def get_image(prediction_id: RecordId, state: AppState = Depends(app_state),
              v: int | None = Query(None, ge=0, description="the record's creation time, as listings give it in "
                                                             "image_url: a reused id then never hits a stale cache")
              ) -> Response:
    with state.db.session() as session:
        prediction = records.get_prediction(session, prediction_id)
        data, media_type = prediction.input_image, MEDIA_TYPES[prediction.input_format]
        stamp = records.image_stamp(prediction.created_at)
    if v is not None and v != stamp:  # a deleted record's URL: this id now names another prediction
        raise NotFound(f"saved prediction {prediction_id} is not the one that URL named (it was deleted)")
    # Cached for a day only under the URL that names this very record (with v); the bare URL is revalidated.
    cache = "private, max-age=86400, immutable" if v is not None else "private, no-cache"
    return Response(data, media_type=media_type, headers={"cache-control": cache})


@router.delete("/{prediction_id}", status_code=204, summary="Delete a saved prediction and its reports (admin)",
               dependencies=[Depends(require_admin)])
def delete_saved(prediction_id: RecordId, state: AppState = Depends(app_state)) -> Response:
    with state.db.session(write=True) as session:
        session.delete(records.get_prediction(session, prediction_id))
    return Response(status_code=204)


@router.post("/{prediction_id}/rerun", summary="Run a saved input again (active or chosen version), recorded; "
                                                "the original result is kept")
def rerun(prediction_id: RecordId, request: RerunRequest, state: AppState = Depends(app_state)) -> dict:
    with state.db.session() as session:
        saved = records.get_prediction(session, prediction_id)
        image = from_stored(saved.input_image, saved.input_kind, saved.preprocess)
        model = saved.model
    result = state.infer_blocking(lambda: run(state.models, image, request.options(model, request.version)))
    with state.db.session(write=True) as session:
        saved = records.get_prediction(session, prediction_id, lock=True)  # deleted meanwhile: 404
        recorded = records.rerun_body(records.add_rerun(session, saved, result))
        original = records.prediction_body(saved)
    return {"rerun": recorded, "original": original,
            "inspection": response_body(result, request.cam_method)}
