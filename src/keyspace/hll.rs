//! HyperLogLog sketches in Redis 7.0's byte format, so that a sketch GET from ferrodis can be
//! SET into redis-server and the other way round, and PFCOUNT gives the same number.
//!
//! Layout: a 16-byte header (`HYLL`, one encoding byte, three reserved bytes, an 8-byte
//! little-endian cached cardinality whose top bit marks the cache stale), then the registers.
//! Dense: 16384 six-bit registers packed LSB first (12288 bytes). Sparse: a run-length code of
//! one-byte ZERO runs (`00llllll`, 1..=64), two-byte XZERO runs (`01llllll llllllll`,
//! 1..=16384) and one-byte VAL runs (`1vvvvvll`, value 1..=32, 1..=4 registers).
//!
//! Elements hash with MurmurHash64A (seed 0xadc83b19); the low 14 bits pick a register, the
//! position of the first set bit in the rest is the value. The estimate is Ertl's improved
//! raw estimator (the tau/sigma series), which Redis uses since 5.0.
//!
//! Every reader here checks its bounds: a corrupted sparse sketch is reported as
//! [`Corrupt`], never a panic. Where Redis reads the byte just past the end of the string
//! (its NUL terminator) this reads a zero, so corrupted sketches decode the same way.

/// Header size in bytes.
pub const HDR: usize = 16;
/// Number of registers (2^14).
pub const REGISTERS: usize = 1 << P;
/// Size of a dense sketch, header included.
pub const DENSE_SIZE: usize = HDR + (REGISTERS * BITS).div_ceil(8);
pub const ENC_DENSE: u8 = 0;
pub const ENC_SPARSE: u8 = 1;

const P: usize = 14;
const Q: usize = 64 - P;
const BITS: usize = 6;
const REG_MAX: u32 = (1 << BITS) - 1;
const SEED: u64 = 0xadc8_3b19;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The sketch's sparse encoding does not cover exactly 16384 registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corrupt;

/// MurmurHash2, 64-bit variant A, reading 8-byte blocks little-endian (as Redis does on
/// every architecture).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut k = u64::from_le_bytes(block.try_into().expect("8-byte block"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the value it proposes (1..=51).
pub fn pattern(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash as usize) & (REGISTERS - 1);
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A new, empty sketch: sparse, one XZERO run over every register, cached cardinality 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2);
    v.extend_from_slice(b"HYLL");
    v.push(ENC_SPARSE);
    v.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        push_xzero(&mut v, run);
        left -= run;
    }
    v
}

/// Redis's `isHLLObjectOrReply` test on a string value's bytes.
pub fn looks_valid(b: &[u8]) -> bool {
    b.len() >= HDR
        && &b[..4] == b"HYLL"
        && b[4] <= ENC_SPARSE
        && (b[4] != ENC_DENSE || b.len() == DENSE_SIZE)
}

pub fn encoding(b: &[u8]) -> u8 {
    b[4]
}

/// The cached cardinality, if it is marked valid.
pub fn cached_card(b: &[u8]) -> Option<u64> {
    if b[15] & 0x80 != 0 {
        return None;
    }
    Some(u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")))
}

pub fn set_cached_card(b: &mut [u8], card: u64) {
    b[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate_cache(b: &mut [u8]) {
    b[15] |= 0x80;
}

// ---- dense registers ----

/// Register `i` of a packed dense register array.
pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = regs.get(byte).copied().unwrap_or(0) as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & REG_MAX) as u8
}

/// Writes register `i` unconditionally.
pub fn dense_put(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let fb8 = 8 - fb;
    let v = val as u32;
    if let Some(b) = regs.get_mut(byte) {
        *b &= !((REG_MAX << fb) as u8);
        *b |= (v << fb) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((REG_MAX >> fb8) as u8);
        *b |= (v >> fb8) as u8;
    }
}

/// Raises register `i` to `count`; true if it changed.
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

// ---- sparse opcodes ----

enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    fn span(&self) -> usize {
        match *self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }
    fn size(&self) -> usize {
        match self {
            Op::XZero(_) => 2,
            _ => 1,
        }
    }
}

fn byte_at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// Decodes the opcode at `p` (which must be in bounds).
fn op_at(b: &[u8], p: usize) -> Op {
    let c = b[p];
    if c & 0xc0 == 0 {
        Op::Zero((c & 0x3f) as usize + 1)
    } else if c & 0x80 != 0 {
        Op::Val(((c >> 2) & 0x1f) + 1, (c & 3) as usize + 1)
    } else {
        Op::XZero(((((c & 0x3f) as usize) << 8) | byte_at(b, p + 1) as usize) + 1)
    }
}

