// The lbam editor: open a photo, mark the hole (brush, eraser, rectangle, lasso, or select an object
// with a click or a box), inpaint through POST /api/v1/inpaint with progress and cancel, go back to
// any earlier result, compare, download. The photo and the mask live in full-resolution canvases;
// the visible canvas draws them through a view transform (zoom, pan). Mask pixels: white = hole.

const $ = (id) => document.getElementById(id);
const view = $("canvas");
const ctx = view.getContext("2d");
const SELECT_SIDE = 1024;  // select runs on a copy at most this long: it works at 512 px anyway

const state = {
  photo: null,          // full-resolution canvas of the current photo
  blob: null,           // the bytes the server gets for it: the opened file, then the server's PNGs
  before: null,         // the photo before the last inpaint (compare)
  mask: null,           // full-resolution canvas, white strokes on transparent
  name: "photo", type: "image/png",
  tool: "brush", size: 30,   // brush size in screen pixels
  zoom: 1, x: 0, y: 0,  // view transform: device pixel = image pixel * zoom + (x, y)
  undo: [], redo: [],   // snapshots {photo, blob, before, mask}
  results: [],          // this photo's history strip: {photo, blob}
  busy: false, comparing: false, split: null, job: null,
  pointers: new Map(), painting: false, panning: false, spaceDown: false, cursor: null,
  drag: null,           // rectangle, lasso or select drag in progress: {tool, start, points, erase}
  selection: null,      // an object selection in progress: {points, box, base}
};

// ---- status, model facts, the model list ----------------------------------------------------------

function status(text, kind = "") {
  $("status").textContent = text;
  $("status").className = kind;
}

async function showModel() {
  try {
    const facts = await (await fetch("/api/v1/model")).json();
    const params = (facts.parameters / 1e6).toFixed(1);
    const settings = facts.settings ?? {};
    $("model-facts").textContent = `${facts.name}: ${facts.architecture} ${settings.variant ?? ""}, width ${settings.width}, ` +
      `${params} M parameters, trained at ${facts.train_size} px, on ${facts.device} (${facts.backend ?? facts.precision})`;
  } catch (error) {
    $("model-facts").textContent = "model facts unavailable";
  }
}

async function loadModels() {
  const listing = await (await fetch("/api/v1/models")).json();
  $("model").replaceChildren(...listing.models.map((m) => {
    const label = m.kind === "classical" ? `${m.name} (classical)` : m.name;
    return new Option(label, m.name, m.default, m.default);
  }));
}

// ---- opening photos -------------------------------------------------------------------------------

function canvasOf(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

async function canvasFromBlob(blob) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  const canvas = canvasOf(bitmap.width, bitmap.height);
  canvas.getContext("2d").drawImage(bitmap, 0, 0);
  return canvas;
}

async function openFile(file) {
  if (!file || !file.type.startsWith("image/")) {
    status(`not an image: ${file ? file.name : "nothing"}`, "error");
    return;
  }
  try {
    const photo = await canvasFromBlob(file);
    Object.assign(state, { photo, blob: file, before: null, undo: [], redo: [], selection: null });
    state.mask = canvasOf(photo.width, photo.height);
    state.results = [{ photo, blob: file }];
    state.name = file.name.replace(/\.[^.]*$/, "") || "photo";
    state.type = file.type;  // the download's format is chosen when it is made (the format list may still be loading)
    $("hint").hidden = true;
    showHistory();
    fit();
    status(`opened ${file.name} (${photo.width}x${photo.height})`);
  } catch (error) {
    status(`cannot open ${file.name}: ${error.message}`, "error");
  }
}

// ---- undo, redo, the history strip ------------------------------------------------------------------

function copyCanvas(canvas) {
  if (!canvas) return null;
  const copy = canvasOf(canvas.width, canvas.height);
  copy.getContext("2d").drawImage(canvas, 0, 0);
  return copy;
}

const snapshot = () => ({ photo: state.photo, blob: state.blob, before: state.before, mask: copyCanvas(state.mask) });

function remember() {
  state.undo.push(snapshot());
  state.redo = [];
}

function restore(from, to, what) {
  const last = from.pop();
  if (!last || !state.photo) {
    status(`nothing to ${what}`);
    return;
  }
  to.push(snapshot());
  Object.assign(state, last, { selection: null });
  showHistory();
  draw();
  status(`${what} (${state.undo.length} step${state.undo.length === 1 ? "" : "s"} to undo, ${state.redo.length} to redo)`);
}

