//! Just enough DER for certificates, EC keys and PKCS#12: a bounds-checked reader of
//! tag-length-value items (short and long lengths up to 4 bytes; anything unexpected is
//! `None`) and a writer of definite-length items.

/// A reader over DER bytes (which may be key material: `Debug` shows only the length).
pub struct Der<'a>(pub &'a [u8]);

impl std::fmt::Debug for Der<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Der({} bytes)", self.0.len())
    }
}

impl<'a> Der<'a> {
    /// The next TLV: (tag byte, contents).
    pub fn read(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7F);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        let (content, rest) = rest.split_at(len);
        self.0 = rest;
        Some((tag, content))
    }

    /// The next TLV whole (tag, length and contents).
    pub fn read_raw(&mut self) -> Option<&'a [u8]> {
        let before = self.0;
        self.read()?;
        Some(&before[..before.len() - self.0.len()])
    }

    /// The contents of the next TLV, if its tag is `tag`.
    pub fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.read()? {
            (t, c) if t == tag => Some(c),
            _ => None,
        }
    }
}

/// An ECDSA signature as PKCS#11 gives it (r ‖ s, each `n` bytes) in X9.62 DER form
/// (SEQUENCE { INTEGER r, INTEGER s }), which TLS, X.509 and most KMIP clients use.
pub fn ecdsa_signature_to_der(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let int = |v: &[u8]| {
        let v = &v[v
            .iter()
            .take_while(|b| **b == 0)
            .count()
            .min(v.len().saturating_sub(1))..];
        let mut out = vec![0x02];
        let pad = v.first().is_some_and(|b| b & 0x80 != 0);
        push_len(&mut out, v.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend_from_slice(v);
        out
    };
    let body = [int(r), int(s)].concat();
    let mut out = vec![0x30];
    push_len(&mut out, body.len());
    out.extend(body);
    out
}

/// An X9.62 DER ECDSA signature as r ‖ s of `n` bytes each, if it is one.
pub fn ecdsa_signature_from_der(der: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut outer = Der(der);
    let mut r = Der(outer.expect(0x30)?);
    if !outer.0.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(2 * n);
    for _ in 0..2 {
        let v = r.expect(0x02)?;
        let v = &v[v.iter().take_while(|b| **b == 0).count()..];
        if v.len() > n {
            return None;
        }
        out.extend(std::iter::repeat_n(0, n - v.len()));
        out.extend_from_slice(v);
    }
    r.0.is_empty().then_some(out)
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// One DER item: `tag`, the definite length of `contents`, `contents`.
pub fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len() + 6);
    out.push(tag);
    push_len(&mut out, contents.len());
    out.extend_from_slice(contents);
    out
}

/// A SEQUENCE of already-encoded items.
pub fn seq(items: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &items.concat())
}

/// A non-negative INTEGER.
pub fn uint(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut body = bytes[skip..].to_vec();
    if body[0] & 0x80 != 0 {
        body.insert(0, 0);
    }
    tlv(0x02, &body)
}

/// The value of a non-negative INTEGER's contents that fits in a u64.
pub fn uint_value(contents: &[u8]) -> Option<u64> {
    if contents.is_empty() || contents[0] & 0x80 != 0 {
        return None;
    }
    let v = &contents[contents.iter().take_while(|b| **b == 0).count()..];
    (v.len() <= 8).then(|| v.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signatures_convert_between_raw_and_der() {
        let raw: Vec<u8> = (0..32).map(|i| 0x80 | i).chain(0..32).collect();
        let der = ecdsa_signature_to_der(&raw);
        assert_eq!(der[0], 0x30);
        assert_eq!(ecdsa_signature_from_der(&der, 32), Some(raw));
        assert_eq!(ecdsa_signature_from_der(&[0x30, 0x00], 32), None);
        assert_eq!(ecdsa_signature_from_der(&der[..der.len() - 1], 32), None);
    }

    #[test]
    fn written_items_read_back_with_short_and_long_lengths() {
        for len in [0usize, 0x7F, 0x80, 0xFF, 0x100, 0x1_0000] {
            let item = tlv(0x04, &vec![7; len]);
            let mut r = Der(&item);
            assert_eq!(r.expect(0x04).map(<[u8]>::len), Some(len));
            assert!(r.0.is_empty());
        }
        for v in [0u64, 1, 0x7F, 0x80, 2048, u64::MAX] {
            let item = uint(v);
            assert_eq!(
                uint_value(Der(&item).expect(0x02).unwrap_or_default()),
                Some(v)
            );
        }
    }
}
