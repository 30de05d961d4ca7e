// A small model's every activation as cells: each shown layer one InstancedMesh of coloured squares (spatial
// layers as a grid of channel planes, dense layers as rows), stacked in depth, the output's units named with the
// class names and the winner ringed. ~37,000 cells of mnist_cnn in a handful of draw calls.

import { VIRIDIS, levelOf } from "../colors.js";
import { dependsOn } from "../graph.js";
import { shapeText } from "../layergraph.js";
import { THREE } from "./stage.js";

export const LAYER_GAP = 70; // depth between layers
const CELL = 1;
const CHANNEL_GAP = 2;
const DENSE_CELL = 3;
const MOST_NAMED = 16; // the output's units are named when they fit in one row

function gridColumns(channels) {
  return 2 ** Math.ceil(Math.log2(Math.sqrt(channels)));
}

// Where each cell of a layer sits: spatial layers as a grid of channel planes, dense layers as rows of cells.
function layout(shape, z) {
  const spatial = shape.length === 3;
  const [channels, height, width] = spatial ? shape : [shape[0], 1, 1];
  const columns = spatial ? gridColumns(channels) : (channels <= 10 ? channels : 16);
  const rows = Math.ceil(channels / columns);
  const cell = spatial ? CELL : DENSE_CELL;
  const pitchX = spatial ? width + CHANNEL_GAP : DENSE_CELL * 1.3;
  const pitchY = spatial ? height + CHANNEL_GAP : DENSE_CELL * 1.3;
  const totalX = columns * pitchX;
  const totalY = rows * pitchY;
  const position = (c, y, x) => new THREE.Vector3(
    (c % columns) * pitchX + x * cell - totalX / 2 + cell / 2,
    -(Math.floor(c / columns) * pitchY + y * cell) + totalY / 2 - cell / 2, z);
  return { spatial, channels, height, width, cell, position, top: new THREE.Vector3(0, totalY / 2 + 2, z),
    half: new THREE.Vector3(totalX / 2, totalY / 2, 0) };
}

// A class name as a sprite: as tall as a one-character label, as wide as its text (long names are cut short).
// `downwards`: the name runs down from its cell (for names wider than a cell, so that neighbours do not overlap).
function nameSprite(text, downwards) {
  const shown = text.length > 14 ? `${text.slice(0, 13)}…` : text;
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d");
  const font = "bold 44px system-ui, sans-serif";
  context.font = font;
  canvas.width = Math.max(64, Math.ceil(context.measureText(shown).width) + 12);
  canvas.height = 64;
  context.font = font; // resizing the canvas reset it
  context.fillStyle = "#1b1f24";
  context.textAlign = "center";
  context.textBaseline = "middle";
  context.fillText(shown, canvas.width / 2, 34);
  const sprite = new THREE.Sprite(new THREE.SpriteMaterial({ map: new THREE.CanvasTexture(canvas),
    depthTest: false }));
  sprite.userData.aspect = canvas.width / canvas.height;
  if (downwards) sprite.material.rotation = -Math.PI / 2;
  return sprite;
}

// Size a name (`size`: its height as a one-character label) and hang it under the cell at `anchor`.
function placeName(sprite, anchor, size) {
  const { aspect } = sprite.userData;
  sprite.scale.set(size * aspect, size, 1);
  const below = sprite.material.rotation ? 2 + (size * aspect) / 2 : 4;
  sprite.position.copy(anchor).add(new THREE.Vector3(0, -below, 0));
}

