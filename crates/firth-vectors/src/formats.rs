//! Vector file formats: word2vec binary and text (with a `count dim` header; gensim's
//! `load_word2vec_format` reads both), GloVe text (no header), and the firth format, which is
//! memory-mapped so large files load instantly.
//!
//! Firth format (little-endian): `b"FIRTHVEC"`, u32 version (1), u32 dim, u64 count, u64 length
//! of the word list in bytes, zero padding to byte 64, `count × dim` f32, then the words joined
//! by `\n`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::embeddings::{Embeddings, Store};
use crate::{write_atomic, VecError};

/// Output format of a vector file.
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    #[cfg_attr(feature = "clap", value(name = "bin"))]
    Word2VecBin,
    #[cfg_attr(feature = "clap", value(name = "text"))]
    Word2VecText,
    #[cfg_attr(feature = "clap", value(name = "glove"))]
    GloveText,
    Firth,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "bin" | "word2vec-bin" => Some(Format::Word2VecBin),
            "text" | "txt" | "word2vec-text" => Some(Format::Word2VecText),
            "glove" => Some(Format::GloveText),
            "firth" => Some(Format::Firth),
            _ => None,
        }
    }
}

const MAGIC: &[u8; 8] = b"FIRTHVEC";
const HEADER: usize = 64;

/// Writes `words` with rows of `data` (`words.len() × dim`) atomically.
pub fn save(
    path: &Path,
    format: Format,
    words: &[String],
    dim: usize,
    data: &[f32],
) -> Result<(), VecError> {
    if words.len() * dim != data.len() {
        return Err(VecError::Invalid(format!(
            "{} words × {dim} != {} values",
            words.len(),
            data.len()
        )));
    }
    if let Some(i) = data.iter().position(|x| !x.is_finite()) {
        return Err(VecError::Invalid(format!(
            "refusing to write {}: the vector of {:?} has a non-finite value ({}); training diverged",
            path.display(),
            words[i / dim.max(1)],
            data[i]
        )));
    }
    for w in words {
        if w.is_empty() || w.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(VecError::Invalid(format!(
                "word {w:?} cannot be written (empty or contains whitespace)"
            )));
        }
    }
    write_atomic(path, |f| {
        match format {
            Format::Word2VecBin => {
                writeln!(f, "{} {}", words.len(), dim)?;
                for (i, w) in words.iter().enumerate() {
                    f.write_all(w.as_bytes())?;
                    f.write_all(b" ")?;
                    for x in &data[i * dim..(i + 1) * dim] {
                        f.write_all(&x.to_le_bytes())?;
                    }
                    f.write_all(b"\n")?;
                }
            }
            Format::Word2VecText | Format::GloveText => {
                if format == Format::Word2VecText {
                    writeln!(f, "{} {}", words.len(), dim)?;
                }
                let mut line = String::with_capacity(dim * 10 + 32);
                for (i, w) in words.iter().enumerate() {
                    use std::fmt::Write as _;
                    line.clear();
                    line.push_str(w);
                    for x in &data[i * dim..(i + 1) * dim] {
                        let _ = write!(line, " {x:.6}");
                    }
                    line.push('\n');
                    f.write_all(line.as_bytes())?;
                }
            }
            Format::Firth => {
                let blob = words.join("\n");
                let mut h = [0u8; HEADER];
                h[..8].copy_from_slice(MAGIC);
                h[8..12].copy_from_slice(&1u32.to_le_bytes());
                h[12..16].copy_from_slice(&(dim as u32).to_le_bytes());
                h[16..24].copy_from_slice(&(words.len() as u64).to_le_bytes());
                h[24..32].copy_from_slice(&(blob.len() as u64).to_le_bytes());
                f.write_all(&h)?;
                let mut buf = Vec::with_capacity(1 << 16);
                for chunk in data.chunks(1 << 14) {
                    buf.clear();
                    for x in chunk {
                        buf.extend_from_slice(&x.to_le_bytes());
                    }
                    f.write_all(&buf)?;
                }
                f.write_all(blob.as_bytes())?;
            }
        }
        Ok(())
    })
}

/// Reads any of the four formats, detected from the content.
pub fn load(path: &Path) -> Result<Embeddings, VecError> {
    let mut f = std::fs::File::open(path).map_err(|e| VecError::io(path, e))?;
    let mut head = [0u8; 8];
    let n = f.read(&mut head).map_err(|e| VecError::io(path, e))?;
    if n == 8 && &head == MAGIC {
        return load_firth(path);
    }
    drop(f);
    let file_len = std::fs::metadata(path)
        .map_err(|e| VecError::io(path, e))?
        .len();
    let r = BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(path).map_err(|e| VecError::io(path, e))?,
    );
    read_word2vec_or_glove(path, r, file_len)
}

