//! The public entry points: engine options, instant and range queries, parsing.

use std::time::{Duration, Instant};

use gmc_tsdb::Db;
use promql_parser::parser::Expr;

use crate::error::{Error, Result};
use crate::eval::Evaluator;
use crate::value::QueryResult;

/// Limits and defaults of query evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// How far back an instant selector looks for the latest sample (Prometheus: 5 m).
    pub lookback_delta: Duration,
    /// Most samples a query may hold in memory at once (Prometheus: 50 000 000).
    pub max_samples: usize,
    /// Longest a query may run.
    pub timeout: Duration,
    /// Most points per series of a range query (Prometheus: 11 000).
    pub max_points_per_series: usize,
    /// Step of subqueries written without one (`x[1h:]`); Prometheus uses the global
    /// evaluation interval, 1 m by default.
    pub default_subquery_step: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_points_per_series: 11_000,
            default_subquery_step: Duration::from_secs(60),
        }
    }
}

/// The PromQL engine. Stateless apart from its options: `Send + Sync`, share it in an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

/// Parse a query, mapping parser errors to [`Error::Parse`] (with a position when the
/// parser reports none of its own). `step()` and `range()` in its durations are 0, as in
/// an instant query.
pub fn parse(query: &str) -> Result<Expr> {
    crate::eval::parse_query(query, 0, 0)
}

/// Parse a series selector (the HTTP API's `match[]`) into store matchers, one list per
/// `or` alternative; anything but a plain vector selector is a `bad_data` error.
pub fn parse_selector(selector: &str) -> Result<Vec<Vec<gmc_model::Matcher>>> {
    match parse(selector)? {
        Expr::VectorSelector(vs) => crate::eval::selector_matchers(&vs),
        _ => Err(Error::BadData(format!(
            "{selector:?} is not a series selector"
        ))),
    }
}

/// A Prometheus duration ("5m", "1h30m", "1d") in milliseconds.
pub fn parse_duration_ms(d: &str) -> Option<i64> {
    promql_parser::util::parse_duration(d)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
}

impl Engine {
    /// An engine with `opts`.
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts }
    }

    /// The options in force.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluate `query` at `time_ms`.
    pub fn instant_query(&self, db: &Db, query: &str, time_ms: i64) -> Result<QueryResult> {
        let started = Instant::now();
        let expr = parse(query)?;
        let mut ev = Evaluator::new(db, &self.opts, started, time_ms, time_ms, 1);
        let value = ev.run(query, &expr, true)?;
        Ok(ev.finish(value, started))
    }

    /// Evaluate `query` at every `step_ms` from `start_ms` to `end_ms` (inclusive).
    pub fn range_query(
        &self,
        db: &Db,
        query: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult> {
        let started = Instant::now();
        if step_ms <= 0 {
            return Err(Error::ZeroStep);
        }
        if end_ms < start_ms {
            return Err(Error::EndBeforeStart);
        }
        let points = (i128::from(end_ms) - i128::from(start_ms)) / i128::from(step_ms) + 1;
        if usize::try_from(points).map_or(true, |p| p > self.opts.max_points_per_series) {
            return Err(Error::TooManyPoints {
                max: self.opts.max_points_per_series,
            });
        }
        let expr = crate::eval::parse_query(query, step_ms, end_ms - start_ms)?;
        let mut ev = Evaluator::new(db, &self.opts, started, start_ms, end_ms, step_ms);
        ev.use_rollups_if_needed();
        let value = ev.run(query, &expr, false)?;
        Ok(ev.finish(value, started))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("5m"), Some(300_000));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("x"), None);
    }

    #[test]
    fn duration_expressions_resolve_with_the_query_step_and_range() {
        let range_of =
            |q: &str, step: i64, range: i64| match crate::eval::parse_query(q, step, range) {
                Ok(Expr::MatrixSelector(ms)) => ms.range.as_millis(),
                other => panic!("{q}: {other:?}"),
            };
        assert_eq!(range_of("x[26m+4m]", 0, 0), 1_800_000);
        assert_eq!(range_of("x[2m*(10+5)]", 0, 0), 1_800_000);
        assert_eq!(range_of("x[1h30m % 1h]", 0, 0), 1_800_000);
        assert_eq!(range_of("x[step()*2]", 15_000, 0), 30_000);
        assert_eq!(range_of("x[min_of(range(), 1h)]", 15_000, 600_000), 600_000);
        // An offset takes one term: what follows is arithmetic on the selected value.
        match crate::eval::parse_query("x offset -min_of(step(), 1s) + 8000", 5_000, 0) {
            Ok(Expr::Binary(b)) => match *b.lhs {
                Expr::VectorSelector(vs) => assert_eq!(
                    vs.offset,
                    Some(promql_parser::parser::Offset::Neg(
                        std::time::Duration::from_secs(1)
                    ))
                ),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn selectors_become_matcher_sets() {
        let sets = parse_selector(r#"up{job=~"a|b", env!="dev"}"#).unwrap();
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].len(), 3);
        assert!(parse_selector("sum(up)").is_err());
        assert!(parse_selector("up{").is_err());
    }
}
