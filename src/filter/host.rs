//! Adapts the remote-JWKS state machine's host needs to proxy-wasm: the
//! shared store is shared data (one per `vm_id`, process-wide), the fetcher
//! is `dispatch_http_call`.

use crate::remote_jwks::store::{Cas, FetchRequest, Fetcher, SharedStore, StoreError};

use super::abi::{self, CAS_MISMATCH};

/// Proxy-wasm shared data.
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, Cas)> {
        abi::shared_get(key).ok().flatten()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<Cas>) -> Result<(), StoreError> {
        // CAS 0 writes unconditionally.
        abi::shared_set(key, value, cas.unwrap_or(0)).map_err(|status| match status {
            CAS_MISMATCH => StoreError::CasMismatch,
            other => StoreError::Host(other),
        })
    }
}

/// `dispatch_http_call` to the configured cluster.
pub struct HostFetcher;

impl Fetcher for HostFetcher {
    fn start(&mut self, request: &FetchRequest<'_>) -> Result<u32, u32> {
        let headers: [(&str, &str); 5] = [
            (":method", "GET"),
            (":path", request.path),
            (":authority", request.authority),
            ("accept", "application/json"),
            ("user-agent", "jwt-policy"),
        ];
        let timeout = u32::try_from(request.timeout_ms).unwrap_or(u32::MAX);
        abi::http_call(request.cluster, &headers, timeout)
    }
}
