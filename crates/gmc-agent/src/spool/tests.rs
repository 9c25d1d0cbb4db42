//! Spool tests: order, acknowledgement across restarts, torn tails, CRC damage, the size
//! bound, and a property test against an in-memory model.

use super::*;
use proptest::prelude::*;

fn cfg(dir: &Path, max: u64, seg: u64) -> Config {
    Config {
        dir: dir.to_owned(),
        max_bytes: max,
        segment_bytes: seg,
        sync: SyncPolicy::Never,
    }
}

fn payload(i: u64) -> Vec<u8> {
    format!("payload-{i}-{}", "x".repeat((i % 7) as usize)).into_bytes()
}

fn drain(s: &mut Spool) -> Vec<Record> {
    let mut all = Vec::new();
    loop {
        let batch = s.peek(3, 1 << 20).unwrap();
        let Some(last) = batch.last() else { break };
        s.ack(last.seq).unwrap();
        all.extend(batch);
    }
    all
}

#[test]
fn delivers_in_order_across_segments() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Spool::open(cfg(d.path(), 1 << 20, 1024)).unwrap();
    for i in 0..200 {
        assert_eq!(s.append(&payload(i), i as u32).unwrap(), i);
    }
    let all = drain(&mut s);
    assert_eq!(all.len(), 200);
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.seq, i as u64);
        assert_eq!(r.payload, payload(i as u64));
        assert_eq!(r.samples, i as u32);
    }
    assert_eq!(s.stats().pending_records, 0);
}

#[test]
fn restart_keeps_unacknowledged_records_only() {
    let d = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(cfg(d.path(), 1 << 20, 512)).unwrap();
        for i in 0..50 {
            s.append(&payload(i), 1).unwrap();
        }
        let b = s.peek(20, 1 << 20).unwrap();
        s.ack(b.last().unwrap().seq).unwrap();
        // Dropped without any shutdown step, as by SIGKILL.
    }
    let mut s = Spool::open(cfg(d.path(), 1 << 20, 512)).unwrap();
    assert_eq!(s.stats().pending_records, 30);
    assert_eq!(s.next_seq(), 50);
    s.append(&payload(50), 1).unwrap();
    let seqs: Vec<u64> = drain(&mut s).iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (20..51).collect::<Vec<_>>());
}

#[test]
fn torn_tail_is_cut_on_open() {
    let d = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(cfg(d.path(), 1 << 20, 1 << 16)).unwrap();
        for i in 0..5 {
            s.append(&payload(i), 1).unwrap();
        }
    }
    let seg = d.path().join(segment_name(0));
    let full = std::fs::read(&seg).unwrap();
    // Half of a sixth record: a crash in the middle of an append.
    let mut torn = full.clone();
    let extra = encode_record(5, 1, &payload(5));
    torn.extend_from_slice(&extra[..extra.len() / 2]);
    std::fs::write(&seg, &torn).unwrap();
    let mut s = Spool::open(cfg(d.path(), 1 << 20, 1 << 16)).unwrap();
    assert_eq!(s.stats().truncated_bytes, (extra.len() / 2) as u64);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), full.len() as u64);
    assert_eq!(s.append(&payload(5), 1).unwrap(), 5);
    assert_eq!(drain(&mut s).len(), 6);
}

#[test]
fn crc_damage_in_the_tail_is_cut() {
    let d = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(cfg(d.path(), 1 << 20, 1 << 16)).unwrap();
        for i in 0..4 {
            s.append(&payload(i), 1).unwrap();
        }
    }
    let seg = d.path().join(segment_name(0));
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 2] ^= 0xff; // flip a payload bit of the last record
    std::fs::write(&seg, &bytes).unwrap();
    let mut s = Spool::open(cfg(d.path(), 1 << 20, 1 << 16)).unwrap();
    assert_eq!(s.next_seq(), 3);
    assert_eq!(drain(&mut s).len(), 3);
}

#[test]
fn crc_damage_in_an_old_segment_skips_its_rest_and_counts() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Spool::open(cfg(d.path(), 1 << 20, 1024)).unwrap();
    for i in 0..100 {
        s.append(&payload(i), 1).unwrap();
    }
    let first = d.path().join(segment_name(0));
    let mut bytes = std::fs::read(&first).unwrap();
    // Corrupt the second record's payload.
    let second = RECORD_HEADER_BYTES as usize + payload(0).len();
    bytes[second + RECORD_HEADER_BYTES as usize] ^= 0xff;
    std::fs::write(&first, &bytes).unwrap();
    let all = drain(&mut s);
    assert_eq!(all[0].seq, 0);
    assert!(all[1].seq > 1, "the damaged record was delivered");
    assert_eq!(s.stats().corrupt_records, all[1].seq - 1);
    assert_eq!(all.last().unwrap().seq, 99);
    // Everything after the skip is consecutive.
    for w in all[1..].windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
}

#[test]
fn size_bound_drops_oldest_segment_and_counts_samples() {
    let d = tempfile::tempdir().unwrap();
    let max = 8 * 1024;
    let mut s = Spool::open(cfg(d.path(), max, 2048)).unwrap();
    let body = vec![7u8; 200];
    for _ in 0..200 {
        s.append(&body, 10).unwrap();
        let on_disk: u64 = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".seg"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert!(on_disk <= max, "{on_disk} > {max}");
    }
    let st = s.stats();
    assert!(st.dropped_full_samples > 0);
    let kept = drain(&mut s);
    // Dropped plus kept is everything appended, and the kept ones are the newest.
    assert_eq!(st.dropped_full_samples + kept.len() as u64 * 10, 2000);
    assert_eq!(kept.last().unwrap().seq, 199);
}

#[test]
fn rejects_a_record_larger_than_the_bound() {
    let d = tempfile::tempdir().unwrap();
    let mut s = Spool::open(cfg(d.path(), 4096, 1024)).unwrap();
    assert!(matches!(
        s.append(&vec![0u8; 8192], 1),
        Err(Error::RecordTooLarge { .. })
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Deliver(u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u8>().prop_map(Op::Append),
        2 => (1u8..8).prop_map(Op::Deliver),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Without the size bound in play, the spool behaves as a FIFO queue that survives
    /// reopening: what is delivered is exactly what was appended, in order, once.
    #[test]
    fn behaves_as_a_durable_fifo(ops in proptest::collection::vec(op(), 1..80)) {
        let d = tempfile::tempdir().unwrap();
        let c = cfg(d.path(), 1 << 20, 700);
        let mut s = Spool::open(c.clone()).unwrap();
        let mut model = std::collections::VecDeque::new();
        let mut next = 0u64;
        for o in ops {
            match o {
                Op::Append(n) => {
                    let p = vec![n; usize::from(n) + 1];
                    prop_assert_eq!(s.append(&p, u32::from(n)).unwrap(), next);
                    model.push_back((next, p));
                    next += 1;
                }
                Op::Deliver(k) => {
                    let got = s.peek(usize::from(k), 1 << 20).unwrap();
                    for r in &got {
                        let (seq, p) = model.pop_front().unwrap();
                        prop_assert_eq!(r.seq, seq);
                        prop_assert_eq!(&r.payload, &p);
                    }
                    if let Some(r) = got.last() {
                        s.ack(r.seq).unwrap();
                    }
                    prop_assert!(got.len() == usize::from(k) || model.is_empty());
                }
                Op::Reopen => {
                    drop(s);
                    s = Spool::open(c.clone()).unwrap();
                }
            }
            prop_assert_eq!(s.stats().pending_records, model.len() as u64);
        }
    }
}
