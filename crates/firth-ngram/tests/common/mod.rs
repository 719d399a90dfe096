#![allow(dead_code)]
use firth_ngram::kn::{self, BuildOptions, Built};
use firth_ngram::{Corpus, CorpusOptions};
use std::path::{Path, PathBuf};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn build_file(name: &str, opts: &BuildOptions) -> Built {
    let c = Corpus::read(&[fixture(name)], CorpusOptions::default(), &mut |_| {}).unwrap();
    kn::build(&c, opts, &mut |_| {}).unwrap()
}

pub fn build_text(text: &str, opts: &BuildOptions) -> Built {
    let c = Corpus::from_text(text, CorpusOptions::default()).unwrap();
    kn::build(&c, opts, &mut |_| {}).unwrap()
}

/// A fresh temporary directory for one test.
pub fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("firth-ngram-test-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic pseudo-random text: a Zipfian vocabulary with bigram structure.
pub fn synthetic(lines: usize, seed: u64) -> String {
    let mut rng = firth_ngram::model::Rng::new(seed);
    let mut out = String::new();
    for _ in 0..lines {
        let len = 3 + (rng.next_u64() % 12) as usize;
        let mut prev = 0u64;
        for i in 0..len {
            let u = rng.next_f64();
            // Zipf-ish rank, mixed with the previous word so bigrams repeat.
            let rank = ((1.0 / (u + 0.01)) as u64 + prev * 7) % 300;
            prev = rank % 5;
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&format!("w{rank}"));
        }
        out.push('\n');
    }
    out
}

/// Runs a build that writes `dir/TAG.arpa` and `dir/TAG.bin` through the `Outputs` it is given,
/// and returns both files' bytes (removing the files) with the build's own result.
pub fn written_files<S>(
    dir: &Path,
    tag: &str,
    build: impl FnOnce(&firth_ngram::stream::Outputs) -> S,
) -> (Vec<u8>, Vec<u8>, S) {
    let (arpa, bin) = (
        dir.join(format!("{tag}.arpa")),
        dir.join(format!("{tag}.bin")),
    );
    let s = build(&firth_ngram::stream::Outputs {
        arpa: Some(&arpa),
        binary: Some(&bin),
        flags: 0,
    });
    let out = (
        std::fs::read(&arpa).unwrap(),
        std::fs::read(&bin).unwrap(),
        s,
    );
    std::fs::remove_file(&arpa).unwrap();
    std::fs::remove_file(&bin).unwrap();
    out
}
