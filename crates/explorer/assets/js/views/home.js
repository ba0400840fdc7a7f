// Overview (latest blocks, recent transactions, network compute) and the network page.

import { blockEpoch, chain } from "../live.js";
import { latest, onSample, series } from "../compute.js";
import { drawSeries } from "../chart.js";
import { batch } from "../rpc.js";
import { epochProgress, settlements, settlingText } from "./rewards.js";
import { committeeTable } from "./validators.js";
import {
  ago,
  badge,
  card,
  dateTime,
  errorPanel,
  h,
  hashLink,
  kv,
  loading,
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
  const models = h("div", { class: "model-split", id: "compute-models" });
  const note = h(
    "p",
    { class: "note" },
    "Rated compute of online chips (unet_networkCompute), sampled by this browser as blocks finalize; ",
    "the chain keeps the current figure exact, not its history."
  );
  const el = card(
    "Network compute",
    [h("div", { class: "headline" }, value, sub), canvas, models, note],
    h("a", { href: "#/models", class: "card-link" }, "By model →")
  );
  const redraw = () => {
    const s = latest();
    value.textContent = s ? tops(s.milliTops) : "—";
    sub.textContent = s
      ? `${num(s.chips)} chip${s.chips === 1 ? "" : "s"} online · epoch ${num(s.epoch)} · ${series.samples.length} sample${series.samples.length === 1 ? "" : "s"}`
      : series.error
        ? "cannot sample: " + series.error.message
        : "sampling…";
    const per = s && Array.isArray(s.models) ? s.models.filter((m) => m.chips > 0) : [];
    mount(
      models,
      per.map((m) => {
        const pct = s.milliTops > 0 ? (100 * m.milliTops) / s.milliTops : 0;
        const fill = h("span", { class: "bar-fill" });
        fill.style.width = pct.toFixed(2) + "%";
        return h(
          "div",
          { class: "model-row", data: { model: m.model, modelChips: m.chips } },
          h("a", { href: "#/chips?status=online&model=" + encodeURIComponent(m.model), class: "strong" }, m.model),
          h("span", { class: "muted num" }, `${num(m.chips)} online · ${tops(m.milliTops)}`),
          h("span", { class: "bar" }, h("span", { class: "bar-track" }, fill), h("span", { class: "bar-label num" }, pct.toFixed(pct >= 10 || pct === 0 ? 0 : 1) + "%"))
        );
      })
    );
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
      { label: "Epoch", cell: (b) => num(blockEpoch(b)), class: "right num hide-xs" },
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

/** Epoch, rewards, validators and market at a glance; refreshed on new blocks. */
function chainCards() {
  const epochBody = h("div", null, loading());
  const valBody = h("div", null, loading());
  const marketBody = h("div", null, loading());
  const el = h(
    "div",
    { class: "grid-3" },
    card("Epoch and rewards", epochBody, h("a", { href: "#/rewards", class: "card-link" }, "All epochs →")),
    card("Validators", valBody, h("a", { href: "#/validators", class: "card-link" }, "Committees →")),
    card("Market", marketBody, h("a", { href: "#/offers", class: "card-link" }, "Offers →"))
  );
  let busy = false;
  let shown = null;
  const refresh = async () => {
    if (busy) return;
    busy = true;
    try {
      const [net, committee, offers, leases] = await batch([["unet_networkCompute"], ["unet_getCommittee", {}], ["unet_listOffers", { limit: 200 }], ["unet_getLease", { id: 0 }]]);
      const lastEpoch = net.ok ? net.value.epoch - 1 : -1;
      const [last] = lastEpoch >= 0 ? await settlements([lastEpoch]) : [null];
      const key = JSON.stringify([net, committee, offers, leases.ok, last]);
      if (key === shown) return;
      shown = key;
      if (net.ok) {
        const n = net.value;
        mount(
          epochBody,
          kv([
            ["Epoch", [h("span", { class: "num strong" }, num(n.epoch)), " ", epochProgress(n, n.height)]],
            ["Emission", unc(n.epoch_emission, 2)],
            ["Being paid", settlingText(n.settling)],
            [
              "Last settled",
              last
                ? h("span", { data: { lastSettled: last.epoch } }, `epoch ${num(last.epoch)}: ${unc(last.paid, 2)} to chips, ${unc(last.to_treasury, 2)} to treasury`)
                : h("span", { class: "muted" }, lastEpoch >= 0 ? `epoch ${num(lastEpoch)} is being paid` : "no epoch has ended yet"),
            ],
          ])
        );
      } else mount(epochBody, errorPanel("Cannot load epoch", net.error));
      if (committee.ok) {
        const c = committee.value;
        mount(valBody, [committeeTable(c, { compact: true }), h("p", { class: "note" }, `Epoch ${num(c.epoch)}: ${num((c.members || []).length)} members weighted by attested compute.`)]);
      } else mount(valBody, errorPanel("Cannot load committee", committee.error));
      if (offers.ok) {
        const list = offers.value.offers || [];
        const free = list.reduce((a, o) => a + (o.free_chips || []).length, 0);
        const cheapest = list.filter((o) => (o.free_chips || []).length).map((o) => BigInt(o.price_per_block)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))[0];
        mount(
          marketBody,
          kv([
            ["Offers", h("a", { href: "#/offers", class: "num strong" }, num(list.length) + (offers.value.next != null ? "+" : ""))],
            ["Chips free to rent", num(free)],
            ["Cheapest free chip", cheapest === undefined ? h("span", { class: "muted" }, "—") : unc(cheapest.toString(), 18) + " / block"],
            ["Leases", h("a", { href: "#/leases" }, leases.ok ? "see leases" : "none opened yet")],
          ])
        );
      } else mount(marketBody, errorPanel("Cannot list offers", offers.error));
    } catch (e) {
      mount(epochBody, errorPanel("Cannot load the chain's state", e));
    } finally {
      busy = false;
    }
  };
  return { el, refresh };
}

export async function renderHome(root) {
  document.title = "UtilityNet Explorer";
  const compute = computeCard();
  const cards = chainCards();
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
    cards.el
  );
  compute.redraw();
  cards.refresh();
  const off = onSample(compute.redraw);
  let last = Date.now();
  return {
    update(u) {
      mount(blocksBody, blockRows());
      mount(txBody, txRows());
      if ((u.settled && u.settled.length) || (u.blocks.length && Date.now() - last >= 3000)) {
        last = Date.now();
        cards.refresh();
      }
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
