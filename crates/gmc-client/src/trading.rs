//! Trading vocabulary on top of the primitives: order lifecycle counters and stage
//! latencies by venue and instrument, reject reasons, venue connectivity, PnL and
//! exposure in fixed point, and orders-per-second derived from counters.
//!
//! Metric names (all resolved once per venue/instrument, so the per-order cost is a few
//! counter bumps and histogram records):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `trading_orders_total` | counter | venue, instrument, event = sent, acked, rejected, filled, partially_filled, cancelled |
//! | `trading_order_rejects_total` | counter | venue, instrument, reason |
//! | `trading_filled_quantity_total` | counter | venue, instrument |
//! | `trading_order_stage_latency_seconds` | histogram | venue, instrument, stage = decision_to_send, send_to_ack, ack_to_fill |
//! | `trading_orders_per_second` | gauge | venue, instrument (sent orders, over the last collection interval) |
//! | `trading_venue_up` | gauge | venue |
//! | `trading_venue_transitions_total` | counter | venue, to = up, down |
//! | `trading_venue_last_transition_timestamp_seconds` | gauge | venue |
//! | `trading_venue_heartbeat_age_seconds` | gauge | venue (computed at collection) |
//! | `trading_pnl` | gauge (fixed-point adder) | strategy, instrument |
//! | `trading_exposure` | gauge (fixed point) | venue, instrument |
//!
//! Success rate is `acked / sent`, reject rate `rejected / sent`, fill rate
//! `filled / acked` (`rate()` of the `event` series in PromQL).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::clock::{self, Ticks};
use crate::counter::Counter;
use crate::error::Result;
use crate::family::Family;
use crate::gauge::{FixedAdder, FixedGauge, Gauge, GaugeF64};
use crate::histogram::Histogram;
use crate::local::{CounterHandle, HistogramHandle, LocalCounter, LocalHistogram};
use crate::registry::{lock, Registry};

/// Metric and label names of the trading vocabulary.
pub mod names {
    /// Order lifecycle events.
    pub const ORDERS: &str = "trading_orders_total";
    /// Rejects by reason.
    pub const REJECTS: &str = "trading_order_rejects_total";
    /// Filled quantity.
    pub const FILLED_QTY: &str = "trading_filled_quantity_total";
    /// Stage latencies.
    pub const STAGE_LATENCY: &str = "trading_order_stage_latency_seconds";
    /// Orders sent per second.
    pub const TPS: &str = "trading_orders_per_second";
    /// Venue connection state.
    pub const VENUE_UP: &str = "trading_venue_up";
    /// Venue state transitions.
    pub const VENUE_TRANSITIONS: &str = "trading_venue_transitions_total";
    /// Time of the last venue transition.
    pub const VENUE_LAST_TRANSITION: &str = "trading_venue_last_transition_timestamp_seconds";
    /// Age of the last venue heartbeat.
    pub const VENUE_HEARTBEAT_AGE: &str = "trading_venue_heartbeat_age_seconds";
    /// Profit and loss.
    pub const PNL: &str = "trading_pnl";
    /// Risk exposure.
    pub const EXPOSURE: &str = "trading_exposure";
    /// Label: venue.
    pub const VENUE: &str = "venue";
    /// Label: instrument.
    pub const INSTRUMENT: &str = "instrument";
    /// Label: lifecycle event.
    pub const EVENT: &str = "event";
    /// Label: latency stage.
    pub const STAGE: &str = "stage";
    /// Label: reject reason.
    pub const REASON: &str = "reason";
    /// Label: strategy.
    pub const STRATEGY: &str = "strategy";
}

/// Distinct reject reasons kept per venue × instrument before folding into `__overflow__`.
pub const MAX_REJECT_SERIES: usize = 1024;

/// A latency stage of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Strategy decision to the order leaving the gateway.
    DecisionToSend,
    /// Order sent to the venue's acknowledgement.
    SendToAck,
    /// Acknowledgement to (first or final) fill.
    AckToFill,
}

