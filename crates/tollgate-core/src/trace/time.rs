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
        let text = text.trim();
        let nanos = crate::value::parse_timestamp(text)?;
        Ok(SessionTime { text: text.to_owned(), unix_ms: nanos.div_euclid(1_000_000) })
    }
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
            "2024-05-15T25:00:00Z",
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
