//! Opening text input: plain, gzip, xz or zstd, told apart by their first bytes (not by the file
//! name, so `corpus.txt` that is really gzip, or standard input from `zcat`-less pipelines, read
//! the same); and reading it line by line with file and line numbers for errors.
//!
//! A build reads its input twice (a vocabulary pass, then counting), so standard input, which
//! cannot be re-read, is copied to a spool file in the temporary directory as it goes by during
//! the first pass (still compressed, if it was) and read from there the second time.

use crate::util::shown;
use crate::{Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

const BUF: usize = 1 << 20;

/// The compression of a stream, from its magic bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// Recognises gzip (`1f 8b`), xz (`fd 37 7a 58 5a 00`) and zstd (`28 b5 2f fd`).
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) {
            Compression::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Where `-` (standard input) is read from.
#[derive(Clone, Debug, Default)]
pub enum Stdin {
    /// Standard input itself.
    #[default]
    Direct,
    /// Standard input, copying every byte read to this file (the first pass of a build).
    Spool(PathBuf),
    /// The spool file written by an earlier pass.
    From(PathBuf),
}

/// Copies what it reads to a file.
struct Tee<R> {
    inner: R,
    copy: std::fs::File,
    path: PathBuf,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n]).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot copy standard input to {} for the second pass: {e}; give the corpus as a file, or free space in --temp-dir",
                    self.path.display()
                ),
            )
        })?;
        Ok(n)
    }
}

/// Opens `path` (`-` as given by `stdin`) for reading, decompressing gzip, xz and zstd.
pub fn open(path: &Path, stdin: &Stdin) -> Result<Box<dyn BufRead>> {
    let rd = |source| Error::Read {
        path: shown(path),
        err: source,
    };
    let mut raw: Box<dyn Read> = if path == Path::new("-") {
        match stdin {
            Stdin::Direct => Box::new(std::io::stdin().lock()),
            Stdin::Spool(to) => Box::new(Tee {
                inner: std::io::stdin().lock(),
                copy: std::fs::File::create(to).map_err(|source| Error::Write {
                    path: to.clone(),
                    err: source,
                })?,
                path: to.clone(),
            }),
            Stdin::From(from) => Box::new(std::fs::File::open(from).map_err(rd)?),
        }
    } else {
        Box::new(std::fs::File::open(path).map_err(rd)?)
    };
    // Six bytes decide; an input shorter than that is plain text.
    let mut head = Vec::with_capacity(6);
    (&mut raw).take(6).read_to_end(&mut head).map_err(rd)?;
    let c = Compression::detect(&head);
    wrap(c, Box::new(std::io::Cursor::new(head).chain(raw)), path)
}

fn wrap(c: Compression, r: Box<dyn Read>, path: &Path) -> Result<Box<dyn BufRead>> {
    Ok(match c {
        Compression::None => Box::new(BufReader::with_capacity(BUF, r)),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            BUF,
            flate2::read::MultiGzDecoder::new(BufReader::with_capacity(BUF, r)),
        )),
        Compression::Xz => Box::new(BufReader::with_capacity(
            BUF,
            liblzma::read::XzDecoder::new_multi_decoder(r),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            BUF,
            zstd::stream::read::Decoder::new(r).map_err(|source| Error::Read {
                path: shown(path),
                err: source,
            })?,
        )),
    })
}

/// One line as [`for_each_line`] hands it over.
pub struct Line<'a> {
    pub text: &'a str,
    /// The file, as shown in messages.
    pub path: &'a Path,
    /// 1-based line number within the file.
    pub number: u64,
    /// The input ended without a newline after this line, in the last file. lmplz gives such
    /// a line no `</s>`; firth does the same, for parity.
    pub unterminated_last: bool,
}

/// Reads `paths` in order, line by line, as UTF-8 (invalid UTF-8 is an error naming the file
/// and line). `progress` gets the bytes read so far (decompressed), every few megabytes.
pub fn for_each_line(
    paths: &[PathBuf],
    stdin: &Stdin,
    progress: &mut dyn FnMut(u64),
    f: &mut dyn FnMut(Line<'_>) -> Result<()>,
) -> Result<u64> {
    let mut bytes = 0u64;
    let mut last_report = 0u64;
    let mut buf = Vec::new();
    for p in paths {
        let shown_path = shown(p);
        let mut r = open(p, stdin)?;
        let mut number = 0u64;
        loop {
            buf.clear();
            let n = r
                .read_until(b'\n', &mut buf)
                .map_err(|source| Error::Read {
                    path: shown_path.clone(),
                    err: source,
                })?;
            if n == 0 {
                break;
            }
            number += 1;
            bytes += n as u64;
            let text = std::str::from_utf8(&buf).map_err(|e| Error::Format {
                path: shown_path.clone(),
                line: number,
                msg: format!(
                    "invalid UTF-8 at byte {} of the line; convert the file to UTF-8 (e.g. with iconv) or remove binary data",
                    e.valid_up_to() + 1
                ),
            })?;
            let unterminated_last = !buf.ends_with(b"\n") && p == paths.last().unwrap();
            f(Line {
                text,
                path: &shown_path,
                number,
                unterminated_last,
            })?;
            if bytes - last_report > (8 << 20) {
                last_report = bytes;
                progress(bytes);
            }
        }
    }
    progress(bytes);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(path: &Path) -> String {
        let mut s = String::new();
        open(path, &Stdin::Direct)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn gzip_xz_zstd_and_plain_read_the_same() {
        let dir = std::env::temp_dir().join(format!("firth-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "the cat sat\nthe dog ran\n".repeat(100);
        let plain = dir.join("a.txt");
        std::fs::write(&plain, &text).unwrap();
        let gz = dir.join("a.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let xz = dir.join("a.xz");
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(text.as_bytes()).unwrap();
        std::fs::write(&xz, e.finish().unwrap()).unwrap();
        let zst = dir.join("a.zst");
        std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
        for p in [&plain, &gz, &xz, &zst] {
            assert_eq!(read_all(p), text, "{}", p.display());
        }
        // Short files are plain text.
        let short = dir.join("short");
        std::fs::write(&short, "a\n").unwrap();
        assert_eq!(read_all(&short), "a\n");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn magic_bytes() {
        assert_eq!(Compression::detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(Compression::detect(b"\xfd7zXZ\x00\x00"), Compression::Xz);
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::detect(b"the cat"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
    }
}
