// Models: the chain's model table (rated compute per chip) with a per-model breakdown of the
// registered chips, plus the pinned vendor roots and governance.

import { call } from "../rpc.js";
import { badge, card, errorPanel, h, kv, loading, mount, num, pageTitle, table, tops } from "../util.js";

const PAGE = 200;
const MAX_PAGES = 50;

/** Every registered chip (up to MAX_PAGES pages): `{chips, complete}`. */
async function allChips() {
  const chips = [];
  let start = 0;
  for (let i = 0; i < MAX_PAGES; i++) {
    const r = await call("unet_listChips", { start, limit: PAGE });
    chips.push(...(r.chips || []));
    if (r.next === null || r.next === undefined) return { chips, complete: true };
    start = r.next;
  }
  return { chips, complete: false };
}

function breakdown(models, chips) {
  const rows = new Map(models.map((m) => [m.name, { ...m, registered: 0, online: 0, unresponsive: 0, revoked: 0, onlineMilli: 0 }]));
  for (const c of chips) {
    if (!rows.has(c.model)) rows.set(c.model, { name: c.model, compute_milli_tops: null, registered: 0, online: 0, unresponsive: 0, revoked: 0, onlineMilli: 0, retired: true });
    const r = rows.get(c.model);
    r.registered += 1;
    if (c.status in r) r[c.status] += 1;
    if (c.status === "online") r.onlineMilli += Number(c.compute_milli_tops) || 0;
  }
  return [...rows.values()];
}

function shareBar(part, total) {
  const pct = total > 0 ? (100 * part) / total : 0;
  const fill = h("span", { class: "bar-fill" });
  fill.style.width = pct.toFixed(2) + "%";
  return h("span", { class: "bar", title: pct.toFixed(1) + "% of online compute" }, h("span", { class: "bar-track" }, fill), h("span", { class: "bar-label num" }, pct.toFixed(pct >= 10 || pct === 0 ? 0 : 1) + "%"));
}

/** #/models */
export async function renderModels(root, _arg, _query, alive) {
  document.title = "Models · UtilityNet Explorer";
  mount(root, pageTitle("Models", "Chip models and their registered chips"), loading());
  let models;
  let scan;
  try {
    [models, scan] = await Promise.all([call("unet_listModels"), allChips()]);
  } catch (e) {
    if (alive()) mount(root, errorPanel("Cannot load models", e));
    return;
  }
  if (!alive()) return;
  const rows = breakdown(models.models || [], scan.chips);
  const totalOnline = rows.reduce((s, r) => s + r.onlineMilli, 0);
  const totalChips = rows.reduce((s, r) => s + r.registered, 0);
  mount(
    root,
    pageTitle("Models", "Chip models and their registered chips"),
    card(
      "Models",
      [
        table(
          [
            { label: "Model", cell: (r) => h("a", { href: "#/chips?model=" + encodeURIComponent(r.name), class: "strong" }, r.name, r.retired ? [" ", badge("not in table", "warn")] : null) },
            { label: "Rated / chip", cell: (r) => tops(r.compute_milli_tops ?? NaN), class: "right num" },
            { label: "Chips", cell: (r) => num(r.registered), class: "right num" },
            { label: "Online", cell: (r) => num(r.online), class: "right num" },
            { label: "Unresp.", cell: (r) => num(r.unresponsive), class: "right num hide-sm" },
            { label: "Revoked", cell: (r) => num(r.revoked), class: "right num hide-sm" },
            { label: "Online compute", cell: (r) => tops(r.onlineMilli), class: "right num" },
            { label: "Share", cell: (r) => shareBar(r.onlineMilli, totalOnline), class: "hide-xs share" },
          ],
          rows,
          "The chain has no models."
        ),
        h(
          "p",
          { class: "note", data: { modelsChips: totalChips } },
          `${num(totalChips)} chip${totalChips === 1 ? "" : "s"} counted, ${tops(totalOnline)} online in total.`,
          scan.complete ? "" : ` Only the first ${num(PAGE * MAX_PAGES)} registry entries were scanned.`,
          " Models and their ratings are set by governance."
        ),
      ]
    ),
    h(
      "div",
      { class: "grid-2" },
      card(
        "Pinned vendor roots",
        table(
          [
            { label: "Kind", cell: (r) => r.kind },
            { label: "Fingerprint (SHA-256)", cell: (r) => h("span", { class: "mono", title: r.fingerprint }, r.fingerprint.slice(0, 16) + "…") },
            { label: "", cell: (r) => (r.devnet_only ? badge("devnet only", "warn") : badge("production", "good")), class: "right" },
          ],
          models.roots || [],
          "No roots pinned."
        )
      ),
      card(
        "Governance",
        kv([
          ["Members", num((models.governance || []).length)],
          ["Threshold", num(models.governance_threshold)],
          ["Actions applied", num(models.governance_nonce)],
          ["Devnet roots accepted", models.allow_devnet_roots ? "yes" : "no"],
          ["Chips ever registered", num(models.chips_registered)],
        ])
      )
    )
  );
}
