"""One layer's activations for one image, a page of channels at a time: what the layer view fetches when a node
is clicked."""

from typing import Annotated, Literal

import torch
from fastapi import APIRouter, Depends
from pydantic import Field

from ...errors import InputError
from ..encoding import encode_channels, encode_tensor
from ..schemas import INT4_MAX, InputFields, errors
from ..state import AppState, app_state
from ._inputs import json_image
from ._documented import DocumentedRoute

router = APIRouter(prefix="/layers", tags=["predict"], route_class=DocumentedRoute, responses=errors(404, 415))
MOST_VALUES = 2_097_152  # per answer: 2 MB of levels before compression (e.g. 128 maps of 128x128)


class LayerRequest(InputFields):
    layer: str = Field(description="a layer name from the model's architecture")
    sort: Literal["index", "mean"] = Field("index", description="channel order: by index, or by mean activation "
                                                                "(largest first)")
    offset: int = Field(0, ge=0, le=INT4_MAX, description="the first channel of the page, in that order")
    limit: int = Field(64, ge=1, le=256, description="channels per page")
    max_side: int | None = Field(None, ge=1, le=4096, description="maps larger than this are averaged down to fit "
                                                                  "(thumbnails); default: full size")
    channels: list[Annotated[int, Field(ge=0, le=INT4_MAX)]] | None = Field(
        None, max_length=256, description="exactly these channels, in this order (instead of sort/offset/limit)")


def _fit(maps: torch.Tensor, max_side: int | None) -> torch.Tensor:
    """(n, H, W) averaged down (area) so that neither side exceeds ``max_side``."""
    height, width = maps.shape[1:]
    if max_side is None or max(height, width) <= max_side or not len(maps):
        return maps
    scale = max_side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return torch.nn.functional.interpolate(maps[None], size=size, mode="area")[0]


@router.post("/activations", summary="One layer's activations for an image: a page of channels",
             responses={200: {"description": "the page's channels (their indices in ``order``; ``channels`` is how "
                                             "many the layer has), each with its mean, encoded with a range per "
                                             "channel; a non-spatial layer whole"},
                        **errors(e404="unknown model or version",
                                 e422="unknown layer (the message lists them), a channel it does not have, a page too "
                                      "big to send (ask for max_side), or an unreadable image")})
async def activations(request: LayerRequest, state: AppState = Depends(app_state)) -> dict:
    """Runs the model only as far as the layer (no gradients). For a (C, H, W) layer the answer carries
    ``order``: the channel indices of this page, ``means``: their mean activations (at full size), and
    ``activation``: the (n, H, W) maps (smaller with ``max_side``), each channel with its own ``min``/``max``;
    any other layer comes whole, in one range."""

    def work() -> dict:
        loaded = state.models.load(state.models.resolve(request.model, request.version))
        adapter = loaded.checkpoint.adapter
        model_input, _ = json_image(request, state.settings).model_input(adapter.preprocessing)
        name = adapter.graph[request.layer].name
        value = loaded.inspector.activations(model_input, [name])[name]
        body = {"model": request.model, "version": loaded.ref.version, "layer": name,
                "kind": adapter.graph[name].kind.value, "shape": list(value.shape)}
        if value.dim() != 3:
            return {**body, "activation": encode_tensor(value)}
        means = value.mean(dim=(1, 2))
        order = means.argsort(descending=True, stable=True) if request.sort == "mean" else \
            torch.arange(value.shape[0])
        if request.channels is not None:
            wrong = [c for c in request.channels if c >= value.shape[0]]
            if wrong:
                raise InputError(f"{name} has {value.shape[0]} channels (0-{value.shape[0] - 1}); no channel "
                                 f"{', '.join(map(str, wrong))}")
            page = torch.tensor(request.channels, dtype=torch.long)
        else:
            page = order[request.offset:request.offset + request.limit]
        maps = _fit(value[page], request.max_side)
        if maps.numel() > MOST_VALUES:
            raise InputError(f"{len(page)} maps of {maps.shape[1]}x{maps.shape[2]} are {maps.numel():,} values, more "
                             f"than one answer carries ({MOST_VALUES:,}): ask for fewer channels or a max_side")
        return {**body, "channels": value.shape[0], "sort": request.sort, "offset": request.offset,
                "order": page.tolist(), "means": [round(float(m), 6) for m in means[page]],
                "activation": encode_channels(maps) if len(page) else None}

    return await state.infer(work)
