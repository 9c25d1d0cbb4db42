//! The engine: one book per instrument, fed by gateway messages, reporting every outcome
//! to an [`Observer`]. The uninstrumented build uses [`NoObserver`] (compiled away); the
//! instrumented one [`GmcObserver`] feeds gmc-client's trading vocabulary.

use gmc_client::trading::{Event, LocalOrderFlow, RejectReason, Stage, Trading};
use gmc_client::{FixedAdder, FixedGauge, LocalCounter, LocalHistogram, Registry};

use crate::book::{Accepted, Book, Fill, Kind, NewOrder, Reject, Side};
use crate::flow::{Msg, Op};
use crate::gateway::{Encoder, ExecType, Report};

/// Price band of every book, per mille of the last trade.
pub const BAND_PERMILLE: i64 = 100;

/// Ticks per currency unit (prices are in cents).
pub const PRICE_SCALE: u32 = 2;

/// Simulated engine time from arrival to an immediate fill, ns.
pub const MATCH_NS: u64 = 2_000;

/// Receives what the engine does with each message.
pub trait Observer {
    /// A new order arrived (sent by its gateway).
    fn on_new(&mut self, m: &Msg);
    /// The order was rejected.
    fn on_reject(&mut self, m: &Msg, r: Reject);
    /// The order was accepted.
    fn on_accept(&mut self, m: &Msg, a: &Accepted);
    /// One execution; `taker_done` says whether the incoming order is now complete.
    fn on_fill(&mut self, m: &Msg, f: &Fill, taker_done: bool);
    /// A cancel request (`found` when the order was still resting).
    fn on_cancel(&mut self, m: &Msg, found: bool);
    /// Whether the message's gateway session is up (down ones are rejected).
    fn venue_up(&self, _venue: u8) -> bool {
        true
    }
}

/// Observes nothing.
#[derive(Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn on_new(&mut self, _: &Msg) {}
    fn on_reject(&mut self, _: &Msg, _: Reject) {}
    fn on_accept(&mut self, _: &Msg, _: &Accepted) {}
    fn on_fill(&mut self, _: &Msg, _: &Fill, _: bool) {}
    fn on_cancel(&mut self, _: &Msg, _: bool) {}
}

/// Counts of what happened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Messages processed.
    pub messages: u64,
    /// Fills.
    pub fills: u64,
    /// Rejects.
    pub rejects: u64,
}

/// The matching engine.
#[derive(Debug)]
pub struct Engine<O: Observer> {
    books: Vec<Book>,
    fills: Vec<Fill>,
    symbols: Vec<String>,
    /// Execution reports to the gateway; `None` runs the bare book (benchmark variant).
    pub gateway: Option<Encoder>,
    /// The observer.
    pub observer: O,
    /// Running counts.
    pub stats: Stats,
}

/// Tag of a resting order: simulated ack time and gateway.
fn tag(ack_ns: u64, venue: u8, house: bool) -> u64 {
    ack_ns << 9 | u64::from(house) << 8 | u64::from(venue)
}

/// `(ack_ns, venue, house)` of a tag.
pub fn untag(t: u64) -> (u64, u8, bool) {
    (t >> 9, (t & 0xff) as u8, t & 0x100 != 0)
}

impl<O: Observer> Engine<O> {
    /// An engine for `instruments` books.
    pub fn new(instruments: u16, observer: O) -> Engine<O> {
        Engine {
            books: (0..instruments).map(|_| Book::new(BAND_PERMILLE)).collect(),
            fills: Vec::with_capacity(64),
            symbols: (0..usize::from(instruments)).map(symbol).collect(),
            gateway: Some(Encoder::default()),
            observer,
            stats: Stats::default(),
        }
    }

    /// The book of instrument `i`.
    pub fn book(&self, i: u16) -> Option<&Book> {
        self.books.get(usize::from(i))
    }

