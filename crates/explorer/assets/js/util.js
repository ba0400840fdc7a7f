// DOM and formatting helpers. Everything is built with createElement and text nodes: the page
// never parses HTML from data (the CSP enforces Trusted Types, so it could not anyway).

/** h("a", {href, class, title, data: {x: 1}, onclick}, ...children) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "data") for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
      else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const BASE_PER_UNC = 10n ** 18n;

function toBig(v) {
  try {
    if (typeof v === "bigint") return v;
    if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
    if (typeof v === "string" && /^\d{1,40}$/.test(v)) return BigInt(v);
  } catch (_) {
    /* fall through */
  }
  return null;
}

/** Groups the digits of a non-negative integer string: 1234567 -> 1,234,567. */
export function group(digits) {
  return String(digits).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Base units (decimal string) to UNC text, exact up to `maxFrac` decimals (then truncated). */
export function unc(base, maxFrac = 6) {
  const b = toBig(base);
  if (b === null) return "—";
  const whole = b / BASE_PER_UNC;
  const frac = (b % BASE_PER_UNC).toString().padStart(18, "0").slice(0, maxFrac).replace(/0+$/, "");
  const approx = (b % BASE_PER_UNC) % 10n ** BigInt(18 - maxFrac) !== 0n;
  if (approx && whole === 0n && !frac) return maxFrac > 0 ? "<0." + "0".repeat(maxFrac - 1) + "1 UNC" : "<1 UNC";
  return (approx ? "≈" : "") + group(whole.toString()) + (frac ? "." + frac : "") + " UNC";
}

/** Base units as grouped digits. */
export function baseUnits(base) {
  const b = toBig(base);
  return b === null ? "—" : group(b.toString()) + " base units";
}

export function num(n) {
  return typeof n === "number" && Number.isFinite(n) ? group(Math.trunc(n)) : "—";
}

/** Rated compute: thousandths of a TOPS -> "32 TOPS". */
export function tops(milli) {
  if (typeof milli !== "number" || !Number.isFinite(milli)) return "—";
  const t = milli / 1000;
  const digits = t >= 100 || Number.isInteger(t) ? 0 : t >= 10 ? 1 : 3;
  return t.toLocaleString("en-US", { maximumFractionDigits: digits }) + " TOPS";
}

/** Short TOPS for chart axes: 1.2k, 3.4M. */
export function topsShort(t) {
  const a = Math.abs(t);
  const trim = (x, d) => String(Number(x.toFixed(d)));
  if (a >= 1e6) return trim(t / 1e6, 2) + "M";
  if (a >= 1e3) return trim(t / 1e3, 2) + "k";
  return trim(t, 1);
}

/** Compact UNC for tight spaces: 299.99M UNC (truncated, never rounded up). */
export function uncCompact(base, unit = true) {
  const b = toBig(base);
  if (b === null) return "—";
  const whole = b / BASE_PER_UNC;
  for (const [div, suffix] of [[10n ** 9n, "B"], [10n ** 6n, "M"], [10n ** 3n, "k"]]) {
    if (whole >= div) {
      const hundredths = (whole * 100n) / div;
      return group((hundredths / 100n).toString()) + "." + (hundredths % 100n).toString().padStart(2, "0") + suffix + (unit ? " UNC" : "");
    }
  }
  const small = unc(base, 4);
  return unit ? small : small.replace(/ UNC$/, "");
}

export function short(hex, head = 8, tail = 6) {
  if (typeof hex !== "string") return "—";
  return hex.length > head + tail + 1 ? hex.slice(0, head) + "…" + hex.slice(-tail) : hex;
}

/** "4s ago", "3m ago", "2h ago", "5d ago". */
export function ago(ms, now = Date.now()) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.floor(s / 60) + "m ago";
  if (s < 86400) return Math.floor(s / 3600) + "h ago";
  return Math.floor(s / 86400) + "d ago";
}

export function dateTime(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "—";
  const d = new Date(ms);
  return isNaN(d.getTime()) ? "—" : d.toISOString().replace("T", " ").replace("Z", " UTC");
}

/** Lower-case hex without 0x, or null when `s` is not 32 bytes of hex. */
export function hex32(s) {
  if (typeof s !== "string") return null;
  const t = s.trim().toLowerCase().replace(/^0x/, "");
  return /^[0-9a-f]{64}$/.test(t) ? t : null;
}

export const link = {
  block: (id) => "#/block/" + encodeURIComponent(id),
  tx: (hash) => "#/tx/" + hash,
  account: (addr) => "#/account/" + addr,
  chip: (id) => "#/chip/" + id,
};

/** A monospace link showing a shortened hash (full value in the title). */
export function hashLink(kind, value, opts = {}) {
  if (typeof value !== "string" || !value) return h("span", { class: "muted" }, "—");
  const text = opts.full ? value : short(value, opts.head, opts.tail);
  return h("a", { class: "mono hash", href: link[kind](value), title: value }, text);
}

export function copyButton(text) {
  const b = h("button", { class: "copy", type: "button", title: "Copy", "aria-label": "Copy to clipboard" }, "Copy");
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = "Copied";
    } catch (_) {
      b.textContent = "Select manually";
    }
    setTimeout(() => (b.textContent = "Copy"), 1500);
  });
  return b;
}

/** A full hash with a copy button, for detail pages. */
export function fullHash(value, kind) {
  if (typeof value !== "string" || !value) return h("span", { class: "muted" }, "—");
  const v = kind ? h("a", { class: "mono break", href: link[kind](value) }, value) : h("span", { class: "mono break" }, value);
  return h("span", { class: "hash-full" }, v, copyButton(value));
}

export function badge(text, tone = "neutral", attrs = {}) {
  return h("span", { ...attrs, class: "badge badge-" + tone }, text);
}

const STATUS_TONE = {
  ok: "good",
  online: "good",
  finalized: "good",
  pending: "warn",
  unresponsive: "warn",
  failed: "bad",
  rejected: "bad",
  revoked: "bad",
};

export function statusBadge(status, attrs = {}) {
  return badge(String(status ?? "unknown"), STATUS_TONE[status] || "neutral", attrs);
}

/** A key/value panel: rows of [label, value node or text]. */
export function kv(rows) {
  return h(
    "dl",
    { class: "kv" },
    rows.filter(Boolean).map(([k, v]) => [h("dt", null, k), h("dd", null, v)])
  );
}

export function card(title, body, extra) {
  return h(
    "section",
    { class: "card" },
    title ? h("header", { class: "card-head" }, h("h2", null, title), extra || null) : null,
    body
  );
}

export function table(columns, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      null,
      h("thead", null, h("tr", null, columns.map((c) => h("th", { class: c.class || null }, c.label)))),
      h(
        "tbody",
        null,
        rows.map((r) => h("tr", null, columns.map((c) => h("td", { class: c.class || null }, c.cell(r)))))
      )
    )
  );
}

export function loading(what = "Loading") {
  return h("p", { class: "loading" }, what + "…");
}

export function errorPanel(title, err) {
  const msg = err && err.message ? err.message : String(err ?? "");
  return h("section", { class: "card error-card", data: { error: "1" } }, h("h2", null, title), h("p", { class: "mono break" }, msg));
}

export function pageTitle(kicker, title, ...extra) {
  return h("div", { class: "page-title" }, h("span", { class: "kicker" }, kicker), h("h1", null, title), extra);
}

/** Runs `fn` at most once per `ms`, trailing call included. */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return (...args) => {
    const wait = last + ms - Date.now();
    if (wait <= 0) {
      last = Date.now();
      fn(...args);
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn(...args);
      }, wait);
    }
  };
}