/// Reads word2vec binary or text, or GloVe text, from `r` (`file_len` bytes in all, which the
/// binary reader checks the header against); `path` names the input in errors.
pub fn read_word2vec_or_glove(
    path: &Path,
    mut r: impl BufRead,
    file_len: u64,
) -> Result<Embeddings, VecError> {
    let mut first = Vec::new();
    r.read_until(b'\n', &mut first)
        .map_err(|e| VecError::io(path, e))?;
    if first.is_empty() {
        return Err(VecError::format(path, 1, "empty vector file"));
    }
    let header = std::str::from_utf8(&first).ok().and_then(|s| {
        let p: Vec<&str> = s.split_whitespace().collect();
        if p.len() == 2 {
            Some((p[0].parse::<usize>().ok()?, p[1].parse::<usize>().ok()?))
        } else {
            None
        }
    });
    match header {
        None => check_duplicates(path, load_text(path, r, Some(first), None)?),
        Some((count, dim)) => {
            if dim == 0 {
                return Err(VecError::format(path, 1, "dimension 0 in header"));
            }
            // Text if the next line is a word followed by `dim` numbers; binary otherwise.
            let buf = r.fill_buf().map_err(|e| VecError::io(path, e))?;
            let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
            let is_text = std::str::from_utf8(&buf[..line_end]).is_ok_and(|s| {
                let p: Vec<&str> = s.split_whitespace().collect();
                // `p.len() - 1`, not `dim + 1`: the header's dimension may be any number.
                p.len().checked_sub(1) == Some(dim)
                    && p[1..].iter().all(|x| x.parse::<f32>().is_ok())
            });
            if is_text || count == 0 {
                return check_duplicates(path, load_text(path, r, None, Some((count, dim)))?);
            }
            // A text row with another number of values than the header declares: say so,
            // instead of reading text as binary.
            if let Ok(s) = std::str::from_utf8(&buf[..line_end]) {
                let p: Vec<&str> = s.split_whitespace().collect();
                if p.len() >= 2 && p[1..].iter().all(|x| x.parse::<f32>().is_ok()) {
                    return Err(VecError::format(
                        path,
                        2,
                        format!(
                            "the header declares {dim} dimensions but this row has {} values; fix the header `{count} {dim}`",
                            p.len() - 1
                        ),
                    ));
                }
            }
            check_duplicates(
                path,
                load_bin(path, r, count, dim, first.len() as u64, file_len)?,
            )
        }
    }
}

fn load_text(
    path: &Path,
    mut r: impl BufRead,
    first: Option<Vec<u8>>,
    header: Option<(usize, usize)>,
) -> Result<Embeddings, VecError> {
    let mut words = vec![];
    let mut data = vec![];
    let mut dim = header.map(|h| h.1);
    let mut lineno: u64 = if header.is_some() { 1 } else { 0 };
    let mut buf = first.unwrap_or_default();
    let mut pending = !buf.is_empty();
    loop {
        if !pending {
            buf.clear();
            if r.read_until(b'\n', &mut buf)
                .map_err(|e| VecError::io(path, e))?
                == 0
            {
                break;
            }
        }
        pending = false;
        lineno += 1;
        let s = std::str::from_utf8(&buf)
            .map_err(|_| VecError::format(path, lineno, "invalid UTF-8"))?;
        if !s.ends_with('\n') {
            // Every writer ends the last row with a newline; without it the file was most
            // likely cut inside the last number, which would still parse.
            return Err(VecError::format(
                path,
                lineno,
                "the last line does not end with a newline: the file is truncated? (if it is complete, add a newline at its end)",
            ));
        }
        let mut it = s.split_whitespace();
        let Some(w) = it.next() else { continue };
        let before = data.len();
        for x in it {
            let v: f32 = x
                .parse()
                .map_err(|_| VecError::format(path, lineno, format!("not a number: {x:?}")))?;
            if !v.is_finite() {
                return Err(VecError::format(
                    path,
                    lineno,
                    format!("{x:?} is not a finite number; vectors must be finite (was the model trained with too high a learning rate?)"),
                ));
            }
            data.push(v);
        }
        let got = data.len() - before;
        match dim {
            None => dim = Some(got),
            Some(d) if d != got => {
                return Err(VecError::format(
                    path,
                    lineno,
                    format!("expected {d} values, found {got}"),
                ))
            }
            _ => {}
        }
        words.push(w.to_string());
    }
    let dim = dim.unwrap_or(0);
    if let Some((count, _)) = header {
        if count != words.len() {
            return Err(VecError::format(
                path,
                lineno,
                format!(
                    "header says {count} words, file has {} (truncated or mismatched)",
                    words.len()
                ),
            ));
        }
    }
    if words.is_empty() || dim == 0 {
        return Err(VecError::format(path, lineno, "no vectors found"));
    }
    Ok(Embeddings::new(words, dim, data))
}

