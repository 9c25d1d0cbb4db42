//! Gauge handles: `i64` and `f64` last-value gauges (one shared cell, plain store), and
//! fixed-point gauges and adders for money and exposure, exact in integer units.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::arena::{self, bump};

use crate::registry::{scaled, Padded, Series, Storage};

/// An `i64` gauge. `set` is a plain store on the gauge's own cache line (last writer
/// wins, which needs one shared location); `add` is one locked RMW on that line.
#[derive(Debug, Clone)]
pub struct Gauge {
    cell: Arc<Padded<AtomicI64>>,
}

impl Gauge {
    pub(crate) fn from_series(s: &Series) -> Option<Gauge> {
        match &s.storage {
            Storage::Gauge(c) => Some(Gauge {
                cell: Arc::clone(c),
            }),
            _ => None,
        }
    }

    /// Set the value.
    #[inline(always)]
    pub fn set(&self, v: i64) {
        self.cell.0.store(v, Relaxed);
    }

    /// Add `d` (may be negative).
    #[inline(always)]
    pub fn add(&self, d: i64) {
        self.cell.0.fetch_add(d, Relaxed);
    }

    /// Add one.
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtract one.
    #[inline(always)]
    pub fn dec(&self) {
        self.add(-1);
    }

    /// Current value.
    pub fn get(&self) -> i64 {
        self.cell.0.load(Relaxed)
    }
}

/// An `f64` gauge (bits in an atomic; `set` is a plain store).
#[derive(Debug, Clone)]
pub struct GaugeF64 {
    cell: Arc<Padded<AtomicU64>>,
}

impl GaugeF64 {
    pub(crate) fn from_series(s: &Series) -> Option<GaugeF64> {
        match &s.storage {
            Storage::GaugeF64(c) => Some(GaugeF64 {
                cell: Arc::clone(c),
            }),
            _ => None,
        }
    }

    /// Set the value.
    #[inline(always)]
    pub fn set(&self, v: f64) {
        self.cell.0.store(v.to_bits(), Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.cell.0.load(Relaxed))
    }
}

/// A fixed-point gauge: an `i64` count of `10^-scale` units (e.g. scale 8 for 1e-8 USD),
/// exposed as `raw / 10^scale`. Sums of deltas stay exact, unlike `f64` accumulation.
#[derive(Debug, Clone)]
pub struct FixedGauge {
    cell: Arc<Padded<AtomicI64>>,
    scale: u32,
}

impl FixedGauge {
    pub(crate) fn from_series(s: &Series) -> Option<FixedGauge> {
        match &s.storage {
            Storage::Fixed { cell, scale } => Some(FixedGauge {
                cell: Arc::clone(cell),
                scale: *scale,
            }),
            _ => None,
        }
    }

    /// Set the raw fixed-point value.
    #[inline(always)]
    pub fn set(&self, raw: i64) {
        self.cell.0.store(raw, Relaxed);
    }

    /// Add a raw fixed-point delta (one locked RMW).
    #[inline(always)]
    pub fn add(&self, raw: i64) {
        self.cell.0.fetch_add(raw, Relaxed);
    }

    /// Raw value.
    pub fn get_raw(&self) -> i64 {
        self.cell.0.load(Relaxed)
    }

    /// Value as exposed.
    pub fn get(&self) -> f64 {
        scaled(self.get_raw(), self.scale)
    }
}

/// A fixed-point adder: per-thread `i64` cells summed exactly at collection; recording
/// costs what a counter costs. For PnL and other flows that only accumulate.
#[derive(Debug, Clone)]
pub struct FixedAdder {
    slot: usize,
    scale: u32,
    _series: Arc<Series>,
}

impl FixedAdder {
    pub(crate) fn from_series(s: Arc<Series>) -> Option<FixedAdder> {
        let (slot, scale) = match &s.storage {
            Storage::Adder { slots, scale } => (slots.start, *scale),
            _ => return None,
        };
        Some(FixedAdder {
            slot,
            scale,
            _series: s,
        })
    }

    /// Add a raw fixed-point delta (may be negative).
    #[inline(always)]
    pub fn add(&self, raw: i64) {
        // Two's complement: adding the bit pattern of a negative delta subtracts.
        #[allow(clippy::cast_sign_loss)]
        let n = raw as u64;
        match arena::cells().get(self.slot) {
            Some(cell) => bump(cell, n),
            None => arena::bump_slow(self.slot, n),
        }
    }

    /// Exact raw total over all threads.
    pub fn get_raw(&self) -> i64 {
        #[allow(clippy::cast_possible_wrap)]
        let v = arena::sum_slot(&arena::arenas(), self.slot) as i64;
        v
    }

    /// Total as exposed.
    pub fn get(&self) -> f64 {
        scaled(self.get_raw(), self.scale)
    }
}
