//! The snapshot format's primitives: little-endian values, framed sections, checksums
//! and the bounds that keep a hostile file from costing more than its own size.
//!
//! # Format
//!
//! ```text
//! file    = magic "TRIGWIRE" (8 bytes), version u32, section*, end
//! section = tag (4 ASCII bytes), length u64, CRC-32 of the payload u32, payload
//! end     = a section tagged "END." with an empty payload
//! ```
//!
//! Every integer is little-endian. The sections come in one fixed order (see
//! [`crate::Engine::save`]); each struct encodes and decodes itself next to its
//! definition (`encode`/`decode` methods), with this module's [`Enc`] and [`Dec`]. A
//! count read from the file is accepted only if the bytes left in its section could hold
//! that many elements of their smallest encoding ([`Dec::count`]), so no length field
//! makes the decoder allocate more than the file justifies; a section's payload is read
//! through [`std::io::Read::take`], so a lying section length costs no more than the
//! bytes that are really there. The one structure larger than its encoding is a chunk
//! of callback states: a chunk holding one live callback takes 64 KiB, in the restored
//! engine as in the saved one, for 25 bytes of file.
//!
//! Decoding checks more than the checksums: a crafted file can have valid ones. Every
//! id that indexes a table (symbols, actions, templates, kinds, callbacks, arena runs,
//! timers) is checked against that table, and the invariants the matcher's loops rely
//! on are checked before an engine is handed out, so nothing a restored engine does
//! later can index out of bounds.
//!
//! PERF: plain little-endian sections of the engine's own arrays, with the three big
//! ones (arena postings, dense index cells, callback states) decoded in bulk from one
//! bounds-checked slice ([`Dec::array`]). The alternatives were a serde derive with a
//! compact codec (bincode, postcard) or a zero-copy archive: a derive cannot reach the
//! private fields without deriving on every internal type, would still need the same
//! validation pass, and would encode the hash maps that this format rebuilds instead
//! (interner, action, kind and shape maps); a zero-copy archive would need the
//! matcher's chunked and boxed layouts to change. Measured with `trigwire bench --jobs
//! 10000 --frames 1000 --events 1000000 --snapshot` (10M callbacks, a loaded 2-core
//! machine): the file is 444 MB for 462 MB of `memory_usage()` (0.96×), restore takes
//! 1.05 s against 9.39 s of registration in the same run (8.9×), and reading the file's
//! bytes alone takes 0.33 s: a codec could win at most part of the remaining 0.7 s,
//! much of it checks any encoding needs. Decoding those arrays field by field, each read
//! bounds-checked, was 55% of restore's samples at 1M; in bulk, restore went from 0.217
//! to 0.149-0.167 s there (see PERFORMANCE.md, "Snapshot and restore").

use std::io::{Read, Write};

use crate::error::{Error, ErrorKind};
use crate::front::ids::CallbackId;

/// The first bytes of every snapshot.
pub(crate) const MAGIC: [u8; 8] = *b"TRIGWIRE";

/// The format version this build writes and the only one it reads.
pub(crate) const VERSION: u32 = 1;

/// The tag of the last section.
const END: [u8; 4] = *b"END.";

/// A section's payload being written.
#[derive(Default)]
pub(crate) struct Enc {
    buf: Vec<u8>,
}

impl Enc {
    #[inline]
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    #[inline]
    pub fn bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    #[inline]
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    #[inline]
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A length or count.
    #[inline]
    pub fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }

    pub fn str(&mut self, s: &str) {
        self.len(s.len());
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// An optional u64: a presence byte, then the value.
    pub fn opt_u64(&mut self, v: Option<u64>) {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.u64(v);
        }
    }

    /// Reserves room for `n` more bytes.
    pub fn reserve(&mut self, n: usize) {
        self.buf.reserve(n);
    }

    /// The entries of a map keyed by callback id, in id order (a hash map's own order
    /// varies from run to run): their count, then each id followed by what `each`
    /// writes of its value.
    pub fn by_callback<'m, V: 'm>(
        &mut self,
        entries: impl Iterator<Item = (&'m CallbackId, &'m V)>,
        mut each: impl FnMut(&mut Enc, &'m V),
    ) {
        let mut entries: Vec<_> = entries.collect();
        entries.sort_unstable_by_key(|(cb, _)| **cb);
        self.len(entries.len());
        for (cb, value) in entries {
            self.u32(cb.as_u32());
            each(self, value);
        }
    }
}

/// A section's payload being read: a cursor that turns every short read or bad value
/// into an [`ErrorKind::Snapshot`] error naming the byte offset in the file.
pub(crate) struct Dec<'a> {
    data: &'a [u8],
    pos: usize,
    /// The file offset of `data[0]`.
    base: u64,
    /// Nesting left for recursive values (trees).
    depth: u32,
}