function showHistory() {
  const strip = $("history");
  strip.hidden = state.results.length < 2;
  strip.replaceChildren(...state.results.map((result, index) => {
    const thumb = canvasOf(Math.round(56 * result.photo.width / result.photo.height), 56);
    thumb.getContext("2d").drawImage(result.photo, 0, 0, thumb.width, thumb.height);
    const img = new Image();
    img.src = thumb.toDataURL("image/jpeg", 0.8);
    img.alt = index === 0 ? "the photo as opened" : `result ${index}`;
    img.title = img.alt;
    img.dataset.testid = `history-${index}`;
    img.className = result.photo === state.photo ? "current" : "";
    img.addEventListener("click", () => goTo(result, index));
    return img;
  }));
}

function goTo(result, index) {
  if (state.busy || result.photo === state.photo) return;
  remember();
  Object.assign(state, { before: state.photo, photo: result.photo, blob: result.blob, selection: null });
  state.mask = canvasOf(result.photo.width, result.photo.height);
  showHistory();
  draw();
  status(index === 0 ? "back to the photo as opened" : `back to result ${index}`);
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

const brushWidth = () => state.size * devicePixelRatio / state.zoom;  // screen pixels -> image pixels

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
  drawOverlay();
}

function drawOverlay() {  // the brush cursor, the shape being dragged, the selection's clicks
  ctx.lineWidth = 1.5 / state.zoom;
  if (state.drag) {
    ctx.strokeStyle = state.drag.erase ? "#3bb0ff" : "#ff3b3b";
    ctx.setLineDash([6 / state.zoom, 4 / state.zoom]);
    ctx.beginPath();
    if (state.drag.tool === "lasso") state.drag.points.forEach((p, i) => (i ? ctx.lineTo(p.x, p.y) : ctx.moveTo(p.x, p.y)));
    else {
      const [a, b] = [state.drag.start, state.drag.points.at(-1)];
      ctx.rect(a.x, a.y, b.x - a.x, b.y - a.y);
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }
  for (const [x, y, label] of state.selection?.points ?? []) {
    ctx.fillStyle = label ? "#2fd36b" : "#ff3b3b";
    ctx.beginPath();
    ctx.arc(x, y, 5 / state.zoom, 0, 2 * Math.PI);
    ctx.fill();
  }
  if (state.cursor && (state.tool === "brush" || state.tool === "eraser")) {
    ctx.strokeStyle = state.tool === "brush" ? "#ff3b3b" : "#3bb0ff";
    ctx.beginPath();
    ctx.arc(state.cursor.x, state.cursor.y, brushWidth() / 2, 0, 2 * Math.PI);
    ctx.stroke();
  } else if (state.cursor) {  // a cross for the shape and select tools
    const r = 8 / state.zoom;
    ctx.strokeStyle = "#ff3b3b";
    ctx.beginPath();
    ctx.moveTo(state.cursor.x - r, state.cursor.y);
    ctx.lineTo(state.cursor.x + r, state.cursor.y);
    ctx.moveTo(state.cursor.x, state.cursor.y - r);
    ctx.lineTo(state.cursor.x, state.cursor.y + r);
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

// ---- brush, eraser, rectangle, lasso ----------------------------------------------------------------

function maskContext(erase) {
  const m = state.mask.getContext("2d");
  m.globalCompositeOperation = erase ? "destination-out" : "source-over";
  m.strokeStyle = "#fff";
  m.fillStyle = "#fff";
  return m;
}

function stroke(from, to) {
  const m = maskContext(state.tool === "eraser");
  m.lineCap = "round";
  m.lineWidth = brushWidth();
  m.beginPath();
  m.moveTo(from.x, from.y);
  m.lineTo(to.x, to.y);
  m.stroke();
  m.beginPath();
  m.arc(to.x, to.y, brushWidth() / 2, 0, 2 * Math.PI);
  m.fill();
}

function fillShape(drag) {
  const m = maskContext(drag.erase);
  m.beginPath();
  if (drag.tool === "lasso") drag.points.forEach((p, i) => (i ? m.lineTo(p.x, p.y) : m.moveTo(p.x, p.y)));
  else {
    const end = drag.points.at(-1);
    m.rect(drag.start.x, drag.start.y, end.x - drag.start.x, end.y - drag.start.y);
  }
  m.closePath();
  m.fill();
}

// Grow or shrink the mask by ``pixels``: the union (grow) or intersection (shrink) of copies of it
// moved around a circle, a disc-shaped dilation or erosion done by the canvas itself.
function morph(grow) {
  if (!state.photo) return;
  remember();
  const pixels = Math.max(2, Math.round(0.004 * Math.max(state.mask.width, state.mask.height)));
  const source = copyCanvas(state.mask);
  const m = state.mask.getContext("2d");
  m.globalCompositeOperation = grow ? "source-over" : "destination-in";
  for (let k = 0; k < 16; k++) {
    const angle = (k / 16) * 2 * Math.PI;
    m.drawImage(source, Math.round(pixels * Math.cos(angle)), Math.round(pixels * Math.sin(angle)));
  }
  m.globalCompositeOperation = "source-over";
  draw();
  status(`mask ${grow ? "grown" : "shrunk"} by ${pixels} px`);
}

// ---- select an object ---------------------------------------------------------------------------------

function startSelection() {
  if (!state.selection) {
    remember();
    state.selection = { points: [], box: null, base: copyCanvas(state.mask) };
  }
  return state.selection;
}

async function runSelection() {
  const selection = state.selection;
  if (!selection || state.busy) return;
  const scale = Math.min(1, SELECT_SIDE / Math.max(state.photo.width, state.photo.height));
  const small = canvasOf(Math.round(state.photo.width * scale), Math.round(state.photo.height * scale));
  small.getContext("2d").drawImage(state.photo, 0, 0, small.width, small.height);
  const form = new FormData();
  form.append("image", await blobOf(small), "photo.png");
  const clamp = (v, size) => Math.min(Math.max(v * scale, 0), size - 1);
  const points = selection.points.map(([x, y, l]) => [clamp(x, small.width), clamp(y, small.height), l]);
  if (points.length) form.append("points", JSON.stringify(points));
  if (selection.box) form.append("box", JSON.stringify(selection.box.map((v, i) => Math.min(Math.max(v * scale, 0), i % 2 ? small.height : small.width))));
  const started = performance.now();
  status("selecting…", "busy");
  try {
    const answer = await send("/api/v1/select", form);
    const selected = await canvasFromBlob(await answer.blob());
    applySelection(selection, selected);
    const share = (100 * coverage(selected)).toFixed(1);
    status(`selected ${share} % of the photo in ${((performance.now() - started) / 1000).toFixed(2)} s: click to add (Alt-click to remove), or paint`);
  } catch (error) {
    status(`select failed: ${error.message}`, "error");
  }
}

function applySelection(selection, selected) {  // mask = what was there before + the selected object
  const pixels = selected.getContext("2d").getImageData(0, 0, selected.width, selected.height);
  for (let i = 0; i < pixels.data.length; i += 4) {
    pixels.data[i + 3] = pixels.data[i];
    pixels.data[i] = pixels.data[i + 1] = pixels.data[i + 2] = 255;
  }
  selected.getContext("2d").putImageData(pixels, 0, 0);
  state.mask = copyCanvas(selection.base);
  state.mask.getContext("2d").drawImage(selected, 0, 0, state.mask.width, state.mask.height);
  draw();
}

function coverage(canvas) {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let on = 0;
  for (let i = 3; i < data.length; i += 4) if (data[i] >= 128) on++;
  return on / (canvas.width * canvas.height);
}

// ---- pointer events -------------------------------------------------------------------------------------

view.addEventListener("pointerdown", (event) => {
  if (!state.photo) return;
  view.setPointerCapture(event.pointerId);
  state.pointers.set(event.pointerId, toImage(event));
  if (state.pointers.size === 2) {  // a pinch: stop drawing, zoom and pan with two fingers
    state.painting = false;
    state.drag = null;
    return;
  }
  if (state.spaceDown || event.button === 1) {
    state.panning = true;
    return;
  }
  const at = toImage(event);
  if (state.tool === "brush" || state.tool === "eraser") {
    state.selection = null;
    remember();
    state.painting = true;
    stroke(at, at);
  } else {
    state.drag = { tool: state.tool, start: at, points: [at], erase: event.altKey || event.button === 2 };
  }
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
    state.pointers.set(event.pointerId, at);
  } else if (state.panning && last) {
    state.x += at.sx - last.sx;
    state.y += at.sy - last.sy;
    state.pointers.set(event.pointerId, at);
  } else if (state.painting && last) {
    stroke(last, at);
    state.pointers.set(event.pointerId, at);
  } else if (state.drag) {
    state.drag.points.push(at);
  }
  draw();
});

function endPointer(event) {
  state.pointers.delete(event.pointerId);
  if (state.pointers.size > 0) return;
  state.painting = false;
  state.panning = false;
  const drag = state.drag;
  state.drag = null;
  if (drag) finishDrag(drag);
  draw();
}

function finishDrag(drag) {
  const end = drag.points.at(-1);
  const moved = drag.points.some((p) => Math.hypot(p.sx - drag.start.sx, p.sy - drag.start.sy) > 6);
  if (drag.tool === "select") {
    const selection = startSelection();
    if (moved) selection.box = [Math.min(drag.start.x, end.x), Math.min(drag.start.y, end.y), Math.max(drag.start.x, end.x), Math.max(drag.start.y, end.y)];
    else selection.points.push([end.x, end.y, drag.erase ? 0 : 1]);
    runSelection();
  } else if (moved) {
    state.selection = null;
    remember();
    fillShape(drag);
  }
}

view.addEventListener("pointerup", endPointer);
view.addEventListener("pointercancel", endPointer);
view.addEventListener("pointerleave", () => { state.cursor = null; draw(); });
view.addEventListener("contextmenu", (event) => event.preventDefault());  // right click = "not this"
view.addEventListener("wheel", (event) => {
  event.preventDefault();
  const at = toImage(event);
  zoomAt(at.sx, at.sy, Math.exp(-event.deltaY * 0.0015));
}, { passive: false });

// ---- requests, progress, cancel ---------------------------------------------------------------------

const blobOf = (canvas, type = "image/png", quality) => new Promise((resolve) => canvas.toBlob(resolve, type, quality));
const jobId = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`);

async function send(url, form, job = null) {
  const headers = job ? { "X-Lbam-Job": job.id } : {};
  const response = await fetch(url, { method: "POST", body: form, headers, signal: job?.controller.signal });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (error) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function watch(job) {  // poll the job's stage until it ends; show a progress bar and the time
  const started = performance.now();
  $("progress").hidden = $("cancel").hidden = false;
  $("progress").removeAttribute("value");
  job.timer = setInterval(async () => {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    try {
      const answer = await fetch(`/api/v1/jobs/${job.id}`);
      if (!answer.ok || state.job !== job) return;
      const info = await answer.json();
      if (info.total) $("progress").value = info.done / info.total;
      const where = info.total ? ` ${info.done}/${info.total} windows` : "";
      status(`inpainting: ${info.stage}${where}, ${seconds} s`, "busy");
    } catch (error) { /* the next poll tries again */ }
  }, 250);
}

function endJob(job) {
  clearInterval(job.timer);
  if (state.job === job) state.job = null;
  $("progress").hidden = $("cancel").hidden = true;
}

async function cancel() {
  const job = state.job;
  if (!job) return;
  status("cancelling…", "busy");
  try { await fetch(`/api/v1/jobs/${job.id}`, { method: "DELETE" }); } catch (error) { /* aborted below */ }
  job.controller.abort();
}

function maskIsEmpty() {
  const pixels = state.mask.getContext("2d").getImageData(0, 0, state.mask.width, state.mask.height).data;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] >= 128) return false;
  return true;
}

function inpaintForm(mask, fields) {
  const form = new FormData();
  form.append("image", state.blob, state.blob.name || "photo.png");  // the original's own bytes first
  form.append("mask", mask, "mask.png");
  for (const [key, value] of Object.entries(fields)) form.append(key, value);
  return form;
}

async function inpaint() {
  if (!state.photo || state.busy) return;
  if (maskIsEmpty()) {
    status("paint over what should go first", "error");
    return;
  }
  state.busy = true;
  state.selection = null;
  $("inpaint").disabled = true;
  const job = { id: jobId(), controller: new AbortController() };
  state.job = job;
  watch(job);
  const started = performance.now();
  try {
    const fields = { dilate: $("dilate").value || "0", strategy: $("strategy").value, blend: $("blend").value,
                     refine: $("refine").value, model: $("model").value, format: "png" };
    const response = await send("/api/v1/inpaint", inpaintForm(await blobOf(state.mask), fields), job);
    const blob = await response.blob();
    const result = await canvasFromBlob(blob);
    remember();
    Object.assign(state, { before: state.photo, photo: result, blob });
    state.mask = canvasOf(result.width, result.height);  // the hole is filled: start a new mask
    state.results.push({ photo: result, blob });
    showHistory();
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const headers = response.headers;
    status(`done in ${seconds} s (${headers.get("X-Lbam-Model")}, server ${headers.get("X-Lbam-Seconds")} s, ` +
           `strategy ${headers.get("X-Lbam-Strategy")})`);
  } catch (error) {
    status(error.name === "AbortError" || /cancel/.test(error.message) ? "cancelled" : `inpainting failed: ${error.message}`,
           error.name === "AbortError" ? "" : "error");
  } finally {
    endJob(job);
    state.busy = false;
    $("inpaint").disabled = false;
    draw();
  }
}

// ---- downloads ----------------------------------------------------------------------------------------------

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// The result in the photo's own format, encoded by the server from its lossless PNG (an empty mask:
// nothing is filled), so the colour profile and EXIF of the original are kept.
async function download() {
  if (!state.photo) return;
  await optionsLoaded;
  const format = state.formats?.[state.type] ?? { name: "png", suffix: ".png", media_type: "image/png" };
  const name = `${state.name}_inpainted${format.suffix}`;
  if (state.blob.type === format.media_type && state.results[0].blob === state.blob) {
    save(state.blob, name);  // nothing was changed: the original's bytes
    return;
  }
  try {
    const empty = await blobOf(canvasOf(state.photo.width, state.photo.height));
    save(await (await send("/api/v1/inpaint", inpaintForm(empty, { format: format.name, quality: "95" }))).blob(), name);
  } catch (error) {
    status(`download failed: ${error.message}`, "error");
  }
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

const TOOLS = ["brush", "eraser", "select", "rect", "lasso"];

function setTool(tool) {
  if (tool !== "select") state.selection = null;
  state.tool = tool;
  for (const name of TOOLS) $(`tool-${name}`).classList.toggle("active", tool === name);
  draw();
}

function setSize(size) {
  state.size = Math.max(2, Math.min(200, size));
  $("brush-size").value = state.size;
  draw();
}

$("file-input").addEventListener("change", (event) => openFile(event.target.files[0]));
for (const name of TOOLS) $(`tool-${name}`).addEventListener("click", () => setTool(name));
$("brush-size").addEventListener("input", (event) => setSize(Number(event.target.value)));
$("grow").addEventListener("click", () => morph(true));
$("shrink").addEventListener("click", () => morph(false));
$("clear").addEventListener("click", () => {
  if (!state.photo) return;
  remember();
  state.selection = null;
  state.mask = canvasOf(state.photo.width, state.photo.height);
  draw();
});
$("undo").addEventListener("click", () => restore(state.undo, state.redo, "undo"));
$("redo").addEventListener("click", () => restore(state.redo, state.undo, "redo"));
$("fit").addEventListener("click", fit);
$("inpaint").addEventListener("click", inpaint);
$("cancel").addEventListener("click", cancel);
$("help-button").addEventListener("click", () => $("help").showModal());
$("compare").addEventListener("click", () => {
  state.split = state.split === null ? 0.5 : null;
  $("split").hidden = state.split === null;
  $("split").value = 50;
  draw();
});
$("split").addEventListener("input", (event) => { state.split = Number(event.target.value) / 100; draw(); });
$("download").addEventListener("click", download);
$("download-mask").addEventListener("click", async () => state.photo && save(await blobOf(maskForDownload()), `${state.name}_mask.png`));

const KEYS = { b: "brush", e: "eraser", s: "select", r: "rect", l: "lasso" };
window.addEventListener("keydown", (event) => {
  if (["INPUT", "SELECT"].includes(event.target.tagName) || $("help").open) return;
  const mod = event.ctrlKey || event.metaKey;
  const key = event.key.toLowerCase();
  if (mod && key === "z") {
    event.preventDefault();
    if (event.shiftKey) restore(state.redo, state.undo, "redo"); else restore(state.undo, state.redo, "undo");
  } else if (mod) return;
  else if (key === "[") setSize(state.size - 4);
  else if (key === "]") setSize(state.size + 4);
  else if (key === "+" || key === "=") morph(true);
  else if (key === "-") morph(false);
  else if (key === "enter") inpaint();
  else if (key === "escape") cancel();
  else if (key === "?") $("help").showModal();
  else if (key === " ") { state.spaceDown = true; event.preventDefault(); }
  else if (KEYS[key]) setTool(KEYS[key]);
  else if (key === "f") fit();
  else if (key === "c" && !state.comparing) { state.comparing = true; draw(); }
});
window.addEventListener("keyup", (event) => {
  if (event.key === " ") state.spaceDown = false;
  if (event.key.toLowerCase() === "c") { state.comparing = false; draw(); }
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
const optionsLoaded = loadOptions().catch(() => status("could not load the options from the server", "error"));
loadModels().catch(() => status("could not load the model list from the server", "error"));
