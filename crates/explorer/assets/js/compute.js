// Network compute: the total rated compute of online chips, sampled over time.
//
// `unet_networkCompute` gives the current figures (kept exact by the chain on every status
// change): online chips and rated compute, in total and per model, the epoch and its emission,
// and the epoch being settled. The chain keeps no history of them, so this browser samples
// them on new blocks (at most every SAMPLE_EVERY_MS) and keeps the samples in localStorage per
// chain (genesis hash).

import { call } from "./rpc.js";

const SAMPLE_EVERY_MS = 2000;
const MAX_SAMPLES = 720;

/** The last `unet_networkCompute` reply (null until the first sample). */
export let network = null;

/**
 * The current network compute: `{milliTops, chips, epoch, models: [{model, chips, milliTops}]}`
 * from one `unet_networkCompute` call; the whole reply is kept in `network`.
 */
export async function fetchNetworkCompute() {
  const r = await call("unet_networkCompute");
  network = r;
  return {
    milliTops: Number(r.online_compute_milli_tops) || 0,
    chips: Number(r.online_chips) || 0,
    epoch: r.epoch,
    models: (r.models || []).map((m) => ({ model: m.model, chips: Number(m.online_chips) || 0, milliTops: Number(m.online_compute) || 0 })),
  };
}

/** Samples of network compute over time: `{t, height, milliTops, chips, epoch, models}`. */
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
