"""JavaScript libraries the UI uses, served from what is installed (never a CDN): plotly.js from the plotly
wheel. (three.js is copied from npm into static/vendor/ by `make setup` and served with the other static files.)"""

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ..errors import NotFound

router = APIRouter(include_in_schema=False)


@router.get("/vendor/plotly.min.js")
def plotly() -> FileResponse:
    path = resources.files("plotly") / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise NotFound("plotly.min.js is not installed with the plotly package")
    return FileResponse(str(path), media_type="text/javascript", headers={"cache-control": "public, max-age=86400"})
