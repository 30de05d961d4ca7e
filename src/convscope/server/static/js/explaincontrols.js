// What to explain and how, for the draw view: the method, the layer (only layers a CAM can be laid over) and the
// class (the model's class names), all from the model's architecture and class list.

import { h } from "./dom.js";
import { classOptions, option } from "./reportform.js";

export const METHODS = [["gradcam", "Grad-CAM"], ["gradcam++", "Grad-CAM++"], ["hirescam", "HiResCAM"],
  ["saliency", "Saliency"]];

// `onChange()` after any choice; `extra`: more controls for the same toolbar.
export function createExplainControls(onChange, ...extra) {
  const method = h("select", { "aria-label": "CAM method", onchange: () => { layerMenuFits(); onChange(); } },
    ...METHODS.map(([value, text]) => option(value, text)));
  const camLayer = h("select", { "aria-label": "CAM layer", onchange: onChange });
  const target = h("select", { "aria-label": "Class to explain", onchange: onChange }, option("", "predicted class"));

  function layerMenuFits() {
    camLayer.disabled = method.value === "saliency" || camLayer.options.length <= 1;
    if (camLayer.disabled) camLayer.value = "";
  }

  return {
    element: h("div", { class: "toolbar" }, h("label", {}, "Explain with ", method), h("label", {}, "at ", camLayer),
      h("label", {}, "for ", target), ...extra),

    // The request fields: cam_method, cam_layer, target.
    values() {
      return { cam_method: method.value, cam_layer: camLayer.value || undefined,
        target: target.value === "" ? undefined : Number(target.value) };
    },

    // A CAM is taken at a layer with a spatial map bigger than 1x1 (a conv, its activation, a pooling or a merge);
    // saliency takes none. A model with no such layer (an MLP) explains by saliency only.
    setModel(architecture, classNames) {
      target.replaceChildren(option("", "predicted class"), ...classOptions(classNames));
      const spatial = architecture.layers.filter((l) => l.output_shape.length === 3
        && l.output_shape[1] * l.output_shape[2] > 1);
      const fallback = architecture.default_cam_layer;
      camLayer.replaceChildren(option("", fallback ? `default (${fallback})` : "default layer"),
        ...spatial.map((l) => option(l.name, l.name)));
      for (const choice of method.options) choice.disabled = choice.value !== "saliency" && spatial.length === 0;
      if (method.selectedOptions[0]?.disabled) method.value = "saliency";
      layerMenuFits();
    },
  };
}
