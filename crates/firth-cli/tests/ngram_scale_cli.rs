//! `firth ngram` at scale through the binary: standard input read twice (spooled), and the
//! shard commands `vocab`, `count`, `merge` giving the single build's ARPA file.

mod common;

use common::{firth, firth_stdin, refused, s, succeeded, tmp};
use std::path::{Path, PathBuf};

/// Text with a vocabulary that keeps growing, so later shards bring new words.
fn text(lines: usize) -> String {
    let mut x = 7u64;
    let mut t = String::new();
    for i in 0..lines {
        for _ in 0..8 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let w = (x >> 33) % (20 + i as u64 / 4);
            t.push_str(&format!("w{w} "));
        }
        t.push('\n');
    }
    t
}

fn build_arpa(d: &Path, input: &Path) -> Vec<u8> {
    let out = d.join("single.arpa");
    succeeded(firth(&[
        "ngram",
        "build",
        "-o",
        "4",
        "-T",
        s(d),
        "--arpa",
        s(&out),
        s(input),
        "--discount-fallback",
    ]));
    std::fs::read(out).unwrap()
}

#[test]
fn standard_input_is_spooled_for_the_second_pass() {
    let d = tmp("stdin");
    let t = text(400);
    let file = d.join("t.txt");
    std::fs::write(&file, &t).unwrap();
    let want = build_arpa(&d, &file);
    let tmpdir = d.join("tmp");
    std::fs::create_dir(&tmpdir).unwrap();
    let out = d.join("stdin.arpa");
    succeeded(firth_stdin(
        &[
            "ngram",
            "build",
            "-o",
            "4",
            "-T",
            s(&tmpdir),
            "--arpa",
            s(&out),
            "--discount-fallback",
        ],
        t.as_bytes(),
    ));
    assert!(std::fs::read(&out).unwrap() == want, "stdin build differs");
    assert_eq!(
        std::fs::read_dir(&tmpdir).unwrap().count(),
        0,
        "spool removed"
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn shard_commands_give_the_single_build() {
    let d = tmp("shards");
    let t = text(600);
    let file = d.join("all.txt");
    std::fs::write(&file, &t).unwrap();
    let want = build_arpa(&d, &file);
    let lines: Vec<&str> = t.split_inclusive('\n').collect();
    let parts: Vec<PathBuf> = lines
        .chunks(150)
        .enumerate()
        .map(|(i, c)| {
            let p = d.join(format!("shard.{i}"));
            std::fs::write(&p, c.concat()).unwrap();
            p
        })
        .collect();
    let mut vocabs = Vec::new();
    for p in &parts {
        let v = PathBuf::from(format!("{}.vocab", p.display()));
        succeeded(firth(&["ngram", "vocab", "--out", s(&v), s(p)]));
        vocabs.push(v);
    }
    let all = d.join("all.vocab");
    let mut args = vec!["ngram", "vocab", "--merge", "--out", s(&all)];
    args.extend(vocabs.iter().map(|v| s(v)));
    succeeded(firth(&args));
    let mut counts = Vec::new();
    for p in &parts {
        let c = PathBuf::from(format!("{}.counts", p.display()));
        succeeded(firth(&[
            "ngram",
            "count",
            "-o",
            "4",
            "-S",
            "100K",
            "-T",
            s(&d),
            "--vocab",
            s(&all),
            "--out",
            s(&c),
            s(p),
        ]));
        counts.push(c);
    }
    let merged = d.join("merged.arpa");
    let mut args = vec![
        "ngram",
        "merge",
        "-T",
        s(&d),
        "--vocab",
        s(&all),
        "--arpa",
        s(&merged),
        "--discount-fallback",
        "--",
    ];
    args.extend(counts.iter().map(|c| s(c)));
    succeeded(firth(&args));
    assert!(
        std::fs::read(&merged).unwrap() == want,
        "merged ARPA differs"
    );
    // A vocabulary given out of shard order is another numbering: its counts are refused.
    let wrong = d.join("wrong.vocab");
    let mut args = vec!["ngram", "vocab", "--merge", "--out", s(&wrong)];
    args.extend(vocabs.iter().rev().map(|v| s(v)));
    succeeded(firth(&args));
    let mut args = vec![
        "ngram",
        "merge",
        "--vocab",
        s(&wrong),
        "--arpa",
        s(&merged),
        "--",
    ];
    args.extend(counts.iter().map(|c| s(c)));
    refused(firth(&args), &["shard.0.counts", "another vocabulary"]);
    // A text file given as a count file.
    refused(
        firth(&[
            "ngram",
            "merge",
            "--vocab",
            s(&all),
            "--arpa",
            s(&merged),
            s(&parts[0]),
        ]),
        &["shard.0", "not a firth count file"],
    );
    let _ = std::fs::remove_dir_all(d);
}
