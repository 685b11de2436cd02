//! Just enough DER to read a certificate's subject (for the client identity) and its validity
//! end (for expiry warnings). Bounds-checked; anything unexpected yields `None`.

/// What ksg needs from a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's Common Names, in order.
    pub common_names: Vec<String>,
    /// The subject's Organizational Units, in order.
    pub organizational_units: Vec<String>,
    /// notAfter, POSIX seconds.
    pub not_after: i64,
}

use crate::der::Der;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_OU: &[u8] = &[0x55, 0x04, 0x0B];

/// Reads the subject names and notAfter of a DER certificate.
pub fn parse(der: &[u8]) -> Option<CertInfo> {
    let cert = Der(der).expect(SEQUENCE)?;
    let mut tbs = Der(Der(cert).expect(SEQUENCE)?);
    let mut field = tbs.read()?;
    if field.0 == 0xA0 {
        field = tbs.read()?; // the explicit version; the serial number follows
    }
    let _serial = field;
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    let mut validity = Der(tbs.expect(SEQUENCE)?);
    validity.read()?;
    let not_after = time(validity.read()?)?;
    let mut subject = Der(tbs.expect(SEQUENCE)?);
    let mut info = CertInfo {
        common_names: Vec::new(),
        organizational_units: Vec::new(),
        not_after,
    };
    while !subject.0.is_empty() {
        let mut rdn = Der(subject.expect(SET)?);
        while !rdn.0.is_empty() {
            let mut atv = Der(rdn.expect(SEQUENCE)?);
            let oid = atv.expect(0x06)?;
            let (_, value) = atv.read()?;
            let text = String::from_utf8_lossy(value).into_owned();
            if oid == OID_CN {
                info.common_names.push(text);
            } else if oid == OID_OU {
                info.organizational_units.push(text);
            }
        }
    }
    Some(info)
}

fn time((tag, content): (u8, &[u8])) -> Option<i64> {
    let s = std::str::from_utf8(content).ok()?;
    let s = s.strip_suffix('Z')?;
    let full = match (tag, s.len()) {
        (0x17, 12) => {
            let yy: i64 = s[..2].parse().ok()?;
            format!(
                "{}{}",
                if yy >= 50 { 1900 + yy } else { 2000 + yy },
                &s[2..]
            )
        }
        (0x18, 14) => s.to_string(),
        _ => return None,
    };
    if !full.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    crate::ttlv::parse_iso8601(&iso).map(|(t, _)| t)
}

/// The DER of a certificate's subject Name (what PKCS#11 wants in CKA_SUBJECT), and of its
/// issuer and serial number.
pub fn names_der(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let cert = Der(der).expect(SEQUENCE)?;
    let mut tbs = Der(Der(cert).expect(SEQUENCE)?);
    let mut serial = tbs.read_raw()?;
    if serial.first() == Some(&0xA0) {
        serial = tbs.read_raw()?;
    }
    tbs.read_raw()?; // signature algorithm
    let issuer = tbs.read_raw()?;
    tbs.read_raw()?; // validity
    let subject = tbs.read_raw()?;
    Some((subject.to_vec(), issuer.to_vec(), serial.to_vec()))
}

/// What Register records about an X.509 certificate (KMIP's certificate attributes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertDetails {
    /// The serial number's INTEGER contents.
    pub serial: Vec<u8>,
    /// The serial number INTEGER, DER.
    pub serial_der: Vec<u8>,
    /// The issuer Name, DER.
    pub issuer_der: Vec<u8>,
    /// The subject Name, DER.
    pub subject_der: Vec<u8>,
    /// The issuer's attributes, in certificate order: (short type name, value).
    pub issuer: Vec<(String, String)>,
    /// The subject's attributes, in certificate order.
    pub subject: Vec<(String, String)>,
    /// The signature algorithm OID (contents).
    pub signature_algorithm: Vec<u8>,
    /// The SubjectPublicKeyInfo, DER.
    pub spki: Vec<u8>,
}

/// Reads what KMIP's certificate attributes need from a DER certificate.
pub fn details(der: &[u8]) -> Option<CertDetails> {
    let mut cert = Der(Der(der).expect(SEQUENCE)?);
    let mut tbs = Der(cert.expect(SEQUENCE)?);
    let mut serial_der = tbs.read_raw()?;
    if serial_der.first() == Some(&0xA0) {
        serial_der = tbs.read_raw()?;
    }
    let serial = Der(serial_der).expect(0x02)?;
    tbs.read_raw()?; // signature algorithm (again below, outside)
    let issuer_der = tbs.read_raw()?;
    tbs.read_raw()?; // validity
    let subject_der = tbs.read_raw()?;
    let spki = tbs.read_raw()?;
    let signature_algorithm = Der(cert.expect(SEQUENCE)?).expect(0x06)?.to_vec();
    Some(CertDetails {
        serial: serial.to_vec(),
        serial_der: serial_der.to_vec(),
        issuer: name_attributes(issuer_der)?,
        subject: name_attributes(subject_der)?,
        issuer_der: issuer_der.to_vec(),
        subject_der: subject_der.to_vec(),
        signature_algorithm,
        spki: spki.to_vec(),
    })
}

