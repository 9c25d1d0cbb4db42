//! Reads a block's on-disk index. The file is read into memory once and every section is
//! CRC-checked and bounds-checked at open; entries are decoded on demand, again checked,
//! so a damaged or hostile file yields [`Error`]s, never a panic or an out-of-bounds read.
//!
//! Why not mmap: checking every section's CRC at open touches every page anyway, so mmap
//! would save no I/O, and reading keeps the crate free of `unsafe` (a truncated file under
//! a live mapping is SIGBUS, which no error type can report).

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};

use gmc_model::{Label, Labels, Matcher};

use super::encoding::Cursor;
use super::{postings, ChunkMeta, Error, LabelIndex, Result, Source, FORMAT_VERSION, MAGIC};

const HEADER_LEN: usize = 8;
const TOC_LEN: usize = 5 * 8 + 4;
const SECTIONS: [&str; 5] = [
    "symbols",
    "series",
    "series_offsets",
    "postings",
    "postings_table",
];

/// One postings offset table entry.
#[derive(Debug, Clone, Copy)]
struct Entry {
    name: u32,
    value: u32,
    range: (u32, u32),
}

/// An opened, validated block index.
#[derive(Debug)]
pub struct Reader {
    path: PathBuf,
    data: Vec<u8>,
    symbols: Vec<Range<usize>>,
    series: Range<usize>,
    series_offsets: Vec<u32>,
    postings: Range<usize>,
    table: Vec<Entry>,
    /// Per name symbol: its entries in `table`.
    names: Vec<(u32, Range<usize>)>,
}

impl Reader {
    /// Read and validate the index file at `path`.
    pub fn open(path: &Path) -> Result<Reader> {
        let data = std::fs::read(path).map_err(|source| Error::Io {
            op: "read index",
            path: path.to_owned(),
            source,
        })?;
        Reader::from_bytes(data, path)
    }