impl<'a> Dec<'a> {
    /// A decoder over `data`, which starts at byte `base` of the file.
    pub fn new(data: &'a [u8], base: u64) -> Dec<'a> {
        Dec { data, pos: 0, base, depth: 0 }
    }

    /// An error about the bytes at the cursor.
    pub fn err(&self, what: impl std::fmt::Display) -> Error {
        snapshot_error(self.base + self.pos as u64, what)
    }

    /// Fails with `what` unless `ok`.
    #[inline]
    pub fn check(&self, ok: bool, what: impl FnOnce() -> String) -> Result<(), Error> {
        if ok {
            Ok(())
        } else {
            Err(self.err(what()))
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.data.len() - self.pos < n {
            return Err(self.err(format!("the section ends {} bytes early", n - (self.data.len() - self.pos))));
        }
        let bytes = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    #[inline]
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    pub fn bool(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.back(1).err(format!("{b} is not a boolean"))),
        }
    }

    #[inline]
    pub fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    #[inline]
    pub fn u64(&mut self) -> Result<u64, Error> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("eight bytes")))
    }

    pub fn opt_u64(&mut self) -> Result<Option<u64>, Error> {
        Ok(if self.bool()? { Some(self.u64()?) } else { None })
    }

    /// A count of elements each encoded in at least `min_bytes`: refused if the rest of
    /// the section could not hold them, which bounds what the caller allocates.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, Error> {
        let n = self.u64()?;
        let left = (self.data.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes.max(1) as u64) > left {
            return Err(self.back(8).err(format!("a count of {n} does not fit in the {left} bytes left")));
        }
        Ok(n as usize)
    }

    /// The bytes of `n` elements of `size` bytes each, checked once: arrays decode
    /// from this in bulk (`chunks_exact`), which the compiler vectorizes.
    pub fn array(&mut self, n: usize, size: usize) -> Result<&'a [u8], Error> {
        let len = n.checked_mul(size).ok_or_else(|| self.err("an array larger than memory"))?;
        self.take(len)
    }

    /// A count that is also an id below `limit` fits in, e.g. a table length.
    pub fn count_upto(&mut self, min_bytes: usize, limit: u64) -> Result<usize, Error> {
        let n = self.count(min_bytes)?;
        self.back(8).check(n as u64 <= limit, || format!("a count of {n} is over the limit of {limit}"))?;
        Ok(n)
    }

    pub fn str(&mut self) -> Result<&'a str, Error> {
        let n = self.count(1)?;
        let at = self.pos;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes).map_err(|_| snapshot_error(self.base + at as u64, "a string is not UTF-8"))
    }

    /// A value below `limit` (an id into a table of that length).
    pub fn id(&mut self, limit: usize, what: &str) -> Result<u32, Error> {
        let v = self.u32()?;
        if v as usize >= limit {
            return Err(self.back(4).err(format!("{what} {v} is out of range (there are {limit})")));
        }
        Ok(v)
    }

    /// An enum tag below `n`.
    pub fn tag(&mut self, n: u8, what: &str) -> Result<u8, Error> {
        let t = self.u8()?;
        if t >= n {
            return Err(self.back(1).err(format!("{t} is not a valid {what}")));
        }
        Ok(t)
    }

    /// Runs `f` one nesting level deeper, refusing trees deeper than `limit`.
    pub fn nested<T>(&mut self, limit: u32, f: impl FnOnce(&mut Self) -> Result<T, Error>) -> Result<T, Error> {
        if self.depth >= limit {
            return Err(self.err(format!("a tree nests deeper than {limit} levels")));
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }

    /// The decoder with its cursor `n` bytes back, to point an error at a value read.
    fn back(&self, n: usize) -> Dec<'a> {
        Dec { data: self.data, pos: self.pos.saturating_sub(n), base: self.base, depth: self.depth }
    }

    /// The file offset of the cursor.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Fails unless every byte of the section was read.
    pub fn finish(&self) -> Result<(), Error> {
        let left = self.data.len() - self.pos;
        self.check(left == 0, || format!("{left} bytes left over at the end of the section"))
    }
}

/// The little-endian u32 at `at` of `bytes` (in bounds: callers slice exactly).
#[inline]
pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// The little-endian u64 at `at` of `bytes`.
#[inline]
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from(u32_at(bytes, at)) | u64::from(u32_at(bytes, at + 4)) << 32
}

/// An [`ErrorKind::Snapshot`] error at file offset `offset`.
pub(crate) fn snapshot_error(offset: u64, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Snapshot { offset }, format!("snapshot byte {offset}: {what}"))
}

