// The live view of the chain: node status and supply, and the latest finalized blocks.
// Blocks arrive over the WebSocket subscription (unet_subscribe ["newBlocks"]); when the socket
// is down (or silent while the chain moves) the feed polls unet_status and fetches the missing
// blocks over HTTP, and keeps trying to reconnect the socket in the background. A second
// subscription (unet_subscribe ["events", {kind: "epoch_settled"}]) reports each epoch whose
// rewards have all been paid.

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
  /** `epoch_settled` events seen since the page opened, newest first:
   *  {epoch, emission, paid, to_treasury, height}. */
  settled: [],
};

const KEEP_SETTLED = 50;

const listeners = new Set();
let pendingBlocks = [];
let pendingStatus = false;
let emitTimer = null;
let lastWsMessage = 0;
let statusInFlight = false;
let backfillInFlight = false;
let socket = null;
let reconnectDelay = 1000;

let pendingSettled = [];
let blocksSub = null;
let eventsSub = null;

/** Calls `fn({blocks: newBlocks[], status: bool, settled: newEpochSettledEvents[]})` after
 *  changes; returns an unsubscribe function. */
export function onUpdate(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function scheduleEmit() {
  if (emitTimer) return;
  emitTimer = setTimeout(() => {
    emitTimer = null;
    const update = { blocks: pendingBlocks, status: pendingStatus, settled: pendingSettled };
    pendingBlocks = [];
    pendingSettled = [];
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

/** The chain's epoch of a block at `height` (rewards, challenges and committees turn over every
 *  `params.epoch_length` blocks), or null before the first status reply. */
export function epochOf(height) {
  const L = chain.status && chain.status.params ? Number(chain.status.params.epoch_length) : 0;
  return L > 0 && typeof height === "number" ? Math.floor(height / L) : null;
}

/** A block's epoch: the chain's epoch of its height; `b.epoch` (the consensus round's epoch)
 *  when the epoch length is not known yet. */
export function blockEpoch(b) {
  return epochOf(b.height) ?? b.epoch;
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

function addEvents(events) {
  for (const e of Array.isArray(events) ? events : []) {
    if (!e || e.kind !== "epoch_settled" || typeof e.epoch !== "number") continue;
    if (chain.settled.some((x) => x.epoch === e.epoch)) continue;
    chain.settled = [e].concat(chain.settled).sort((a, b) => b.epoch - a.epoch).slice(0, KEEP_SETTLED);
    pendingSettled.push(e);
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
    blocksSub = null;
    eventsSub = null;
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: "explorer-blocks", method: "unet_subscribe", params: ["newBlocks"] }));
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: "explorer-events", method: "unet_subscribe", params: ["events", { kind: "epoch_settled" }] }));
  });
  ws.addEventListener("message", (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (_) {
      return;
    }
    if (msg && msg.id === "explorer-events") {
      // Optional: without it the rewards views still read settlements over HTTP.
      if ("result" in msg) eventsSub = msg.result;
      return;
    }
    if (msg && msg.id === "explorer-blocks") {
      if ("result" in msg) {
        blocksSub = msg.result;
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
      const sub = msg.params.subscription;
      if (sub !== undefined && sub === eventsSub) addEvents(msg.params.result);
      else if (blocksSub === null || sub === blocksSub) addBlock(msg.params.result);
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
