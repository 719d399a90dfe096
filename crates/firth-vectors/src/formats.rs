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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Word2VecBin,
    Word2VecText,
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
    let mut r = BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(path).map_err(|e| VecError::io(path, e))?,
    );
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
        None => load_text(path, r, Some(first), None),
        Some((count, dim)) => {
            if dim == 0 {
                return Err(VecError::format(path, 1, "dimension 0 in header"));
            }
            // Text if the next line is a word followed by `dim` numbers; binary otherwise.
            let buf = r.fill_buf().map_err(|e| VecError::io(path, e))?;
            let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
            let is_text = std::str::from_utf8(&buf[..line_end]).is_ok_and(|s| {
                let p: Vec<&str> = s.split_whitespace().collect();
                p.len() == dim + 1 && p[1..].iter().all(|x| x.parse::<f32>().is_ok())
            });
            if is_text || count == 0 {
                load_text(path, r, None, Some((count, dim)))
            } else {
                load_bin(path, r, count, dim)
            }
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
        let mut it = s.split_whitespace();
        let Some(w) = it.next() else { continue };
        let before = data.len();
        for x in it {
            let v: f32 = x
                .parse()
                .map_err(|_| VecError::format(path, lineno, format!("not a number: {x:?}")))?;
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

fn load_bin(
    path: &Path,
    mut r: impl BufRead,
    count: usize,
    dim: usize,
) -> Result<Embeddings, VecError> {
    let mut words = Vec::with_capacity(count);
    let mut data =
        vec![
            0f32;
            count
                .checked_mul(dim)
                .ok_or_else(|| VecError::format(path, 1, "header too large"))?
        ];
    let mut wbuf = vec![];
    let mut vbuf = vec![0u8; dim * 4];
    for i in 0..count {
        wbuf.clear();
        r.read_until(b' ', &mut wbuf)
            .map_err(|e| VecError::io(path, e))?;
        if wbuf.last() != Some(&b' ') {
            return Err(VecError::format(
                path,
                1,
                format!("truncated: ends in word {} of {count}", i + 1),
            ));
        }
        wbuf.pop();
        // Words may be preceded by the newline that ends the previous vector.
        let start = wbuf
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(wbuf.len());
        let w = std::str::from_utf8(&wbuf[start..])
            .map_err(|_| VecError::format(path, 1, format!("word {} is not valid UTF-8", i + 1)))?;
        if w.is_empty() {
            return Err(VecError::format(
                path,
                1,
                format!("word {} is empty", i + 1),
            ));
        }
        words.push(w.to_string());
        r.read_exact(&mut vbuf).map_err(|_| {
            VecError::format(
                path,
                1,
                format!(
                    "truncated: vector {} of {count} ({w:?}) is incomplete",
                    i + 1
                ),
            )
        })?;
        for (j, c) in vbuf.chunks_exact(4).enumerate() {
            data[i * dim + j] = f32::from_le_bytes(c.try_into().expect("4 bytes"));
        }
    }
    Ok(Embeddings::new(words, dim, data))
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
    if HEADER + mat + blob_len != map.len() {
        return Err(bad(&format!(
            "size mismatch: header implies {} bytes, file has {} (truncated?)",
            HEADER + mat + blob_len,
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
    Ok(Embeddings::with_store(
        words,
        dim,
        Store::Mapped {
            map,
            offset: HEADER,
            len: count * dim,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
