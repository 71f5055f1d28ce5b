//! The records of the remote JWKS cache shared by every VM of a proxy, and
//! the rules about fetching (when, who, what to keep) as pure functions of
//! the records and the time.
//!
//! Three records per provider and JWKS URL:
//! - `…/doc`: the last good JWKS document with its version, fetch time and
//!   expiry ([`DocRecord`]); written only after a successful fetch;
//! - `…/ver`: the same header without the document ([`DocMeta`]), read on
//!   each tick and before each verification (not on cache hits) because
//!   reading shared data copies the value;
//! - `…/state`: fetch coordination ([`FetchState`]): a lease that elects one
//!   fetcher across all VMs (expires, so a dead holder cannot block
//!   fetching), consecutive failures, the next allowed attempt, and the last
//!   refetch caused by an unknown `kid` (at most one per cooldown).

use crate::policy::RemoteJwks;

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Shared-data key prefix of a provider's records.
pub fn key_prefix(provider: &str, uri: &str) -> String {
    format!("jwt_policy/jwks/v1/{provider}/{uri}")
}

/// The header of a stored JWKS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DocMeta {
    /// Increases whenever the stored keys change; 0 means none stored.
    pub version: u64,
    pub fetched_at: Millis,
    pub expires_at: Millis,
}

impl DocMeta {
    pub fn encode(&self) -> Vec<u8> {
        format!("{} {} {}", self.version, self.fetched_at, self.expires_at).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<DocMeta> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut it = text.split(' ').map(str::parse::<u64>);
        let meta = DocMeta {
            version: it.next()?.ok()?,
            fetched_at: it.next()?.ok()?,
            expires_at: it.next()?.ok()?,
        };
        it.next().is_none().then_some(meta)
    }

    /// Whether the keys may still be used at `now`: fresh, or stale by no
    /// more than `max_stale_s`.
    pub fn usable_at(&self, now: Millis, spec: &RemoteJwks) -> bool {
        self.version > 0
            && now
                < self
                    .expires_at
                    .saturating_add(spec.max_stale_s.saturating_mul(1000))
    }

    /// When a refresh should start: a tenth of the TTL (at most a minute)
    /// before expiry, so fresh keys are in place before the old ones expire.
    pub fn refresh_at(&self) -> Millis {
        let ttl = self.expires_at.saturating_sub(self.fetched_at);
        let margin = (ttl / 10).min(60_000);
        self.expires_at.saturating_sub(margin)
    }
}

/// A stored JWKS: its header line, a newline, then the document as fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRecord {
    pub meta: DocMeta,
    pub document: Vec<u8>,
}

impl DocRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.meta.encode();
        out.push(b'\n');
        out.extend_from_slice(&self.document);
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<DocRecord> {
        let newline = bytes.iter().position(|b| *b == b'\n')?;
        let (head, rest) = bytes.split_at(newline);
        Some(DocRecord {
            meta: DocMeta::decode(head)?,
            document: rest.get(1..)?.to_vec(),
        })
    }
}

/// Why a fetch is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// No keys, keys about to expire, or a retry after a failure.
    Scheduled,
    /// A token named a `kid` the keys lack.
    UnknownKid,
}

/// Fetch coordination shared by every VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FetchState {
    /// Who holds the fetch lease (0: nobody).
    pub holder: u64,
    pub lease_until: Millis,
    /// Consecutive failed fetches.
    pub failures: u32,
    /// No scheduled fetch before this time (back-off after failures).
    pub next_attempt: Millis,
    /// Last fetch started because of an unknown `kid`.
    pub last_kid_refetch: Millis,
    /// When the last fetch ended, well or badly.
    pub last_done: Millis,
}

