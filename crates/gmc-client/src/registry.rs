//! The registry: metric families, their series and what each series stores. Registration
//! (cold) takes locks and allocates; recording goes through handles that never come back
//! here; collection reads the cells without taking any lock a recording thread takes.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::arena::{self, Arena, SlotRange};
use crate::counter::Counter;
use crate::error::{Error, Result};
use crate::family::Family;
use crate::gauge::{FixedAdder, FixedGauge, Gauge, GaugeF64};
use crate::histogram::{self as hist, Histogram};

/// A value on its own cache line (128 bytes: adjacent-line prefetch pairs lines on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

/// The type of a metric family as exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic counter (name ends in `_total`).
    Counter,
    /// Gauge.
    Gauge,
    /// Histogram (native + classic buckets), values in the recording unit (ns).
    Histogram,
}

impl Kind {
    /// The `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// What one series stores.
#[derive(Debug)]
pub(crate) enum Storage {
    Counter(SlotRange),
    Gauge(Arc<Padded<AtomicI64>>),
    GaugeF64(Arc<Padded<AtomicU64>>),
    Fixed {
        cell: Arc<Padded<AtomicI64>>,
        scale: u32,
    },
    Adder {
        slots: SlotRange,
        scale: u32,
    },
    Histogram(SlotRange),
    /// A counter whose total comes from elsewhere (e.g. /proc), set as `f64` bits.
    Observed(Arc<Padded<AtomicU64>>),
}

impl Storage {
    fn kind(&self) -> Kind {
        match self {
            Storage::Counter(_) | Storage::Observed(_) => Kind::Counter,
            Storage::Histogram(_) => Kind::Histogram,
            _ => Kind::Gauge,
        }
    }
}

/// One series: its labels (pre-rendered for the text formats) and its storage.
#[derive(Debug)]
pub(crate) struct Series {
    pub(crate) labels: Vec<(String, String)>,
    /// `a="x",b="y"` (escaped, no braces), empty without labels.
    pub(crate) rendered: String,
    pub(crate) storage: Storage,
}

/// Sorted label pairs identifying a series within its family.
type LabelKey = Vec<(String, String)>;

/// One metric family.
#[derive(Debug)]
pub(crate) struct FamilyCore {
    pub(crate) name: String,
    pub(crate) help: String,
    pub(crate) kind: Kind,
    /// A histogram named `*_seconds`: values are recorded in ns, exposed in seconds.
    pub(crate) seconds: bool,
    pub(crate) series: Mutex<Vec<Arc<Series>>>,
    index: Mutex<HashMap<LabelKey, Arc<Series>>>,
}

type Hook = Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Inner {
    families: Mutex<Vec<Arc<FamilyCore>>>,
    hooks: Mutex<Vec<Hook>>,
}

/// Metric families of one service. Cheap to clone (shared).
///
/// Resolve handles once at start-up ([`Registry::counter_with`] …) and record through
/// them; use a [`Family`] only where label values are truly dynamic.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("families", &lock(&self.inner.families).len())
            .finish()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections here only push into or read vectors and maps: a panic inside one
    // leaves them consistent, so poisoning is ignored.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `name` is a valid Prometheus metric name.
pub(crate) fn valid_metric_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Whether `name` is a valid, non-reserved label name.
pub(crate) fn valid_label_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && !name.starts_with("__")
        && name != "le"
        && name != "quantile"
}

