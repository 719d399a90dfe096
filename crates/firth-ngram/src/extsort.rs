//! Fixed-size records on disk: temporary files, sequential writers and readers, and an external
//! sort (sorted runs of a bounded in-memory buffer, spilled and joined by a k-way heap merge).
//!
//! This is what keeps a build inside its `--memory` budget: counting spills runs of N-grams, and
//! the streaming estimation in the `stream` module re-sorts each order through a [`Sorter`] and
//! keeps every intermediate order in a [`TempFile`] instead of in memory.

use crate::{Error, Result};
use rayon::slice::ParallelSliceMut;
use std::collections::BinaryHeap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Bytes of each writer's buffer, and of each reader's when few files are read at once: large
/// enough for sequential disk speed.
const IO_BUF: usize = 256 << 10;
/// All readers of one merge together get at most this much buffer (each at least 8 KiB), so a
/// merge of many runs stays inside a small budget.
const MERGE_BUF: usize = 32 << 20;

/// A record with a fixed little-endian encoding of `SIZE` bytes. `Ord` is the sort order.
pub trait Rec: Copy + Ord + Send + Sync {
    const SIZE: usize;
    fn put(&self, b: &mut [u8]);
    fn get(b: &[u8]) -> Self;
}

#[inline]
fn u128_at(b: &[u8], o: usize) -> u128 {
    u128::from_le_bytes(b[o..o + 16].try_into().unwrap())
}
#[inline]
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
#[inline]
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

