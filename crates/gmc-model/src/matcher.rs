//! Label matchers (`=`, `!=`, `=~`, `!~`) with Prometheus semantics: regexes are fully
//! anchored, and an absent label matches as the empty string.

use regex::Regex;

use crate::error::{truncate_for_error, Error, Result};

/// Matching operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

/// One label matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or pattern as written.
    pub value: String,
    re: Option<Regex>,
}

/// Largest compiled regex program we accept, in bytes; bounds memory per query.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Matcher {
    /// Build a matcher; regex patterns are compiled anchored (`^(?:pattern)$`).
    pub fn new(op: MatchOp, name: impl Into<String>, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let re = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                regex::RegexBuilder::new(&format!("^(?s:{value})$"))
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| Error::InvalidRegex {
                        pattern: truncate_for_error(&value),
                        reason: e.to_string(),
                    })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    /// Shorthand for an equality matcher.
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
        }
    }

    /// Whether a label value (empty when the label is absent) satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // Unreachable by construction: regex ops always carry a compiled regex.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether this matcher accepts the empty string, i.e. also series lacking the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// For a regex that is a plain alternation of literals (`a|b|c`), the literals; lets
    /// an index answer with postings lookups instead of scanning every value.
    pub fn set_literals(&self) -> Option<Vec<&str>> {
        if self.op != MatchOp::Regex {
            return None;
        }
        let is_meta = |c: char| "\\.+*?()[]{}^$".contains(c);
        if self.value.chars().any(is_meta) {
            return None;
        }
        Some(self.value.split('|').collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_anchored_and_absent_is_empty() {
        let m = Matcher::new(MatchOp::Regex, "job", "api.*").unwrap();
        assert!(m.matches("api-1"));
        assert!(!m.matches("xapi"));
        assert!(!m.matches_empty());
        let m = Matcher::new(MatchOp::NotEqual, "job", "x").unwrap();
        assert!(m.matches_empty());
        let m = Matcher::new(MatchOp::Regex, "job", "a|b").unwrap();
        assert_eq!(m.set_literals(), Some(vec!["a", "b"]));
        assert!(Matcher::new(MatchOp::Regex, "job", "(").is_err());
    }
}