// `shown`: [{name, kind, shape}] from the input to the output; `taps`: the graph (graph.js tapsOf).
export function createCells(stage, shown, taps, { output, classNames }) {
  const geometry = new THREE.PlaneGeometry(0.92, 0.92);
  const material = new THREE.MeshBasicMaterial({ side: THREE.DoubleSide });
  const linkMaterial = new THREE.LineBasicMaterial({ color: 0xe4572e, transparent: true, opacity: 0.6 });
  const links = new THREE.LineSegments(new THREE.BufferGeometry(), linkMaterial);
  const color = new THREE.Color();
  const matrix = new THREE.Matrix4();
  const extent = new THREE.Box3();
  stage.scene.add(links);

  const layers = shown.map((layer, i) => {
    const place = layout(layer.shape, -i * LAYER_GAP + ((shown.length - 1) * LAYER_GAP) / 2);
    const mesh = new THREE.InstancedMesh(geometry, material, place.channels * place.height * place.width);
    let n = 0;
    for (let c = 0; c < place.channels; c++) {
      for (let y = 0; y < place.height; y++) {
        for (let x = 0; x < place.width; x++) {
          matrix.makeScale(place.cell, place.cell, 1).setPosition(place.position(c, y, x));
          mesh.setMatrixAt(n, matrix);
          mesh.setColorAt(n++, color.setRGB(0.85, 0.86, 0.88));
        }
      }
    }
    stage.scene.add(mesh);
    const z = place.top.z;
    extent.expandByPoint(new THREE.Vector3(-place.half.x, -place.half.y, z))
      .expandByPoint(new THREE.Vector3(place.half.x, place.half.y, z));
    stage.label(`${layer.name} · ${shapeText(layer.shape)}`, place.top, "layer-label");
    return { ...layer, mesh, place, tensor: null };
  });
  const outputLayer = layers.find((l) => l.name === output && !l.place.spatial) ?? null;
  const names = [];
  if (outputLayer && outputLayer.place.channels === classNames.length && classNames.length <= MOST_NAMED) {
    for (let k = 0; k < outputLayer.place.channels; k++) {
      const sprite = nameSprite(classNames[k], classNames.some((name) => name.length > 2));
      placeName(sprite, outputLayer.place.position(k, 0, 0), 3);
      stage.scene.add(sprite);
      names.push(sprite);
    }
  }
  let winner = null;
  const byName = new Map(layers.map((l) => [l.name, l]));

  function cellOf(layer, index) {
    const { height, width, spatial } = layer.place;
    const rest = index % (height * width);
    return spatial ? { c: Math.floor(index / (height * width)), y: Math.floor(rest / width), x: rest % width }
      : { c: index, y: 0, x: 0 };
  }

  return {
    layers,
    extent,
    count: layers.reduce((sum, l) => sum + l.mesh.count, 0),
    objects: layers.map((l) => l.mesh),

    // `tensors`: Map(layer name -> decoded tensor of its whole output).
    paint(tensors) {
      for (const layer of layers) {
        const tensor = tensors.get(layer.name);
        if (!tensor) continue;
        layer.tensor = tensor;
        for (let i = 0; i < layer.mesh.count; i++) {
          const level = levelOf(tensor.values[i], tensor.min, tensor.max) * 3;
          layer.mesh.setColorAt(i, color.setRGB(VIRIDIS[level] / 255, VIRIDIS[level + 1] / 255,
            VIRIDIS[level + 2] / 255, THREE.SRGBColorSpace));
        }
        layer.mesh.instanceColor.needsUpdate = true;
      }
      stage.invalidate();
    },

    markWinner(predicted) {
      if (!outputLayer) return;
      if (!winner) {
        const ring = new THREE.EdgesGeometry(new THREE.PlaneGeometry(DENSE_CELL * 1.25, DENSE_CELL * 1.25));
        winner = new THREE.LineSegments(ring, new THREE.LineBasicMaterial({ color: 0xe4572e }));
        stage.scene.add(winner);
      }
      winner.position.copy(outputLayer.place.position(predicted, 0, 0));
      names.forEach((sprite, k) => placeName(sprite, outputLayer.place.position(k, 0, 0), k === predicted ? 5 : 3));
    },

    position(name, c, y = 0, x = 0) {
      return byName.get(name).place.position(c, y, x);
    },

    // What the pointer is on ({text, links: {layer: lines}}), with the lines to the cells it depends on drawn.
    hover(hit) {
      const points = [];
      let reading = null;
      let counts = {};
      const layer = hit && layers.find((l) => l.mesh === hit.object);
      if (layer && hit.instanceId !== undefined) {
        const cell = cellOf(layer, hit.instanceId);
        const value = layer.tensor ? layer.tensor.values[hit.instanceId].toFixed(3) : "–";
        reading = layer.place.spatial
          ? `${layer.name} (${layer.kind}), channel ${cell.c}, row ${cell.y}, column ${cell.x}: ${value}`
          : `${layer.name} (${layer.kind}), ${layer === outputLayer && classNames[cell.c] !== undefined
            ? `class ${classNames[cell.c]}` : `unit ${cell.c}`}: ${value}`;
        if (layer !== layers[0]) {
          const from = layer.place.position(cell.c, cell.y, cell.x);
          const sources = dependsOn(taps, byName, layer.name, cell);
          for (const [name, cells] of sources) {
            const below = byName.get(name).place;
            for (const s of cells) points.push(from.x, from.y, from.z, ...below.position(s.c, s.y, s.x).toArray());
          }
          counts = Object.fromEntries([...sources].map(([name, cells]) => [name, cells.length]));
        }
      }
      links.geometry.dispose();
      links.geometry = new THREE.BufferGeometry();
      links.geometry.setAttribute("position", new THREE.Float32BufferAttribute(points, 3));
      stage.invalidate();
      return { text: reading, links: counts };
    },

    dispose() {
      for (const layer of layers) {
        stage.scene.remove(layer.mesh);
        layer.mesh.dispose();
      }
      for (const sprite of names) {
        stage.scene.remove(sprite);
        sprite.material.map.dispose();
        sprite.material.dispose();
      }
      if (winner) {
        stage.scene.remove(winner);
        winner.geometry.dispose();
        winner.material.dispose();
      }
      stage.scene.remove(links);
      links.geometry.dispose();
      for (const disposable of [geometry, material, linkMaterial]) disposable.dispose();
      stage.clearLabels();
    },
  };
}
