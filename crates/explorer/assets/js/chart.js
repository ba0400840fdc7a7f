// A small time-series chart on <canvas>: area line, grid, axis labels, hover read-out.
// Colors come from CSS custom properties, so it follows the light/dark theme.

const GAP_MS = 60000; // samples further apart than this are not joined by a line

function css(el, name, fallback) {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

/** A "nice" upper bound for the y axis: 1, 2, 2.5 or 5 times a power of ten. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function timeLabel(ms) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
}

/**
 * Draws `points` ([{x: time ms, y: number}]) into `canvas`. `opts.format(y)` formats axis
 * values, `opts.describe(point)` the hover read-out. Records the point count in
 * `canvas.dataset.points`.
 */
export function drawSeries(canvas, points, opts = {}) {
  canvas.dataset.points = String(points.length);
  canvas._chart = { points, opts };
  paint(canvas);
  if (!canvas._chartBound) {
    canvas._chartBound = true;
    canvas.addEventListener("pointermove", (e) => {
      const r = canvas.getBoundingClientRect();
      canvas._hover = e.clientX - r.left;
      paint(canvas);
    });
    canvas.addEventListener("pointerleave", () => {
      canvas._hover = null;
      paint(canvas);
    });
    if ("ResizeObserver" in window) new ResizeObserver(() => paint(canvas)).observe(canvas);
  }
}

function paint(canvas) {
  const state = canvas._chart;
  if (!state) return;
  const { points, opts } = state;
  const fmt = opts.format || String;
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const hgt = canvas.clientHeight;
  if (!w || !hgt) return;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(hgt * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(hgt * dpr);
  }
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, hgt);

  const line = css(canvas, "--accent", "#4f6bed");
  const grid = css(canvas, "--border", "rgba(127,127,127,.25)");
  const muted = css(canvas, "--muted", "#888");
  const text = css(canvas, "--text", "#222");
  const font = "11px " + css(canvas, "--font-mono", "monospace");
  ctx.font = font;

  const padL = 48;
  const padR = 12;
  const padT = 12;
  const padB = 24;
  const cw = Math.max(1, w - padL - padR);
  const ch = Math.max(1, hgt - padT - padB);

  if (!points.length) {
    ctx.fillStyle = muted;
    ctx.textAlign = "center";
    ctx.fillText(opts.empty || "waiting for the first sample…", w / 2, hgt / 2);
    return;
  }

  const maxY = 4 * niceMax(Math.max(...points.map((p) => p.y)) / 4);
  let x0 = points[0].x;
  let x1 = points[points.length - 1].x;
  if (x1 - x0 < 30000) x0 = x1 - 30000; // at least 30 s wide
  const X = (x) => padL + ((x - x0) / (x1 - x0 || 1)) * cw;
  const Y = (y) => padT + ch - (y / maxY) * ch;

  // Grid and y labels.
  ctx.strokeStyle = grid;
  ctx.lineWidth = 1;
  ctx.fillStyle = muted;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = (maxY * i) / 4;
    const y = Math.round(Y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(padL, y);
    ctx.lineTo(w - padR, y);
    ctx.stroke();
    ctx.fillText(fmt(v), padL - 8, y);
  }
  // X labels: start, middle, end.
  ctx.textBaseline = "alphabetic";
  const ticks = w < 420 ? [x0, x1] : [x0, (x0 + x1) / 2, x1];
  ticks.forEach((t, i) => {
    ctx.textAlign = i === 0 ? "left" : i === ticks.length - 1 ? "right" : "center";
    ctx.fillText(timeLabel(t), X(t), hgt - 6);
  });

  // Segments (split at gaps), area then line.
  const segments = [];
  let seg = [];
  points.forEach((p, i) => {
    if (i > 0 && p.x - points[i - 1].x > GAP_MS) {
      segments.push(seg);
      seg = [];
    }
    seg.push(p);
  });
  segments.push(seg);
  const fill = ctx.createLinearGradient(0, padT, 0, padT + ch);
  fill.addColorStop(0, withAlpha(line, 0.28));
  fill.addColorStop(1, withAlpha(line, 0.02));
  for (const s of segments) {
    // A lone sample is drawn as a short flat line up to "now" so it is visible.
    const pts = s.length === 1 ? [s[0], { x: Math.max(s[0].x, x1), y: s[0].y }] : s;
    // Steps: a sample holds until the next one (the registry changes in discrete steps).
    const trace = () =>
      pts.forEach((p, i) => {
        if (i) ctx.lineTo(X(p.x), Y(pts[i - 1].y));
        ctx.lineTo(X(p.x), Y(p.y));
      });
    ctx.beginPath();
    ctx.moveTo(X(pts[0].x), Y(0));
    trace();
    ctx.lineTo(X(pts[pts.length - 1].x), Y(0));
    ctx.closePath();
    ctx.fillStyle = fill;
    ctx.fill();
    ctx.beginPath();
    ctx.moveTo(X(pts[0].x), Y(pts[0].y));
    trace();
    ctx.strokeStyle = line;
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.stroke();
  }
  const last = points[points.length - 1];
  dot(ctx, X(last.x), Y(last.y), line);

  // Hover read-out: the nearest sample.
  if (canvas._hover != null) {
    let best = points[0];
    for (const p of points) if (Math.abs(X(p.x) - canvas._hover) < Math.abs(X(best.x) - canvas._hover)) best = p;
    const bx = X(best.x);
    ctx.strokeStyle = muted;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(Math.round(bx) + 0.5, padT);
    ctx.lineTo(Math.round(bx) + 0.5, padT + ch);
    ctx.stroke();
    ctx.setLineDash([]);
    dot(ctx, bx, Y(best.y), line);
    const label = timeLabel(best.x) + "  " + (opts.describe ? opts.describe(best) : fmt(best.y));
    const tw = ctx.measureText(label).width + 12;
    const tx = Math.min(Math.max(bx - tw / 2, padL), w - padR - tw);
    ctx.fillStyle = css(canvas, "--surface", "#fff");
    ctx.strokeStyle = grid;
    ctx.fillRect(tx, padT, tw, 20);
    ctx.strokeRect(tx + 0.5, padT + 0.5, tw - 1, 19);
    ctx.fillStyle = text;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.fillText(label, tx + 6, padT + 10);
  }
}

function dot(ctx, x, y, color) {
  ctx.beginPath();
  ctx.arc(x, y, 3.5, 0, Math.PI * 2);
  ctx.fillStyle = color;
  ctx.fill();
}

/** `color` (#rgb, #rrggbb or rgb()) with alpha `a`. */
function withAlpha(color, a) {
  const c = color.trim();
  let m = /^#([0-9a-f]{3})$/i.exec(c);
  if (m) {
    const [r, g, b] = m[1].split("").map((x) => parseInt(x + x, 16));
    return `rgba(${r},${g},${b},${a})`;
  }
  m = /^#([0-9a-f]{6})$/i.exec(c);
  if (m) {
    const n = parseInt(m[1], 16);
    return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
  }
  m = /^rgba?\(([^)]+)\)$/i.exec(c);
  if (m) {
    const [r, g, b] = m[1].split(",").map((x) => parseFloat(x));
    return `rgba(${r},${g},${b},${a})`;
  }
  return c;
}

/** Redraws every chart (after a theme change). */
export function repaintAll() {
  for (const c of document.querySelectorAll("canvas")) if (c._chart) paint(c);
}
