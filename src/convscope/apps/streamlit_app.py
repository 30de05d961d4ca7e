"""convscope as a Streamlit app, for those who come from Streamlit apps: pick a model and an input (an MNIST test
digit, a sample photo or an image of your own) and see its prediction, its class activation map, the filters, the
feature maps, the pooling and dense outputs, and the model's training history. Every picture is drawn by
``convscope.plot``; this file only lays the pages out, so it is also an example of building on the library.

Run it with ``convscope streamlit`` (``pip install 'convscope[streamlit]'``), which runs ``streamlit run`` on this
file. Options after streamlit's ``--`` reach the app: ``--model NAME`` (the model picked first) and
``--checkpoint FILE`` (a checkpoint from ``convscope train`` or ``convscope finetune``).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from convscope import plot
from convscope.data.mnist import sample_digit
from convscope.data.photos import PHOTOS
from convscope.errors import ConvscopeError, InputError
from convscope.inspect import METHODS, SALIENCY, InputWarning, Inspection, Inspector
from convscope.models import MODELS, Checkpoint, LayerKind, load_checkpoint, load_model

PAGES = ("Prediction", "CAM", "Filters", "Feature maps", "Pooling and dense outputs", "Training history")
MNIST_SAMPLE, PHOTO, UPLOAD = "an MNIST test digit", "a sample photo", "an image of your own"
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]
MOST_FILTERS = 256  # a slider's top: more filters than this draw too small to read
MOST_CHANNELS = 128
BLANK_CAM = {
    "zero-gradient": "The map is blank: the class's gradient is zero at {layer}, so nothing there changes its score "
                     "(its units are switched off for this input). Try another layer or method.",
    "no-positive-evidence": "The map is blank: at every position of {layer} the weighted activations speak against "
                            "the class, and a CAM keeps only the evidence for it.",
}


def app_args(argv: list[str]) -> argparse.Namespace:
    """The options `convscope streamlit` passes after `--`. Unknown ones are left alone: under Streamlit's AppTest
    the script sees the test runner's own arguments."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--model")
    parser.add_argument("--checkpoint")
    return parser.parse_known_args(argv)[0]


def available_models() -> list[str]:
    """The registered models that load now, with no training and no download: the MNIST ones (packaged weights),
    EfficientNet-Lite0 (weights in a package), and the ImageNet ones whose weights `convscope weights fetch`
    brought here."""
    return [name for name, spec in MODELS.items() if spec.loadable]


def model_key(name: str, checkpoint: str) -> tuple[str, str | None, int | None]:
    """What names a loaded model: a registered name, or a checkpoint file (which names its own model) with its
    modification time, so that a file a new training run rewrote is loaded again."""
    if not checkpoint:
        return name, None, None
    path = Path(checkpoint).expanduser()
    return "", str(path), path.stat().st_mtime_ns if path.is_file() else None


@st.cache_resource(show_spinner="Loading the model...")
def load(name: str, checkpoint: str | None, stamp: int | None) -> tuple[Checkpoint, Inspector]:
    """A model and its inspector, once per process for every session (an Inspector is safe to share)."""
    loaded = load_checkpoint(Path(checkpoint)) if checkpoint else load_model(name)
    return loaded, Inspector(loaded.adapter)


@st.cache_data(max_entries=64, show_spinner="Inspecting...")
def run_inspection(model: tuple, image: bytes | np.ndarray, method: str, target: int | None,
                   cam_layer: str | None) -> tuple[Inspection, list[str]]:
    """One forward and one backward for an input and the sidebar's choices, kept for the next rerun (every click
    in Streamlit runs the whole script again), with what convscope doubts about the input or the answer."""
    _, inspector = load(*model)
    with warnings.catch_warnings(record=True) as doubts:
        warnings.simplefilter("always", InputWarning)
        result = inspector.inspect(image, target=target, cam_layer=cam_layer, method=method)
    return result, [str(doubt.message) for doubt in doubts if issubclass(doubt.category, InputWarning)]


@st.cache_data(max_entries=64, show_spinner=False)
def layer_output(model: tuple, model_input: np.ndarray, layer: str) -> np.ndarray:
    _, inspector = load(*model)
    return inspector.activations(torch.from_numpy(model_input), [layer])[layer].numpy()


def activation(model: tuple, result: Inspection, layer: str) -> torch.Tensor:
    """A layer's output for the inspected input. A big model's inspection captures only its CAM layer (an
    EfficientNet's every layer is megabytes), so the others are run when asked for, up to that layer only."""
    if layer in result.activations:
        return result.activations[layer]
    return torch.from_numpy(layer_output(model, result.input.numpy(), layer))


