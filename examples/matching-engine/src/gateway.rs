//! Outbound side of the simulated gateway: FIX 4.4 execution reports (`35=8`) and
//! cancel rejects (`35=9`), encoded the way a FIX engine does it (tag=value, SOH,
//! body length, checksum), into a buffer that the gateway "sends" when it fills up.

use crate::book::Side;

/// FIX field separator.
const SOH: u8 = 0x01;
/// Bytes buffered before a simulated send (the buffer is then reused).
const FLUSH_BYTES: usize = 64 * 1024;

/// Kind of execution report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecType {
    /// Order accepted (`150=0`).
    New,
    /// Execution (`150=F`).
    Trade,
    /// Order cancelled (`150=4`).
    Canceled,
    /// Order rejected (`150=8`).
    Rejected,
}

/// One report to encode.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// Kind.
    pub exec: ExecType,
    /// Order id.
    pub order_id: u64,
    /// Symbol.
    pub symbol: &'a str,
    /// Side.
    pub side: Side,
    /// Order quantity.
    pub qty: u64,
    /// Last fill quantity (0 if none).
    pub last_qty: u64,
    /// Last fill price in ticks (0 if none).
    pub last_px: i64,
    /// Quantity still open.
    pub leaves: u64,
    /// Simulated time, ns since the session start.
    pub sim_ns: u64,
    /// Reject text (empty if none).
    pub text: &'a str,
}

/// Encodes reports for one session.
#[derive(Debug, Default)]
pub struct Encoder {
    out: Vec<u8>,
    body: Vec<u8>,
    seq: u64,
    exec_id: u64,
    /// Bytes "sent" so far.
    pub sent_bytes: u64,
}

fn field(b: &mut Vec<u8>, tag: &[u8], v: &[u8]) {
    b.extend_from_slice(tag);
    b.push(b'=');
    b.extend_from_slice(v);
    b.push(SOH);
}

fn num(b: &mut Vec<u8>, tag: &[u8], v: u64) {
    field(b, tag, itoa::Buffer::new().format(v).as_bytes());
}

/// `YYYYMMDD-HH:MM:SS.mmm` of a simulated time on a fixed trading day.
fn sending_time(b: &mut Vec<u8>, sim_ns: u64) {
    let ms = sim_ns / 1_000_000;
    let (h, m, s, milli) = (
        9 + (ms / 3_600_000) % 15,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000,
    );
    b.extend_from_slice(b"52=20261130-");
    for (v, sep) in [(h, b':'), (m, b':'), (s, b'.')] {
        b.push(b'0' + (v / 10) as u8);
        b.push(b'0' + (v % 10) as u8);
        b.push(sep);
    }
    b.push(b'0' + (milli / 100) as u8);
    b.push(b'0' + (milli / 10 % 10) as u8);
    b.push(b'0' + (milli % 10) as u8);
    b.push(SOH);
}

fn price(b: &mut Vec<u8>, tag: &[u8], ticks: i64) {
    // Ticks are cents: write "123.45".
    b.extend_from_slice(tag);
    b.push(b'=');
    if ticks < 0 {
        b.push(b'-');
    }
    let t = ticks.unsigned_abs();
    b.extend_from_slice(itoa::Buffer::new().format(t / 100).as_bytes());
    b.push(b'.');
    b.push(b'0' + (t % 100 / 10) as u8);
    b.push(b'0' + (t % 10) as u8);
    b.push(SOH);
}

impl Encoder {
    /// Encode one execution report (or a cancel reject for a rejected cancel).
    pub fn report(&mut self, r: &Report<'_>, cancel_reject: bool) {
        self.seq += 1;
        let b = &mut self.body;
        b.clear();
        field(b, b"35", if cancel_reject { b"9" } else { b"8" });
        field(b, b"49", b"GMCENGINE");
        field(b, b"56", b"GATEWAY");
        num(b, b"34", self.seq);
        sending_time(b, r.sim_ns);
        num(b, b"37", r.order_id);
        if !cancel_reject {
            self.exec_id += 1;
            num(b, b"17", self.exec_id);
            let (et, st): (&[u8], &[u8]) = match r.exec {
                ExecType::New => (b"0", b"0"),
                ExecType::Trade if r.leaves == 0 => (b"F", b"2"),
                ExecType::Trade => (b"F", b"1"),
                ExecType::Canceled => (b"4", b"4"),
                ExecType::Rejected => (b"8", b"8"),
            };
            field(b, b"150", et);
            field(b, b"39", st);
            field(b, b"55", r.symbol.as_bytes());
            field(b, b"54", if r.side == Side::Buy { b"1" } else { b"2" });
            num(b, b"38", r.qty);
            num(b, b"32", r.last_qty);
            price(b, b"31", r.last_px);
            num(b, b"151", r.leaves);
            num(b, b"14", r.qty.saturating_sub(r.leaves));
        }
        if !r.text.is_empty() {
            field(b, b"58", r.text.as_bytes());
        }
        let start = self.out.len();
        self.out.extend_from_slice(b"8=FIX.4.4\x019=");
        self.out
            .extend_from_slice(itoa::Buffer::new().format(self.body.len()).as_bytes());
        self.out.push(SOH);
        self.out.extend_from_slice(&self.body);
        let sum = self.out[start..]
            .iter()
            .fold(0u8, |s, &c| s.wrapping_add(c));
        self.out.extend_from_slice(b"10=");
        self.out.push(b'0' + sum / 100);
        self.out.push(b'0' + sum / 10 % 10);
        self.out.push(b'0' + sum % 10);
        self.out.push(SOH);
        if self.out.len() >= FLUSH_BYTES {
            self.flush();
        }
    }

    /// "Send" what is buffered.
    pub fn flush(&mut self) {
        self.sent_bytes += self.out.len() as u64;
        std::hint::black_box(&self.out);
        self.out.clear();
    }

    /// Reports encoded so far.
    pub fn reports(&self) -> u64 {
        self.seq
    }

    /// The bytes not yet sent (for tests).
    pub fn pending(&self) -> &[u8] {
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_have_length_and_checksum() {
        let mut e = Encoder::default();
        e.report(
            &Report {
                exec: ExecType::Trade,
                order_id: 7,
                symbol: "AAPL",
                side: Side::Buy,
                qty: 10,
                last_qty: 4,
                last_px: 12_345,
                leaves: 6,
                sim_ns: 3_723_004_000_000,
                text: "",
            },
            false,
        );
        let msg = e.pending().to_vec();
        let s = String::from_utf8(msg.clone()).unwrap().replace('\x01', "|");
        assert!(s.starts_with("8=FIX.4.4|9="), "{s}");
        assert!(
            s.contains("|35=8|") && s.contains("|31=123.45|") && s.contains("|39=1|"),
            "{s}"
        );
        assert!(s.contains("|52=20261130-10:02:03.004|"), "{s}");
        // Body length counts from after 9=…| to before 10=.
        let body_start = s.find("|35=").unwrap() + 1;
        let trailer = s.find("10=").unwrap();
        let declared: usize = s[12..].split('|').next().unwrap().parse().unwrap();
        assert_eq!(declared, trailer - body_start);
        let sum = msg[..trailer].iter().fold(0u8, |a, &c| a.wrapping_add(c));
        assert_eq!(&s[trailer + 3..trailer + 6], format!("{sum:03}"));
    }
}
