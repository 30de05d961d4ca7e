"""Saved predictions, their re-runs, and reports: the queries and the JSON each record becomes.

A saved prediction stores the input image (as a PNG the server wrote) and what the server computed from it;
nothing a client claims about the result is ever stored. Report reasons are stored and returned as plain text.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timezone

from sqlalchemy import exists, func, select, text
from sqlalchemy.orm import Session, selectinload

from ..errors import InputError
from .db.tables import Prediction, Report, Rerun, iso, utcnow
from .errors import NotFound, StoreFull
from .inference import Result
from .inputs import MEDIA_TYPES, UserImage


STORE_LOCK = 0x636F6E76  # PostgreSQL advisory lock: saves check the store's cap one at a time ("conv")


def _computed(result: Result) -> dict:
    ins = result.inspection
    return {"version_id": result.loaded.ref.id, "predicted": ins.predicted,
            "predicted_class": result.loaded.checkpoint.adapter.class_names[ins.predicted],
            "confidence": ins.confidence, "probabilities": [float(p) for p in ins.probabilities]}


def save_prediction(session: Session, image: UserImage, stored: tuple[bytes, str], result: Result,
                    store_limit: int) -> Prediction:
    """A new saved prediction of ``image``, kept as ``stored`` (its bytes and format, encoded before the write
    transaction); refused (StoreFull) when it would take the saved images past ``store_limit`` bytes in all."""
    data, encoding = stored
    if session.get_bind().dialect.name == "postgresql":  # SQLite's writes take turns; PostgreSQL's saves queue here
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STORE_LOCK})
    used = session.scalar(select(func.coalesce(func.sum(Prediction.input_bytes), 0)))
    if used + len(data) > store_limit:
        raise StoreFull(f"the store of saved images is full ({used:,} of {store_limit:,} bytes): delete saved "
                        "predictions, or raise CONVSCOPE_MAX_STORED_IMAGE_BYTES")
    prediction = Prediction(model=result.loaded.ref.model, input_kind=image.kind, preprocess=image.preprocess,
                            input_image=data, input_format=encoding, input_bytes=len(data), **_computed(result))
    session.add(prediction)
    session.flush()
    return get_prediction(session, prediction.id)


def get_prediction(session: Session, prediction_id: int, lock: bool = False) -> Prediction:
    """The saved prediction with its reports and re-runs. ``lock``: for a write that adds to it, its row locked
    until the transaction ends (PostgreSQL; SQLite's writes take turns anyway), so a delete that comes meanwhile
    waits and takes the addition with it, instead of the addition failing on a row that is gone (a 500)."""
    query = select(Prediction).where(Prediction.id == prediction_id).options(
        selectinload(Prediction.reports), selectinload(Prediction.reruns))
    prediction = session.scalar(query.with_for_update(of=Prediction) if lock else query)
    if prediction is None:
        raise NotFound(f"no saved prediction {prediction_id}")
    return prediction


def list_predictions(session: Session, predicted: int | None, model: str | None, reported: bool | None,
                     limit: int, offset: int) -> tuple[list[dict], int]:
    """One page of saved predictions as summaries (counts of their reports and re-runs, never the lists: a
    listing stays as big as its page however many reports one prediction gathers)."""
    query = select(Prediction)
    if predicted is not None:
        query = query.where(Prediction.predicted == predicted)
    if model is not None:
        query = query.where(Prediction.model == model)
    if reported is not None:
        has_report = exists().where(Report.prediction_id == Prediction.id)
        query = query.where(has_report if reported else ~has_report)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    items = session.scalars(query.order_by(Prediction.id.desc()).limit(limit).offset(offset)).all()
    return summaries(session, list(items)), total


def summaries(session: Session, predictions: list[Prediction]) -> list[dict]:
    """Each prediction's body without its child lists, with their sizes counted in two queries for the page."""
    ids = [p.id for p in predictions]
    counts = {}
    for table in (Report, Rerun):
        counts[table] = dict(session.execute(select(table.prediction_id, func.count()).where(
            table.prediction_id.in_(ids)).group_by(table.prediction_id)).all()) if ids else {}
    return [prediction_summary(p, counts[Report].get(p.id, 0), counts[Rerun].get(p.id, 0)) for p in predictions]


def add_rerun(session: Session, prediction: Prediction, result: Result) -> Rerun:
    rerun = Rerun(**_computed(result))
    prediction.reruns.append(rerun)
    session.flush()
    return rerun


def add_report(session: Session, prediction_id: int, correct_label: int | None, reason: str,
               class_names: Callable[[str], tuple[str, ...]]) -> Report:
    """``class_names(model)`` gives the classes of the prediction's model: the label must be one of them, and not
    the predicted one (a report says the prediction is wrong). None: none of them, which the reason must explain."""
    prediction = get_prediction(session, prediction_id, lock=True)
    names = class_names(prediction.model)
    if correct_label is None:
        if not reason.strip():
            raise InputError("a report of none of the classes needs a reason saying what the input is")
    elif not 0 <= correct_label < len(names):
        raise InputError(f"correct_label must be a class index of {prediction.model}: 0-{len(names) - 1}, "
                         f"got {correct_label}")
    elif correct_label == prediction.predicted:
        raise InputError(f"correct_label {correct_label} ({names[correct_label]}) is what the model predicted: a "
                         "report says the prediction is wrong, so give another class, or null for none of them")
    report = Report(prediction_id=prediction_id, correct_label=correct_label,
                    correct_class=None if correct_label is None else names[correct_label], reason=reason)
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


def list_reports(session: Session, resolved: bool | None, limit: int, offset: int) -> tuple[list[dict], int]:
    """One page of reports, each with a summary of the prediction it is about."""
    query = select(Report)
    if resolved is not None:
        query = query.where(Report.resolved_at.is_not(None) if resolved else Report.resolved_at.is_(None))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    items = list(session.scalars(query.order_by(Report.id.desc()).limit(limit).offset(offset).options(
        selectinload(Report.prediction))).all())
    about = {summary["id"]: summary for summary in summaries(session, list({r.prediction_id: r.prediction
                                                                              for r in items}.values()))}
    return [{**report_body(r), "prediction": about[r.prediction_id]} for r in items], total


def statistics(session: Session, model: str | None = None, class_names: tuple[str, ...] = ()) -> dict:
    """Counts per predicted class, the share of saved predictions reported wrong, and the confusion matrix of
    reported corrections (rows: predicted class, columns: the class the reporter says is right), by class name
    (models with the same class names, like the two MNIST ones, count together). The classes are
    ``class_names`` and any other class that occurs. ``model`` limits it to one model's predictions."""
    only = (lambda query: query.where(Prediction.model == model)) if model else (lambda query: query)
    saved = {(index, name): count for index, name, count in session.execute(only(
        select(Prediction.predicted, Prediction.predicted_class, func.count())
        .group_by(Prediction.predicted, Prediction.predicted_class)))}
    reported_ids = select(Report.prediction_id).distinct().subquery()
    reported = dict(session.execute(only(select(Prediction.predicted_class, func.count()).join(
        reported_ids, reported_ids.c.prediction_id == Prediction.id).group_by(Prediction.predicted_class))).all())
    corrections = session.execute(only(
        select(Prediction.predicted, Prediction.predicted_class, Report.correct_label, Report.correct_class,
               func.count()).join(Report, Report.prediction_id == Prediction.id)
        .where(Report.correct_label.is_not(None))  # "none of these" has no column in the matrix
        .group_by(Prediction.predicted, Prediction.predicted_class, Report.correct_label, Report.correct_class))).all()
    # Classes in index order, each name once.
    seen = [*enumerate(class_names), *saved, *((index, name) for index, name, *_ in corrections),
            *((index, name) for _, _, index, name, _ in corrections)]
    indices: dict[str, int] = {}
    for index, name in seen:
        indices[name] = min(index, indices.get(name, index))
    classes = sorted(indices, key=lambda name: (indices[name], name))
    position = {name: i for i, name in enumerate(classes)}
    confusion = [[0] * len(classes) for _ in classes]
    for _, predicted, _, correct, count in corrections:
        confusion[position[predicted]][position[correct]] += count
    per_name: dict[str, int] = {}
    for (_, name), count in saved.items():
        per_name[name] = per_name.get(name, 0) + count

    def count_reports(*conditions) -> int:
        return session.scalar(only(select(func.count(Report.id)).join(
            Prediction, Report.prediction_id == Prediction.id).where(*conditions)))

    open_reports, all_reports = count_reports(Report.resolved_at.is_(None)), count_reports()
    total, total_reported = sum(per_name.values()), sum(reported.values())
    return {
        "model": model,
        "predictions": total,
        "reported_predictions": total_reported,
        "reported_error_rate": total_reported / total if total else None,
        "reports": {"total": all_reports, "open": open_reports, "resolved": all_reports - open_reports},
        "classes": classes,
        "per_class": [{"class": name, "index": indices[name], "saved": per_name.get(name, 0),
                       "reported": reported.get(name, 0),
                       "reported_error_rate": reported.get(name, 0) / per_name[name] if per_name.get(name) else None}
                      for name in classes],
        "confusion": {"rows": "predicted class", "columns": "correct class (reported)", "labels": classes,
                      "matrix": confusion},
    }


# --- JSON ------------------------------------------------------------------------------------------------------

def png_data_url(png: bytes) -> str:
    return data_url(png, "image/png")


def data_url(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64," + base64.b64encode(data).decode("ascii")


def _run_body(run: Prediction | Rerun) -> dict:
    return {"model": run.version.model, "version": run.version.version, "predicted": run.predicted,
            "predicted_class": run.predicted_class, "confidence": run.confidence,
            "probabilities": run.probabilities}


def report_body(report: Report) -> dict:
    return {"id": report.id, "prediction_id": report.prediction_id, "correct_label": report.correct_label,
            "correct_class": report.correct_class, "reason": report.reason, "created_at": iso(report.created_at),
            "resolved": report.resolved_at is not None, "resolved_at": iso(report.resolved_at)}


def rerun_body(rerun: Rerun) -> dict:
    return {"id": rerun.id, "created_at": iso(rerun.created_at), **_run_body(rerun)}


def image_stamp(moment) -> int:
    """A datetime as microseconds since the epoch (SQLite gives it back naive, meaning UTC)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return int(aware.timestamp() * 1_000_000)


def prediction_summary(prediction: Prediction, reports: int, reruns: int) -> dict:
    """What a listing shows of a saved prediction: everything but its child lists, which it counts."""
    return {
        "id": prediction.id, "created_at": iso(prediction.created_at), **_run_body(prediction),
        "input_kind": prediction.input_kind, "preprocess": prediction.preprocess,
        # The creation time in the URL: SQLite reuses the id of a deleted last row, and browsers keep images a day,
        # so a bare /{id}/image could show a deleted record's picture for a new one.
        "image_url": f"/api/predictions/{prediction.id}/image?v={image_stamp(prediction.created_at)}",
        "reported": reports > 0, "reports_count": reports, "reruns_count": reruns,
    }


def prediction_body(prediction: Prediction, with_image: bool = False) -> dict:
    """One saved prediction in full: its reports and re-runs too."""
    body = {
        **prediction_summary(prediction, len(prediction.reports), len(prediction.reruns)),
        "reports": [report_body(r) for r in prediction.reports],
        "reruns": [rerun_body(r) for r in prediction.reruns],
    }
    if with_image:
        body["image"] = data_url(prediction.input_image, MEDIA_TYPES[prediction.input_format])
    return body
