//! Secret bytes in memory: `Debug` shows only the length; the bytes are zeroed when dropped.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Key material or another secret, zeroed on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Default)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes` (no copy).
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// The secret, for the code that must use it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_only_the_length() {
        let s = SecretBytes::new(vec![0xAB; 32]);
        assert_eq!(format!("{s:?}"), "SecretBytes(32 bytes)");
        let mut t = s.clone();
        t.zeroize();
        assert!(t.is_empty());
    }
}
