//! Fuzz the block index decoder: arbitrary bytes must yield an index or a typed error,
//! and every query over a decoded index must return without panicking.
#![no_main]

use std::path::Path;

use gmc_model::{MatchOp, Matcher};
use gmc_tsdb::index::{LabelIndex, Reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = Reader::from_bytes(data.to_vec(), Path::new("fuzz")) else {
        return;
    };
    let names = r.label_names(None).unwrap_or_default();
    let mut pairs = Vec::new();
    for n in names.iter().take(4) {
        let values = r.label_values(n, None).unwrap_or_default();
        for v in values.iter().take(4) {
            let m = Matcher::equal(n.as_str(), v.as_str());
            let _ = r.select(std::slice::from_ref(&m));
            pairs.push(m);
        }
        if let Ok(m) = Matcher::new(MatchOp::NotRegex, n.as_str(), "x.*") {
            let _ = r.select(&[m]);
        }
    }
    // Several equality matchers: the smallest list is decoded, the others filter it on
    // their encoded postings.
    for w in pairs.windows(3) {
        let _ = r.select(w);
    }
    for id in 0..r.num_series().min(64) {
        let _ = r.series(id);
    }
});
