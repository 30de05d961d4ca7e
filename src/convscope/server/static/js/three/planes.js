// A big model's activations as pictures: one layer per spatial size (the last activation before the maps shrink:
// VGG16's blocks, ResNet's stages), each showing a chosen subset of its channels (by default the 16 strongest for
// the input) as textured planes, the input in colour first, the top classes last. A few dozen draw calls whatever
// the model's size.

import { VIRIDIS, levelOf } from "../colors.js";
import { shapeText } from "../layergraph.js";
import { mostLikely } from "../topclasses.js";
import { THREE } from "./stage.js";

export const CHANNELS_SHOWN = 16;
const LAYER_GAP = 90;
const COLUMNS = 4;
const TOP_CLASSES = 10;

const planeSize = (height) => 8 + height * 0.3; // 224 px -> 75 units, 7 px -> 10: small maps stay visible

// The layers worth showing: for each spatial size, the last activation (or pooling) before the size changes.
export function stageLayers(architecture, shownKinds) {
  const spatial = architecture.layers.filter((l) => shownKinds.has(l.kind) && l.output_shape.length === 3
    && l.output_shape[1] > 1);
  const chosen = spatial.filter((layer, i) => {
    const next = spatial[i + 1];
    return !next || next.output_shape[1] !== layer.output_shape[1] || next.output_shape[2] !== layer.output_shape[2];
  });
  return chosen.map((l) => ({ name: l.name, kind: l.kind, shape: l.output_shape }));
}

function texture(width, height, fill) {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = ((height - 1 - y) * width + x) * 4; // a DataTexture's first row is the bottom one
      fill(p, y, x, data);
      data[p + 3] = 255;
    }
  }
  const made = new THREE.DataTexture(data, width, height, THREE.RGBAFormat);
  made.colorSpace = THREE.SRGBColorSpace;
  made.magFilter = THREE.NearestFilter;
  made.needsUpdate = true;
  return made;
}

export function createPlanes(stage, input, shown) {
  const extent = new THREE.Box3();
  const geometry = new THREE.PlaneGeometry(1, 1);
  const zOf = (i) => -i * LAYER_GAP + (shown.length * LAYER_GAP) / 2;
  const layers = [{ name: "input", kind: "input", shape: input }, ...shown].map((layer, i) => {
    const size = planeSize(layer.shape[1]);
    const group = new THREE.Group();
    group.position.z = zOf(i);
    stage.scene.add(group);
    const count = layer.name === "input" ? 1 : CHANNELS_SHOWN;
    const columns = Math.min(COLUMNS, count);
    const width = columns * size * 1.1;
    const height = Math.ceil(count / columns) * size * 1.1;
    extent.expandByPoint(new THREE.Vector3(-width / 2, -height / 2, group.position.z))
      .expandByPoint(new THREE.Vector3(width / 2, height / 2, group.position.z));
    const label = stage.label(`${layer.name} · ${shapeText(layer.shape)}`,
      new THREE.Vector3(0, height / 2 + 2, group.position.z), "layer-label");
    return { ...layer, group, size, columns, label, meshes: [], tensor: null, order: [] };
  });
  const outputZ = zOf(layers.length);
  let classLabels = [];

  function clear(layer) {
    for (const mesh of layer.meshes) {
      layer.group.remove(mesh);
      mesh.material.map.dispose();
      mesh.material.dispose();
    }
    layer.meshes = [];
  }

  function addPlane(layer, map, slot, channel) {
    const mesh = new THREE.Mesh(geometry, new THREE.MeshBasicMaterial({ map, side: THREE.DoubleSide }));
    const count = layer.name === "input" ? 1 : CHANNELS_SHOWN;
    const rows = Math.ceil(count / layer.columns);
    mesh.scale.set(layer.size, layer.size, 1);
    mesh.position.set(((slot % layer.columns) - (layer.columns - 1) / 2) * layer.size * 1.1,
      ((rows - 1) / 2 - Math.floor(slot / layer.columns)) * layer.size * 1.1, 0);
    mesh.userData = { layer, slot, channel };
    layer.group.add(mesh);
    layer.meshes.push(mesh);
  }

  return {
    extent,
    get objects() { return layers.flatMap((l) => l.meshes); },

    // The model input (decoded, (3, H, W) or (1, H, W) in [min, max]) as one picture.
    paintInput(tensor) {
      const layer = layers[0];
      clear(layer);
      const [channels, height, width] = tensor.shape.length === 3 ? tensor.shape : [1, ...tensor.shape];
      const plane = height * width;
      addPlane(layer, texture(width, height, (p, y, x, data) => {
        for (let c = 0; c < 3; c++) {
          data[p + c] = levelOf(tensor.values[(channels === 3 ? c : 0) * plane + y * width + x], tensor.min,
            tensor.max);
        }
      }), 0, null);
      layer.tensor = tensor;
      stage.invalidate();
    },

    // One layer's channels: `page` is /api/layers/activations' answer, its maps decoded (per channel); `chosen`:
    // whether the user picked them (else they are the strongest).
    paint(name, page, tensor, chosen) {
      const layer = layers.find((l) => l.name === name);
      clear(layer);
      const [, height, width] = tensor.shape;
      page.order.forEach((channel, slot) => {
        const offset = slot * height * width;
        addPlane(layer, texture(width, height, (p, y, x, data) => {
          const level = levelOf(tensor.values[offset + y * width + x], tensor.min[slot], tensor.max[slot]) * 3;
          data.set(VIRIDIS.subarray(level, level + 3), p);
        }), slot, channel);
      });
      layer.tensor = tensor;
      layer.order = page.order;
      layer.label.textContent = `${layer.name} · ${shapeText(layer.shape)} · `
        + (chosen ? `channels ${page.order.join(", ")}` : `the ${page.order.length} strongest channels`);
      stage.invalidate();
    },

    // The top classes as labels in a column after the last layer, the first marked.
    showClasses(probabilities, classNames) {
      for (const element of classLabels) element.remove();
      classLabels = mostLikely(probabilities, classNames, TOP_CLASSES).map((row, rank) => stage.label(
        `${row.class} ${(row.probability * 100).toFixed(1)}%`, new THREE.Vector3(0, (TOP_CLASSES / 2 - rank) * 12,
          outputZ), rank === 0 ? "class-label winner" : "class-label"));
      extent.expandByPoint(new THREE.Vector3(0, TOP_CLASSES * 6, outputZ));
    },

    // What the pointer is on: {text} (null when nothing).
    hover(hit) {
      const mesh = hit?.object;
      if (!mesh?.userData.layer || !hit.uv) return { text: null };
      const { layer, slot, channel } = mesh.userData;
      const tensor = layer.tensor;
      const [height, width] = tensor.shape.slice(-2);
      const x = Math.min(width - 1, Math.floor(hit.uv.x * width));
      const y = Math.min(height - 1, Math.floor((1 - hit.uv.y) * height));
      const scale = layer.shape[1] / height;
      const where = `row ${Math.floor(y * scale)}, column ${Math.floor(x * scale)}`;
      if (channel === null) return { text: `input, ${where}` };
      const value = tensor.values[(slot * height + y) * width + x];
      return { text: `${layer.name} (${layer.kind}), channel ${channel}, ${where}: ${value.toFixed(3)}`
        + (scale > 1 ? " (averaged)" : "") };
    },

    dispose() {
      for (const layer of layers) {
        clear(layer);
        stage.scene.remove(layer.group);
      }
      geometry.dispose();
      stage.clearLabels();
    },
  };
}
