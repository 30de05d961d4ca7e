"""One module per resource; each route is a thin adapter over the engine and the data layer."""

from . import (attributions, compare, evaluations, features, health, jobs, layers, models, photos, predict, predictions,
               reports, samples)

ROUTERS = [health.router, models.router, samples.router, photos.router, predict.router, predictions.router,
           reports.router, jobs.router, layers.router, compare.router, evaluations.router, attributions.router,
           features.router]