def choose_input(checkpoint: Checkpoint) -> tuple[bytes | np.ndarray | None, str, int | None]:
    """The sidebar's input: (what ``Inspector.inspect`` takes, where it came from, its true label when known); None
    before anything is uploaded. An MNIST digit is the model input itself; a photo or an upload goes through the
    model's preprocessing."""
    sources = ([MNIST_SAMPLE] if checkpoint.spec.dataset == "mnist" else []) + \
              ([PHOTO] if checkpoint.adapter.input_shape[0] == 3 else []) + [UPLOAD]
    source = st.sidebar.radio("Input", sources)
    if source == MNIST_SAMPLE:
        digit = st.sidebar.selectbox("Digit", range(10), index=3)
        if st.sidebar.button("Another one", help="another test image of this digit"):
            st.session_state.seed = st.session_state.get("seed", 0) + 1
        with st.spinner("Reading MNIST..."):  # the first time: from CONVSCOPE_MNIST_DIR, or downloaded
            sample = sample_digit(digit, "test", seed=st.session_state.get("seed", 0))
        return sample.image.numpy(), f"MNIST test image #{sample.index}", sample.label
    if source == PHOTO:
        name = st.sidebar.selectbox("Photo", list(PHOTOS), format_func=lambda n: PHOTOS[n].title)
        photo = PHOTOS[name]
        return photo.path.read_bytes(), f"{photo.title}: {photo.credit}, {photo.licence}", None
    upload = st.sidebar.file_uploader("Image", type=IMAGE_TYPES,
                                      help="a drawn digit for an MNIST model, a photo for an ImageNet one")
    if upload is None:
        return None, "", None
    return upload.getvalue(), upload.name, None


def choose_explanation(checkpoint: Checkpoint) -> tuple[str, str | None, int | None]:
    """(method, CAM layer, target class) from the sidebar. Only layers with a spatial map can hold a CAM; a model
    without any (an MLP) gets none, and its CAM page says so."""
    graph, names = checkpoint.adapter.graph, checkpoint.adapter.class_names
    method = st.sidebar.selectbox("Explanation", METHODS,
                                  help="a class activation map on a conv layer, or saliency: how much each input "
                                       "pixel moves the class's score")
    spatial = [tap.name for tap in graph.taps if tap.spatial]
    cam_layer = None
    if spatial and method != SALIENCY:
        default = graph.default_cam_layer()
        cam_layer = st.sidebar.selectbox("CAM layer", spatial, index=spatial.index(default) if default in spatial
                                         else len(spatial) - 1)
    target = st.sidebar.selectbox("Explain the class", [None, *range(len(names))],
                                  format_func=lambda i: "the predicted one" if i is None else names[i])
    return method, cam_layer, target


def prediction_page(checkpoint: Checkpoint, result: Inspection, source: str, label: int | None) -> None:
    left, middle, right = st.columns(3)
    left.metric("Predicted", result.class_name(result.predicted))
    middle.metric("Confidence", f"{result.confidence:.1%}")
    if label is not None:
        right.metric("Label", checkpoint.adapter.class_names[label])
    st.caption(source)
    st.pyplot(plot.inspection(result))
    column, _ = st.columns([3, 2])  # the ten most probable classes, at a size that reads like the row above
    column.pyplot(plot.probabilities(result))


def cam_page(checkpoint: Checkpoint, result: Inspection) -> None:
    if result.cam is None:
        st.info(f"{checkpoint.spec.name} has no layer with a spatial map, so there is no class activation map to "
                "draw. Choose the saliency explanation in the sidebar to see which pixels its answer depends on.")
        return
    st.pyplot(plot.cam_overlay(result))
    if result.cam_blank:
        st.warning(BLANK_CAM[result.cam_blank].format(layer=result.cam_layer))


def filters_page(checkpoint: Checkpoint) -> None:
    graph = checkpoint.adapter.graph
    convs = [tap for tap in graph.taps if tap.kind is LayerKind.CONV and tap.module and tap.call == 1]
    if not convs:
        st.info(f"{checkpoint.spec.name} has no conv layer, so it has no filters to draw: its layers are dense.")
        return
    tap = graph[st.selectbox("Conv layer", [tap.name for tap in convs])]
    count = tap.output_shape[0]
    n = st.slider("Filters", 1, min(count, MOST_FILTERS), min(count, 64)) if count > 1 else 1
    st.pyplot(plot.filters(checkpoint, tap.name, n=n))


