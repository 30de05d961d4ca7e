"""TensorBoard logs of a training run, written through ``torch.utils.tensorboard`` (the ``tensorboard`` extra).

One run's folder holds, by x axis:

- per epoch (step = the 1-based epoch, so runs of different batch sizes line up; the last epoch of a fractional
  run is a partial one): the scalars ``loss/train``, ``loss/validation``, ``accuracy/train``,
  ``accuracy/validation`` and ``lr`` (the learning rate at the epoch's end); a histogram (64 equal bins) of every
  parameter, ``weights/<name>``, and of its gradient, ``gradients/<name>``: the last step's, which they still hold
  because the trainer clears gradients (``zero_grad(set_to_none=True)``) at the start of a step, not the end;
  the first conv layer's filters as one grid image, ``filters/<layer>`` (RGB where the layer reads 3 channels,
  otherwise the mean over its input channels in grey; each filter scaled to [0, 1] on its own); and the first and
  last conv layers' outputs (before their activation) for each fixed input ``i`` as one grid image,
  ``feature_maps/<layer>/<i>``, each map scaled to [0, 1] on its own. About 0.1 s an epoch for mnist_cnn here.
- per progress event (step = optimizer steps): ``batch/loss``, ``batch/accuracy`` (means since the previous
  event) and ``batch/lr``.
- once: the fixed inputs (``inputs``), the graph where ``torch.jit.trace`` can trace the model, and the run's
  hyperparameters (the ``TrainConfig``) for TensorBoard's HPARAMS tab. Its metrics are the last values of the
  scalars above, plus ``loss/test`` and ``accuracy/test`` when the run evaluated the test split, and its status
  is the run's: success, failure, or unknown for a cancelled run.

Everything is written into the run's own folder (``SummaryWriter.add_hparams`` would write the hyperparameters
into a new sub-folder, a second run in TensorBoard's list): the hparams summaries go through the same writer.
Logging never changes the training: the graph and the feature maps are computed in eval mode without gradients,
and the histograms read copies. Where tracing fails, the log has no graph and a warning says why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import math
import time
import types
import typing
import warnings
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..errors import ConvscopeError
from ..predict import as_model_input
from .events import BatchProgress, EpochEnd, TrainEvent

log = logging.getLogger("convscope.training")

INSTALL_HINT = 'pip install "convscope[tensorboard]"'
HISTOGRAM_BINS = 64
FIXED_INPUTS = 4  # validation images whose feature maps are drawn, in a run without probe digits
NOT_HPARAMS = ("tensorboard_dir",)  # TrainConfig fields that say where, not how, a run trains
# The hyperparameter table's metrics: the last logged value of each of these scalars.
METRICS = ("accuracy/validation", "loss/validation", "accuracy/train", "loss/train", "accuracy/test", "loss/test")


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can write logs (it needs the ``tensorboard`` package)."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class TensorBoardLogger:
    """Writes one run's TensorBoard log into ``log_dir`` (see the module's docstring for what goes where).

    ``model`` is the network being trained; ``inputs`` (N, C, H, W) in [0, 1] on the model's device are the fixed
    inputs whose feature maps each epoch draws, the first of which traces the graph (None: neither); ``config``, a
    dataclass such as ``TrainConfig``, gives the hyperparameters (None: no HPARAMS entry). Raises ConvscopeError
    when the tensorboard package is missing.
    """

    def __init__(self, log_dir: str, model: nn.Module | None = None, inputs: torch.Tensor | None = None,
                 config=None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConvscopeError(f"TensorBoard logging needs the tensorboard package: {INSTALL_HINT}") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.inputs = inputs
        self.epoch = 0
        self.closed = False
        convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)] if model else []
        self.feature_layers = list(dict(convs[:1] + convs[-1:]).items())  # the first and last conv, once if one
        if config is not None:
            self._start_session(config)
        if inputs is not None:
            self.writer.add_images("inputs", _numpy(inputs), 0)
            if model is not None:
                self._log_graph(model, inputs[:1])
        self.writer.flush()

    @classmethod
    def for_run(cls, run) -> TensorBoardLogger:
        """The logger for one of the trainer's runs, writing to ``run.config.tensorboard_dir``. Its fixed inputs:
        the run's probe digits, else its first few validation images (training images without a validation
        split), the same for every epoch."""
        if run.probes is not None:
            inputs = run.probes.images  # (P, 1, 28, 28)
        else:
            pool = run.val_x if len(run.val_x) else run.train_x
            inputs = as_model_input(pool[:FIXED_INPUTS]).to(run.device)  # (N, 1, 28, 28)
        return cls(run.config.tensorboard_dir, run.model, inputs, run.config)

    def watching(self, emit: Callable[[TrainEvent], None]) -> Callable[[TrainEvent], None]:
        """``emit``, which also logs each progress event's loss, accuracy and learning rate."""
        def emit_and_log(event: TrainEvent) -> None:
            emit(event)
            if isinstance(event, BatchProgress):
                self.log_progress(event)
        return emit_and_log

    def log_progress(self, event: BatchProgress) -> None:
        self.writer.add_scalar("batch/loss", event.loss, event.step)
        self.writer.add_scalar("batch/accuracy", event.accuracy, event.step)
        self.writer.add_scalar("batch/lr", event.lr, event.step)

    def log_epoch(self, event: EpochEnd, model: nn.Module, lr: float, trainable_only: bool = False) -> None:
        """Everything logged per epoch, at step ``event.epoch``; ``lr``: the learning rate at the epoch's end.

        ``trainable_only`` (fine-tuning, most of the network frozen): histograms of the parameters that learn only,
        and the filters and feature maps once, at the first epoch, unless the conv layers learn too. A frozen
        EfficientNet's 4.6M weights cost about 0.6 s an epoch to histogram, against 2 ms for the epoch itself."""
        w, step = self.writer, event.epoch
        self.epoch = step
        w.add_scalar("loss/train", event.train_loss, step)
        w.add_scalar("accuracy/train", event.train_accuracy, step)
        if event.val_loss is not None:
            w.add_scalar("loss/validation", event.val_loss, step)
            w.add_scalar("accuracy/validation", event.val_accuracy, step)
        w.add_scalar("lr", lr, step)
        for name, param in model.named_parameters():
            if trainable_only and not param.requires_grad:
                continue
            self._histogram(f"weights/{name}", param, step)
            if param.grad is not None:
                self._histogram(f"gradients/{name}", param.grad, step)
        convs_learn = any(m.weight.requires_grad for _, m in self.feature_layers)
        if trainable_only and step > 1 and not convs_learn:
            w.flush()
            return
        if self.feature_layers:
            name, first = self.feature_layers[0]
            w.add_image(f"filters/{name}", image_grid(filter_tiles(first.weight)), step)
        if self.inputs is not None and self.feature_layers:
            for name, maps in self._feature_maps(model).items():  # (N, K, h, w) each
                for i, per_input in enumerate(maps):
                    w.add_image(f"feature_maps/{name}/{i}", image_grid(scale_each(per_input[:, None])), step)
        w.flush()

    def finish(self, status: str, test_metrics=None) -> None:
        """Log the test metrics (a ``Metrics``, or None), end the hyperparameter session with the run's status
        ("completed", "target_reached", "cancelled" or "failed") and close the log."""
        if self.closed:
            return
        try:
            from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

            if test_metrics is not None:
                self.writer.add_scalar("loss/test", test_metrics.loss, self.epoch)
                self.writer.add_scalar("accuracy/test", test_metrics.accuracy, self.epoch)
            outcome = {"completed": api_pb2.STATUS_SUCCESS, "target_reached": api_pb2.STATUS_SUCCESS,
                       "cancelled": api_pb2.STATUS_UNKNOWN}.get(status, api_pb2.STATUS_FAILURE)  # no "aborted"
            end = plugin_data_pb2.SessionEndInfo(status=outcome, end_time_secs=time.time())
            self.writer.file_writer.add_summary(_hparams_summary(metadata.SESSION_END_INFO_TAG,
                                                                 session_end_info=end))
        finally:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()

    def _histogram(self, tag: str, values: torch.Tensor, step: int) -> None:
        """``HISTOGRAM_BINS`` equal bins from the minimum to the maximum: numpy's fast path, where
        ``add_histogram``'s exponential TensorFlow buckets cost several times more."""
        values = _numpy(values).ravel().astype(np.float64)
        if not np.isfinite(values).all():
            log.warning("TensorBoard: %s holds NaN or infinite values at epoch %d; no histogram", tag, step)
            return
        low, high = float(values.min()), float(values.max())
        counts, edges = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high) if high > low else None)
        self.writer.add_histogram_raw(tag, low, high, values.size, float(values.sum()), float(values @ values),
                                      edges[1:].tolist(), counts.tolist(), step)

    @torch.no_grad()
    def _feature_maps(self, model: nn.Module) -> dict[str, np.ndarray]:
        """The fixed inputs' outputs of the first and last conv layers, {name: (N, K, h, w)}, in eval mode."""
        captured: dict[str, np.ndarray] = {}

        def keep(name: str):
            return lambda module, args, output: captured.__setitem__(name, _numpy(output))

        handles = [module.register_forward_hook(keep(name)) for name, module in self.feature_layers]
        was_training = model.training
        model.eval()
        try:
            model(self.inputs)
        finally:
            for handle in handles:
                handle.remove()
            model.train(was_training)
        return captured

    def _log_graph(self, model: nn.Module, example: torch.Tensor) -> None:
        """The model's graph, traced in eval mode on ``example``; where tracing fails, a warning and no graph.

        Traced here without ``check_trace``: add_graph's own trace runs that check, whose first use imports
        torch.distributed and torch.fx (about a second), for a graph that is only drawn."""
        printed = io.StringIO()  # add_graph prints its errors: keep them off stdout, which may carry --json
        was_training = model.training
        model.eval()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
                warnings.simplefilter("ignore")  # tracer warnings about data-dependent Python values
                traced = torch.jit.trace(model, example, check_trace=False)
                self.writer.add_graph(traced, example)  # a traced module goes through as it is
        except Exception as e:  # any tracing failure costs the graph only
            log.warning("TensorBoard: no graph for this model: tracing it failed (%s: %s)", type(e).__name__,
                        str(e).splitlines()[0] if str(e) else "")
        finally:
            model.train(was_training)

    def _start_session(self, config) -> None:
        """The HPARAMS tab's entry: the experiment's columns, from the config class's fields so that every run
        declares the same ones, and this run's values (a None value is left blank)."""
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        columns = [api_pb2.HParamInfo(name=name, type=_hparam_type(kind))
                   for name, kind in typing.get_type_hints(type(config)).items() if name not in NOT_HPARAMS]
        metrics = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in METRICS]
        experiment = api_pb2.Experiment(hparam_infos=columns, metric_infos=metrics, time_created_secs=time.time())
        start = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
        for name, value in dataclasses.asdict(config).items():
            if name in NOT_HPARAMS or value is None:
                continue
            if isinstance(value, bool):  # before int: a bool is an int too
                start.hparams[name].bool_value = value
            elif isinstance(value, (int, float)):
                start.hparams[name].number_value = value
            else:
                start.hparams[name].string_value = str(value)
        self.writer.file_writer.add_summary(_hparams_summary(metadata.EXPERIMENT_TAG, experiment=experiment))
        self.writer.file_writer.add_summary(_hparams_summary(metadata.SESSION_START_INFO_TAG,
                                                             session_start_info=start))


