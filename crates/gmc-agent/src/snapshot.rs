//! One collection cycle's output: metric families with their samples, renderable as
//! Prometheus text (for `--listen`) or as a [`WriteBatch`] (for remote_write and `gmc serve`).

use std::fmt::Write as _;

use gmc_model::{Metadata, MetricType, ValidationLimits, WriteBatch, METRIC_NAME};

/// The type of a family, as node_exporter declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter.
    Counter,
    /// Gauge.
    Gauge,
    /// Untyped (node_exporter's netstat and vmstat families).
    Untyped,
}

impl Kind {
    /// The word used in `# TYPE` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
        }
    }

    fn metric_type(self) -> MetricType {
        match self {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Untyped => MetricType::Unknown,
        }
    }
}

/// One sample of a family: its own labels (besides `job`/`instance`) and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label pairs; names are static because every collector knows its label keys.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

/// A metric family.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Full metric name, e.g. `node_cpu_seconds_total`.
    pub name: String,
    /// Help text.
    pub help: &'static str,
    /// Type.
    pub kind: Kind,
    /// Samples.
    pub samples: Vec<Sample>,
}

impl Family {
    /// Add a sample with labels.
    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push(Sample { labels, value });
    }

    /// Add the single unlabelled sample.
    pub fn value(&mut self, value: f64) {
        self.samples.push(Sample {
            labels: Vec::new(),
            value,
        });
    }
}

/// The families of one collection cycle, all taken at `ts_nanos`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// When the cycle started (nanoseconds since the epoch); every sample carries it.
    pub ts_nanos: i64,
    /// Families in collection order.
    pub families: Vec<Family>,
}

impl Snapshot {
    /// An empty snapshot taken at `ts_nanos`.
    pub fn new(ts_nanos: i64) -> Self {
        Snapshot {
            ts_nanos,
            families: Vec::new(),
        }
    }

    /// Start a new family and return it for filling.
    pub fn family(
        &mut self,
        name: impl Into<String>,
        help: &'static str,
        kind: Kind,
    ) -> &mut Family {
        self.families.push(Family {
            name: name.into(),
            help,
            kind,
            samples: Vec::new(),
        });
        let last = self.families.len() - 1;
        &mut self.families[last]
    }

    /// Add a family with one unlabelled sample.
    pub fn single(&mut self, name: impl Into<String>, help: &'static str, kind: Kind, value: f64) {
        self.family(name, help, kind).value(value);
    }

    /// Number of samples.
    pub fn len_samples(&self) -> usize {
        self.families.iter().map(|f| f.samples.len()).sum()
    }

    /// The family named `name`, if collected.
    pub fn get(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }

    /// Render as Prometheus text exposition 0.0.4, without timestamps (as node_exporter).
    /// Empty families are left out.
    pub fn render_text(&self, out: &mut String) {
        for f in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            for s in &f.samples {
                out.push_str(&f.name);
                if !s.labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in s.labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(k);
                        out.push_str("=\"");
                        escape_value(v, out);
                        out.push('"');
                    }
                    out.push('}');
                }
                out.push(' ');
                write_value(s.value, out);
                out.push('\n');
            }
        }
    }

    /// Build a write batch: every sample gets `target` labels (`job`, `instance`) and the
    /// snapshot's timestamp; one metadata entry per family. Series that break `limits`
    /// are left out and counted in the returned number.
    pub fn to_batch<'a>(
        &'a self,
        target: &'a [(String, String)],
        limits: ValidationLimits,
    ) -> (WriteBatch<'a>, usize) {
        let mut batch = WriteBatch::with_limits(limits);
        batch.reserve(self.len_samples(), self.len_samples());
        let mut invalid = 0;
        for f in &self.families {
            if f.samples.is_empty() {
                continue;
            }
            for s in &f.samples {
                let mut w = batch.series();
                w.label(METRIC_NAME, f.name.as_str());
                for (k, v) in target {
                    w.label(k.as_str(), v.as_str());
                }
                for (k, v) in &s.labels {
                    w.label(*k, v.as_str());
                }
                w.float(self.ts_nanos, s.value);
                if w.finish().is_err() {
                    invalid += 1;
                }
            }
            batch.push_metadata(Metadata {
                metric_family: f.name.clone(),
                metric_type: f.kind.metric_type(),
                help: f.help.to_owned(),
                unit: String::new(),
            });
        }
        (batch, invalid)
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_value(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)` spelling is not needed by parsers; Rust's
/// shortest round-trip form is valid exposition. Special values use the spec's words.
fn write_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labels_escaped_and_skips_empty_families() {
        let mut s = Snapshot::new(0);
        s.family("node_empty", "nothing", Kind::Gauge);
        s.family("node_x_total", "x", Kind::Counter)
            .push(vec![("device", "a\"b".to_owned())], 1.5);
        let mut out = String::new();
        s.render_text(&mut out);
        assert_eq!(
            out,
            "# HELP node_x_total x\n# TYPE node_x_total counter\nnode_x_total{device=\"a\\\"b\"} 1.5\n"
        );
    }

    #[test]
    fn batch_carries_target_labels_timestamp_and_metadata() {
        let mut s = Snapshot::new(42);
        s.single("node_load1", "load", Kind::Gauge, 0.5);
        let target = vec![
            ("job".to_owned(), "node".to_owned()),
            ("instance".to_owned(), "h".to_owned()),
        ];
        let (b, invalid) = s.to_batch(&target, ValidationLimits::default());
        assert_eq!(invalid, 0);
        let series = b.get(0).unwrap();
        assert_eq!(series.label("job"), Some("node"));
        assert_eq!(series.label("instance"), Some("h"));
        assert_eq!(series.floats[0].ts_nanos, 42);
        assert_eq!(b.metadata()[0].metric_type, MetricType::Gauge);
    }
}
