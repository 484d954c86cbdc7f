//! `LineEnds`: the CRLF line ends of a header block, in order, found 64 bytes at a time.
//!
//! The parser needs every line end; searching for each with `memchr` costs a call and a CPU
//! feature dispatch per line, about as much as the rest of the line's work. Instead one pass
//! builds a bitmask of LF positions per 64-byte block and the lines are read off it.
//!
//! On x86_64 the mask comes from SSE2 (part of the x86_64 baseline, so no run-time detection);
//! elsewhere from portable word-at-a-time code. Both are checked against each other in tests.

/// Iterates the positions of the CRLFs that end lines (RFC 3261 §7: lines end in CRLF; a bare
/// LF or CR is part of a line).
pub(crate) struct LineEnds<'a> {
    buf: &'a [u8],
    /// Start of the block `mask` describes.
    block: usize,
    /// LF positions in the block not handed out yet, bit i for `buf[block + i]`.
    mask: u64,
}

impl<'a> LineEnds<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        LineEnds {
            buf,
            block: 0,
            mask: block_mask(buf, 0),
        }
    }

    /// The next LF at or after where the last one was found.
    #[inline]
    fn next_lf(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.block += 64;
            if self.block >= self.buf.len() {
                return None;
            }
            self.mask = block_mask(self.buf, self.block);
        }
        let i = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.block + i)
    }

    /// The next CRLF: the position of its CR. Called once per line, it returns the end of
    /// the line that starts just past the previous CRLF (or at 0).
    #[inline]
    pub(crate) fn next_line_end(&mut self) -> Option<usize> {
        loop {
            let lf = self.next_lf()?;
            // A CR right before makes a line end. An LF at 0 has no byte before it (the
            // check skips it); one right after a line end is preceded by LF.
            if lf != 0 && self.buf[lf - 1] == b'\r' {
                return Some(lf - 1);
            }
        }
    }
}

/// Bit i set iff `buf[block + i] == b'\n'`, for the 64 bytes from `block` (fewer at the end of
/// `buf`; `block` is inside it).
#[inline]
fn block_mask(buf: &[u8], block: usize) -> u64 {
    match buf.get(block..).and_then(|r| r.first_chunk::<64>()) {
        Some(b) => lf_mask64(b),
        None => short_block_mask(buf, block),
    }
}

/// The mask of the short last block `buf[block..]`: read off the buffer's last 64 bytes,
/// which overlap the block before, and shifted down to start at `block`. Only a buffer of
/// fewer than 64 bytes is copied (padded with zeros, which are not LF). Most messages
/// without a body end in such a block; it is out of line, as it comes once per message.
#[inline(never)]
fn short_block_mask(buf: &[u8], block: usize) -> u64 {
    let n = buf.len().saturating_sub(block); // under 64
    match buf.last_chunk::<64>() {
        // Nothing left (n = 0) shifts everything out.
        Some(last) => lf_mask64(last).checked_shr((64 - n) as u32).unwrap_or(0),
        None => {
            let mut padded = [0u8; 64];
            padded[..n].copy_from_slice(&buf[block..]);
            lf_mask64(&padded)
        }
    }
}

#[inline]
fn lf_mask64(block: &[u8; 64]) -> u64 {
    let (lo, hi) = block.split_at(32);
    let half = |h: &[u8]| h.first_chunk::<32>().map_or(0, |h| eq_mask32(h, b'\n'));
    u64::from(half(lo)) | (u64::from(half(hi)) << 32)
}

/// What the first 16 bytes of a header line hold: bit i of `colon` is set iff byte i is a
/// colon, of `ws` iff it is SP or HTAB. A header name, its colon and the whitespace around it
/// usually fit in them, so the name's end and the value's start are read off two masks
/// instead of walking bytes. `ws` has only its low 16 bits set. `words` are the 16 bytes as
/// two little-endian words, for classifying the name without reading it again.
#[derive(Clone, Copy)]
pub(crate) struct LineStart {
    pub(crate) colon: u32,
    pub(crate) ws: u32,
    pub(crate) words: [u64; 2],
}

impl LineStart {
    /// The masks of `chunk`.
    #[inline]
    pub(crate) fn of(chunk: &[u8; 16]) -> Self {
        LineStart {
            colon: eq_mask16(chunk, b':'),
            ws: eq_mask16(chunk, b' ') | eq_mask16(chunk, b'\t'),
            words: super::header::words_of(chunk),
        }
    }

    /// The masks of the 16 bytes of `buf` from `at`, padded with zeros past the end.
    #[inline]
    pub(crate) fn at(buf: &[u8], at: usize) -> Self {
        // One range check: `at + 16` wraps only for an `at` far out of bounds.
        match buf
            .get(at..at.wrapping_add(16))
            .and_then(|r| r.first_chunk::<16>())
        {
            Some(chunk) => Self::of(chunk),
            None => Self::padded(buf.get(at..).unwrap_or_default()),
        }
    }

    #[cold]
    fn padded(rest: &[u8]) -> Self {
        let mut chunk = [0u8; 16];
        let n = rest.len().min(16);
        chunk[..n].copy_from_slice(&rest[..n]);
        Self::of(&chunk)
    }
}

/// Bit i set iff byte i of `chunk` is a space.
#[inline]
pub(crate) fn space_mask16(chunk: &[u8; 16]) -> u32 {
    eq_mask16(chunk, b' ')
}

