//! firth's BPE against subword-nmt 0.3.8 (fixtures and commands in `tests/fixtures/bpe/`):
//! the same merges learned from Tiny Shakespeare, the same segmentation of a sample, and
//! `join_subwords` undoing `apply_line` on every line.

use firth_text::bpe::{join_subwords, Bpe};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bpe")
        .join(name)
}

fn shakespeare() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tinyshakespeare/input.txt")
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("firth-bpe-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn learns_the_merges_subword_nmt_learns() {
    let ours = Bpe::learn_files(&[&shakespeare()], 2000, 2).unwrap();
    let theirs = Bpe::load(&fixture("shakespeare.2000.codes")).unwrap();
    assert_eq!(ours.merges(), 2000);
    for (i, (a, b)) in ours.codes().iter().zip(theirs.codes()).enumerate() {
        assert_eq!(a, b, "merge {} differs", i + 1);
    }
    // Byte for byte the same codes file.
    let d = tmp("codes");
    ours.save(&d.join("codes")).unwrap();
    assert_eq!(
        read(&d.join("codes")),
        read(&fixture("shakespeare.2000.codes"))
    );
}

#[test]
fn applies_like_subword_nmt() {
    let bpe = Bpe::load(&fixture("shakespeare.2000.codes")).unwrap();
    let input = read(&fixture("sample.txt"));
    let expected = read(&fixture("sample.2000.bpe"));
    let ours: Vec<String> = input.lines().map(|l| bpe.apply_line(l)).collect();
    let theirs: Vec<&str> = expected.lines().collect();
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a, b, "sample.txt:{}", i + 1);
    }
    // apply_words gives the same units as the line.
    let first: Vec<&str> = input.lines().next().unwrap().split(' ').collect();
    assert_eq!(bpe.apply_words(&first).join(" "), theirs[0]);
}

#[test]
fn join_undoes_apply_on_every_line() {
    let bpe = Bpe::load(&fixture("shakespeare.2000.codes")).unwrap();
    let mut n = 0;
    for text in [read(&shakespeare()), read(&fixture("sample.txt"))] {
        for line in text.lines() {
            let applied = bpe.apply_line(line);
            assert_eq!(join_subwords(&applied), line);
            n += 1;
        }
    }
    assert!(n > 40_000);
    // Whitespace is kept exactly (subword-nmt would collapse the double space).
    let odd = "  two  spaces\tand a tab  ";
    assert_eq!(join_subwords(&bpe.apply_line(odd)), odd);
}

#[test]
fn several_files_learn_one_joint_table() {
    let text = read(&shakespeare());
    let lines: Vec<&str> = text.lines().collect();
    let d = tmp("joint");
    let (a, b) = (d.join("a.txt"), d.join("b.txt"));
    std::fs::write(&a, lines[..20_000].join("\n") + "\n").unwrap();
    std::fs::write(&b, lines[20_000..].join("\n") + "\n").unwrap();
    let joint = Bpe::learn_files(&[&a, &b], 500, 2).unwrap();
    let whole = Bpe::learn_files(&[&shakespeare()], 500, 2).unwrap();
    assert_eq!(joint, whole);
    let e = Bpe::learn_files(&[&a, &d.join("missing.txt")], 10, 2).unwrap_err();
    assert!(e.to_string().contains("missing.txt"), "{e}");
    std::fs::write(&b, b"fine\nbad \xfe\n").unwrap();
    let e = Bpe::learn_files(&[&a, &b], 10, 2).unwrap_err();
    assert!(e.to_string().contains("b.txt:2: invalid UTF-8"), "{e}");
}
