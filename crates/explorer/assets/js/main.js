// Entry point: header stats, hash routing, search, theme.

import { chain, finalizedHeight, onUpdate, start } from "./live.js";
import { maybeSample, useChain } from "./compute.js";
import { repaintAll } from "./chart.js";
import { errorPanel, h, mount, num, unc, uncCompact } from "./util.js";
import { renderHome, renderNetwork } from "./views/home.js";
import { renderBlock, renderBlocks } from "./views/blocks.js";
import { renderTx } from "./views/tx.js";
import { renderAccount } from "./views/account.js";
import { renderChip, renderChips } from "./views/chips.js";
import { renderModels } from "./views/models.js";
import { renderSearch, resolve } from "./views/search.js";
import { renderRewards } from "./views/rewards.js";
import { renderValidators } from "./views/validators.js";
import { renderLease, renderLeases, renderOffers } from "./views/market.js";

const view = document.getElementById("view");
const STALL_S = 15;

// Routes: "#/kind/arg?query". Each renderer gets (root, arg, query) and may return
// {update(u), dispose()} to follow the live feed while it is shown.
const ROUTES = {
  "": { nav: "home", render: renderHome },
  blocks: { nav: "blocks", render: renderBlocks },
  block: { nav: "blocks", render: renderBlock },
  tx: { nav: "blocks", render: renderTx },
  account: { nav: null, render: renderAccount },
  chips: { nav: "chips", render: renderChips },
  chip: { nav: "chips", render: renderChip },
  models: { nav: "models", render: renderModels },
  rewards: { nav: "rewards", render: renderRewards },
  validators: { nav: "validators", render: renderValidators },
  offers: { nav: "market", render: renderOffers },
  leases: { nav: "market", render: renderLeases },
  lease: { nav: "market", render: renderLease },
  network: { nav: "network", render: renderNetwork },
  search: { nav: null, render: renderSearch },
};

let current = null;
let routeSeq = 0;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, qs] = raw.split("?", 2);
  const [kind, ...rest] = path.split("/");
  let arg = rest.join("/");
  try {
    arg = decodeURIComponent(arg);
  } catch (_) {
    /* keep it raw */
  }
  return { kind: kind || "", arg, query: new URLSearchParams(qs || "") };
}

async function route() {
  const seq = ++routeSeq;
  if (current && current.dispose) {
    try {
      current.dispose();
    } catch (_) {
      /* ignore */
    }
  }
  current = null;
  const { kind, arg, query } = parseHash();
  const r = ROUTES[kind];
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", !!r && a.dataset.nav === r.nav);
  }
  const root = h("div", { class: "page", data: { route: kind || "home" } });
  mount(view, root);
  if (!r) {
    mount(root, errorPanel("Page not found", "No page at " + location.hash));
    return;
  }
  try {
    const handle = await r.render(root, arg, query, () => seq === routeSeq);
    if (seq === routeSeq) current = handle || null;
    else if (handle && handle.dispose) handle.dispose();
  } catch (e) {
    if (seq === routeSeq) mount(root, errorPanel("Something went wrong", e));
  }
  window.scrollTo(0, 0);
}

function setText(id, text) {
  const el = document.getElementById(id);
  if (el && el.textContent !== text) el.textContent = text;
}

function renderHeader() {
  const s = chain.status;
  const fin = finalizedHeight();
  const el = document.getElementById("stat-finalized");
  el.dataset.finalizedHeight = String(fin);
  setText("stat-finalized", s || fin ? num(fin) : "—");
  if (s) {
    const pill = document.getElementById("chain-name");
    if (pill.textContent !== `${s.chain_name} · ${s.chain_id}`) {
      mount(pill, s.chain_name, h("span", { class: "hide-xs" }, ` · ${s.chain_id}`));
      pill.title = `chain ${s.chain_name}, id ${s.chain_id}`;
    }
    // The head comes from the status poll, finality also from the WebSocket: never show a
    // head below the finalized height.
    const head = Math.max(s.head_height, fin);
    const lag = head - fin;
    setText("stat-head-value", num(head));
    setText("stat-head-lag", lag > 0 ? ` +${lag}` : "");
    setText("stat-validators", num(s.validators));
    setText("stat-mempool", num(s.mempool));
    document.getElementById("stat-head").title =
      (lag > 0 ? `${lag} block${lag === 1 ? "" : "s"} proposed, not yet finalized; ` : "") + (s.sync === "synced" ? "synced" : "catching up");
  }
  if (chain.supply) {
    setText("stat-supply", uncCompact(chain.supply.total, false));
    document.getElementById("stat-supply").title =
      `total ${unc(chain.supply.total, 18)} · circulating ${unc(chain.supply.circulating, 18)} · burned ${unc(chain.supply.burned, 18)} · minted ${unc(chain.supply.minted, 18)}`;
  }
  const mode = chain.error && chain.mode !== "live" ? "down" : chain.mode;
  const live = document.getElementById("live-mode");
  // No new finalized block for a while: say so rather than look live.
  const quiet = chain.lastBlockAt ? Math.round((Date.now() - chain.lastBlockAt) / 1000) : 0;
  const stalled = mode !== "down" && quiet >= STALL_S;
  live.dataset.mode = stalled ? "stalled" : mode;
  setText(
    "live-text",
    stalled ? `no blocks for ${quiet}s` : { live: "live · ws", polling: "polling", connecting: "connecting", down: "node unreachable" }[mode] || mode
  );
  live.title = stalled
    ? `No new finalized block in ${quiet} s (feed: ${mode})`
    : mode === "live"
      ? "Blocks arrive over the WebSocket subscription"
      : mode === "polling"
        ? "WebSocket unavailable; polling over HTTP"
        : chain.error
          ? String(chain.error.message)
          : "";
}

function onChainUpdate(u) {
  renderHeader();
  if (chain.status) useChain(chain.status.genesis_hash);
  if (u.blocks.length || !chain.blocks.length) maybeSample(finalizedHeight());
  if (current && current.update) {
    try {
      current.update(u);
    } catch (e) {
      console.error("view update failed:", e);
    }
  }
}

// Search: heights go straight to the block; 64-hex values are looked up (see views/search.js).
document.getElementById("search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = document.getElementById("search-input");
  const q = input.value.trim();
  if (!q) return;
  input.blur();
  try {
    const res = await resolve(q);
    if (res.matches.length === 1) {
      input.value = "";
      location.hash = res.matches[0].href;
    } else {
      location.hash = "#/search/" + encodeURIComponent(q);
    }
  } catch (_) {
    location.hash = "#/search/" + encodeURIComponent(q);
  }
});

// Theme: auto (system), light, dark; remembered in localStorage.
const THEMES = ["auto", "light", "dark"];
function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  const b = document.getElementById("theme-toggle");
  b.textContent = t[0].toUpperCase() + t.slice(1);
  b.title = t === "auto" ? "Theme: follow system" : "Theme: " + t;
  repaintAll();
}
let theme = "auto";
try {
  theme = THEMES.includes(localStorage.getItem("unet-explorer:theme")) ? localStorage.getItem("unet-explorer:theme") : "auto";
} catch (_) {
  /* storage disabled */
}
applyTheme(theme);
document.getElementById("theme-toggle").addEventListener("click", () => {
  theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
  try {
    localStorage.setItem("unet-explorer:theme", theme);
  } catch (_) {
    /* storage disabled */
  }
  applyTheme(theme);
});
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", repaintAll);

setText("footer-node", location.host);
window.addEventListener("hashchange", route);
onUpdate(onChainUpdate);
start();
route();
