//! The verified-token cache: per VM, bounded by entries and bytes.
//!
//! An entry remembers that a token passed every check that does not depend
//! on time or on the route: signature, issuer, audience, `token_use`,
//! provider claims. It is keyed by SHA-256 of the provider and the whole
//! token, tied to the key set version it was verified with (a new version
//! drops it), and never outlives the token's `exp`. Time claims, scopes and
//! rule claims are still checked on every hit.
//!
//! Eviction is CLOCK (second chance): O(1) amortised, no per-hit
//! bookkeeping beyond one flag, close to LRU for this workload.

use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value};

use crate::claims::TimeClaims;
use crate::policy::{CacheSettings, ProviderId};

/// Entries without `exp` (allowed with `require_exp: false`) are kept at
/// most this long.
pub const MAX_ENTRY_AGE_S: u64 = 600;

/// What the checks established about a token, kept for later requests.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedToken {
    pub provider: ProviderId,
    /// Key set version the signature was checked against.
    pub key_version: u64,
    pub time: TimeClaims,
    pub kid: Option<String>,
    pub scopes: Vec<String>,
    /// All claims, for rule-level claim checks.
    pub claims: Map<String, Value>,
    /// `claims_to_headers` values, computed once.
    pub headers: Vec<(String, String)>,
}

pub type Digest = [u8; 32];

/// The cache key of a token presented for a provider.
pub fn digest(provider: ProviderId, token: &str) -> Digest {
    let mut h = hmac_sha256::Hash::new();
    h.update(u64::try_from(provider).unwrap_or(u64::MAX).to_le_bytes());
    h.update(token.as_bytes());
    h.finalize()
}

struct Slot {
    token: VerifiedToken,
    expires_at: u64,
    size: usize,
    referenced: bool,
}

/// The cache. Capacity 0 disables it.
pub struct TokenCache {
    settings: CacheSettings,
    slots: HashMap<Digest, Slot>,
    clock: VecDeque<Digest>,
    bytes: usize,
}