    /// Encode an execution report for `o` if a gateway is attached.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn report_order(
        &mut self,
        m: &Msg,
        o: &NewOrder,
        exec: ExecType,
        last_qty: u64,
        last_px: i64,
        leaves: u64,
        text: &str,
    ) {
        if let Some(g) = &mut self.gateway {
            let sym = self
                .symbols
                .get(usize::from(m.instrument))
                .map_or("", String::as_str);
            g.report(
                &Report {
                    exec,
                    order_id: o.id,
                    symbol: sym,
                    side: o.side,
                    qty: o.qty,
                    last_qty,
                    last_px,
                    leaves,
                    sim_ns: m.sim_ns,
                    text,
                },
                false,
            );
        }
    }

    /// Handle one message.
    #[inline]
    pub fn process(&mut self, m: &Msg) {
        self.stats.messages += 1;
        let Some(book) = self.books.get_mut(usize::from(m.instrument)) else {
            return;
        };
        match m.op {
            Op::Cancel(id) => {
                let gone = book.cancel(id);
                self.observer.on_cancel(m, gone.is_some());
                if let Some(g) = &mut self.gateway {
                    let sym = self
                        .symbols
                        .get(usize::from(m.instrument))
                        .map_or("", String::as_str);
                    let r = Report {
                        exec: ExecType::Canceled,
                        order_id: id,
                        symbol: sym,
                        side: Side::Buy,
                        qty: gone.map_or(0, |(q, _)| q),
                        last_qty: 0,
                        last_px: 0,
                        leaves: 0,
                        sim_ns: m.sim_ns,
                        text: if gone.is_some() { "" } else { "unknown order" },
                    };
                    g.report(&r, gone.is_none());
                }
            }
            Op::New(mut o) => {
                self.observer.on_new(m);
                if !self.observer.venue_up(m.venue) {
                    self.stats.rejects += 1;
                    self.observer.on_reject(m, Reject::NoLiquidity);
                    self.report_order(m, &o, ExecType::Rejected, 0, 0, 0, "session down");
                    return;
                }
                let ack = m.sim_ns;
                o.tag = tag(ack, m.venue, m.house);
                self.fills.clear();
                match book.submit(o, &mut self.fills) {
                    Err(r) => {
                        self.stats.rejects += 1;
                        self.observer.on_reject(m, r);
                        self.report_order(m, &o, ExecType::Rejected, 0, 0, 0, r.reason());
                    }
                    Ok(a) => {
                        self.observer.on_accept(m, &a);
                        let n = self.fills.len();
                        self.stats.fills += n as u64;
                        for (k, f) in self.fills.iter().enumerate() {
                            let taker_done = k + 1 == n && a.resting == 0;
                            self.observer.on_fill(m, f, taker_done);
                        }
                        self.report_order(m, &o, ExecType::New, 0, 0, o.qty, "");
                        let mut leaves = o.qty;
                        for k in 0..n {
                            let Some(f) = self.fills.get(k).copied() else {
                                break;
                            };
                            leaves -= f.qty;
                            self.report_order(m, &o, ExecType::Trade, f.qty, f.price, leaves, "");
                            // The maker's report (side and size are the book's business;
                            // a real engine looks them up, the report carries the fill).
                            let maker = NewOrder {
                                id: f.maker,
                                side: o.side.opposite(),
                                kind: Kind::Limit { price: f.price },
                                qty: f.qty,
                                tag: f.maker_tag,
                            };
                            let ml = if f.maker_done { 0 } else { 1 };
                            self.report_order(m, &maker, ExecType::Trade, f.qty, f.price, ml, "");
                        }
                    }
                }
            }
        }
    }
}

