// Network compute: the total rated compute of online chips, sampled over time.
//
// The chain has no history of it yet, so this browser samples it on new blocks (at most every
// SAMPLE_EVERY_MS) and keeps the samples in localStorage per chain (genesis hash).
// `fetchNetworkCompute` is the only function that knows where the number comes from: when the
// node serves `unet_networkCompute`, replace its body with that one call.

import { call } from "./rpc.js";

const SAMPLE_EVERY_MS = 2000;
const MAX_SAMPLES = 720;
const PAGE = 200;
const MAX_PAGES = 50;

/**
 * The current network compute: `{milliTops, chips, complete}` where `milliTops` sums the
 * rated compute (`compute_milli_tops`) of online chips, `chips` counts them, and `complete`
 * is false when the registry was too large to scan in MAX_PAGES pages.
 */
export async function fetchNetworkCompute() {
  let start = 0;
  let milliTops = 0;
  let chips = 0;
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await call("unet_listChips", { status: "online", start, limit: PAGE });
    for (const c of r.chips || []) {
      milliTops += Number(c.compute_milli_tops) || 0;
      chips += 1;
    }
    if (r.next === null || r.next === undefined) return { milliTops, chips, complete: true };
    start = r.next;
  }
  return { milliTops, chips, complete: false };
}

/** Samples of network compute over time: `{t, height, milliTops, chips, complete}`. */
export const series = {
  samples: [],
  key: null,
  inFlight: false,
  last: 0,
  /** How long the last sample took (ms). */
  cost: 0,
  error: null,
  listeners: new Set(),
};

function storageKey(genesis) {
  return "unet-explorer:compute:" + genesis;
}

/** Loads the samples kept for this chain. */
export function useChain(genesisHash) {
  if (!genesisHash || series.key === genesisHash) return;
  series.key = genesisHash;
  series.samples = [];
  try {
    const kept = JSON.parse(localStorage.getItem(storageKey(genesisHash)) || "[]");
    if (Array.isArray(kept)) {
      series.samples = kept
        .filter((s) => s && Number.isFinite(s.t) && Number.isFinite(s.milliTops))
        .slice(-MAX_SAMPLES);
    }
  } catch (_) {
    series.samples = [];
  }
}

function save() {
  if (!series.key) return;
  try {
    localStorage.setItem(storageKey(series.key), JSON.stringify(series.samples));
  } catch (_) {
    // Storage full or disabled: the chart still works for this page's lifetime.
  }
}

export function onSample(fn) {
  series.listeners.add(fn);
  return () => series.listeners.delete(fn);
}

/** Takes a sample if the last one is old enough; called on every new block. Backs off when
 *  sampling is slow (a large registry), so that a page never keeps a node busy. */
export async function maybeSample(height) {
  const now = Date.now();
  if (series.inFlight || now - series.last < Math.max(SAMPLE_EVERY_MS, 10 * series.cost)) return;
  series.inFlight = true;
  series.last = now;
  try {
    const v = await fetchNetworkCompute();
    series.cost = Date.now() - now;
    series.samples.push({ t: Date.now(), height, ...v });
    if (series.samples.length > MAX_SAMPLES) series.samples.splice(0, series.samples.length - MAX_SAMPLES);
    series.error = null;
    save();
  } catch (e) {
    series.error = e;
  } finally {
    series.inFlight = false;
  }
  for (const fn of [...series.listeners]) {
    try {
      fn(series);
    } catch (e) {
      console.error("compute chart update failed:", e);
    }
  }
}

export function latest() {
  return series.samples.length ? series.samples[series.samples.length - 1] : null;
}
