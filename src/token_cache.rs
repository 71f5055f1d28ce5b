//! The verified-token cache: per VM, bounded by entries and bytes.
//!
//! An entry remembers that a token passed every check that does not depend
//! on time or on the route: signature, issuer, audience, `token_use`,
//! provider claims. It is found by the provider and the whole token: a
//! keyed SipHash (std's `RandomState`, random per cache) of the provider,
//! the token's length and its last [`KEY_TAIL`] bytes picks the slot, and
//! the slot keeps the token text, compared in full on every hit, so a hash
//! collision can only cost a miss, never match another token. The entry is
//! tied to the key set version it was verified with (a new version drops
//! it), and never outlives the token's `exp`. Time claims, scopes and rule
//! claims are still checked on every hit.
//!
//! Why the tail: only verified tokens are stored, and a verified token's
//! tail is its signature, which nobody can choose (the signer's output over
//! the whole header and payload). So the tail spreads entries as well as
//! the whole token would, and a client who sends tokens that share a cached
//! token's tail only misses (the text differs) and is verified, without
//! touching the entry. Hashing all of an 800-byte token cost about 0.5 µs
//! of a hit in Envoy's V8; a SHA-256 digest, the key before that, about
//! 48,000 instructions (bench/PROFILE.md).
//!
//! Eviction is CLOCK (second chance): O(1) amortised, no per-hit
//! bookkeeping beyond one flag, close to LRU for this workload.

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;

use serde_json::{Map, Value};

use crate::claims::TimeClaims;
use crate::hashing::TrustedKeyMap;
use crate::policy::{CacheSettings, ProviderId};
use crate::words;

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
    pub kid: Option<Rc<str>>,
    pub scopes: Vec<String>,
    /// All claims, for rule-level claim checks.
    pub claims: Map<String, Value>,
    /// `claims_to_headers` values, computed once.
    pub headers: Vec<(String, String)>,
    /// `claims_to_filter_state` values `(name, value)`, computed once.
    pub state: Vec<(String, String)>,
}

/// Where an entry lives: a keyed hash of the provider and the token (see
/// the module documentation). Already a keyed hash, so the slot map hashes
/// it with [`crate::hashing`]'s word hasher, not a second SipHash.
type Key = u64;

/// Where [`TokenCache::find`] found a token, for [`TokenCache::get_held`]
/// (the slot is checked again there: provider and text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub provider: ProviderId,
    key: Key,
}

/// How many bytes at the end of a token (its signature's end) go into its
/// key: 32 base64url characters, 192 bits of signature.
pub const KEY_TAIL: usize = 32;

struct Slot {
    /// The token text, compared on every hit; shared with the request
    /// that presents it ([`TokenCache::find`]).
    text: Rc<str>,
    /// Shared with the decisions it answers: a hit copies a pointer, not
    /// the claims (their maps and strings were most of a hit's allocations).
    token: Rc<VerifiedToken>,
    expires_at: u64,
    size: usize,
    referenced: bool,
}

/// The cache. Capacity 0 disables it.
pub struct TokenCache {
    settings: CacheSettings,
    hasher: RandomState,
    slots: TrustedKeyMap<Key, Slot>,
    clock: VecDeque<Key>,
    bytes: usize,
}

