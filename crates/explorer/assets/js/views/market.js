// The compute rental market (docs/market.md): offers (`unet_listOffers`), leases
// (`unet_getLease`, `unet_listLeases`) and one lease.

import { batch, call, isNotFound } from "../rpc.js";
import { badge, card, errorPanel, fullHash, h, hashLink, kv, loading, mount, num, pageTitle, table, unc } from "../util.js";

const PAGE = 50;

export const leaseLink = (id) => h("a", { href: "#/lease/" + id, class: "num strong", data: { leaseId: id } }, "#" + num(id));

/** Price per chip per block, in UNC. */
function price(base) {
  return h("span", { class: "num", title: base + " base units per chip per block" }, unc(base, 18));
}

export function leaseBadge(l, attrs = {}) {
  return badge(l.status, l.status === "open" ? "good" : "neutral", { title: l.close_reason ? l.close_reason.replace(/_/g, " ") : "", ...attrs });
}

export function offersTable(offers) {
  return table(
    [
      { label: "Offer", cell: (o) => h("span", { class: "num strong", data: { offerId: o.id } }, "#" + num(o.id)) },
      { label: "Provider", cell: (o) => hashLink("account", o.provider, { head: 6, tail: 4 }), class: "hide-sm" },
      { label: "Model", cell: (o) => h("span", { class: "strong", data: { offerModel: o.model } }, o.model) },
      { label: "Free / chips", cell: (o) => h("span", { class: "num", title: "chips Online and not leased / chips offered" }, `${num((o.free_chips || []).length)} / ${num((o.chips || []).length)}`), class: "right nowrap" },
      { label: "Price / chip / block", cell: (o) => price(o.price_per_block), class: "right nowrap" },
      { label: "Blocks", cell: (o) => `${num(o.min_blocks)}–${num(o.max_blocks)}`, class: "right num hide-sm nowrap" },
      { label: "Endpoint", cell: (o) => h("span", { class: "mono break" }, o.endpoint), class: "hide-xs" },
      { label: "Memory", cell: (o) => (o.memory_mib ? num(o.memory_mib) + " MiB" : "—"), class: "right num hide-sm nowrap" },
      { label: "Tags", cell: (o) => (o.tags || []).map((t) => badge(t, "neutral")), class: "hide-sm" },
    ],
    offers,
    "No offers."
  );
}

export function leasesTable(leases, { who = true } = {}) {
  return table(
    [
      { label: "Lease", cell: (l) => leaseLink(l.id) },
      { label: "Offer", cell: (l) => h("span", { class: "num" }, "#" + num(l.offer_id)), class: "hide-xs" },
      who ? { label: "Renter", cell: (l) => hashLink("account", l.renter, { head: 6, tail: 4 }), class: "hide-sm" } : null,
      who ? { label: "Provider", cell: (l) => hashLink("account", l.provider, { head: 6, tail: 4 }), class: "hide-sm" } : null,
      { label: "Chips", cell: (l) => num((l.chips || []).length), class: "right num" },
      { label: "Price / chip / block", cell: (l) => price(l.price_per_block), class: "right nowrap hide-xs" },
      { label: "Blocks", cell: (l) => `${num(l.start)}–${num(l.closed_at ?? l.end)}`, class: "right num nowrap hide-sm" },
      { label: "Paid", cell: (l) => unc(l.total_paid, 4), class: "right num nowrap" },
      { label: "Status", cell: (l) => leaseBadge(l), class: "right" },
    ].filter(Boolean),
    leases,
    "No leases."
  );
}

/** #/offers?from=N */
export async function renderOffers(root, _arg, query, alive) {
  document.title = "Offers · UtilityNet Explorer";
  const from = /^\d{1,15}$/.test(query.get("from") || "") ? Number(query.get("from")) : 0;
  const body = h("div", null, loading());
  mount(root, pageTitle("Market", "Compute offers"), body);
  let busy = false;
  let shown = null;
  const load = async () => {
    if (busy) return;
    busy = true;
    try {
      const r = await call("unet_listOffers", { from, limit: PAGE });
      if (!alive()) return;
      const key = JSON.stringify(r.offers);
      if (key === shown) return;
      shown = key;
      const offers = r.offers || [];
      mount(
        body,
        card(
          `Offers${from ? " from #" + num(from) : ""}`,
          [
            h("div", { data: { offers: offers.length } }, offersTable(offers)),
            h("p", { class: "note" }, "Providers offer chips they own (all Online) at a price per chip per block; a renter deposits into escrow and the provider is paid as blocks pass. Withdrawn offers are not listed."),
            h(
              "div",
              { class: "pager" },
              from > 0 ? h("a", { class: "btn", href: "#/offers" }, "← First page") : h("a", { class: "btn", href: "#/leases" }, "Leases →"),
              r.next !== null && r.next !== undefined ? h("a", { class: "btn", href: "#/offers?from=" + r.next }, "Next →") : null
            ),
          ]
        )
      );
    } catch (e) {
      if (alive()) mount(body, errorPanel("Cannot list offers", e));
    } finally {
      busy = false;
    }
  };
  await load();
  let last = Date.now();
  return {
    update(u) {
      if (!u.blocks.length || Date.now() - last < 3000) return;
      last = Date.now();
      load();
    },
  };
}

