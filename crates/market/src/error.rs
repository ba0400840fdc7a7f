//! Why a market transaction was refused: each check has its own receipt code.

/// A refused market transaction (its receipt says `failed` with [`MarketError::code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MarketError {
    /// `CreateOffer`/`UpdateOffer` with an empty chip list.
    #[error("an offer needs at least one chip")]
    NoChips,
    /// An offer or a lease lists this chip (hex id) more than once.
    #[error("chip {0} appears twice")]
    DuplicateChip(String),
    /// An offer priced at zero per chip per block.
    #[error("price per block must be above zero")]
    ZeroPrice,
    /// An offer's durations are not ordered `1 <= min_blocks <= max_blocks`.
    #[error("durations must satisfy 1 <= min_blocks ({min}) <= max_blocks ({max})")]
    BadDuration {
        /// The offer's `min_blocks`.
        min: u64,
        /// The offer's `max_blocks`.
        max: u64,
    },
    /// The offer's endpoint (quoted in the error) is not an http(s) URL without spaces.
    #[error("endpoint must be an http:// or https:// URL without spaces, got {0:?}")]
    BadEndpoint(String),
    /// No chip with this id (hex) is registered.
    #[error("no registered chip {0}")]
    UnknownChip(String),
    /// The chip (hex id) belongs to another account than the offer's provider.
    #[error("chip {0} is not owned by the provider")]
    NotOwner(String),
    /// An offered chip is not Online.
    #[error("chip {chip} is {status}, not online")]
    ChipOffline {
        /// The chip, hex id.
        chip: String,
        /// Its liveness status, as a word (`unresponsive`, `revoked`, ...).
        status: String,
    },
    /// The chip is already listed by another offer.
    #[error("chip {chip} is already in offer {offer}")]
    ChipOffered {
        /// The chip, hex id.
        chip: String,
        /// The offer that lists it.
        offer: u64,
    },
    /// The chip is held by an open lease (it cannot be withdrawn or leased again).
    #[error("chip {chip} is leased (lease {lease})")]
    ChipLeased {
        /// The chip, hex id.
        chip: String,
        /// The open lease that holds it.
        lease: u64,
    },
    /// A lease asks for a chip that the offer does not list.
    #[error("chip {chip} is not part of offer {offer}")]
    ChipNotOffered {
        /// The chip, hex id.
        chip: String,
        /// The offer named by the lease.
        offer: u64,
    },
    /// No offer with this id.
    #[error("no offer {0}")]
    UnknownOffer(u64),
    /// The offer (id) belongs to another provider than the signer.
    #[error("offer {0} belongs to another provider")]
    NotProvider(u64),
    /// `OpenLease` with a deposit below [`crate::lease::required_deposit`].
    #[error("deposit {got} is below the required {needed}")]
    DepositTooSmall {
        /// The required deposit, base units.
        needed: u128,
        /// The deposit offered, base units.
        got: u128,
    },
    /// The signer's balance cannot cover a deposit or top-up.
    #[error("insufficient balance: balance {balance}, needed {needed}")]
    InsufficientBalance {
        /// The signer's balance, base units.
        balance: u128,
        /// What the transaction needs, base units.
        needed: u128,
    },
    /// No lease with this id.
    #[error("no lease {0}")]
    UnknownLease(u64),
    /// The lease (id) belongs to another renter than the signer (top-up).
    #[error("lease {0} belongs to another renter")]
    NotRenter(u64),
    /// Only the lease's renter or provider may close it; the signer is neither.
    #[error("only the renter or the provider of lease {0} may close it")]
    NotParty(u64),
    /// The lease (id) is already closed.
    #[error("lease {0} is closed")]
    LeaseClosed(u64),
    /// `TopUpLease` of zero base units.
    #[error("top-up of zero")]
    ZeroAmount,
    /// The renter or the provider already has this many open leases (the maximum,
    /// [`crate::MAX_OPEN_LEASES`]).
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
