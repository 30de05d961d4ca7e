// A Three.js stage for the 3D views: renderer, camera with orbit controls, a render loop that draws only when
// something changed, a camera that frames the whole scene, picking under the pointer, HTML labels pinned to 3D
// points (crisp text at no draw call), a frame-rate probe, and disposal of everything it made.

import * as THREE from "/vendor/three/three.module.js";
import { OrbitControls } from "/vendor/three/OrbitControls.js";

export { THREE };

const VIEW_DIRECTION = new THREE.Vector3(0.55, 0.38, 0.74).normalize(); // front-right-above: the input is nearest

export function createStage(container) {
  // No MSAA, pixel ratio <= 2: the cells are axis-aligned squares, and software renderers pay dearly for both.
  const renderer = new THREE.WebGLRenderer({ antialias: false });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
  renderer.setClearColor(0xf4f5f7);
  renderer.domElement.setAttribute("aria-label", "3D view of the network's activations");
  const overlay = document.createElement("div");
  overlay.className = "stage-labels";
  container.append(renderer.domElement, overlay);
  const scene = new THREE.Scene();
  const camera = new THREE.PerspectiveCamera(45, 1, 1, 5000);
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.enableDamping = true;
  const raycaster = new THREE.Raycaster();
  const pointer = new THREE.Vector2();
  const labels = []; // {element, at: Vector3}
  let dirty = true; // render only when something changed: the scene is still most of the time
  let frame = 0;

  function size() {
    const width = container.clientWidth || 800;
    const height = Math.max(320, Math.min(620, window.innerHeight - 260));
    return { width, height };
  }

  function resize() {
    const { width, height } = size();
    renderer.setSize(width, height);
    camera.aspect = width / height;
    camera.updateProjectionMatrix();
    dirty = true;
  }

  // Screen position (CSS pixels, relative to the canvas) of a point in the scene; null when behind the camera.
  function toScreen(point) {
    const projected = point.clone().project(camera);
    if (projected.z > 1) return null;
    const box = renderer.domElement;
    return { x: ((projected.x + 1) / 2) * box.clientWidth, y: ((1 - projected.y) / 2) * box.clientHeight };
  }

  function placeLabels() {
    for (const label of labels) {
      const at = toScreen(label.at);
      label.element.hidden = at === null;
      if (at) label.element.style.transform = `translate(${at.x}px, ${at.y}px) translate(-50%, -100%)`;
    }
  }

  function render() {
    renderer.render(scene, camera);
    placeLabels();
  }

  function animate() {
    frame = requestAnimationFrame(animate);
    if (controls.update() || dirty) {
      render();
      dirty = false;
    }
  }

  return {
    scene,
    camera,
    renderer,
    invalidate() { dirty = true; },

    // Aim the camera so that `box` (a THREE.Box3) fills the view.
    frame(box) {
      const center = box.getCenter(new THREE.Vector3());
      const radius = Math.max(1, box.getSize(new THREE.Vector3()).length() / 2);
      const distance = (radius / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2))) * 0.75;
      camera.position.copy(center).addScaledVector(VIEW_DIRECTION, distance);
      camera.near = distance / 100;
      camera.far = distance * 10;
      camera.updateProjectionMatrix();
      controls.target.copy(center);
      controls.update();
      dirty = true;
    },

    // The nearest intersection of the pointer's ray with `objects`, or undefined.
    pick(event, objects) {
      const box = renderer.domElement.getBoundingClientRect();
      pointer.set(((event.clientX - box.left) / box.width) * 2 - 1, -((event.clientY - box.top) / box.height) * 2 + 1);
      raycaster.setFromCamera(pointer, camera);
      return raycaster.intersectObjects(objects, false)[0];
    },

    // Page coordinates of a scene point (to point the mouse at it in tests).
    pagePosition(point) {
      const at = toScreen(point);
      const box = renderer.domElement.getBoundingClientRect();
      return { x: box.left + at.x, y: box.top + at.y };
    },

    // An HTML label pinned above a point of the scene; removed by clearLabels().
    label(text, at, className = "") {
      const element = document.createElement("span");
      element.className = `stage-label ${className}`;
      element.textContent = text;
      overlay.append(element);
      labels.push({ element, at });
      dirty = true;
      return element;
    },

    clearLabels() {
      for (const label of labels) label.element.remove();
      labels.length = 0;
    },

    // Frames per second when every frame is drawn (the camera orbiting), measured over `count` frames.
    measureFps(count = 20) {
      return new Promise((resolve) => {
        let left = count;
        const started = performance.now();
        const step = () => {
          controls.rotateLeft?.(0.01);
          render();
          if (--left > 0) {
            requestAnimationFrame(step);
          } else {
            resolve({ fps: (count * 1000) / (performance.now() - started), drawCalls: renderer.info.render.calls });
          }
        };
        requestAnimationFrame(step);
      });
    },

    start() {
      resize();
      window.addEventListener("resize", resize);
      animate();
    },

    dispose() {
      cancelAnimationFrame(frame);
      window.removeEventListener("resize", resize);
      controls.dispose();
      this.clearLabels();
      renderer.dispose();
      renderer.forceContextLoss();
    },
  };
}