impl FetchState {
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{} {} {} {} {} {}",
            self.holder,
            self.lease_until,
            self.failures,
            self.next_attempt,
            self.last_kid_refetch,
            self.last_done
        )
        .into_bytes()
    }

    /// Decodes a state; an empty or unreadable value is the initial state.
    pub fn decode(bytes: &[u8]) -> FetchState {
        let parse = || -> Option<FetchState> {
            let text = std::str::from_utf8(bytes).ok()?;
            let mut it = text.split(' ');
            let mut next = || it.next()?.parse::<u64>().ok();
            Some(FetchState {
                holder: next()?,
                lease_until: next()?,
                failures: u32::try_from(next()?).ok()?,
                next_attempt: next()?,
                last_kid_refetch: next()?,
                last_done: next()?,
            })
        };
        parse().unwrap_or_default()
    }

    /// Whether some VM is fetching right now.
    pub fn fetching(&self, now: Millis) -> bool {
        self.holder != 0 && now < self.lease_until
    }

    /// Whether a fetch should start now for `purpose`, given the stored
    /// keys; if so, the state that claims the lease for `me`.
    pub fn claim(
        &self,
        me: u64,
        purpose: Purpose,
        meta: &DocMeta,
        now: Millis,
        spec: &RemoteJwks,
    ) -> Option<FetchState> {
        if self.fetching(now) {
            return None;
        }
        let due = match purpose {
            Purpose::Scheduled => {
                now >= self.next_attempt && (meta.version == 0 || now >= meta.refresh_at())
            }
            Purpose::UnknownKid => {
                now >= self
                    .last_kid_refetch
                    .saturating_add(spec.refetch_cooldown_s.saturating_mul(1000))
            }
        };
        if !due {
            return None;
        }
        let mut next = *self;
        next.holder = me;
        // The lease outlives the fetch's own timeout, so only a holder that
        // died mid-fetch ever lets it lapse.
        next.lease_until = now.saturating_add(spec.timeout_ms).saturating_add(1000);
        if purpose == Purpose::UnknownKid {
            next.last_kid_refetch = now;
        }
        Some(next)
    }

    /// The state after a successful fetch by `me`.
    pub fn succeeded(&self, me: u64, now: Millis) -> FetchState {
        FetchState {
            holder: self.released_by(me),
            lease_until: if self.holder == me {
                0
            } else {
                self.lease_until
            },
            failures: 0,
            next_attempt: 0,
            last_kid_refetch: self.last_kid_refetch,
            last_done: now,
        }
    }

    /// The state after a failed fetch by `me`: retries back off from 1 s,
    /// doubling, up to the refetch cooldown.
    pub fn failed(&self, me: u64, now: Millis, spec: &RemoteJwks) -> FetchState {
        let failures = self.failures.saturating_add(1);
        FetchState {
            holder: self.released_by(me),
            lease_until: if self.holder == me {
                0
            } else {
                self.lease_until
            },
            failures,
            next_attempt: now.saturating_add(backoff_ms(failures, spec)),
            last_kid_refetch: self.last_kid_refetch,
            last_done: now,
        }
    }

    fn released_by(&self, me: u64) -> u64 {
        if self.holder == me { 0 } else { self.holder }
    }
}

/// Delay before retry number `failures` (1-based).
pub fn backoff_ms(failures: u32, spec: &RemoteJwks) -> Millis {
    let exp = failures.saturating_sub(1).min(20);
    let delay = 1000u64.checked_shl(exp).unwrap_or(u64::MAX);
    delay
        .min(spec.refetch_cooldown_s.saturating_mul(1000))
        .max(1000)
}

/// What to store after a fetch returned a usable document.
pub fn stored_after_fetch(
    previous: Option<&DocRecord>,
    document: Vec<u8>,
    now: Millis,
    spec: &RemoteJwks,
) -> DocRecord {
    let expires_at = now.saturating_add(spec.cache_ttl_s.saturating_mul(1000));
    let version = match previous {
        // Same keys: keep the version so nothing is re-parsed or evicted.
        Some(p) if p.document == document => p.meta.version,
        Some(p) => p.meta.version.saturating_add(1),
        None => 1,
    };
    DocRecord {
        meta: DocMeta {
            version,
            fetched_at: now,
            expires_at,
        },
        document,
    }
}

/// Why a fetch did not produce keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchFailure {
    /// The call could not be started (unknown cluster and the like).
    NotStarted(String),
    /// No response: timeout, connection failure, reset.
    NoResponse,
    Status(u16),
    TooLarge(usize),
    /// A JWKS without a single key (`{"keys": []}`). Kept apart from
    /// [`FetchFailure::Unusable`]: an IdP that publishes no keys is a state
    /// of its own, and the last good keys keep serving through it.
    Empty,
    /// Not a JWKS, or no usable key in it.
    Unusable(String),
}

