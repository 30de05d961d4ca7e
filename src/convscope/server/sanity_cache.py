"""The checks of attribution methods a worker has run (sanity, faithfulness), kept: a check costs seconds to
minutes, and the same model version, method and inputs give the same answer."""

from __future__ import annotations

from collections import OrderedDict

SANITY_CACHE_SIZE = 64  # checks kept per worker: each is a few hundred bytes


class SanityChecks:
    """The checks this worker has run, by kind, model version, method, layer, input count and seed (the newest
    kept)."""

    def __init__(self) -> None:
        self.done: OrderedDict[tuple, dict] = OrderedDict()

    def get(self, key: tuple) -> dict | None:
        if key in self.done:
            self.done.move_to_end(key)
        return self.done.get(key)

    def put(self, key: tuple, body: dict) -> None:
        self.done[key] = body
        while len(self.done) > SANITY_CACHE_SIZE:
            self.done.popitem(last=False)
