//! The evaluator: every expression is evaluated over the whole step grid at once (an
//! instant query is a grid of one step). Selectors read the store once per selector over
//! the whole range and then slide over it; per-series work (label sets, match signatures,
//! group keys) is done once per series, not once per step.

mod aggregate;
mod binary;
mod functions;
mod range_fns;
mod window_extrema;
mod window_sums;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gmc_model::{Histogram, Labels, MatchOp, Matcher, METRIC_NAME};
use gmc_tsdb::{Db, SampleValue};
use promql_parser::label::{MatchOp as PMatchOp, Matchers};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{AtModifier, Expr, MatrixSelector, Offset, VectorSelector};

use crate::engine::EngineOptions;
use crate::error::{Error, Result};
use crate::value::{InstantSample, PointValue, QueryResult, QueryStats, RangeSeries, Value};

/// Parse a query into the parser's AST, mapping its errors.
/// Parse `query`; `step()` and `range()` in its durations are `step_ms` and `range_ms`.
pub(crate) fn parse_query(query: &str, step_ms: i64, range_ms: i64) -> Result<Expr> {
    // Evaluation recurses over the syntax tree: refuse absurd nesting up front rather
    // than risk the stack of the thread running the query.
    let (depth, operators) = nesting_depth(query);
    if depth > MAX_NESTING {
        return Err(Error::Parse(format!(
            "1:1: parse error: query is nested more than {MAX_NESTING} levels deep"
        )));
    }
    if operators > MAX_OPERATORS {
        return Err(Error::Parse(format!(
            "1:1: parse error: query has more than {MAX_OPERATORS} operators"
        )));
    }
    let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
    promql_parser::parser::parse_with_durations(query, ms(step_ms), ms(range_ms))
        .map_err(|e| Error::Parse(parse_error_message(query, &e)))
}

/// Stack left below which evaluation continues on a new heap-allocated stack segment.
const STACK_RED_ZONE: usize = 128 * 1024;
/// Size of each such segment.
const STACK_GROWTH: usize = 2 * 1024 * 1024;

/// Deepest bracket nesting accepted in a query.
const MAX_NESTING: usize = 256;

/// Most operator characters accepted outside label matchers and strings (binary chains
/// nest as deeply as they are long).
const MAX_OPERATORS: usize = 1000;

/// Deepest nesting of `(`, `[` and `{`, and the number of operator characters, outside
/// string literals (operators also outside `{...}` matchers).
fn nesting_depth(query: &str) -> (usize, usize) {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut braces = 0usize;
    let mut ops = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in query.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
                if c == '{' {
                    braces += 1;
                }
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                if c == '}' {
                    braces = braces.saturating_sub(1);
                }
            }
            '+' | '-' | '*' | '/' | '%' | '^' | '<' | '>' | '=' | '!' if braces == 0 => ops += 1,
            _ => {}
        }
    }
    (max, ops)
}

/// Prometheus prints parse errors as `line:col: parse error: ...`. The parser reports
/// grammar errors without a position, so point at the end of the input then (where an
/// LR parser that found no valid continuation gives up at the latest).
fn parse_error_message(query: &str, msg: &str) -> String {
    if msg.contains("parse error") || msg.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        return msg.to_owned();
    }
    let line = query.lines().count().max(1);
    let col = query.lines().last().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}: parse error: {msg}")
}

/// String literals of `query` whose escapes decode to invalid UTF-8 (Prometheus keeps
/// such bytes and rejects them as label names; the parser maps each `\xNN` to U+00NN).
/// Returns `(string as the parser decoded it, literal as written)`.
pub(crate) fn invalid_utf8_literals(query: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let chars: Vec<char> = query.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let q = chars[i];
        if q != '"' && q != '\'' {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        let mut bytes: Vec<u8> = Vec::new();
        let mut parsed = String::new();
        let mut has_hex = false;
        while i < chars.len() && chars[i] != q {
            let c = chars[i];
            if c == '\\' && i + 1 < chars.len() {
                let e = chars[i + 1];
                if e == 'x' && i + 3 < chars.len() {
                    let hex: String = chars[i + 2..i + 4].iter().collect();
                    if let Ok(b) = u8::from_str_radix(&hex, 16) {
                        bytes.push(b);
                        parsed.push(char::from(b));
                        has_hex = true;
                        i += 4;
                        continue;
                    }
                }
                let mapped = match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                };
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(mapped.encode_utf8(&mut buf).as_bytes());
                parsed.push(mapped);
                i += 2;
                continue;
            }
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            parsed.push(c);
            i += 1;
        }
        if has_hex && std::str::from_utf8(&bytes).is_err() {
            out.push((
                parsed,
                chars[start + 1..i.min(chars.len())].iter().collect(),
            ));
        }
        i += 1;
    }
    out
}

/// The evaluation grid: `start..=end` by `step` (milliseconds, `step > 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grid {
    pub(crate) start: i64,
    pub(crate) end: i64,
    pub(crate) step: i64,
}

impl Grid {
    pub(crate) fn len(&self) -> usize {
        ((self.end - self.start) / self.step + 1) as usize
    }
    pub(crate) fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }
    pub(crate) fn idx(&self, t: i64) -> usize {
        ((t - self.start) / self.step) as usize
    }
    /// Index of the first step at or after `t` (`len()` when none is).
    pub(crate) fn first_at_or_after(&self, t: i64) -> usize {
        if t <= self.start {
            return 0;
        }
        // Positive, and wide enough that no timestamp pair overflows.
        let d = (i128::from(t) - i128::from(self.start)).unsigned_abs();
        let k = d.div_ceil(u128::from(self.step.unsigned_abs().max(1)));
        usize::try_from(k).map_or(self.len(), |k| k.min(self.len()))
    }
    fn single(t: i64) -> Grid {
        Grid {
            start: t,
            end: t,
            step: 1,
        }
    }
}

/// One series of an instant vector over the grid (points at grid timestamps), or of a
/// range vector (points at sample timestamps).
#[derive(Debug, Clone, Default)]
pub(crate) struct Series {
    pub(crate) labels: Labels,
    /// Delayed `__name__` removal: the name is dropped when the result is returned.
    pub(crate) drop_name: bool,
    pub(crate) floats: Vec<(i64, f64)>,
    pub(crate) hists: Vec<(i64, Arc<Histogram>)>,
}