def maps_view(model: tuple, result: Inspection, layers: list[str], default: str | None, what: str) -> None:
    """A layer picker, how many channels and which, and the grid of the chosen layer's maps."""
    layer = st.selectbox(what, layers, index=layers.index(default) if default in layers else 0)
    maps = activation(model, result, layer)
    count = maps.shape[0]
    n = st.slider("Channels", 1, min(count, MOST_CHANNELS), min(count, 16), key=f"{what} channels") \
        if count > 1 else 1
    order = st.radio("Which", ("index", "top"), horizontal=True, key=f"{what} order",
                     format_func={"index": "the first ones", "top": "the most active"}.get)
    st.pyplot(plot.feature_maps(maps, layer, n=n, order=order))


def feature_maps_page(checkpoint: Checkpoint, model: tuple, result: Inspection) -> None:
    layers = [tap.name for tap in checkpoint.adapter.graph.taps if tap.spatial and tap.kind is not LayerKind.POOL]
    if not layers:
        st.info(f"{checkpoint.spec.name} has no layer with a spatial map: its outputs are on the "
                "Pooling and dense outputs page.")
        return
    maps_view(model, result, layers, result.cam_layer, "Layer")


def pooling_and_dense_page(checkpoint: Checkpoint, model: tuple, result: Inspection) -> None:
    taps = checkpoint.adapter.graph.taps
    st.subheader("Pooling layers")
    pools = [tap.name for tap in taps if tap.spatial and tap.kind is LayerKind.POOL]
    if pools:
        maps_view(model, result, pools, None, "Pooling layer")
    else:
        st.caption(f"{checkpoint.spec.name} has no pooling layer with a spatial map.")
    st.subheader("Dense outputs")
    # Every layer whose output is a vector (a global pooling's 1x1 maps are one), but flatten and dropout, which
    # repeat the layer before them in evaluation.
    vectors = [tap.name for tap in taps if not tap.spatial and tap.kind not in (LayerKind.FLATTEN, LayerKind.DROPOUT)]
    if not vectors:
        st.caption(f"{checkpoint.spec.name} has no layer with a vector output.")
        return
    layer = st.selectbox("Dense layer", vectors)
    values = activation(model, result, layer).flatten().float().numpy()
    strongest = int(values.argmax())
    st.caption(f"{layer}: {len(values)} units, from {values.min():.3g} to {values.max():.3g}; the strongest is "
               f"unit {strongest}")
    st.bar_chart(values, x_label="unit", y_label="output")


def history_page(checkpoint: Checkpoint) -> None:
    try:
        figure = plot.history(checkpoint)
    except InputError:
        st.info(f"{checkpoint.spec.name} has no training history: its weights did not come from a convscope "
                "training run. A checkpoint from `convscope train` or `convscope finetune` has one.")
        return
    if checkpoint.test_accuracy is not None:
        st.metric("Test accuracy", f"{checkpoint.test_accuracy:.2%}")
    command = (checkpoint.metadata.get("training") or {}).get("command")
    if command:
        st.code(command, language="sh")
    st.pyplot(figure)


def page(args: argparse.Namespace) -> None:
    shown = st.sidebar.radio("Page", PAGES)
    models = available_models()
    name = st.sidebar.selectbox("Model", models, index=models.index(args.model) if args.model in models else 0,
                                help="the registered models whose weights are here (`convscope weights fetch NAME` "
                                     "brings an ImageNet model's)")
    checkpoint_file = st.sidebar.text_input("Checkpoint file", value=args.checkpoint or "",
                                            help="a .safetensors file from `convscope train` or `convscope "
                                                 "finetune`, used instead of the model above (it names its own)")
    model = model_key(name, checkpoint_file.strip())
    checkpoint, _ = load(*model)
    st.title(shown)
    st.caption(checkpoint.title())
    image, source, label = choose_input(checkpoint)
    method, cam_layer, target = choose_explanation(checkpoint)
    # The filters and the history are the model's own; the other pages show what it does with the input.
    if shown == "Filters":
        filters_page(checkpoint)
        return
    if shown == "Training history":
        history_page(checkpoint)
        return
    if image is None:
        st.info("Upload a PNG, JPEG, WebP, GIF or BMP image in the sidebar.")
        return
    result, doubts = run_inspection(model, image, method, target, cam_layer)
    for doubt in doubts:
        st.warning(doubt)
    if shown == "Prediction":
        prediction_page(checkpoint, result, source, label)
    elif shown == "CAM":
        cam_page(checkpoint, result)
    elif shown == "Feature maps":
        feature_maps_page(checkpoint, model, result)
    else:
        pooling_and_dense_page(checkpoint, model, result)


def main() -> None:
    st.set_page_config(page_title="convscope", layout="wide")
    try:
        page(app_args(sys.argv[1:]))
    except ConvscopeError as e:  # a bad upload, a checkpoint that is not one: the message, not a traceback
        st.error(str(e))


if __name__ == "__main__":
    main()
