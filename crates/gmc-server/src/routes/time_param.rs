//! Parsing of time and duration query parameters the way Prometheus' API accepts them:
//! Unix seconds with optional fraction, or RFC 3339; durations as "5m" or float seconds.

use std::time::Duration;

use crate::api_error::ApiError;

/// Parse a timestamp parameter into Unix nanoseconds.
pub(crate) fn parse_time(name: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs.abs() < 1e11 {
            return Ok((secs * 1e9).round() as i64);
        }
        return Err(ApiError::bad_request(format!(
            "invalid parameter {name:?}: {v:?} is out of range"
        )));
    }
    humantime::parse_rfc3339_weak(v)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid parameter {name:?}: cannot parse {v:?} as Unix seconds or RFC 3339"
            ))
        })
}

/// Parse a duration parameter ("30s", "5m", or float seconds).
pub(crate) fn parse_duration(name: &str, v: &str) -> Result<Duration, ApiError> {
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs > 0.0 && secs < 1e10 {
            return Ok(Duration::from_secs_f64(secs));
        }
    } else if let Ok(d) = humantime::parse_duration(v) {
        if !d.is_zero() {
            return Ok(d);
        }
    }
    Err(ApiError::bad_request(format!(
        "invalid parameter {name:?}: {v:?} is not a positive duration (e.g. \"30s\", \"5m\", 60)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prometheus_time_forms() {
        assert_eq!(parse_time("t", "1.5").unwrap(), 1_500_000_000);
        assert_eq!(
            parse_time("t", "1970-01-01T00:00:02Z").unwrap(),
            2_000_000_000
        );
        assert!(parse_time("t", "yesterday").is_err());
        assert_eq!(parse_duration("s", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(
            parse_duration("s", "0.5").unwrap(),
            Duration::from_millis(500)
        );
        assert!(parse_duration("s", "0").is_err());
    }
}
