//! A provider's remote JWKS as one VM sees it: the records in shared data
//! (see [`crate::jwks_cache`] for their meaning and the fetch rules), the
//! keys this VM parsed from them, and this VM's own fetch if it holds the
//! lease.

use crate::engine::KeyStatus;
use crate::jwks::{self, KeySet};
use crate::jwks_cache::{self, DocMeta, DocRecord, FetchFailure, FetchState, Millis, Purpose};
use crate::limits::Limits;
use crate::policy::RemoteJwks;
use crate::text::clip;

use super::abi::{self, Buffer, CAS_MISMATCH, Map};

/// Keys this VM parsed from the shared document.
pub struct Installed {
    pub meta: DocMeta,
    pub keys: KeySet,
}

/// What a finished fetch did.
pub struct Fetched {
    pub keys: usize,
    pub version: u64,
    pub changed: bool,
}

pub struct Remote {
    pub spec: RemoteJwks,
    doc_key: String,
    ver_key: String,
    state_key: String,
    /// This VM's lease holder id.
    me: u64,
    pub installed: Option<Installed>,
    /// The token of this VM's fetch, if one is under way.
    in_flight: Option<u32>,
    /// A lease this VM claimed; the fetch starts at the next tick.
    pending: Option<Purpose>,
}

impl Remote {
    pub fn new(provider: &str, spec: RemoteJwks, me: u64) -> Remote {
        let prefix = jwks_cache::key_prefix(provider, &spec.uri);
        Remote {
            doc_key: format!("{prefix}/doc"),
            ver_key: format!("{prefix}/ver"),
            state_key: format!("{prefix}/state"),
            spec,
            me,
            installed: None,
            in_flight: None,
            pending: None,
        }
    }

    /// Creates the coordination record if no VM has yet. (Only the first
    /// insert of a key ignores CAS; every later update is a CAS.)
    pub fn ensure_state_record(&self) {
        if let Ok(None) = abi::shared_get(&self.state_key) {
            let _ = abi::shared_set(&self.state_key, &FetchState::default().encode(), 0);
        }
    }

    fn read_state(&self) -> (FetchState, u32) {
        match abi::shared_get(&self.state_key) {
            Ok(Some((bytes, cas))) => (FetchState::decode(&bytes), cas),
            _ => (FetchState::default(), 0),
        }
    }

    /// Applies `change` to the shared state with compare-and-swap.
    fn update_state(&self, change: impl Fn(&FetchState) -> FetchState) {
        for _ in 0..16 {
            let (state, cas) = self.read_state();
            match abi::shared_set(&self.state_key, &change(&state).encode(), cas) {
                Err(CAS_MISMATCH) => continue,
                _ => return,
            }
        }
    }

    /// Claims the lease if `purpose` makes a fetch due; the fetch is
    /// started by [`Remote::dispatch`].
    fn claim(&mut self, purpose: Purpose, now: Millis) -> bool {
        if self.busy() {
            return false;
        }
        let meta = self.installed.as_ref().map(|i| i.meta).unwrap_or_default();
        for _ in 0..4 {
            let (state, cas) = self.read_state();
            let Some(next) = state.claim(self.me, purpose, &meta, now, &self.spec) else {
                return false;
            };
            match abi::shared_set(&self.state_key, &next.encode(), cas) {
                Ok(()) => {
                    self.pending = Some(purpose);
                    return true;
                }
                Err(CAS_MISMATCH) => continue,
                Err(_) => return false,
            }
        }
        false
    }

    /// Whether this VM has a fetch claimed or under way.
    pub fn busy(&self) -> bool {
        self.in_flight.is_some() || self.pending.is_some()
    }

    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Picks up the keys stored by whichever VM fetched them. Returns true
    /// when this VM's key set changed.
    pub fn sync(&mut self, limits: &Limits) -> bool {
        let Ok(Some((bytes, _))) = abi::shared_get(&self.ver_key) else {
            return false;
        };
        let Some(meta) = DocMeta::decode(&bytes) else {
            return false;
        };
        if let Some(installed) = &mut self.installed
            && installed.meta.version == meta.version
        {
            installed.meta = meta;
            return false;
        }
        let Ok(Some((doc, _))) = abi::shared_get(&self.doc_key) else {
            return false;
        };
        let Some(record) = DocRecord::decode(&doc) else {
            return false;
        };
        match jwks::parse_jwks(&record.document, limits) {
            Ok(parsed) if !parsed.keys.is_empty() => {
                self.installed = Some(Installed {
                    meta: record.meta,
                    keys: parsed.keys,
                });
                true
            }
            _ => false,
        }
    }