#[inline]
fn eq_mask32(block: &[u8; 32], b: u8) -> u32 {
    let (lo, hi) = block.split_at(16);
    let half = |h: &[u8]| h.first_chunk::<16>().map_or(0, |h| eq_mask16(h, b));
    half(lo) | (half(hi) << 16)
}

/// Bit i set iff `block[i] == b`.
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline]
#[allow(unsafe_code)]
fn eq_mask16(block: &[u8; 16], b: u8) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    // SAFETY: every intrinsic used is SSE2, which every x86_64 CPU has (it is part of the
    // x86_64 baseline, enabled for this target by default), so the instructions exist.
    // `_mm_loadu_si128` reads 16 bytes from a pointer with no alignment requirement: the
    // pointer is `block`, a 16-byte array. Nothing is written.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
        _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))) as u32 & 0xffff
    }
}

#[cfg(any(not(target_arch = "x86_64"), miri))]
#[inline]
fn eq_mask16(block: &[u8; 16], b: u8) -> u32 {
    eq_mask16_portable(block, b)
}

/// Word-at-a-time version of `eq_mask16`, for other targets (and the reference in tests).
#[cfg_attr(all(target_arch = "x86_64", not(miri), not(test)), allow(dead_code))]
fn eq_mask16_portable(block: &[u8; 16], b: u8) -> u32 {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut mask = 0;
    for (w, chunk) in block.chunks_exact(8).enumerate() {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ (u64::from(b) * 0x0101_0101_0101_0101);
        // High bit of each byte set iff that byte of x is zero (no carries between bytes).
        let zero = !(((x & LO7) + LO7) | x) & !LO7;
        // Gather the 8 high bits into the low byte.
        let bits = ((zero >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32;
        mask |= bits << (8 * w);
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simd_and_portable_masks_agree() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let mut block = [0u8; 16];
            for b in &mut block {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly the searched bytes and their neighbours, to exercise carries.
                *b = [b'\n', b':', 0x0b, 0x09, 0x8a, 0x00, 0xff, b'a'][(x % 8) as usize];
            }
            for want in [b'\n', b':', 0x8a, 0x00, 0xff] {
                let scalar = block
                    .iter()
                    .enumerate()
                    .fold(0u32, |m, (i, b)| m | (u32::from(*b == want) << i));
                assert_eq!(eq_mask16(&block, want), scalar, "{want} {block:?}");
                assert_eq!(eq_mask16_portable(&block, want), scalar, "{want} {block:?}");
            }
        }
    }

    #[test]
    fn line_ends_skip_bare_lf_and_cross_blocks() {
        let mut buf = Vec::new();
        buf.extend_from_slice(b"A\nB\r\n"); // bare LF inside the first line
        buf.extend_from_slice(&[b'x'; 40]);
        buf.extend_from_slice(b"\r\n\r\n");
        let mut l = LineEnds::new(&buf);
        assert_eq!(l.next_line_end(), Some(3));
        assert_eq!(l.next_line_end(), Some(45));
        assert_eq!(l.next_line_end(), Some(47));
        assert_eq!(l.next_line_end(), None);
        // An LF first in the buffer, and an LF right after a CRLF, end no line.
        let mut l = LineEnds::new(b"\nA\r\n\nB\r\n");
        assert_eq!(l.next_line_end(), Some(2));
        assert_eq!(l.next_line_end(), Some(6));
        assert_eq!(l.next_line_end(), None);
        // A CRLF split over the half-block and block boundaries, and a short last block.
        for cut in [31, 63, 127] {
            let mut buf = vec![b'y'; cut];
            buf.extend_from_slice(b"\r\nz\r\n");
            let mut l = LineEnds::new(&buf);
            assert_eq!(l.next_line_end(), Some(cut), "{cut}");
            assert_eq!(l.next_line_end(), Some(cut + 3), "{cut}");
            assert_eq!(l.next_line_end(), None, "{cut}");
        }
    }

    /// Every buffer length around the block size, with CR and LF at random places: the line
    /// ends found are the CRLFs a byte-by-byte scan finds.
    #[test]
    fn line_ends_agree_with_a_plain_scan() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..200 {
            for _ in 0..20 {
                let buf: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        [b'\r', b'\n', b'a', b'a', b'a', b'a'][(x % 6) as usize]
                    })
                    .collect();
                let want: Vec<usize> = (1..len)
                    .filter(|&i| buf[i] == b'\n' && buf[i - 1] == b'\r')
                    .map(|i| i - 1)
                    .collect();
                let mut l = LineEnds::new(&buf);
                let got: Vec<usize> = std::iter::from_fn(|| l.next_line_end()).collect();
                assert_eq!(got, want, "{buf:?}");
            }
        }
    }

    #[test]
    fn line_start_masks() {
        let l = LineStart::at(b"Via :\t x:y", 0);
        assert_eq!(l.colon, 1 << 4 | 1 << 8);
        assert_eq!(l.ws, 1 << 3 | 1 << 5 | 1 << 6);
        // Near the end of the buffer: padded, nothing past the end set.
        let l = LineStart::at(b"ab: c", 1);
        assert_eq!((l.colon, l.ws), (1 << 1, 1 << 2));
        let l = LineStart::at(b"ab", 2);
        assert_eq!((l.colon, l.ws), (0, 0));
        let full = [b' '; 40];
        assert_eq!(LineStart::at(&full, 3).ws, 0xffff);
    }
}
