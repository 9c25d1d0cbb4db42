//! Request parameters of the Prometheus HTTP API: the query string and, for POST, an
//! `application/x-www-form-urlencoded` body, merged as Go's `r.FormValue` does (body
//! values first), with repeated keys such as `match[]` kept in order.

use axum::body::Bytes;
use axum::http::{header, HeaderMap};

use crate::api_error::ApiError;
use crate::routes::time_param;

/// Largest form body accepted on query endpoints (a PromQL query, not data).
pub(crate) const MAX_FORM_BYTES: usize = 1 << 20;

/// Decoded parameters of one request.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Merge the body (when it is a form) and the query string.
    pub(crate) fn from_request(
        query: Option<&str>,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        if !body.is_empty() {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !ct.starts_with("application/x-www-form-urlencoded") {
                return Err(ApiError::unsupported_media(format!(
                    "POST bodies must be application/x-www-form-urlencoded, got {ct:?}"
                )));
            }
            if body.len() > MAX_FORM_BYTES {
                return Err(ApiError::too_large(format!(
                    "form body of {} bytes exceeds the limit of {MAX_FORM_BYTES}",
                    body.len()
                )));
            }
            pairs.extend(
                form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())),
            );
        }
        if let Some(q) = query {
            pairs.extend(
                form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
            );
        }
        Ok(Params { pairs })
    }

    /// First value of `name`, if present and non-empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter (`match[]`).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A required parameter.
    pub(crate) fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| {
            ApiError::bad_request(format!("invalid parameter {name:?}: missing or empty"))
        })
    }

    /// A time parameter in Unix milliseconds, or `default`.
    pub(crate) fn time_ms(&self, name: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => time_param::parse_time(name, v).map(nanos_to_ms),
        }
    }

    /// A required time parameter in Unix milliseconds.
    pub(crate) fn required_time_ms(&self, name: &str) -> Result<i64, ApiError> {
        time_param::parse_time(name, self.required(name)?).map(nanos_to_ms)
    }

    /// An optional non-negative integer (`limit`); 0 means "no limit", as in Prometheus.
    pub(crate) fn limit(&self) -> Result<Option<usize>, ApiError> {
        match self.get("limit") {
            None => Ok(None),
            Some(v) => match v.parse::<i64>() {
                Ok(0) => Ok(None),
                Ok(n) if n > 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
                _ => Err(ApiError::bad_request(format!(
                    "invalid parameter \"limit\": {v:?} is not a non-negative integer"
                ))),
            },
        }
    }
}

/// Nanoseconds to milliseconds, rounding down as Prometheus' `timestamp.FromTime` does.
pub(crate) fn nanos_to_ms(ns: i64) -> i64 {
    ns.div_euclid(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &'static str, query: Option<&str>) -> Params {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        Params::from_request(query, &h, &Bytes::from_static(body.as_bytes())).unwrap()
    }

    #[test]
    fn body_and_query_merge_with_repeats() {
        let p = form(
            "query=sum%28up%29&match%5B%5D=a",
            Some("match[]=b&time=1.5&limit=0"),
        );
        assert_eq!(p.get("query"), Some("sum(up)"));
        assert_eq!(p.all("match[]"), vec!["a", "b"]);
        assert_eq!(p.time_ms("time", 0).unwrap(), 1500);
        assert_eq!(p.time_ms("end", 7).unwrap(), 7);
        assert_eq!(p.limit().unwrap(), None);
        assert!(p.required("start").is_err());
    }

    #[test]
    fn non_form_bodies_are_refused() {
        let h = HeaderMap::new();
        let err = Params::from_request(None, &h, &Bytes::from_static(b"{}")).unwrap_err();
        assert_eq!(err.status.as_u16(), 415);
    }

    #[test]
    fn negative_times_round_down() {
        assert_eq!(nanos_to_ms(-1), -1);
        assert_eq!(nanos_to_ms(1_999_999), 1);
    }
}