impl Series {
    pub(crate) fn new(labels: Labels, drop_name: bool) -> Self {
        Series {
            labels,
            drop_name,
            floats: Vec::new(),
            hists: Vec::new(),
        }
    }
    fn points(&self) -> usize {
        self.floats.len() + self.hists.len()
    }
}

/// A value over the grid.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// One value per grid step.
    Scalar(Vec<f64>),
    Str(String),
    Vector(Vec<Series>),
    /// Only for instant queries of range expressions.
    Matrix(Vec<Series>),
}

/// A sample value at one step.
#[derive(Debug, Clone)]
pub(crate) enum Pv {
    F(f64),
    H(Arc<Histogram>),
}

/// Raw samples of one selected series, timestamps in milliseconds.
#[derive(Debug, Clone, Default)]
pub(crate) struct Raw {
    pub(crate) labels: Labels,
    pub(crate) floats: Vec<(i64, f64)>,
    pub(crate) hists: Vec<(i64, Arc<Histogram>)>,
}

impl Raw {
    /// The first and last sample timestamps over floats and histograms (each kind is
    /// sorted); `None` for a series without samples.
    pub(crate) fn span(&self) -> Option<(i64, i64)> {
        let first = [
            self.floats.first().map(|p| p.0),
            self.hists.first().map(|p| p.0),
        ];
        let last = [
            self.floats.last().map(|p| p.0),
            self.hists.last().map(|p| p.0),
        ];
        Some((
            first.into_iter().flatten().min()?,
            last.into_iter().flatten().max()?,
        ))
    }
}

/// The input of a range function: raw series and, per grid step, the window end.
pub(crate) struct RangeInput {
    pub(crate) series: Vec<Raw>,
    /// Range of the window in milliseconds; a window is `(end - range, end]`.
    pub(crate) range: i64,
    /// Window end per grid step.
    pub(crate) ends: Vec<i64>,
    /// Metric name of the selector, when written as `name[...]` (for annotations).
    pub(crate) metric_name: Option<String>,
}

/// A matrix selector's series located but not decoded, for range functions that decode
/// one series at a time (see [`Evaluator::matrix_lazy`]).
pub(crate) struct LazyInput {
    pub(crate) series: Vec<gmc_tsdb::LazySeries>,
    /// Range of the window in milliseconds; a window is `(end - range, end]`.
    pub(crate) range: i64,
    /// Window end per grid step.
    pub(crate) ends: Vec<i64>,
    /// Milliseconds read: from the first window's start to the last window's end.
    pub(crate) span: i64,
    /// Metric name of the selector, when written as `name[...]` (for annotations).
    pub(crate) metric_name: Option<String>,
}

/// Runs one query.
pub(crate) struct Evaluator<'a> {
    db: &'a Db,
    pub(crate) opts: &'a EngineOptions,
    deadline: Instant,
    started: Instant,
    pub(crate) query_start: i64,
    pub(crate) query_end: i64,
    query_step: i64,
    cur_samples: u64,
    pub(crate) stats: QueryStats,
    pub(crate) warnings: Vec<String>,
    tick: u32,
    /// String literals that are invalid UTF-8 in Prometheus' eyes.
    pub(crate) invalid_strings: Vec<(String, String)>,
    /// Set when a range query reaches back past the raw retention with a step of a minute
    /// or more: selectors then read this rollup resolution (last value per bucket).
    rollup: Option<gmc_tsdb::block::Resolution>,
}

/// Functions whose result depends on the evaluation time even when all their arguments
/// are fixed by `@` (Prometheus' `AtModifierUnsafeFunctions`).
const AT_UNSAFE: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
    "predict_linear",
    "time",
    "timestamp",
];

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Some(Offset::Neg(d)) => -i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
    }
}

/// Non-empty series as a result matrix, sorted by labels.
fn to_matrix(series: Vec<Series>) -> Value {
    let mut out: Vec<RangeSeries> = series
        .into_iter()
        .filter(|s| s.points() > 0)
        .map(|s| RangeSeries {
            labels: s.labels,
            floats: s.floats,
            histograms: s.hists,
        })
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Value::Matrix(out)
}

/// Start of millisecond `ms` in nanoseconds.
fn ms_to_ns_floor(ms: i64) -> i64 {
    gmc_model::millis_to_nanos(ms)
}

/// Last nanosecond of millisecond `ms` (a sample belongs to millisecond floor(ns / 1e6)).
fn ms_to_ns_ceil(ms: i64) -> i64 {
    gmc_model::millis_to_nanos(ms).saturating_add(gmc_model::NANOS_PER_MILLI - 1)
}

/// How an instant vector selector picks each step's sample from a series' raw data.
#[derive(Clone, Copy)]
struct StepPick {
    grid: Grid,
    /// `@` time, if any (every step then reads the same instant).
    at: Option<i64>,
    /// Offset in milliseconds.
    off: i64,
    /// Lookback delta in milliseconds.
    lookback: i64,
    /// Each point's value is the sample's timestamp in seconds (for `timestamp()`).
    timestamps: bool,
}