/// The reason of a failed fetch, as a stats label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FetchFailureKind {
    NotStarted,
    NoResponse,
    Status,
    TooLarge,
    Empty,
    Unusable,
}

impl FetchFailureKind {
    pub fn name(self) -> &'static str {
        match self {
            FetchFailureKind::NotStarted => "not_started",
            FetchFailureKind::NoResponse => "no_response",
            FetchFailureKind::Status => "status",
            FetchFailureKind::TooLarge => "too_large",
            FetchFailureKind::Empty => "empty",
            FetchFailureKind::Unusable => "unusable",
        }
    }
}

impl FetchFailure {
    pub fn kind(&self) -> FetchFailureKind {
        match self {
            FetchFailure::NotStarted(_) => FetchFailureKind::NotStarted,
            FetchFailure::NoResponse => FetchFailureKind::NoResponse,
            FetchFailure::Status(_) => FetchFailureKind::Status,
            FetchFailure::TooLarge(_) => FetchFailureKind::TooLarge,
            FetchFailure::Empty => FetchFailureKind::Empty,
            FetchFailure::Unusable(_) => FetchFailureKind::Unusable,
        }
    }
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchFailure::NotStarted(why) => write!(f, "{why}"),
            FetchFailure::NoResponse => {
                f.write_str("no response (timeout, connection failure or reset)")
            }
            FetchFailure::Status(s) => write!(f, "HTTP status {s}"),
            FetchFailure::TooLarge(n) => write!(f, "response of {n} bytes is over the limit"),
            FetchFailure::Empty => f.write_str("the JWKS holds no keys"),
            FetchFailure::Unusable(why) => write!(f, "unusable JWKS: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RemoteJwks {
        RemoteJwks {
            cluster: "c".into(),
            uri: "https://h/j".into(),
            authority: "h".into(),
            path: "/j".into(),
            timeout_ms: 5000,
            cache_ttl_s: 600,
            max_stale_s: 3600,
            refetch_cooldown_s: 30,
        }
    }

    #[test]
    fn records_round_trip() {
        let meta = DocMeta {
            version: 3,
            fetched_at: 10,
            expires_at: 20,
        };
        assert_eq!(DocMeta::decode(&meta.encode()), Some(meta));
        assert_eq!(DocMeta::decode(b"1 2"), None);
        assert_eq!(DocMeta::decode(b"1 2 3 4"), None);
        assert_eq!(DocMeta::decode(b""), None);
        let doc = DocRecord {
            meta,
            document: b"{\"keys\":[]}\nx".to_vec(),
        };
        assert_eq!(DocRecord::decode(&doc.encode()), Some(doc));
        assert_eq!(DocRecord::decode(b"1 2 3"), None);
        let state = FetchState {
            holder: 7,
            lease_until: 8,
            failures: 2,
            next_attempt: 9,
            last_kid_refetch: 10,
            last_done: 11,
        };
        assert_eq!(FetchState::decode(&state.encode()), state);
        assert_eq!(FetchState::decode(b""), FetchState::default());
        assert_eq!(FetchState::decode(b"garbage"), FetchState::default());
    }

    #[test]
    fn one_fetcher_at_a_time_and_a_dead_one_times_out() {
        let s = spec();
        let none = DocMeta::default();
        let claimed = FetchState::default()
            .claim(1, Purpose::Scheduled, &none, 1000, &s)
            .unwrap();
        assert_eq!(claimed.holder, 1);
        assert!(claimed.fetching(1000));
        assert!(
            claimed
                .claim(2, Purpose::Scheduled, &none, 2000, &s)
                .is_none()
        );
        assert!(
            claimed
                .claim(2, Purpose::UnknownKid, &none, 2000, &s)
                .is_none()
        );
        // The lease outlives the fetch timeout and then lapses.
        let lapsed = 1000 + s.timeout_ms + 1000;
        assert!(
            claimed
                .claim(2, Purpose::Scheduled, &none, lapsed - 1, &s)
                .is_none()
        );
        assert_eq!(
            claimed
                .claim(2, Purpose::Scheduled, &none, lapsed, &s)
                .unwrap()
                .holder,
            2
        );
    }