fn io_error(doing: &str, e: &std::io::Error) -> Error {
    Error::new(ErrorKind::Io, format!("{doing}: {e}"))
}

/// Writes a snapshot: the header, then one section per call, then the end.
pub(crate) struct Writer<W: Write> {
    w: W,
    enc: Enc,
}

impl<W: Write> Writer<W> {
    pub fn new(mut w: W) -> Result<Writer<W>, Error> {
        let mut head = MAGIC.to_vec();
        head.extend_from_slice(&VERSION.to_le_bytes());
        w.write_all(&head).map_err(|e| io_error("writing a snapshot", &e))?;
        Ok(Writer { w, enc: Enc::default() })
    }

    /// Writes the section `tag` with what `fill` encodes.
    pub fn section(&mut self, tag: [u8; 4], fill: impl FnOnce(&mut Enc)) -> Result<(), Error> {
        self.enc.buf.clear();
        fill(&mut self.enc);
        let payload = &self.enc.buf;
        let mut head = [0u8; 16];
        head[..4].copy_from_slice(&tag);
        head[4..12].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        head[12..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        let w = &mut self.w;
        w.write_all(&head).and_then(|()| w.write_all(payload)).map_err(|e| io_error("writing a snapshot", &e))
    }

    /// Writes the end section and flushes; returns the writer.
    pub fn finish(mut self) -> Result<W, Error> {
        self.section(END, |_| {})?;
        self.w.flush().map_err(|e| io_error("writing a snapshot", &e))?;
        Ok(self.w)
    }
}

/// Reads a snapshot written by [`Writer`], one section at a time.
pub(crate) struct Reader<R: Read> {
    r: R,
    offset: u64,
    buf: Vec<u8>,
}

impl<R: Read> Reader<R> {
    /// The offset of the next byte to read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads and checks the header.
    pub fn new(r: R) -> Result<Reader<R>, Error> {
        let mut reader = Reader { r, offset: 0, buf: Vec::new() };
        let head = reader.exactly(12)?;
        if head[..8] != MAGIC {
            return Err(snapshot_error(0, "not a trigwire snapshot (wrong magic number)"));
        }
        let version = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if version != VERSION {
            let what = if version > VERSION { "a newer" } else { "an unknown" };
            return Err(snapshot_error(
                8,
                format!("format version {version} is {what} version; this build reads version {VERSION}"),
            ));
        }
        Ok(reader)
    }

    /// Reads `n` bytes into the buffer, or fails naming where the input ended.
    fn exactly(&mut self, n: u64) -> Result<&[u8], Error> {
        self.buf.clear();
        // Room for what the length promises, up to 1 MiB: more only as bytes arrive, so
        // a lying length costs nothing.
        self.buf.reserve(n.min(1 << 20) as usize);
        let got = (&mut self.r).take(n).read_to_end(&mut self.buf).map_err(|e| io_error("reading a snapshot", &e))?;
        if (got as u64) < n {
            let at = self.offset + got as u64;
            return Err(snapshot_error(at, format!("the input ends {} bytes early", n - got as u64)));
        }
        self.offset += n;
        Ok(&self.buf)
    }

    /// Reads the next section, which must be `tag`, checks its checksum and hands its
    /// payload to `read`, which must consume all of it.
    pub fn section<T>(
        &mut self,
        tag: [u8; 4],
        read: impl FnOnce(&mut Dec<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let at = self.offset;
        let head = self.exactly(16)?;
        let (found, len, crc) = (&head[..4], &head[4..12], &head[12..]);
        if found != tag {
            let show = |t: &[u8]| String::from_utf8_lossy(t).escape_debug().to_string();
            return Err(snapshot_error(at, format!("expected section `{}`, found `{}`", show(&tag), show(found))));
        }
        let len = u64::from_le_bytes(len.try_into().expect("eight bytes"));
        let crc = u32::from_le_bytes(crc.try_into().expect("four bytes"));
        let base = self.offset;
        let payload = self.exactly(len)?;
        if crc32fast::hash(payload) != crc {
            let name = String::from_utf8_lossy(&tag).to_string();
            return Err(snapshot_error(base, format!("section `{name}` is damaged (checksum mismatch)")));
        }
        let mut dec = Dec::new(&self.buf, base);
        let value = read(&mut dec)?;
        dec.finish()?;
        Ok(value)
    }

    /// Reads the end section and checks that nothing follows it.
    pub fn finish(mut self) -> Result<(), Error> {
        self.section(END, |_| Ok(()))?;
        let mut one = [0u8; 1];
        match self.r.read(&mut one) {
            Ok(0) => Ok(()),
            Ok(_) => Err(snapshot_error(self.offset, "bytes follow the end of the snapshot")),
            Err(e) => Err(io_error("reading a snapshot", &e)),
        }
    }
}
