//! A fast hasher for maps whose keys the configuration or the filter
//! itself chooses (metric ids, the token cache's slot numbers), never bytes
//! a client sends: it is not keyed, so it offers no defence against
//! chosen collisions, and needs none there.
//!
//! std's default hasher (SipHash-1-3, randomly keyed) costs tens of
//! nanoseconds for a `u64` in a wasm VM, and the cache-hit path used to pay
//! it several times per request (bench/PROFILE.md). This is the
//! multiply-rotate word hash that compilers use for their own tables: one
//! multiplication per word.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by values the filter chooses; see the module documentation.
pub type TrustedKeyMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// The multiply-rotate word hasher; see the module documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct WordHasher(u64);

/// An odd constant with well-spread bits (2^64 divided by the golden ratio,
/// rounded to odd), so one multiplication mixes a word into the state.
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        // hashbrown takes its control byte from the top seven bits and the
        // bucket from the low bits: fold the well-mixed high half down.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            if let Some(head) = word.get_mut(..rest.len()) {
                head.copy_from_slice(rest);
            }
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    fn hash<T: std::hash::Hash>(t: T) -> u64 {
        BuildHasherDefault::<WordHasher>::default().hash_one(t)
    }

    #[test]
    fn equal_keys_hash_equal_and_neighbours_spread() {
        assert_eq!(hash((3u32, 7usize)), hash((3u32, 7usize)));
        // Consecutive ids (what metric ids and rule numbers are) land in
        // distinct buckets of a small table: the low bits differ.
        let low: HashSet<u64> = (0u64..64).map(|i| hash(i) & 0xff).collect();
        assert!(low.len() > 48, "only {} distinct low bytes", low.len());
        let top: HashSet<u64> = (0u64..64).map(|i| hash(i) >> 57).collect();
        assert!(top.len() > 40, "only {} distinct control bytes", top.len());
    }

    #[test]
    fn byte_strings_use_every_byte() {
        assert_ne!(hash(b"abcdefgh1".as_slice()), hash(b"abcdefgh2".as_slice()));
        assert_ne!(hash(b"a".as_slice()), hash(b"b".as_slice()));
    }

    #[test]
    fn a_map_with_it_behaves_as_a_map() {
        let mut m: TrustedKeyMap<u64, u32> = TrustedKeyMap::default();
        for i in 0..1000u64 {
            m.insert(i.wrapping_mul(0x1_0000_0001), 1);
        }
        assert_eq!(m.len(), 1000);
        assert!(m.contains_key(&0x1_0000_0001));
    }
}
