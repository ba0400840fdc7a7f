//! The table of request methods: the one place a method is declared.
//!
//! Each row names the method's [`Method`] variant, its wire name, its parameter and result
//! types, and the names its positional params take. The macro turns the table into the enum,
//! [`Method::ALL`], and one marker type per method in [`calls`] implementing [`crate::Call`].

use crate::{chain::*, chips::*, market::*, params::*, rewards::*, NoParams};

macro_rules! methods {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $name:literal ($params:ty) -> $result:ty, [$($pos:literal),*];
    )*) => {
        /// A request method of the node API.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Method {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Method {
            /// Every request method, in documentation order.
            pub const ALL: &'static [Method] = &[$(Method::$variant,)*];

            /// The wire name (`unet_getChip`, ...).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Method::$variant => $name,)*
                }
            }

            /// The names of the params in their positional order.
            pub const fn positional(self) -> &'static [&'static str] {
                match self {
                    $(Method::$variant => &[$($pos),*],)*
                }
            }

            /// Decodes `params` as this method's and drops them: whether a request's params
            /// would be accepted (what the fuzz target runs on arbitrary input).
            pub fn validate_params(self, params: serde_json::Value) -> Result<(), crate::RpcError> {
                match self {
                    $(Method::$variant => crate::decode_params::<calls::$variant>(params).map(drop),)*
                }
            }

            /// The method of a wire name.
            pub fn from_name(name: &str) -> Option<Method> {
                match name {
                    $($name => Some(Method::$variant),)*
                    _ => None,
                }
            }
        }

        /// One marker type per method, implementing [`crate::Call`].
        pub mod calls {
            use super::*;
            $(
                $(#[doc = $doc])*
                #[derive(Clone, Copy, Debug)]
                pub struct $variant;

                impl crate::Call for $variant {
                    const METHOD: Method = Method::$variant;
                    type Params = $params;
                    type Result = $result;
                }
            )*
        }
    };
}

methods! {
    /// The node's view of the chain: heights, hashes, peers, parameters.
    Status = "unet_status" (NoParams) -> StatusView, [];
    /// A finalized block by height, hash or `"latest"`.
    GetBlock = "unet_getBlock" (GetBlockParams) -> BlockView, ["block", "full"];
    /// A finalized account and the nonce its next transaction should use.
    GetAccount = "unet_getAccount" (AddressParams) -> AccountView, ["address"];
    /// Submits a signed transaction.
    SendTransaction = "unet_sendTransaction" (SendTransactionParams) -> Sent, ["tx"];
    /// Submits many signed transactions (signatures batch-verified); one outcome each.
    SendTransactions = "unet_sendTransactions" (SendTransactionsParams) -> Vec<SendOutcome>, ["txs"];
    /// Where a transaction is: finalized, pending or rejected.
    GetTransaction = "unet_getTransaction" (HashParams) -> TxLookup, ["hash"];
    /// Supply counters.
    Supply = "unet_supply" (NoParams) -> SupplyView, [];
    /// A finalized account with its proof against the state root.
    GetProof = "unet_getProof" (AddressParams) -> ProofView, ["address"];
    /// A finalized block's header with a finalization certificate covering it (light clients).
    GetFinalizedHeader = "unet_getFinalizedHeader" (HeightParams) -> CertifiedHeaderView, ["height"];
    /// A registered chip.
    GetChip = "unet_getChip" (ChipParams) -> ChipView, ["chip_id"];
    /// A chip's registry entry with its proof against the state root (light clients).
    GetChipProof = "unet_getChipProof" (ChipParams) -> ChipProofView, ["chip_id"];
    /// Registered chips, filtered and paged.
    ListChips = "unet_listChips" (ListChipsParams) -> ChipList, [];
    /// The POCI registry: models, roots, governance.
    ListModels = "unet_listModels" (NoParams) -> ModelsView, [];
    /// The anchor and nonce a new registration signs.
    RegistrationNonce = "unet_registrationNonce" (OwnerParams) -> RegistrationNonceView, ["owner"];
    /// A chip's or an owner's rewards.
    GetRewards = "unet_getRewards" (GetRewardsParams) -> Rewards, ["owner", "epoch"];
    /// An epoch's final settlement.
    GetEpochRewards = "unet_getEpochRewards" (EpochParams) -> EpochRewardsView, ["epoch"];
    /// Online chips and compute, and the current emission.
    NetworkCompute = "unet_networkCompute" (NoParams) -> NetworkComputeView, [];
    /// The validators of an epoch with their weight.
    GetCommittee = "unet_getCommittee" (CommitteeParams) -> CommitteeView, ["epoch"];
    /// Registered validators, paged.
    ListValidators = "unet_listValidators" (ListValidatorsParams) -> ValidatorList, [];
    /// Market offers, filtered and paged.
    ListOffers = "unet_listOffers" (ListOffersParams) -> OfferList, [];
    /// A lease.
    GetLease = "unet_getLease" (LeaseParams) -> LeaseAt, ["id"];
    /// A renter's or provider's leases, paged.
    ListLeases = "unet_listLeases" (ListLeasesParams) -> LeaseList, [];
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
