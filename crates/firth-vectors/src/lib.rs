//! Word vectors: word2vec (skip-gram, CBOW; negative sampling and hierarchical softmax) and
//! GloVe, the word2vec/GloVe/firth file formats, similarity and analogy queries, and evaluation
//! that reproduces gensim's figures.
//!
//! Everything streams its corpus: vocabulary counting and training read the file in blocks, and
//! each training thread reads its own byte slice of the file (Hogwild, as word2vec C does).

pub mod embeddings;
pub mod eval;
pub mod formats;
pub mod glove;
pub mod hogwild;
pub mod huffman;
pub mod pipeline;
pub mod quantized;
pub mod simd;
pub mod tokens;
pub mod word2vec;

use std::path::{Path, PathBuf};

pub use embeddings::Embeddings;
pub use tokens::{CountStats, CountedVocab};

/// Errors with the file (and line, where there is one) they concern.
#[derive(Debug, thiserror::Error)]
pub enum VecError {
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}: the corpus has no words")]
    EmptyCorpus(PathBuf),
    #[error("{path}: vocabulary is empty after min-count {min_count} ({tokens} tokens read); lower --min-count")]
    EmptyVocab {
        path: PathBuf,
        min_count: u64,
        tokens: u64,
    },
    #[error("{path}:{line}: {msg}")]
    Format {
        path: PathBuf,
        line: u64,
        msg: String,
    },
    #[error("{0}")]
    Invalid(String),
    /// The caller's stop flag ended training early (a Python Ctrl-C); nothing was written.
    #[error("stopped before training finished; nothing was written")]
    Stopped,
}

impl VecError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        VecError::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
    pub fn format(path: &Path, line: u64, msg: impl Into<String>) -> Self {
        VecError::Format {
            path: path.to_path_buf(),
            line,
            msg: msg.into(),
        }
    }
}

/// Writes a file atomically: `write` fills a temporary file next to `path`, which is then
/// renamed over `path`, so readers never see a half-written file.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), VecError> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| {
        let f = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        write(&mut w)?;
        w.flush()?;
        w.get_ref().sync_all()?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(VecError::io(path, e));
    }
    std::fs::rename(&tmp, path).map_err(|e| VecError::io(path, e))
}
