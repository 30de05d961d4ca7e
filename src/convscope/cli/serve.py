"""``convscope serve``: the web server (API, docs and UI) on 127.0.0.1:8000 unless told otherwise."""

from __future__ import annotations

import logging

from ..errors import ConvscopeError
from .options import add_user_model_args, user_model_from_args

# flag -> (type, the setting's default in words); flags left out keep the CONVSCOPE_* environment variable or the
# default. Written out rather than read from ServerSettings, whose import costs every command about a second
# (tests/test_cli.py checks the figures against it).
FLAGS = {"host": (str, "127.0.0.1: this machine only"),
         "port": (int, "8000"),
         "data_dir": (str, "the user's data folder, e.g. ~/.local/share/convscope"),
         "database_url": (str, "a SQLite file in the data folder; PostgreSQL: postgresql://user:password@host/db"),
         "model_dir": (str, "<data dir>/models"),
         "mnist_dir": (str, "<data dir>/mnist, downloaded on first use"),
         "mnist_mirrors": (str, "the official mirrors; comma-separated URLs"),
         "datasets_dir": (str, "<data dir>/datasets"),
         "max_body_bytes": (int, "5242880 (5 MiB)"),
         "max_image_pixels": (int, "16777216 (4096x4096)"),
         "max_stored_image_bytes": (int, "1073741824 (1 GiB) of saved images in all"),
         "header_timeout": (float, "10 seconds for a request's head to arrive"),
         "body_timeout": (float, "30 seconds for a request's body to arrive"),
         "keep_alive_timeout": (int, "5 seconds an idle connection stays open"),
         "max_header_bytes": (int, "32768 (32 KiB)"),
         "max_connections": (int, "500 open connections per worker process"),
         "allowed_origins": (str, "only the server's own; comma-separated origins"),
         "admin_token": (str, "none on loopback; on any other address one is generated and printed"),
         "workers": (int, "one per core, at most 4"),
         "inference_threads": (int, "1")}
# Every server setting but user_models, which --model-file adds to (tests/test_project.py checks).


def add_serve_parser(commands) -> None:
    p = commands.add_parser("serve", help="start the web server: REST API under /api, docs at /api/docs, and the UI")
    for name, (kind, default) in FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                       help=f"overrides CONVSCOPE_{name.upper()}; default: {default}")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument("--open", action="store_true", help="open the UI in a web browser once the server answers")
    p.add_argument("--model-name", dest="model", metavar="NAME",
                   help="the name to serve --model-file's model under (default: its factory's name)")
    add_user_model_args(p)


def cmd_serve(args) -> None:
    import dataclasses
    import os

    import pydantic
    import uvicorn

    from ..server.security import with_admin_token
    from ..server.settings import ServerSettings

    overrides = {name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None}
    user = user_model_from_args(args)
    try:
        if user is not None:
            overrides["user_models"] = (*ServerSettings().user_models, dataclasses.asdict(user))
        settings = ServerSettings(**overrides)
    except pydantic.ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise ConvscopeError(f"invalid server settings: {problems}") from None
    if settings.user_models:
        # Loaded here first, so a mistake in one is a line and exit 2 instead of every worker failing to start.
        from ..models.registry import register_user_model
        from ..models.user import UserModel
        for model in settings.user_models:
            register_user_model(UserModel(**model.model_dump()).absolute())
    settings, generated = with_admin_token(settings)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    url = f"http://{settings.host if ':' not in settings.host else f'[{settings.host}]'}:{settings.port}"
    os.environ.update(settings.as_environment())  # the worker processes read their settings from here
    print(f"convscope: serving {url}/ (API docs {url}/api/docs); {settings.workers} worker(s); "
          f"database {settings.database}", flush=True)
    if generated:
        print(f"convscope: admin token (training, activation, deletion): {settings.admin_token}\n"
              f"           send it as 'Authorization: Bearer <token>'", flush=True)
    if args.open:
        open_when_up(url if settings.host not in ("0.0.0.0", "::") else f"http://127.0.0.1:{settings.port}")
    # The protocol is uvicorn's httptools one with deadlines and size limits for request heads (protocol.py).
    uvicorn.run("convscope.server.app:app_from_environment", factory=True, host=settings.host, port=settings.port,
                workers=settings.workers, access_log=args.access_log, log_level="info", timeout_graceful_shutdown=10,
                http="convscope.server.protocol:LimitedHttpProtocol", timeout_keep_alive=settings.keep_alive_timeout)


def open_when_up(url: str, timeout_s: float = 120.0) -> None:
    """In the background: wait until ``url``/api/health answers, then open ``url``/ in the user's web browser
    (the ``BROWSER`` environment variable picks one, as Python's ``webbrowser`` reads it)."""
    import threading
    import time
    import urllib.request
    import webbrowser

    def wait_and_open() -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/api/health", timeout=2) as response:
                    if response.status == 200:
                        webbrowser.open(f"{url}/")
                        return
            except OSError:
                pass
            time.sleep(0.1)
        logging.getLogger("convscope.server").warning("--open: %s did not answer; no browser opened", url)

    threading.Thread(target=wait_and_open, name="convscope-open", daemon=True).start()
