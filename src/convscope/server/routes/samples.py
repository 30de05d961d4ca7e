import io

from fastapi import APIRouter, Depends, Query
from PIL import Image

from ...data.mnist import CLASS_NAMES, sample_digit
from ..records import png_data_url
from ..state import AppState, app_state
from ..schemas import INT4_MAX, errors
from ._documented import DocumentedRoute

router = APIRouter(tags=["samples"], route_class=DocumentedRoute, responses=errors(503))


@router.get("/samples", summary="An MNIST image of a digit (random, seedable) or by index, with its label")
def sample(state: AppState = Depends(app_state),
           digit: int | None = Query(None, ge=0, le=len(CLASS_NAMES) - 1, description="any digit when omitted"),
           split: str = Query("test", pattern="^(test|train)$"),
           seed: int | None = Query(None, ge=0, le=INT4_MAX, description="the same seed gives the same image"),
           index: int | None = Query(None, ge=0, le=INT4_MAX,
                                     description="a fixed image instead of a random one")) -> dict:
    found = sample_digit(digit, split, seed, index, settings=state.settings.engine_settings())
    png = io.BytesIO()
    Image.fromarray(found.image.numpy()).save(png, format="PNG")
    return {"split": found.split, "index": found.index, "label": found.label,
            "pixels": found.image.tolist(), "image": png_data_url(png.getvalue())}
