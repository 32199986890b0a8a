//! Finding the next good frame after damage, in time linear in the length
//! of the damaged region. A candidate (the marker and a length in bounds)
//! has its CRC-32 checked in constant time from prefix CRCs kept every
//! [`CHECKPOINT_BYTES`], instead of by hashing its claimed frame (up to
//! 4 MiB) anew, which made a region full of candidates quadratic.
//!
//! No I/O and no buffer of its own: the caller hands in the bytes it holds
//! with their offset, and keeps them from [`Resync::keep_from`] on.

use std::collections::VecDeque;

use crate::frame::{FRAME_HEADER_LEN, FRAME_MARKER, MAX_BODY_LEN};

/// Distance between prefix-CRC checkpoints: a candidate's check hashes at
/// most this many bytes twice, and checkpoints cost 4 bytes per this many.
pub(crate) const CHECKPOINT_BYTES: u64 = 32;

/// Bytes of the CRC-32 after a frame's body.
const CRC_LEN: u64 = 4;

/// What a resync found in the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// A good frame envelope starts at this offset; nothing before it,
    /// from where the resync started, is one.
    Good(u64),
    /// The next candidate cannot be decided without more bytes.
    NeedMore,
    /// The input ended (at end of input) without a good frame.
    End,
}

/// A resync in progress: every position before `cursor` has been ruled
/// out. Kept across calls, so that bytes arriving in pieces are scanned
/// once.
#[derive(Debug, Clone)]
pub(crate) struct Resync {
    /// The next position that may start a good frame.
    cursor: u64,
    /// Where `checkpoints[0]` is; checkpoint `i` is at `first + i * K`.
    first: u64,
    /// CRC-32 of the bytes from an origin (any point at or before `first`)
    /// to each checkpoint. Only differences of prefixes are used, so the
    /// origin may move when no later checkpoint depends on it.
    checkpoints: VecDeque<u32>,
    /// The prefix CRC at the last candidate start, from which the next
    /// start's is computed (starts come in order).
    last_start: Option<(u64, u32)>,
    /// While the cursor waits on a candidate whose claim runs past the
    /// bytes there are: where the look past it for a good frame goes on.
    ahead: Option<u64>,
    /// Candidates past the cursor that wait on bytes too, each claiming
    /// less than the one before (one that claims more cannot end first):
    /// (start, where its CRC is).
    waiting: VecDeque<(u64, u64)>,
    /// The end of a good frame found past waiting candidates: a candidate
    /// before it whose claim runs past the bytes there are is torn.
    torn_past: Option<u64>,
}

/// How a position looks as the start of a frame.
enum Candidate {
    /// Not a frame start.
    Not,
    /// Too few bytes to tell.
    Short,
    /// Marker and length in bounds: a frame of this many bytes before its CRC.
    Claims(u64),
}

fn candidate(rest: &[u8]) -> Candidate {
    match rest {
        [_] => Candidate::Short,
        [_, b, ..] if *b != FRAME_MARKER[1] => Candidate::Not,
        _ if rest.len() < FRAME_HEADER_LEN => Candidate::Short,
        _ => {
            let mut len = [0u8; 4];
            len.copy_from_slice(&rest[3..FRAME_HEADER_LEN]);
            let body = u32::from_le_bytes(len);
            if body > MAX_BODY_LEN {
                Candidate::Not
            } else {
                Candidate::Claims(FRAME_HEADER_LEN as u64 + u64::from(body))
            }
        }
    }
}

impl Resync {
    /// A resync that looks for a good frame from `from` on.
    pub(crate) fn new(from: u64) -> Self {
        Resync {
            cursor: from,
            first: from,
            checkpoints: VecDeque::from([0]),
            last_start: None,
            ahead: None,
            waiting: VecDeque::new(),
            torn_past: None,
        }
    }

    /// The first offset whose bytes the next [`Resync::run`] still needs.
    pub(crate) fn keep_from(&self) -> u64 {
        self.first
    }

