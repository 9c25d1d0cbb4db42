//! A price-time priority limit order book for one instrument: limit and market orders,
//! cancels, partial fills. Prices are integer ticks, quantities integer lots.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// Order id, unique per book.
pub type OrderId = u64;

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bid.
    Buy,
    /// Ask.
    Sell,
}

impl Side {
    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

/// Limit (rests if not filled) or market (fills what it can, the rest is cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Limit at a price in ticks.
    Limit {
        /// Limit price.
        price: i64,
    },
    /// Market order.
    Market,
}

/// A new order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    /// Id (unique in the book).
    pub id: OrderId,
    /// Side.
    pub side: Side,
    /// Limit or market.
    pub kind: Kind,
    /// Quantity in lots.
    pub qty: u64,
    /// Opaque tag carried to fills (e.g. a simulated ack time or an owner).
    pub tag: u64,
}

/// Why an order was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// Zero quantity.
    #[error("invalid quantity")]
    InvalidQty,
    /// Non-positive limit price.
    #[error("invalid price")]
    InvalidPrice,
    /// Limit price too far from the reference price.
    #[error("price outside the band")]
    PriceBand,
    /// A market order met an empty opposite side.
    #[error("no liquidity")]
    NoLiquidity,
    /// The id is already resting.
    #[error("duplicate order id")]
    DuplicateId,
}

impl Reject {
    /// Label value for metrics.
    pub fn reason(self) -> &'static str {
        match self {
            Reject::InvalidQty => "invalid_qty",
            Reject::InvalidPrice => "invalid_price",
            Reject::PriceBand => "price_band",
            Reject::NoLiquidity => "no_liquidity",
            Reject::DuplicateId => "duplicate_id",
        }
    }
}

/// One execution between the incoming order and a resting one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// Resting (passive) order.
    pub maker: OrderId,
    /// The resting order's tag.
    pub maker_tag: u64,
    /// Whether the resting order is now completely filled.
    pub maker_done: bool,
    /// Execution price (the resting order's).
    pub price: i64,
    /// Executed lots.
    pub qty: u64,
}

/// What happened to an accepted order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Lots executed immediately.
    pub filled: u64,
    /// Lots now resting in the book.
    pub resting: u64,
    /// Lots of a market order left unfilled and cancelled.
    pub cancelled: u64,
}

#[derive(Debug, Clone, Copy)]
struct Resting {
    id: OrderId,
    qty: u64,
    tag: u64,
}

/// The book of one instrument.
#[derive(Debug, Default)]
pub struct Book {
    bids: BTreeMap<i64, VecDeque<Resting>>,
    asks: BTreeMap<i64, VecDeque<Resting>>,
    index: HashMap<OrderId, (Side, i64)>,
    /// Reference price for the band check (last trade, or the first limit price).
    reference: Option<i64>,
    /// Allowed distance from the reference, in per-mille (0 = no band).
    band_permille: i64,
}

impl Book {
    /// An empty book with a price band of `band_permille` ‰ around the last trade.
    pub fn new(band_permille: i64) -> Book {
        Book {
            band_permille,
            ..Book::default()
        }
    }

    /// Best bid price.
    pub fn best_bid(&self) -> Option<i64> {
        self.bids.keys().next_back().copied()
    }

    /// Best ask price.
    pub fn best_ask(&self) -> Option<i64> {
        self.asks.keys().next().copied()
    }

