//! The one clock services read (unix seconds), and the one way its times go on the wire.

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch: for ordering events within one second (a token
/// issued just after its principal's password changed is valid, one just before is not).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `2026-12-06T03:31:52Z`: RFC 3339 in UTC, to the second. Times are stored as unix
/// seconds (cheap to compare and sort); every answer shows them this way, because raw
/// epoch numbers mean nothing to a person reading the JSON and every JSON consumer parses
/// RFC 3339.
pub fn rfc3339(unix: i64) -> String {
    // Stored times come from `now()` and are always in chrono's range; the epoch
    // fallback only keeps the output well-formed.
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Serde helpers for unix-seconds fields of API views:
/// `#[serde(serialize_with = "crate::clock::as_rfc3339::time")]` (or `::optional_time`).
pub mod as_rfc3339 {
    use serde::Serializer;

    pub fn time<S: Serializer>(unix: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*unix))
    }

    pub fn optional_time<S: Serializer>(unix: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match unix {
            Some(t) => time(t, s),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_to_the_second() {
        assert_eq!(rfc3339(1_796_527_912), "2026-12-06T03:31:52Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
