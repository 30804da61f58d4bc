// The lbam editor: open a photo, paint the hole, inpaint through POST /api/v1/inpaint, chain fixes,
// compare, download. The photo and the mask live in full-resolution canvases; the visible canvas
// draws them through a view transform (zoom, pan). Mask pixels: opaque white = hole.

const $ = (id) => document.getElementById(id);
const view = $("canvas");
const ctx = view.getContext("2d");

const state = {
  photo: null,          // full-resolution canvas of the current photo
  before: null,         // the photo before the last inpaint (compare)
  mask: null,           // full-resolution canvas, white strokes on transparent
  name: "photo", type: "image/png",
  tool: "brush", size: 40,
  zoom: 1, x: 0, y: 0,  // view transform: screen = image * zoom + (x, y)
  undo: [], redo: [],   // snapshots {photo, before, mask}
  busy: false, comparing: false, split: null,
  pointers: new Map(), painting: false, panning: false, spaceDown: false, cursor: null,
};

// ---- status and model facts -----------------------------------------------------------------------

function status(text, kind = "") {
  $("status").textContent = text;
  $("status").className = kind;
}

async function showModel() {
  try {
    const facts = await (await fetch("/api/v1/model")).json();
    const params = (facts.parameters / 1e6).toFixed(1);
    const settings = facts.settings ?? {};
    $("model").textContent = `${facts.name}: ${facts.architecture} ${settings.variant ?? ""}, width ${settings.width}, ` +
      `${params} M parameters, trained at ${facts.train_size} px, on ${facts.device} (${facts.precision})`;
  } catch (error) {
    $("model").textContent = "model facts unavailable";
  }
}

// ---- opening photos -------------------------------------------------------------------------------

function canvasOf(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

async function openFile(file) {
  if (!file || !file.type.startsWith("image/")) {
    status(`not an image: ${file ? file.name : "nothing"}`, "error");
    return;
  }
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const photo = canvasOf(bitmap.width, bitmap.height);
    photo.getContext("2d").drawImage(bitmap, 0, 0);
    Object.assign(state, { photo, before: null, mask: canvasOf(bitmap.width, bitmap.height), undo: [], redo: [] });
    state.name = file.name.replace(/\.[^.]*$/, "") || "photo";
    state.type = state.formats?.[file.type] ? file.type : "image/png";
    $("hint").hidden = true;
    fit();
    status(`opened ${file.name} (${bitmap.width}x${bitmap.height})`);
  } catch (error) {
    status(`cannot open ${file.name}: ${error.message}`, "error");
  }
}

// ---- history ----------------------------------------------------------------------------------------

function copyCanvas(canvas) {
  if (!canvas) return null;
  const copy = canvasOf(canvas.width, canvas.height);
  copy.getContext("2d").drawImage(canvas, 0, 0);
  return copy;
}

function remember() {
  state.undo.push({ photo: state.photo, before: state.before, mask: copyCanvas(state.mask) });
  state.redo = [];
}

function restore(from, to) {
  const snapshot = from.pop();
  if (!snapshot || !state.photo) return;
  to.push({ photo: state.photo, before: state.before, mask: copyCanvas(state.mask) });
  Object.assign(state, snapshot);
  draw();
}

// ---- view ---------------------------------------------------------------------------------------------

function fit() {
  if (!state.photo) return;
  const rect = view.getBoundingClientRect();
  view.width = rect.width * devicePixelRatio;
  view.height = rect.height * devicePixelRatio;
  state.zoom = Math.min(view.width / state.photo.width, view.height / state.photo.height) * 0.95;
  state.x = (view.width - state.photo.width * state.zoom) / 2;
  state.y = (view.height - state.photo.height * state.zoom) / 2;
  draw();
}

function toImage(event) {
  const rect = view.getBoundingClientRect();
  const sx = (event.clientX - rect.left) * devicePixelRatio;
  const sy = (event.clientY - rect.top) * devicePixelRatio;
  return { x: (sx - state.x) / state.zoom, y: (sy - state.y) / state.zoom, sx, sy };
}

function zoomAt(sx, sy, factor) {
  const zoom = Math.min(40, Math.max(0.02, state.zoom * factor));
  state.x = sx - (sx - state.x) * (zoom / state.zoom);
  state.y = sy - (sy - state.y) * (zoom / state.zoom);
  state.zoom = zoom;
  draw();
}