impl TokenCache {
    pub fn new(settings: CacheSettings) -> TokenCache {
        TokenCache {
            settings,
            hasher: RandomState::new(),
            slots: TrustedKeyMap::with_capacity_and_hasher(
                settings.max_entries.min(4096),
                Default::default(),
            ),
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

    fn key(&self, provider: ProviderId, bytes: &[u8]) -> Key {
        let tail = bytes
            .get(bytes.len().saturating_sub(KEY_TAIL)..)
            .unwrap_or(bytes);
        self.hasher.hash_one((provider, bytes.len(), tail))
    }

    /// The entry for `text` presented for `provider`, if it is still good
    /// for `key_version` at `now`.
    pub fn get(
        &mut self,
        provider: ProviderId,
        text: &str,
        key_version: u64,
        now: u64,
    ) -> Option<Rc<VerifiedToken>> {
        let key = self.key(provider, text.as_bytes());
        self.get_held(Held { provider, key }, text, key_version, now)
    }

    /// [`TokenCache::get`] for a token [`TokenCache::find`] placed: its key
    /// is known, so it is not hashed again.
    pub fn get_held(
        &mut self,
        held: Held,
        text: &str,
        key_version: u64,
        now: u64,
    ) -> Option<Rc<VerifiedToken>> {
        if !self.enabled() {
            return None;
        }
        let Held { provider, key } = held;
        let slot = self.slots.get_mut(&key)?;
        // Another token with the same key: not this one's entry.
        if slot.token.provider != provider || !same_text(&slot.text, text) {
            return None;
        }
        if slot.token.key_version == key_version && now < slot.expires_at {
            slot.referenced = true;
            return Some(Rc::clone(&slot.token));
        }
        self.remove(&key);
        None
    }

    /// The text of the entry for the token `bytes` presented for
    /// `provider` (fresh or not; [`TokenCache::get`] decides that), and
    /// where it is. Also picks the provider of a rule with several without
    /// parsing the token. A token found here passed every check of
    /// its bytes when it was verified, so the request's copy need not be
    /// scanned or converted: it is this text. Comparing the result with
    /// [`TokenCache::get`] then costs a pointer comparison.
    pub fn find(&self, provider: ProviderId, bytes: &[u8]) -> Option<(Rc<str>, Held)> {
        if !self.enabled() {
            return None;
        }
        let key = self.key(provider, bytes);
        let slot = self.slots.get(&key)?;
        (slot.token.provider == provider && words::equal(slot.text.as_bytes(), bytes))
            .then(|| (Rc::clone(&slot.text), Held { provider, key }))
    }

    /// Remembers that `text` verified as `token` (for `token.provider`).
    pub fn insert(
        &mut self,
        text: impl Into<Rc<str>>,
        token: impl Into<Rc<VerifiedToken>>,
        now: u64,
    ) {
        if !self.enabled() {
            return;
        }
        let (text, token) = (text.into(), token.into());
        let key = self.key(token.provider, text.as_bytes());
        let token_bytes = text.len();
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
                text,
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

    fn remove(&mut self, key: &Key) {
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
    // The slot keeps the token text, and the claims are roughly as large as
    // its payload (most of the token): the token twice, plus fixed overhead.
    token_bytes
        .saturating_mul(2)
        .saturating_add(headers)
        .saturating_add(scopes)
        .saturating_add(256)
}

/// Whether a slot's text is `text`: the same allocation (a request whose
/// token was [`TokenCache::find`]-ed) or equal bytes.
fn same_text(slot: &Rc<str>, text: &str) -> bool {
    std::ptr::eq(slot.as_ptr(), text.as_ptr()) && slot.len() == text.len()
        || words::equal(slot.as_bytes(), text.as_bytes())
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
            state: vec![],
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
        c.insert("t", vt(0, 1, Some(1000)), 100);
        assert!(c.get(0, "t", 1, 999).is_some());
        assert!(c.get(0, "t", 2, 500).is_none(), "other key version");
        assert!(c.is_empty(), "a stale entry is dropped");
        c.insert("t", vt(0, 1, Some(1000)), 100);
        assert!(c.get(0, "t", 1, 1000).is_none(), "expired");
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn entries_depend_on_provider_and_whole_token() {
        let mut c = cache(10);
        c.insert("t", vt(0, 0, Some(1000)), 0);
        assert!(c.get(0, "t", 0, 1).is_some());
        assert!(c.get(1, "t", 0, 1).is_none(), "another provider");
        assert!(c.get(0, "u", 0, 1).is_none());
        assert!(c.get(0, "t ", 0, 1).is_none());
        assert_ne!(c.key(0, b"t"), c.key(1, b"t"));
        assert_eq!(c.key(3, b"t"), c.key(3, b"t"));
    }

    #[test]
    fn a_hash_collision_is_a_miss_not_a_match() {
        let mut c = cache(10);
        c.insert("a", vt(0, 0, Some(1000)), 0);
        // Force the entry of "a" under the key "b" hashes to.
        let slot = c.slots.remove(&c.key(0, b"a")).unwrap();
        let kb = c.key(0, b"b");
        c.slots.insert(kb, slot);
        assert!(c.get(0, "b", 0, 1).is_none());
        assert_eq!(c.len(), 1, "the other token's entry stays");
        c.insert("b", vt(0, 0, Some(1000)), 0);
        assert!(c.get(0, "b", 0, 1).is_some(), "replaced by the real one");
    }

    /// Tokens that share a cached token's tail (its signature's end: what
    /// a client can copy from a token it holds) land on its slot, miss, and
    /// leave the entry in place, whatever else they change.
    #[test]
    fn a_copied_signature_tail_misses_and_leaves_the_entry() {
        let mut c = cache(10);
        let sig = "S".repeat(KEY_TAIL);
        let real = format!("hdr.payload-of-the-real-one.{sig}");
        let forged = format!("hdr.payload-of-the-forged-1.{sig}");
        assert_eq!(real.len(), forged.len());
        c.insert(real.as_str(), vt(0, 0, Some(1000)), 0);
        assert_eq!(
            c.key(0, real.as_bytes()),
            c.key(0, forged.as_bytes()),
            "same tail, same slot"
        );
        for _ in 0..3 {
            assert!(c.get(0, &forged, 0, 1).is_none());
            assert!(c.find(0, forged.as_bytes()).is_none());
        }
        assert_eq!(c.len(), 1);
        assert!(c.get(0, &real, 0, 1).is_some(), "the real entry still hits");
        // Length and provider are part of the key; short tokens key on all
        // their bytes.
        assert_ne!(
            c.key(0, real.as_bytes()),
            c.key(0, format!("x{real}").as_bytes())
        );
        assert_ne!(c.key(0, real.as_bytes()), c.key(1, real.as_bytes()));
        assert_ne!(c.key(0, b"ab"), c.key(0, b"ba"));
    }

    #[test]
    fn tokens_without_exp_are_kept_briefly() {
        let mut c = cache(10);
        c.insert("t", vt(0, 0, None), 100);
        assert!(c.get(0, "t", 0, 100 + MAX_ENTRY_AGE_S - 1).is_some());
        assert!(c.get(0, "t", 0, 100 + MAX_ENTRY_AGE_S).is_none());
        c.insert("t", vt(0, 0, Some(50)), 100);
        assert!(c.is_empty(), "already expired tokens are not stored");
    }

    #[test]
    fn bounded_by_entries_with_second_chance() {
        let mut c = cache(3);
        let texts: Vec<String> = (0..5).map(|i| i.to_string()).collect();
        for t in &texts[..3] {
            c.insert(t.as_str(), vt(0, 0, Some(10_000)), 0);
        }
        assert!(c.get(0, &texts[0], 0, 1).is_some(), "referenced");
        c.insert(texts[3].as_str(), vt(0, 0, Some(10_000)), 0);
        assert_eq!(c.len(), 3);
        assert!(
            c.get(0, &texts[0], 0, 1).is_some(),
            "second chance kept the hot entry"
        );
        assert!(c.get(0, &texts[1], 0, 1).is_none(), "the cold one went");
        for i in 0..1000 {
            c.insert(format!("x{i}").as_str(), vt(0, 0, Some(10_000)), 0);
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
            c.insert(format!("{i:0>500}").as_str(), vt(0, 0, Some(10_000)), 0);
            assert!(c.bytes() <= 3000);
        }
        assert!(c.len() <= 3);
        let huge = "h".repeat(10_000);
        c.insert(huge.as_str(), vt(0, 0, Some(10_000)), 0);
        assert!(c.get(0, &huge, 0, 1).is_none());
    }

    #[test]
    fn disabled_and_version_retention() {
        let mut off = cache(0);
        off.insert("t", vt(0, 0, Some(10)), 0);
        assert!(off.is_empty());
        assert!(off.get(0, "t", 0, 1).is_none());

        let mut c = cache(10);
        c.insert("a", vt(0, 1, Some(10)), 0);
        c.insert("b", vt(1, 1, Some(10)), 0);
        c.retain_version(0, 2);
        assert_eq!(c.len(), 1);
        assert!(c.get(1, "b", 1, 1).is_some());
    }
}