fn val_byte(val: u8, len: usize) -> u8 {
    0x80 | ((val - 1) << 2) | (len as u8 - 1)
}

fn push_xzero(v: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    v.push(0x40 | (l >> 8) as u8);
    v.push((l & 0xff) as u8);
}

fn push_zero_run(v: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(v, len);
    } else {
        v.push(len as u8 - 1);
    }
}

/// Walks a sparse sketch's opcodes, calling `f(first_register, op)`. Corrupt unless the runs
/// cover exactly the 16384 registers; a run that would pass the last register stops the walk
/// (as in Redis with the CVE-2025-32023 fix, which the reference redis-server carries).
fn walk_sparse(b: &[u8], mut f: impl FnMut(usize, &Op)) -> Result<(), Corrupt> {
    let mut p = HDR;
    let mut idx = 0usize;
    while p < b.len() {
        let op = op_at(b, p);
        if idx + op.span() > REGISTERS {
            return Err(Corrupt);
        }
        f(idx, &op);
        idx += op.span();
        p += op.size();
    }
    if idx == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Converts a sparse sketch to dense in place (header and cached cardinality kept). A dense
/// sketch is left alone.
pub fn to_dense(b: &mut Vec<u8>) -> Result<(), Corrupt> {
    if b[4] == ENC_DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&b[..HDR]);
    dense[4] = ENC_DENSE;
    walk_sparse(b, |first, op| {
        if let Op::Val(v, n) = *op {
            for i in first..first + n {
                dense_put(&mut dense[HDR..], i, v);
            }
        }
    })?;
    *b = dense;
    Ok(())
}

/// Redis's `hllSparseSet`: raises register `index` to `count` in a sparse sketch, splitting
/// runs in place, merging equal neighbouring VAL runs, and promoting to dense when the value
/// does not fit a VAL opcode or the sketch would grow past `max_bytes`.
pub fn sparse_set(
    b: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: u64,
) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(b, index, count);
    }
    let end = b.len();
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut found: Option<Op> = None;
    while p < end {
        let op = op_at(b, p);
        if index < first + op.span() {
            found = Some(op);
            break;
        }
        prev = Some(p);
        p += op.size();
        first += op.span();
    }
    let Some(op) = found else {
        return Err(Corrupt);
    };
    let span = op.span();
    let oldlen = op.size();

    let mut quick = false;
    match op {
        Op::Val(old, n) => {
            if old >= count {
                return Ok(false);
            }
            if n == 1 {
                b[p] = val_byte(count, 1);
                quick = true;
            }
        }
        Op::Zero(1) => {
            b[p] = val_byte(count, 1);
            quick = true;
        }
        _ => {}
    }

    if !quick {
        let last = first + span - 1;
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        match op {
            Op::Zero(_) | Op::XZero(_) => {
                if index != first {
                    push_zero_run(&mut seq, index - first);
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    push_zero_run(&mut seq, last - index);
                }
            }
            Op::Val(cur, _) => {
                if index != first {
                    seq.push(val_byte(cur, index - first));
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    seq.push(val_byte(cur, last - index));
                }
            }
        }
        let new_len = end + seq.len() - oldlen;
        if seq.len() > oldlen && new_len as u64 > max_bytes {
            return promote(b, index, count);
        }
        if p + oldlen <= end {
            b.splice(p..p + oldlen, seq);
        } else {
            // A two-byte opcode cut by the end of the string (corrupt): Redis writes the new
            // run over the end and keeps the length arithmetic.
            b.truncate(p);
            b.extend_from_slice(&seq);
            b.resize(new_len, 0);
        }
    }

    // Merge equal adjacent VAL runs, scanning a few opcodes from the previous one.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < b.len() && scan > 0 {
        scan -= 1;
        let c = b[p];
        if c & 0xc0 == 0x40 {
            p += 2;
            continue;
        }
        if c & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < b.len() && b[p + 1] & 0x80 != 0 {
            let (Op::Val(v1, l1), Op::Val(v2, l2)) = (op_at(b, p), op_at(b, p + 1)) else {
                unreachable!("both opcodes are VAL");
            };
            if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                b[p + 1] = val_byte(v1, l1 + l2);
                b.remove(p);
                continue;
            }
        }
        p += 1;
    }
    invalidate_cache(b);
    Ok(true)
}

fn promote(b: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(b)?;
    dense_raise(&mut b[HDR..], index, count);
    Ok(true)
}

