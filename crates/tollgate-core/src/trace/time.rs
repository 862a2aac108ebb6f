//! The session clock of a trace: an RFC 3339 time, kept as written and as
//! milliseconds since the Unix epoch.

/// A point in time as a trace gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionTime {
    /// As written (`2024-05-15T15:00:00-05:00`).
    pub text: String,
    /// Milliseconds since the Unix epoch.
    pub unix_ms: i64,
}

impl SessionTime {
    /// Reads an RFC 3339 time (`2024-05-15T15:00:00-05:00`,
    /// `2025-02-25T12:08:00.250Z`); the error says what is wrong.
    pub fn parse(text: &str) -> Result<SessionTime, String> {
        let unix_ms = unix_ms(text.trim()).ok_or_else(|| {
            format!("{text:?} is not an RFC 3339 time such as 2024-05-15T15:00:00-05:00 or 2024-05-15T20:00:00Z")
        })?;
        Ok(SessionTime { text: text.trim().to_owned(), unix_ms })
    }
}

fn number(bytes: &[u8], from: usize, len: usize) -> Option<i64> {
    let digits = bytes.get(from..from + len)?;
    digits.iter().try_fold(0i64, |n, &b| b.is_ascii_digit().then(|| n * 10 + i64::from(b - b'0')))
}

fn expect_byte(bytes: &[u8], at: usize, wanted: &[u8]) -> Option<()> {
    bytes.get(at).filter(|b| wanted.contains(b)).map(|_| ())
}

fn unix_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let year = number(bytes, 0, 4)?;
    expect_byte(bytes, 4, b"-")?;
    let month = number(bytes, 5, 2)?;
    expect_byte(bytes, 7, b"-")?;
    let day = number(bytes, 8, 2)?;
    expect_byte(bytes, 10, b"Tt ")?;
    let hour = number(bytes, 11, 2)?;
    expect_byte(bytes, 13, b":")?;
    let minute = number(bytes, 14, 2)?;
    expect_byte(bytes, 16, b":")?;
    let second = number(bytes, 17, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // A leap second is read as the last second of its minute.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if bytes.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + i64::from(bytes.get(at).copied().unwrap_or(b'0') - b'0');
            }
            at += 1;
        }
        let digits = at - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match bytes.get(at)? {
        b'Z' | b'z' if at + 1 == bytes.len() => 0,
        sign @ (b'+' | b'-') if at + 6 == bytes.len() => {
            let hours = number(bytes, at + 1, 2)?;
            expect_byte(bytes, at + 3, b":")?;
            let minutes = number(bytes, at + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let offset = hours * 60 + minutes;
            if *sign == b'-' { -offset } else { offset }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second.min(59) - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::SessionTime;

    fn ms(text: &str) -> Result<i64, String> {
        SessionTime::parse(text).map(|t| t.unix_ms)
    }

    #[test]
    fn reads_the_domains_clocks_and_the_epoch() {
        assert_eq!(ms("1970-01-01T00:00:00Z"), Ok(0));
        // airline: 2024-05-15 15:00 EST as written in the traces = 20:00 UTC
        assert_eq!(ms("2024-05-15T15:00:00-05:00"), Ok(1_715_803_200_000));
        assert_eq!(ms("2024-05-15T20:00:00Z"), Ok(1_715_803_200_000));
        assert_eq!(ms("2025-02-25T12:08:00.250+00:00"), Ok(1_740_485_280_250));
        assert_eq!(ms("2000-02-29T00:00:00.5Z"), Ok(951_782_400_500));
        assert_eq!(ms("1969-12-31T23:59:59Z"), Ok(-1_000));
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for bad in [
            "",
            "2024-05-15",
            "2024-05-15T15:00:00",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-05-15T24:00:00Z",
            "2024-05-15T15:00:00+5",
            "2024-05-15T15:00:00.Z",
            "2024-05-15T15:00:00Zjunk",
            "२०२४-05-15T15:00:00Z",
        ] {
            let error = ms(bad).err();
            assert!(error.as_deref().is_some_and(|e| e.contains("RFC 3339")), "{bad:?} gave {error:?}");
        }
    }
}
