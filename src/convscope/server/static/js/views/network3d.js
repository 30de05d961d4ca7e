// The network in 3D for the current input: every activation layer's cells as coloured squares, layers stacked in
// depth (Three.js, one InstancedMesh per layer: a handful of draw calls for ~37,000 cells), orbit/zoom/pan, hover a
// cell for its layer, channel, position and value and the lines to the cells it depends on in the shown layers it
// reads (found through the graph's parents, so a skip connection draws its lines too); and Plotly 3D surfaces of
// chosen channels of one layer. Updates in place; releases its GPU resources on close.

import * as THREE from "/vendor/three/three.module.js";
import { OrbitControls } from "/vendor/three/OrbitControls.js";
import { api, query } from "../api.js";
import { h, messageBox } from "../dom.js";
import { VIRIDIS, legend, levelOf } from "../colors.js";
import { dependsOn, tapsOf } from "../graph.js";
import { loadPlotly } from "../plotly.js";
import { predict } from "../predict.js";
import { digitSelect, fetchSample } from "../samples.js";
import { decodeLayers, decodeTensor } from "../tensors.js";

// Activations, after each layer's non-linearity (the model's output is shown too, whatever its kind).
const SHOWN = new Set(["relu", "sigmoid", "activation", "pool", "softmax"]);
const MOST_NAMED = 16; // the output's units are named when they fit in one row
const LAYER_GAP = 70; // depth between layers
const CELL = 1;
const CHANNEL_GAP = 2;
const DENSE_CELL = 3;

function gridColumns(channels) {
  return 2 ** Math.ceil(Math.log2(Math.sqrt(channels)));
}

// Where each cell of a layer sits: spatial layers as a grid of channel planes, dense layers as rows of cells.
function layout(layer, z) {
  const spatial = layer.shape.length === 3;
  const [channels, height, width] = spatial ? layer.shape : [layer.shape[0], 1, 1];
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
  return { spatial, channels, height, width, cell, position };
}

// A class name as a sprite: as tall as a one-character label, as wide as its text (long names are cut short).
// `downwards`: the name runs down from its cell (for names wider than a cell, so that neighbours do not overlap).
function labelSprite(text, downwards) {
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
  const texture = new THREE.CanvasTexture(canvas);
  const sprite = new THREE.Sprite(new THREE.SpriteMaterial({ map: texture, depthTest: false }));
  sprite.userData.aspect = canvas.width / canvas.height;
  if (downwards) sprite.material.rotation = -Math.PI / 2;
  return sprite;
}

// Size a label (`size`: its height as a one-character label) and hang it under the cell at `anchor`.
function placeLabel(sprite, anchor, size) {
  const { aspect } = sprite.userData;
  sprite.scale.set(size * aspect, size, 1);
  const below = sprite.material.rotation ? 2 + (size * aspect) / 2 : 4;
  sprite.position.copy(anchor).add(new THREE.Vector3(0, -below, 0));
}