    /// Every position before this is ruled out as a frame start.
    pub(crate) fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Looks on from `from` (or from the cursor, if it is further: what
    /// was ruled out stays ruled out), keeping the prefix CRCs already
    /// computed past it, so that a claim is never hashed twice.
    pub(crate) fn restart(&mut self, from: u64) {
        self.cursor = self.cursor.max(from);
        self.advance_checkpoints();
    }

    /// The CRC-32 of the bytes `at..crc_at`, from prefix CRCs: for the
    /// start of a frame the reader checks itself (`at` at or after
    /// [`Resync::keep_from`], `crc_at` in the window).
    pub(crate) fn range_crc(
        &mut self,
        window: &[u8],
        start: u64,
        at: u64,
        crc_at: u64,
        work: &mut u64,
    ) -> u32 {
        let before = match self.last_start {
            Some((pos, crc)) if pos <= at && pos >= self.first => {
                let bytes = slice(window, start, pos, at);
                *work += bytes.len() as u64;
                resume(crc, bytes)
            }
            _ => self.prefix(window, start, at, work),
        };
        self.last_start = Some((at, before));
        let through = self.prefix(window, start, crc_at, work);
        crc_of_range(before, through, crc_at - at)
    }

    /// Scans `window` (the bytes from offset `start`; it must reach back
    /// to [`Resync::keep_from`]) for the first good frame envelope at or
    /// after the cursor. `eof`: the window ends the input, so a candidate
    /// cut short by its end is not a frame. `work` counts bytes scanned
    /// and hashed.
    pub(crate) fn run(&mut self, window: &[u8], start: u64, eof: bool, work: &mut u64) -> Found {
        let end = start + window.len() as u64;
        loop {
            self.advance_checkpoints();
            if self.cursor >= end {
                return if eof { Found::End } else { Found::NeedMore };
            }
            let rel = (self.cursor - start) as usize;
            let Some(skip) = window[rel..].iter().position(|&b| b == FRAME_MARKER[0]) else {
                *work += (window.len() - rel) as u64;
                self.cursor = end;
                continue;
            };
            *work += skip as u64 + 1;
            self.cursor += skip as u64;
            let at = self.cursor;
            let rest = &window[rel + skip..];
            let good = match candidate(rest) {
                Candidate::Not => false,
                Candidate::Short if eof => false,
                Candidate::Short => return Found::NeedMore,
                Candidate::Claims(len) => {
                    let crc_at = at + len;
                    if crc_at + CRC_LEN > end {
                        // Waiting on its end unless a good frame found
                        // past it shows it torn (WIRE.md 2.5, 3.).
                        if !eof && self.torn_past.is_none() && !self.look_ahead(window, start, work)
                        {
                            return Found::NeedMore;
                        }
                        false
                    } else {
                        self.crc_matches(window, start, at, crc_at, work)
                    }
                }
            };
            if good {
                self.ahead = None;
                self.waiting.clear();
                self.torn_past = None;
                return Found::Good(at);
            }
            self.cursor += 1;
        }
    }

    /// Looks past the candidate at the cursor, which waits on bytes, for a
    /// good frame in the window, going on where the last look stopped:
    /// first among the candidates that waited too and whose ends have
    /// come, then in new bytes. Found: every candidate still waiting
    /// before it claims past its end, so is torn; [`Resync::run`] then
    /// decides the candidates before it in order.
    fn look_ahead(&mut self, window: &[u8], start: u64, work: &mut u64) -> bool {
        let end = start + window.len() as u64;
        while self
            .waiting
            .front()
            .is_some_and(|&(at, _)| at <= self.cursor)
        {
            self.waiting.pop_front();
        }
        while let Some(&(at, crc_at)) = self.waiting.back() {
            if crc_at + CRC_LEN > end {
                break;
            }
            self.waiting.pop_back();
            if self.crc_matches(window, start, at, crc_at, work) {
                return self.found_ahead(crc_at);
            }
        }
        let mut at = self.ahead.unwrap_or(0).max(self.cursor + 1);
        while at < end {
            let rel = (at - start) as usize;
            let Some(skip) = window[rel..].iter().position(|&b| b == FRAME_MARKER[0]) else {
                *work += (window.len() - rel) as u64;
                at = end;
                break;
            };
            *work += skip as u64 + 1;
            at += skip as u64;
            match candidate(&window[rel + skip..]) {
                Candidate::Not => {}
                Candidate::Short => break,
                Candidate::Claims(len) => {
                    let crc_at = at + len;
                    if crc_at + CRC_LEN <= end {
                        if self.crc_matches(window, start, at, crc_at, work) {
                            return self.found_ahead(crc_at);
                        }
                    } else if self.waiting.back().is_none_or(|&(_, last)| crc_at < last) {
                        self.waiting.push_back((at, crc_at));
                    }
                }
            }
            at += 1;
        }
        self.ahead = Some(at);
        false
    }

    /// A good frame whose CRC is at `crc_at` was found past the cursor.
    fn found_ahead(&mut self, crc_at: u64) -> bool {
        self.ahead = None;
        self.waiting.clear();
        self.torn_past = Some(crc_at + CRC_LEN);
        true
    }

    /// Whether the CRC stored at `crc_at` is that of the bytes `at..crc_at`.
    fn crc_matches(
        &mut self,
        window: &[u8],
        start: u64,
        at: u64,
        crc_at: u64,
        work: &mut u64,
    ) -> bool {
        let computed = self.range_crc(window, start, at, crc_at, work);
        let rel = (crc_at - start) as usize;
        let mut stored = [0u8; 4];
        stored.copy_from_slice(&window[rel..rel + CRC_LEN as usize]);
        computed == u32::from_le_bytes(stored)
    }

    /// Drops checkpoints the cursor has passed, keeping the one at or
    /// before it. With no later checkpoint, the origin moves to the
    /// cursor instead: bytes without candidates are never hashed.
    fn advance_checkpoints(&mut self) {
        while self.checkpoints.len() > 1 && self.first + CHECKPOINT_BYTES <= self.cursor {
            self.checkpoints.pop_front();
            self.first += CHECKPOINT_BYTES;
        }
        if self.checkpoints.len() == 1 && self.first < self.cursor {
            self.first = self.cursor;
            self.checkpoints[0] = 0;
            self.last_start = None;
        }
    }

    /// The CRC-32 from the origin to `pos` (at most the window's end),
    /// extending the checkpoints as far as `pos` needs.
    fn prefix(&mut self, window: &[u8], start: u64, pos: u64, work: &mut u64) -> u32 {
        let index = ((pos - self.first) / CHECKPOINT_BYTES) as usize;
        while self.checkpoints.len() <= index {
            let last = self.checkpoints.len() - 1;
            let from = self.first + last as u64 * CHECKPOINT_BYTES;
            let bytes = slice(window, start, from, from + CHECKPOINT_BYTES);
            *work += bytes.len() as u64;
            let crc = resume(self.checkpoints[last], bytes);
            self.checkpoints.push_back(crc);
        }
        let from = self.first + index as u64 * CHECKPOINT_BYTES;
        let bytes = slice(window, start, from, pos);
        *work += bytes.len() as u64;
        resume(self.checkpoints[index], bytes)
    }
}

/// `window[from..to]` in stream offsets; empty if outside (never, for
/// offsets the resync has kept).
fn slice(window: &[u8], start: u64, from: u64, to: u64) -> &[u8] {
    let from = from.saturating_sub(start) as usize;
    let to = to.saturating_sub(start) as usize;
    window.get(from..to).unwrap_or_default()
}

/// The CRC-32 of `prefix`'s bytes followed by `bytes`.
fn resume(prefix: u32, bytes: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new_with_initial(prefix);
    h.update(bytes);
    h.finalize()
}

/// The CRC-32/ISO-HDLC polynomial, reflected.
const POLY: u32 = 0xedb8_8320;

/// `a * b` modulo the polynomial, in the reflected representation (bit 31
/// is x^0), as zlib's `multmodp`. `a` is an operator x^n, never 0.
const fn mul_mod_p(a: u32, mut b: u32) -> u32 {
    let mut m = 1u32 << 31;
    let mut p = 0u32;
    while m != 0 {
        if a & m != 0 {
            p ^= b;
        }
        m >>= 1;
        b = if b & 1 != 0 { (b >> 1) ^ POLY } else { b >> 1 };
    }
    p
}

/// x^(8 * i * 256^k) mod P for i in 0..256, k in 0..3: shifting a CRC past
/// n < 2^24 bytes is three multiplications.
const SHIFT: [[u32; 256]; 3] = shift_tables();

const fn shift_tables() -> [[u32; 256]; 3] {
    let mut t = [[0u32; 256]; 3];
    // x^8: the operator of one byte.
    let mut step = mul_mod_p(1 << 30, 1 << 30); // x^2
    step = mul_mod_p(step, step); // x^4
    step = mul_mod_p(step, step); // x^8
    let mut k = 0;
    while k < 3 {
        t[k][0] = 1 << 31;
        let mut i = 1;
        while i < 256 {
            t[k][i] = mul_mod_p(t[k][i - 1], step);
            i += 1;
        }
        // The next table's step is this table's 256th power of `step`.
        step = mul_mod_p(t[k][255], step);
        k += 1;
    }
    t
}

/// The CRC register `crc` carried through `n` more bytes as if they were
/// zeros: `crc * x^(8n)`. Three multiplications for any frame length.
fn shift(crc: u32, n: u64) -> u32 {
    let mut out = crc;
    for (k, table) in SHIFT.iter().enumerate() {
        let byte = ((n >> (8 * k)) & 0xff) as usize;
        if byte != 0 {
            out = mul_mod_p(table[byte], out);
        }
    }
    // Past 2^24 bytes (never for a frame): square and multiply.
    let mut high = n >> 24;
    let mut op = mul_mod_p(SHIFT[2][255], SHIFT[2][1]);
    while high != 0 {
        if high & 1 != 0 {
            out = mul_mod_p(op, out);
        }
        op = mul_mod_p(op, op);
        high >>= 1;
    }
    out
}

/// The CRC-32 of the bytes between two prefixes: `before` over the bytes up
/// to a range, `through` over them and the range's `len` bytes
/// (zlib's `crc32_combine`, solved for the second part).
fn crc_of_range(before: u32, through: u32, len: u64) -> u32 {
    through ^ shift(before, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_crc_from_prefixes_matches_hashing_the_range() {
        let bytes: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for (a, b) in [
            (0, 0),
            (0, 1),
            (3, 70),
            (64, 128),
            (1, 4999),
            (100, 5000),
            (777, 4321),
        ] {
            let before = crc32fast::hash(&bytes[..a]);
            let through = crc32fast::hash(&bytes[..b]);
            let want = crc32fast::hash(&bytes[a..b]);
            assert_eq!(
                crc_of_range(before, through, (b - a) as u64),
                want,
                "{a}..{b}"
            );
        }
    }

    #[test]
    fn shift_agrees_with_zero_bytes_for_long_lengths() {
        // Shifting the register past n bytes of zeros: crc(A || 0^n) equals
        // shift(crc(A), n) xor crc(0^n).
        let a = crc32fast::hash(b"sonde");
        for n in [1usize, 255, 256, 65_535, 65_536, 4_194_311] {
            let zeros = vec![0u8; n];
            let mut h = crc32fast::Hasher::new();
            h.update(b"sonde");
            h.update(&zeros);
            assert_eq!(
                h.finalize(),
                shift(a, n as u64) ^ crc32fast::hash(&zeros),
                "{n}"
            );
        }
    }
}