impl Stage {
    /// The `stage` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::DecisionToSend => "decision_to_send",
            Stage::SendToAck => "send_to_ack",
            Stage::AckToFill => "ack_to_fill",
        }
    }
}

/// Entry point: creates per-venue/instrument handles in one registry.
#[derive(Debug, Clone)]
pub struct Trading {
    registry: Registry,
    rejects: Arc<Family<Counter>>,
}

impl Trading {
    /// The trading vocabulary in `registry`.
    pub fn new(registry: &Registry) -> Result<Trading> {
        let rejects = registry.counter_family(
            names::REJECTS,
            "Orders rejected, by reason.",
            &[names::VENUE, names::INSTRUMENT, names::REASON],
            MAX_REJECT_SERIES,
        )?;
        Ok(Trading {
            registry: registry.clone(),
            rejects: Arc::new(rejects),
        })
    }

    /// Handles for the orders of one venue and instrument (resolve once, keep).
    pub fn order_flow(&self, venue: &str, instrument: &str) -> Result<OrderFlow> {
        let r = &self.registry;
        let ev = |event: &str| {
            r.counter_with(
                names::ORDERS,
                "Order lifecycle events.",
                &[
                    (names::VENUE, venue),
                    (names::INSTRUMENT, instrument),
                    (names::EVENT, event),
                ],
            )
        };
        let stage = |s: Stage| {
            r.histogram_with(
                names::STAGE_LATENCY,
                "Order stage latency (recorded in ns, exposed in seconds).",
                &[
                    (names::VENUE, venue),
                    (names::INSTRUMENT, instrument),
                    (names::STAGE, s.as_str()),
                ],
            )
        };
        let sent = ev("sent")?;
        let flow = OrderFlow {
            acked: ev("acked")?,
            rejected: ev("rejected")?,
            filled: ev("filled")?,
            partially_filled: ev("partially_filled")?,
            cancelled: ev("cancelled")?,
            filled_qty: r.counter_with(
                names::FILLED_QTY,
                "Filled quantity in lots.",
                &[(names::VENUE, venue), (names::INSTRUMENT, instrument)],
            )?,
            decision_to_send: stage(Stage::DecisionToSend)?,
            send_to_ack: stage(Stage::SendToAck)?,
            ack_to_fill: stage(Stage::AckToFill)?,
            rejects: Arc::clone(&self.rejects),
            venue: venue.into(),
            instrument: instrument.into(),
            sent: sent.clone(),
        };
        let tps = r.gauge_f64_with(
            names::TPS,
            "Orders sent per second over the last collection interval.",
            &[(names::VENUE, venue), (names::INSTRUMENT, instrument)],
        )?;
        let last: Mutex<Option<(u64, Instant)>> = Mutex::new(None);
        r.on_collect(move || {
            let now = Instant::now();
            let total = sent.get();
            let mut l = lock(&last);
            if let Some((prev, at)) = *l {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    tps.set(total.saturating_sub(prev) as f64 / secs);
                }
            }
            *l = Some((total, now));
        });
        Ok(flow)
    }

    /// Connectivity handles of one venue (starts "down").
    pub fn venue(&self, venue: &str) -> Result<VenueConnection> {
        let r = &self.registry;
        let to = |s: &str| {
            r.counter_with(
                names::VENUE_TRANSITIONS,
                "Venue connection state transitions.",
                &[(names::VENUE, venue), ("to", s)],
            )
        };
        let v = VenueConnection {
            inner: Arc::new(VenueInner {
                up: r.gauge_with(
                    names::VENUE_UP,
                    "1 when the venue session is up.",
                    &[(names::VENUE, venue)],
                )?,
                to_up: to("up")?,
                to_down: to("down")?,
                last_transition: r.gauge_f64_with(
                    names::VENUE_LAST_TRANSITION,
                    "Unix time of the last venue state transition.",
                    &[(names::VENUE, venue)],
                )?,
                last_heartbeat_nanos: AtomicI64::new(0),
                log: Mutex::new(VecDeque::new()),
            }),
        };
        let age = r.gauge_f64_with(
            names::VENUE_HEARTBEAT_AGE,
            "Seconds since the last heartbeat from the venue (-1 before the first).",
            &[(names::VENUE, venue)],
        )?;
        let inner = Arc::clone(&v.inner);
        r.on_collect(move || {
            let last = inner.last_heartbeat_nanos.load(Relaxed);
            age.set(if last == 0 {
                -1.0
            } else {
                (gmc_model::now_nanos() - last) as f64 / 1e9
            });
        });
        Ok(v)
    }

    /// Realised PnL of a strategy on an instrument, in units of `10^-scale` currency.
    pub fn pnl(&self, strategy: &str, instrument: &str, scale: u32) -> Result<FixedAdder> {
        self.registry.fixed_adder_with(
            names::PNL,
            "Realised profit and loss in currency units (exact fixed-point sum).",
            &[(names::STRATEGY, strategy), (names::INSTRUMENT, instrument)],
            scale,
        )
    }

    /// Risk exposure on a venue and instrument, in units of `10^-scale` currency.
    pub fn exposure(&self, venue: &str, instrument: &str, scale: u32) -> Result<FixedGauge> {
        self.registry.fixed_gauge_with(
            names::EXPOSURE,
            "Risk exposure (signed notional) in currency units.",
            &[(names::VENUE, venue), (names::INSTRUMENT, instrument)],
            scale,
        )
    }
}

