//! A small deterministic random generator (xorshift) for the randomized tests of the state
//! machines: a seed repeats its run exactly, so a failing case can be replayed.

/// A generator seeded by a run number.
pub struct Rng(u64);

impl Rng {
    /// The generator of run `seed` (any number; 0 is as good as any other).
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `0..n` (`n` at least 1).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
