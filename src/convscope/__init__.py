"""convscope: a workbench for seeing inside convolutional networks.

The main entry points, importable from here (each loaded on first use, so ``import convscope`` is instant and
imports no torch)::

    import convscope
    result = convscope.explain("mnist_cnn", "digit.png")   # an Inspection: shows itself in a notebook
    convscope.plot.show(result)                             # a matplotlib figure (the 'plot' extra)
    model = convscope.load_model("efficientnet_lite0")      # or checkpoint="run.safetensors"
    run = convscope.train(convscope.TrainConfig(), on_event=convscope.ProgressBar())
    report = convscope.evaluate_model(model.adapter, convscope.labelled_set_for(model.adapter, folder="test/"))
"""

from importlib import import_module

__version__ = "0.1.0"

_LAZY = {
    "explain": ".api",
    **dict.fromkeys(("Inspection", "Inspector", "InputWarning", "METHODS"), ".inspect"),
    **dict.fromkeys(("Checkpoint", "ModelAdapter", "load_model", "wrap"), ".models"),
    **dict.fromkeys(("sample_digit", "load_mnist"), ".data"),
    "open_image": ".images",
    **dict.fromkeys(("FineTuneConfig", "ProgressBar", "TrainConfig", "finetune", "train"), ".training"),
    **dict.fromkeys(("Evaluation", "evaluate_model", "labelled_set_for"), ".evaluation"),
    "DownloadBar": ".progress",
}
_MODULES = ("plot", "render", "display", "models", "inspect", "training", "data", "evaluation", "metrics")

# The modules are attributes, not star-imports: `from convscope import *` would shadow `inspect` and IPython's
# `display`.
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _MODULES:
        return import_module(f".{name}", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_LAZY[name], __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, *_MODULES])