def _hparams_summary(tag: str, **plugin_data):
    """A Summary for the hparams plugin (``tensorboard.plugins.hparams.summary`` does this, but needs TensorFlow):
    ``plugin_data``, one of experiment=, session_start_info= or session_end_info=."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import metadata, plugin_data_pb2

    content = metadata.create_summary_metadata(plugin_data_pb2.HParamsPluginData(**plugin_data))
    return Summary(value=[Summary.Value(tag=tag, metadata=content, tensor=metadata.NULL_TENSOR)])


def _hparam_type(kind) -> int:
    """The hparams DataType of a config field's annotation: bool, int or float, or else a string (str, a Literal,
    a tuple...); ``X | None`` as X."""
    from tensorboard.plugins.hparams import api_pb2

    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(k for k in typing.get_args(kind) if k is not type(None))
    if typing.get_origin(kind) is typing.Literal:
        kind = type(typing.get_args(kind)[0])
    if kind is bool:
        return api_pb2.DATA_TYPE_BOOL
    if kind in (int, float):
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING


def scale_each(tiles: np.ndarray) -> np.ndarray:
    """(N, C, h, w) -> float32, each tile scaled on its own to [0, 1]; a constant tile becomes 0."""
    tiles = np.asarray(tiles, dtype=np.float32)
    low, high = tiles.min(axis=(1, 2, 3), keepdims=True), tiles.max(axis=(1, 2, 3), keepdims=True)
    return (tiles - low) / np.maximum(high - low, 1e-12)


def filter_tiles(weight: torch.Tensor) -> np.ndarray:
    """A conv weight (out, in, kH, kW) -> one tile per filter, (out, 3, kH, kW) RGB when it reads 3 channels,
    else (out, 1, kH, kW), the mean over its input channels; each scaled to [0, 1]."""
    weight = _numpy(weight)
    return scale_each(weight if weight.shape[1] == 3 else weight.mean(axis=1, keepdims=True))


def image_grid(tiles: np.ndarray, min_tile: int = 24, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """(N, C, h, w) tiles -> one float32 (C, H, W) image: ``ceil(sqrt(N))`` columns, each tile enlarged by a whole
    factor (nearest neighbour) to at least ``min_tile`` pixels a side, ``pad`` pixels of ``pad_value`` between the
    tiles and around them. H = rows * (h * scale + pad) + pad, and W likewise with the columns."""
    n, c, h, w = tiles.shape
    scale = max(1, math.ceil(min_tile / min(h, w)))
    tiles = np.asarray(tiles, dtype=np.float32).repeat(scale, axis=2).repeat(scale, axis=3)  # (N, C, h', w')
    h, w = h * scale, w * scale
    columns = math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    cells = np.full((rows * columns, c, h + pad, w + pad), pad_value, dtype=np.float32)
    cells[:n, :, pad:, pad:] = tiles  # each cell: the tile with its top and left padding
    grid = np.full((c, rows * (h + pad) + pad, columns * (w + pad) + pad), pad_value, dtype=np.float32)
    grid[:, :-pad or None, :-pad or None] = (cells.reshape(rows, columns, c, h + pad, w + pad)
                                             .transpose(2, 0, 3, 1, 4).reshape(c, rows * (h + pad), -1))
    return grid


def _numpy(values: torch.Tensor) -> np.ndarray:
    """A float32 numpy copy on the CPU. The logger works in numpy: torch's small ops wake its thread pool, which on
    a busy CPU costs milliseconds each."""
    return values.detach().float().cpu().numpy()


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """The first 2D conv layer in definition order, with its module path."""
    return next(((name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)


def first_conv_weight(model: nn.Module) -> torch.Tensor | None:
    first = first_conv(model)
    return None if first is None else first[1].weight.detach().float().cpu().clone()
