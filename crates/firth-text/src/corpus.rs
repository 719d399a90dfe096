//! Reading corpora with errors a user can act on: the file, the line, and what is wrong.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: invalid UTF-8 (byte offset {offset} in the file); convert the file to UTF-8, e.g. with iconv")]
    Utf8 {
        path: PathBuf,
        line: usize,
        offset: usize,
    },
    #[error("{path}: the file is empty")]
    Empty { path: PathBuf },
}

/// Reads a whole UTF-8 text file. Invalid UTF-8 is an error naming the line, never silently
/// replaced, because a replaced character would quietly become a new vocabulary entry.
pub fn read_text(path: &Path) -> Result<String, TextError> {
    let bytes = std::fs::read(path).map_err(|source| TextError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(TextError::Empty {
            path: path.to_path_buf(),
        });
    }
    utf8_text(bytes, path)
}

/// The bytes of a file as text; invalid UTF-8 is [`TextError::Utf8`], naming the line and
/// byte offset of the first bad byte.
pub fn utf8_text(bytes: Vec<u8>, path: &Path) -> Result<String, TextError> {
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        TextError::Utf8 {
            path: path.to_path_buf(),
            line,
            offset,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_names_the_line() {
        let dir = std::env::temp_dir().join(format!("firth-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.txt");
        std::fs::write(&p, b"ok\nfine\nbad \xff here\n").unwrap();
        let e = read_text(&p).unwrap_err().to_string();
        assert!(e.contains("bad.txt:3: invalid UTF-8"), "{e}");
        let p2 = dir.join("empty.txt");
        std::fs::write(&p2, b"  \n").unwrap();
        assert!(read_text(&p2).unwrap_err().to_string().contains("empty"));
        assert!(read_text(&dir.join("missing"))
            .unwrap_err()
            .to_string()
            .contains("cannot read"));
    }
}