/// Adds one element; true if a register changed. `max_bytes` is `hll-sparse-max-bytes`.
pub fn add(b: &mut Vec<u8>, ele: &[u8], max_bytes: u64) -> Result<bool, Corrupt> {
    let (index, count) = pattern(ele);
    match b[4] {
        ENC_DENSE => Ok(dense_raise(&mut b[HDR..], index, count)),
        ENC_SPARSE => sparse_set(b, index, count, max_bytes),
        _ => Err(Corrupt),
    }
}

/// Raises `max[i]` to each register of the sketch (PFMERGE, multi-key PFCOUNT).
pub fn merge_into(max: &mut [u8; REGISTERS], b: &[u8]) -> Result<(), Corrupt> {
    if b[4] == ENC_DENSE {
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(&b[HDR..], i));
        }
        return Ok(());
    }
    walk_sparse(b, |first, op| {
        if let Op::Val(v, n) = *op {
            for m in &mut max[first..first + n] {
                *m = (*m).max(v);
            }
        }
    })
}

/// The histogram of register values of a sketch, and whether a sparse sketch covered exactly
/// every register.
fn histogram(b: &[u8]) -> ([u64; 64], bool) {
    let mut h = [0u64; 64];
    if b[4] == ENC_DENSE {
        for i in 0..REGISTERS {
            h[dense_get(&b[HDR..], i) as usize] += 1;
        }
        return (h, true);
    }
    let ok = walk_sparse(b, |_, op| match *op {
        Op::Zero(n) | Op::XZero(n) => h[0] += n as u64,
        Op::Val(v, n) => h[v as usize] += n as u64,
    });
    (h, ok.is_ok())
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if before == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if before == z {
            return z / 3.0;
        }
    }
}