    /// Lots resting at `price` on `side`.
    pub fn depth(&self, side: Side, price: i64) -> u64 {
        let book = match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        };
        book.get(&price)
            .map_or(0, |q| q.iter().map(|r| r.qty).sum())
    }

    /// Resting orders.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether nothing rests.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Submit an order; executions are appended to `fills` (oldest maker first).
    pub fn submit(&mut self, o: NewOrder, fills: &mut Vec<Fill>) -> Result<Accepted, Reject> {
        if o.qty == 0 {
            return Err(Reject::InvalidQty);
        }
        if self.index.contains_key(&o.id) {
            return Err(Reject::DuplicateId);
        }
        let limit = match o.kind {
            Kind::Limit { price } => {
                if price <= 0 {
                    return Err(Reject::InvalidPrice);
                }
                if let Some(r) = self.reference {
                    if self.band_permille > 0 && (price - r).abs() * 1000 > r * self.band_permille {
                        return Err(Reject::PriceBand);
                    }
                }
                Some(price)
            }
            Kind::Market => {
                let empty = match o.side {
                    Side::Buy => self.asks.is_empty(),
                    Side::Sell => self.bids.is_empty(),
                };
                if empty {
                    return Err(Reject::NoLiquidity);
                }
                None
            }
        };
        let mut left = o.qty;
        while left > 0 {
            let best = match o.side {
                Side::Buy => self.asks.first_entry(),
                Side::Sell => self.bids.last_entry(),
            };
            let Some(mut level) = best else { break };
            let price = *level.key();
            let crosses = match (limit, o.side) {
                (None, _) => true,
                (Some(l), Side::Buy) => price <= l,
                (Some(l), Side::Sell) => price >= l,
            };
            if !crosses {
                break;
            }
            let queue = level.get_mut();
            while left > 0 {
                let Some(front) = queue.front_mut() else {
                    break;
                };
                let q = front.qty.min(left);
                front.qty -= q;
                left -= q;
                let done = front.qty == 0;
                fills.push(Fill {
                    maker: front.id,
                    maker_tag: front.tag,
                    maker_done: done,
                    price,
                    qty: q,
                });
                if done {
                    let id = front.id;
                    queue.pop_front();
                    self.index.remove(&id);
                }
            }
            self.reference = Some(price);
            if queue.is_empty() {
                level.remove();
            }
        }
        let filled = o.qty - left;
        match limit {
            Some(price) if left > 0 => {
                let book = match o.side {
                    Side::Buy => &mut self.bids,
                    Side::Sell => &mut self.asks,
                };
                book.entry(price).or_default().push_back(Resting {
                    id: o.id,
                    qty: left,
                    tag: o.tag,
                });
                self.index.insert(o.id, (o.side, price));
                if self.reference.is_none() {
                    self.reference = Some(price);
                }
                Ok(Accepted {
                    filled,
                    resting: left,
                    cancelled: 0,
                })
            }
            Some(_) => Ok(Accepted {
                filled,
                resting: 0,
                cancelled: 0,
            }),
            None => Ok(Accepted {
                filled,
                resting: 0,
                cancelled: left,
            }),
        }
    }

    /// Cancel a resting order; returns the lots that were left and its tag.
    pub fn cancel(&mut self, id: OrderId) -> Option<(u64, u64)> {
        let (side, price) = self.index.remove(&id)?;
        let book = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let queue = book.get_mut(&price)?;
        let pos = queue.iter().position(|r| r.id == id)?;
        let r = queue.remove(pos)?;
        if queue.is_empty() {
            book.remove(&price);
        }
        Some((r.qty, r.tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(id: u64, side: Side, price: i64, qty: u64) -> NewOrder {
        NewOrder {
            id,
            side,
            kind: Kind::Limit { price },
            qty,
            tag: id * 10,
        }
    }

    #[test]
    fn crossing_limit_fills_at_resting_price() {
        let mut b = Book::new(0);
        let mut f = Vec::new();
        b.submit(limit(1, Side::Sell, 101, 5), &mut f).unwrap();
        let a = b.submit(limit(2, Side::Buy, 103, 3), &mut f).unwrap();
        assert_eq!(
            a,
            Accepted {
                filled: 3,
                resting: 0,
                cancelled: 0
            }
        );
        assert_eq!(
            f,
            vec![Fill {
                maker: 1,
                maker_tag: 10,
                maker_done: false,
                price: 101,
                qty: 3
            }]
        );
        assert_eq!(b.depth(Side::Sell, 101), 2);
        assert_eq!(b.best_bid(), None);
    }

    #[test]
    fn price_then_time_priority() {
        let mut b = Book::new(0);
        let mut f = Vec::new();
        b.submit(limit(1, Side::Sell, 102, 1), &mut f).unwrap();
        b.submit(limit(2, Side::Sell, 101, 1), &mut f).unwrap();
        b.submit(limit(3, Side::Sell, 101, 1), &mut f).unwrap();
        b.submit(limit(4, Side::Buy, 102, 3), &mut f).unwrap();
        let makers: Vec<_> = f.iter().map(|x| (x.maker, x.price)).collect();
        assert_eq!(makers, vec![(2, 101), (3, 101), (1, 102)]);
        assert!(b.is_empty());
    }

    #[test]
    fn partial_fill_rests_the_remainder() {
        let mut b = Book::new(0);
        let mut f = Vec::new();
        b.submit(limit(1, Side::Buy, 100, 2), &mut f).unwrap();
        let a = b.submit(limit(2, Side::Sell, 99, 5), &mut f).unwrap();
        assert_eq!(
            a,
            Accepted {
                filled: 2,
                resting: 3,
                cancelled: 0
            }
        );
        assert!(f[0].maker_done);
        assert_eq!(b.best_ask(), Some(99));
        assert_eq!(b.depth(Side::Sell, 99), 3);
    }

    #[test]
    fn market_orders_sweep_levels_and_cancel_the_rest() {
        let mut b = Book::new(0);
        let mut f = Vec::new();
        assert_eq!(
            b.submit(
                NewOrder {
                    id: 9,
                    side: Side::Buy,
                    kind: Kind::Market,
                    qty: 1,
                    tag: 0
                },
                &mut f
            ),
            Err(Reject::NoLiquidity)
        );
        b.submit(limit(1, Side::Sell, 100, 2), &mut f).unwrap();
        b.submit(limit(2, Side::Sell, 105, 2), &mut f).unwrap();
        let a = b
            .submit(
                NewOrder {
                    id: 3,
                    side: Side::Buy,
                    kind: Kind::Market,
                    qty: 6,
                    tag: 0,
                },
                &mut f,
            )
            .unwrap();
        assert_eq!(
            a,
            Accepted {
                filled: 4,
                resting: 0,
                cancelled: 2
            }
        );
        assert_eq!(f.len(), 2);
        assert!(b.is_empty());
    }

    #[test]
    fn cancel_removes_from_the_queue_and_keeps_order() {
        let mut b = Book::new(0);
        let mut f = Vec::new();
        for id in 1..=3 {
            b.submit(limit(id, Side::Buy, 50, 1), &mut f).unwrap();
        }
        assert_eq!(b.cancel(2), Some((1, 20)));
        assert_eq!(b.cancel(2), None);
        b.submit(limit(4, Side::Sell, 50, 2), &mut f).unwrap();
        let makers: Vec<_> = f.iter().map(|x| x.maker).collect();
        assert_eq!(makers, vec![1, 3]);
        assert!(b.is_empty());
    }

    #[test]
    fn rejects_bad_orders() {
        let mut b = Book::new(50);
        let mut f = Vec::new();
        assert_eq!(
            b.submit(limit(1, Side::Buy, 100, 0), &mut f),
            Err(Reject::InvalidQty)
        );
        assert_eq!(
            b.submit(limit(1, Side::Buy, 0, 1), &mut f),
            Err(Reject::InvalidPrice)
        );
        b.submit(limit(1, Side::Buy, 100, 1), &mut f).unwrap();
        assert_eq!(
            b.submit(limit(1, Side::Buy, 100, 1), &mut f),
            Err(Reject::DuplicateId)
        );
        // 5 % band around 100.
        assert_eq!(
            b.submit(limit(2, Side::Sell, 106, 1), &mut f),
            Err(Reject::PriceBand)
        );
        assert!(b.submit(limit(3, Side::Sell, 104, 1), &mut f).is_ok());
    }
}