/// Per-order recording for one venue and instrument. Each method is a counter bump and,
/// where a stage ends, a histogram record; the tick-taking ones read the TSC once.
///
/// The default handles are shareable across threads; [`OrderFlow::local`] binds a copy
/// to the calling thread ([`LocalCounter`], [`LocalHistogram`]) for an engine loop.
#[derive(Debug, Clone)]
pub struct OrderFlow<C: CounterHandle = Counter, H: HistogramHandle = Histogram> {
    sent: C,
    acked: C,
    rejected: C,
    filled: C,
    partially_filled: C,
    cancelled: C,
    filled_qty: C,
    decision_to_send: H,
    send_to_ack: H,
    ack_to_fill: H,
    rejects: Arc<Family<Counter>>,
    venue: Box<str>,
    instrument: Box<str>,
}

/// An [`OrderFlow`] bound to one thread.
pub type LocalOrderFlow = OrderFlow<LocalCounter, LocalHistogram>;

impl OrderFlow {
    /// The same flow bound to the calling thread's cells: every record is then a plain
    /// load and store at a fixed address. The result cannot leave the thread.
    pub fn local(&self) -> LocalOrderFlow {
        OrderFlow {
            sent: self.sent.local(),
            acked: self.acked.local(),
            rejected: self.rejected.local(),
            filled: self.filled.local(),
            partially_filled: self.partially_filled.local(),
            cancelled: self.cancelled.local(),
            filled_qty: self.filled_qty.local(),
            decision_to_send: self.decision_to_send.local(),
            send_to_ack: self.send_to_ack.local(),
            ack_to_fill: self.ack_to_fill.local(),
            rejects: Arc::clone(&self.rejects),
            venue: self.venue.clone(),
            instrument: self.instrument.clone(),
        }
    }
}

impl<C: CounterHandle, H: HistogramHandle> OrderFlow<C, H> {
    /// The order left for the venue; records decision→send from `decision` and returns
    /// the send time for [`OrderFlow::acked`].
    #[inline]
    pub fn sent(&self, decision: Ticks) -> Ticks {
        let now = clock::now();
        self.decision_to_send.record_ticks(decision, now);
        self.sent.add(1);
        now
    }

    /// The venue acknowledged; records send→ack and returns the ack time.
    #[inline]
    pub fn acked(&self, sent: Ticks) -> Ticks {
        let now = clock::now();
        self.send_to_ack.record_ticks(sent, now);
        self.acked.add(1);
        now
    }

