//! `match[]` selectors of the metadata endpoints (`/series`, `/labels`, label values):
//! parsed by the PromQL parser and turned into store matchers.

use axum::http::StatusCode;
use gmc_model::Matcher;

use crate::api_error::ApiError;

/// Parse one `match[]` selector into matcher sets, one per `or` alternative (the
/// engine's own translation, so the API and PromQL select the same series).
pub(crate) fn parse_selector(s: &str) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let sets = gmc_promql::parse_selector(s).map_err(|e| {
        ApiError::typed(
            StatusCode::BAD_REQUEST,
            "bad_data",
            format!("invalid parameter \"match[]\": {e}"),
        )
    })?;
    // Prometheus: a selector must not match the empty label set.
    if sets
        .iter()
        .any(|set| set.iter().all(Matcher::matches_empty))
    {
        return Err(ApiError::typed(
            StatusCode::BAD_REQUEST,
            "bad_data",
            format!(
                "invalid parameter \"match[]\": vector selector {s:?} must contain at least one \
                 non-empty matcher"
            ),
        ));
    }
    Ok(sets)
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
}
