"""Saved predictions, their re-runs, and reports: the queries and the JSON each record becomes.

A saved prediction stores the input image (as a PNG the server wrote) and what the server computed from it;
nothing a client claims about the result is ever stored. Report reasons are stored and returned as plain text.
"""

from __future__ import annotations

import base64

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, selectinload

from .db.tables import Prediction, Report, Rerun, iso, utcnow
from .errors import NotFound
from .inference import Result
from .inputs import UserImage

DIGITS = range(10)


def _computed(result: Result) -> dict:
    ins = result.inspection
    return {"version_id": result.loaded.ref.id, "predicted": ins.predicted, "confidence": ins.confidence,
            "probabilities": [float(p) for p in ins.probabilities]}


def save_prediction(session: Session, image: UserImage, result: Result) -> Prediction:
    prediction = Prediction(model=result.loaded.ref.model, input_kind=image.kind, preprocess=image.preprocess,
                            input_png=image.png, **_computed(result))
    session.add(prediction)
    session.flush()
    return get_prediction(session, prediction.id)


def get_prediction(session: Session, prediction_id: int) -> Prediction:
    prediction = session.scalar(select(Prediction).where(Prediction.id == prediction_id).options(
        selectinload(Prediction.reports), selectinload(Prediction.reruns)))
    if prediction is None:
        raise NotFound(f"no saved prediction {prediction_id}")
    return prediction


def list_predictions(session: Session, digit: int | None, model: str | None, reported: bool | None,
                     limit: int, offset: int) -> tuple[list[Prediction], int]:
    query = select(Prediction)
    if digit is not None:
        query = query.where(Prediction.predicted == digit)
    if model is not None:
        query = query.where(Prediction.model == model)
    if reported is not None:
        has_report = exists().where(Report.prediction_id == Prediction.id)
        query = query.where(has_report if reported else ~has_report)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    items = session.scalars(query.order_by(Prediction.id.desc()).limit(limit).offset(offset).options(
        selectinload(Prediction.reports), selectinload(Prediction.reruns))).all()
    return list(items), total


def add_rerun(session: Session, prediction: Prediction, result: Result) -> Rerun:
    rerun = Rerun(**_computed(result))
    prediction.reruns.append(rerun)
    session.flush()
    return rerun


def add_report(session: Session, prediction_id: int, correct_label: int, reason: str) -> Report:
    get_prediction(session, prediction_id)
    report = Report(prediction_id=prediction_id, correct_label=correct_label, reason=reason)
    session.add(report)
    session.flush()
    return get_report(session, report.id)


def get_report(session: Session, report_id: int) -> Report:
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound(f"no report {report_id}")
    return report


def set_resolved(session: Session, report_id: int, resolved: bool) -> Report:
    report = get_report(session, report_id)
    report.resolved_at = (report.resolved_at or utcnow()) if resolved else None
    return report


def list_reports(session: Session, resolved: bool | None, limit: int, offset: int) -> tuple[list[Report], int]:
    query = select(Report)
    if resolved is not None:
        query = query.where(Report.resolved_at.is_not(None) if resolved else Report.resolved_at.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    items = session.scalars(query.order_by(Report.id.desc()).limit(limit).offset(offset).options(
        selectinload(Report.prediction))).all()
    return list(items), total


def statistics(session: Session) -> dict:
    """Counts per predicted digit, the share of saved predictions reported wrong, and the confusion matrix of
    reported corrections (rows: predicted digit, columns: the digit the reporter says is right)."""
    saved = dict(session.execute(select(Prediction.predicted, func.count()).group_by(Prediction.predicted)).all())
    reported_ids = select(Report.prediction_id).distinct().subquery()
    reported = dict(session.execute(select(Prediction.predicted, func.count()).join(
        reported_ids, reported_ids.c.prediction_id == Prediction.id).group_by(Prediction.predicted)).all())
    confusion = [[0] * 10 for _ in DIGITS]
    for predicted, correct, count in session.execute(select(Prediction.predicted, Report.correct_label, func.count())
                                                     .join(Report, Report.prediction_id == Prediction.id)
                                                     .group_by(Prediction.predicted, Report.correct_label)):
        confusion[predicted][correct] = count
    open_reports = session.scalar(select(func.count()).where(Report.resolved_at.is_(None)))
    all_reports = session.scalar(select(func.count()).select_from(Report))
    total, total_reported = sum(saved.values()), sum(reported.values())
    return {
        "predictions": total,
        "reported_predictions": total_reported,
        "reported_error_rate": total_reported / total if total else None,
        "reports": {"total": all_reports, "open": open_reports, "resolved": all_reports - open_reports},
        "per_digit": [{"digit": d, "saved": saved.get(d, 0), "reported": reported.get(d, 0),
                       "reported_error_rate": reported.get(d, 0) / saved[d] if saved.get(d) else None}
                      for d in DIGITS],
        "confusion": {"rows": "predicted digit", "columns": "correct digit (reported)", "matrix": confusion},
    }


# --- JSON ------------------------------------------------------------------------------------------------------

def png_data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _run_body(run: Prediction | Rerun) -> dict:
    return {"model": run.version.model, "version": run.version.version, "predicted": run.predicted,
            "confidence": run.confidence, "probabilities": run.probabilities}


def report_body(report: Report) -> dict:
    return {"id": report.id, "prediction_id": report.prediction_id, "correct_label": report.correct_label,
            "reason": report.reason, "created_at": iso(report.created_at), "resolved": report.resolved_at is not None,
            "resolved_at": iso(report.resolved_at)}


def rerun_body(rerun: Rerun) -> dict:
    return {"id": rerun.id, "created_at": iso(rerun.created_at), **_run_body(rerun)}


def prediction_body(prediction: Prediction, with_image: bool = False) -> dict:
    body = {
        "id": prediction.id, "created_at": iso(prediction.created_at), **_run_body(prediction),
        "input_kind": prediction.input_kind, "preprocess": prediction.preprocess,
        "image_url": f"/api/predictions/{prediction.id}/image",
        "reported": bool(prediction.reports),
        "reports": [report_body(r) for r in prediction.reports],
        "reruns": [rerun_body(r) for r in prediction.reruns],
    }
    if with_image:
        body["image"] = png_data_url(prediction.input_png)
    return body
