//! What the remote-JWKS state machine needs from its host: a store shared
//! by every VM of the proxy, with compare-and-swap, and a way to start an
//! HTTP fetch. The filter implements them over proxy-wasm shared data and
//! `dispatch_http_call` (`src/filter/host.rs`); the tests over memory.

/// A value's version in the store, for compare-and-swap.
pub type Cas = u32;

/// Why a write did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The value changed since it was read.
    CasMismatch,
    /// The host refused for another reason (its status).
    Host(u32),
}

/// Shared data of all VMs (proxy-wasm: one store per `vm_id`).
pub trait SharedStore {
    /// The value and its CAS token; `None` when the key is absent.
    fn get(&self, key: &str) -> Option<(Vec<u8>, Cas)>;

    /// Writes the value; with `Some(cas)` only if it is unchanged since
    /// that read. (In Envoy, inserting a key that does not exist succeeds
    /// whatever CAS is given: records are created before they are raced
    /// on.)
    fn set(&self, key: &str, value: &[u8], cas: Option<Cas>) -> Result<(), StoreError>;
}

/// A JWKS fetch to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest<'a> {
    pub cluster: &'a str,
    pub authority: &'a str,
    pub path: &'a str,
    pub timeout_ms: u64,
}

/// Starts HTTP fetches; the answer comes back later with the same token.
pub trait Fetcher {
    /// The fetch's token, or the host's status when it could not start.
    fn start(&mut self, request: &FetchRequest<'_>) -> Result<u32, u32>;
}
