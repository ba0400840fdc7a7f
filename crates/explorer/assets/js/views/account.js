// One account: balance, nonce, and the chips it owns.

import { batch } from "../rpc.js";
import { leasesTable } from "./market.js";

const REWARD_EPOCHS = 6;
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
  table,
  tops,
  unc,
} from "../util.js";

export function chipsTable(chips, { owner = true } = {}) {
  return table(
    [
      { label: "Chip", cell: (c) => hashLink("chip", c.chip_id, { head: 8, tail: 4 }) },
      { label: "Model", cell: (c) => h("a", { href: "#/models", class: "strong" }, c.model) },
      owner ? { label: "Owner", cell: (c) => hashLink("account", c.owner, { head: 6, tail: 4 }), class: "hide-sm" } : null,
      { label: "Status", cell: (c) => statusBadge(c.status) },
      { label: "Compute", cell: (c) => tops(c.compute_milli_tops), class: "right num nowrap" },
      { label: "Since", cell: (c) => h("a", { href: "#/block/" + c.registered_height, class: "num" }, num(c.registered_height)), class: "right hide-xs" },
    ].filter(Boolean),
    chips,
    "No chips."
  );
}

/** #/account/<address> */
export async function renderAccount(root, arg, _query, alive) {
  const address = hex32(arg);
  if (!address) {
    mount(root, errorPanel("Not an address", "An address is an ed25519 public key: 64 hex digits."));
    return;
  }
  document.title = `Account ${short(address)} · UtilityNet Explorer`;
  mount(root, loading("Loading account"));
  let busy = false;
  let shown = null;
  const refresh = async (first) => {
    if (busy) return;
    busy = true;
    try {
      const [acct, chips, rented, provided, lastReward] = await batch([
        ["unet_getAccount", [address]],
        ["unet_listChips", { owner: address, limit: 200 }],
        ["unet_listLeases", { renter: address }],
        ["unet_listLeases", { provider: address }],
        ["unet_getRewards", { owner: address }],
      ]);
      // The owner's rewards in the last REWARD_EPOCHS finished epochs.
      let rewards = [];
      if (lastReward.ok) {
        const cur = lastReward.value.current_epoch;
        const epochs = [];
        for (let e = cur - 2; e >= 0 && epochs.length < REWARD_EPOCHS - 1; e--) epochs.push(e);
        const more = await batch(epochs.map((e) => ["unet_getRewards", { owner: address, epoch: e }]));
        rewards = [lastReward].concat(more).filter((r) => r.ok && r.value.epoch < cur).map((r) => r.value);
      }
      if (!alive()) return;
      if (!acct.ok) {
        mount(root, errorPanel("Cannot load account", acct.error));
        return;
      }
      const a = acct.value;
      const list = chips.ok ? chips.value.chips || [] : [];
      const online = list.filter((c) => c.status === "online");
      const milli = online.reduce((s, c) => s + (Number(c.compute_milli_tops) || 0), 0);
      const leases = [...(rented.ok ? rented.value.leases || [] : []), ...(provided.ok ? provided.value.leases || [] : [])]
        .filter((l, i, all) => all.findIndex((x) => x.id === l.id) === i)
        .sort((x, y) => y.id - x.id);
      const key = JSON.stringify([a.balance, a.nonce, list, chips.ok, leases, rewards.map((r) => [r.epoch, r.amount, r.epoch_settled])]);
      if (key === shown) return;
      shown = key;
      const fresh = a.nonce === 0 && a.balance === "0" && !list.length;
      mount(
        root,
        pageTitle("Account", h("span", { class: "mono" }, short(address, 10, 8))),
        card(
          "Overview",
          kv([
            ["Address", fullHash(address)],
            ["Balance", [h("span", { class: "num strong", data: { accountBalance: a.balance } }, unc(a.balance, 18)), " ", h("span", { class: "muted" }, "(" + baseUnits(a.balance) + ")")]],
            ["Nonce", [num(a.nonce), h("span", { class: "muted" }, a.nonce === 1 ? " transaction sent" : " transactions sent")]],
            ["Chips", `${num(list.length)} registered, ${num(online.length)} online`],
            ["Rated compute online", tops(milli)],
            ["State at", h("a", { href: "#/block/" + a.height }, "block " + num(a.height))],
            fresh ? ["Note", h("span", { class: "muted" }, "This account has never been funded and has sent nothing.")] : null,
          ])
        ),
        card(
          `Chips (${num(list.length)})`,
          chips.ok ? chipsTable(list, { owner: false }) : errorPanel("Cannot list chips", chips.error)
        ),
        h(
          "div",
          { class: "grid-2" },
          card(
            "Rewards",
            lastReward.ok
              ? table(
                  [
                    { label: "Epoch", cell: (r) => h("a", { href: "#/rewards?before=" + (r.epoch + 1), class: "num" }, num(r.epoch)) },
                    { label: "Earned", cell: (r) => h("span", { class: "num", title: unc(r.amount, 18), data: { ownerReward: r.amount } }, unc(r.amount, 6)), class: "right" },
                    { label: "", cell: (r) => (r.epoch_settled ? badge("settled", "good") : badge("being paid", "warn")), class: "right" },
                  ],
                  rewards,
                  "No epoch has ended yet."
                )
              : errorPanel("Cannot load rewards", lastReward.error)
          ),
          card(
            `Leases (${num(leases.length)})`,
            rented.ok && provided.ok
              ? [leasesTable(leases), h("p", { class: "note" }, "As renter or provider.")]
              : errorPanel("Cannot list leases", (rented.ok ? provided : rented).error)
          )
        ),
        card(
          "History",
          h(
            "p",
            { class: "muted" },
            "The node does not index transactions by account yet, so the history of an account cannot be listed. ",
            "Its nonce counts the transactions it has sent; search a transaction hash to see one."
          )
        )
      );
    } catch (e) {
      if (alive() && first) mount(root, errorPanel("Cannot load account", e));
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
