// Blocks: the paged list and one block.

import { batch, call, isNotFound } from "../rpc.js";
import { blockEpoch, finalizedHeight } from "../live.js";
import {
  ago,
  badge,
  card,
  dateTime,
  errorPanel,
  fullHash,
  h,
  hashLink,
  kv,
  loading,
  mount,
  num,
  pageTitle,
  statusBadge,
  table,
  unc,
} from "../util.js";

const PAGE = 25;

function blocksTable(blocks) {
  return table(
    [
      { label: "Height", cell: (b) => h("a", { href: "#/block/" + b.height, class: "num strong" }, num(b.height)) },
      { label: "Hash", cell: (b) => hashLink("block", b.hash, { head: 12, tail: 6 }), class: "hide-xs" },
      { label: "Proposer", cell: (b) => hashLink("account", b.proposer, { head: 8, tail: 4 }), class: "hide-sm" },
      { label: "Epoch", cell: (b) => h("span", { class: "num", data: { blockEpoch: blockEpoch(b) } }, num(blockEpoch(b))), class: "right hide-xs" },
      { label: "Txs", cell: (b) => num(b.tx_count), class: "right num" },
      { label: "Time", cell: (b) => h("span", { title: dateTime(b.timestamp_ms) }, ago(b.timestamp_ms)), class: "right muted nowrap" },
      { label: "", cell: () => badge("final", "good"), class: "right" },
    ],
    blocks
  );
}

/** #/blocks?before=H : PAGE finalized blocks below H (default: the latest). */
export async function renderBlocks(root, _arg, query, alive) {
  document.title = "Blocks · UtilityNet Explorer";
  const pinned = /^\d+$/.test(query.get("before") || "");
  const body = h("div", null, loading());
  const pager = h("div", { class: "pager" });
  mount(root, pageTitle("Blocks", "Finalized blocks"), card(null, [body, pager]));
  let busy = false;
  const load = async () => {
    if (busy) return;
    busy = true;
    try {
      const top = pinned ? Number(query.get("before")) - 1 : finalizedHeight() || (await call("unet_status")).finalized_height;
      const heights = [];
      for (let x = top; x >= 0 && heights.length < PAGE; x--) heights.push(x);
      const replies = await batch(heights.map((x) => ["unet_getBlock", [x, false]]));
      if (!alive()) return;
      const blocks = replies.filter((r) => r.ok).map((r) => r.value);
      mount(body, blocksTable(blocks));
      const lowest = heights.length ? heights[heights.length - 1] : 0;
      mount(
        pager,
        pinned ? h("a", { href: "#/blocks", class: "btn" }, "← Latest") : h("span", { class: "muted" }, "Following new blocks"),
        lowest > 0 ? h("a", { href: "#/blocks?before=" + lowest, class: "btn" }, "Older →") : null
      );
    } catch (e) {
      if (alive()) mount(body, errorPanel("Cannot load blocks", e));
    } finally {
      busy = false;
    }
  };
  await load();
  let last = Date.now();
  return {
    update(u) {
      if (pinned || !u.blocks.length || Date.now() - last < 1000) return;
      last = Date.now();
      load();
    },
  };
}

function txSummary(t) {
  if (t.kind === "transfer") return [hashLink("account", t.to, { head: 6, tail: 4 }), " ", h("span", { class: "num" }, unc(t.amount))];
  if (t.chip_id) return [h("span", { class: "muted" }, "chip "), hashLink("chip", t.chip_id, { head: 6, tail: 4 })];
  if (t.action) return h("span", { class: "muted" }, t.action);
  if (t.lease_id != null) return h("a", { href: "#/lease/" + t.lease_id }, "lease #" + num(t.lease_id));
  if (t.offer_id != null) return h("a", { href: "#/offers?from=" + t.offer_id }, "offer #" + num(t.offer_id));
  if (t.terms) return h("span", { class: "muted" }, `${t.terms.model} × ${num((t.terms.chips || []).length)}`);
  return h("span", { class: "muted" }, "—");
}

function kindLabel(kind) {
  return badge(String(kind || "?").replace(/_/g, " "), "neutral");
}

