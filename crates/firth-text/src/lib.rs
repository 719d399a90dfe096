//! Text plumbing shared by every firth model: vocabularies, tokenizers and corpus readers
//! that report bad input by file and line.

pub mod bpe;
pub mod conll;
pub mod corpus;
pub mod sentiment;
pub mod tokenize;
pub mod vocab;

pub use corpus::{read_text, TextError};
pub use vocab::{Level, Vocab, EOS, UNK};

use std::path::Path;

/// The name a file or run directory goes by in tables, chart legends and titles: its last
/// component, without the extension for files, so `runs/lstm` and `runs/lstm.safetensors`
/// read the same.
pub fn file_label(path: &Path) -> String {
    let p = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.with_extension("")
    };
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

/// Peak resident set size of this process in bytes (Linux `VmHWM`), 0 where unknown. It lives
/// here, at the bottom of the crate graph, so every crate's run summaries report memory alike.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|k| k.parse::<u64>().ok())
                    .map(|k| k * 1024)
            })
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn file_label_drops_the_extension_of_files_only() {
        let dir = std::env::temp_dir().join(format!("firth-label.v{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A directory keeps its dots; a file loses its extension.
        assert_eq!(
            file_label(&dir),
            format!("firth-label.v{}", std::process::id())
        );
        assert_eq!(file_label(Path::new("runs/lstm.safetensors")), "lstm");
        assert_eq!(file_label(Path::new("/")), "model");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn peak_rss_is_known_on_linux() {
        if cfg!(target_os = "linux") {
            // At least the test binary itself is resident.
            assert!(peak_rss_bytes() > 1 << 20);
        }
    }
}
