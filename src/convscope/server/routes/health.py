from fastapi import APIRouter, Depends
from sqlalchemy import select

from ... import __version__
from ...models.registry import MODELS
from ..db.tables import TrainingJob
from ..state import AppState, app_state
from ._documented import DocumentedRoute

router = APIRouter(tags=["health"], route_class=DocumentedRoute)


@router.get("/health", summary="Health check and version")
def health(state: AppState = Depends(app_state)) -> dict:
    with state.db.session() as session:
        training = session.scalar(select(TrainingJob.id).where(TrainingJob.slot == 1))
    return {"status": "ok", "version": __version__, "database": state.db.engine.dialect.name,
            "models": {name: state.models.active(name).version for name in MODELS if MODELS[name].loadable},
            "training_job": training}