/// Escape a label value for the text formats.
pub(crate) fn escape_value(out: &mut String, v: &str) {
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn render(labels: &[(String, String)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"");
        escape_value(&mut s, v);
        s.push('"');
    }
    s
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Find or create the family `name` of `kind`.
    pub(crate) fn family(&self, name: &str, help: &str, kind: Kind) -> Result<Arc<FamilyCore>> {
        let name = if kind == Kind::Counter && !name.ends_with("_total") {
            format!("{name}_total")
        } else {
            name.to_owned()
        };
        if !valid_metric_name(&name) {
            return Err(Error::InvalidName {
                what: "metric",
                name,
            });
        }
        let mut fams = lock(&self.inner.families);
        if let Some(f) = fams.iter().find(|f| f.name == name) {
            if f.kind != kind {
                return Err(Error::Conflict { name });
            }
            return Ok(Arc::clone(f));
        }
        let f = Arc::new(FamilyCore {
            seconds: kind == Kind::Histogram && name.ends_with("_seconds"),
            name,
            help: help.replace('\n', " "),
            kind,
            series: Mutex::new(Vec::new()),
            index: Mutex::new(HashMap::new()),
        });
        fams.push(Arc::clone(&f));
        Ok(f)
    }

    /// Run `f` before every collection (self-metrics, derived gauges).
    pub fn on_collect(&self, f: impl Fn() + Send + Sync + 'static) {
        lock(&self.inner.hooks).push(Arc::new(f));
    }

    /// Run the collection hooks (done by every encoder and pusher).
    pub fn run_hooks(&self) {
        let hooks: Vec<Hook> = lock(&self.inner.hooks).clone();
        for h in hooks {
            h();
        }
    }

    /// The families, in registration order (a copy of the list).
    pub(crate) fn families(&self) -> Vec<Arc<FamilyCore>> {
        lock(&self.inner.families).clone()
    }

    /// A counter without labels (`_total` is appended to the name when missing).
    pub fn counter(&self, name: &str, help: &str) -> Result<Counter> {
        self.counter_with(name, help, &[])
    }

    /// A counter with fixed labels, resolved once.
    pub fn counter_with(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Result<Counter> {
        let f = self.family(name, help, Kind::Counter)?;
        let s = series(&f, labels, || Ok(Storage::Counter(SlotRange::alloc(1)?)))?;
        Ok(Counter::from_series(s))
    }

    /// A counter whose running total is read from elsewhere and set (process CPU time).
    pub fn observed_counter_with(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<ObservedCounter> {
        let f = self.family(name, help, Kind::Counter)?;
        let s = series(&f, labels, || Ok(Storage::Observed(Arc::default())))?;
        match &s.storage {
            Storage::Observed(c) => Ok(ObservedCounter {
                cell: Arc::clone(c),
            }),
            _ => Err(Error::Conflict {
                name: f.name.clone(),
            }),
        }
    }

    /// An `i64` gauge without labels.
    pub fn gauge(&self, name: &str, help: &str) -> Result<Gauge> {
        self.gauge_with(name, help, &[])
    }

    /// An `i64` gauge with fixed labels.
    pub fn gauge_with(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Result<Gauge> {
        let f = self.family(name, help, Kind::Gauge)?;
        let s = series(&f, labels, || Ok(Storage::Gauge(Arc::default())))?;
        Gauge::from_series(&s).ok_or(Error::Conflict {
            name: f.name.clone(),
        })
    }

    /// An `f64` gauge without labels.
    pub fn gauge_f64(&self, name: &str, help: &str) -> Result<GaugeF64> {
        self.gauge_f64_with(name, help, &[])
    }

    /// An `f64` gauge with fixed labels.
    pub fn gauge_f64_with(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<GaugeF64> {
        let f = self.family(name, help, Kind::Gauge)?;
        let s = series(&f, labels, || Ok(Storage::GaugeF64(Arc::default())))?;
        GaugeF64::from_series(&s).ok_or(Error::Conflict {
            name: f.name.clone(),
        })
    }

    /// A fixed-point gauge: an `i64` in units of `10^-scale`, exposed as `value / 10^scale`.
    pub fn fixed_gauge_with(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        scale: u32,
    ) -> Result<FixedGauge> {
        let f = self.family(name, help, Kind::Gauge)?;
        let s = series(&f, labels, || {
            Ok(Storage::Fixed {
                cell: Arc::default(),
                scale,
            })
        })?;
        FixedGauge::from_series(&s).ok_or(Error::Conflict {
            name: f.name.clone(),
        })
    }

    /// A fixed-point adder: per-thread `i64` sums in units of `10^-scale`, added exactly
    /// at collection (no float drift however many deltas), exposed as a gauge.
    pub fn fixed_adder_with(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        scale: u32,
    ) -> Result<FixedAdder> {
        let f = self.family(name, help, Kind::Gauge)?;
        let s = series(&f, labels, || {
            Ok(Storage::Adder {
                slots: SlotRange::alloc(1)?,
                scale,
            })
        })?;
        FixedAdder::from_series(s).ok_or(Error::Conflict {
            name: f.name.clone(),
        })
    }

    /// A histogram of `u64` values (nanoseconds by convention) without labels.
    pub fn histogram(&self, name: &str, help: &str) -> Result<Histogram> {
        self.histogram_with(name, help, &[])
    }

    /// A histogram with fixed labels.
    pub fn histogram_with(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
    ) -> Result<Histogram> {
        let f = self.family(name, help, Kind::Histogram)?;
        let s = series(&f, labels, || {
            Ok(Storage::Histogram(SlotRange::alloc(hist::SLOTS)?))
        })?;
        Ok(Histogram::from_series(s))
    }

    /// A counter family with dynamic label values (cold paths), at most `max_series`
    /// distinct value sets; further ones fold into one `__overflow__` series.
    pub fn counter_family(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
        max_series: usize,
    ) -> Result<Family<Counter>> {
        Family::new(self.clone(), name, help, label_names, max_series)
    }

    /// A gauge family with dynamic label values.
    pub fn gauge_family(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
        max_series: usize,
    ) -> Result<Family<Gauge>> {
        Family::new(self.clone(), name, help, label_names, max_series)
    }

    /// A histogram family with dynamic label values.
    pub fn histogram_family(
        &self,
        name: &str,
        help: &str,
        label_names: &[&str],
        max_series: usize,
    ) -> Result<Family<Histogram>> {
        Family::new(self.clone(), name, help, label_names, max_series)
    }

    /// Read every series now (runs the collection hooks first).
    pub fn collect(&self) -> Vec<FamilySnapshot> {
        self.run_hooks();
        let arenas = arena::arenas();
        let mut scratch = gmc_histogram::Histogram::new();
        self.families()
            .iter()
            .map(|f| FamilySnapshot {
                name: f.name.clone(),
                help: f.help.clone(),
                kind: f.kind,
                seconds: f.seconds,
                series: lock(&f.series)
                    .iter()
                    .map(|s| SeriesSnapshot {
                        labels: s.labels.clone(),
                        value: read_value(&s.storage, &arenas, &mut scratch),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// Find or create the series with `labels` in `f`.
fn series(
    f: &Arc<FamilyCore>,
    labels: &[(&str, &str)],
    make: impl FnOnce() -> Result<Storage>,
) -> Result<Arc<Series>> {
    let mut key: Vec<(String, String)> = Vec::with_capacity(labels.len());
    for &(k, v) in labels {
        if !valid_label_name(k) {
            return Err(Error::InvalidName {
                what: "label",
                name: k.to_owned(),
            });
        }
        if key.iter().any(|(n, _)| n == k) {
            return Err(Error::InvalidName {
                what: "duplicate label",
                name: k.to_owned(),
            });
        }
        key.push((k.to_owned(), v.to_owned()));
    }
    key.sort();
    let mut index = lock(&f.index);
    if let Some(s) = index.get(&key) {
        return Ok(Arc::clone(s));
    }
    let storage = make()?;
    debug_assert_eq!(storage.kind(), f.kind);
    let s = Arc::new(Series {
        rendered: render(&key),
        labels: key.clone(),
        storage,
    });
    index.insert(key, Arc::clone(&s));
    lock(&f.series).push(Arc::clone(&s));
    Ok(s)
}

/// A counter whose total is observed, not counted (CPU seconds from /proc).
#[derive(Debug, Clone)]
pub struct ObservedCounter {
    cell: Arc<Padded<AtomicU64>>,
}

impl ObservedCounter {
    /// Set the running total.
    pub fn set(&self, total: f64) {
        self.cell.0.store(total.to_bits(), Relaxed);
    }
}

/// A collected value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Counter total.
    Counter(u64),
    /// Counter total observed from outside (e.g. CPU seconds).
    CounterF64(f64),
    /// Gauge value (fixed-point gauges already scaled).
    Gauge(f64),
    /// Histogram merged over all threads.
    Histogram(Box<gmc_histogram::Histogram>),
}

/// One collected series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSnapshot {
    /// Labels, sorted by name (without `__name__`).
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: Value,
}

/// One collected family.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilySnapshot {
    /// Family name (counters include `_total`).
    pub name: String,
    /// Help text.
    pub help: String,
    /// Type.
    pub kind: Kind,
    /// Histogram recorded in nanoseconds and exposed in seconds (name ends `_seconds`).
    pub seconds: bool,
    /// Series in registration order.
    pub series: Vec<SeriesSnapshot>,
}

impl FamilySnapshot {
    /// `h` as an exported native histogram (in seconds for `*_seconds` families, see
    /// [`gmc_histogram::Histogram::to_native_seconds`]).
    pub fn native(&self, h: &gmc_histogram::Histogram) -> gmc_model::Histogram {
        if self.seconds {
            h.to_native_seconds()
        } else {
            h.to_native()
        }
    }

    /// `h`'s classic cumulative buckets in the exported unit (counts are exact).
    pub fn classic(&self, h: &gmc_histogram::Histogram) -> Vec<(f64, u64)> {
        let mut c = h.to_classic(&crate::exposition::CLASSIC_BOUNDS_NS);
        if self.seconds {
            for (le, _) in &mut c {
                *le = ns_to_seconds(*le);
            }
        }
        c
    }

    /// `h`'s sum in the exported unit.
    pub fn sum(&self, h: &gmc_histogram::Histogram) -> f64 {
        if self.seconds {
            ns_to_seconds(h.sum() as f64)
        } else {
            h.sum() as f64
        }
    }
}

/// Nanoseconds to seconds (∞ stays ∞).
pub(crate) fn ns_to_seconds(ns: f64) -> f64 {
    ns / 1e9
}

/// `raw / 10^scale` as f64.
pub(crate) fn scaled(raw: i64, scale: u32) -> f64 {
    if scale == 0 {
        raw as f64
    } else {
        raw as f64 / 10f64.powi(scale.min(18) as i32)
    }
}

pub(crate) fn read_value(
    storage: &Storage,
    arenas: &[&'static Arena],
    scratch: &mut gmc_histogram::Histogram,
) -> Value {
    match storage {
        Storage::Counter(r) => Value::Counter(arena::sum_slot(arenas, r.start)),
        Storage::Observed(c) => Value::CounterF64(f64::from_bits(c.0.load(Relaxed))),
        Storage::Gauge(c) => Value::Gauge(c.0.load(Relaxed) as f64),
        Storage::GaugeF64(c) => Value::Gauge(f64::from_bits(c.0.load(Relaxed))),
        Storage::Fixed { cell, scale } => Value::Gauge(scaled(cell.0.load(Relaxed), *scale)),
        Storage::Adder { slots, scale } => {
            // Two's-complement wrapping sum of per-thread i64 deltas is exact.
            #[allow(clippy::cast_possible_wrap)]
            let raw = arena::sum_slot(arenas, slots.start) as i64;
            Value::Gauge(scaled(raw, *scale))
        }
        Storage::Histogram(r) => {
            scratch.clear();
            hist::merge_shards(arenas, r.start, scratch);
            Value::Histogram(Box::new(scratch.clone()))
        }
    }
}

/// Fast scalar read for the text encoder (`None` for histograms).
pub(crate) enum Scalar {
    Int(u64),
    Signed(i64),
    Float(f64),
}

pub(crate) fn read_scalar(storage: &Storage, arenas: &[&'static Arena]) -> Option<Scalar> {
    Some(match storage {
        Storage::Counter(r) => Scalar::Int(arena::sum_slot(arenas, r.start)),
        Storage::Observed(c) => Scalar::Float(f64::from_bits(c.0.load(Relaxed))),
        Storage::Gauge(c) => Scalar::Signed(c.0.load(Relaxed)),
        Storage::GaugeF64(c) => Scalar::Float(f64::from_bits(c.0.load(Relaxed))),
        Storage::Fixed { cell, scale } => {
            let raw = cell.0.load(Relaxed);
            if *scale == 0 {
                Scalar::Signed(raw)
            } else {
                Scalar::Float(scaled(raw, *scale))
            }
        }
        Storage::Adder { slots, scale } => {
            #[allow(clippy::cast_possible_wrap)]
            let raw = arena::sum_slot(arenas, slots.start) as i64;
            if *scale == 0 {
                Scalar::Signed(raw)
            } else {
                Scalar::Float(scaled(raw, *scale))
            }
        }
        Storage::Histogram(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_counters_get_total() {
        let r = Registry::new();
        assert!(matches!(
            r.counter("1bad", "x"),
            Err(Error::InvalidName { .. })
        ));
        let c = r.counter("orders", "Orders.").unwrap();
        c.inc();
        assert_eq!(r.families()[0].name, "orders_total");
        assert!(matches!(
            r.gauge("orders_total", "x"),
            Err(Error::Conflict { .. })
        ));
        assert!(matches!(
            r.counter_with("a", "x", &[("__x", "1")]),
            Err(Error::InvalidName { .. })
        ));
    }

    #[test]
    fn same_labels_resolve_to_the_same_series() {
        let r = Registry::new();
        let a = r.counter_with("c", "h", &[("v", "1"), ("w", "2")]).unwrap();
        let b = r.counter_with("c", "h", &[("w", "2"), ("v", "1")]).unwrap();
        a.add(2);
        b.add(3);
        let snap = r.collect();
        assert_eq!(snap[0].series.len(), 1);
        assert_eq!(snap[0].series[0].value, Value::Counter(5));
    }
}
