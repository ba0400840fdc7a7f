// Search: a block height goes to the block, "lease 3" to the lease; 64 hex digits are looked
// up, in one batch, as a transaction, a block hash, a chip id and an account address (in that
// order of preference).

import { batch } from "../rpc.js";
import { card, errorPanel, h, hex32, loading, mount, num, pageTitle, short, unc } from "../util.js";

/**
 * Resolves a query to `{matches: [{kind, href, label, detail}], note}`; at most one match of
 * each kind. An address that was never used still matches when nothing else does.
 */
export async function resolve(raw) {
  const q = String(raw).trim();
  const lower = q.toLowerCase().replace(/^0x/, "");
  if (/^#?\d{1,15}$/.test(q)) {
    const height = Number(q.replace("#", ""));
    return { matches: [{ kind: "block", href: "#/block/" + height, label: "Block #" + num(height), detail: "by height" }] };
  }
  const leaseQ = /^lease\s*[:#]?\s*(\d{1,15})$/i.exec(q);
  if (leaseQ) {
    const n = Number(leaseQ[1]);
    return { matches: [{ kind: "lease", href: "#/lease/" + n, label: "Lease #" + num(n), detail: "by id" }] };
  }
  const id = hex32(q);
  if (!id) {
    const note = /^[0-9a-f]+$/.test(lower)
      ? `${lower.length} hex digits: hashes, addresses and chip ids have 64.`
      : "Search takes a block height, a lease (\"lease 3\"), or 64 hex digits: a block or transaction hash, an account address or a chip id.";
    return { matches: [], note };
  }
  const [tx, block, chip, acct, owned] = await batch([
    ["unet_getTransaction", [id]],
    ["unet_getBlock", [id, false]],
    ["unet_getChip", [id]],
    ["unet_getAccount", [id]],
    ["unet_listChips", { owner: id, limit: 1 }],
  ]);
  const matches = [];
  if (tx.ok) matches.push({ kind: "transaction", href: "#/tx/" + id, label: "Transaction " + short(id), detail: tx.value.status + (tx.value.height != null ? " at height " + num(tx.value.height) : "") });
  if (block.ok) matches.push({ kind: "block", href: "#/block/" + block.value.height, label: "Block #" + num(block.value.height), detail: "by hash" });
  if (chip.ok) matches.push({ kind: "chip", href: "#/chip/" + id, label: "Chip " + short(id), detail: `${chip.value.model}, ${chip.value.status}` });
  const chips = owned.ok ? (owned.value.chips || []).length : 0;
  const used = acct.ok && (acct.value.balance !== "0" || acct.value.nonce > 0 || chips > 0);
  if (used) matches.push({ kind: "account", href: "#/account/" + id, label: "Account " + short(id), detail: unc(acct.value.balance) + (chips ? " · owns chips" : "") });
  if (!matches.length && acct.ok) {
    matches.push({ kind: "account", href: "#/account/" + id, label: "Account " + short(id), detail: "never used" });
  }
  const note = matches.length ? null : "No transaction, block, chip or account has this value (and it is not a valid ed25519 address).";
  return { matches, note };
}

/** #/search/<query> : the matches, when there is not exactly one. */
export async function renderSearch(root, arg, _query, alive) {
  document.title = "Search · UtilityNet Explorer";
  const q = String(arg || "").slice(0, 200);
  mount(root, pageTitle("Search", h("span", { class: "mono break" }, q || "—")), loading("Searching"));
  let res;
  try {
    res = await resolve(q);
  } catch (e) {
    if (alive()) mount(root, pageTitle("Search", h("span", { class: "mono break" }, q)), errorPanel("Search failed", e));
    return;
  }
  if (!alive()) return;
  mount(
    root,
    pageTitle("Search", h("span", { class: "mono break" }, q)),
    card(
      res.matches.length ? `${res.matches.length} match${res.matches.length === 1 ? "" : "es"}` : "No match",
      res.matches.length
        ? h(
            "ul",
            { class: "matches", data: { matches: res.matches.map((m) => m.kind).join(",") } },
            res.matches.map((m) => h("li", null, h("a", { href: m.href, class: "strong" }, m.label), h("span", { class: "badge badge-neutral" }, m.kind), h("span", { class: "muted" }, m.detail)))
          )
        : h("p", { class: "muted", data: { matches: "" } }, res.note)
    )
  );
}
