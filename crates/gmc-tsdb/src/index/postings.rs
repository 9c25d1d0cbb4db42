//! Postings lists (sorted, unique `u32` series ids): set operations used by every index,
//! and the on-disk list encoding, chosen per list as the smaller of delta-varint and bitmap.

use super::encoding::{put_uvarint, uvarint_len, Cursor};

/// List encoding byte: count, first id, then gaps minus one, all uvarints.
pub(crate) const ENC_DELTA: u8 = 0;
/// List encoding byte: count, first id, bitmap byte length, then a bitmap over
/// `[first, first + 8 * len)`, bit `i` (LSB first) meaning id `first + i`.
pub(crate) const ENC_BITMAP: u8 = 1;

/// Intersection of two sorted lists.
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(small.len());
    if small.len().saturating_mul(16) < large.len() {
        // Very different sizes: galloping by binary search beats a linear merge.
        let mut rest = large;
        for &x in small {
            match rest.binary_search(&x) {
                Ok(i) => {
                    out.push(x);
                    rest = &rest[i + 1..];
                }
                Err(i) => rest = &rest[i..],
            }
            if rest.is_empty() {
                break;
            }
        }
        return out;
    }
    let (mut i, mut j) = (0, 0);
    while i < small.len() && j < large.len() {
        match small[i].cmp(&large[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(small[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Union of two sorted lists.
pub fn union2(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Union of any number of sorted lists: pairwise merges in a balanced tree, so the cost
/// is O(total · log k) rather than O(total · k).
pub fn union<L: AsRef<[u32]>>(lists: &[L]) -> Vec<u32> {
    match lists {
        [] => Vec::new(),
        [one] => one.as_ref().to_vec(),
        _ => {
            let mut level: Vec<Vec<u32>> = lists
                .chunks(2)
                .map(|p| match p {
                    [a, b] => union2(a.as_ref(), b.as_ref()),
                    [a] => a.as_ref().to_vec(),
                    _ => Vec::new(),
                })
                .collect();
            while level.len() > 1 {
                level = level
                    .chunks(2)
                    .map(|p| match p {
                        [a, b] => union2(a, b),
                        [a] => a.clone(),
                        _ => Vec::new(),
                    })
                    .collect();
            }
            level.pop().unwrap_or_default()
        }
    }
}

/// Ids of `a` that are not in `b`.
pub fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    if b.is_empty() {
        return a.to_vec();
    }
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &x in a {
        while j < b.len() && b[j] < x {
            j += 1;
        }
        if j < b.len() && b[j] == x {
            continue;
        }
        out.push(x);
    }
    out
}

/// Whether two sorted lists share an id (no allocation).
pub fn intersects(a: &[u32], b: &[u32]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}

/// Bytes of `ids` (sorted, unique, non-empty) under the delta-varint encoding.
fn delta_len(ids: &[u32]) -> usize {
    let mut n = uvarint_len(ids.len() as u64) + uvarint_len(u64::from(ids[0]));
    for w in ids.windows(2) {
        n += uvarint_len(u64::from(w[1] - w[0] - 1));
    }
    n
}

/// Append the encoding of sorted, unique `ids` to `out`, picking the smaller encoding.
/// Returns the encoding byte used.
pub(crate) fn encode(ids: &[u32], out: &mut Vec<u8>) -> u8 {
    let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
        out.push(ENC_DELTA);
        put_uvarint(out, 0);
        return ENC_DELTA;
    };
    let span = u64::from(last - first) + 1;
    let bitmap_bytes = span.div_ceil(8) as usize;
    let bitmap_len = uvarint_len(ids.len() as u64)
        + uvarint_len(u64::from(first))
        + uvarint_len(bitmap_bytes as u64)
        + bitmap_bytes;
    if bitmap_len < delta_len(ids) {
        out.push(ENC_BITMAP);
        put_uvarint(out, ids.len() as u64);
        put_uvarint(out, u64::from(first));
        put_uvarint(out, bitmap_bytes as u64);
        let start = out.len();
        out.resize(start + bitmap_bytes, 0);
        for &id in ids {
            let bit = (id - first) as usize;
            out[start + bit / 8] |= 1 << (bit % 8);
        }
        return ENC_BITMAP;
    }
    out.push(ENC_DELTA);
    put_uvarint(out, ids.len() as u64);
    put_uvarint(out, u64::from(first));
    for w in ids.windows(2) {
        put_uvarint(out, u64::from(w[1] - w[0] - 1));
    }
    ENC_DELTA
}

/// Decode one list; every id must be `< limit`. Fails (never panics) on hostile input.
pub(crate) fn decode(buf: &[u8], limit: u32) -> Result<Vec<u32>, &'static str> {
    let mut c = Cursor::new(buf);
    let (enc, count) = header(&mut c, limit)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    let first = first_id(&mut c, limit)?;
    let mut out = Vec::with_capacity(count as usize);
    out.push(first);
    match enc {
        ENC_DELTA => {
            let mut prev = u64::from(first);
            for _ in 1..count {
                let id = prev + c.uvarint()? + 1;
                if id >= u64::from(limit) {
                    return Err("series id out of range");
                }
                out.push(id as u32);
                prev = id;
            }
        }
        ENC_BITMAP => {
            let n = c.len_prefix()?;
            let bits = c.bytes(n)?;
            if bits.first().is_none_or(|b| b & 1 == 0) {
                return Err("bitmap does not start with its first id");
            }
            for (byte_i, &b) in bits.iter().enumerate() {
                let mut b = b;
                while b != 0 {
                    let bit = b.trailing_zeros() as u64;
                    b &= b - 1;
                    let id = u64::from(first) + byte_i as u64 * 8 + bit;
                    if id == u64::from(first) {
                        continue;
                    }
                    if id >= u64::from(limit) {
                        return Err("series id out of range");
                    }
                    out.push(id as u32);
                }
            }
            if out.len() as u64 != count {
                return Err("bitmap population differs from count");
            }
        }
        _ => return Err("unknown postings encoding"),
    }
    if !c.is_empty() {
        return Err("trailing bytes after postings list");
    }
    Ok(out)
}

/// The number of ids in an encoded list, read from its header alone.
pub(crate) fn count(buf: &[u8], limit: u32) -> Result<u64, &'static str> {
    header(&mut Cursor::new(buf), limit).map(|(_, n)| n)
}

/// A list's encoding byte and id count, checked against `limit`.
fn header(c: &mut Cursor<'_>, limit: u32) -> Result<(u8, u64), &'static str> {
    let enc = c.u8()?;
    let count = c.uvarint()?;
    if count > u64::from(limit) {
        return Err("postings count exceeds series count");
    }
    Ok((enc, count))
}

/// A non-empty list's first id, checked against `limit`.
fn first_id(c: &mut Cursor<'_>, limit: u32) -> Result<u32, &'static str> {
    let first = c.uvarint32()?;
    if first >= limit {
        return Err("series id out of range");
    }
    Ok(first)
}

/// The ids of sorted `candidates` that the encoded list holds, without decoding the list
/// into memory: a bitmap is probed once per candidate, a delta list is merged with the
/// candidates as it is read and left as soon as they run out. Equals
/// `intersect(candidates, &decode(buf, limit)?)` on a valid list; the part of a corrupt
/// list that is read fails as `decode` would.
pub(crate) fn filter(buf: &[u8], limit: u32, candidates: &[u32]) -> Result<Vec<u32>, &'static str> {
    let mut c = Cursor::new(buf);
    let (enc, count) = header(&mut c, limit)?;
    if count == 0 || candidates.is_empty() {
        return Ok(Vec::new());
    }
    let first = first_id(&mut c, limit)?;
    let mut out = Vec::with_capacity(candidates.len().min(count as usize));
    match enc {
        ENC_DELTA => {
            let mut id = u64::from(first);
            let mut left = count - 1;
            let mut cands = candidates.iter().map(|&x| u64::from(x)).peekable();
            while let Some(&want) = cands.peek() {
                if want < id {
                    cands.next();
                    continue;
                }
                if want == id {
                    out.push(id as u32);
                    cands.next();
                }
                if left == 0 {
                    break;
                }
                id += c.uvarint()? + 1;
                left -= 1;
                if id >= u64::from(limit) {
                    return Err("series id out of range");
                }
            }
        }
        ENC_BITMAP => {
            let n = c.len_prefix()?;
            let bits = c.bytes(n)?;
            if bits.first().is_none_or(|b| b & 1 == 0) {
                return Err("bitmap does not start with its first id");
            }
            for &x in candidates {
                let Some(off) = x.checked_sub(first) else {
                    continue;
                };
                let off = off as usize;
                match bits.get(off / 8) {
                    Some(b) if b & (1 << (off % 8)) != 0 => out.push(x),
                    Some(_) => {}
                    None => break,
                }
            }
        }
        _ => return Err("unknown postings encoding"),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_lists_pick_bitmap_sparse_lists_pick_delta() {
        let dense: Vec<u32> = (1000..3000).collect();
        let mut out = Vec::new();
        assert_eq!(encode(&dense, &mut out), ENC_BITMAP);
        assert_eq!(decode(&out, 5000), Ok(dense));
        let sparse: Vec<u32> = (0..100).map(|i| i * 1000).collect();
        out.clear();
        assert_eq!(encode(&sparse, &mut out), ENC_DELTA);
        assert_eq!(decode(&out, 100_000), Ok(sparse.clone()));
        assert!(decode(&out, 10).is_err());
    }

    #[test]
    fn set_operations_on_small_lists() {
        assert_eq!(intersect(&[1, 3, 5], &[3, 4, 5]), vec![3, 5]);
        assert_eq!(union(&[vec![1, 5], vec![2], vec![5, 9]]), vec![1, 2, 5, 9]);
        assert_eq!(subtract(&[1, 2, 3, 4], &[2, 4, 8]), vec![1, 3]);
        assert!(intersects(&[1, 7], &[7]));
        assert!(!intersects(&[1, 7], &[2]));
    }

    proptest::proptest! {
        #[test]
        fn filter_equals_intersect_of_the_decoded_list(
            ids in proptest::collection::btree_set(0u32..3000, 0..400),
            cands in proptest::collection::btree_set(0u32..3200, 0..400),
            dense in proptest::bool::ANY,
        ) {
            // `dense` adds a run so that both encodings are exercised.
            let mut ids: Vec<u32> = ids.into_iter().collect();
            if dense {
                ids.extend(3000..3100);
            }
            let cands: Vec<u32> = cands.into_iter().collect();
            let mut buf = Vec::new();
            encode(&ids, &mut buf);
            proptest::prop_assert_eq!(count(&buf, 4000), Ok(ids.len() as u64));
            proptest::prop_assert_eq!(filter(&buf, 4000, &cands), Ok(intersect(&cands, &ids)));
        }

        #[test]
        fn filter_never_panics_on_garbage(
            buf in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            cands in proptest::collection::btree_set(0u32..5000, 0..50),
        ) {
            let cands: Vec<u32> = cands.into_iter().collect();
            let _ = filter(&buf, 4000, &cands);
            let _ = count(&buf, 4000);
        }
    }
}