impl TokenCache {
    pub fn new(settings: CacheSettings) -> TokenCache {
        TokenCache {
            settings,
            slots: HashMap::with_capacity(settings.max_entries.min(4096)),
            clock: VecDeque::with_capacity(settings.max_entries.min(4096)),
            bytes: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.max_entries > 0
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes accounted to the entries held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The entry for `key`, if it is still good for `key_version` at `now`.
    pub fn get(&mut self, key: &Digest, key_version: u64, now: u64) -> Option<&VerifiedToken> {
        let fresh = match self.slots.get(key) {
            None => return None,
            Some(slot) => slot.token.key_version == key_version && now < slot.expires_at,
        };
        if !fresh {
            self.remove(key);
            return None;
        }
        let slot = self.slots.get_mut(key)?;
        slot.referenced = true;
        Some(&slot.token)
    }

    /// Remembers a verified token; `token_bytes` is the length of the token
    /// text (the bulk of what an entry costs).
    pub fn insert(&mut self, key: Digest, token: VerifiedToken, token_bytes: usize, now: u64) {
        if !self.enabled() {
            return;
        }
        let expires_at = token
            .time
            .exp
            .unwrap_or_else(|| now.saturating_add(MAX_ENTRY_AGE_S));
        if expires_at <= now {
            return;
        }
        let size = entry_size(&token, token_bytes);
        if size > self.settings.max_bytes {
            return;
        }
        self.remove(&key);
        while self.slots.len() >= self.settings.max_entries
            || self.bytes.saturating_add(size) > self.settings.max_bytes
        {
            if !self.evict_one() {
                break;
            }
        }
        self.bytes = self.bytes.saturating_add(size);
        self.clock.push_back(key);
        self.slots.insert(
            key,
            Slot {
                token,
                expires_at,
                size,
                referenced: false,
            },
        );
    }

    /// Drops every entry verified with another key set version of
    /// `provider` (called when its keys change).
    pub fn retain_version(&mut self, provider: ProviderId, key_version: u64) {
        let mut freed = 0usize;
        self.slots.retain(|_, slot| {
            let keep = slot.token.provider != provider || slot.token.key_version == key_version;
            if !keep {
                freed = freed.saturating_add(slot.size);
            }
            keep
        });
        self.bytes = self.bytes.saturating_sub(freed);
        let slots = &self.slots;
        self.clock.retain(|k| slots.contains_key(k));
    }

    fn remove(&mut self, key: &Digest) {
        if let Some(slot) = self.slots.remove(key) {
            self.bytes = self.bytes.saturating_sub(slot.size);
            // The stale clock position is skipped when the hand reaches it.
        }
    }

    /// Evicts one entry by CLOCK; false when there is nothing to evict.
    fn evict_one(&mut self) -> bool {
        // Each turn either evicts, skips a stale position or clears one
        // flag, so this ends within two passes.
        let mut budget = self.clock.len().saturating_mul(2).saturating_add(1);
        while let Some(key) = self.clock.pop_front() {
            budget = budget.saturating_sub(1);
            let Some(slot) = self.slots.get_mut(&key) else {
                continue;
            };
            if slot.referenced && budget > 0 {
                slot.referenced = false;
                self.clock.push_back(key);
                continue;
            }
            self.remove(&key);
            return true;
        }
        false
    }
}

fn entry_size(token: &VerifiedToken, token_bytes: usize) -> usize {
    let headers: usize = token
        .headers
        .iter()
        .map(|(n, v)| n.len().saturating_add(v.len()))
        .sum();
    let scopes: usize = token.scopes.iter().map(String::len).sum();
    // Claims are roughly as large as the token's payload, which is most of
    // the token; count the token once more for them, plus fixed overhead.
    token_bytes
        .saturating_mul(2)
        .saturating_add(headers)
        .saturating_add(scopes)
        .saturating_add(256)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vt(provider: ProviderId, version: u64, exp: Option<u64>) -> VerifiedToken {
        VerifiedToken {
            provider,
            key_version: version,
            time: TimeClaims {
                exp,
                nbf: None,
                iat: None,
            },
            kid: None,
            scopes: vec![],
            claims: Map::new(),
            headers: vec![],
        }
    }

    fn cache(entries: usize) -> TokenCache {
        TokenCache::new(CacheSettings {
            max_entries: entries,
            max_bytes: 1 << 20,
        })
    }

    #[test]
    fn hits_until_expiry_or_version_change() {
        let mut c = cache(10);
        let k = digest(0, "t");
        c.insert(k, vt(0, 1, Some(1000)), 10, 100);
        assert!(c.get(&k, 1, 999).is_some());
        assert!(c.get(&k, 2, 500).is_none(), "other key version");
        assert!(c.is_empty(), "a stale entry is dropped");
        c.insert(k, vt(0, 1, Some(1000)), 10, 100);
        assert!(c.get(&k, 1, 1000).is_none(), "expired");
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn keys_depend_on_provider_and_token() {
        assert_ne!(digest(0, "t"), digest(1, "t"));
        assert_ne!(digest(0, "t"), digest(0, "u"));
        assert_eq!(digest(3, "t"), digest(3, "t"));
    }

    #[test]
    fn tokens_without_exp_are_kept_briefly() {
        let mut c = cache(10);
        let k = digest(0, "t");
        c.insert(k, vt(0, 0, None), 10, 100);
        assert!(c.get(&k, 0, 100 + MAX_ENTRY_AGE_S - 1).is_some());
        assert!(c.get(&k, 0, 100 + MAX_ENTRY_AGE_S).is_none());
        c.insert(k, vt(0, 0, Some(50)), 10, 100);
        assert!(c.is_empty(), "already expired tokens are not stored");
    }

    #[test]
    fn bounded_by_entries_with_second_chance() {
        let mut c = cache(3);
        let keys: Vec<Digest> = (0..5).map(|i| digest(0, &i.to_string())).collect();
        for k in &keys[..3] {
            c.insert(*k, vt(0, 0, Some(10_000)), 10, 0);
        }
        assert!(c.get(&keys[0], 0, 1).is_some(), "referenced");
        c.insert(keys[3], vt(0, 0, Some(10_000)), 10, 0);
        assert_eq!(c.len(), 3);
        assert!(
            c.get(&keys[0], 0, 1).is_some(),
            "second chance kept the hot entry"
        );
        assert!(c.get(&keys[1], 0, 1).is_none(), "the cold one went");
        for i in 0..1000 {
            c.insert(digest(0, &format!("x{i}")), vt(0, 0, Some(10_000)), 10, 0);
            assert!(c.len() <= 3);
        }
    }

    #[test]
    fn bounded_by_bytes() {
        let mut c = TokenCache::new(CacheSettings {
            max_entries: 100,
            max_bytes: 3000,
        });
        for i in 0..50 {
            c.insert(digest(0, &i.to_string()), vt(0, 0, Some(10_000)), 500, 0);
            assert!(c.bytes() <= 3000);
        }
        assert!(c.len() <= 3);
        c.insert(digest(0, "huge"), vt(0, 0, Some(10_000)), 10_000, 0);
        assert!(c.get(&digest(0, "huge"), 0, 1).is_none());
    }

    #[test]
    fn disabled_and_version_retention() {
        let mut off = cache(0);
        off.insert(digest(0, "t"), vt(0, 0, Some(10)), 1, 0);
        assert!(off.is_empty());

        let mut c = cache(10);
        c.insert(digest(0, "a"), vt(0, 1, Some(10)), 1, 0);
        c.insert(digest(1, "b"), vt(1, 1, Some(10)), 1, 0);
        c.retain_version(0, 2);
        assert_eq!(c.len(), 1);
        assert!(c.get(&digest(1, "b"), 1, 1).is_some());
    }
}
