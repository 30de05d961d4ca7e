from fastapi import APIRouter, Depends, Query

from ...models.registry import MODELS
from .. import records
from ..schemas import INT4_MAX, RecordId, ReportRequest, ResolveRequest
from ..state import AppState, app_state
from ._documented import DocumentedRoute

router = APIRouter(tags=["reports"], route_class=DocumentedRoute)


@router.post("/predictions/{prediction_id}/reports", status_code=201,
             summary="Report a saved prediction as wrong, with the correct class and a reason (plain text)")
def report(prediction_id: RecordId, request: ReportRequest, state: AppState = Depends(app_state)) -> dict:
    """``correct_label`` is a class index of the prediction's model (``GET /api/models/{name}`` lists them)."""
    with state.db.session(write=True) as session:
        return records.report_body(records.add_report(session, prediction_id, request.correct_label,
                                                      request.reason, state.models.class_names))


@router.get("/reports", summary="Reports, newest first, with the prediction each is about")
def list_reports(state: AppState = Depends(app_state), resolved: bool | None = None,
                 limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=INT4_MAX)) -> dict:
    with state.db.session() as session:
        items, total = records.list_reports(session, resolved, limit, offset)
        return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.put("/reports/{report_id}", summary="Mark a report resolved (or open again)")
def resolve(report_id: RecordId, request: ResolveRequest, state: AppState = Depends(app_state)) -> dict:
    with state.db.session(write=True) as session:
        return records.report_body(records.set_resolved(session, report_id, request.resolved))


@router.get("/stats", summary="Dashboard statistics: counts per class, reported error rate, confusion matrix")
def stats(state: AppState = Depends(app_state),
          model: str | None = Query(None, description="only this model's predictions")) -> dict:
    """The classes are those that occur, and with ``model`` every class of that model when it has at most
    100 (the MNIST digits all show, ImageNet's 1,000 only where they occur)."""
    names = MODELS[model].class_names if model in MODELS else ()
    with state.db.session() as session:
        return records.statistics(session, model, tuple(names) if len(names) <= 100 else ())