    /// Completely filled (`qty` in the last fill); records ack→fill.
    #[inline]
    pub fn filled(&self, acked: Ticks, qty: u64) {
        self.ack_to_fill.record_ticks(acked, clock::now());
        self.filled.add(1);
        self.filled_qty.add(qty);
    }

    /// Partially filled by `qty`; records ack→fill.
    #[inline]
    pub fn partially_filled(&self, acked: Ticks, qty: u64) {
        self.ack_to_fill.record_ticks(acked, clock::now());
        self.partially_filled.add(1);
        self.filled_qty.add(qty);
    }

    /// Cancelled.
    #[inline]
    pub fn cancelled(&self) {
        self.cancelled.add(1);
    }

    /// Rejected for `reason` (a dynamic-label lookup: rejects are the cold path).
    pub fn rejected(&self, reason: &str) {
        self.rejected.add(1);
        self.rejects
            .with(&[&self.venue, &self.instrument, reason])
            .inc();
    }

    /// Resolve the reject counter of `reason` once, for [`OrderFlow::rejected_by`] on
    /// paths where rejects are frequent enough that a label lookup would show.
    pub fn reject_reason(&self, reason: &str) -> RejectReason {
        RejectReason(
            self.rejects
                .handle(&[&self.venue, &self.instrument, reason]),
        )
    }

    /// Rejected for a pre-resolved reason: two counter bumps, no lookup.
    #[inline]
    pub fn rejected_by<R: CounterHandle>(&self, reason: &RejectReason<R>) {
        self.rejected.add(1);
        reason.0.add(1);
    }

    /// Record a stage latency measured elsewhere (e.g. from exchange timestamps).
    #[inline]
    pub fn record_stage(&self, stage: Stage, nanos: u64) {
        self.stage(stage).record(nanos);
    }

    /// Count an event without a clock read (when latencies come via `record_stage`).
    #[inline]
    pub fn count(&self, event: Event, qty: u64) {
        match event {
            Event::Sent => self.sent.add(1),
            Event::Acked => self.acked.add(1),
            Event::Filled => {
                self.filled.add(1);
                self.filled_qty.add(qty);
            }
            Event::PartiallyFilled => {
                self.partially_filled.add(1);
                self.filled_qty.add(qty);
            }
            Event::Cancelled => self.cancelled.add(1),
        }
    }

    /// The stage histogram (for snapshots and spans).
    pub fn stage(&self, stage: Stage) -> &H {
        match stage {
            Stage::DecisionToSend => &self.decision_to_send,
            Stage::SendToAck => &self.send_to_ack,
            Stage::AckToFill => &self.ack_to_fill,
        }
    }
}

/// A reject reason resolved for one venue and instrument ([`OrderFlow::reject_reason`]).
#[derive(Debug, Clone)]
pub struct RejectReason<C: CounterHandle = Counter>(C);

impl RejectReason {
    /// The same reason bound to the calling thread (see [`OrderFlow::local`]).
    pub fn local(&self) -> RejectReason<LocalCounter> {
        RejectReason(self.0.local())
    }
}

/// An order lifecycle event other than a reject (which carries a reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Sent to the venue.
    Sent,
    /// Acknowledged.
    Acked,
    /// Completely filled.
    Filled,
    /// Partially filled.
    PartiallyFilled,
    /// Cancelled.
    Cancelled,
}

/// One venue state change, with its exact wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// Unix time in nanoseconds.
    pub at_nanos: i64,
    /// New state: `true` = up.
    pub up: bool,
}

/// Transitions kept in memory per venue.
pub const TRANSITION_LOG: usize = 256;

#[derive(Debug)]
struct VenueInner {
    up: Gauge,
    to_up: Counter,
    to_down: Counter,
    last_transition: GaugeF64,
    last_heartbeat_nanos: AtomicI64,
    log: Mutex<VecDeque<Transition>>,
}

/// Connection state of one venue session.
#[derive(Debug, Clone)]
pub struct VenueConnection {
    inner: Arc<VenueInner>,
}

