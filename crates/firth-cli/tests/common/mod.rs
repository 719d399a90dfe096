//! What the binary-driving test suites share: running `firth`, a fresh scratch directory per
//! test, and the two verdicts (succeeded; refused cleanly with a message).
#![allow(dead_code)] // each suite uses its own subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs the binary under test with `args` and no input.
pub fn firth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_firth"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("runs firth")
}

/// Runs the binary with `input` on its standard input.
pub fn firth_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_firth"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs firth");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// An empty scratch directory named after the suite (the test crate), the process and `name`.
pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "firth-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts success; returns standard output.
pub fn ok(o: Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "firth failed: {err}");
    String::from_utf8(o.stdout).unwrap()
}

/// Asserts success; returns standard output and standard error.
pub fn succeeded(o: Output) -> (String, String) {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "firth failed:\n{err}");
    (String::from_utf8_lossy(&o.stdout).to_string(), err)
}

/// Asserts a clean failure: exit code 1 (a reported error) or 2 (a refused flag), no panic
/// and no abort, and a message containing every one of `needles`. Returns the message.
pub fn refused(o: Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        matches!(o.status.code(), Some(1 | 2)),
        "expected exit 1 or 2, got {:?}; stderr:\n{err}",
        o.status
    );
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "missing {n:?} in:\n{err}");
    }
    err
}

/// Trains a tiny LM (hidden 6, 2 epochs) on the tagger fixtures' LM text into `dir/name`;
/// `extra` picks the kind (`--level char`, with `--reverse` for a backward one, or
/// `--level word`). The tagger and classifier `--char-lm` tests read these.
pub fn tiny_lm(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let text = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tag/lm.txt");
    let out = dir.join(name);
    let mut args = vec![
        "lm",
        "train",
        "--train",
        s(&text),
        "--valid",
        s(&text),
        "--out",
        s(&out),
    ];
    args.extend([
        "--hidden",
        "6",
        "--layers",
        "1",
        "--emb",
        "4",
        "--bptt",
        "8",
        "--batch",
        "2",
        "--epochs",
        "2",
        "--threads",
        "1",
        "--quiet",
    ]);
    args.extend_from_slice(extra);
    ok(firth(&args));
    out
}
