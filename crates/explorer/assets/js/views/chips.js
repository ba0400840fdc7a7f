// Chips: the registry list (filters, pages) and one chip.

import { batch, call, isNotFound } from "../rpc.js";
import { chipsTable } from "./account.js";
import { leaseLink } from "./market.js";
import {
  badge,
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
  table,
  tops,
  unc,
} from "../util.js";

const STATUSES = ["online", "unresponsive", "revoked"];

function select(label, value, options, onChange) {
  const s = h(
    "select",
    { "aria-label": label, onchange: (e) => onChange(e.target.value) },
    h("option", { value: "" }, "All"),
    options.map((o) => h("option", { value: o, selected: o === value }, o))
  );
  return h("label", { class: "filter" }, h("span", null, label), s);
}

/** #/chips?status=&model=&start= */
export async function renderChips(root, _arg, query, alive) {
  document.title = "Chips · UtilityNet Explorer";
  const status = STATUSES.includes(query.get("status")) ? query.get("status") : "";
  const model = (query.get("model") || "").slice(0, 64);
  const start = /^\d{1,15}$/.test(query.get("start") || "") ? Number(query.get("start")) : 0;
  const go = (changes) => {
    const q = new URLSearchParams({ status, model, ...changes });
    for (const [k, v] of [...q.entries()]) if (!v || v === "0") q.delete(k);
    const s = q.toString();
    location.hash = "#/chips" + (s ? "?" + s : "");
  };
  mount(root, pageTitle("Chips", "Registered chips"), loading());
  const params = { start, limit: 50 };
  if (status) params.status = status;
  if (model) params.model = model;
  const [chips, models] = await batch([
    ["unet_listChips", params],
    ["unet_listModels"],
  ]);
  if (!alive()) return;
  const modelNames = models.ok ? (models.value.models || []).map((m) => m.name) : [];
  const filters = h(
    "div",
    { class: "filters" },
    select("Status", status, STATUSES, (v) => go({ status: v, start: "" })),
    select("Models", model, modelNames, (v) => go({ model: v, start: "" }))
  );
  if (!chips.ok) {
    mount(root, pageTitle("Chips", "Registered chips"), filters, errorPanel("Cannot list chips", chips.error));
    return;
  }
  const r = chips.value;
  const list = r.chips || [];
  const pager = h(
    "div",
    { class: "pager" },
    start > 0 ? h("a", { class: "btn", href: "#/chips" + (status || model ? "?" + new URLSearchParams({ ...(status && { status }), ...(model && { model }) }) : "") }, "← First page") : h("span"),
    r.next !== null && r.next !== undefined ? h("a", { class: "btn", href: "#", onclick: (e) => (e.preventDefault(), go({ start: String(r.next) })) }, "Next →") : null
  );
  mount(
    root,
    pageTitle("Chips", "Registered chips", h("span", { class: "muted" }, `${num(r.total_registered)} registered on chain`)),
    card(null, [filters, chipsTable(list), pager])
  );
}

