//! ISO-8601 date-times for the XML and JSON encodings, without a clock or a time zone database.

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2018-12-19T09:24:26+00:00` for POSIX seconds, or with `.ffffff` when `micros` is given.
pub fn format_iso8601(seconds: i64, micros: Option<u32>) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match micros {
        Some(us) => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{us:06}+00:00"),
        None => format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}+00:00"),
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)` (a missing zone means UTC) into POSIX
/// seconds and microseconds.
pub fn parse_iso8601(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut micros = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let mut scaled = 0u32;
        for (i, c) in frac[..digits].bytes().enumerate() {
            if i < 6 {
                scaled = scaled * 10 + u32::from(c - b'0');
            }
        }
        micros = scaled * 10u32.pow(6u32.saturating_sub(digits as u32));
        rest = &frac[digits..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let zone = &rest[1..];
            let (zh, zm) = match zone.len() {
                5 if zone.as_bytes()[2] == b':' => (zone.get(0..2)?, zone.get(3..5)?),
                4 => (zone.get(0..2)?, zone.get(2..4)?),
                2 => (zone, "00"),
                _ => return None,
            };
            let all_digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
            if !all_digits(zh) || !all_digits(zm) {
                return None;
            }
            let (zh, zm): (i64, i64) = (zh.parse().ok()?, zm.parse().ok()?);
            if zh > 23 || zm > 59 {
                return None;
            }
            sign * (zh * 3600 + zm * 60)
        }
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s.min(59) - offset;
    Some((secs, micros))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_and_offsets() {
        // KMIP 1.x spec example: Friday, March 14, 2008, 11:56:40 GMT = 0x47DA67F8.
        assert_eq!(
            parse_iso8601("2008-03-14T11:56:40Z"),
            Some((0x47DA_67F8, 0))
        );
        assert_eq!(
            parse_iso8601("2008-03-14T21:56:40+10:00"),
            Some((0x47DA_67F8, 0))
        );
        assert_eq!(
            format_iso8601(0x47DA_67F8, None),
            "2008-03-14T11:56:40+00:00"
        );
        assert_eq!(parse_iso8601("1969-12-31T23:59:59.5Z"), Some((-1, 500_000)));
        assert_eq!(
            format_iso8601(-1, Some(500_000)),
            "1969-12-31T23:59:59.500000+00:00"
        );
        assert_eq!(parse_iso8601("2018-02-30T00:00:00Z"), None);
        assert_eq!(parse_iso8601("2018-01-01"), None);
        assert_eq!(parse_iso8601("2018-01-01T00:00:00+1"), None);
    }

    #[test]
    fn format_parse_round_trip_over_wide_range() {
        let mut t: i64 = -62_135_596_800; // 0001-01-01
        while t < 253_402_300_799 {
            let s = format_iso8601(t, None);
            assert_eq!(parse_iso8601(&s), Some((t, 0)), "{s}");
            t += 86_400 * 97 + 3_607;
        }
    }
}
