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
