//! What a decode produced besides the batch: counts of accepted samples, rejected series by
//! reason and the first few messages, plus the limits every decoder enforces.

use std::collections::BTreeMap;
use std::fmt;

use gmc_model::{ValidationLimits, WriteBatch};

use crate::error::Error;

/// How many rejection messages a report keeps; enough for a readable 400 answer.
pub const MAX_MESSAGES: usize = 8;

/// Limits applied while decoding one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest (decompressed) body in bytes.
    pub max_body_bytes: usize,
    /// Most samples (floats and histograms) in one request; more fails the whole request.
    pub max_samples: usize,
    /// Label validation applied to every series.
    pub labels: ValidationLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 << 20,
            max_samples: 1_000_000,
            labels: ValidationLimits::default(),
        }
    }
}

/// Counts and messages describing one decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeReport {
    /// Samples that went into the batch (floats and histograms).
    pub samples_accepted: u64,
    /// Series that went into the batch.
    pub series_accepted: u64,
    /// Rejected series (or lines, or metadata entries) by reason (see [`Error::reason`]).
    pub rejected: BTreeMap<&'static str, u64>,
    /// Things deliberately ignored, by kind (`exemplar`, `string_field`, `created`, …).
    pub skipped: BTreeMap<&'static str, u64>,
    /// The first [`MAX_MESSAGES`] rejection messages, in input order.
    pub messages: Vec<String>,
}

impl DecodeReport {
    /// Count a rejection and keep its message if there is room.
    pub fn reject(&mut self, err: &Error) {
        *self.rejected.entry(err.reason()).or_default() += 1;
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(err.to_string());
        }
    }

    /// Count something skipped on purpose.
    pub fn skip(&mut self, kind: &'static str, n: u64) {
        if n > 0 {
            *self.skipped.entry(kind).or_default() += n;
        }
    }

    /// Total rejections over all reasons.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Whether nothing was rejected.
    pub fn is_clean(&self) -> bool {
        self.rejected.is_empty()
    }
}

impl fmt::Display for DecodeReport {
    /// One line fit for an HTTP 400 body: counts by reason, then the first messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accepted {} samples in {} series",
            self.samples_accepted, self.series_accepted
        )?;
        if self.rejected.is_empty() {
            return Ok(());
        }
        write!(f, "; rejected {}", self.rejected_total())?;
        let mut sep = " (";
        for (reason, n) in &self.rejected {
            write!(f, "{sep}{reason}: {n}")?;
            sep = ", ";
        }
        f.write_str(")")?;
        for m in &self.messages {
            write!(f, "; {m}")?;
        }
        Ok(())
    }
}

/// A decoded request: the batch to append and the report to answer with.
#[derive(Debug)]
pub struct Decoded<'a> {
    /// Valid series, ready for the store.
    pub batch: WriteBatch<'a>,
    /// Counts and rejection messages.
    pub report: DecodeReport,
}

impl<'a> Decoded<'a> {
    /// An empty result validating with `limits`.
    pub(crate) fn new(limits: &Limits) -> Self {
        Decoded {
            batch: WriteBatch::with_limits(limits.labels),
            report: DecodeReport::default(),
        }
    }

    /// The same result, borrowing nothing from the decoded input (see
    /// [`WriteBatch::into_owned`]).
    pub fn into_owned(self) -> Decoded<'static> {
        Decoded {
            batch: self.batch.into_owned(),
            report: self.report,
        }
    }

    /// Recompute the accepted counts from the batch (called once at the end of a decode).
    pub(crate) fn done(mut self) -> Self {
        self.report.samples_accepted = self.batch.len_samples() as u64;
        self.report.series_accepted = self.batch.len_series() as u64;
        self
    }
}

/// Counts samples against [`Limits::max_samples`] while a decoder runs, so an oversized
/// request fails before it has allocated its whole batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SampleBudget {
    left: usize,
    limit: usize,
}

impl SampleBudget {
    pub(crate) fn new(limits: &Limits) -> Self {
        SampleBudget {
            left: limits.max_samples,
            limit: limits.max_samples,
        }
    }

    /// Take `n` samples from the budget.
    #[inline]
    pub(crate) fn take(&mut self, n: usize) -> Result<(), Error> {
        match self.left.checked_sub(n) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(Error::TooManySamples { limit: self.limit }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_keeps_first_messages_and_counts_all() {
        let mut r = DecodeReport::default();
        for i in 0..20 {
            r.reject(&Error::Syntax {
                line: i,
                reason: "bad".into(),
            });
        }
        r.reject(&Error::MissingEof);
        assert_eq!(r.rejected_total(), 21);
        assert_eq!(r.rejected["syntax"], 20);
        assert_eq!(r.messages.len(), MAX_MESSAGES);
        assert!(r.to_string().contains("syntax: 20"));
        assert!(!r.is_clean());
    }

    #[test]
    fn budget_refuses_past_the_limit() {
        let mut b = SampleBudget::new(&Limits {
            max_samples: 3,
            ..Limits::default()
        });
        assert!(b.take(2).is_ok());
        assert!(b.take(1).is_ok());
        assert!(matches!(b.take(1), Err(Error::TooManySamples { limit: 3 })));
    }
}
