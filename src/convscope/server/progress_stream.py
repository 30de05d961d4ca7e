"""Long model work answered as a stream of progress, for a client that asks for one (``Accept:
application/x-ndjson``): one JSON object per line, ``{"progress": {"done": d, "total": t}}`` as the work goes,
then ``{"result": ...}`` or ``{"error": {"status": s, "message": ...}}``. A client that goes away stops the work at
its next batch (the engine's ``cancelled()``), so the one inference thread is free again. Any other client gets
the plain JSON answer when the work is done."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ..errors import ConvscopeError
from ..inspect.attribution.base import Cancelled, ProgressFn
from .errors import engine_error_status
from .state import AppState

NDJSON = "application/x-ndjson"
log = logging.getLogger(__name__)

# (progress, cancelled) -> the answer's body; run on the inference thread
Work = Callable[[ProgressFn | None, Callable[[], bool] | None], dict]


async def answer_with_progress(request: Request, state: AppState, work: Work) -> Response:
    """Run ``work`` on the inference thread: streamed with progress when the client accepts NDJSON."""
    if NDJSON not in request.headers.get("accept", ""):
        return JSONResponse(await state.infer(lambda: work(None, None)))
    return StreamingResponse(progress_lines(state, work), media_type=NDJSON)


def line(body: dict) -> bytes:
    return json.dumps(body).encode() + b"\n"


async def progress_lines(state: AppState, work: Work) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    updates: asyncio.Queue[dict] = asyncio.Queue()
    stop = threading.Event()

    def progress(done: int, total: int, **shown) -> None:  # shown: more to send with it (an image so far)
        loop.call_soon_threadsafe(updates.put_nowait, {"progress": {"done": done, "total": total, **shown}})

    task = asyncio.ensure_future(state.infer(lambda: work(progress, stop.is_set)))
    task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved even when nobody waits any more
    waiting = None
    try:
        while not task.done():
            waiting = asyncio.ensure_future(updates.get())
            await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
            if waiting.done():
                yield line(waiting.result())
            waiting.cancel()
        while not updates.empty():
            yield line(updates.get_nowait())
        yield line(outcome(task))
    finally:
        stop.set()  # the client went away (or the answer is sent): work still running stops at its next batch
        if waiting is not None:
            waiting.cancel()
        if not task.done():
            task.add_done_callback(log_how_it_ended)


def log_how_it_ended(task: asyncio.Future) -> None:
    """For work whose client went away: whether it stopped early, as it should, or ran to its end."""
    stopped = not task.cancelled() and isinstance(task.exception(), Cancelled)
    log.info("streamed work stopped: its client went away" if stopped
             else "streamed work ran to its end after its client went away")


def outcome(task: asyncio.Future) -> dict:
    try:
        return {"result": task.result()}
    except Cancelled as error:
        return {"error": {"status": 499, "message": str(error)}}
    except ConvscopeError as error:
        return {"error": {"status": engine_error_status(error), "message": str(error)}}
    except Exception:  # a bug: logged with its traceback, answered like any 500
        log.exception("streamed work failed")
        return {"error": {"status": 500, "message": "internal error: the server logged the details"}}
