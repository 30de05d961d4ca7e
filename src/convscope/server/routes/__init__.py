"""One module per resource; each route is a thin adapter over the engine and the data layer."""

from . import health, jobs, models, predict, predictions, reports, samples

ROUTERS = [health.router, models.router, samples.router, predict.router, predictions.router, reports.router,
           jobs.router]
