// Getting a photo: the file picker, drag and drop, paste, the packaged sample photos (GET /api/photos) and the
// webcam where the browser allows it. Each gives `onPhoto({url, name})` with `url` a data URL the API accepts.

import { api } from "./api.js";
import { h, readAsDataUrl } from "./dom.js";

const ACCEPTED = ["image/png", "image/jpeg", "image/webp"];
const MAX_SIDE = 2048; // bigger photos are scaled down here: the models see 224-299 px, and uploads stay small
const MAX_DIRECT_BYTES = 3_000_000;

// A PNG, JPEG or WebP of reasonable size goes as it is (the server honours its EXIF orientation); anything else
// the browser can open (GIF, BMP, a huge photo) is redrawn upright, at most MAX_SIDE, as JPEG.
export async function photoFromFile(file) {
  if (ACCEPTED.includes(file.type) && file.size <= MAX_DIRECT_BYTES) return readAsDataUrl(file);
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    throw new Error(`${file.name || "the file"} is not an image this browser can open (use PNG, JPEG or WebP)`);
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = h("canvas", { width: Math.round(bitmap.width * scale), height: Math.round(bitmap.height * scale) });
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return canvas.toDataURL("image/jpeg", 0.92);
}

function camera(onPhoto, onError) {
  const video = h("video", { autoplay: true, playsinline: true, muted: true, class: "camera", hidden: true });
  const take = h("button", { type: "button", text: "Take the photo", hidden: true });
  let stream = null;
  let closed = false; // the view went away: a camera that opens late is stopped at once
  const stop = () => {
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    video.hidden = take.hidden = true;
  };
  const open = h("button", { type: "button", text: "Use the camera", onclick: async () => {
    stop(); // a second click: one camera at a time
    try {
      const opened = await navigator.mediaDevices.getUserMedia({ video: true });
      if (closed) {
        opened.getTracks().forEach((track) => track.stop());
        return;
      }
      stop();
      stream = opened;
      video.srcObject = stream;
      video.hidden = take.hidden = false;
    } catch (error) {
      onError(`The camera is not available (${error.message}).`);
    }
  } });
  take.addEventListener("click", () => {
    const canvas = h("canvas", { width: video.videoWidth, height: video.videoHeight });
    canvas.getContext("2d").drawImage(video, 0, 0);
    stop();
    onPhoto({ url: canvas.toDataURL("image/jpeg", 0.92), name: "camera" });
  });
  // getUserMedia exists only on secure pages (https or localhost)
  const available = Boolean(navigator.mediaDevices?.getUserMedia);
  return { element: available ? h("span", { class: "camera-controls" }, open, take, video) : null,
    close() { closed = true; stop(); } };
}

// -> {element, dispose()}
export function photoInput(onPhoto, onError) {
  const file = h("input", { type: "file", accept: "image/*", "aria-label": "Choose a photo" });
  const choose = async (blob) => {
    try {
      onPhoto({ url: await photoFromFile(blob), name: blob.name || "pasted image" });
    } catch (error) {
      onError(error.message);
    }
  };
  file.addEventListener("change", () => {
    if (file.files[0]) choose(file.files[0]);
    file.value = ""; // choosing the same file again is a new choice
  });
  const drop = h("div", { class: "drop-zone", tabindex: "0", text: "Drop a photo here, or paste one (Ctrl+V)" });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const dropped = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (dropped) choose(dropped);
    else onError("That was not an image file.");
  });
  const paste = (event) => {
    const item = [...(event.clipboardData?.items || [])].find((i) => i.type.startsWith("image/"));
    if (item) choose(item.getAsFile());
  };
  document.addEventListener("paste", paste);
  const samples = h("div", { class: "sample-photos", "aria-label": "Sample photos" });
  api("/api/photos").then((photos) => samples.replaceChildren(...photos.map((photo) =>
    h("button", { type: "button", class: "sample-photo", "data-photo": photo.name,
      title: `${photo.title ?? photo.name} (${photo.licence})`,
      onclick: async () => {
        const blob = await (await fetch(photo.url)).blob();
        onPhoto({ url: await readAsDataUrl(blob), name: photo.name });
      } },
    h("img", { src: photo.url, alt: photo.name, loading: "lazy" }), h("span", { text: photo.name })))))
    .catch((error) => onError(error.message));
  const cam = camera(onPhoto, onError);
  const element = h("div", { class: "photo-input" },
    h("div", { class: "toolbar" }, h("label", { class: "file-button" }, "Choose a photo… ", file), cam.element),
    drop, samples);
  return { element, dispose() { document.removeEventListener("paste", paste); cam.close(); } };
}