/** #/chip/<id> */
export async function renderChip(root, arg, _query, alive) {
  const id = hex32(arg);
  if (!id) {
    mount(root, errorPanel("Not a chip id", "A chip id is 64 hex digits."));
    return;
  }
  document.title = `Chip ${short(id)} · UtilityNet Explorer`;
  mount(root, loading("Loading chip"));
  let shown = null;
  let busy = false;
  const refresh = async (first) => {
    if (busy) return;
    busy = true;
    try {
      const c = await call("unet_getChip", [id]);
      const [rewards, leases] = await batch([
        ["unet_getRewards", { chip_id: id }],
        ["unet_listLeases", { provider: c.owner }],
      ]);
      if (!alive()) return;
      const lease = leases.ok ? (leases.value.leases || []).find((l) => l.status === "open" && (l.chips || []).includes(id)) || null : null;
      const key = JSON.stringify([c, rewards, lease]);
      if (key === shown) return;
      shown = key;
      const live = c.liveness || {};
      const blockAt = (x) => (x ? h("a", { href: "#/block/" + x, class: "num" }, "block " + num(x)) : h("span", { class: "muted" }, "none yet"));
      const recent = rewards.ok ? rewards.value.recent_rewards || [] : [];
      mount(
        root,
        pageTitle("Chip", h("span", { class: "mono" }, short(id, 10, 8)), statusBadge(c.status, { data: { chipStatus: c.status } })),
        h(
          "div",
          { class: "grid-2" },
          card(
            "Overview",
            kv([
              ["Chip id", fullHash(c.chip_id)],
              ["Status", statusBadge(c.status)],
              ["Owner", fullHash(c.owner, "account")],
              ["Model", h("a", { href: "#/chips?model=" + encodeURIComponent(c.model), class: "strong" }, c.model)],
              ["Rated compute", h("span", { class: "num", data: { chipCompute: c.compute_milli_tops ?? "" } }, c.compute_milli_tops == null ? "model not in the table" : tops(c.compute_milli_tops))],
              ["Serial", c.serial || h("span", { class: "muted" }, "—")],
              ["Registered", h("a", { href: "#/block/" + c.registered_height }, "block " + num(c.registered_height))],
              ["Registry index", num(c.index)],
            ])
          ),
          card(
            "Liveness",
            kv([
              ["Online since", live.online_since == null ? h("span", { class: "muted" }, "not online") : blockAt(live.online_since)],
              ["Last challenge", blockAt(live.last_challenge)],
              ["Last response", h("span", { data: { chipLastResponse: live.last_response ?? 0 } }, blockAt(live.last_response))],
              [
                "Pending challenge",
                live.pending_challenge
                  ? [badge("waiting", "warn"), " issued at ", blockAt(live.pending_challenge.height)]
                  : h("span", { class: "muted" }, "none"),
              ],
              ["Misses", `${num(live.misses)} in epoch ${num(live.misses_epoch)}`],
              ["Meaning", h("span", { class: "muted" }, "Block beacons challenge chips at random; the chip signs the challenge with its hardware key within the response window, or turns Unresponsive. Too many misses in an epoch forfeit its reward.")],
            ])
          )
        ),
        h(
          "div",
          { class: "grid-2" },
          card(
            "Rewards",
            rewards.ok
              ? [
                  kv([
                    ["Lifetime", h("span", { class: "num strong", data: { chipRewards: rewards.value.total_rewards } }, unc(rewards.value.total_rewards, 6))],
                    ["Settled through", rewards.value.settled_through_epoch == null ? h("span", { class: "muted" }, "no epoch yet") : "epoch " + num(rewards.value.settled_through_epoch)],
                  ]),
                  table(
                    [
                      { label: "Epoch", cell: (r) => h("a", { href: "#/rewards?before=" + (r.epoch + 1), class: "num" }, num(r.epoch)) },
                      { label: "Reward", cell: (r) => h("span", { title: unc(r.amount, 18) }, unc(r.amount, 6)), class: "right num" },
                    ],
                    recent,
                    "No reward paid yet: a chip earns for the blocks it is online, paid early in the next epoch."
                  ),
                ]
              : errorPanel("Cannot load rewards", rewards.error)
          ),
          card(
            "Rental",
            lease
              ? kv([
                  ["Lease", leaseLink(lease.id)],
                  ["Renter", hashLink("account", lease.renter, { head: 10, tail: 6 })],
                  ["Price", unc(lease.price_per_block, 18) + " per block"],
                  ["Until", "block " + num(lease.end)],
                ])
              : h("p", { class: "muted", data: { chipLease: "" } }, "Not leased. Owners offer chips on the market; leased chips keep earning rewards.")
          )
        ),
        card(
          "Attestation (POCI)",
          kv([
            ["Evidence kind", c.kind],
            ["Device key", h("span", { class: "mono break" }, c.device_key)],
            ["Vendor root", h("span", { class: "mono break" }, c.root)],
            [
              "Meaning",
              h(
                "span",
                { class: "muted" },
                "Proven genuine at registration: a certificate chain to a pinned vendor root, evidence bound to the owner and a recent block. ",
                "Revoked: governance revoked the chip or a certificate in its chain."
              ),
            ],
          ])
        )
      );
    } catch (e) {
      if (!alive() || !first) return;
      mount(root, errorPanel(isNotFound(e) ? "Chip not found" : "Cannot load chip", e));
    } finally {
      busy = false;
    }
  };
  await refresh(true);
  let last = Date.now();
  return {
    update(u) {
      if (!u.blocks.length || Date.now() - last < 3000) return;
      last = Date.now();
      refresh(false);
    },
  };
}
