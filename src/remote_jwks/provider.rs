//! One provider's remote JWKS as one VM sees it: the records in the shared
//! store (see [`super::records`] for their meaning and the fetch rules),
//! the keys this VM parsed from them, and this VM's own fetch while it
//! holds the lease.

use crate::engine::KeyStatus;
use crate::jwks::{self, KeySet};
use crate::limits::Limits;
use crate::policy::RemoteJwks;
use crate::text::clip;

use super::records::{self, DocMeta, DocRecord, FetchFailure, FetchState, Millis, Purpose};
use super::store::{FetchRequest, Fetcher, SharedStore, StoreError};

/// How often an update of the coordination record is retried when another
/// VM wrote it in between. Each retry means another VM's update landed, so
/// this bounds the work under contention; an update that still loses after
/// that many (only with more racing VMs than this) is dropped, and the next
/// tick or fetch outcome writes the state again.
pub const STATE_UPDATE_ATTEMPTS: usize = 16;

/// How often a VM tries to claim the fetch lease when another VM wrote the
/// coordination record in between. Losing that often means others are
/// claiming it: they will fetch, this VM need not.
pub const CLAIM_ATTEMPTS: usize = 4;

/// Keys this VM parsed from the shared document.
pub struct Installed {
    pub meta: DocMeta,
    pub keys: KeySet,
}

/// What a finished fetch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    pub keys: usize,
    pub version: u64,
    pub changed: bool,
}

/// The shared-store keys of one provider and JWKS URL.
struct RecordKeys {
    doc: String,
    ver: String,
    state: String,
}

pub struct ProviderKeys {
    pub spec: RemoteJwks,
    records: RecordKeys,
    /// This VM's lease holder id.
    me: u64,
    pub installed: Option<Installed>,
    /// The token of this VM's fetch, if one is under way.
    in_flight: Option<u32>,
    /// A lease this VM claimed; the fetch starts at the next tick.
    pending: Option<Purpose>,
}

impl ProviderKeys {
    pub fn new(provider: &str, spec: RemoteJwks, me: u64) -> ProviderKeys {
        let prefix = records::key_prefix(provider, &spec.uri);
        ProviderKeys {
            records: RecordKeys {
                doc: format!("{prefix}/doc"),
                ver: format!("{prefix}/ver"),
                state: format!("{prefix}/state"),
            },
            spec,
            me,
            installed: None,
            in_flight: None,
            pending: None,
        }
    }

    /// Creates the coordination record if no VM has yet. (Only the first
    /// insert of a key ignores CAS; every later update is a CAS.)
    pub fn ensure_state_record(&self, store: &dyn SharedStore) {
        if store.get(&self.records.state).is_none() {
            let _ = store.set(&self.records.state, &FetchState::default().encode(), None);
        }
    }

    fn read_state(&self, store: &dyn SharedStore) -> (FetchState, Option<u32>) {
        match store.get(&self.records.state) {
            Some((bytes, cas)) => (FetchState::decode(&bytes), Some(cas)),
            None => (FetchState::default(), None),
        }
    }

    /// Applies `change` to the shared state with compare-and-swap.
    fn update_state(&self, store: &dyn SharedStore, change: impl Fn(&FetchState) -> FetchState) {
        for _ in 0..STATE_UPDATE_ATTEMPTS {
            let (state, cas) = self.read_state(store);
            match store.set(&self.records.state, &change(&state).encode(), cas) {
                Err(StoreError::CasMismatch) => continue,
                _ => return,
            }
        }
    }