/** #/block/<height | hash | latest> */
export async function renderBlock(root, arg, _query, alive) {
  mount(root, loading("Loading block"));
  const id = /^\d{1,20}$/.test(arg) ? Number(arg) : arg;
  let b;
  try {
    b = await call("unet_getBlock", [id, true]);
  } catch (e) {
    if (!alive()) return;
    const fin = finalizedHeight();
    const hint = typeof id === "number" && id > fin ? ` The chain is finalized up to ${num(fin)}; this page updates when it gets there.` : "";
    mount(root, errorPanel(isNotFound(e) ? "Block not found" : "Cannot load block", (e.message || e) + hint));
    if (typeof id === "number" && id > fin && isNotFound(e)) {
      let inner = null;
      return {
        update: (u) => {
          if (inner) return inner.update && inner.update(u);
          if (finalizedHeight() < id) return;
          inner = {};
          renderBlock(root, arg, _query, alive).then((r) => (inner = r || {}));
        },
      };
    }
    return;
  }
  if (!alive()) return;
  document.title = `Block ${b.height} · UtilityNet Explorer`;
  const receipts = new Map((b.receipts || []).map((r) => [r.tx_hash, r]));
  const confirmations = h("span", { class: "num" });
  const setConf = () => {
    const depth = finalizedHeight() - b.height;
    confirmations.textContent = depth > 0 ? `${num(depth)} block${depth === 1 ? "" : "s"} on top` : "latest finalized block";
  };
  setConf();
  const nav = h(
    "span",
    { class: "page-nav" },
    b.height > 0 ? h("a", { href: "#/block/" + (b.height - 1), class: "btn", title: "Parent block" }, "←") : null,
    h("a", { href: "#/block/" + (b.height + 1), class: "btn", title: "Next block" }, "→")
  );
  const txs = b.transactions || [];
  mount(
    root,
    pageTitle("Block", h("span", { class: "num", data: { blockHeight: b.height } }, "#" + num(b.height)), nav),
    card(
      "Overview",
      kv([
        ["Finality", [badge("finalized", "good", { data: { blockFinality: "finalized" } }), " ", confirmations]],
        ["Hash", fullHash(b.hash)],
        ["Parent", b.height > 0 ? fullHash(b.parent, "block") : h("span", { class: "muted" }, "genesis")],
        ["Time", `${dateTime(b.timestamp_ms)} (${ago(b.timestamp_ms)})`],
        ["Proposer", fullHash(b.proposer, "account")],
        [
          "Epoch",
          [
            h("a", { href: "#/rewards?before=" + (blockEpoch(b) + 1), data: { blockEpoch: blockEpoch(b) } }, num(blockEpoch(b))),
            blockEpoch(b) !== b.epoch ? h("span", { class: "muted" }, ` (consensus round epoch ${num(b.epoch)})`) : null,
          ],
        ],
        ["View", num(b.view)],
        ["Transactions", num(b.tx_count)],
        ["State root", fullHash(b.state_root)],
        ["Tx root", fullHash(b.tx_root)],
        ["Beacon", fullHash(b.beacon)],
      ])
    ),
    card(
      `Transactions (${num(txs.length)})`,
      [
        table(
          [
            { label: "#", cell: (t) => num(txs.indexOf(t)), class: "muted num" },
            { label: "Hash", cell: (t) => hashLink("tx", t.hash, { head: 10, tail: 4 }) },
            { label: "Kind", cell: (t) => kindLabel(t.kind) },
            { label: "From", cell: (t) => hashLink("account", t.sender, { head: 6, tail: 4 }), class: "hide-sm" },
            { label: "To / subject", cell: txSummary, class: "hide-xs" },
            { label: "Fee", cell: (t) => unc(t.fee), class: "right num hide-sm" },
            {
              label: "Result",
              cell: (t) => {
                const r = receipts.get(t.hash);
                return r ? statusBadge(r.status, { title: r.reason || "" }) : h("span", { class: "muted", title: "receipts are kept for recent blocks; open the transaction" }, "—");
              },
              class: "right",
            },
          ],
          txs,
          "No transactions in this block."
        ),
      ]
    )
  );
  return { update: setConf };
}
