//! The run fingerprint: a 64-bit hash folded over every processed event (time and a tag the
//! world chooses). Two runs with equal fingerprints processed the same events at the same
//! instants; a differing fingerprint is the first sign of a determinism leak.

/// Order-sensitive hash over the event sequence. Not cryptographic: it only has to make an
/// accidental collision between two different runs vanishingly unlikely, and be cheap enough
/// to run on every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    state: u64,
}

impl Default for Fingerprint {
    fn default() -> Self {
        Self::new()
    }
}

/// SplitMix64's finalizer: a bijective 64-bit mixer with full avalanche.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Fingerprint {
    pub const fn new() -> Self {
        Fingerprint {
            state: 0x6a09_e667_f3bc_c908,
        }
    }
    #[inline]
    pub fn absorb(&mut self, word: u64) {
        self.state = mix64(self.state.rotate_left(23) ^ word).wrapping_add(0x9e37_79b9_7f4a_7c15);
    }
    pub const fn value(&self) -> u64 {
        self.state
    }
    pub fn hex(&self) -> String {
        format!("{:016x}", self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_matters() {
        let mut a = Fingerprint::new();
        a.absorb(1);
        a.absorb(2);
        let mut b = Fingerprint::new();
        b.absorb(2);
        b.absorb(1);
        assert_ne!(a, b);
    }
}
