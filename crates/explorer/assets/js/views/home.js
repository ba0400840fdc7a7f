// Overview (latest blocks, recent transactions, network compute) and the network page.

import { chain } from "../live.js";
import { latest, onSample, series } from "../compute.js";
import { drawSeries } from "../chart.js";
import {
  ago,
  badge,
  card,
  dateTime,
  h,
  hashLink,
  kv,
  mount,
  num,
  pageTitle,
  table,
  tops,
  topsShort,
  unc,
} from "../util.js";

/** The network compute card: headline figures and the chart. */
export function computeCard() {
  const value = h("span", { class: "big num", id: "compute-now" }, "—");
  const sub = h("span", { class: "muted", id: "compute-sub" }, "sampling…");
  const canvas = h("canvas", {
    class: "chart",
    id: "compute-chart",
    "aria-label": "Total rated compute of online chips over time",
    role: "img",
    data: { points: 0 },
  });
  const note = h(
    "p",
    { class: "note" },
    "Sum of the rated compute of online chips (unet_listChips), sampled by this browser as blocks finalize. ",
    "The chain does not serve a compute history yet."
  );
  const el = card(
    "Network compute",
    [h("div", { class: "headline" }, value, sub), canvas, note],
    h("a", { href: "#/models", class: "card-link" }, "By model →")
  );
  const redraw = () => {
    const s = latest();
    value.textContent = s ? tops(s.milliTops) : "—";
    sub.textContent = s
      ? `${num(s.chips)} chip${s.chips === 1 ? "" : "s"} online${s.complete ? "" : " (first pages only)"} · ${series.samples.length} sample${series.samples.length === 1 ? "" : "s"}`
      : series.error
        ? "cannot sample: " + series.error.message
        : "sampling…";
    drawSeries(
      canvas,
      series.samples.map((p) => ({ x: p.t, y: p.milliTops / 1000, chips: p.chips, height: p.height })),
      {
        format: topsShort,
        describe: (p) => `${tops(p.y * 1000)} · ${num(p.chips)} chips · #${num(p.height)}`,
      }
    );
  };
  return { el, redraw };
}

function blockRows() {
  const rows = chain.blocks.slice(0, 12);
  return table(
    [
      { label: "Height", cell: (b) => h("a", { href: "#/block/" + b.height, class: "num strong" }, num(b.height)) },
      { label: "Hash", cell: (b) => hashLink("block", b.hash, { head: 10, tail: 4 }), class: "hide-xs" },
      { label: "Proposer", cell: (b) => hashLink("account", b.proposer, { head: 6, tail: 4 }), class: "hide-sm" },
      { label: "Txs", cell: (b) => num(b.tx_count), class: "right num" },
      { label: "Age", cell: (b) => h("span", { title: dateTime(b.timestamp_ms) }, ago(b.timestamp_ms)), class: "right muted nowrap" },
      { label: "", cell: () => badge("final", "good", { title: "finalized: certified by a threshold of validators; never reverts" }), class: "right" },
    ],
    rows,
    chain.error ? "Cannot reach the node." : "Waiting for blocks…"
  );
}

function txRows() {
  const rows = chain.txs.slice(0, 12);
  return table(
    [
      { label: "Transaction", cell: (r) => hashLink("tx", r.hash, { head: 12, tail: 6 }) },
      { label: "Block", cell: (r) => h("a", { href: "#/block/" + r.height, class: "num" }, num(r.height)), class: "right" },
      { label: "Age", cell: (r) => ago(r.ts), class: "right muted nowrap" },
    ],
    rows,
    chain.txsSince === null ? "Looking for recent transactions…" : `No transactions since block ${num(chain.txsSince)}.`
  );
}