/// Feeds gmc-client: lifecycle counters and stage latencies per gateway × instrument,
/// reject reasons, house PnL (exact fixed point) and exposure, and a sampled real
/// matching latency.
///
/// Its handles are bound to the thread that builds it ([`gmc_client::LocalCounter`]):
/// build it on the engine's thread, where it stays.
#[derive(Debug)]
pub struct GmcObserver {
    flows: Vec<LocalOrderFlow>,
    /// Per flow, the reject counters of [`REASONS`] (resolved once: no lookups per order).
    reasons: Vec<Vec<RejectReason<LocalCounter>>>,
    instruments: usize,
    pnl: Vec<FixedAdder>,
    exposure: Vec<FixedGauge>,
    position: Vec<i64>,
    venues: Vec<gmc_client::trading::VenueConnection>,
    /// Real time spent in the engine per message, sampled 1 in 64.
    pub match_latency: LocalHistogram,
}

/// Reject reasons the engine produces: the book's, then `venue_down` and `unknown_order`.
pub const REASONS: [&str; 7] = [
    "invalid_qty",
    "invalid_price",
    "price_band",
    "no_liquidity",
    "duplicate_id",
    "venue_down",
    "unknown_order",
];

/// Index of a book reject in [`REASONS`].
fn reason_index(r: Reject) -> usize {
    match r {
        Reject::InvalidQty => 0,
        Reject::InvalidPrice => 1,
        Reject::PriceBand => 2,
        Reject::NoLiquidity => 3,
        Reject::DuplicateId => 4,
    }
}

/// Instrument symbol of index `i`.
pub fn symbol(i: usize) -> String {
    const S: [&str; 8] = [
        "AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "BTCUSD",
    ];
    S.get(i)
        .map_or_else(|| format!("SYM{i}"), |s| (*s).to_owned())
}

/// Gateway name of index `v`.
pub fn venue_name(v: usize) -> String {
    format!("GW{}", v + 1)
}

impl GmcObserver {
    /// Resolve every handle once.
    pub fn new(registry: &Registry, instruments: u16, venues: u8) -> gmc_client::Result<Self> {
        let t = Trading::new(registry)?;
        let mut flows = Vec::new();
        for v in 0..usize::from(venues) {
            for i in 0..usize::from(instruments) {
                flows.push(t.order_flow(&venue_name(v), &symbol(i))?.local());
            }
        }
        let n = usize::from(instruments);
        let reasons = flows
            .iter()
            .map(|f| REASONS.iter().map(|r| f.reject_reason(r).local()).collect())
            .collect();
        Ok(GmcObserver {
            reasons,
            flows,
            instruments: n,
            pnl: (0..n)
                .map(|i| t.pnl("house_mm", &symbol(i), PRICE_SCALE))
                .collect::<gmc_client::Result<_>>()?,
            exposure: (0..n)
                .map(|i| t.exposure("engine", &symbol(i), PRICE_SCALE))
                .collect::<gmc_client::Result<_>>()?,
            position: vec![0; n],
            venues: (0..usize::from(venues))
                .map(|v| t.venue(&venue_name(v)))
                .collect::<gmc_client::Result<_>>()?,
            match_latency: registry
                .histogram(
                    "engine_match_latency_seconds",
                    "Real time the engine spent on a message (sampled 1 in 64).",
                )?
                .local(),
        })
    }

    /// The gateway connections (for the simulated gateway thread).
    pub fn venues(&self) -> &[gmc_client::trading::VenueConnection] {
        &self.venues
    }

    #[inline]
    fn flow(&self, venue: u8, instrument: u16) -> Option<&LocalOrderFlow> {
        self.flows
            .get(usize::from(venue) * self.instruments + usize::from(instrument))
    }

    #[inline]
    fn reject(&self, m: &Msg, k: usize) {
        let i = usize::from(m.venue) * self.instruments + usize::from(m.instrument);
        if let (Some(f), Some(r)) = (
            self.flows.get(i),
            self.reasons.get(i).and_then(|v| v.get(k)),
        ) {
            f.rejected_by(r);
        }
    }