impl StepPick {
    /// The series' value at every step: the newest sample within the lookback window,
    /// unless that is a stale marker.
    fn series(&self, raw: Raw) -> Series {
        let StepPick {
            grid,
            at,
            off,
            lookback,
            timestamps,
        } = *self;
        let n = grid.len();
        let span = raw.span();
        let mut s = Series::new(raw.labels, false);
        s.floats.reserve(n.min(raw.floats.len()));
        // One cursor per kind (a series may switch between floats and histograms);
        // both only move forward because the step times never decrease.
        let (mut jf, mut jh) = (0usize, 0usize);
        let mut last_hist_ts: Option<i64> = None;
        let mut repeat: Option<Arc<Histogram>> = None;
        // Steps before the first sample, or a lookback past the last, show nothing:
        // visit only the others.
        let Some((first, last)) = span else {
            return s;
        };
        let steps = match at {
            Some(_) => 0..n,
            None => {
                grid.first_at_or_after(first.saturating_add(off))
                    ..grid.first_at_or_after(last.saturating_add(lookback).saturating_add(off))
            }
        };
        for i in steps {
            let te = at.unwrap_or(grid.ts(i)) - off;
            // A step moves the cursors by a step's worth of samples (15 at a 15 s step
            // over 1 s data): a gallop, not a dependent compare per sample.
            jf = range_fns::advance_past(&raw.floats, jf, te, |p| p.0);
            jh = range_fns::advance_past(&raw.hists, jh, te, |p| p.0);
            let f = jf.checked_sub(1).map(|k| raw.floats[k]);
            let h = jh.checked_sub(1).map(|k| &raw.hists[k]);
            let t = grid.ts(i);
            // The newer of the two candidates decides, even when it is a stale
            // marker or out of the lookback window (an older one must not show).
            let float_newest = matches!((f, h), (Some((ft, _)), h) if h.is_none_or(|h| h.0 < ft));
            match (f, h) {
                (Some((ts, fv)), _) if float_newest => {
                    let fresh = ts > te - lookback && !gmc_model::is_stale_nan(fv);
                    if fresh {
                        s.floats
                            .push((t, if timestamps { ts as f64 / 1000.0 } else { fv }));
                    }
                }
                (_, Some((ts, hv))) => {
                    let ts = *ts;
                    if ts <= te - lookback {
                        continue;
                    }
                    if timestamps {
                        s.floats.push((t, ts as f64 / 1000.0));
                    } else if last_hist_ts == Some(ts)
                        && hv.reset_hint == gmc_model::CounterResetHint::Reset
                    {
                        // The same sample again at a later step (e.g. in a subquery):
                        // its reset must not be counted twice.
                        let again = repeat.get_or_insert_with(|| {
                            let mut x = (**hv).clone();
                            x.reset_hint = gmc_model::CounterResetHint::NotReset;
                            Arc::new(x)
                        });
                        s.hists.push((t, Arc::clone(again)));
                    } else {
                        repeat = None;
                        last_hist_ts = Some(ts);
                        s.hists.push((t, Arc::clone(hv)));
                    }
                }
                _ => {}
            }
        }
        s
    }
}

/// Samples a series holds over `span_ms`, for deciding how many threads a streamed read
/// uses before any series is decoded: one per second, the trading workload's interval.
fn samples_guess(span_ms: i64) -> usize {
    usize::try_from(span_ms / 1000).unwrap_or(1).max(1)
}

/// How many windows of `range` ms visit each sample on `grid` (`windows` in all).
fn windows_per_sample(range: i64, grid: Grid, windows: usize) -> usize {
    usize::try_from(range / grid.step.max(1))
        .unwrap_or(1)
        .clamp(1, windows.max(1))
}

/// Read every `or` alternative of `vs` (see [`selector_matchers`]) with `read`, keeping the
/// first series of each label set; sorted by labels (the store sorts each alternative).
fn alternatives<T>(
    vs: &VectorSelector,
    mut read: impl FnMut(&[Matcher]) -> Result<Vec<T>>,
    labels: impl Fn(&T) -> &Labels,
) -> Result<Vec<T>> {
    let sets = selector_matchers(vs)?;
    if let [only] = sets.as_slice() {
        return read(only);
    }
    let mut out: Vec<T> = Vec::new();
    let mut seen: std::collections::HashSet<Labels> = std::collections::HashSet::new();
    for matchers in &sets {
        for s in read(matchers)? {
            if seen.insert(labels(&s).clone()) {
                out.push(s);
            }
        }
    }
    out.sort_by(|a, b| labels(a).cmp(labels(b)));
    Ok(out)
}

/// Metric name of a selector written as `name` or with `__name__="name"`.
fn selector_name(vs: &VectorSelector) -> Option<String> {
    vs.name.clone().or_else(|| {
        vs.matchers
            .matchers
            .iter()
            .find(|m| m.name == METRIC_NAME && matches!(m.op, PMatchOp::Equal))
            .map(|m| m.value.clone())
    })
}

/// A selected series with millisecond timestamps, floats and histograms apart; `div`
/// turns the store's timestamps into milliseconds (1 when the store already did, else
/// `NANOS_PER_MILLI`). Float-only series move without a copy.
pub(crate) fn to_raw(s: gmc_tsdb::Selected, div: i64) -> Raw {
    let ms = div;
    match s {
        gmc_tsdb::Selected::Floats(f) => {
            let (labels, mut floats) = f.into_parts();
            if ms > 1 {
                for p in &mut floats {
                    p.0 = p.0.div_euclid(ms);
                }
            }
            Raw {
                labels,
                floats,
                hists: Vec::new(),
            }
        }
        gmc_tsdb::Selected::Samples(st) => {
            let n = st.len();
            let (labels, samples) = st.into_parts();
            let mut r = Raw {
                labels,
                floats: Vec::with_capacity(n),
                hists: Vec::new(),
            };
            for smp in samples {
                let t = smp.ts_nanos.div_euclid(ms);
                match smp.value {
                    SampleValue::Float(f) => r.floats.push((t, f)),
                    SampleValue::Histogram(h) => r.hists.push((t, h)),
                }
            }
            r
        }
    }
}

/// Translate a selector's matchers (and its name) to store matchers; one list per `or`
/// alternative. Shared with the HTTP API's `match[]` parameters.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>> {
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>> {
        let mut out = Vec::with_capacity(ms.len() + 1);
        if let Some(name) = &vs.name {
            out.push(Matcher::equal(METRIC_NAME, name.clone()));
        }
        for m in ms {
            let op = match m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::Regex,
                PMatchOp::NotRe(_) => MatchOp::NotRegex,
            };
            out.push(
                Matcher::new(op, m.name.clone(), m.value.clone())
                    .map_err(|e| Error::BadData(e.to_string()))?,
            );
        }
        Ok(out)
    };
    let Matchers {
        matchers,
        or_matchers,
    } = &vs.matchers;
    if or_matchers.is_empty() {
        Ok(vec![convert(matchers)?])
    } else {
        or_matchers.iter().map(|m| convert(m)).collect()
    }
}

