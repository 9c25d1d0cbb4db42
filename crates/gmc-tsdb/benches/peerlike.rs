//! A peerbench-like trading workload (same value shapes as
//! `tools/peerbench/loadgen`): Poisson counters, lognormal full-precision latency gauges,
//! cent random walks, classic histogram buckets, venue and host series; timestamps are
//! whole seconds plus a per-service ms offset, with ±1 ms jitter on 1/8 of the ticks.
#![allow(dead_code, missing_docs, unreachable_pub, clippy::all)]

/// wyrand, as the load generator uses.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut r = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
        r.next();
        r
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = (self.0 as u128).wrapping_mul((self.0 ^ 0xe703_7ed1_a0b4_28db) as u128);
        ((t >> 64) as u64) ^ (t as u64)
    }
    pub fn unif(&mut self) -> f64 {
        ((self.next() >> 11) as f64) * (1.0 / (1u64 << 53) as f64)
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unif().max(1e-300);
        let u2 = self.unif();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    pub fn poisson(&mut self, lambda: f64) -> f64 {
        if lambda <= 0.0 {
            0.0
        } else if lambda < 20.0 {
            let l = (-lambda).exp();
            let (mut k, mut p) = (0.0, 1.0);
            loop {
                p *= self.unif();
                if p <= l {
                    return k;
                }
                k += 1.0;
            }
        } else {
            (lambda + lambda.sqrt() * self.normal()).round().max(0.0)
        }
    }
}

pub fn mix(a: u64, b: u64) -> u64 {
    let mut x = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

fn load(seed: u64, t: u64) -> f64 {
    let tf = t as f64;
    let base = 1.0 + 0.35 * (tf / 900.0 * std::f64::consts::TAU).sin() + 0.15 * (tf / 97.0).sin();
    if mix(seed, t / 20) % 23 == 0 {
        base * 2.5
    } else {
        base
    }
}

/// Kinds of series, for per-kind byte accounting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Counter,
    Latency,
    Pnl,
    HistBucket,
    Venue,
    Host,
}

/// One generated series: kind, service, and its `(ts_nanos, value)` samples.
pub struct GenSeries {
    pub kind: Kind,
    pub svc: usize,
    pub samples: Vec<(i64, f64)>,
}

/// Generate `services` services over `ticks` seconds; `latency_decimals` < 0 keeps full
/// precision.
pub fn generate(services: usize, ticks: u64, latency_decimals: i32) -> Vec<GenSeries> {
    generate_with_floor(services, ticks, latency_decimals, &mut Floor::default())
}

/// Information floor of the generated values: per kind, the sum over samples of the
/// entropy (bits) of each sample's distribution given everything the generator knew
/// before drawing it (its parameters, the load curve, earlier draws, and for derived
/// series the draws they derive from). No codec that does not know the random stream
/// can average fewer bits; timestamps and labels are not counted. Approximations are
/// chosen to err low: see `ENTROPY FLOOR` notes at each kind.
#[derive(Default, Debug)]
pub struct Floor {
    /// Bits per kind, summed over its samples.
    pub bits: std::collections::BTreeMap<Kind, f64>,
}

impl Floor {
    fn add(&mut self, kind: Kind, bits: f64) {
        *self.bits.entry(kind).or_default() += bits.max(0.0);
    }
}

/// Entropy in bits of Poisson(`lambda`): exact sum for small means, the asymptotic
/// expansion (accurate to ~1e-3 bits) above.
pub fn h_poisson(lambda: f64) -> f64 {
    if lambda <= 0.0 {
        return 0.0;
    }
    if lambda > 50.0 {
        let e = std::f64::consts::E;
        return 0.5 * (2.0 * std::f64::consts::PI * e * lambda).log2()
            - 1.0 / (12.0 * lambda * std::f64::consts::LN_2);
    }
    let (mut h, mut p) = (0.0, (-lambda).exp());
    let kmax = (lambda + 12.0 * lambda.sqrt() + 30.0) as u64;
    for k in 0..=kmax {
        if p > 0.0 {
            h -= p * p.log2();
        }
        p *= lambda / (k + 1) as f64;
    }
    h
}

/// Entropy in bits of a normal with standard deviation `sd` rounded to a unit grid
/// (pmf by the midpoint rule, exact enough for `sd` ≥ 0.3; smaller `sd` counts 0).
pub fn h_rounded_normal(sd: f64) -> f64 {
    if sd < 0.3 {
        return 0.0;
    }
    if sd > 20.0 {
        return sd.log2() + 0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E).log2();
    }
    let n = (sd * 10.0) as i64 + 10;
    let pmf: Vec<f64> = (-n..=n)
        .map(|k| (-(k as f64).powi(2) / (2.0 * sd * sd)).exp())
        .collect();
    let z: f64 = pmf.iter().sum();
    -pmf.iter()
        .map(|p| p / z)
        .filter(|p| *p > 0.0)
        .map(|p| p * p.log2())
        .sum::<f64>()
}