function draw() {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, view.width, view.height);
  if (!state.photo) return;
  ctx.setTransform(state.zoom, 0, 0, state.zoom, state.x, state.y);
  ctx.imageSmoothingEnabled = state.zoom < 1;
  const showBefore = state.comparing && state.before;
  ctx.drawImage(showBefore ? state.before : state.photo, 0, 0);
  if (state.split !== null && state.before) {  // before on the left of the split, after on the right
    const cut = state.photo.width * state.split;
    ctx.drawImage(state.before, 0, 0, cut, state.photo.height, 0, 0, cut, state.photo.height);
    ctx.fillStyle = "#ff0";
    ctx.fillRect(cut - 1 / state.zoom, 0, 2 / state.zoom, state.photo.height);
  }
  if (!showBefore) {
    ctx.globalAlpha = 0.45;
    ctx.drawImage(tinted(), 0, 0);
    ctx.globalAlpha = 1;
  }
  if (state.cursor) {
    ctx.strokeStyle = state.tool === "brush" ? "#ff3b3b" : "#3bb0ff";
    ctx.lineWidth = 1.5 / state.zoom;
    ctx.beginPath();
    ctx.arc(state.cursor.x, state.cursor.y, state.size / 2, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

let tintCanvas = null;
function tinted() {  // the mask shown in red
  if (!tintCanvas || tintCanvas.width !== state.mask.width || tintCanvas.height !== state.mask.height) {
    tintCanvas = canvasOf(state.mask.width, state.mask.height);
  }
  const t = tintCanvas.getContext("2d");
  t.globalCompositeOperation = "copy";
  t.drawImage(state.mask, 0, 0);
  t.globalCompositeOperation = "source-in";
  t.fillStyle = "#ff2020";
  t.fillRect(0, 0, tintCanvas.width, tintCanvas.height);
  return tintCanvas;
}

// ---- painting -----------------------------------------------------------------------------------------

function stroke(from, to) {
  const m = state.mask.getContext("2d");
  m.globalCompositeOperation = state.tool === "brush" ? "source-over" : "destination-out";
  m.strokeStyle = "#fff";
  m.fillStyle = "#fff";
  m.lineCap = "round";
  m.lineWidth = state.size;
  m.beginPath();
  m.moveTo(from.x, from.y);
  m.lineTo(to.x, to.y);
  m.stroke();
  m.beginPath();
  m.arc(to.x, to.y, state.size / 2, 0, 2 * Math.PI);
  m.fill();
}

view.addEventListener("pointerdown", (event) => {
  if (!state.photo) return;
  view.setPointerCapture(event.pointerId);
  state.pointers.set(event.pointerId, toImage(event));
  if (state.pointers.size === 2) {  // a pinch: stop painting, zoom and pan with two fingers
    state.painting = false;
    return;
  }
  if (state.spaceDown || event.button === 1) {
    state.panning = true;
    return;
  }
  remember();
  state.painting = true;
  const at = toImage(event);
  stroke(at, at);
  draw();
});

view.addEventListener("pointermove", (event) => {
  const at = toImage(event);
  state.cursor = at;
  const last = state.pointers.get(event.pointerId);
  if (state.pointers.size === 2 && last) {
    const [other] = [...state.pointers.entries()].filter(([id]) => id !== event.pointerId).map(([, p]) => p);
    const before = Math.hypot(last.sx - other.sx, last.sy - other.sy);
    const after = Math.hypot(at.sx - other.sx, at.sy - other.sy);
    if (before > 0) zoomAt((at.sx + other.sx) / 2, (at.sy + other.sy) / 2, after / before);
    state.pointers.set(event.pointerId, toImage(event));
  } else if (state.panning && last) {
    state.x += at.sx - last.sx;
    state.y += at.sy - last.sy;
    state.pointers.set(event.pointerId, toImage(event));
  } else if (state.painting && last) {
    stroke(last, at);
    state.pointers.set(event.pointerId, at);
  }
  draw();
});

function endPointer(event) {
  state.pointers.delete(event.pointerId);
  if (state.pointers.size === 0) {
    state.painting = false;
    state.panning = false;
  }
}
view.addEventListener("pointerup", endPointer);
view.addEventListener("pointercancel", endPointer);
view.addEventListener("pointerleave", () => { state.cursor = null; draw(); });
view.addEventListener("wheel", (event) => {
  event.preventDefault();
  const at = toImage(event);
  zoomAt(at.sx, at.sy, Math.exp(-event.deltaY * 0.0015));
}, { passive: false });

// ---- inpainting -----------------------------------------------------------------------------------------

const blobOf = (canvas, type = "image/png", quality) => new Promise((resolve) => canvas.toBlob(resolve, type, quality));

function maskIsEmpty() {
  const pixels = state.mask.getContext("2d").getImageData(0, 0, state.mask.width, state.mask.height).data;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] >= 128) return false;
  return true;
}

async function inpaint() {
  if (!state.photo || state.busy) return;
  if (maskIsEmpty()) {
    status("paint over what should go first", "error");
    return;
  }
  state.busy = true;
  $("inpaint").disabled = true;
  status("inpainting…", "busy");
  const started = performance.now();
  try {
    const form = new FormData();
    form.append("image", await blobOf(state.photo), "photo.png");  // lossless: the chain loses nothing
    form.append("mask", await blobOf(state.mask), "mask.png");
    form.append("dilate", $("dilate").value || "0");
    form.append("strategy", $("strategy").value);
    form.append("blend", $("blend").value);
    form.append("refine", $("refine").value);
    form.append("format", "png");
    const response = await fetch("/api/v1/inpaint", { method: "POST", body: form });
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try { message = (await response.json()).error || message; } catch (error) { /* not JSON */ }
      throw new Error(message);
    }
    const bitmap = await createImageBitmap(await response.blob());
    const result = canvasOf(bitmap.width, bitmap.height);
    result.getContext("2d").drawImage(bitmap, 0, 0);
    remember();
    state.before = state.photo;
    state.photo = result;
    state.mask = canvasOf(result.width, result.height);  // the hole is filled: start a new mask
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const server = response.headers.get("X-Lbam-Seconds");
    status(`done in ${seconds} s (model ${server} s, strategy ${response.headers.get("X-Lbam-Strategy")})`);
  } catch (error) {
    status(`inpainting failed: ${error.message}`, "error");
  } finally {
    state.busy = false;
    $("inpaint").disabled = false;
    draw();
  }
}