/// Reads `count` binary rows after a header line of `header_len` bytes. The declared sizes are
/// checked against `file_len` before anything is allocated: every row takes at least
/// `dim * 4 + 2` bytes (a one-byte word, a space and the floats).
fn load_bin(
    path: &Path,
    mut r: impl BufRead,
    count: usize,
    dim: usize,
    header_len: u64,
    file_len: u64,
) -> Result<Embeddings, VecError> {
    let row_min = (dim as u64).checked_mul(4).and_then(|b| b.checked_add(2));
    let needed = row_min.and_then(|b| b.checked_mul(count as u64));
    let body = file_len.saturating_sub(header_len);
    if !matches!(needed, Some(n) if n <= body) {
        return Err(VecError::format(
            path,
            1,
            format!(
                "the header declares {count} words of {dim} dimensions, which needs at least {} bytes, but the file has {body} after the header; the header is wrong or the file is truncated",
                needed.map_or("more than 2^64".to_string(), |n| n.to_string())
            ),
        ));
    }
    let mut words = Vec::new();
    words
        .try_reserve_exact(count)
        .map_err(|_| VecError::format(path, 1, format!("not enough memory for {count} words")))?;
    let mut data: Vec<f32> = Vec::new();
    data.try_reserve_exact(count * dim).map_err(|_| {
        VecError::format(
            path,
            1,
            format!("not enough memory for {count} × {dim} values"),
        )
    })?;
    let mut wbuf = vec![];
    let mut vbuf = vec![0u8; dim * 4];
    let mut offset = header_len;
    let at =
        |offset: u64, msg: String| VecError::format(path, 1, format!("at byte {offset}: {msg}"));
    for i in 0..count {
        wbuf.clear();
        r.read_until(b' ', &mut wbuf)
            .map_err(|e| VecError::io(path, e))?;
        if wbuf.last() != Some(&b' ') {
            return Err(at(
                offset,
                format!("truncated: the file ends in word {} of {count}", i + 1),
            ));
        }
        wbuf.pop();
        // Words may be preceded by the newline that ends the previous vector.
        let start = wbuf
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(wbuf.len());
        let w = std::str::from_utf8(&wbuf[start..]).map_err(|_| {
            at(
                offset,
                format!(
                    "word {} of {count} is not valid UTF-8; the header's count or dimension is wrong, or the file is damaged",
                    i + 1
                ),
            )
        })?;
        if w.is_empty() {
            return Err(at(
                offset,
                format!(
                    "word {} of {count} is empty; the header's count or dimension is wrong, or the file is damaged",
                    i + 1
                ),
            ));
        }
        offset += wbuf.len() as u64 + 1;
        r.read_exact(&mut vbuf).map_err(|_| {
            at(
                offset,
                format!(
                    "truncated: vector {} of {count} ({w:?}) is incomplete",
                    i + 1
                ),
            )
        })?;
        for c in vbuf.chunks_exact(4) {
            let x = f32::from_le_bytes(c.try_into().expect("4 bytes"));
            if !x.is_finite() {
                return Err(at(
                    offset,
                    format!(
                        "the vector of {w:?} (word {} of {count}) has a non-finite value {x}; vectors must be finite",
                        i + 1
                    ),
                ));
            }
            data.push(x);
        }
        offset += vbuf.len() as u64;
        words.push(w.to_string());
    }
    Ok(Embeddings::new(words, dim, data))
}

/// Refuses a vector file that lists a word twice: which of the two vectors is meant is
/// ambiguous, and queries would silently use only the first.
fn check_duplicates(path: &Path, e: Embeddings) -> Result<Embeddings, VecError> {
    if let Some((first, second)) = e.first_duplicate() {
        return Err(VecError::Invalid(format!(
            "{}: the word {:?} appears twice (entries {} and {}); remove one of them",
            path.display(),
            e.words[first],
            first + 1,
            second + 1
        )));
    }
    Ok(e)
}