export function notOnChainCard() {
  const item = (title, text) => h("div", { class: "soon" }, h("h3", null, title, " ", badge("not yet on chain", "neutral")), h("p", null, text));
  return card("Coming to the chain", [
    h(
      "div",
      { class: "soon-grid" },
      item("Rewards", "UNC minted to chip owners by rated compute. Supply shows minted = 0 until issuance ships."),
      item("Compute market", "Renting registered chips to buyers, with escrow. Escrowed supply stays 0 until then."),
      item("Validator compute weight", "Validators are weighted equally today; compute-weighted consensus is not live.")
    ),
  ]);
}

export async function renderHome(root) {
  document.title = "UtilityNet Explorer";
  const compute = computeCard();
  const blocksBody = h("div", null, blockRows());
  const txBody = h("div", null, txRows());
  mount(
    root,
    compute.el,
    h(
      "div",
      { class: "grid-2" },
      card("Latest blocks", blocksBody, h("a", { href: "#/blocks", class: "card-link" }, "All blocks →")),
      card("Recent transactions", txBody)
    ),
    notOnChainCard()
  );
  compute.redraw();
  const off = onSample(compute.redraw);
  return {
    update() {
      mount(blocksBody, blockRows());
      mount(txBody, txRows());
    },
    dispose: off,
  };
}

function networkBody() {
  const s = chain.status;
  if (!s) return h("p", { class: "loading" }, "Loading…");
  const proposers = new Map();
  for (const b of chain.blocks) proposers.set(b.proposer, (proposers.get(b.proposer) || 0) + 1);
  const sup = chain.supply || {};
  const p = s.params || {};
  return [
    h(
      "div",
      { class: "grid-2" },
      card(
        "Consensus",
        kv([
          ["Chain", `${s.chain_name} (id ${s.chain_id})`],
          ["Genesis", h("span", { class: "mono break" }, s.genesis_hash)],
          ["Validators", `${num(s.validators)} (this node sees ${num(s.peers)} peer${s.peers === 1 ? "" : "s"})`],
          ["Epoch", num(s.epoch)],
          ["Finalized", h("a", { href: "#/block/" + s.finalized_height }, num(s.finalized_height))],
          ["Head", num(s.head_height)],
          ["Sync", s.sync],
          ["State root", h("span", { class: "mono break" }, s.finalized_state_root)],
        ])
      ),
      card(
        "Supply",
        kv([
          ["Max supply", unc(sup.max_supply, 18)],
          ["Genesis", unc(sup.genesis, 18)],
          ["Minted", unc(sup.minted, 18)],
          ["Burned", unc(sup.burned, 18)],
          ["Total", unc(sup.total, 18)],
          ["Circulating", unc(sup.circulating, 18)],
          ["Escrowed", unc(sup.escrowed, 18)],
          ["At height", num(sup.height)],
        ])
      )
    ),
    h(
      "div",
      { class: "grid-2" },
      card(
        "Recent proposers",
        table(
          [
            { label: "Validator", cell: (r) => hashLink("account", r[0], { head: 12, tail: 6 }) },
            { label: `Blocks (last ${chain.blocks.length})`, cell: (r) => num(r[1]), class: "right num" },
          ],
          [...proposers.entries()].sort((a, b) => b[1] - a[1]),
          "No blocks seen yet."
        )
      ),
      card(
        "Parameters",
        kv([
          ["Block time", num(p.block_time_ms) + " ms"],
          ["Min fee", unc(p.min_fee, 18)],
          ["Fee burned", p.fee_burn_bps === undefined ? "—" : p.fee_burn_bps / 100 + " %"],
          ["Max txs per block", num(p.max_block_txs)],
          ["Max registrations per block", num(p.max_registrations_per_block)],
          ["Registration window", num(p.registration_window) + " blocks"],
        ])
      )
    ),
    notOnChainCard(),
  ];
}

export async function renderNetwork(root) {
  document.title = "Network · UtilityNet Explorer";
  const body = h("div", null, networkBody());
  mount(root, pageTitle("Network", "Validators and chain parameters"), body);
  let last = 0;
  return {
    update() {
      if (Date.now() - last < 2000) return;
      last = Date.now();
      mount(body, networkBody());
    },
  };
}
