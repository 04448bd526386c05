//! Allocation-free formatting of CSV fields into a byte buffer.

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn push_int(buf: &mut Vec<u8>, n: i64) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(n).as_bytes());
}

/// A non-negative integer left-padded with zeros to `width` digits.
pub(crate) fn push_padded(buf: &mut Vec<u8>, n: u64, width: usize) {
    let mut b = itoa::Buffer::new();
    let s = b.format(n);
    for _ in s.len()..width {
        buf.push(b'0');
    }
    buf.extend_from_slice(s.as_bytes());
}

/// Minor units (2 decimal places) as a decimal string: `12345` → `123.45`.
pub(crate) fn push_amount(buf: &mut Vec<u8>, minor: i64) {
    debug_assert!(minor >= 0);
    push_int(buf, minor / 100);
    buf.push(b'.');
    push_padded(buf, (minor % 100) as u64, 2);
}

/// `YYYY-MM-DD` of a day number since 1970-01-01.
pub(crate) fn push_date(buf: &mut Vec<u8>, days: i64) {
    let (y, m, d) = civil_from_days(days);
    push_padded(buf, y as u64, 4);
    buf.push(b'-');
    push_padded(buf, u64::from(m), 2);
    buf.push(b'-');
    push_padded(buf, u64::from(d), 2);
}

/// RFC 3339 UTC with a `Z`, whole seconds: `2026-06-29T05:12:33Z`.
pub(crate) fn push_datetime(buf: &mut Vec<u8>, unix_secs: i64) {
    push_date(buf, unix_secs.div_euclid(86_400));
    let s = unix_secs.rem_euclid(86_400) as u64;
    buf.push(b'T');
    push_padded(buf, s / 3600, 2);
    buf.push(b':');
    push_padded(buf, s / 60 % 60, 2);
    buf.push(b':');
    push_padded(buf, s % 60, 2);
    buf.push(b'Z');
}

/// A 48-bit token as 12 lower-case hex digits.
pub(crate) fn push_hex48(buf: &mut Vec<u8>, v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in (0..12).rev() {
        buf.push(HEX[((v >> (shift * 4)) & 0xf) as usize]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDate};

    #[test]
    fn dates_and_times_match_chrono() {
        for secs in [
            0i64,
            951_782_400,
            1_782_777_599,
            1_709_164_800,
            4_102_444_800,
            1_234_567_890,
        ] {
            let mut buf = Vec::new();
            push_datetime(&mut buf, secs);
            let expected = DateTime::from_timestamp(secs, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            assert_eq!(String::from_utf8(buf).unwrap(), expected);
        }
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for days in (0..25_000).step_by(17) {
            let (y, m, d) = civil_from_days(days);
            let date = epoch + chrono::Duration::days(days);
            assert_eq!(NaiveDate::from_ymd_opt(y as i32, m, d), Some(date));
        }
    }

    #[test]
    fn amounts_have_exactly_two_places() {
        for (minor, text) in [
            (1, "0.01"),
            (10, "0.10"),
            (100, "1.00"),
            (123_456, "1234.56"),
            (999_999_999_999, "9999999999.99"),
        ] {
            let mut buf = Vec::new();
            push_amount(&mut buf, minor);
            assert_eq!(buf, text.as_bytes());
        }
        let mut buf = Vec::new();
        push_hex48(&mut buf, 0xabc_0000_0001_2345);
        assert_eq!(buf, b"000000012345");
        buf.clear();
        push_padded(&mut buf, 42, 6);
        assert_eq!(buf, b"000042");
    }
}
