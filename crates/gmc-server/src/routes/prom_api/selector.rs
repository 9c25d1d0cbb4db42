//! `match[]` selectors of the metadata endpoints (`/series`, `/labels`, label values):
//! parsed by the PromQL parser and turned into store matchers.

use axum::http::StatusCode;
use gmc_model::{MatchOp, Matcher};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::Expr;

use crate::api_error::ApiError;

fn bad(message: String) -> ApiError {
    ApiError::typed(StatusCode::BAD_REQUEST, "bad_data", message)
}

/// Parse one selector into matcher sets, one per `or` alternative.
pub(crate) fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let expr = promql_parser::parser::parse(s)
        .map_err(|e| bad(format!("invalid parameter \"match[]\": {e}")))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(bad(format!(
            "invalid parameter \"match[]\": {s:?} is not a series selector"
        )));
    };
    let mut alternatives: Vec<Vec<&promql_parser::label::Matcher>> = Vec::new();
    if vs.matchers.or_matchers.is_empty() {
        alternatives.push(vs.matchers.matchers.iter().collect());
    } else {
        for alt in &vs.matchers.or_matchers {
            alternatives.push(alt.iter().chain(&vs.matchers.matchers).collect());
        }
    }
    let mut sets = Vec::with_capacity(alternatives.len());
    for alt in alternatives {
        let mut set = Vec::with_capacity(alt.len() + 1);
        if let Some(name) = &vs.name {
            if !alt.iter().any(|m| m.name == gmc_model::METRIC_NAME) {
                set.push(Matcher::equal(gmc_model::METRIC_NAME, name.clone()));
            }
        }
        for m in alt {
            let op = match &m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::Regex,
                PMatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            set.push(
                Matcher::new(op, m.name.clone(), m.value.clone())
                    .map_err(|e| bad(format!("invalid parameter \"match[]\": {e}")))?,
            );
        }
        // Prometheus: a selector must not match the empty label set.
        if set.iter().all(Matcher::matches_empty) {
            return Err(bad(format!(
                "invalid parameter \"match[]\": vector selector {s:?} must contain at least one \
                 non-empty matcher"
            )));
        }
        sets.push(set);
    }
    Ok(sets)
}

/// A Prometheus duration string ("5m", "1h30m", "1d") in milliseconds.
pub(crate) fn parse_duration_ms(s: &str) -> Option<i64> {
    promql_parser::util::parse_duration(s)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_become_matcher_sets() {
        let sets = parse_selector(r#"up{job=~"a|b", env!="dev"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].len(), 3);
        assert!(parse_selector("sum(up)").is_err());
        assert!(parse_selector(r#"{job=~".*"}"#).is_err());
        assert!(parse_selector(r#"{__name__!=""}"#).is_ok());
        assert!(parse_selector("up{").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("5m"), Some(300_000));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("x"), None);
    }
}
