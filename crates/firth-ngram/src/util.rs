//! Small shared helpers: atomic output files and size parsing.

use crate::{Error, Result};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `path` through a temporary file in the same directory and renames it into place, so a
/// failed or interrupted write never leaves a half-written file under the final name.
pub fn write_atomic<F>(path: &Path, f: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
{
    let wr = |source| Error::Write {
        path: path.to_path_buf(),
        err: source,
    };
    let tmp = temp_name(path);
    let file = std::fs::File::create(&tmp).map_err(wr)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let res = f(&mut w).and_then(|_| w.flush());
    drop(w);
    match res.and_then(|_| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(wr(e))
        }
    }
}

fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp.{}", std::process::id()))
}

/// Parses a memory size: `500M`, `2G`, `1.5G`, `64K`, or plain bytes; a `%` suffix means that share
/// of physical memory.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let bad = || format!("bad size {s:?}: use e.g. 500M, 2G or 40%");
    let (num, mult) = match t.chars().last().ok_or_else(bad)? {
        '%' => {
            let pct: f64 = t[..t.len() - 1].parse().map_err(|_| bad())?;
            return Ok((physical_memory() as f64 * pct / 100.0) as u64);
        }
        'k' | 'K' => (&t[..t.len() - 1], 1u64 << 10),
        'm' | 'M' => (&t[..t.len() - 1], 1 << 20),
        'g' | 'G' => (&t[..t.len() - 1], 1 << 30),
        't' | 'T' => (&t[..t.len() - 1], 1 << 40),
        'b' | 'B' => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if v.is_nan() || v <= 0.0 {
        return Err(bad());
    }
    Ok((v * mult as f64) as u64)
}

fn physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|k| k.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(4 << 30)
}

/// How a path appears in messages: `-` is standard input.
pub fn shown(path: &Path) -> PathBuf {
    if path == Path::new("-") {
        PathBuf::from("<stdin>")
    } else {
        path.to_path_buf()
    }
}

/// A vector of `n` copies of `value` whose memory the kernel may back with 2 MiB pages. Hash
/// tables are probed at random; with 4 KiB pages nearly every probe of a large table also misses
/// the TLB, which costs as much as the cache miss itself.
pub fn huge_vec<T: Clone>(n: usize, value: T) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise_huge(v.as_mut_ptr() as *mut u8, n * std::mem::size_of::<T>());
    v.resize(n, value);
    v
}

/// Asks for transparent huge pages on the 2 MiB-aligned part of `[ptr, ptr + len)` (Linux only;
/// elsewhere, or when refused, nothing changes).
pub fn advise_huge(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let start = (ptr as usize + HUGE - 1) & !(HUGE - 1);
        let end = (ptr as usize + len) & !(HUGE - 1);
        if end > start {
            // SAFETY: madvise only changes how the kernel backs pages we own; the range lies
            // inside our allocation and MADV_HUGEPAGE never changes their contents.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len);
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert!(parse_size("x").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("50%").unwrap() > 0);
    }
}
