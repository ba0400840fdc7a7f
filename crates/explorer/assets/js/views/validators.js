// Validators: the committee of the current and next epochs with their leader-election weight
// (`unet_getCommittee`), and every registered validator with its online attested compute
// (`unet_listValidators`). See docs/liveness.md, "Committees".

import { batch, isNotFound } from "../rpc.js";
import { card, errorPanel, h, hashLink, loading, mount, num, pageTitle, table, tops } from "../util.js";

function share(part, total) {
  const pct = total > 0n ? Number((part * 10000n) / total) / 100 : 0;
  const fill = h("span", { class: "bar-fill" });
  fill.style.width = pct.toFixed(2) + "%";
  return h("span", { class: "bar", title: pct.toFixed(2) + "% of the committee's weight" }, h("span", { class: "bar-track" }, fill), h("span", { class: "bar-label num" }, pct.toFixed(pct >= 10 || pct === 0 ? 0 : 1) + "%"));
}

function big(s) {
  try {
    return BigInt(s);
  } catch (_) {
    return 0n;
  }
}

/** A weight: milli-TOPS of attested compute, or 1 for a member kept for fault tolerance. */
function weight(w) {
  const n = big(w);
  return n <= 1n ? h("span", { title: "no attested compute: kept in the committee with weight 1 so it stays fault tolerant" }, num(Number(n))) : h("span", { title: num(Number(n)) + " milli-TOPS" }, tops(Number(n)));
}

export function committeeTable(c, { compact = false } = {}) {
  const total = big(c.total_weight);
  const members = [...(c.members || [])].sort((a, b) => (big(b.weight) > big(a.weight) ? 1 : big(b.weight) < big(a.weight) ? -1 : a.node_key < b.node_key ? -1 : 1));
  return table(
    [
      { label: "Account", cell: (m) => hashLink("account", m.account, { head: 8, tail: 4 }) },
      compact ? null : { label: "Node key", cell: (m) => h("span", { class: "mono", title: m.node_key }, m.node_key.slice(0, 10) + "…"), class: "hide-sm" },
      compact ? null : { label: "P2P", cell: (m) => h("span", { class: "mono" }, m.p2p_address), class: "hide-sm" },
      { label: "Weight", cell: (m) => h("span", { class: "num", data: { memberWeight: m.weight } }, weight(m.weight)), class: "right nowrap" },
      { label: "Share", cell: (m) => share(big(m.weight), total), class: "share hide-xs" },
    ].filter(Boolean),
    members,
    "No members."
  );
}

/** #/validators */
export async function renderValidators(root, _arg, _query, alive) {
  document.title = "Validators · UtilityNet Explorer";
  const body = h("div", { class: "stack" }, loading());
  mount(root, pageTitle("Validators", "Committees and registered validators"), body);
  let busy = false;
  let shown = null;
  const load = async () => {
    if (busy) return;
    busy = true;
    try {
      const [cur] = await batch([["unet_getCommittee", {}]]);
      const epoch = cur.ok ? cur.value.epoch : null;
      const more = await batch([
        ["unet_getCommittee", { epoch: (epoch ?? 0) + 1 }],
        ["unet_getCommittee", { epoch: (epoch ?? 0) + 2 }],
        ["unet_listValidators", { limit: 200 }],
      ]);
      if (!alive()) return;
      const key = JSON.stringify([cur, more]);
      if (key === shown) return;
      shown = key;
      const [next, after, vals] = more;
      const committeeCard = (r, label) => {
        if (!r.ok) return card(label, isNotFound(r.error) ? h("p", { class: "muted" }, r.error.message) : errorPanel("Cannot load committee", r.error));
        const c = r.value;
        return h(
          "div",
          { data: { committeeEpoch: c.epoch, committeeMembers: (c.members || []).length } },
          card(
            `${label}: epoch ${num(c.epoch)}`,
            [committeeTable(c), h("p", { class: "note" }, `${num((c.members || []).length)} members, total weight ${num(Number(c.total_weight))}. Leaders are drawn by weight (capped); votes count one per member.`)]
          )
        );
      };
      const list = vals.ok ? vals.value.validators || [] : [];
      mount(
        body,
        committeeCard(cur, "Current committee"),
        h("div", { class: "grid-2" }, committeeCard(next, "Next"), committeeCard(after, "Chosen for")),
        card(
          `Registered validators (${num(list.length)}${vals.ok && vals.value.next != null ? "+" : ""})`,
          vals.ok
            ? [
                table(
                  [
                    { label: "Account", cell: (v) => hashLink("account", v.account, { head: 8, tail: 4 }) },
                    { label: "Node key", cell: (v) => h("span", { class: "mono", title: v.node_key }, v.node_key.slice(0, 10) + "…"), class: "hide-sm" },
                    { label: "P2P", cell: (v) => h("span", { class: "mono" }, v.p2p_address), class: "hide-xs" },
                    { label: "Since", cell: (v) => h("a", { href: "#/block/" + v.registered_height, class: "num" }, num(v.registered_height)), class: "right hide-sm" },
                    { label: "Online compute", cell: (v) => h("span", { data: { validatorCompute: v.online_compute_milli_tops } }, tops(Number(v.online_compute_milli_tops))), class: "right num nowrap" },
                  ],
                  list,
                  "No validator registered."
                ),
                h("p", { class: "note" }, "At the first block of epoch X the committee of epoch X + 2 is chosen: registered validators ranked by their account's online attested compute."),
              ]
            : errorPanel("Cannot list validators", vals.error)
        )
      );
    } catch (e) {
      if (alive()) mount(body, errorPanel("Cannot load validators", e));
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
