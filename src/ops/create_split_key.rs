//! Create Split Key: a key split into parts (Split Key objects), any threshold of which rebuild
//! it: XOR (all parts needed) or Shamir's polynomial sharing over GF(2^8) (KMIP 1.2+).

use super::attributes::{self, find_enum, find_int};
use super::object::{self, payload, uid_item};
use super::{Context, Outcome, keyblock, wrapping};
use crate::kmip::Error;
use crate::ttlv::tables::enums::{KeyFormatType, ObjectType, SplitKeyMethod};
use crate::ttlv::{Item, Tag, Value};

/// Most parts a key may be split into (Shamir over GF(2^8) has 255 points).
pub const MAX_PARTS: i32 = 255;

/// Handles one Create Split Key request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let int = |tag: Tag| match payload_in.child(tag).map(|v| &v.value) {
        Some(Value::Integer(n)) => Ok(*n),
        Some(_) => Err(Error::InvalidField(format!("{tag}"))),
        None => Err(Error::MissingData(format!("{tag}"))),
    };
    let parts = int(Tag::SPLIT_KEY_PARTS)?;
    let threshold = int(Tag::SPLIT_KEY_THRESHOLD)?;
    if !(1..=MAX_PARTS).contains(&parts) || !(1..=parts).contains(&threshold) {
        return Err(Error::InvalidField(format!(
            "Split Key Parts must be 1 to {MAX_PARTS} and the threshold 1 to the parts"
        )));
    }
    let method = match payload_in.child(Tag::SPLIT_KEY_METHOD).map(|v| &v.value) {
        Some(Value::Enumeration(m)) => SplitKeyMethod::from_u32(*m),
        _ => return Err(Error::MissingData("Split Key Method".into())),
    };
    match method {
        SplitKeyMethod::XOR if threshold != parts => {
            return Err(Error::InvalidField(
                "XOR splitting needs every part: the threshold must equal the parts".into(),
            ));
        }
        SplitKeyMethod::XOR | SplitKeyMethod::PolynomialSharingGF2_8 => {}
        other => {
            return Err(Error::FeatureNotSupported(format!(
                "the {other:?} split key method"
            )));
        }
    }
    let attrs = attributes::parse_all(payload_in.child(Tag::TEMPLATE_ATTRIBUTE))?;
    let base = object::load_target(ctx, &payload_in)?;
    object::check_not_archived(&base)?;
    let secret = match keyblock::material(&wrapping::plain_object(ctx, &base)?)? {
        keyblock::Material::Secret(s) => crate::store::SecretBytes::new(s),
        _ => {
            return Err(Error::FeatureNotSupported(
                "splitting asymmetric keys".into(),
            ));
        }
    };
    let alg = find_enum(&attrs, "Cryptographic Algorithm")
        .or_else(|| attributes::enum_of(&base, "Cryptographic Algorithm"));
    let bits = find_int(&attrs, "Cryptographic Length")
        .or_else(|| attributes::int_of(&base, "Cryptographic Length"));
    let random = |n: usize| ctx.vault()?.token().random(n).map_err(Error::Token);
    let shares = match method {
        SplitKeyMethod::XOR => xor_split(secret.expose(), parts as usize, random)?,
        _ => shamir_split(secret.expose(), parts as usize, threshold as usize, random)?,
    };
    let mut objects = Vec::with_capacity(shares.len());
    for (i, share) in shares.iter().enumerate() {
        let mut block = vec![
            Item::new(
                Tag::KEY_FORMAT_TYPE,
                Value::Enumeration(KeyFormatType::Raw.to_u32()),
            ),
            Item::structure(
                Tag::KEY_VALUE,
                vec![Item::new(
                    Tag::KEY_MATERIAL,
                    Value::ByteString(share.expose().to_vec()),
                )],
            ),
        ];
        block.extend(alg.map(|a| Item::new(Tag::CRYPTOGRAPHIC_ALGORITHM, Value::Enumeration(a))));
        block.extend(bits.map(|b| Item::new(Tag::CRYPTOGRAPHIC_LENGTH, Value::Integer(b))));
        let value = Item::structure(
            Tag::SPLIT_KEY,
            vec![
                Item::new(Tag::SPLIT_KEY_PARTS, Value::Integer(parts)),
                Item::new(Tag::KEY_PART_IDENTIFIER, Value::Integer(i as i32 + 1)),
                Item::new(Tag::SPLIT_KEY_THRESHOLD, Value::Integer(threshold)),
                Item::new(Tag::SPLIT_KEY_METHOD, Value::Enumeration(method.to_u32())),
                Item::structure(Tag::KEY_BLOCK, block),
            ],
        );
        let mut extra = Vec::new();
        extra.extend(alg.map(|a| ("Cryptographic Algorithm", Value::Enumeration(a))));
        extra.extend(bits.map(|b| ("Cryptographic Length", Value::Integer(b))));
        let mut obj = object::new_object(ctx, ObjectType::SplitKey, &attrs, extra)?;
        object::set_value(&mut obj, &value)?;
        objects.push(obj);
    }
    let uids = object::store_new(ctx, objects)?;
    Ok(payload(uids.iter().map(|u| uid_item(u)).collect()))
}