    #[inline]
    fn house_trade(&mut self, i: usize, buy: bool, f: &Fill) {
        let (Some(p), Some(pnl), Some(e)) = (
            self.position.get_mut(i),
            self.pnl.get(i),
            self.exposure.get(i),
        ) else {
            return;
        };
        let q = i64::try_from(f.qty).unwrap_or(0);
        let cash = f.price * q;
        if buy {
            *p += q;
            pnl.add(-cash);
        } else {
            *p -= q;
            pnl.add(cash);
        }
        e.set(*p * f.price);
    }
}

impl Observer for GmcObserver {
    #[inline]
    fn on_new(&mut self, m: &Msg) {
        if let Some(f) = self.flow(m.venue, m.instrument) {
            f.count(Event::Sent, 0);
            f.record_stage(Stage::DecisionToSend, u64::from(m.decision_to_send_ns));
        }
    }

    fn on_reject(&mut self, m: &Msg, r: Reject) {
        let k = if self.venue_up(m.venue) {
            reason_index(r)
        } else {
            5
        };
        self.reject(m, k);
    }

    #[inline]
    fn on_accept(&mut self, m: &Msg, _: &Accepted) {
        if let Some(f) = self.flow(m.venue, m.instrument) {
            f.count(Event::Acked, 0);
            f.record_stage(Stage::SendToAck, u64::from(m.send_to_ack_ns));
        }
    }

    #[inline]
    fn on_fill(&mut self, m: &Msg, fill: &Fill, taker_done: bool) {
        if let Some(f) = self.flow(m.venue, m.instrument) {
            f.count(
                if taker_done {
                    Event::Filled
                } else {
                    Event::PartiallyFilled
                },
                fill.qty,
            );
            f.record_stage(Stage::AckToFill, MATCH_NS);
        }
        let (maker_ack, maker_venue, maker_house) = untag(fill.maker_tag);
        if let Some(f) = self.flow(maker_venue, m.instrument) {
            f.count(
                if fill.maker_done {
                    Event::Filled
                } else {
                    Event::PartiallyFilled
                },
                fill.qty,
            );
            f.record_stage(Stage::AckToFill, m.sim_ns.saturating_sub(maker_ack));
        }
        let taker_buys = matches!(m.op, Op::New(o) if o.side == Side::Buy);
        let i = usize::from(m.instrument);
        if m.house {
            self.house_trade(i, taker_buys, fill);
        }
        if maker_house {
            self.house_trade(i, !taker_buys, fill);
        }
    }

    #[inline]
    fn on_cancel(&mut self, m: &Msg, found: bool) {
        if let Some(f) = self.flow(m.venue, m.instrument) {
            if found {
                f.count(Event::Cancelled, 0);
                return;
            }
        }
        self.reject(m, 6);
    }

    #[inline]
    fn venue_up(&self, venue: u8) -> bool {
        self.venues
            .get(usize::from(venue))
            .is_none_or(|v| v.is_up())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{FlowConfig, Generator};

    #[test]
    fn instrumented_and_plain_engines_agree() {
        let msgs: Vec<_> = Generator::new(FlowConfig::default()).take(20_000).collect();
        let mut plain = Engine::new(8, NoObserver);
        let r = Registry::new();
        let obs = GmcObserver::new(&r, 8, 2).unwrap();
        for v in obs.venues() {
            v.set_up(true);
        }
        let mut inst = Engine::new(8, obs);
        for m in &msgs {
            plain.process(m);
            inst.process(m);
        }
        assert_eq!(plain.stats, inst.stats);
        assert!(plain.stats.fills > 1000, "{:?}", plain.stats);
        assert!(plain.stats.rejects > 0);
        let text = r.encode_to_string(gmc_client::Format::Prometheus);
        let sent: f64 = text
            .lines()
            .filter(|l| l.starts_with("trading_orders_total{") && l.contains("event=\"sent\""))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum();
        let news = msgs.iter().filter(|m| matches!(m.op, Op::New(_))).count();
        assert_eq!(sent as usize, news);
        assert!(text.contains("reason=\"price_band\""), "no band rejects");
    }
}