impl VenueConnection {
    /// Record the session state; a change counts a transition with its exact time.
    pub fn set_up(&self, up: bool) {
        let v = &self.inner;
        if (v.up.get() == 1) == up && !lock(&v.log).is_empty() {
            return;
        }
        let at = gmc_model::now_nanos();
        v.up.set(i64::from(up));
        if up {
            v.to_up.inc();
        } else {
            v.to_down.inc();
        }
        v.last_transition.set(at as f64 / 1e9);
        let mut log = lock(&v.log);
        if log.len() >= TRANSITION_LOG {
            log.pop_front();
        }
        log.push_back(Transition { at_nanos: at, up });
    }

    /// A heartbeat arrived now.
    #[inline]
    pub fn heartbeat(&self) {
        self.inner
            .last_heartbeat_nanos
            .store(gmc_model::now_nanos(), Relaxed);
    }

    /// Whether the session is up.
    pub fn is_up(&self) -> bool {
        self.inner.up.get() == 1
    }

    /// The last [`TRANSITION_LOG`] transitions, oldest first.
    pub fn transitions(&self) -> Vec<Transition> {
        lock(&self.inner.log).iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    #[test]
    fn lifecycle_feeds_counters_and_stage_histograms() {
        let r = Registry::new();
        let t = Trading::new(&r).unwrap();
        let f = t.order_flow("XNAS", "AAPL").unwrap();
        let d = clock::now();
        let s = f.sent(d);
        let a = f.acked(s);
        f.partially_filled(a, 40);
        f.filled(a, 60);
        f.rejected("price_band");
        f.rejected_by(&f.reject_reason("price_band"));
        f.cancelled();
        f.record_stage(Stage::SendToAck, 1234);
        let text = r.encode_to_string(Format::Prometheus);
        for want in [
            "trading_orders_total{event=\"sent\",instrument=\"AAPL\",venue=\"XNAS\"} 1",
            "trading_orders_total{event=\"rejected\",instrument=\"AAPL\",venue=\"XNAS\"} 2",
            "trading_order_rejects_total{instrument=\"AAPL\",reason=\"price_band\",venue=\"XNAS\"} 2",
            "trading_filled_quantity_total{instrument=\"AAPL\",venue=\"XNAS\"} 100",
            "trading_order_stage_latency_seconds_count{instrument=\"AAPL\",stage=\"send_to_ack\",venue=\"XNAS\"} 2",
            "trading_order_stage_latency_seconds_count{instrument=\"AAPL\",stage=\"ack_to_fill\",venue=\"XNAS\"} 2",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }

    #[test]
    fn venue_transitions_are_logged_with_time() {
        let r = Registry::new();
        let t = Trading::new(&r).unwrap();
        let v = t.venue("XNAS").unwrap();
        v.set_up(true);
        v.set_up(true);
        v.heartbeat();
        v.set_up(false);
        let log = v.transitions();
        assert_eq!(log.len(), 2);
        assert!(log[0].up && !log[1].up);
        assert!(log[1].at_nanos >= log[0].at_nanos);
        let text = r.encode_to_string(Format::Prometheus);
        assert!(text.contains("trading_venue_transitions_total{to=\"up\",venue=\"XNAS\"} 1"));
        assert!(text.contains("trading_venue_up{venue=\"XNAS\"} 0"));
        assert!(!text.contains("trading_venue_heartbeat_age_seconds{venue=\"XNAS\"} -1"));
    }

    #[test]
    fn pnl_sums_exactly_in_fixed_point() {
        let r = Registry::new();
        let t = Trading::new(&r).unwrap();
        let pnl = t.pnl("mm", "BTC", 8).unwrap();
        // 0.1 added ten million times is exactly 1_000_000 in fixed point.
        for _ in 0..10_000_000 {
            pnl.add(10_000_000);
        }
        pnl.add(-5);
        assert_eq!(pnl.get_raw(), 100_000_000_000_000 - 5);
        let e = t.exposure("XNAS", "BTC", 2).unwrap();
        e.set(-12_345);
        assert_eq!(e.get(), -123.45);
    }
}