/// The subject alternative names of a DER certificate that name a client: DNS names, email
/// addresses (rfc822Name) and URIs, in certificate order.
pub fn subject_alt_names(der: &[u8]) -> Vec<String> {
    const OID_SAN: &[u8] = &[0x55, 0x1D, 0x11];
    let read = || -> Option<Vec<String>> {
        let mut cert = Der(Der(der).expect(SEQUENCE)?);
        let mut tbs = Der(cert.expect(SEQUENCE)?);
        let mut out = Vec::new();
        while let Some((tag, contents)) = tbs.read() {
            if tag != 0xA3 {
                continue; // everything before the [3] extensions
            }
            let mut exts = Der(Der(contents).expect(SEQUENCE)?);
            while let Some(ext) = exts.expect(SEQUENCE) {
                let mut ext = Der(ext);
                if ext.expect(0x06)? != OID_SAN {
                    continue;
                }
                let mut value = ext.read()?;
                if value.0 == 0x01 {
                    value = ext.read()?; // the critical flag
                }
                let mut names = Der(Der(value.1).expect(SEQUENCE)?);
                while let Some((t, name)) = names.read() {
                    // [1] rfc822Name, [2] dNSName, [6] uniformResourceIdentifier (IA5String).
                    if matches!(t, 0x81 | 0x82 | 0x86) {
                        out.push(String::from_utf8_lossy(name).into_owned());
                    }
                }
            }
        }
        Some(out)
    };
    read().unwrap_or_default()
}

/// The attribute type names RFC 4514 and KMIP use, by OID contents.
const NAME_TYPES: &[(&[u8], &str)] = &[
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x0A], "O"),
    (&[0x55, 0x04, 0x0B], "OU"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x05], "SERIALNUMBER"),
    (&[0x55, 0x04, 0x0C], "T"),
    (&[0x55, 0x04, 0x2E], "DNQUALIFIER"),
    (&[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x01], "E"),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x19],
        "DC",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xF2, 0x2C, 0x64, 0x01, 0x01],
        "UID",
    ),
];

/// A Name's attributes in order: (type, value); types without a short name as dotted OIDs.
fn name_attributes(name: &[u8]) -> Option<Vec<(String, String)>> {
    let mut rdns = Der(Der(name).expect(SEQUENCE)?);
    let mut out = Vec::new();
    while !rdns.0.is_empty() {
        let mut set = Der(rdns.expect(SET)?);
        while !set.0.is_empty() {
            let mut atv = Der(set.expect(SEQUENCE)?);
            let oid = atv.expect(0x06)?;
            let (tag, value) = atv.read()?;
            let text = match tag {
                // BMPString: UTF-16 big-endian.
                0x1E => String::from_utf16_lossy(
                    &value
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                        .collect::<Vec<_>>(),
                ),
                _ => String::from_utf8_lossy(value).into_owned(),
            };
            let name = NAME_TYPES
                .iter()
                .find(|(o, _)| *o == oid)
                .map_or_else(|| oid_text(oid), |(_, n)| (*n).to_string());
            out.push((name, text));
        }
    }
    Some(out)
}

/// An OID's contents in dotted form.
fn oid_text(oid: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut v: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        v = (v << 7) | u64::from(b & 0x7F);
        if b & 0x80 == 0 {
            if parts.is_empty() && i < oid.len() {
                let first = (v / 40).min(2);
                parts.push(first.to_string());
                parts.push((v - first * 40).to_string());
            } else {
                parts.push(v.to_string());
            }
            v = 0;
        }
    }
    parts.join(".")
}

/// A Name as RFC 4514 text: last RDN first, `TYPE=value` joined by commas, specials escaped.
pub fn dn_text(attributes: &[(String, String)]) -> String {
    attributes
        .iter()
        .rev()
        .map(|(t, v)| {
            let mut escaped = String::with_capacity(v.len());
            for (i, c) in v.chars().enumerate() {
                let edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.len() && c == ' ');
                if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
                    escaped.push('\\');
                }
                escaped.push(c);
            }
            format!("{t}={escaped}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_details_give_the_names_serial_and_key() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "AU");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Kmip, Test");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "EE");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(b"12345678"));
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("cert");
        let d = details(cert.der()).expect("details");
        assert_eq!(dn_text(&d.subject), "CN=EE,O=Kmip\\, Test,C=AU");
        assert_eq!(d.subject, d.issuer, "self-signed");
        assert_eq!(d.serial, b"12345678");
        assert_eq!(d.serial_der[..2], [0x02, 0x08]);
        assert_eq!(
            d.signature_algorithm,
            [0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02],
            "ecdsa-with-SHA256"
        );
        assert_eq!(d.spki[0], 0x30);
        assert_eq!(
            oid_text(&[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02]),
            "1.2.840.10045.4.3.2"
        );
    }
}