fn load_firth(path: &Path) -> Result<Embeddings, VecError> {
    let f = std::fs::File::open(path).map_err(|e| VecError::io(path, e))?;
    // SAFETY: the file is mapped read-only; firth writes these files atomically (rename), so a
    // concurrent writer replaces the inode instead of modifying the mapped one.
    let map = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| VecError::io(path, e))?;
    let bad = |m: &str| VecError::format(path, 1, m.to_string());
    if map.len() < HEADER || &map[..8] != MAGIC {
        return Err(bad("not a firth vector file"));
    }
    let u32at = |o: usize| u32::from_le_bytes(map[o..o + 4].try_into().expect("4 bytes"));
    let u64at = |o: usize| u64::from_le_bytes(map[o..o + 8].try_into().expect("8 bytes"));
    if u32at(8) != 1 {
        return Err(bad("unsupported firth format version"));
    }
    let dim = u32at(12) as usize;
    let count = u64at(16) as usize;
    let blob_len = u64at(24) as usize;
    let mat = count
        .checked_mul(dim)
        .and_then(|n| n.checked_mul(4))
        .ok_or_else(|| bad("header sizes overflow"))?;
    let implied = mat
        .checked_add(blob_len)
        .and_then(|n| n.checked_add(HEADER));
    if implied != Some(map.len()) {
        return Err(bad(&format!(
            "size mismatch: header implies {} bytes, file has {} (truncated?)",
            implied.map_or("more than 2^64".to_string(), |n| n.to_string()),
            map.len()
        )));
    }
    if cfg!(target_endian = "big") {
        return Err(bad(
            "firth vector files are little-endian; this machine is not",
        ));
    }
    let blob = std::str::from_utf8(&map[HEADER + mat..])
        .map_err(|_| bad("word list is not valid UTF-8"))?;
    let words: Vec<String> = if count == 0 {
        vec![]
    } else {
        blob.split('\n').map(String::from).collect()
    };
    if words.len() != count {
        return Err(bad(&format!(
            "header says {count} words, word list has {}",
            words.len()
        )));
    }
    check_duplicates(
        path,
        Embeddings::with_store(
            words,
            dim,
            Store::Mapped {
                map,
                offset: HEADER,
                len: count * dim,
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the word2vec_text fuzz target: a header whose dimension is 2^64 - 1 made the
    /// text-or-binary check compute `dim + 1` and overflow.
    #[test]
    fn header_with_the_largest_dimension_is_an_error_not_an_overflow() {
        let mut data = b"2222224 18446744073709551615\n".to_vec();
        data.extend_from_slice(&[0; 7]);
        data.extend_from_slice(b"0000003");
        let e = read_word2vec_or_glove(Path::new("huge.vec"), &data[..], data.len() as u64)
            .err()
            .expect("refused");
        assert!(e.to_string().contains("huge.vec"), "{e}");
    }

    fn dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("firth-formats-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn round_trips() {
        let words: Vec<String> = ["the", "über", "x", "a1"].map(String::from).to_vec();
        let data: Vec<f32> = (0..12).map(|i| (i as f32 - 5.5) * 0.123456).collect();
        for (fmt, name) in [
            (Format::Word2VecBin, "v.bin"),
            (Format::Word2VecText, "v.txt"),
            (Format::GloveText, "g.txt"),
            (Format::Firth, "v.fvec"),
        ] {
            let p = dir().join(name);
            save(&p, fmt, &words, 3, &data).unwrap();
            let e = load(&p).unwrap();
            assert_eq!(e.words, words, "{name}");
            assert_eq!(e.dim, 3);
            let tol = if matches!(fmt, Format::Word2VecBin | Format::Firth) {
                0.0
            } else {
                5e-7
            };
            for (a, b) in e.matrix().iter().zip(&data) {
                assert!((a - b).abs() <= tol, "{name}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn truncated_and_mismatched_files_are_errors() {
        let words: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let data = vec![1.0f32; 8];
        let d = dir();
        let p = d.join("t.bin");
        save(&p, Format::Word2VecBin, &words, 4, &data).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 6]).unwrap();
        let e = load(&p).err().unwrap().to_string();
        assert!(e.contains("truncated"), "{e}");

        let p = d.join("t.txt");
        std::fs::write(&p, "3 2\na 1 2\nb 3 4\n").unwrap();
        let e = load(&p).err().unwrap().to_string();
        assert!(e.contains("header says 3"), "{e}");
        std::fs::write(&p, "2 2\na 1 2\nb 3\n").unwrap();
        let e = load(&p).err().unwrap().to_string();
        assert!(e.contains(":3:") && e.contains("expected 2"), "{e}");
        std::fs::write(&p, "a 1 2\nb 3 x\n").unwrap();
        let e = load(&p).err().unwrap().to_string();
        assert!(e.contains(":2:") && e.contains("not a number"), "{e}");

        let p = d.join("t.fvec");
        save(&p, Format::Firth, &words, 4, &data).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        assert!(load(&p).err().unwrap().to_string().contains("mismatch"));
        std::fs::write(&p, b"").unwrap();
        assert!(load(&p).is_err());
    }
}