// ---- downloads --------------------------------------------------------------------------------------------

async function download(canvas, name, type, quality) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await blobOf(canvas, type, quality));
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function maskForDownload() {  // white = hole on black, the convention of every lbam command
  const out = canvasOf(state.mask.width, state.mask.height);
  const o = out.getContext("2d");
  o.fillStyle = "#000";
  o.fillRect(0, 0, out.width, out.height);
  o.drawImage(state.mask, 0, 0);
  return out;
}

// ---- controls -----------------------------------------------------------------------------------------------

function setTool(tool) {
  state.tool = tool;
  $("tool-brush").classList.toggle("active", tool === "brush");
  $("tool-eraser").classList.toggle("active", tool === "eraser");
}

function setSize(size) {
  state.size = Math.max(2, Math.min(300, size));
  $("brush-size").value = state.size;
  draw();
}

$("file-input").addEventListener("change", (event) => openFile(event.target.files[0]));
$("tool-brush").addEventListener("click", () => setTool("brush"));
$("tool-eraser").addEventListener("click", () => setTool("eraser"));
$("brush-size").addEventListener("input", (event) => setSize(Number(event.target.value)));
$("clear").addEventListener("click", () => {
  if (!state.photo) return;
  remember();
  state.mask = canvasOf(state.photo.width, state.photo.height);
  draw();
});
$("undo").addEventListener("click", () => restore(state.undo, state.redo));
$("redo").addEventListener("click", () => restore(state.redo, state.undo));
$("fit").addEventListener("click", fit);
$("inpaint").addEventListener("click", inpaint);
$("compare").addEventListener("click", () => {
  state.split = state.split === null ? 0.5 : null;
  $("split").hidden = state.split === null;
  $("split").value = 50;
  draw();
});
$("split").addEventListener("input", (event) => { state.split = Number(event.target.value) / 100; draw(); });
$("download").addEventListener("click", () => {
  if (!state.photo) return;
  const ext = (state.formats?.[state.type]?.suffix ?? ".png").slice(1);
  download(state.photo, `${state.name}_inpainted.${ext}`, state.type, 0.95);
});
$("download-mask").addEventListener("click", () => state.photo && download(maskForDownload(), `${state.name}_mask.png`));

window.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
  const mod = event.ctrlKey || event.metaKey;
  if (mod && event.key.toLowerCase() === "z") {
    event.preventDefault();
    if (event.shiftKey) restore(state.redo, state.undo); else restore(state.undo, state.redo);
  } else if (event.key === "[") setSize(state.size - 5);
  else if (event.key === "]") setSize(state.size + 5);
  else if (event.key === "Enter") inpaint();
  else if (event.key === " ") { state.spaceDown = true; event.preventDefault(); }
  else if (event.key === "b") setTool("brush");
  else if (event.key === "e") setTool("eraser");
  else if (event.key === "f") fit();
  else if (event.key === "c" && !state.comparing) { state.comparing = true; draw(); }
});
window.addEventListener("keyup", (event) => {
  if (event.key === " ") state.spaceDown = false;
  if (event.key === "c") { state.comparing = false; draw(); }
});
window.addEventListener("resize", fit);
window.addEventListener("paste", (event) => {
  const item = [...event.clipboardData.items].find((i) => i.type.startsWith("image/"));
  if (item) openFile(item.getAsFile());
});
$("stage").addEventListener("dragover", (event) => event.preventDefault());
$("stage").addEventListener("drop", (event) => {
  event.preventDefault();
  openFile(event.dataTransfer.files[0]);
});

// The choice lists and limits come from the server (GET /api/v1/options): the same schema as the
// command line and the Python API, never a copy of it here.
async function loadOptions() {
  const listing = await (await fetch("/api/v1/options")).json();
  for (const option of listing.options) {
    const element = $(option.name);
    if (!element) continue;
    element.title = option.help;
    if (element.tagName === "SELECT") {
      element.replaceChildren(...option.choices.map((choice) => new Option(choice, choice)));
      element.value = option.default;
    } else if (element.type === "number") {
      if (option.minimum !== null) element.min = option.minimum;
      if (option.maximum !== null) element.max = option.maximum;
      element.value = option.default;
    }
  }
  state.formats = Object.fromEntries(listing.formats.map((f) => [f.media_type, f]));
}

showModel();
loadOptions().catch(() => status("could not load the options from the server", "error"));
