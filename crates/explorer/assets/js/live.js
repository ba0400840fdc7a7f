// The live view of the chain: node status and supply, and the latest finalized blocks.
// Blocks arrive over the WebSocket subscription (unet_subscribe ["newBlocks"]); when the socket
// is down (or silent while the chain moves) the feed polls unet_status and fetches the missing
// blocks over HTTP, and keeps trying to reconnect the socket in the background.

import { batch, wsUrl } from "./rpc.js";

const KEEP_BLOCKS = 60;
const STATUS_EVERY_MS = 1000;
const WS_SILENT_MS = 4000;
const MAX_BACKFILL = 20;
const EMIT_EVERY_MS = 300;
const KEEP_TXS = 25;
const SCAN_BACK = 256;

export const chain = {
  status: null,
  supply: null,
  /** Latest finalized blocks, highest first (transactions as hashes). */
  blocks: [],
  /** Latest finalized transactions seen, newest first: {hash, height, ts}. */
  txs: [],
  /** The lowest height searched for `txs`. */
  txsSince: null,
  /** "connecting" | "live" | "polling" */
  mode: "connecting",
  error: null,
  /** When this page last saw a new finalized block (ms, local clock). */
  lastBlockAt: 0,
};

const listeners = new Set();
let pendingBlocks = [];
let pendingStatus = false;
let emitTimer = null;
let lastWsMessage = 0;
let statusInFlight = false;
let backfillInFlight = false;
let socket = null;
let reconnectDelay = 1000;

/** Calls `fn({blocks: newBlocks[], status: bool})` after changes; returns an unsubscribe function. */
export function onUpdate(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function scheduleEmit() {
  if (emitTimer) return;
  emitTimer = setTimeout(() => {
    emitTimer = null;
    const update = { blocks: pendingBlocks, status: pendingStatus };
    pendingBlocks = [];
    pendingStatus = false;
    for (const fn of [...listeners]) {
      try {
        fn(update);
      } catch (e) {
        console.error("explorer view update failed:", e);
      }
    }
  }, EMIT_EVERY_MS);
}

/** The highest finalized height known from any source. */
export function finalizedHeight() {
  const fromStatus = chain.status ? chain.status.finalized_height : 0;
  const fromBlocks = chain.blocks.length ? chain.blocks[0].height : 0;
  return Math.max(fromStatus || 0, fromBlocks || 0);
}

function noteTxs(b) {
  const hashes = (b.transactions || []).map((t) => (typeof t === "string" ? t : t && t.hash)).filter(Boolean);
  if (!hashes.length) return;
  const known = new Set(chain.txs.map((t) => t.hash));
  const fresh = hashes.filter((x) => !known.has(x)).map((hash) => ({ hash, height: b.height, ts: b.timestamp_ms }));
  chain.txs = chain.txs.concat(fresh).sort((a, c) => c.height - a.height).slice(0, KEEP_TXS);
}

function addBlock(b) {
  if (!b || typeof b.height !== "number") return;
  noteTxs(b);
  if (chain.blocks.some((x) => x.height === b.height)) return;
  const blocks = chain.blocks.concat([b]).sort((a, c) => c.height - a.height);
  chain.blocks = blocks.slice(0, KEEP_BLOCKS);
  if (chain.blocks.includes(b)) {
    chain.lastBlockAt = Date.now();
    pendingBlocks.push(b);
    scheduleEmit();
  }
}

async function refreshStatus() {
  if (statusInFlight) return;
  statusInFlight = true;
  try {
    const [status, supply] = await batch([["unet_status"], ["unet_supply"]]);
    if (status.ok) {
      chain.status = status.value;
      chain.error = null;
    } else {
      chain.error = status.error;
    }
    if (supply.ok) chain.supply = supply.value;
  } catch (e) {
    chain.error = e;
  } finally {
    statusInFlight = false;
    pendingStatus = true;
    scheduleEmit();
  }
}

/** Fetches finalized blocks above the newest one held, up to the node's finalized height. */
async function backfill() {
  if (backfillInFlight || !chain.status) return;
  const top = chain.blocks.length ? chain.blocks[0].height : 0;
  const target = chain.status.finalized_height;
  if (target <= top) return;
  backfillInFlight = true;
  try {
    const from = Math.max(top + 1, target - MAX_BACKFILL + 1, 0);
    const heights = [];
    for (let h = target; h >= from; h--) heights.push(h);
    const replies = await batch(heights.map((h) => ["unet_getBlock", [h, false]]));
    for (const r of replies) if (r.ok) addBlock(r.value);
  } catch (_) {
    // Reported through chain.error by the next status refresh.
  } finally {
    backfillInFlight = false;
  }
}

/** Once, at start: finds the latest transactions in the last SCAN_BACK blocks. */
let scanned = false;
async function scanRecentTxs() {
  if (scanned || !chain.status) return;
  scanned = true;
  const top = chain.status.finalized_height;
  const heights = [];
  for (let x = top; x > Math.max(0, top - SCAN_BACK); x--) heights.push(x);
  try {
    const replies = await batch(heights.map((x) => ["unet_getBlock", [x, false]]));
    for (const r of replies) if (r.ok && r.value.tx_count > 0) noteTxs(r.value);
    chain.txsSince = heights.length ? heights[heights.length - 1] : top;
    pendingStatus = true;
    scheduleEmit();
  } catch (_) {
    scanned = false;
  }
}

function setMode(mode) {
  if (chain.mode !== mode) {
    chain.mode = mode;
    pendingStatus = true;
    scheduleEmit();
  }
}

function connect() {
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch (_) {
    setMode("polling");
    return;
  }
  socket = ws;
  ws.addEventListener("open", () => {
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: "explorer-blocks", method: "unet_subscribe", params: ["newBlocks"] }));
  });
  ws.addEventListener("message", (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (_) {
      return;
    }
    if (msg && msg.id === "explorer-blocks") {
      if ("result" in msg) {
        lastWsMessage = Date.now();
        reconnectDelay = 1000;
        setMode("live");
      } else {
        ws.close();
      }
      return;
    }
    if (msg && msg.method === "unet_subscription" && msg.params) {
      lastWsMessage = Date.now();
      setMode("live");
      addBlock(msg.params.result);
    }
  });
  ws.addEventListener("close", () => {
    if (socket !== ws) return;
    socket = null;
    setMode("polling");
    setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, 30000);
  });
}

async function tick() {
  await refreshStatus();
  scanRecentTxs();
  const wsHealthy = chain.mode === "live" && Date.now() - lastWsMessage < WS_SILENT_MS;
  if (!wsHealthy) await backfill();
}

let started = false;

export function start() {
  if (started) return;
  started = true;
  tick();
  setInterval(tick, STATUS_EVERY_MS);
  if ("WebSocket" in window) connect();
  else setMode("polling");
}
