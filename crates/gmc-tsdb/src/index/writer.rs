//! Writes the on-disk index of a block (format v1, `docs/format/index.md`): symbols,
//! series with chunk metas, postings, postings offset table, table of contents.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

use super::encoding::{put_uvarint, put_varint};
use super::{postings, ChunkMeta, Error, LabelPairs, Result, FORMAT_VERSION, MAGIC};

/// Appends `len u32 | payload | crc32 u32` and returns the section's offset.
fn put_section(out: &mut Vec<u8>, payload: &[u8], what: &'static str) -> Result<u64> {
    let off = out.len() as u64;
    let len = u32::try_from(payload.len()).map_err(|_| Error::TooLarge { what })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    Ok(off)
}

/// Encode an index over `series`, which must be in strictly increasing label order (the
/// position in the slice becomes the series id). Chunk metas are stored as given.
pub fn encode<L: LabelPairs>(series: &[(L, Vec<ChunkMeta>)]) -> Result<Vec<u8>> {
    for (i, w) in series.windows(2).enumerate() {
        if w[0].0.pairs().cmp(w[1].0.pairs()).is_ge() {
            return Err(Error::UnsortedSeries { position: i + 1 });
        }
    }
    if u32::try_from(series.len()).is_err() {
        return Err(Error::TooLarge {
            what: "more than 2^32 series",
        });
    }

    // Symbols: every distinct name and value, sorted, so symbol order is string order and
    // postings keyed by (name sym, value sym) come out sorted by (name, value).
    let syms: BTreeSet<&str> = series
        .iter()
        .flat_map(|(l, _)| l.pairs().flat_map(|(n, v)| [n, v]))
        .collect();
    let sym_ids: HashMap<&str, u32> = syms
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32))
        .collect();
    let sym = |s: &str| u64::from(sym_ids.get(s).copied().unwrap_or(0));

    let mut out = Vec::with_capacity(64 + series.len() * 64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[FORMAT_VERSION, 0, 0, 0]);

    let mut p = Vec::new();
    put_uvarint(&mut p, syms.len() as u64);
    for s in &syms {
        put_uvarint(&mut p, s.len() as u64);
        p.extend_from_slice(s.as_bytes());
    }
    let symbols_off = put_section(&mut out, &p, "symbols section over 4 GiB")?;

    p.clear();
    let mut offsets = Vec::with_capacity(series.len() * 4);
    let mut lists: BTreeMap<(u64, u64), Vec<u32>> = BTreeMap::new();
    for (id, (labels, chunks)) in series.iter().enumerate() {
        let at = u32::try_from(p.len()).map_err(|_| Error::TooLarge {
            what: "series section over 4 GiB",
        })?;
        offsets.extend_from_slice(&at.to_le_bytes());
        put_uvarint(&mut p, labels.label_count() as u64);
        for (name, value) in labels.pairs() {
            let key = (sym(name), sym(value));
            put_uvarint(&mut p, key.0);
            put_uvarint(&mut p, key.1);
            lists.entry(key).or_default().push(id as u32);
        }
        put_uvarint(&mut p, chunks.len() as u64);
        let mut prev_maxt: Option<i64> = None;
        for c in chunks {
            // mint relative to the previous chunk's maxt: small for time-ordered chunks.
            match prev_maxt {
                None => put_varint(&mut p, c.mint_nanos),
                Some(m) => put_varint(&mut p, c.mint_nanos.wrapping_sub(m)),
            }
            put_uvarint(&mut p, c.maxt_nanos.wrapping_sub(c.mint_nanos) as u64);
            put_uvarint(&mut p, c.chunk_ref);
            prev_maxt = Some(c.maxt_nanos);
        }
    }
    let series_off = put_section(&mut out, &p, "series section over 4 GiB")?;
    let series_offsets_off = put_section(&mut out, &offsets, "series offsets over 4 GiB")?;

    p.clear();
    let mut table = Vec::new();
    put_uvarint(&mut table, lists.len() as u64);
    for ((name, value), ids) in &lists {
        let start = p.len();
        postings::encode(ids, &mut p);
        put_uvarint(&mut table, *name);
        put_uvarint(&mut table, *value);
        put_uvarint(&mut table, start as u64);
        put_uvarint(&mut table, (p.len() - start) as u64);
    }
    let postings_off = put_section(&mut out, &p, "postings section over 4 GiB")?;
    let table_off = put_section(&mut out, &table, "postings table over 4 GiB")?;

    let toc_start = out.len();
    for off in [
        symbols_off,
        series_off,
        series_offsets_off,
        postings_off,
        table_off,
    ] {
        out.extend_from_slice(&off.to_le_bytes());
    }
    let crc = crc32fast::hash(&out[toc_start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Encode (see [`encode`]) and write to `path`, fsynced. Returns the file size in bytes.
pub fn write<L: LabelPairs>(path: &Path, series: &[(L, Vec<ChunkMeta>)]) -> Result<u64> {
    let bytes = encode(series)?;
    let io = |op: &'static str| {
        move |source| Error::Io {
            op,
            path: path.to_owned(),
            source,
        }
    };
    let mut f = std::fs::File::create(path).map_err(io("create index"))?;
    f.write_all(&bytes).map_err(io("write index"))?;
    f.sync_all().map_err(io("fsync index"))?;
    Ok(bytes.len() as u64)
}
