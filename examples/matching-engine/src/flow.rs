//! Synthetic order flow: several instruments around random-walking mid prices, a mix of
//! passive and aggressive limits, market orders, cancels and a trickle of bad orders,
//! with bursts (arrival rate ×10, more aggression, slower gateways) that come and go.
//! Times are simulated nanoseconds, so a run is deterministic for a seed.

use crate::book::{Kind, NewOrder, OrderId, Side};

/// What a message asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A new order.
    New(NewOrder),
    /// Cancel a resting order.
    Cancel(OrderId),
}

/// One message from a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg {
    /// Instrument index.
    pub instrument: u16,
    /// Gateway (venue session) index.
    pub venue: u8,
    /// Whether the market-making strategy sent it.
    pub house: bool,
    /// Simulated arrival time at the engine, ns.
    pub sim_ns: u64,
    /// Simulated strategy decision → gateway send, ns.
    pub decision_to_send_ns: u32,
    /// Simulated gateway send → engine ack, ns.
    pub send_to_ack_ns: u32,
    /// The request.
    pub op: Op,
}

/// Flow settings.
#[derive(Debug, Clone, Copy)]
pub struct FlowConfig {
    /// Instruments.
    pub instruments: u16,
    /// Gateways.
    pub venues: u8,
    /// Mean calm arrival rate, messages per simulated second.
    pub rate: u64,
    /// Random seed.
    pub seed: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            instruments: 8,
            venues: 2,
            rate: 200_000,
            seed: 42,
        }
    }
}

/// Recently sent ids kept per instrument as cancel targets.
const RECENT: usize = 256;

/// The generator (an endless iterator).
#[derive(Debug)]
pub struct Generator {
    cfg: FlowConfig,
    rng: u64,
    sim_ns: u64,
    mids: Vec<i64>,
    recent: Vec<[OrderId; RECENT]>,
    next_id: OrderId,
    burst_left: u32,
}

impl Generator {
    /// A generator for `cfg`.
    pub fn new(cfg: FlowConfig) -> Generator {
        let n = usize::from(cfg.instruments.max(1));
        Generator {
            rng: cfg.seed | 1,
            sim_ns: 0,
            mids: (0..n).map(|i| 10_000 + 1_000 * i as i64).collect(),
            recent: vec![[0; RECENT]; n],
            next_id: 1,
            burst_left: 0,
            cfg,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*: fast, good enough for synthetic flow.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Log-uniform-ish latency in `[lo, hi)` ns.
    fn latency(&mut self, lo: u32, hi: u32) -> u32 {
        let span = u64::from(hi - lo);
        let a = self.below(span);
        let b = self.below(span);
        // min of two uniforms skews toward `lo` with a long tail, like real gateways.
        lo + u32::try_from(a.min(b)).unwrap_or(0)
    }
}

impl Iterator for Generator {
    type Item = Msg;

    fn next(&mut self) -> Option<Msg> {
        if self.burst_left == 0 && self.below(20_000) == 0 {
            self.burst_left = 500 + u32::try_from(self.below(5_000)).unwrap_or(0);
        }
        let burst = self.burst_left > 0;
        self.burst_left = self.burst_left.saturating_sub(1);
        let mean_gap = 1_000_000_000 / self.cfg.rate.max(1) / if burst { 10 } else { 1 };
        self.sim_ns += self.below(2 * mean_gap + 1);
        let instrument =
            u16::try_from(self.below(u64::from(self.cfg.instruments.max(1)))).unwrap_or(0);
        let i = usize::from(instrument);
        let venue = u8::try_from(self.below(u64::from(self.cfg.venues.max(1)))).unwrap_or(0);
        if self.below(8) == 0 {
            let step = if self.below(2) == 0 { 1 } else { -1 };
            self.mids[i] = (self.mids[i] + step).max(100);
        }
        let mid = self.mids[i];
        let (d2s, s2a) = if burst {
            (self.latency(3_000, 40_000), self.latency(60_000, 900_000))
        } else {
            (self.latency(1_500, 9_000), self.latency(15_000, 120_000))
        };
        let house = self.below(4) == 0;
        let roll = self.below(1000);
        let aggressive = if burst { 350 } else { 150 };
        let op = if roll < 200 {
            let k = usize::try_from(self.below(RECENT as u64)).unwrap_or(0);
            let id = self.recent[i][k];
            Op::Cancel(id)
        } else {
            let id = self.next_id;
            self.next_id += 1;
            let slot = usize::try_from(id).unwrap_or(0) % RECENT;
            self.recent[i][slot] = id;
            let side = if self.below(2) == 0 {
                Side::Buy
            } else {
                Side::Sell
            };
            let dir = if side == Side::Buy { 1 } else { -1 };
            let qty = 1 + self.below(20);
            let (kind, qty) = match roll {
                200..=201 => (Kind::Limit { price: mid }, 0),
                202..=203 => (
                    Kind::Limit {
                        price: mid + dir * mid / 5,
                    },
                    qty,
                ),
                r if r < 200 + 40 => (Kind::Market, qty),
                r if r < 200 + aggressive => (
                    Kind::Limit {
                        price: mid + dir * (1 + i64::try_from(self.below(3)).unwrap_or(0)),
                    },
                    qty,
                ),
                _ => (
                    Kind::Limit {
                        price: mid - dir * (1 + i64::try_from(self.below(10)).unwrap_or(0)),
                    },
                    qty,
                ),
            };
            Op::New(NewOrder {
                id,
                side,
                kind,
                qty,
                tag: 0,
            })
        };
        Some(Msg {
            instrument,
            venue,
            house,
            sim_ns: self.sim_ns,
            decision_to_send_ns: d2s,
            send_to_ack_ns: s2a,
            op,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_is_deterministic_and_mixed() {
        let a: Vec<_> = Generator::new(FlowConfig::default()).take(5000).collect();
        let b: Vec<_> = Generator::new(FlowConfig::default()).take(5000).collect();
        assert_eq!(a, b);
        let cancels = a.iter().filter(|m| matches!(m.op, Op::Cancel(_))).count();
        let markets = a
            .iter()
            .filter(|m| {
                matches!(
                    m.op,
                    Op::New(NewOrder {
                        kind: Kind::Market,
                        ..
                    })
                )
            })
            .count();
        assert!(cancels > 500 && markets > 50, "{cancels} {markets}");
        assert!(a.windows(2).all(|w| w[0].sim_ns <= w[1].sim_ns));
    }
}
