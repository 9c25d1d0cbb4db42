//! Fuzz the text exposition parser in both formats (0.0.4 and OpenMetrics), with target
//! labels so the `exported_` renaming runs too. Must never panic.
#![no_main]

use gmc_wire::{exposition, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let targets = vec![
        ("instance".to_string(), "fuzz:1".to_string()),
        ("job".to_string(), "fuzz".to_string()),
    ];
    for format in [
        exposition::Format::Prometheus,
        exposition::Format::OpenMetrics,
    ] {
        for honor_labels in [false, true] {
            let mut opts = exposition::Options::new(format, 1_700_000_000_000_000_000);
            opts.target_labels = &targets;
            opts.honor_labels = honor_labels;
            let _ = exposition::decode(text, &opts, &Limits::default());
        }
    }
});
