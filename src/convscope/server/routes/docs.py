"""Interactive API docs (Swagger UI) from files installed with the package, not a CDN, and with no inline
script, so the Content-Security-Policy holds on this page too."""

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>convscope API</title>
  <link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/api-docs.js"></script>
</body>
</html>
"""


@router.get("/api/docs")
def swagger_ui() -> HTMLResponse:
    return HTMLResponse(PAGE)