    /// Validate an index held in memory; `path` only names it in errors.
    pub fn from_bytes(data: Vec<u8>, path: &Path) -> Result<Reader> {
        let path = path.to_owned();
        let corrupt = |section: &'static str, offset: u64, reason: &'static str| Error::Corrupt {
            path: path.clone(),
            section,
            offset,
            reason,
        };
        if data.len() < HEADER_LEN + TOC_LEN {
            return Err(corrupt("header", 0, "file shorter than header and TOC"));
        }
        if data[..4] != MAGIC {
            return Err(corrupt("header", 0, "bad magic"));
        }
        if data[5..8] != [0, 0, 0] {
            return Err(corrupt("header", 5, "reserved header bytes are not zero"));
        }
        if data[4] != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path,
                version: data[4],
            });
        }
        let toc_at = data.len() - TOC_LEN;
        let toc = &data[toc_at..];
        let crc = u32::from_le_bytes([toc[40], toc[41], toc[42], toc[43]]);
        if crc32fast::hash(&toc[..40]) != crc {
            return Err(Error::Checksum {
                path,
                section: "toc",
                offset: toc_at as u64,
            });
        }
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(5);
        let mut c = Cursor::new(&toc[..40]);
        let mut end_prev = HEADER_LEN;
        for section in SECTIONS {
            let off = c.u64_le().map_err(|r| corrupt("toc", toc_at as u64, r))?;
            let off = usize::try_from(off)
                .ok()
                .filter(|o| *o == end_prev && o.saturating_add(8) <= toc_at)
                .ok_or_else(|| {
                    corrupt(
                        "toc",
                        toc_at as u64,
                        "section offset not contiguous or out of bounds",
                    )
                })?;
            let len = u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]])
                as usize;
            let end = (off + 4)
                .checked_add(len)
                .filter(|e| e + 4 <= toc_at)
                .ok_or_else(|| corrupt(section, off as u64, "section overruns the file"))?;
            let payload = &data[off + 4..end];
            let crc = u32::from_le_bytes([data[end], data[end + 1], data[end + 2], data[end + 3]]);
            if crc32fast::hash(payload) != crc {
                return Err(Error::Checksum {
                    path,
                    section,
                    offset: off as u64,
                });
            }
            ranges.push(off + 4..end);
            end_prev = end + 4;
        }
        if end_prev != toc_at {
            return Err(corrupt(
                "toc",
                toc_at as u64,
                "bytes between the last section and the TOC",
            ));
        }
        let [sym_r, series_r, offs_r, post_r, table_r]: [Range<usize>; 5] = ranges
            .try_into()
            .map_err(|_| corrupt("toc", toc_at as u64, "missing section"))?;

        // Symbols: sorted, unique, valid UTF-8.
        let mut symbols = Vec::new();
        let mut c = Cursor::new(&data[sym_r.clone()]);
        let at = |c: &Cursor<'_>, r: &Range<usize>| (r.start + c.pos()) as u64;
        let count = c
            .len_prefix()
            .map_err(|r| corrupt("symbols", at(&c, &sym_r), r))?;
        for _ in 0..count {
            let len = c
                .len_prefix()
                .map_err(|r| corrupt("symbols", at(&c, &sym_r), r))?;
            let start = sym_r.start + c.pos();
            let bytes = c
                .bytes(len)
                .map_err(|r| corrupt("symbols", at(&c, &sym_r), r))?;
            if std::str::from_utf8(bytes).is_err() {
                return Err(corrupt("symbols", start as u64, "symbol is not UTF-8"));
            }
            if let Some(prev) = symbols.last() {
                if data[Range::clone(prev)] >= *bytes {
                    return Err(corrupt("symbols", start as u64, "symbols not sorted"));
                }
            }
            symbols.push(start..start + len);
        }

        let offs = &data[offs_r.clone()];
        if !offs.len().is_multiple_of(4) {
            return Err(corrupt(
                "series_offsets",
                offs_r.start as u64,
                "length not a multiple of 4",
            ));
        }
        let series_offsets: Vec<u32> = offs
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let series_len = series_r.len() as u64;
        if series_offsets.windows(2).any(|w| w[0] >= w[1])
            || series_offsets.iter().any(|&o| u64::from(o) >= series_len)
        {
            return Err(corrupt(
                "series_offsets",
                offs_r.start as u64,
                "series offsets not increasing or out of range",
            ));
        }

        let mut table = Vec::new();
        let mut c = Cursor::new(&data[table_r.clone()]);
        let count = c
            .len_prefix()
            .map_err(|r| corrupt("postings_table", at(&c, &table_r), r))?;
        let post_len = post_r.len() as u64;
        for _ in 0..count {
            let e_at = at(&c, &table_r);
            let mut field = || {
                c.uvarint32()
                    .map_err(|r| corrupt("postings_table", e_at, r))
            };
            let (name, value, off, len) = (field()?, field()?, field()?, field()?);
            if name as usize >= symbols.len() || value as usize >= symbols.len() {
                return Err(corrupt("postings_table", e_at, "symbol ref out of range"));
            }
            if u64::from(off) + u64::from(len) > post_len {
                return Err(corrupt(
                    "postings_table",
                    e_at,
                    "postings range out of bounds",
                ));
            }
            if let Some(p) = table.last() {
                let p: &Entry = p;
                if (p.name, p.value) >= (name, value) {
                    return Err(corrupt("postings_table", e_at, "entries not sorted"));
                }
            }
            table.push(Entry {
                name,
                value,
                range: (off, off + len),
            });
        }
        let mut names: Vec<(u32, Range<usize>)> = Vec::new();
        for (i, e) in table.iter().enumerate() {
            match names.last_mut() {
                Some((n, r)) if *n == e.name => r.end = i + 1,
                _ => names.push((e.name, i..i + 1)),
            }
        }
        Ok(Reader {
            path,
            data,
            symbols,
            series: series_r,
            series_offsets,
            postings: post_r,
            table,
            names,
        })
    }

    /// Number of series (ids are `0..num_series()`, in label order).
    pub fn num_series(&self) -> u32 {
        self.series_offsets.len() as u32
    }

    /// Size of the index file in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.data.len() as u64
    }

    fn symbol(&self, id: u32) -> Option<&str> {
        let r = self.symbols.get(id as usize)?;
        std::str::from_utf8(self.data.get(r.clone())?).ok()
    }

    fn symbol_id(&self, s: &str) -> Option<u32> {
        self.symbols
            .binary_search_by(|r| self.data[r.clone()].cmp(s.as_bytes()))
            .ok()
            .map(|i| i as u32)
    }

    fn corrupt(&self, section: &'static str, offset: u64, reason: &'static str) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            section,
            offset,
            reason,
        }
    }

    /// Labels and chunk metas of series `id`.
    pub fn series(&self, id: u32) -> Result<(Labels, Vec<ChunkMeta>)> {
        let start = *self
            .series_offsets
            .get(id as usize)
            .ok_or_else(|| self.corrupt("series", self.series.start as u64, "no such series id"))?;
        let base = self.series.start + start as usize;
        let buf = &self.data[base..self.series.end];
        let mut c = Cursor::new(buf);
        let err = |c: &Cursor<'_>, r| self.corrupt("series", (base + c.pos()) as u64, r);
        let nlabels = c.len_prefix().map_err(|r| err(&c, r))?;
        let mut labels: Vec<Label> = Vec::with_capacity(nlabels);
        for _ in 0..nlabels {
            let n = c.uvarint32().map_err(|r| err(&c, r))?;
            let v = c.uvarint32().map_err(|r| err(&c, r))?;
            let (Some(name), Some(value)) = (self.symbol(n), self.symbol(v)) else {
                return Err(err(&c, "symbol ref out of range"));
            };
            if labels.last().is_some_and(|l| l.name.as_str() >= name) || value.is_empty() {
                return Err(err(&c, "labels not sorted or empty value"));
            }
            labels.push(Label {
                name: name.to_owned(),
                value: value.to_owned(),
            });
        }
        let nchunks = c.len_prefix().map_err(|r| err(&c, r))?;
        let mut chunks = Vec::with_capacity(nchunks);
        let mut prev_maxt: Option<i64> = None;
        for _ in 0..nchunks {
            let d = c.varint().map_err(|r| err(&c, r))?;
            let mint = match prev_maxt {
                None => d,
                Some(m) => m
                    .checked_add(d)
                    .ok_or_else(|| err(&c, "chunk mint overflows"))?,
            };
            let span = c.uvarint().map_err(|r| err(&c, r))?;
            let maxt = i64::try_from(span)
                .ok()
                .and_then(|s| mint.checked_add(s))
                .ok_or_else(|| err(&c, "chunk maxt overflows"))?;
            let chunk_ref = c.uvarint().map_err(|r| err(&c, r))?;
            chunks.push(ChunkMeta {
                mint_nanos: mint,
                maxt_nanos: maxt,
                chunk_ref,
            });
            prev_maxt = Some(maxt);
        }
        Ok((Labels::from_sorted(labels), chunks))
    }

    /// Labels and chunk metas of each id in `ids`.
    pub fn series_many(&self, ids: &[u32]) -> Result<Vec<(Labels, Vec<ChunkMeta>)>> {
        ids.iter().map(|&id| self.series(id)).collect()
    }

    fn entries(&self, name: &str) -> &[Entry] {
        let Some(sym) = self.symbol_id(name) else {
            return &[];
        };
        match self.names.binary_search_by_key(&sym, |(n, _)| *n) {
            Ok(i) => &self.table[self.names[i].1.clone()],
            Err(_) => &[],
        }
    }

    fn decode_postings(&self, e: &Entry) -> Result<Vec<u32>> {
        let (start, bytes) = self.postings_bytes(e);
        postings::decode(bytes, self.num_series())
            .map_err(|r| self.corrupt("postings", start as u64, r))
    }

    /// Where an entry's encoded postings start in the file, and their bytes.
    fn postings_bytes(&self, e: &Entry) -> (usize, &[u8]) {
        let start = self.postings.start + e.range.0 as usize;
        let end = self.postings.start + e.range.1 as usize;
        (start, &self.data[start..end])
    }

    /// The postings entry of one label pair, if the block has it.
    fn postings_entry(&self, name: &str, value: &str) -> Option<&Entry> {
        let vsym = self.symbol_id(value)?;
        let entries = self.entries(name);
        let i = entries.binary_search_by_key(&vsym, |e| e.value).ok()?;
        entries.get(i)
    }
}