/// XOR splitting: `parts - 1` random shares, and the last one that makes them XOR to `secret`.
fn xor_split(
    secret: &[u8],
    parts: usize,
    random: impl Fn(usize) -> Result<Vec<u8>, Error>,
) -> Result<Vec<crate::store::SecretBytes>, Error> {
    let mut last = secret.to_vec();
    let mut shares = Vec::with_capacity(parts);
    for _ in 1..parts {
        let r = random(secret.len())?;
        last.iter_mut().zip(&r).for_each(|(a, b)| *a ^= b);
        shares.push(crate::store::SecretBytes::new(r));
    }
    shares.push(crate::store::SecretBytes::new(last));
    Ok(shares)
}

/// Multiplication in GF(2^8) with x^8 + x^4 + x^3 + x^2 + 1 (0x11D), the field KMIP's
/// Polynomial Sharing GF(2^8) parts use (the OASIS test case TC-SJ-3 joins only with it).
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1D;
        }
        b >>= 1;
    }
    p
}

/// The multiplicative inverse in GF(2^8) (a^254); 0 has none and maps to 0.
fn gf_inv(a: u8) -> u8 {
    let mut r = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e != 0 {
        if e & 1 != 0 {
            r = gf_mul(r, base);
        }
        base = gf_mul(base, base);
        e >>= 1;
    }
    r
}

/// Shamir sharing over GF(2^8), byte by byte: share `i` (x = i + 1) is a random polynomial of
/// degree `threshold - 1` whose constant term is the secret byte, evaluated at x.
fn shamir_split(
    secret: &[u8],
    parts: usize,
    threshold: usize,
    random: impl Fn(usize) -> Result<Vec<u8>, Error>,
) -> Result<Vec<crate::store::SecretBytes>, Error> {
    let coefficients = crate::store::SecretBytes::new(random(secret.len() * (threshold - 1))?);
    let mut shares = Vec::with_capacity(parts);
    for x in 1..=parts as u8 {
        let share = secret
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let c = &coefficients.expose()[i * (threshold - 1)..(i + 1) * (threshold - 1)];
                // Horner's rule from the highest coefficient down to the secret byte.
                let acc = c.iter().rev().fold(0u8, |acc, k| gf_mul(acc, x) ^ k);
                gf_mul(acc, x) ^ s
            })
            .collect();
        shares.push(crate::store::SecretBytes::new(share));
    }
    Ok(shares)
}

/// Rebuilds a secret from Shamir shares (x, share) by Lagrange interpolation at 0.
pub fn shamir_join(shares: &[(u8, &[u8])]) -> Vec<u8> {
    let len = shares.first().map_or(0, |(_, s)| s.len());
    (0..len)
        .map(|i| {
            shares.iter().fold(0u8, |acc, &(xj, sj)| {
                // l_j(0) = prod over m != j of x_m / (x_m - x_j); subtraction is XOR.
                let l = shares
                    .iter()
                    .filter(|(xm, _)| *xm != xj)
                    .fold(1u8, |p, &(xm, _)| gf_mul(p, gf_mul(xm, gf_inv(xm ^ xj))));
                acc ^ gf_mul(sj[i], l)
            })
        })
        .collect()
}

/// Rebuilds a secret from XOR shares.
pub fn xor_join(shares: &[&[u8]]) -> Vec<u8> {
    let len = shares.first().map_or(0, |s| s.len());
    (0..len)
        .map(|i| shares.iter().fold(0u8, |acc, s| acc ^ s[i]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(n: usize) -> Result<Vec<u8>, Error> {
        Ok((0..n)
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
            .collect())
    }

    #[test]
    fn any_threshold_of_shamir_shares_rebuilds_the_secret_and_fewer_do_not() {
        let secret = b"sixteen byte key";
        let shares = shamir_split(secret, 5, 3, counter).expect("split");
        let pick = |ids: &[usize]| -> Vec<(u8, Vec<u8>)> {
            ids.iter()
                .map(|&i| (i as u8 + 1, shares[i].expose().to_vec()))
                .collect()
        };
        for ids in [[0, 1, 2], [0, 2, 4], [4, 3, 1]] {
            let p = pick(&ids);
            let refs: Vec<(u8, &[u8])> = p.iter().map(|(x, s)| (*x, s.as_slice())).collect();
            assert_eq!(shamir_join(&refs), secret, "{ids:?}");
        }
        let p = pick(&[1, 3]);
        let refs: Vec<(u8, &[u8])> = p.iter().map(|(x, s)| (*x, s.as_slice())).collect();
        assert_ne!(shamir_join(&refs), secret, "two of three");
        assert_eq!(gf_mul(0x80, 0x02), 0x1D, "x^8 reduces by 0x11D");
        assert_eq!(gf_mul(0x53, gf_inv(0x53)), 1);
    }

    #[test]
    fn xor_shares_rebuild_the_secret() {
        let secret = b"0123456789abcdef";
        let shares = xor_split(secret, 3, counter).expect("split");
        let refs: Vec<&[u8]> = shares.iter().map(|s| s.expose()).collect();
        assert_eq!(xor_join(&refs), secret);
    }
}
