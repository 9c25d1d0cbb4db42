//! Property tests of the index layer: postings set operations against naive sets, and
//! every matcher query of `MemPostings` and of the on-disk index against a naive scan.

// Test helpers outside `#[test]` fns may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use gmc_model::{Labels, MatchOp, Matcher};
use gmc_tsdb::index::{self, postings, ChunkMeta, LabelIndex, MemPostings, Reader};
use proptest::prelude::*;

const NAMES: [&str; 5] = ["__name__", "a", "b", "c", "missing"];
const VALUES: [&str; 5] = ["x", "y", "z", "xy", ""];
const PATTERNS: [&str; 9] = ["x|y", "x.*", ".*", ".+", "", "x|", "y?z", "z|xy|q", "[xy]"];

fn sorted_set() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::btree_set(0u32..2000, 0..200).prop_map(|s| s.into_iter().collect())
}

fn label_sets() -> impl Strategy<Value = Vec<Labels>> {
    let pair = (0usize..4, 0usize..5);
    prop::collection::vec(prop::collection::vec(pair, 0..5), 0..60).prop_map(|sets| {
        let mut v: Vec<Labels> = sets
            .into_iter()
            .map(|pairs| Labels::from_pairs(pairs.into_iter().map(|(n, v)| (NAMES[n], VALUES[v]))))
            .collect();
        v.sort();
        v.dedup();
        v
    })
}

fn matcher() -> impl Strategy<Value = Matcher> {
    (0usize..5, 0usize..4, 0usize..9).prop_map(|(n, op, v)| {
        let name = NAMES[n];
        match op {
            0 => Matcher::new(MatchOp::Equal, name, VALUES[v % 5]),
            1 => Matcher::new(MatchOp::NotEqual, name, VALUES[v % 5]),
            2 => Matcher::new(MatchOp::Regex, name, PATTERNS[v]),
            _ => Matcher::new(MatchOp::NotRegex, name, PATTERNS[v]),
        }
        .unwrap_or_else(|e| panic!("test pattern must compile: {e}"))
    })
}

fn naive(series: &[Labels], ms: &[Matcher]) -> Vec<u32> {
    if ms.is_empty() {
        return Vec::new();
    }
    (0..series.len() as u32)
        .filter(|&i| {
            ms.iter()
                .all(|m| m.matches(series[i as usize].get(&m.name).unwrap_or("")))
        })
        .collect()
}

fn disk_index(series: &[Labels]) -> Reader {
    let input: Vec<(Labels, Vec<ChunkMeta>)> = series
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let i = i as i64;
            let metas = (0..(i % 3))
                .map(|k| ChunkMeta {
                    mint_nanos: i * 1000 + k * 100,
                    maxt_nanos: i * 1000 + k * 100 + 50,
                    chunk_ref: (1 << 32) | (8 + k as u64 * 64),
                })
                .collect();
            (l.clone(), metas)
        })
        .collect();
    let bytes = index::encode(&input).unwrap();
    let r = Reader::from_bytes(bytes, Path::new("mem")).unwrap();
    for (i, (l, metas)) in input.iter().enumerate() {
        let (rl, rm) = r.series(i as u32).unwrap();
        assert_eq!(&rl, l);
        assert_eq!(&rm, metas);
    }
    r
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn postings_operations_match_naive_sets(a in sorted_set(), b in sorted_set(), c in sorted_set()) {
        let (sa, sb): (BTreeSet<u32>, BTreeSet<u32>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        prop_assert_eq!(postings::intersect(&a, &b), sa.intersection(&sb).copied().collect::<Vec<_>>());
        prop_assert_eq!(postings::subtract(&a, &b), sa.difference(&sb).copied().collect::<Vec<_>>());
        let mut u: BTreeSet<u32> = sa.union(&sb).copied().collect();
        u.extend(c.iter().copied());
        prop_assert_eq!(postings::union(&[&a[..], &b[..], &c[..]]), u.into_iter().collect::<Vec<_>>());
        prop_assert_eq!(postings::intersects(&a, &b), !sa.is_disjoint(&sb));
    }

    #[test]
    fn mem_and_disk_indexes_match_a_naive_scan(
        series in label_sets(),
        queries in prop::collection::vec(prop::collection::vec(matcher(), 0..4), 1..8),
    ) {
        let mem = MemPostings::new();
        for (i, l) in series.iter().enumerate() {
            mem.add(i as u32, l);
        }
        let disk = disk_index(&series);
        for ms in &queries {
            let want = naive(&series, ms);
            prop_assert_eq!(&mem.select(ms).unwrap(), &want, "mem {:?}", ms);
            prop_assert_eq!(&disk.select(ms).unwrap(), &want, "disk {:?}", ms);
            let names_want: BTreeSet<String> = want
                .iter()
                .flat_map(|&i| series[i as usize].iter().map(|(n, _)| n.to_owned()))
                .collect();
            let names_want: Vec<String> = names_want.into_iter().collect();
            prop_assert_eq!(&mem.label_names(Some(&want)).unwrap(), &names_want);
            prop_assert_eq!(&disk.label_names(Some(&want)).unwrap(), &names_want);
            let vals_want: BTreeSet<String> = want
                .iter()
                .filter_map(|&i| series[i as usize].get("a").map(str::to_owned))
                .collect();
            let vals_want: Vec<String> = vals_want.into_iter().collect();
            prop_assert_eq!(&mem.label_values("a", Some(&want)).unwrap(), &vals_want);
            prop_assert_eq!(&disk.label_values("a", Some(&want)).unwrap(), &vals_want);
        }
        prop_assert_eq!(mem.label_names(None).unwrap(), disk.label_names(None).unwrap());
    }

    #[test]
    fn index_decoder_never_panics_on_mutated_bytes(
        series in label_sets(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let input: Vec<(Labels, Vec<ChunkMeta>)> =
            series.iter().map(|l| (l.clone(), Vec::new())).collect();
        let mut bytes = index::encode(&input).unwrap();
        for (at, x) in &flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        let m = Matcher::new(MatchOp::Regex, "a", "x.*").unwrap();
        if let Ok(r) = Reader::from_bytes(bytes.clone(), Path::new("mutated")) {
            let _ = r.select(std::slice::from_ref(&m));
            for i in 0..r.num_series() {
                let _ = r.series(i);
            }
        }
        bytes.truncate(cut.index(bytes.len()));
        prop_assert!(Reader::from_bytes(bytes, Path::new("cut")).is_err());
    }
}

#[test]
fn writer_rejects_unsorted_series() {
    let a = Labels::from_pairs([("__name__", "b")]);
    let b = Labels::from_pairs([("__name__", "a")]);
    let err = index::encode(&[(a, vec![]), (b, vec![])]).unwrap_err();
    assert!(matches!(err, index::Error::UnsortedSeries { position: 1 }));
}