pub(crate) fn dur_ms(d: &std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Compensated summation step, shared with the histogram math.
pub(crate) fn kahan(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    aggregate::kahan_inc(inc, sum, c)
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)` with Prometheus' Inf/NaN spelling.
pub(crate) fn format_float(f: f64) -> String {
    aggregate::format_float(f)
}

/// Strip parentheses.
pub(crate) fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(
        db: &'a Db,
        opts: &'a EngineOptions,
        started: Instant,
        start: i64,
        end: i64,
        step: i64,
    ) -> Self {
        Evaluator {
            db,
            opts,
            deadline: started + opts.timeout,
            started,
            query_start: start,
            query_end: end,
            query_step: step,
            cur_samples: 0,
            stats: QueryStats::default(),
            warnings: Vec::new(),
            tick: 0,
            invalid_strings: Vec::new(),
            rollup: None,
        }
    }

    /// Read rollups instead of raw samples when this range query needs data the raw
    /// retention no longer holds and its step is at least a minute (so a 1 m bucket is
    /// no coarser than the answer). Short steps and ranges raw data still covers keep
    /// exact raw semantics; when rollups answer, a warning says so.
    pub(crate) fn use_rollups_if_needed(&mut self) {
        use gmc_tsdb::block::Resolution;
        let step = self.query_step;
        let lookback = dur_ms(&self.opts.lookback_delta);
        let mint = gmc_model::millis_to_nanos(self.query_start.saturating_sub(lookback));
        if self.db.resolution_for(Duration::from_nanos(1), mint) == Resolution::Raw {
            return;
        }
        let any_rollups = [Resolution::OneMinute, Resolution::OneHour]
            .into_iter()
            .any(|r| self.db.rollup_watermark(r).is_some());
        if !any_rollups {
            return;
        }
        if step < 60_000 {
            self.warn(
                "PromQL info: raw samples before the raw retention have expired; a step of 1m \
                 or more reads the 1m/1h rollups instead"
                    .to_owned(),
            );
            return;
        }
        let res = self.db.resolution_for(
            Duration::from_millis(u64::try_from(step).unwrap_or(u64::MAX)),
            mint,
        );
        // Only when rollup blocks exist: data older than the raw retention that is still
        // raw (just backfilled, not yet expired) keeps being read raw.
        if res == Resolution::Raw || self.db.rollup_watermark(res).is_none() {
            return;
        }
        let name = match res {
            Resolution::OneMinute => "1m",
            Resolution::OneHour => "1h",
            Resolution::Raw => "raw",
        };
        self.warn(format!(
            "PromQL info: the range reaches past the raw retention; selectors read the {name} \
             rollups (last value per {name} bucket, lookback at least {name})"
        ));
        self.rollup = Some(res);
    }

    /// Effective lookback in ms: at least one rollup bucket when rollups answer.
    fn lookback_ms(&self) -> i64 {
        let lb = dur_ms(&self.opts.lookback_delta);
        match self.rollup {
            Some(r) => lb.max(r.step_nanos() / gmc_model::NANOS_PER_MILLI),
            None => lb,
        }
    }

    /// Series of `matchers` from `q`: raw samples, or the last value (and last histogram)
    /// per rollup bucket when [`Self::use_rollups_if_needed`] chose rollups.
    fn read_store(
        &self,
        q: &gmc_tsdb::Querier,
        matchers: &[gmc_model::Matcher],
    ) -> Result<Vec<gmc_tsdb::Series>> {
        let Some(res) = self.rollup else {
            return Ok(q.select(matchers)?);
        };
        use gmc_tsdb::downsample::Aggregate;
        let mut out = q.select_rollup(matchers, res, Aggregate::Last)?;
        for h in q.select_rollup(matchers, res, Aggregate::HistogramLast)? {
            if !out.iter().any(|s| s.labels() == h.labels()) {
                out.push(h);
            }
        }
        out.sort_by(|a, b| a.labels().cmp(b.labels()));
        Ok(out)
    }

    /// Account for `n` more samples held in memory.
    pub(crate) fn track(&mut self, n: usize) -> Result<()> {
        self.cur_samples += n as u64;
        if self.cur_samples > self.stats.peak_samples {
            self.stats.peak_samples = self.cur_samples;
        }
        if self.cur_samples > self.opts.max_samples as u64 {
            return Err(Error::TooManySamples);
        }
        Ok(())
    }

    /// Release `n` samples.
    pub(crate) fn release(&mut self, n: usize) {
        self.cur_samples = self.cur_samples.saturating_sub(n as u64);
    }

    /// Check the deadline (cheaply: the clock is read every 64 calls).
    pub(crate) fn check_deadline(&mut self) -> Result<()> {
        self.tick = self.tick.wrapping_add(1);
        if self.tick.is_multiple_of(64) && Instant::now() > self.deadline {
            return Err(Error::Timeout(self.opts.timeout));
        }
        Ok(())
    }

    pub(crate) fn query_step_ms(&self) -> i64 {
        self.query_step
    }

    /// The literal as written when `s` is a string Prometheus would see as invalid UTF-8.
    pub(crate) fn invalid_utf8(&self, s: &str) -> Option<&str> {
        self.invalid_strings
            .iter()
            .find(|(p, _)| p == s)
            .map(|(_, raw)| raw.as_str())
    }

    pub(crate) fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    pub(crate) fn finish(self, value: Value, started: Instant) -> QueryResult {
        let mut stats = self.stats;
        stats.eval_time = started.elapsed();
        let _ = self.started;
        QueryResult {
            value,
            warnings: self.warnings,
            stats,
        }
    }

    /// Evaluate the whole query and convert to the public result.
    pub(crate) fn run(&mut self, query: &str, expr: &Expr, instant: bool) -> Result<Value> {
        if query.contains("\\x") {
            self.invalid_strings = invalid_utf8_literals(query);
        }
        let grid = Grid {
            start: self.query_start,
            end: self.query_end,
            step: self.query_step,
        };
        if !instant {
            match expr.value_type() {
                ValueType::Scalar | ValueType::Vector => {}
                other => {
                    return Err(Error::BadData(format!(
                        "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                        type_name(other)
                    )))
                }
            }
        }
        let val = self.eval(expr, grid)?;
        let t = grid.start;
        Ok(match val {
            Val::Scalar(v) => {
                if instant {
                    Value::Scalar {
                        t_ms: t,
                        v: v.first().copied().unwrap_or(f64::NAN),
                    }
                } else {
                    Value::Matrix(vec![RangeSeries {
                        labels: Labels::default(),
                        floats: v
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (grid.ts(i), *x))
                            .collect(),
                        histograms: Vec::new(),
                    }])
                }
            }
            Val::Str(s) => Value::String { t_ms: t, s },
            Val::Vector(series) => {
                let series = finalize_names(series)?;
                if instant {
                    let mut out = Vec::with_capacity(series.len());
                    for s in series {
                        if let Some((pt, f)) = s.floats.first() {
                            out.push(InstantSample {
                                labels: s.labels,
                                t_ms: *pt,
                                value: PointValue::Float(*f),
                            });
                        } else if let Some((pt, h)) = s.hists.into_iter().next() {
                            out.push(InstantSample {
                                labels: s.labels,
                                t_ms: pt,
                                value: PointValue::Histogram(h),
                            });
                        }
                    }
                    Value::Vector(out)
                } else {
                    to_matrix(series)
                }
            }
            Val::Matrix(series) => to_matrix(finalize_names(series)?),
        })
    }

    /// Whether `e` gives the same value at every step (Prometheus' step-invariant
    /// expressions: everything below is pinned by `@`).
    fn step_invariant(e: &Expr) -> bool {
        match e {
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => true,
            Expr::VectorSelector(vs) => vs.at.is_some(),
            Expr::MatrixSelector(ms) => ms.vs.at.is_some(),
            Expr::Subquery(sq) => sq.at.is_some(),
            Expr::Paren(p) => Self::step_invariant(&p.expr),
            Expr::Unary(u) => Self::step_invariant(&u.expr),
            Expr::Binary(b) => Self::step_invariant(&b.lhs) && Self::step_invariant(&b.rhs),
            Expr::Aggregate(a) => {
                Self::step_invariant(&a.expr)
                    && a.param.as_ref().is_none_or(|p| Self::step_invariant(p))
            }
            Expr::Call(c) => {
                !AT_UNSAFE.contains(&c.func.name)
                    && c.args.args.iter().all(|a| Self::step_invariant(a))
            }
            Expr::Extension(_) => false,
        }
    }

    fn is_literal(e: &Expr) -> bool {
        matches!(unparen(e), Expr::NumberLiteral(_) | Expr::StringLiteral(_))
    }

    /// Evaluate `e` over `grid`.
    pub(crate) fn eval(&mut self, e: &Expr, grid: Grid) -> Result<Val> {
        // Deeply nested expressions recurse deeply: grow the stack on the heap when it
        // runs low instead of overflowing the thread that runs the query.
        stacker::maybe_grow(STACK_RED_ZONE, STACK_GROWTH, || self.eval_checked(e, grid))
    }

    fn eval_checked(&mut self, e: &Expr, grid: Grid) -> Result<Val> {
        self.check_deadline()?;
        // A boundary: once the query has run its in-place budget, this node's evaluation
        // moves off the async worker it started on (see `gmc_tsdb::inplace`).
        gmc_tsdb::inplace::around(|| self.eval_node(e, grid))
    }

    fn eval_node(&mut self, e: &Expr, grid: Grid) -> Result<Val> {
        if grid.len() > 1
            && !Self::is_literal(e)
            && Self::step_invariant(e)
            && e.value_type() != ValueType::Matrix
        {
            let one = self.eval_inner(e, Grid::single(grid.start))?;
            return Ok(self.broadcast(one, grid));
        }
        self.eval_inner(e, grid)
    }

    fn broadcast(&mut self, v: Val, grid: Grid) -> Val {
        let n = grid.len();
        match v {
            Val::Scalar(x) => Val::Scalar(vec![x.first().copied().unwrap_or(f64::NAN); n]),
            Val::Vector(series) => Val::Vector(
                series
                    .into_iter()
                    .map(|s| {
                        let mut o = Series::new(s.labels, s.drop_name);
                        if let Some((_, f)) = s.floats.first() {
                            o.floats = (0..n).map(|i| (grid.ts(i), *f)).collect();
                        }
                        if let Some((_, h)) = s.hists.first() {
                            o.hists = (0..n).map(|i| (grid.ts(i), Arc::clone(h))).collect();
                        }
                        o
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    fn eval_inner(&mut self, e: &Expr, grid: Grid) -> Result<Val> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; grid.len()])),
            Expr::StringLiteral(s) => Ok(Val::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, grid),
            Expr::Unary(u) => {
                let v = self.eval(&u.expr, grid)?;
                Ok(match v {
                    Val::Scalar(mut x) => {
                        x.iter_mut().for_each(|f| *f = -*f);
                        Val::Scalar(x)
                    }
                    Val::Vector(mut series) => {
                        for s in &mut series {
                            s.drop_name = true;
                            s.floats.iter_mut().for_each(|p| p.1 = -p.1);
                            for (_, h) in &mut s.hists {
                                *h = Arc::new(crate::hist::scale(h, -1.0));
                            }
                        }
                        Val::Vector(series)
                    }
                    other => other,
                })
            }
            Expr::VectorSelector(vs) => {
                Ok(Val::Vector(self.eval_vector_selector(vs, grid, false)?))
            }
            Expr::MatrixSelector(ms) if ms.vs.anchored || ms.vs.smoothed => {
                Ok(Val::Matrix(self.extended_matrix(ms, grid)?))
            }
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                // A range expression evaluated directly: only valid at one instant.
                let input = self.range_input(e, grid)?;
                let mut out = Vec::with_capacity(input.series.len());
                let end = input.ends.first().copied().unwrap_or(grid.start);
                let lo = end - input.range;
                for r in input.series {
                    let mut s = Series::new(r.labels, false);
                    s.floats = r
                        .floats
                        .into_iter()
                        .filter(|(t, _)| *t > lo && *t <= end)
                        .collect();
                    s.hists = r
                        .hists
                        .into_iter()
                        .filter(|(t, _)| *t > lo && *t <= end)
                        .collect();
                    if s.points() > 0 {
                        out.push(s);
                    }
                }
                Ok(Val::Matrix(out))
            }
            Expr::Binary(b) => self.eval_binary(b, grid),
            Expr::Aggregate(a) => self.eval_aggregate(a, grid),
            Expr::Call(c) => self.eval_call(c, grid),
            Expr::Extension(_) => Err(Error::BadData("unsupported expression extension".into())),
        }
    }

    /// Evaluate an expression that must be a scalar (function parameters).
    pub(crate) fn eval_scalar(&mut self, e: &Expr, grid: Grid) -> Result<Vec<f64>> {
        match self.eval(e, grid)? {
            Val::Scalar(v) => Ok(v),
            _ => Err(Error::BadData(format!(
                "expected scalar expression, got {}",
                type_name(e.value_type())
            ))),
        }
    }

    /// Evaluate an expression that must be an instant vector.
    pub(crate) fn eval_vector(&mut self, e: &Expr, grid: Grid) -> Result<Vec<Series>> {
        match self.eval(e, grid)? {
            Val::Vector(v) => Ok(v),
            _ => Err(Error::BadData(format!(
                "expected instant vector expression, got {}",
                type_name(e.value_type())
            ))),
        }
    }

    pub(crate) fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        }
    }

    /// Read every `or` alternative of `vs` with `read` from a querier over
    /// `[mint_ns, maxt_ns]`: the first series of each label set is kept, stats, deadline and
    /// memory are accounted per series, and the result is sorted by labels (the store
    /// sorts each alternative already).
    fn select_sets(
        &mut self,
        vs: &VectorSelector,
        mint_ns: i64,
        maxt_ns: i64,
        read: impl Fn(&Self, &gmc_tsdb::Querier, &[Matcher]) -> Result<Vec<gmc_tsdb::Selected>>,
    ) -> Result<Vec<gmc_tsdb::Selected>> {
        let q = self.db.querier(mint_ns, maxt_ns)?;
        let out = alternatives(vs, |m| read(self, &q, m), gmc_tsdb::Selected::labels)?;
        for s in &out {
            self.check_deadline()?;
            self.stats.samples_scanned += s.len() as u64;
            self.stats.series_selected += 1;
            self.track(s.len())?;
        }
        Ok(out)
    }

    /// The newest sample of every series of `vs` in the lookback window ending at `t`
    /// (milliseconds): `ts` in `(t − lookback, t]` at millisecond resolution, exactly the
    /// sample the step loop of [`Self::eval_vector_selector`] would pick.
    fn select_store_latest(
        &mut self,
        vs: &VectorSelector,
        t: i64,
        lookback: i64,
    ) -> Result<Vec<Raw>> {
        // A sample at nanosecond `x` belongs to millisecond floor(x / 1e6): the window
        // (t − lookback, t] in ms is (t·1e6 + 999999 − lookback·1e6, t·1e6 + 999999] in ns.
        let t_ns = ms_to_ns_ceil(t);
        let lookback_ns = gmc_model::millis_to_nanos(lookback);
        let sets = self.select_sets(vs, ms_to_ns_floor(t - lookback + 1), t_ns, |_, q, m| {
            Ok(q.select_latest(m, t_ns, lookback_ns)?)
        })?;
        Ok(sets
            .into_iter()
            .map(|s| to_raw(s, gmc_model::NANOS_PER_MILLI))
            .collect())
    }

    /// Read the series of `vs` with samples in `[mint, maxt]`, split into floats and
    /// histograms with millisecond timestamps.
    ///
    /// Raw data comes from `Querier::select_floats_in` already in milliseconds (converted
    /// by the store's decoding threads), float-only series as compact pairs; rollups come
    /// as samples in nanoseconds.
    pub(crate) fn select(&mut self, vs: &VectorSelector, mint: i64, maxt: i64) -> Result<Vec<Raw>> {
        let ms = gmc_model::NANOS_PER_MILLI;
        let rollup = self.rollup.is_some();
        let selected =
            self.select_sets(vs, ms_to_ns_floor(mint), ms_to_ns_ceil(maxt), |ev, q, m| {
                if rollup {
                    Ok(ev
                        .read_store(q, m)?
                        .into_iter()
                        .map(gmc_tsdb::Selected::Samples)
                        .collect())
                } else {
                    Ok(q.select_floats_in(m, ms)?)
                }
            })?;
        let div = if rollup { ms } else { 1 };
        Ok(selected.into_iter().map(|s| to_raw(s, div)).collect())
    }

    /// An instant vector selector over the grid. With `timestamps`, each point's value is
    /// the sample's timestamp in seconds (for `timestamp()`).
    pub(crate) fn eval_vector_selector(
        &mut self,
        vs: &VectorSelector,
        grid: Grid,
        timestamps: bool,
    ) -> Result<Vec<Series>> {
        if vs.smoothed {
            return self.smoothed_vector_selector(vs, grid, timestamps);
        }
        let off = offset_ms(&vs.offset);
        let at = self.at_ms(&vs.at);
        let lookback = self.lookback_ms();
        let first = at.unwrap_or(grid.start) - off;
        let last = at.unwrap_or(grid.end) - off;
        let pick = StepPick {
            grid,
            at,
            off,
            lookback,
            timestamps,
        };
        // One evaluation instant (instant queries, `@`): only each series' newest sample
        // in the lookback window matters, so the store keeps one sample per series
        // instead of the whole window (one sample, not 300, per series at 1 s scrapes).
        if first == last {
            let store = self.select_store_latest(vs, last, lookback)?;
            let mut out = Vec::with_capacity(store.len());
            let mut loaded = 0usize;
            for raw in store {
                self.check_deadline()?;
                loaded += raw.floats.len() + raw.hists.len();
                let s = pick.series(raw);
                if s.points() > 0 {
                    self.track(s.points())?;
                    out.push(s);
                }
            }
            self.release(loaded);
            return Ok(out);
        }
        if self.rollup.is_some() {
            let store = self.select(vs, first - lookback + 1, last)?;
            let loaded: usize = store.iter().map(|r| r.floats.len() + r.hists.len()).sum();
            let mut out = Vec::with_capacity(store.len());
            for s in gmc_tsdb::par::map(store, |raw| pick.series(raw)) {
                self.check_deadline()?;
                if s.points() > 0 {
                    self.track(s.points())?;
                    out.push(s);
                }
            }
            self.release(loaded);
            return Ok(out);
        }
        // A range of steps over raw data: each worker decodes one series, picks its step
        // values and drops the samples, so the query holds the results, not every window.
        let lazy = self.select_lazy(vs, first - lookback + 1, last)?;
        // Work for the split over the cores: every sample and every step once per series.
        let work = lazy
            .len()
            .saturating_mul(samples_guess(last - first + lookback).saturating_add(grid.len()));
        let (out, _) = self.stream_series(lazy, work, |raw, _: &mut ()| pick.series(raw))?;
        Ok(out)
    }

    /// Window ends per grid step of a matrix selector, their min and max, and the range
    /// (all in milliseconds).
    fn matrix_windows(&self, ms: &MatrixSelector, grid: Grid) -> (Vec<i64>, i64, i64, i64) {
        let vs = &ms.vs;
        let off = offset_ms(&vs.offset);
        let at = self.at_ms(&vs.at);
        let range = dur_ms(&ms.range);
        let ends: Vec<i64> = (0..grid.len())
            .map(|i| at.unwrap_or(grid.ts(i)) - off)
            .collect();
        let lo = ends.iter().copied().min().unwrap_or(0);
        let hi = ends.iter().copied().max().unwrap_or(0);
        (ends, lo, hi, range)
    }

    /// The input of a range function over a plain matrix selector (possibly in
    /// parentheses), located but not decoded, so the function can stream through it one
    /// series at a time. `None` when the input must be read whole: a subquery, or a query
    /// reading rollups.
    pub(crate) fn matrix_lazy(&mut self, e: &Expr, grid: Grid) -> Result<Option<LazyInput>> {
        let Expr::MatrixSelector(ms) = unparen(e) else {
            return Ok(None);
        };
        if self.rollup.is_some() {
            return Ok(None);
        }
        let vs = &ms.vs;
        let (ends, lo, hi, range) = self.matrix_windows(ms, grid);
        let series = self.select_lazy(vs, lo - range + 1, hi)?;
        Ok(Some(LazyInput {
            series,
            range,
            ends,
            span: hi - lo + range,
            metric_name: selector_name(vs),
        }))
    }

    /// The series of `vs` in `[mint, maxt]` (milliseconds), located but not decoded, sorted
    /// by labels; with `or` alternatives, the first series of each label set.
    fn select_lazy(
        &mut self,
        vs: &VectorSelector,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<gmc_tsdb::LazySeries>> {
        let q = self.db.querier(ms_to_ns_floor(mint), ms_to_ns_ceil(maxt))?;
        alternatives(
            vs,
            |m| Ok(q.select_floats_lazy(m, gmc_model::NANOS_PER_MILLI)?),
            gmc_tsdb::LazySeries::labels,
        )
    }

    /// Decode `lazy` on the cores (contiguous parts, split by `work` in sample-visits as
    /// [`gmc_tsdb::par::map_parts_by_work`] counts it), one series per worker at a time,
    /// and turn each into a result series with `f`, dropping its samples right after;
    /// `f` keeps per-part state `N` (buffers, annotations), returned per part. Results
    /// come in `lazy`'s order and are tracked against the sample limit; the decoded
    /// samples count against it while held, as Prometheus counts them.
    pub(crate) fn stream_series<N: Default + Send>(
        &mut self,
        lazy: Vec<gmc_tsdb::LazySeries>,
        work: usize,
        f: impl Fn(Raw, &mut N) -> Series + Sync,
    ) -> Result<(Vec<Series>, Vec<N>)> {
        let deadline = self.deadline;
        let timeout = self.opts.timeout;
        let budget = (self.opts.max_samples as u64).saturating_sub(self.cur_samples);
        let live = AtomicU64::new(0);
        let peak = AtomicU64::new(0);
        let parts =
            gmc_tsdb::par::map_parts_by_work(lazy, work, |part: Vec<gmc_tsdb::LazySeries>| {
                let mut state = N::default();
                let (mut done, mut scanned, mut selected) = (Vec::new(), 0u64, 0u64);
                for (k, ls) in part.into_iter().enumerate() {
                    if k % 16 == 15 && Instant::now() > deadline {
                        return Err(Error::Timeout(timeout));
                    }
                    let Some(sel) = ls.decode()? else {
                        continue;
                    };
                    let raw = to_raw(sel, 1);
                    let n = (raw.floats.len() + raw.hists.len()) as u64;
                    scanned += n;
                    selected += 1;
                    let held = live.fetch_add(n, Relaxed) + n;
                    peak.fetch_max(held, Relaxed);
                    if held > budget {
                        return Err(Error::TooManySamples);
                    }
                    let s = f(raw, &mut state);
                    live.fetch_sub(n, Relaxed);
                    if s.points() > 0 {
                        done.push(s);
                    }
                }
                Ok((done, state, scanned, selected))
            });
        let mut outs = Vec::with_capacity(parts.len());
        let mut states = Vec::with_capacity(parts.len());
        let mut first_err = None;
        for part in parts {
            match part {
                Ok((done, state, scanned, selected)) => {
                    self.stats.samples_scanned += scanned;
                    self.stats.series_selected += selected;
                    outs.push(done);
                    states.push(state);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        self.stats.peak_samples = self
            .stats
            .peak_samples
            .max(self.cur_samples + peak.load(Relaxed));
        if let Some(e) = first_err {
            return Err(e);
        }
        let mut out = Vec::with_capacity(outs.iter().map(Vec::len).sum());
        for s in outs.into_iter().flatten() {
            self.track(s.points())?;
            out.push(s);
        }
        Ok((out, states))
    }

    /// The raw input of a range function: a matrix selector or a subquery (possibly in
    /// parentheses), with one window end per grid step.
    pub(crate) fn range_input(&mut self, e: &Expr, grid: Grid) -> Result<RangeInput> {
        match unparen(e) {
            Expr::MatrixSelector(ms) => {
                let vs = &ms.vs;
                let (ends, lo, hi, range) = self.matrix_windows(ms, grid);
                // Stale markers end a series for instant selectors only; windows skip
                // them. One pass over every sample, so split over the cores.
                let series = gmc_tsdb::par::map(self.select(vs, lo - range + 1, hi)?, |mut r| {
                    gmc_model::drop_stale_floats(&mut r.floats);
                    r
                });
                Ok(RangeInput {
                    series,
                    range,
                    ends,
                    metric_name: selector_name(vs),
                })
            }
            Expr::Subquery(sq) => {
                let off = offset_ms(&sq.offset);
                let at = self.at_ms(&sq.at);
                let range = dur_ms(&sq.range);
                let step = match &sq.step {
                    Some(s) if !s.is_zero() => dur_ms(s),
                    _ => dur_ms(&self.opts.default_subquery_step),
                }
                .max(1);
                let ends: Vec<i64> = (0..grid.len())
                    .map(|i| at.unwrap_or(grid.ts(i)) - off)
                    .collect();
                let lo = ends.iter().copied().min().unwrap_or(0);
                let hi = ends.iter().copied().max().unwrap_or(0);
                // First step-aligned timestamp inside the first window.
                let first = lo - range;
                let mut start = first.div_euclid(step) * step;
                if start <= first {
                    start += step;
                }
                let mut series = Vec::new();
                if start <= hi {
                    let inner = Grid {
                        start,
                        end: hi - (hi - start).rem_euclid(step),
                        step,
                    };
                    // Every inner step holds at least one value per series: a subquery
                    // with more steps than the sample limit can never succeed.
                    if i128::from(inner.end - inner.start) / i128::from(step) + 1
                        > self.opts.max_samples as i128
                    {
                        return Err(Error::TooManySamples);
                    }
                    let v = self.eval(&sq.expr, inner)?;
                    let vals = match v {
                        Val::Vector(v) => v,
                        Val::Scalar(x) => vec![Series {
                            floats: x
                                .iter()
                                .enumerate()
                                .map(|(i, f)| (inner.ts(i), *f))
                                .collect(),
                            ..Series::default()
                        }],
                        _ => {
                            return Err(Error::BadData(
                                "subquery is only allowed on instant vector".into(),
                            ))
                        }
                    };
                    for s in finalize_names(vals)? {
                        series.push(Raw {
                            labels: s.labels,
                            floats: s.floats,
                            hists: s.hists,
                        });
                    }
                }
                Ok(RangeInput {
                    series,
                    range,
                    ends,
                    metric_name: None,
                })
            }
            other => Err(Error::BadData(format!(
                "expected type range vector in call to function, got {}",
                type_name(other.value_type())
            ))),
        }
    }
}

/// Labels removed together when an operation drops the metric name.
const SCHEMA_LABELS: [&str; 3] = [METRIC_NAME, "__type__", "__unit__"];

/// Drop `__name__` where an operation asked for it and check that no two series ended up
/// with the same label set.
pub(crate) fn finalize_names(mut series: Vec<Series>) -> Result<Vec<Series>> {
    let mut any = false;
    for s in &mut series {
        if s.drop_name {
            s.drop_name = false;
            // The type and unit metadata labels describe the metric and go with its name.
            if s.labels.iter().any(|(n, _)| SCHEMA_LABELS.contains(&n)) {
                s.labels =
                    Labels::from_pairs(s.labels.iter().filter(|(n, _)| !SCHEMA_LABELS.contains(n)));
                any = true;
            }
        }
    }
    if any && series.len() > 1 {
        return functions::merge_same_labels(series);
    }
    Ok(series)
}

pub(crate) fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::String => "string",
        ValueType::Vector => "instant vector",
        ValueType::Matrix => "range vector",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_ignores_strings_and_matchers() {
        assert_eq!(
            nesting_depth(r#"sum(rate(x{a="(((", b=~"[+-]"}[5m]))"#),
            (3, 0)
        );
        assert_eq!(nesting_depth("a + b * c").1, 2);
    }

    #[test]
    fn invalid_utf8_literals_are_found() {
        let v = invalid_utf8_literals(
            r#"count_values("a\xc5z", x) + label_replace(y, "ok\x41", "", "", "")"#,
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].1, r"a\xc5z");
        assert_eq!(v[0].0, "a\u{c5}z");
    }

    proptest::proptest! {
        /// The step picker (which visits only the steps that can show a sample, moving by
        /// gallops) answers as the definition: per step the newest sample at or before
        /// the step, shown when inside the lookback and not a stale marker.
        #[test]
        fn step_pick_is_the_newest_fresh_sample(
            ts in proptest::collection::btree_set(-40i64..120, 0..30),
            stale in proptest::collection::vec(proptest::bool::weighted(0.15), 30),
            grid_start in -60i64..100,
            steps in 1usize..40,
            step in 1i64..9,
            off in -20i64..20,
            lookback in 1i64..25,
        ) {
            let floats: Vec<(i64, f64)> = ts
                .iter()
                .zip(&stale)
                .map(|(&t, &st)| (t, if st { f64::from_bits(gmc_model::STALE_NAN_BITS) } else { t as f64 }))
                .collect();
            let grid = Grid { start: grid_start, end: grid_start + (steps as i64 - 1) * step, step };
            let pick = StepPick { grid, at: None, off, lookback, timestamps: false };
            let raw = Raw { labels: Labels::default(), floats: floats.clone(), hists: Vec::new() };
            let got: Vec<(i64, u64)> =
                pick.series(raw).floats.iter().map(|(t, v)| (*t, v.to_bits())).collect();
            let want: Vec<(i64, u64)> = (0..grid.len())
                .filter_map(|i| {
                    let te = grid.ts(i) - off;
                    let &(t, v) = floats.iter().rev().find(|p| p.0 <= te)?;
                    (t > te - lookback && !gmc_model::is_stale_nan(v)).then(|| (grid.ts(i), v.to_bits()))
                })
                .collect();
            proptest::prop_assert_eq!(got, want);
        }

        #[test]
        fn first_step_at_or_after(start in -50i64..50, steps in 1usize..30, step in 1i64..7, t in -100i64..300) {
            let grid = Grid { start, end: start + (steps as i64 - 1) * step, step };
            let want = (0..grid.len()).find(|&i| grid.ts(i) >= t).unwrap_or(grid.len());
            proptest::prop_assert_eq!(grid.first_at_or_after(t), want);
        }
    }

    #[test]
    fn parse_errors_carry_a_position() {
        let Err(Error::Parse(m)) = parse_query("sum(", 0, 0) else {
            panic!("expected a parse error")
        };
        assert!(m.starts_with("1:5: parse error"), "{m}");
        let Err(Error::Parse(m)) = parse_query("a +\nb +", 0, 0) else {
            panic!("expected a parse error")
        };
        assert!(m.starts_with("2:4: parse error"), "{m}");
    }
}