fn estimate(h: &[u64; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// The estimated cardinality of a sketch (ignores the cache). A sparse sketch that does not
/// cover every register is corrupt.
pub fn count(b: &[u8]) -> Result<u64, Corrupt> {
    let (h, ok) = histogram(b);
    let card = estimate(&h);
    if ok {
        Ok(card)
    } else {
        Err(Corrupt)
    }
}

/// The estimated cardinality of plain one-byte-per-register registers.
pub fn count_raw(regs: &[u8; REGISTERS]) -> u64 {
    let mut h = [0u64; 64];
    for &r in regs.iter() {
        h[(r & 63) as usize] += 1;
    }
    estimate(&h)
}

/// PFDEBUG DECODE's text for a sparse sketch: `z:<n>`, `Z:<n>`, `v:<value>,<n>`.
pub fn decode(b: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut p = HDR;
    while p < b.len() {
        let op = op_at(b, p);
        parts.push(match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(v, n) => format!("v:{v},{n}"),
        });
        p += op.size();
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 3000;

    fn sketch(elements: impl IntoIterator<Item = String>) -> Vec<u8> {
        let mut b = new_sparse();
        for e in elements {
            add(&mut b, e.as_bytes(), MAX).unwrap();
        }
        b
    }

    fn fnv1a(b: &[u8]) -> u64 {
        b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| {
            (h ^ c as u64).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// Sketches of `el0..el<n>` built by `PFADD` in chunks of 5000, then `PFCOUNT` (which
    /// writes the cache), as redis-server 7.0.15 returns them.
    fn recorded(n: usize) -> Vec<u8> {
        let mut b = sketch((0..n).map(|i| format!("el{i}")));
        invalidate_cache(&mut b);
        let card = count(&b).unwrap();
        set_cached_card(&mut b, card);
        b
    }

    #[test]
    fn matches_recorded_redis_outputs() {
        for (n, want) in [
            (1, 1),
            (10, 10),
            (100, 100),
            (1000, 1005),
            (5000, 5041),
            (20000, 20020),
            (100000, 99142),
        ] {
            assert_eq!(cached_card(&recorded(n)), Some(want), "n={n}");
        }
        let k1000 = recorded(1000);
        assert_eq!((k1000.len(), fnv1a(&k1000)), (1916, 0xaa05_f2b6_0707_bee9));
        let k100000 = recorded(100000);
        assert_eq!(
            (k100000.len(), fnv1a(&k100000)),
            (12304, 0xba1e_1fa8_2def_5216)
        );
        // PFADD small a b c foo bar; GET small
        let mut small = sketch(["a", "b", "c", "foo", "bar"].map(String::from));
        invalidate_cache(&mut small);
        assert_eq!(
            small,
            b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x5c\xb3\x90\x44\x3e\x80\x46\x21\x80\x4a\x8e\x84\x4b\xfb\x80\x42\x5a"
                .to_vec()
        );
        // PFCOUNT k1000 k5000 k20000
        let mut max = [0u8; REGISTERS];
        for n in [1000, 5000, 20000] {
            merge_into(&mut max, &recorded(n)).unwrap();
        }
        assert_eq!(count_raw(&max), 20020);
    }

    #[test]
    fn new_sketch_bytes() {
        let b = new_sparse();
        assert_eq!(b, b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f\xff".to_vec());
        assert_eq!(count(&b), Ok(0));
        assert_eq!(cached_card(&b), Some(0));
        assert_eq!(decode(&b), "Z:16384");
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        let mut x = 12345u64;
        let mut want = vec![0u8; REGISTERS];
        for (i, w) in want.iter_mut().enumerate() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *w = (x >> 58) as u8;
            dense_put(&mut regs, i, *w);
        }
        for (i, w) in want.iter().enumerate() {
            assert_eq!(dense_get(&regs, i), *w, "register {i}");
        }
    }

    #[test]
    fn sparse_and_dense_agree() {
        for n in [1usize, 10, 100, 500, 1000, 3000] {
            let mut sparse = new_sparse();
            let mut dense = new_sparse();
            to_dense(&mut dense).unwrap();
            for i in 0..n {
                let e = format!("e{i}");
                add(&mut sparse, e.as_bytes(), u64::MAX).unwrap();
                add(&mut dense, e.as_bytes(), u64::MAX).unwrap();
            }
            assert_eq!(count(&sparse), count(&dense), "n={n}");
            let mut conv = sparse.clone();
            to_dense(&mut conv).unwrap();
            assert_eq!(&conv[HDR..], &dense[HDR..]);
        }
    }

    #[test]
    fn promotes_past_max_bytes() {
        let b = sketch((0..2000).map(|i| format!("x{i}")));
        assert_eq!(encoding(&b), ENC_DENSE);
        assert_eq!(b.len(), DENSE_SIZE);
        let b = sketch((0..100).map(|i| format!("x{i}")));
        assert_eq!(encoding(&b), ENC_SPARSE);
        assert!(b.len() <= MAX as usize);
    }

    #[test]
    fn corrupt_sparse_is_an_error_not_a_panic() {
        let mut seed = 7u64;
        for len in 0..40usize {
            for _ in 0..200 {
                let mut b = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
                for _ in 0..len {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    b.push((seed >> 56) as u8);
                }
                let _ = count(&b);
                let _ = decode(&b);
                let mut max = [0u8; REGISTERS];
                let _ = merge_into(&mut max, &b);
                let mut c = b.clone();
                for i in 0..20 {
                    if add(&mut c, format!("{i}").as_bytes(), MAX).is_err() {
                        break;
                    }
                    if c[4] == ENC_DENSE {
                        assert_eq!(c.len(), DENSE_SIZE);
                    }
                }
                let mut d = b.clone();
                let _ = to_dense(&mut d);
            }
        }
        // Truncated XZERO: reads a zero past the end, like Redis.
        let b = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x7f".to_vec();
        assert_eq!(decode(&b), "Z:16129");
        assert_eq!(count(&b), Err(Corrupt));
    }

    proptest::proptest! {
        /// Whatever the elements and the promotion threshold, the sparse path and the dense
        /// path hold the same registers, and corrupting a byte never panics.
        #[test]
        fn sparse_path_equals_dense_path(
            elements in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..12), 0..600),
            max_bytes in 0u64..4000,
            flip in 0usize..4000,
        ) {
            let mut sparse = new_sparse();
            let mut dense = new_sparse();
            to_dense(&mut dense).unwrap();
            for e in &elements {
                let a = add(&mut sparse, e, max_bytes).unwrap();
                let b = add(&mut dense, e, max_bytes).unwrap();
                proptest::prop_assert_eq!(a, b);
            }
            proptest::prop_assert!(encoding(&sparse) == ENC_DENSE || sparse.len() as u64 <= max_bytes.max(HDR as u64 + 2));
            proptest::prop_assert_eq!(count(&sparse), count(&dense));
            let mut conv = sparse.clone();
            to_dense(&mut conv).unwrap();
            proptest::prop_assert_eq!(&conv[HDR..], &dense[HDR..]);
            if encoding(&sparse) == ENC_SPARSE && sparse.len() > HDR {
                let i = HDR + flip % (sparse.len() - HDR);
                sparse[i] ^= 0x5a;
                let _ = count(&sparse);
                let _ = decode(&sparse);
                for e in &elements {
                    if add(&mut sparse, e, max_bytes).is_err() {
                        break;
                    }
                }
            }
        }
    }
}
