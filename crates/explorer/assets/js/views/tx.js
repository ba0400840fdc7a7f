// One transaction: status (finalized / pending / rejected), receipt, and the signed body.

import { call, isNotFound } from "../rpc.js";
import { finalizedHeight } from "../live.js";
import {
  badge,
  baseUnits,
  card,
  errorPanel,
  fullHash,
  h,
  hashLink,
  hex32,
  kv,
  loading,
  mount,
  num,
  pageTitle,
  short,
  statusBadge,
  unc,
} from "../util.js";

async function load(hash) {
  const info = await call("unet_getTransaction", [hash]);
  let tx = info.transaction || null;
  let block = null;
  if (info.status === "finalized" && typeof info.height === "number") {
    try {
      block = await call("unet_getBlock", [info.height, true]);
      tx = (block.transactions || []).find((t) => t.hash === hash) || null;
    } catch (_) {
      // The receipt alone still tells the story.
    }
  }
  return { info, tx, block };
}

function amountRow(base) {
  return h("span", null, h("span", { class: "num strong", data: { txAmount: unc(base, 18) } }, unc(base, 18)), " ", h("span", { class: "muted" }, "(" + baseUnits(base) + ")"));
}

function bodyRows(t) {
  if (!t) return [];
  const rows = [
    ["Kind", badge(String(t.kind).replace(/_/g, " "), "neutral", { data: { txKind: t.kind } })],
    ["From", fullHash(t.sender, "account")],
  ];
  if (t.kind === "transfer") {
    rows.push(["To", fullHash(t.to, "account")], ["Amount", amountRow(t.amount)]);
  }
  if (t.chip_id) rows.push(["Chip", fullHash(t.chip_id, "chip")]);
  if (t.kind === "transfer_chip") rows.push(["New owner", fullHash(t.to, "account")]);
  if (t.kind === "register_chip") {
    rows.push(["Anchor", h("a", { href: "#/block/" + t.anchor_height }, "block " + num(t.anchor_height))]);
    rows.push(["Evidence", num(t.evidence_bytes) + " bytes (POCI, verified by every validator)"]);
  }
  if (t.kind === "govern") rows.push(["Action", String(t.action)], ["Approvals", num(t.approvals)]);
  if (t.offer_id != null) rows.push(["Offer", h("a", { href: "#/offers?from=" + t.offer_id }, "#" + num(t.offer_id))]);
  if (t.lease_id != null) rows.push(["Lease", h("a", { href: "#/lease/" + t.lease_id }, "#" + num(t.lease_id))]);
  if (t.terms) {
    const o = t.terms;
    rows.push(
      ["Model", `${o.model}${o.memory_mib ? `, ${num(o.memory_mib)} MiB` : ""}`],
      ["Chips offered", h("ul", { class: "plain-list" }, (o.chips || []).map((c) => h("li", null, hashLink("chip", c, { head: 16, tail: 8 }))))],
      ["Price", unc(o.price_per_block, 18) + " per chip per block"],
      ["Blocks", `${num(o.min_blocks)} to ${num(o.max_blocks)}`],
      ["Endpoint", h("span", { class: "mono break" }, o.endpoint)]
    );
  }
  if (Array.isArray(t.chips) && !t.terms) rows.push(["Chips", h("ul", { class: "plain-list" }, t.chips.map((c) => h("li", null, hashLink("chip", c, { head: 16, tail: 8 }))))]);
  if (t.deposit != null) rows.push(["Deposit", unc(t.deposit, 18)]);
  if (t.kind === "top_up" && t.amount != null) rows.push(["Top-up", unc(t.amount, 18)]);
  rows.push(["Fee offered", unc(t.fee, 18)], ["Nonce", num(t.nonce)], ["Chain id", num(t.chain_id)]);
  return rows;
}

function receiptRows(r) {
  if (!r) return [];
  return [
    [
      "Result",
      [
        statusBadge(r.status, { data: { txResult: r.status } }),
        r.code ? [" ", h("span", { class: "mono" }, r.code)] : null,
        r.reason ? h("div", { class: "muted" }, r.reason) : null,
      ],
    ],
    ["Fee burned", unc(r.fee_burned, 18)],
    ["Fee to proposer", unc(r.fee_to_proposer, 18)],
    ["Index in block", num(r.index)],
  ];
}

function confText(height) {
  const conf = finalizedHeight() - height;
  return conf > 0 ? ` · ${num(conf)} block${conf === 1 ? "" : "s"} on top` : "";
}

function view(hash, { info, tx, block }) {
  const status = info.status;
  const where =
    status === "finalized"
      ? [
          " in ",
          h("a", { href: "#/block/" + info.height, data: { txBlock: info.height } }, "block #" + num(info.height)),
          h("span", { class: "muted", data: { conf: info.height } }, confText(info.height)),
        ]
      : status === "pending"
        ? h("span", { class: "muted" }, " in this node's mempool, waiting for a block")
        : null;
  const rows = [
    ["Hash", fullHash(hash)],
    ["Status", [statusBadge(status, { data: { txStatus: status } }), where]],
  ];
  if (status === "rejected") {
    rows.push(["Check", h("span", { class: "mono" }, String(info.check))], ["Reason", String(info.reason || "")]);
  }
  if (status === "finalized") rows.push(["Block hash", fullHash(info.block, "block")]);
  if (block) rows.push(["Proposer", fullHash(block.proposer, "account")]);
  return [
    pageTitle("Transaction", h("span", { class: "mono" }, short(hash, 10, 8))),
    card("Overview", kv([...rows, ...receiptRows(info.receipt)])),
    tx
      ? card("Signed transaction", kv(bodyRows(tx)))
      : status === "finalized"
        ? card("Signed transaction", h("p", { class: "muted" }, "The block body is not available from this node."))
        : null,
  ];
}

/** #/tx/<hash> */
export async function renderTx(root, arg, _query, alive) {
  const hash = hex32(arg);
  if (!hash) {
    mount(root, errorPanel("Not a transaction hash", "Expected 64 hex digits, got " + JSON.stringify(arg).slice(0, 80)));
    return;
  }
  document.title = `Tx ${short(hash)} · UtilityNet Explorer`;
  mount(root, loading("Loading transaction"));
  let data = null;
  let busy = false;
  const refresh = async () => {
    if (busy) return;
    busy = true;
    try {
      data = await load(hash);
      if (alive()) mount(root, view(hash, data));
    } catch (e) {
      if (!alive()) return;
      if (isNotFound(e)) {
        mount(
          root,
          pageTitle("Transaction", h("span", { class: "mono" }, short(hash, 10, 8))),
          errorPanel("Transaction not found", "This node has not seen " + hash + ". If it was just sent, this page updates when it arrives."),
          h("span", { data: { txStatus: "unknown" } })
        );
      } else {
        mount(root, errorPanel("Cannot load transaction", e));
      }
    } finally {
      busy = false;
    }
  };
  await refresh();
  let last = Date.now();
  return {
    update(u) {
      if (!u.blocks.length || Date.now() - last < 1000) return;
      last = Date.now();
      if (!data || data.info.status !== "finalized") refresh();
      else for (const el of root.querySelectorAll("[data-conf]")) el.textContent = confText(Number(el.dataset.conf));
    },
  };
}
