//! Hexadecimal text, as the XML and JSON encodings write byte strings and big integers.

/// Lower-case hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0F)]));
    }
    s
}

/// Bytes from hex text of either case; `None` if a character is not hex or the count is odd.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let t = text.as_bytes();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    t.chunks_exact(2)
        .map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?))
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A `0x`-prefixed hex number as u64 (at most 16 digits).
pub(crate) fn parse_prefixed_u64(text: &str) -> Option<u64> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_round_trip_and_rejects() {
        assert_eq!(super::encode(&[0x01, 0xAB, 0xff]), "01abff");
        assert_eq!(super::decode("01ABff"), Some(vec![0x01, 0xAB, 0xFF]));
        assert_eq!(super::decode("0"), None);
        assert_eq!(super::decode("0g"), None);
        assert_eq!(super::parse_prefixed_u64("0x80000001"), Some(0x8000_0001));
        assert_eq!(super::parse_prefixed_u64("80000001"), None);
    }
}
