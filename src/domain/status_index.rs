//! Which index of its status list an MSO names. Entries are handed out in order, a counter per
//! list, but the index is that counter passed through a keyed permutation of the list's indexes:
//! the Token Status List draft recommends non-sequential indexes (Privacy Considerations,
//! "Unlinkability"), because MSOs issued together would otherwise sit side by side, letting
//! colluding verifiers link one device's MSOs, and a list's fill would show the issuance rate.
//!
//! The permutation is a balanced Feistel network over the smallest even number of bits that
//! covers the list, with HMAC-SHA256 as its round function keyed by the list's own random key,
//! applied again while the result falls outside the list (cycle walking, which keeps it a
//! bijection on `0..size`). Written here because the standard format-preserving ciphers (FF1 and
//! FF3-1, NIST SP 800-38G) are not defined for domains under a million, and lists are smaller.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Rounds of the Feistel network: four make a strong pseudo-random permutation (Luby–Rackoff);
/// two more for margin.
const ROUNDS: u8 = 6;

/// The permutation of one list's indexes.
#[derive(Clone)]
pub struct IndexPermutation {
    mac: Hmac<Sha256>,
    size: u64,
    half_bits: u32,
}

impl IndexPermutation {
    /// The permutation of `0..size` that `key` selects (`size` ≥ 1; any key length).
    pub fn new(key: &[u8], size: u64) -> Self {
        let size = size.max(1);
        // Bits that cover 0..size, at least 2, rounded up to an even number.
        let bits = (u64::BITS - (size - 1).leading_zeros()).max(2);
        Self {
            mac: Hmac::new_from_slice(key).expect("HMAC takes a key of any length"),
            size,
            half_bits: bits.div_ceil(2),
        }
    }

    /// The index of the `counter`-th entry handed out (`counter` < size).
    pub fn index(&self, counter: u64) -> u64 {
        debug_assert!(counter < self.size);
        // The domain is under four times the list, so a few steps at most on average; the walk
        // ends because the cycle through `counter` comes back inside the list.
        let mut x = counter % self.size;
        loop {
            x = self.feistel(x);
            if x < self.size {
                return x;
            }
        }
    }

    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for round in 0..ROUNDS {
            let f = self.round(round, right) & mask;
            (left, right) = (right, left ^ f);
        }
        (left << self.half_bits) | right
    }

    fn round(&self, round: u8, half: u64) -> u64 {
        let mut mac = self.mac.clone();
        mac.update(&[round]);
        mac.update(&half.to_be_bytes());
        let out = mac.finalize().into_bytes();
        u64::from_be_bytes(out[..8].try_into().expect("HMAC-SHA256 gives 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn all(key: &[u8], size: u64) -> Vec<u64> {
        let p = IndexPermutation::new(key, size);
        (0..size).map(|c| p.index(c)).collect()
    }

    #[test]
    fn is_a_bijection_on_the_list_for_any_size() {
        for size in [1, 2, 3, 15, 16, 17, 100, 1000, 4096, 131_072] {
            let indexes = all(b"list key", size);
            let distinct: BTreeSet<u64> = indexes.iter().copied().collect();
            assert_eq!(distinct.len() as u64, size, "size {size}");
            assert!(distinct.iter().all(|&i| i < size), "size {size}");
        }
    }

    #[test]
    fn depends_on_the_key_and_on_nothing_else() {
        assert_eq!(all(b"key a", 4096), all(b"key a", 4096));
        assert_ne!(all(b"key a", 4096), all(b"key b", 4096));
    }

    #[test]
    fn entries_handed_out_together_are_scattered() {
        let p = IndexPermutation::new(&[7; 32], 131_072);
        // Ten entries of one call (one device's MSOs): not side by side, not in order.
        let call: Vec<u64> = (5000..5010).map(|c| p.index(c)).collect();
        let spread = call.iter().max().unwrap() - call.iter().min().unwrap();
        assert!(spread > 10_000, "{call:?}");
        assert!(call.windows(2).any(|w| w[0] > w[1]), "{call:?}");
        // The first thousand entries reach over the whole list, not its first thousand indexes.
        let first: Vec<u64> = (0..1000).map(|c| p.index(c)).collect();
        let high = first.iter().filter(|&&i| i >= 65_536).count();
        assert!(
            (400..=600).contains(&high),
            "{high} of 1000 in the upper half"
        );
    }
}