async function leaseExists(id) {
  try {
    await call("unet_getLease", { id });
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/** How many leases were ever opened. Lease ids count up from 0 and leases are never deleted,
 *  so this probes powers of two in one batch, then bisects (a few calls). */
export async function leaseCount() {
  const probes = [];
  for (let k = 0; k < 48; k++) probes.push(2 ** k - 1);
  const replies = await batch(probes.map((id) => ["unet_getLease", { id }]));
  let lo = -1; // highest id known to exist
  let hi = null; // lowest id known to be missing
  for (let i = 0; i < probes.length; i++) {
    const r = replies[i];
    if (r.ok) lo = probes[i];
    else if (isNotFound(r.error)) {
      hi = probes[i];
      break;
    } else throw r.error;
  }
  if (hi === null) return lo + 1;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (await leaseExists(mid)) lo = mid;
    else hi = mid;
  }
  return lo + 1;
}

/** #/leases?before=N : the newest leases (ids below N). */
export async function renderLeases(root, _arg, query, alive) {
  document.title = "Leases · UtilityNet Explorer";
  const pinned = /^\d{1,15}$/.test(query.get("before") || "");
  const body = h("div", null, loading());
  mount(root, pageTitle("Market", "Leases"), body);
  let busy = false;
  let shown = null;
  const load = async () => {
    if (busy) return;
    busy = true;
    try {
      const count = await leaseCount();
      const top = pinned ? Math.min(Number(query.get("before")), count) : count;
      const ids = [];
      for (let id = top - 1; id >= 0 && ids.length < PAGE; id--) ids.push(id);
      const replies = await batch(ids.map((id) => ["unet_getLease", { id }]));
      if (!alive()) return;
      const leases = replies.filter((r) => r.ok).map((r) => r.value);
      const key = JSON.stringify([count, leases.map((l) => [l.id, l.status, l.total_paid])]);
      if (key === shown) return;
      shown = key;
      const open = leases.filter((l) => l.status === "open").length;
      const lowest = ids.length ? ids[ids.length - 1] : 0;
      mount(
        body,
        card(
          `Leases (${num(count)} opened)`,
          [
            h("div", { data: { leases: leases.length } }, leasesTable(leases)),
            h("p", { class: "note" }, `${num(open)} of these are open. A lease pays its provider every settlement period from the renter's deposit, and closes when the deposit runs out, at its end, or when either side closes it after the minimum.`),
            h(
              "div",
              { class: "pager" },
              pinned ? h("a", { class: "btn", href: "#/leases" }, "← Latest") : h("a", { class: "btn", href: "#/offers" }, "← Offers"),
              lowest > 0 ? h("a", { class: "btn", href: "#/leases?before=" + lowest }, "Older →") : null
            ),
          ]
        )
      );
    } catch (e) {
      if (alive()) mount(body, errorPanel("Cannot list leases", e));
    } finally {
      busy = false;
    }
  };
  await load();
  let last = Date.now();
  return {
    update(u) {
      if (!u.blocks.length || Date.now() - last < 4000) return;
      last = Date.now();
      load();
    },
  };
}

/** #/lease/<id> */
export async function renderLease(root, arg, _query, alive) {
  if (!/^\d{1,15}$/.test(arg || "")) {
    mount(root, errorPanel("Not a lease id", "A lease id is a number."));
    return;
  }
  const id = Number(arg);
  document.title = `Lease ${id} · UtilityNet Explorer`;
  mount(root, loading("Loading lease"));
  let shown = null;
  let busy = false;
  const refresh = async (first) => {
    if (busy) return;
    busy = true;
    try {
      const l = await call("unet_getLease", { id });
      if (!alive()) return;
      const key = JSON.stringify({ ...l, height: 0 });
      if (key === shown) return;
      shown = key;
      mount(
        root,
        pageTitle("Lease", h("span", { class: "num" }, "#" + num(l.id)), leaseBadge(l, { data: { leaseStatus: l.status } })),
        card(
          "Overview",
          kv([
            ["Status", [h("span", { class: "strong" }, l.status), l.close_reason ? h("span", { class: "muted" }, ` (${l.close_reason.replace(/_/g, " ")} at block ${num(l.closed_at)})`) : null]],
            ["Offer", "#" + num(l.offer_id)],
            ["Renter", fullHash(l.renter, "account")],
            ["Provider", fullHash(l.provider, "account")],
            ["Endpoint", h("span", { class: "mono break" }, l.endpoint)],
            ["Price", [price(l.price_per_block), h("span", { class: "muted" }, " per chip per block")]],
            ["Blocks", [h("a", { href: "#/block/" + l.start }, num(l.start)), " to ", num(l.end), h("span", { class: "muted" }, ` (minimum until ${num(l.min_end)})`)]],
          ])
        ),
        card(
          "Payment",
          kv([
            ["Deposit left", unc(l.deposit, 18)],
            ["Paid to provider", unc(l.total_paid, 18)],
            ["Owed now", [unc(l.owed_now, 18), h("span", { class: "muted" }, " (served, not yet settled)")]],
            ["Paid until block", num(l.paid_until)],
            ["Next settlement", l.next_settlement == null ? h("span", { class: "muted" }, "—") : "block " + num(l.next_settlement)],
            ["State at", "block " + num(l.height)],
          ])
        ),
        card(`Chips (${num((l.chips || []).length)})`, h("ul", { class: "plain-list" }, (l.chips || []).map((c) => h("li", null, hashLink("chip", c, { head: 16, tail: 8 })))))
      );
    } catch (e) {
      if (alive() && first) mount(root, errorPanel(isNotFound(e) ? "Lease not found" : "Cannot load lease", e));
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