    /// Claims the lease if `purpose` makes a fetch due; the fetch is
    /// started by [`ProviderKeys::dispatch`].
    fn claim(&mut self, store: &dyn SharedStore, purpose: Purpose, now: Millis) -> bool {
        if self.busy() {
            return false;
        }
        let meta = self.installed.as_ref().map(|i| i.meta).unwrap_or_default();
        for _ in 0..CLAIM_ATTEMPTS {
            let (state, cas) = self.read_state(store);
            let Some(next) = state.claim(self.me, purpose, &meta, now, &self.spec) else {
                return false;
            };
            match store.set(&self.records.state, &next.encode(), cas) {
                Ok(()) => {
                    self.pending = Some(purpose);
                    return true;
                }
                Err(StoreError::CasMismatch) => continue,
                Err(StoreError::Host(_)) => return false,
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
    pub fn sync(&mut self, store: &dyn SharedStore, limits: &Limits) -> bool {
        let Some((bytes, _)) = store.get(&self.records.ver) else {
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
        let Some((doc, _)) = store.get(&self.records.doc) else {
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
    pub fn status(&self, store: &dyn SharedStore, now: Millis, last_chance: bool) -> KeyStatus<'_> {
        if let Some(installed) = self.usable(now) {
            return KeyStatus::Ready {
                keys: &installed.keys,
                version: installed.meta.version,
            };
        }
        let (state, _) = self.read_state(store);
        let waiting_helps = self.busy() || state.fetching(now) || now >= state.next_attempt;
        if waiting_helps && !last_chance {
            return KeyStatus::Loading;
        }
        let retry_after_s = state.next_attempt.saturating_sub(now).div_ceil(1000).max(1);
        KeyStatus::Unavailable { retry_after_s }
    }

    /// The fetched keys, when they may serve at `now` (within
    /// `max_stale_s` of their expiry).
    pub fn usable(&self, now: Millis) -> Option<&Installed> {
        self.installed
            .as_ref()
            .filter(|i| i.meta.usable_at(now, &self.spec))
    }

    /// An unknown `kid`: true when a refetch is under way or was just
    /// claimed (at most one per cooldown, all VMs together).
    pub fn request_refetch(&mut self, store: &dyn SharedStore, now: Millis) -> bool {
        if self.busy() || self.read_state(store).0.fetching(now) {
            return true;
        }
        self.claim(store, Purpose::UnknownKid, now)
    }

    /// Claims a scheduled fetch when one is due (first keys, refresh before
    /// expiry, retry after a failure).
    pub fn schedule(&mut self, store: &dyn SharedStore, now: Millis) -> bool {
        self.claim(store, Purpose::Scheduled, now)
    }

    /// Starts the claimed fetch. On failure the lease is released and the
    /// failure recorded.
    pub fn dispatch(
        &mut self,
        store: &dyn SharedStore,
        fetcher: &mut dyn Fetcher,
        now: Millis,
    ) -> Result<Option<Purpose>, FetchFailure> {
        let Some(purpose) = self.pending.take() else {
            return Ok(None);
        };
        let request = FetchRequest {
            cluster: &self.spec.cluster,
            authority: &self.spec.authority,
            path: &self.spec.path,
            timeout_ms: self.spec.timeout_ms,
        };
        match fetcher.start(&request) {
            Ok(token) => {
                self.in_flight = Some(token);
                Ok(Some(purpose))
            }
            Err(status) => {
                let (spec, me) = (self.spec.clone(), self.me);
                self.update_state(store, |s| s.failed(me, now, &spec));
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

    /// Finishes this VM's fetch with its checked response: stores a usable
    /// document for every VM, or records the failure and keeps the old
    /// keys.
    pub fn complete(
        &mut self,
        store: &dyn SharedStore,
        response: Result<Vec<u8>, FetchFailure>,
        limits: &Limits,
        now: Millis,
    ) -> Result<Fetched, FetchFailure> {
        self.in_flight = None;
        let (spec, me) = (self.spec.clone(), self.me);
        let document = match response {
            Ok(document) => document,
            Err(e) => {
                self.update_state(store, |s| s.failed(me, now, &spec));
                return Err(e);
            }
        };
        let previous = store
            .get(&self.records.doc)
            .and_then(|(bytes, _)| DocRecord::decode(&bytes));
        let record = records::stored_after_fetch(previous.as_ref(), document, now, &spec);
        let changed = previous.as_ref().map(|p| p.meta.version) != Some(record.meta.version);
        // Document first, then the small record VMs read: a reader that
        // sees the new version always finds the document.
        let _ = store.set(&self.records.doc, &record.encode(), None);
        let _ = store.set(&self.records.ver, &record.meta.encode(), None);
        self.update_state(store, |s| s.succeeded(me, now));
        self.sync(store, limits);
        Ok(Fetched {
            keys: self.installed.as_ref().map_or(0, |i| i.keys.len()),
            version: record.meta.version,
            changed,
        })
    }

    /// When the last fetch (by any VM) ended, and whether one is running.
    pub fn progress(&self, store: &dyn SharedStore, now: Millis) -> (Millis, bool) {
        let (state, _) = self.read_state(store);
        (state.last_done, state.fetching(now) || self.busy())
    }
}

/// Checks a fetch's answer: a 2xx status, a body within `max_jwks_bytes`
/// (`read_body` is called only then), and a JWKS with at least one usable
/// key. A JWKS without any key is [`FetchFailure::Empty`], kept apart from
/// one whose keys are all unusable.
pub fn check_response(
    status: Option<u16>,
    body_size: usize,
    read_body: impl FnOnce() -> Option<Vec<u8>>,
    limits: &Limits,
) -> Result<Vec<u8>, FetchFailure> {
    let status = status.ok_or(FetchFailure::NoResponse)?;
    if !(200..300).contains(&status) {
        return Err(FetchFailure::Status(status));
    }
    if body_size > limits.max_jwks_bytes {
        return Err(FetchFailure::TooLarge(body_size));
    }
    let body = read_body().ok_or(FetchFailure::NoResponse)?;
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
