"""The convscope server: a FastAPI app over the engine (see app.py), its database layer and the web UI."""