export function createNetworkView(root, store) {
  const message = messageBox(h("p", { class: "message", role: "alert", hidden: true }));
  const stage = h("div", { class: "stage" });
  const tooltip = h("p", { class: "readout tooltip", "aria-live": "polite", text: "Hover a cell to read it." });
  const digitChoice = digitSelect();
  const surfaceLayer = h("select", { "aria-label": "Layer for the surfaces", onchange: () => surfaces() });
  const surfaceChannels = h("input", { type: "text", value: "0-3", size: "8", "aria-label": "Channels",
    onchange: () => surfaces() });
  const surfaceChart = h("div", { class: "surfaces", "aria-label": "Activation surfaces" });
  const stats = h("p", { class: "muted" });
  root.append(h("div", { class: "network-view" },
    h("section", { "aria-label": "The network in 3D" },
      h("div", { class: "toolbar" }, h("strong", { text: "Network in 3D" }), stats, digitChoice,
        h("button", { type: "button", text: "Random sample", onclick: sample })),
      message.element, stage, tooltip, legend(VIRIDIS, "low", "high", "activation, per layer")),
    h("section", { "aria-label": "Activation surfaces" },
      h("div", { class: "toolbar" }, h("strong", { text: "Activation surfaces" }),
        h("label", {}, "layer ", surfaceLayer), h("label", {}, "channels ", surfaceChannels)),
      surfaceChart)));

  // --- the scene ------------------------------------------------------------------------------------------
  // No MSAA, pixel ratio <= 2: the cells are axis-aligned squares, and software renderers pay dearly for both.
  const renderer = new THREE.WebGLRenderer({ antialias: false });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
  renderer.setClearColor(0xf4f5f7);
  stage.append(renderer.domElement);
  renderer.domElement.setAttribute("aria-label", "3D view of every layer's activations");
  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(45, 1, 1, 5000);
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.enableDamping = true;
  const cellGeometry = new THREE.PlaneGeometry(0.92, 0.92);
  const cellMaterial = new THREE.MeshBasicMaterial({ side: THREE.DoubleSide });
  const linkMaterial = new THREE.LineBasicMaterial({ color: 0xe4572e, transparent: true, opacity: 0.6 });
  const links = new THREE.LineSegments(new THREE.BufferGeometry(), linkMaterial);
  scene.add(links);
  const raycaster = new THREE.Raycaster();
  const pointer = new THREE.Vector2();
  const color = new THREE.Color();
  const matrix = new THREE.Matrix4();
  let layers = []; // {name, kind, shape, mesh, place, tensor}
  let taps = new Map(); // every tap of the graph by name, for the walk from a cell to what it depends on
  let output = null; // the shown layer that is the model's output
  let classNames = [];
  let labels = [];
  let winnerMarker = null;
  let frame = 0;
  let dirty = true; // render only when something changed: the scene is still most of the time
  let hoverPending = null;
  let alive = true;

  function resize() {
    const width = stage.clientWidth || 800;
    const height = Math.max(360, Math.min(620, window.innerHeight - 260));
    renderer.setSize(width, height);
    camera.aspect = width / height;
    camera.updateProjectionMatrix();
    dirty = true;
  }

  function animate() {
    frame = requestAnimationFrame(animate);
    if (controls.update() || dirty) {
      renderer.render(scene, camera);
      dirty = false;
    }
  }

  // Frames per second when every frame is drawn (the camera orbiting), measured over `count` frames.
  function measureFps(count = 20) {
    return new Promise((resolve) => {
      let left = count;
      const started = performance.now();
      const step = () => {
        controls.rotateLeft?.(0.01);
        renderer.render(scene, camera);
        if (--left > 0) {
          requestAnimationFrame(step);
        } else {
          const fps = (count * 1000) / (performance.now() - started);
          stats.textContent = `${cells().toLocaleString()} cells, ${renderer.info.render.calls} draw calls, ` +
            `${fps.toFixed(1)} fps here`;
          resolve({ fps, drawCalls: renderer.info.render.calls, cells: cells() });
        }
      };
      requestAnimationFrame(step);
    });
  }

  const cells = () => layers.reduce((sum, l) => sum + l.mesh.count, 0);

  // Build the meshes for an architecture (once per model); colours come with each answer.
  function build(architecture) {
    for (const layer of layers) {
      scene.remove(layer.mesh);
      layer.mesh.dispose();
    }
    for (const sprite of labels) {
      scene.remove(sprite);
      sprite.material.map.dispose();
      sprite.material.dispose();
    }
    labels = [];
    taps = tapsOf(architecture);
    classNames = store.classes(architecture.model);
    const shown = [{ name: "input", kind: "input", shape: architecture.input_shape },
      ...architecture.layers.filter((l) => SHOWN.has(l.kind) || l.name === architecture.output)
        .map((l) => ({ name: l.name, kind: l.kind, shape: l.output_shape }))];
    layers = shown.map((layer, i) => {
      const place = layout(layer, -i * LAYER_GAP + ((shown.length - 1) * LAYER_GAP) / 2);
      const count = place.channels * place.height * place.width;
      const mesh = new THREE.InstancedMesh(cellGeometry, cellMaterial, count);
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
      mesh.userData.layer = i;
      scene.add(mesh);
      return { ...layer, mesh, place, tensor: null };
    });
    output = layers.find((l) => l.name === architecture.output && !l.place.spatial) ?? null;
    if (winnerMarker) winnerMarker.visible = false; // until this model's first answer
    if (output && output.place.channels === classNames.length && classNames.length <= MOST_NAMED) {
      for (let k = 0; k < output.place.channels; k++) {
        const sprite = labelSprite(classNames[k], classNames.some((name) => name.length > 2));
        placeLabel(sprite, output.place.position(k, 0, 0), 3);
        scene.add(sprite);
        labels.push(sprite);
      }
    }
    camera.position.set(170, 95, 215);
    controls.target.set(0, 0, 0);
    controls.update();
    dirty = true;
    surfaceLayer.replaceChildren(...layers.filter((l) => l.place.spatial && l.kind !== "input")
      .map((l) => h("option", { value: l.name, text: l.name })));
  }

  function paintLayer(layer, tensor) {
    layer.tensor = tensor;
    for (let i = 0; i < layer.mesh.count; i++) {
      const level = levelOf(tensor.values[i], tensor.min, tensor.max) * 3;
      layer.mesh.setColorAt(i, color.setRGB(VIRIDIS[level] / 255, VIRIDIS[level + 1] / 255,
        VIRIDIS[level + 2] / 255, THREE.SRGBColorSpace));
    }
    layer.mesh.instanceColor.needsUpdate = true;
    dirty = true;
  }

  function markWinner(predicted) {
    if (!output) return;
    if (!winnerMarker) {
      const ring = new THREE.EdgesGeometry(new THREE.PlaneGeometry(DENSE_CELL * 1.25, DENSE_CELL * 1.25));
      winnerMarker = new THREE.LineSegments(ring, new THREE.LineBasicMaterial({ color: 0xe4572e }));
      scene.add(winnerMarker);
    }
    winnerMarker.visible = true;
    winnerMarker.position.copy(output.place.position(predicted, 0, 0));
    labels.forEach((sprite, k) => placeLabel(sprite, output.place.position(k, 0, 0), k === predicted ? 5 : 3));
  }

  // --- hover: read a cell and draw its receptive field ---------------------------------------------------
  function cellOf(layer, index) {
    const { height, width, spatial } = layer.place;
    const c = Math.floor(index / (height * width));
    const rest = index % (height * width);
    return spatial ? { c, y: Math.floor(rest / width), x: rest % width } : { c: index, y: 0, x: 0 };
  }

  function hover(event) {
    const box = renderer.domElement.getBoundingClientRect();
    pointer.set(((event.clientX - box.left) / box.width) * 2 - 1, -((event.clientY - box.top) / box.height) * 2 + 1);
    raycaster.setFromCamera(pointer, camera);
    const hit = raycaster.intersectObjects(layers.map((l) => l.mesh), false)[0];
    if (!hit || hit.instanceId === undefined) {
      links.geometry.setAttribute("position", new THREE.Float32BufferAttribute([], 3));
      dirty = true;
      return;
    }
    const index = layers.findIndex((l) => l.mesh === hit.object);
    const layer = layers[index];
    const cell = cellOf(layer, hit.instanceId);
    const value = layer.tensor ? layer.tensor.values[hit.instanceId] : null;
    const reading = value === null ? "–" : value.toFixed(3);
    tooltip.textContent = layer.place.spatial
      ? `${layer.name} (${layer.kind}), channel ${cell.c}, row ${cell.y}, column ${cell.x}: ${reading}`
      : `${layer.name} (${layer.kind}), ${layer === output && classNames[cell.c] !== undefined
        ? `class ${classNames[cell.c]}` : `unit ${cell.c}`}: ${reading}`;
    const points = [];
    if (index > 0) {
      const from = layer.place.position(cell.c, cell.y, cell.x);
      const byName = new Map(layers.map((l) => [l.name, l]));
      const sources = dependsOn(taps, byName, layer.name, cell);
      for (const [name, cells] of sources) {
        const below = byName.get(name);
        for (const source of cells) {
          points.push(from.x, from.y, from.z, ...below.place.position(source.c, source.y, source.x).toArray());
        }
      }
      // Read by the browser tests: how many lines go to each shown layer.
      window.__convscope.network3d.links = Object.fromEntries([...sources].map(([name, cells]) =>
        [name, cells.length]));
    }
    links.geometry.dispose();
    links.geometry = new THREE.BufferGeometry();
    links.geometry.setAttribute("position", new THREE.Float32BufferAttribute(points, 3));
    dirty = true;
  }

  renderer.domElement.addEventListener("pointermove", (event) => {
    if (hoverPending) return;
    hoverPending = requestAnimationFrame(() => {
      hoverPending = null;
      hover(event);
    });
  });

  // Screen position of a cell, for tests and for pointing at it.
  window.__convscope.network3d = {
    measureFps,
    screenPosition(layerName, c, y = 0, x = 0) {
      const layer = layers.find((l) => l.name === layerName);
      const point = layer.place.position(c, y, x).project(camera);
      const box = renderer.domElement.getBoundingClientRect();
      return { x: box.left + ((point.x + 1) / 2) * box.width, y: box.top + ((1 - point.y) / 2) * box.height };
    },
  };

  // --- data ------------------------------------------------------------------------------------------------
  let answer = null;

  async function show() {
    if (!store.input) {
      message.info("No input yet: draw a digit on the home page, or take a random sample here.");
      return;
    }
    try {
      answer = await predict(store.input, { model: store.model, version: store.version ?? undefined });
      if (!alive) return;
      const [input, decoded] = await Promise.all([decodeTensor(answer.input), decodeLayers(answer.layers)]);
      const byName = new Map(decoded.map((l) => [l.name, l.tensor]));
      byName.set("input", input);
      for (const layer of layers) if (byName.has(layer.name)) paintLayer(layer, byName.get(layer.name));
      markWinner(answer.predicted);
      message.info(`${answer.model} v${answer.version} predicts ${answer.predicted_class} ` +
        `(${(answer.confidence * 100).toFixed(1)}%)`);
      stats.textContent = `${cells().toLocaleString()} cells in ${layers.length} instanced meshes`;
      window.__convscope.network3d.updates = (window.__convscope.network3d.updates || 0) + 1;
      surfaces();
    } catch (error) {
      if (alive) message.error(error.message);
    }
  }

  async function sample() {
    try {
      const found = await fetchSample(digitChoice);
      store.input = { kind: "sample", pixels: found.pixels, label: found.label };
      await show();
    } catch (error) {
      message.error(error.message);
    }
  }

  function channelList(text, count) {
    const picked = new Set();
    for (const part of text.split(",")) {
      const [a, b] = part.split("-").map((v) => Number.parseInt(v, 10));
      if (Number.isNaN(a)) continue;
      for (let c = a; c <= (Number.isNaN(b) ? a : b); c++) if (c >= 0 && c < count) picked.add(c);
    }
    return [...picked].slice(0, 16);
  }

  async function surfaces() {
    const layer = layers.find((l) => l.name === surfaceLayer.value);
    if (!layer?.tensor) return;
    const Plotly = await loadPlotly();
    const { channels, height, width } = layer.place;
    const picked = channelList(surfaceChannels.value, channels);
    const traces = picked.map((c, i) => {
      const rows = [];
      for (let y = 0; y < height; y++) rows.push(Array.from(layer.tensor.values.subarray(
        (c * height + y) * width, (c * height + y + 1) * width)));
      return { type: "surface", name: `channel ${c}`, x: [...Array(width).keys()], y: [...Array(height).keys()],
        z: rows.map((row) => row.map(() => i)), surfacecolor: rows, cmin: layer.tensor.min, cmax: layer.tensor.max,
        colorscale: "Viridis", showscale: i === 0, hovertemplate: `channel ${c}<br>x %{x}, y %{y}<br>` +
          "%{surfacecolor:.3f}<extra></extra>" };
    });
    if (!alive) return;
    Plotly.react(surfaceChart, traces, { height: 420, margin: { l: 0, r: 0, t: 10, b: 0 },
      scene: { xaxis: { title: { text: "width" } }, yaxis: { title: { text: "height" }, autorange: "reversed" },
        zaxis: { title: { text: "depth (channel)" } } } }, { displayModeBar: false, responsive: true });
  }

  async function load() {
    try {
      const architecture = await api(`/api/models/${store.model}/architecture${query({ version: store.version })}`);
      if (!alive) return;
      build(architecture);
      await show();
    } catch (error) {
      if (alive) message.error(error.message);
    }
  }

  resize();
  window.addEventListener("resize", resize);
  animate();
  const unsubscribe = store.onSelect(load);
  load();

  return {
    dispose() {
      alive = false;
      unsubscribe();
      cancelAnimationFrame(frame);
      if (hoverPending) cancelAnimationFrame(hoverPending);
      window.removeEventListener("resize", resize);
      controls.dispose();
      for (const layer of layers) layer.mesh.dispose();
      for (const sprite of labels) {
        sprite.material.map.dispose();
        sprite.material.dispose();
      }
      winnerMarker?.geometry.dispose();
      winnerMarker?.material.dispose();
      links.geometry.dispose();
      for (const disposable of [cellGeometry, cellMaterial, linkMaterial]) disposable.dispose();
      renderer.dispose();
      renderer.forceContextLoss();
      if (window.Plotly) window.Plotly.purge(surfaceChart);
      window.__convscope.network3d = { ...window.__convscope.network3d, disposed: true };
    },
  };
}