/// [`generate`], adding each value's information floor to `floor`.
pub fn generate_with_floor(
    services: usize,
    ticks: u64,
    latency_decimals: i32,
    floor: &mut Floor,
) -> Vec<GenSeries> {
    let seed = 42u64;
    let start_ms: i64 = 1_763_000_000_000;
    let lat_scale = if latency_decimals >= 0 {
        10f64.powi(latency_decimals)
    } else {
        0.0
    };
    let mut out = Vec::new();
    let mut eid = 0u64;
    let hist_le = [
        50.0, 75.0, 100.0, 150.0, 200.0, 300.0, 500.0, 750.0, 1000.0, 2000.0, 5000.0,
    ];
    for s in 0..services {
        let ts_offset = ((s as i64) * 137 + 11) % 1000;
        let ts_of = |t: u64| {
            let j = mix(seed ^ s as u64, t) % 16;
            let jitter = match j {
                0 => 1,
                1 => -1,
                _ => 0,
            };
            (start_ms + t as i64 * 1000 + ts_offset + jitter) * 1_000_000
        };
        let svc_w = 0.5 + (mix(seed ^ 0xabc, s as u64) % 1000) as f64 / 1000.0;
        for p in 0..200usize {
            eid += 1;
            let mut r = Rng::new(mix(seed, eid));
            let w = 1.0 / ((p + 1) as f64).powf(1.05);
            let lam = 400.0 * w * svc_w;
            let reject_p = 0.005 + 0.03 * r.unif();
            let lat_mu = (35.0 + 30.0 * r.unif()).ln();
            let pnl_sigma = 2.0 + 500.0 * w;
            let mut filled = (r.unif() * 1e6).round();
            let mut rejected = (filled * reject_p).round();
            let mut trades = (filled * 0.6).round();
            let mut pnl = (r.normal() * 1e4 * 100.0).round() / 100.0;
            let mut v: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 6];
            for t in 0..ticks {
                let l = lam * load(seed, t);
                let n = r.poisson(l);
                let boost = if load(seed, t) > 2.0 { 3.0 } else { 1.0 };
                let rj = r.poisson(n * reject_p * boost).min(n);
                filled += n - rj;
                rejected += rj;
                trades += r.poisson(n * 0.6);
                // ENTROPY FLOOR, counters: filled grows by n - rj with n ~ Poisson(l);
                // H(n - rj) ≥ H(n) - H(rj). rejected and trades are Poisson given n.
                let h_rj = h_poisson(n * reject_p * boost);
                floor.add(Kind::Counter, h_poisson(l) - h_rj);
                floor.add(Kind::Counter, h_rj);
                floor.add(Kind::Counter, h_poisson(n * 0.6));
                let mu = lat_mu + 0.25 * (load(seed, t) - 1.0);
                let p50 = (mu + 0.12 * r.normal()).exp();
                let p99 = p50 * (1.4 + 0.3 * r.normal()).exp();
                pnl =
                    ((pnl + pnl_sigma * load(seed, t).sqrt() * r.normal()) * 100.0).round() / 100.0;
                // ENTROPY FLOOR, latency gauges: log-normal, locally normal with sd
                // sigma * value (the median value, which errs low), on the grid of the
                // rounding; p99 given p50. Full precision: the 52 mantissa bits of a
                // continuous value, less the bits the distribution's width leaves fixed.
                // PnL: a cent-rounded normal step.
                let (m50, m99) = (mu.exp(), p50 * 1.4f64.exp());
                if lat_scale > 0.0 {
                    floor.add(Kind::Latency, h_rounded_normal(0.12 * m50 * lat_scale));
                    floor.add(Kind::Latency, h_rounded_normal(0.3 * m99 * lat_scale));
                } else {
                    for (m, sd) in [(m50, 0.12), (m99, 0.3)] {
                        let ulp = f64::EPSILON * 2f64.powi(m.log2().floor() as i32);
                        floor.add(Kind::Latency, h_rounded_normal(sd * m / ulp).min(52.0));
                    }
                }
                floor.add(
                    Kind::Pnl,
                    h_rounded_normal(pnl_sigma * load(seed, t).sqrt() * 100.0),
                );
                let (p50, p99) = if lat_scale > 0.0 {
                    (
                        (p50 * lat_scale).round() / lat_scale,
                        (p99 * lat_scale).round() / lat_scale,
                    )
                } else {
                    (p50, p99)
                };
                let ts = ts_of(t);
                for (i, x) in [filled, rejected, trades, p50, p99, pnl]
                    .into_iter()
                    .enumerate()
                {
                    v[i].push((ts, x));
                }
            }
            let kinds = [
                Kind::Counter,
                Kind::Counter,
                Kind::Counter,
                Kind::Latency,
                Kind::Latency,
                Kind::Pnl,
            ];
            for (k, samples) in kinds.into_iter().zip(v) {
                out.push(GenSeries {
                    kind: k,
                    svc: s,
                    samples,
                });
            }
            if p < 20 {
                eid += 1;
                let mut r = Rng::new(mix(seed, eid));
                let mut counts = [0.0f64; 12];
                let base = (r.unif() * 1e6).round();
                let mut sum = 0.0;
                let mids: Vec<f64> = (0..12)
                    .map(|i| if i < 11 { hist_le[i] * 0.8 } else { 15000.0 })
                    .collect();
                let probs: Vec<f64> = (0..12)
                    .map(|i| {
                        [
                            0.05, 0.1, 0.15, 0.2, 0.15, 0.12, 0.08, 0.06, 0.04, 0.03, 0.015, 0.005,
                        ][i]
                    })
                    .collect();
                for i in 0..12 {
                    counts[i] = (base * probs[i]).round();
                    sum += counts[i] * mids[i];
                }
                let mut v: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 14];
                for t in 0..ticks {
                    let l = lam * load(seed, t);
                    let tail = if load(seed, t) > 2.0 { 1.8 } else { 1.0 };
                    let mut cum = 0.0;
                    // ENTROPY FLOOR, bucket i grows by the sum of buckets ≤ i's Poisson
                    // draws; the sum (rounded to 1/1000) by at least the widest of its
                    // uniform terms on that grid; the count like the last bucket.
                    let mut mean = 0.0;
                    let mut widest: f64 = 0.0;
                    for i in 0..12 {
                        let pw = if i >= 7 { probs[i] * tail } else { probs[i] };
                        mean += l * pw;
                        floor.add(Kind::HistBucket, h_poisson(mean));
                        let inc = r.poisson(l * pw);
                        widest = widest.max(0.2 * inc * mids[i] * 1000.0);
                        counts[i] += inc;
                        sum += inc * mids[i] * (0.9 + 0.2 * r.unif());
                        cum += counts[i];
                        v[i].push((ts_of(t), cum));
                    }
                    v[12].push((ts_of(t), (sum * 1000.0).round() / 1000.0));
                    v[13].push((ts_of(t), cum));
                    floor.add(
                        Kind::HistBucket,
                        if widest > 1.0 { widest.log2() } else { 0.0 },
                    );
                    floor.add(Kind::HistBucket, h_poisson(mean));
                }
                for samples in v {
                    out.push(GenSeries {
                        kind: Kind::HistBucket,
                        svc: s,
                        samples,
                    });
                }
            }
        }
        for _ in 0..5 {
            eid += 1;
            let mut r = Rng::new(mix(seed, eid));
            let (mut up, mut down_left, mut reconnects) = (1.0, 0u32, 0.0);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for t in 0..ticks {
                if down_left > 0 {
                    down_left -= 1;
                    if down_left == 0 {
                        up = 1.0;
                        reconnects += 1.0;
                    }
                } else if r.unif() < 0.0004 * load(seed, t) {
                    up = 0.0;
                    down_left = 1 + (r.unif() * 30.0) as u32;
                }
                a.push((ts_of(t), up));
                b.push((ts_of(t), reconnects));
                // ENTROPY FLOOR, venues: counted as free (they are 0.03 % of the bytes).
            }
            out.push(GenSeries {
                kind: Kind::Venue,
                svc: s,
                samples: a,
            });
            out.push(GenSeries {
                kind: Kind::Venue,
                svc: s,
                samples: b,
            });
        }
        for _ in 0..4 {
            eid += 1;
            let mut r = Rng::new(mix(seed, eid));
            let cpu_base = 0.15 + 0.5 * r.unif();
            let mut mem = ((2.0e9 + 6.0e9 * r.unif()) / 4096.0).round() * 4096.0;
            let mut gc = 0.0;
            let mut v: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 3];
            for t in 0..ticks {
                let ld = load(seed, t);
                let cpu = (cpu_base * (0.8 + 0.2 * ld) + 0.05 * r.normal()).clamp(0.0, 1.0);
                mem = (mem + (r.normal() * 2.0e6 / 4096.0).round() * 4096.0).max(1.0e9);
                gc += (0.0002 + 0.0004 * r.unif()) * ld;
                v[0].push((ts_of(t), (cpu * 1e4).round() / 1e4));
                v[1].push((ts_of(t), mem));
                v[2].push((ts_of(t), gc));
                // ENTROPY FLOOR, host: CPU a normal on the 1e-4 grid (the clamp ignored),
                // memory one in pages, the GC counter a uniform step of width
                // 0.0004 * load on the grid of its float's ulp.
                floor.add(Kind::Host, h_rounded_normal(0.05 * 1e4));
                floor.add(Kind::Host, h_rounded_normal(2.0e6 / 4096.0));
                let ulp = f64::EPSILON * 2f64.powi(gc.max(1e-300).log2().floor() as i32);
                floor.add(Kind::Host, (0.0004 * ld / ulp).max(1.0).log2().min(52.0));
            }
            for samples in v {
                out.push(GenSeries {
                    kind: Kind::Host,
                    svc: s,
                    samples,
                });
            }
        }
    }
    out
}
