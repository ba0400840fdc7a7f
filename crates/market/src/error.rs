//! Why a market transaction was refused: each check has its own receipt code.

/// A refused market transaction (its receipt says `failed` with [`MarketError::code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MarketError {
    #[error("an offer needs at least one chip")]
    NoChips,
    #[error("chip {0} appears twice")]
    DuplicateChip(String),
    #[error("price per block must be above zero")]
    ZeroPrice,
    #[error("durations must satisfy 1 <= min_blocks ({min}) <= max_blocks ({max})")]
    BadDuration { min: u64, max: u64 },
    #[error("endpoint must be an http:// or https:// URL without spaces, got {0:?}")]
    BadEndpoint(String),
    #[error("no registered chip {0}")]
    UnknownChip(String),
    #[error("chip {0} is not owned by the provider")]
    NotOwner(String),
    #[error("chip {chip} is {status}, not online")]
    ChipOffline { chip: String, status: String },
    #[error("chip {chip} is already in offer {offer}")]
    ChipOffered { chip: String, offer: u64 },
    #[error("chip {chip} is leased (lease {lease})")]
    ChipLeased { chip: String, lease: u64 },
    #[error("chip {chip} is not part of offer {offer}")]
    ChipNotOffered { chip: String, offer: u64 },
    #[error("no offer {0}")]
    UnknownOffer(u64),
    #[error("offer {0} belongs to another provider")]
    NotProvider(u64),
    #[error("deposit {got} is below the required {needed}")]
    DepositTooSmall { needed: u128, got: u128 },
    #[error("insufficient balance: balance {balance}, needed {needed}")]
    InsufficientBalance { balance: u128, needed: u128 },
    #[error("no lease {0}")]
    UnknownLease(u64),
    #[error("lease {0} belongs to another renter")]
    NotRenter(u64),
    #[error("only the renter or the provider of lease {0} may close it")]
    NotParty(u64),
    #[error("lease {0} is closed")]
    LeaseClosed(u64),
    #[error("top-up of zero")]
    ZeroAmount,
    #[error("too many open leases for one account (max {0})")]
    TooManyLeases(usize),
}

impl MarketError {
    /// Stable machine-readable code (receipts, API).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoChips => "market_no_chips",
            Self::DuplicateChip(_) => "market_duplicate_chip",
            Self::ZeroPrice => "market_zero_price",
            Self::BadDuration { .. } => "market_bad_duration",
            Self::BadEndpoint(_) => "market_bad_endpoint",
            Self::UnknownChip(_) => "market_unknown_chip",
            Self::NotOwner(_) => "market_not_owner",
            Self::ChipOffline { .. } => "market_chip_offline",
            Self::ChipOffered { .. } => "market_chip_offered",
            Self::ChipLeased { .. } => "market_chip_leased",
            Self::ChipNotOffered { .. } => "market_chip_not_offered",
            Self::UnknownOffer(_) => "market_unknown_offer",
            Self::NotProvider(_) => "market_not_provider",
            Self::DepositTooSmall { .. } => "market_deposit_too_small",
            Self::InsufficientBalance { .. } => "insufficient_balance",
            Self::UnknownLease(_) => "market_unknown_lease",
            Self::NotRenter(_) => "market_not_renter",
            Self::NotParty(_) => "market_not_party",
            Self::LeaseClosed(_) => "market_lease_closed",
            Self::ZeroAmount => "market_zero_amount",
            Self::TooManyLeases(_) => "market_too_many_leases",
        }
    }
}
