// Rewards per epoch: each epoch's emission, what its chips were paid and what went to the
// treasury (docs/liveness.md). Settled epochs come from `unet_getEpochRewards {epoch}`, the
// epoch being paid from `unet_networkCompute.settling`, and new
// settlements arrive live as `epoch_settled` events.

import { batch, call } from "../rpc.js";
import { chain } from "../live.js";
import { badge, card, errorPanel, h, kv, loading, mount, num, pageTitle, table, unc, uncCompact } from "../util.js";

const PAGE = 20;

/** Settlements of `epochs` (numbers): one entry per epoch, `null` when not settled (yet). */
export async function settlements(epochs) {
  const replies = await batch(epochs.map((e) => ["unet_getEpochRewards", { epoch: e }]));
  return replies.map((r) => (r.ok && r.value.settled && r.value.settlement ? r.value.settlement : null));
}

/** Blocks of epoch `e`: [first, last]. */
export function epochRange(e, length) {
  return [e * length, (e + 1) * length - 1];
}

/** The epoch being accrued: a progress bar through its blocks. */
export function epochProgress(net, height) {
  const L = Number(net.epoch_length) || 1;
  const into = Math.max(0, Math.min(L, height - net.epoch * L + 1));
  const pct = (100 * into) / L;
  const fill = h("span", { class: "bar-fill" });
  fill.style.width = pct.toFixed(2) + "%";
  return h(
    "span",
    { class: "bar", title: `block ${num(into)} of ${num(L)} in epoch ${num(net.epoch)}` },
    h("span", { class: "bar-track" }, fill),
    h("span", { class: "bar-label num" }, `${num(into)}/${num(L)}`)
  );
}

/** The settlement in progress (`unet_networkCompute.settling`), as text. */
export function settlingText(s) {
  if (!s) return h("span", { class: "muted" }, "nothing being paid");
  const total = Number(s.end) || 0;
  const done = Math.min(Number(s.cursor) || 0, total);
  return h("span", null, `epoch ${num(s.epoch)}: ${num(done)} of ${num(total)} chips settled, ${unc(s.paid, 4)} of ${unc(s.emission, 4)} paid`);
}

function rewardsTable(rows, current, L) {
  return table(
    [
      { label: "Epoch", cell: (r) => h("span", { class: "num strong", data: { epoch: r.epoch } }, num(r.epoch)) },
      { label: "Blocks", cell: (r) => { const [a, b] = epochRange(r.epoch, L); return h("span", { class: "num" }, h("a", { href: "#/block/" + a }, num(a)), "–", h("a", { href: "#/block/" + b }, num(b))); }, class: "hide-sm nowrap" },
      { label: "Emission", cell: (r) => (r.s ? h("span", { title: unc(r.s.emission, 18) }, uncCompact(r.s.emission)) : "—"), class: "right num nowrap" },
      { label: "Paid to chips", cell: (r) => (r.s ? h("span", { title: unc(r.s.paid, 18), data: { epochPaid: r.s.paid } }, uncCompact(r.s.paid)) : "—"), class: "right num nowrap" },
      { label: "To treasury", cell: (r) => (r.s ? h("span", { title: unc(r.s.to_treasury, 18) }, uncCompact(r.s.to_treasury)) : "—"), class: "right num nowrap hide-xs" },
      { label: "Forfeited", cell: (r) => (r.s ? uncCompact(r.s.forfeited) : "—"), class: "right num nowrap hide-sm" },
      { label: "Chips paid", cell: (r) => (r.s ? num(r.s.chips_paid) : "—"), class: "right num hide-sm" },
      {
        label: "",
        cell: (r) =>
          r.s
            ? badge("settled", "good", { data: { epochSettled: r.epoch } })
            : r.epoch === current
              ? badge("accruing", "neutral")
              : badge("settling", "warn"),
        class: "right",
      },
    ],
    rows,
    "No epoch has ended yet."
  );
}

/** #/rewards?before=E : epochs below E (default: the current one included), newest first. */
export async function renderRewards(root, _arg, query, alive) {
  document.title = "Rewards · UtilityNet Explorer";
  const pinned = /^\d{1,15}$/.test(query.get("before") || "");
  const head = h("div", null, loading());
  const body = h("div", null);
  const pager = h("div", { class: "pager" });
  mount(root, pageTitle("Rewards", "UNC emitted to chip owners, per epoch"), head, card("Epochs", [body, pager]));
  let busy = false;
  let shown = null;
  const load = async () => {
    if (busy) return;
    busy = true;
    try {
      const net = await call("unet_networkCompute");
      if (!alive()) return;
      const L = Number(net.epoch_length) || 1;
      const top = pinned ? Number(query.get("before")) - 1 : net.epoch;
      const epochs = [];
      for (let e = Math.min(top, net.epoch); e >= 0 && epochs.length < PAGE; e--) epochs.push(e);
      const done = await settlements(epochs.filter((e) => e < net.epoch));
      if (!alive()) return;
      const byEpoch = new Map(epochs.filter((e) => e < net.epoch).map((e, i) => [e, done[i]]));
      const rows = epochs.map((e) => ({ epoch: e, s: byEpoch.get(e) || null }));
      const key = JSON.stringify([net.epoch, net.settling, rows, net.online_compute_milli_tops]);
      if (key === shown) return;
      shown = key;
      const settledCount = rows.filter((r) => r.s).length;
      mount(
        head,
        h(
          "div",
          { class: "grid-2" },
          card(
            "Current epoch",
            kv([
              ["Epoch", h("span", { class: "num strong" }, num(net.epoch))],
              ["Progress", epochProgress(net, net.height)],
              ["Emission", [h("span", { class: "num" }, unc(net.epoch_emission, 4)), h("span", { class: "muted" }, " if any chip is online")]],
              ["Epoch length", num(L) + " blocks"],
              ["Online now", `${num(net.online_chips)} chips`],
            ])
          ),
          card(
            "Payout",
            kv([
              ["Being paid", settlingText(net.settling)],
              ["Last settled", chain.settled.length ? `epoch ${num(chain.settled[0].epoch)} at block ${num(chain.settled[0].height)}` : settledCount ? `epoch ${num(rows.find((r) => r.s).epoch)}` : "none yet"],
              ["Rule", h("span", { class: "muted" }, "Each chip's owner gets emission × chip weight ÷ total weight, where weight is rated compute × online blocks; dust and forfeits go to the treasury.")],
            ])
          )
        )
      );
      mount(body, h("div", { data: { settledEpochs: settledCount } }, rewardsTable(rows, net.epoch, L)));
      const lowest = epochs.length ? epochs[epochs.length - 1] : 0;
      mount(
        pager,
        pinned ? h("a", { href: "#/rewards", class: "btn" }, "← Latest") : h("span", { class: "muted" }, "Following new epochs"),
        lowest > 0 ? h("a", { href: "#/rewards?before=" + lowest, class: "btn" }, "Older →") : null
      );
    } catch (e) {
      if (alive()) mount(body, errorPanel("Cannot load rewards", e));
    } finally {
      busy = false;
    }
  };
  await load();
  let last = Date.now();
  return {
    update(u) {
      if (pinned) return;
      if (!(u.settled && u.settled.length) && (!u.blocks.length || Date.now() - last < 3000)) return;
      last = Date.now();
      load();
    },
  };
}