    #[test]
    fn refresh_is_scheduled_before_expiry() {
        let s = spec();
        let meta = DocMeta {
            version: 1,
            fetched_at: 0,
            expires_at: 600_000,
        };
        assert_eq!(meta.refresh_at(), 540_000);
        let idle = FetchState::default();
        assert!(
            idle.claim(1, Purpose::Scheduled, &meta, 539_999, &s)
                .is_none()
        );
        assert!(
            idle.claim(1, Purpose::Scheduled, &meta, 540_000, &s)
                .is_some()
        );
        let long = DocMeta {
            version: 1,
            fetched_at: 0,
            expires_at: 86_400_000,
        };
        assert_eq!(
            long.refresh_at(),
            86_400_000 - 60_000,
            "margin is capped at a minute"
        );
    }

    #[test]
    fn failures_back_off_and_keep_the_keys() {
        let s = spec();
        let meta = DocMeta {
            version: 1,
            fetched_at: 0,
            expires_at: 600_000,
        };
        let mut state = FetchState::default();
        let mut now = 540_000;
        let mut delays = Vec::new();
        for _ in 0..8 {
            let claimed = state.claim(1, Purpose::Scheduled, &meta, now, &s).unwrap();
            state = claimed.failed(1, now + 10, &s);
            assert!(!state.fetching(now + 10));
            delays.push(state.next_attempt - (now + 10));
            assert!(
                state
                    .claim(1, Purpose::Scheduled, &meta, state.next_attempt - 1, &s)
                    .is_none()
            );
            now = state.next_attempt;
        }
        assert_eq!(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        // Keys stay usable until max_stale past expiry.
        assert!(meta.usable_at(600_000 + 3_600_000 - 1, &s));
        assert!(!meta.usable_at(600_000 + 3_600_000, &s));
        assert!(!DocMeta::default().usable_at(0, &s));
        let ok = state.succeeded(1, now);
        assert_eq!((ok.failures, ok.next_attempt, ok.last_done), (0, 0, now));
    }

    #[test]
    fn unknown_kid_refetches_at_most_once_per_cooldown() {
        let s = spec();
        let fresh = DocMeta {
            version: 1,
            fetched_at: 0,
            expires_at: 600_000,
        };
        let first = FetchState::default()
            .claim(1, Purpose::UnknownKid, &fresh, 100_000, &s)
            .unwrap();
        assert_eq!(first.last_kid_refetch, 100_000);
        let done = first.succeeded(1, 100_050);
        assert!(
            done.claim(2, Purpose::UnknownKid, &fresh, 129_999, &s)
                .is_none()
        );
        assert!(
            done.claim(2, Purpose::UnknownKid, &fresh, 130_000, &s)
                .is_some()
        );
        // A scheduled fetch is not due while the keys are fresh.
        assert!(
            done.claim(2, Purpose::Scheduled, &fresh, 130_000, &s)
                .is_none()
        );
    }

    #[test]
    fn release_only_by_the_holder() {
        let s = spec();
        let held = FetchState {
            holder: 5,
            lease_until: 9999,
            ..Default::default()
        };
        assert_eq!(held.succeeded(6, 10).holder, 5);
        assert_eq!(held.failed(6, 10, &s).holder, 5);
        assert_eq!(held.succeeded(5, 10).holder, 0);
    }

    #[test]
    fn versions_change_only_with_the_document() {
        let s = spec();
        let first = stored_after_fetch(None, b"a".to_vec(), 1000, &s);
        assert_eq!(first.meta.version, 1);
        assert_eq!(first.meta.expires_at, 1000 + 600_000);
        let same = stored_after_fetch(Some(&first), b"a".to_vec(), 2000, &s);
        assert_eq!(same.meta.version, 1);
        assert_eq!(same.meta.fetched_at, 2000);
        let rotated = stored_after_fetch(Some(&same), b"b".to_vec(), 3000, &s);
        assert_eq!(rotated.meta.version, 2);
    }
}