/// `(key, count)`: a counted n-gram.
impl Rec for (u128, u64) {
    const SIZE: usize = 24;
    fn put(&self, b: &mut [u8]) {
        b[..16].copy_from_slice(&self.0.to_le_bytes());
        b[16..24].copy_from_slice(&self.1.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        (u128_at(b, 0), u64_at(b, 16))
    }
}

/// `(key, adjusted count, raw count)`: one n-gram after `count::adjust`.
impl Rec for (u128, u64, u64) {
    const SIZE: usize = 32;
    fn put(&self, b: &mut [u8]) {
        b[..16].copy_from_slice(&self.0.to_le_bytes());
        b[16..24].copy_from_slice(&self.1.to_le_bytes());
        b[24..32].copy_from_slice(&self.2.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        (u128_at(b, 0), u64_at(b, 16), u64_at(b, 24))
    }
}

/// `(key, a, b)` with two `f32`s stored as their bits (so the tuple is `Ord`).
impl Rec for (u128, u32, u32) {
    const SIZE: usize = 24;
    fn put(&self, b: &mut [u8]) {
        b[..16].copy_from_slice(&self.0.to_le_bytes());
        b[16..20].copy_from_slice(&self.1.to_le_bytes());
        b[20..24].copy_from_slice(&self.2.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        (u128_at(b, 0), u32_at(b, 16), u32_at(b, 20))
    }
}

/// `(key, f32 bits)`.
impl Rec for (u128, u32) {
    const SIZE: usize = 20;
    fn put(&self, b: &mut [u8]) {
        b[..16].copy_from_slice(&self.0.to_le_bytes());
        b[16..20].copy_from_slice(&self.1.to_le_bytes());
    }
    fn get(b: &[u8]) -> Self {
        (u128_at(b, 0), u32_at(b, 16))
    }
}

/// A file in the temporary directory, removed when dropped (also on errors and panics).
#[derive(Debug)]
pub struct TempFile {
    pub path: PathBuf,
    /// Records written.
    pub len: u64,
}

impl TempFile {
    fn new(dir: &Path, tag: &str) -> TempFile {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TempFile {
            path: dir.join(format!("firth-ngram-{}-{seq}-{tag}", std::process::id())),
            len: 0,
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes records of type `R` to a new temporary file.
pub struct RecWriter<R: Rec> {
    file: TempFile,
    w: BufWriter<std::fs::File>,
    buf: Vec<u8>,
    _r: PhantomData<R>,
}

impl<R: Rec> RecWriter<R> {
    pub fn create(dir: &Path, tag: &str) -> Result<RecWriter<R>> {
        let file = TempFile::new(dir, tag);
        let f = std::fs::File::create(&file.path).map_err(|source| Error::Write {
            path: file.path.clone(),
            err: source,
        })?;
        Ok(RecWriter {
            file,
            w: BufWriter::with_capacity(IO_BUF, f),
            buf: vec![0; R::SIZE],
            _r: PhantomData,
        })
    }

    #[inline]
    pub fn push(&mut self, r: &R) -> Result<()> {
        r.put(&mut self.buf);
        self.file.len += 1;
        self.w.write_all(&self.buf).map_err(|source| Error::Write {
            path: self.file.path.clone(),
            err: source,
        })
    }

    pub fn finish(mut self) -> Result<TempFile> {
        self.w.flush().map_err(|source| Error::Write {
            path: self.file.path.clone(),
            err: source,
        })?;
        Ok(self.file)
    }
}

/// Reads the records of a [`TempFile`] in order.
pub struct RecReader<R: Rec> {
    r: BufReader<std::fs::File>,
    path: PathBuf,
    buf: Vec<u8>,
    _r: PhantomData<R>,
}

impl<R: Rec> RecReader<R> {
    pub fn open(f: &TempFile) -> Result<RecReader<R>> {
        Self::with_buffer(f, IO_BUF)
    }

    fn with_buffer(f: &TempFile, bytes: usize) -> Result<RecReader<R>> {
        let file = std::fs::File::open(&f.path).map_err(|source| Error::Read {
            path: f.path.clone(),
            err: source,
        })?;
        Ok(RecReader {
            r: BufReader::with_capacity(bytes, file),
            path: f.path.clone(),
            buf: vec![0; R::SIZE],
            _r: PhantomData,
        })
    }

    #[inline]
    pub fn next(&mut self) -> Result<Option<R>> {
        match self.r.read_exact(&mut self.buf) {
            Ok(()) => Ok(Some(R::get(&self.buf))),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(source) => Err(Error::Read {
                path: self.path.clone(),
                err: source,
            }),
        }
    }
}

/// Writes a sorted slice as one run.
pub fn write_run<R: Rec>(dir: &Path, tag: &str, recs: &[R]) -> Result<TempFile> {
    let mut w = RecWriter::create(dir, tag)?;
    for r in recs {
        w.push(r)?;
    }
    w.finish()
}

/// K-way merge of sorted runs through a binary heap of each run's next record.
pub struct Merger<R: Rec> {
    readers: Vec<RecReader<R>>,
    heap: BinaryHeap<std::cmp::Reverse<(R, usize)>>,
    // The runs are removed when the merge is dropped.
    _runs: Vec<TempFile>,
}

impl<R: Rec> Merger<R> {
    pub fn new(runs: Vec<TempFile>) -> Result<Merger<R>> {
        let mut readers = Vec::with_capacity(runs.len());
        let mut heap = BinaryHeap::with_capacity(runs.len());
        let bytes = (MERGE_BUF / runs.len().max(1)).clamp(8 << 10, IO_BUF);
        for (i, f) in runs.iter().enumerate() {
            let mut r = RecReader::with_buffer(f, bytes)?;
            if let Some(x) = r.next()? {
                heap.push(std::cmp::Reverse((x, i)));
            }
            readers.push(r);
        }
        Ok(Merger {
            readers,
            heap,
            _runs: runs,
        })
    }

    #[inline]
    pub fn next(&mut self) -> Result<Option<R>> {
        let Some(mut top) = self.heap.peek_mut() else {
            return Ok(None);
        };
        let (x, i) = top.0;
        match self.readers[i].next()? {
            Some(y) => top.0 = (y, i),
            None => {
                std::collections::binary_heap::PeekMut::pop(top);
            }
        }
        Ok(Some(x))
    }
}

/// Sorts any number of records in a buffer of bounded size: a full buffer is sorted (in
/// parallel) and written as a run; [`Sorter::finish`] merges the runs, or, when nothing was
/// written, hands back the one sorted buffer without touching the disk.
pub struct Sorter<R: Rec> {
    buf: Vec<R>,
    cap: usize,
    runs: Vec<TempFile>,
    dir: PathBuf,
    tag: &'static str,
}

impl<R: Rec> Sorter<R> {
    /// A sorter whose buffer takes at most `bytes` (at least 1024 records).
    pub fn new(dir: &Path, tag: &'static str, bytes: u64) -> Sorter<R> {
        let cap = ((bytes / std::mem::size_of::<R>() as u64) as usize).max(1024);
        Sorter {
            buf: Vec::new(),
            cap,
            runs: Vec::new(),
            dir: dir.to_path_buf(),
            tag,
        }
    }

    #[inline]
    pub fn push(&mut self, r: R) -> Result<()> {
        if self.buf.len() == self.cap {
            self.spill()?;
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(self.cap.min(1 << 16));
        }
        self.buf.push(r);
        Ok(())
    }

    fn spill(&mut self) -> Result<()> {
        self.buf.par_sort_unstable();
        self.runs.push(write_run(&self.dir, self.tag, &self.buf)?);
        self.buf.clear();
        Ok(())
    }

    pub fn finish(mut self) -> Result<Sorted<R>> {
        if self.runs.is_empty() {
            self.buf.par_sort_unstable();
            return Ok(Sorted::Memory(std::mem::take(&mut self.buf).into_iter()));
        }
        if !self.buf.is_empty() {
            self.spill()?;
        }
        self.buf = Vec::new();
        Ok(Sorted::Merge(Merger::new(std::mem::take(&mut self.runs))?))
    }
}

/// The output of a [`Sorter`]: records in ascending order.
pub enum Sorted<R: Rec> {
    Memory(std::vec::IntoIter<R>),
    Merge(Merger<R>),
}

impl<R: Rec> Sorted<R> {
    #[inline]
    pub fn next(&mut self) -> Result<Option<R>> {
        match self {
            Sorted::Memory(it) => Ok(it.next()),
            Sorted::Merge(m) => m.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorter_spills_and_merges_in_order() {
        let dir = std::env::temp_dir().join(format!("firth-extsort-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s: Sorter<(u128, u32)> = Sorter::new(&dir, "t", 0);
        let mut want = Vec::new();
        let mut x = 12345u64;
        for i in 0..10_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = ((x >> 20) as u128, i);
            want.push(r);
            s.push(r).unwrap();
        }
        want.sort();
        let mut got = Vec::new();
        let mut sorted = s.finish().unwrap();
        assert!(matches!(sorted, Sorted::Merge(_)));
        while let Some(r) = sorted.next().unwrap() {
            got.push(r);
        }
        assert_eq!(got, want);
        drop(sorted);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }
}