    /// The keys for a request at `now`. With `last_chance` (the request has
    /// waited long enough) "wait for keys" becomes "unavailable".
    pub fn status(&self, now: Millis, last_chance: bool) -> KeyStatus<'_> {
        if let Some(installed) = &self.installed
            && installed.meta.usable_at(now, &self.spec)
        {
            return KeyStatus::Ready {
                keys: &installed.keys,
                version: installed.meta.version,
            };
        }
        let (state, _) = self.read_state();
        let waiting_helps = self.busy() || state.fetching(now) || now >= state.next_attempt;
        if waiting_helps && !last_chance {
            return KeyStatus::Loading;
        }
        let retry_after_s = state.next_attempt.saturating_sub(now).div_ceil(1000).max(1);
        KeyStatus::Unavailable { retry_after_s }
    }

    /// An unknown `kid`: true when a refetch is under way or was just
    /// claimed (at most one per cooldown, all VMs together).
    pub fn request_refetch(&mut self, now: Millis) -> bool {
        if self.busy() || self.read_state().0.fetching(now) {
            return true;
        }
        self.claim(Purpose::UnknownKid, now)
    }

    /// Claims a scheduled fetch when one is due (first keys, refresh before
    /// expiry, retry after a failure).
    pub fn schedule(&mut self, now: Millis) -> bool {
        self.claim(Purpose::Scheduled, now)
    }

    /// Starts the claimed fetch. On failure the lease is released and the
    /// failure recorded.
    pub fn dispatch(&mut self, now: Millis) -> Result<Option<Purpose>, FetchFailure> {
        let Some(purpose) = self.pending.take() else {
            return Ok(None);
        };
        let headers: [(&str, &str); 5] = [
            (":method", "GET"),
            (":path", &self.spec.path),
            (":authority", &self.spec.authority),
            ("accept", "application/json"),
            ("user-agent", "jwt-policy"),
        ];
        let timeout = u32::try_from(self.spec.timeout_ms).unwrap_or(u32::MAX);
        match abi::http_call(&self.spec.cluster, &headers, timeout) {
            Ok(token) => {
                self.in_flight = Some(token);
                Ok(Some(purpose))
            }
            Err(status) => {
                let spec = self.spec.clone();
                let me = self.me;
                self.update_state(|s| s.failed(me, now, &spec));
                Err(FetchFailure::NotStarted(format!(
                    "the call could not start (host status {status}; is cluster \"{}\" defined?)",
                    clip(&self.spec.cluster, 64)
                )))
            }
        }
    }

    /// Whether `token` is this VM's fetch.
    pub fn owns(&self, token: u32) -> bool {
        self.in_flight == Some(token)
    }

    /// Finishes this VM's fetch: stores a usable document for every VM, or
    /// records the failure and keeps the old keys.
    pub fn complete(
        &mut self,
        body_size: usize,
        limits: &Limits,
        now: Millis,
    ) -> Result<Fetched, FetchFailure> {
        self.in_flight = None;
        let outcome = self.read_response(body_size, limits);
        let spec = self.spec.clone();
        let me = self.me;
        let document = match outcome {
            Ok(document) => document,
            Err(e) => {
                self.update_state(|s| s.failed(me, now, &spec));
                return Err(e);
            }
        };
        let previous = abi::shared_get(&self.doc_key)
            .ok()
            .flatten()
            .and_then(|(bytes, _)| DocRecord::decode(&bytes));
        let record = jwks_cache::stored_after_fetch(previous.as_ref(), document, now, &spec);
        let changed = previous.as_ref().map(|p| p.meta.version) != Some(record.meta.version);
        // Document first, then the small record requests read: a reader that
        // sees the new version always finds the document.
        let _ = abi::shared_set(&self.doc_key, &record.encode(), 0);
        let _ = abi::shared_set(&self.ver_key, &record.meta.encode(), 0);
        self.update_state(|s| s.succeeded(me, now));
        self.sync(limits);
        Ok(Fetched {
            keys: self.installed.as_ref().map_or(0, |i| i.keys.len()),
            version: record.meta.version,
            changed,
        })
    }

    fn read_response(&self, body_size: usize, limits: &Limits) -> Result<Vec<u8>, FetchFailure> {
        let status = abi::header(Map::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok())
            .ok_or(FetchFailure::NoResponse)?;
        if !(200..300).contains(&status) {
            return Err(FetchFailure::Status(status));
        }
        if body_size > limits.max_jwks_bytes {
            return Err(FetchFailure::TooLarge(body_size));
        }
        let body = abi::buffer(Buffer::HttpCallResponseBody, body_size)
            .map_err(|_| FetchFailure::NoResponse)?;
        let parsed =
            jwks::parse_jwks(&body, limits).map_err(|e| FetchFailure::Unusable(e.to_string()))?;
        if parsed.keys.is_empty() && parsed.skipped.is_empty() {
            return Err(FetchFailure::Empty);
        }
        if parsed.keys.is_empty() {
            let why = parsed
                .skipped
                .first()
                .map_or_else(|| "no keys".to_owned(), |e| format!("no usable key ({e})"));
            return Err(FetchFailure::Unusable(why));
        }
        Ok(body)
    }

    /// When the last fetch (by any VM) ended, and whether one is running.
    pub fn progress(&self, now: Millis) -> (Millis, bool) {
        let (state, _) = self.read_state();
        (state.last_done, state.fetching(now) || self.busy())
    }
}