impl Source for Reader {
    fn all_refs(&self) -> Result<Cow<'_, [u32]>> {
        Ok(Cow::Owned((0..self.num_series()).collect()))
    }

    fn names(&self) -> Vec<&str> {
        self.names
            .iter()
            .filter_map(|(n, _)| self.symbol(*n))
            .collect()
    }

    fn values(&self, name: &str) -> Vec<&str> {
        self.entries(name)
            .iter()
            .filter_map(|e| self.symbol(e.value))
            .collect()
    }

    fn postings(&self, name: &str, value: &str) -> Result<Cow<'_, [u32]>> {
        match self.postings_entry(name, value) {
            Some(e) => Ok(Cow::Owned(self.decode_postings(e)?)),
            None => Ok(Cow::Borrowed(&[])),
        }
    }

    fn postings_len(&self, name: &str, value: &str) -> Result<usize> {
        let Some(e) = self.postings_entry(name, value) else {
            return Ok(0);
        };
        let (start, bytes) = self.postings_bytes(e);
        postings::count(bytes, self.num_series())
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .map_err(|r| self.corrupt("postings", start as u64, r))
    }

    fn postings_filter(&self, name: &str, value: &str, candidates: &[u32]) -> Result<Vec<u32>> {
        let Some(e) = self.postings_entry(name, value) else {
            return Ok(Vec::new());
        };
        let (start, bytes) = self.postings_bytes(e);
        postings::filter(bytes, self.num_series(), candidates)
            .map_err(|r| self.corrupt("postings", start as u64, r))
    }
}

impl LabelIndex for Reader {
    fn select(&self, matchers: &[Matcher]) -> Result<Vec<u32>> {
        super::select(self, matchers)
    }

    fn label_names(&self, refs: Option<&[u32]>) -> Result<Vec<String>> {
        super::label_names(self, refs)
    }

    fn label_values(&self, name: &str, refs: Option<&[u32]>) -> Result<Vec<String>> {
        super::label_values(self, name, refs)
    }
}
