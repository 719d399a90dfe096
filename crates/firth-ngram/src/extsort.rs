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
/// All readers of one merge together get at most this much buffer, so a merge of many runs
/// stays inside a small budget.
const MERGE_BUF: usize = 32 << 20;
/// The smallest read buffer a run gets in a merge. With `m` bytes for a merge, at most
/// `m / MIN_READ_BUF` runs are merged at once ([`merge`]); more are first merged in groups.
const MIN_READ_BUF: usize = 16 << 10;

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
    /// A name for a new temporary file in `dir` (nothing is created yet); the file, once
    /// written, is removed when this is dropped.
    pub fn named(dir: &Path, tag: &str) -> TempFile {
        Self::new(dir, tag)
    }

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
    /// For files firth did not just write (shard count files): each record must be greater
    /// than the one before, checked as it is read.
    strict: Option<(u64, Option<R>)>,
    _r: PhantomData<R>,
}

impl<R: Rec> RecReader<R> {
    pub fn open(f: &TempFile) -> Result<RecReader<R>> {
        Self::with_buffer(f, IO_BUF)
    }

    fn with_buffer(f: &TempFile, bytes: usize) -> Result<RecReader<R>> {
        Self::at(&f.path, 0, bytes, false)
    }

    /// Reads the records of `path` from byte `offset` on. With `strict`, a record not greater
    /// than the one before is an error naming the file and the record.
    pub fn at(path: &Path, offset: u64, bytes: usize, strict: bool) -> Result<RecReader<R>> {
        use std::io::Seek;
        let rd = |source| Error::Read {
            path: path.to_path_buf(),
            err: source,
        };
        let mut file = std::fs::File::open(path).map_err(rd)?;
        file.seek(std::io::SeekFrom::Start(offset)).map_err(rd)?;
        Ok(RecReader {
            r: BufReader::with_capacity(bytes, file),
            path: path.to_path_buf(),
            buf: vec![0; R::SIZE],
            strict: strict.then_some((0, None)),
            _r: PhantomData,
        })
    }

    #[inline]
    pub fn next(&mut self) -> Result<Option<R>> {
        match self.r.read_exact(&mut self.buf) {
            Ok(()) => {
                let x = R::get(&self.buf);
                if let Some((i, prev)) = &mut self.strict {
                    if prev.is_some_and(|p| p >= x) {
                        return Err(Error::File {
                            path: self.path.clone(),
                            msg: format!("record {} is not greater than the one before it: not a sorted count file, or damaged; count the shard again with `firth ngram count`", *i + 1),
                        });
                    }
                    *i += 1;
                    *prev = Some(x);
                }
                Ok(Some(x))
            }
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

/// Bytes of read buffer for each of `runs` runs merged inside `memory`.
pub fn read_buffer(memory: u64, runs: usize) -> usize {
    (merge_memory(memory) / runs.max(1)).clamp(MIN_READ_BUF, IO_BUF)
}

fn merge_memory(memory: u64) -> usize {
    (memory.min(MERGE_BUF as u64) as usize).max(2 * MIN_READ_BUF)
}

/// How many runs one merge may read at once inside `memory` (at least 2).
pub fn fan_in(memory: u64) -> usize {
    (merge_memory(memory) / MIN_READ_BUF).max(2)
}

/// Merges `runs` inside `memory`: when there are more than [`fan_in`] of them, groups of that
/// many are first merged into longer runs (again, until few enough are left), so a large input
/// under a small budget never opens thousands of files or shrinks the read buffers below
/// [`MIN_READ_BUF`].
pub fn merge<R: Rec>(mut runs: Vec<TempFile>, dir: &Path, memory: u64) -> Result<Merger<R>> {
    let k = fan_in(memory);
    while runs.len() > k {
        let mut longer = Vec::with_capacity(runs.len().div_ceil(k));
        let mut rest = runs.into_iter().peekable();
        while rest.peek().is_some() {
            let group: Vec<TempFile> = rest.by_ref().take(k).collect();
            longer.push(merge_into_run::<R>(group, dir, memory)?);
        }
        runs = longer;
    }
    Merger::new(runs, memory)
}

/// One merge pass: `group` merged into one new run (the group's files are removed).
pub fn merge_into_run<R: Rec>(group: Vec<TempFile>, dir: &Path, memory: u64) -> Result<TempFile> {
    let mut m = Merger::<R>::new(group, memory)?;
    let mut w = RecWriter::<R>::create(dir, "merge")?;
    while let Some(x) = m.next()? {
        w.push(&x)?;
    }
    w.finish()
}

impl<R: Rec> Merger<R> {
    /// A merge of all `runs` at once, their read buffers sharing `memory` (see [`merge`]).
    pub fn new(runs: Vec<TempFile>, memory: u64) -> Result<Merger<R>> {
        let bytes = read_buffer(memory, runs.len());
        let readers = runs
            .iter()
            .map(|f| RecReader::with_buffer(f, bytes))
            .collect::<Result<Vec<_>>>()?;
        Self::from_readers(readers, runs)
    }

    /// A merge of open readers; `owned` are removed when the merge is dropped.
    pub fn from_readers(mut readers: Vec<RecReader<R>>, owned: Vec<TempFile>) -> Result<Merger<R>> {
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (i, r) in readers.iter_mut().enumerate() {
            if let Some(x) = r.next()? {
                heap.push(std::cmp::Reverse((x, i)));
            }
        }
        Ok(Merger {
            readers,
            heap,
            _runs: owned,
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
    bytes: u64,
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
            bytes,
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
        // The buffer is freed; its memory now holds the merge's read buffers.
        self.buf = Vec::new();
        let runs = std::mem::take(&mut self.runs);
        Ok(Sorted::Merge(merge(runs, &self.dir, self.bytes)?))
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
