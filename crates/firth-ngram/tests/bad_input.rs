//! Bad input gives an error naming the file (and line), never a panic, and leaves no output.
mod common;
use common::*;
use firth_ngram::kn::BuildOptions;
use firth_ngram::{Corpus, CorpusOptions, Model};
use std::path::Path;

fn read_err(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    Corpus::read(&[p], CorpusOptions::default(), &mut |_| {})
        .unwrap_err()
        .to_string()
}

fn model_err(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    match Model::load(&p) {
        Ok(_) => panic!("{name} loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn corpus_errors_name_file_and_line() {
    let d = tmpdir("badcorpus");
    let e = read_err(&d, "empty.txt", b"");
    assert!(e.contains("empty.txt") && e.contains("no words"), "{e}");
    let e = read_err(&d, "blank.txt", b"\n  \n\t\n");
    assert!(e.contains("blank.txt") && e.contains("no words"), "{e}");
    let e = read_err(&d, "bad.txt", b"ok line\nfine\nbad \xff here\n");
    assert!(e.contains("bad.txt:3: invalid UTF-8"), "{e}");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let e = read_err(&d, "garbage.bin", &garbage);
    assert!(e.contains("garbage.bin:") && e.contains("UTF-8"), "{e}");
    let e = read_err(&d, "unk.txt", b"a b\nc <unk> d\n");
    assert!(
        e.contains("unk.txt:2:") && e.contains("--skip-symbols"),
        "{e}"
    );
    let e = Corpus::read(
        &[d.join("missing.txt")],
        CorpusOptions::default(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("cannot read") && e.contains("missing.txt"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn one_huge_line_is_one_sentence() {
    let mut line = String::with_capacity(8 << 20);
    let mut i = 0u64;
    while line.len() < (8 << 20) {
        line.push_str(&format!("w{} ", i % 1000));
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 1;
    }
    line.push('\n');
    let d = tmpdir("hugeline");
    let p = d.join("huge.txt");
    std::fs::write(&p, &line).unwrap();
    let c = Corpus::read(&[p], CorpusOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(c.sentences, 1);
    let b = firth_ngram::kn::build(
        &c,
        &BuildOptions {
            order: 3,
            discount_fallback: Some(firth_ngram::Discount::FALLBACK),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap();
    assert!(b.model.counts()[2] > 1000);
    let _ = std::fs::remove_dir_all(d);
}

fn good_arpa() -> String {
    let b = build_text(
        &synthetic(500, 9),
        &BuildOptions {
            order: 3,
            discount_fallback: Some(firth_ngram::Discount::FALLBACK),
            ..Default::default()
        },
    );
    let mut out = Vec::new();
    b.write_arpa_to(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn broken_arpa_files() {
    let d = tmpdir("badarpa");
    let good = good_arpa();
    assert!(Model::load(&{
        let p = d.join("good.arpa");
        std::fs::write(&p, &good).unwrap();
        p
    })
    .is_ok());
    // Truncated in the middle of the trigrams.
    let cut = &good[..good[..good.len() * 3 / 4].rfind('\n').unwrap() + 1];
    let e = model_err(&d, "cut.arpa", cut.as_bytes());
    assert!(e.contains("cut.arpa:") && e.contains("truncated"), "{e}");
    // Cut inside a line: that line is reported.
    let e = model_err(&d, "cut2.arpa", &good.as_bytes()[..good.len() * 3 / 4 - 3]);
    assert!(e.contains("cut2.arpa:"), "{e}");
    // Wrong count in the header.
    let lines: Vec<&str> = good.lines().collect();
    let n2 = lines.iter().find(|l| l.starts_with("ngram 2=")).unwrap();
    let c2: u64 = n2[8..].parse().unwrap();
    let wrong = good.replace(n2, &format!("ngram 2={}", c2 + 1));
    let e = model_err(&d, "count.arpa", wrong.as_bytes());
    assert!(e.contains("count.arpa:") && e.contains("declares"), "{e}");
    let wrong = good.replace(n2, &format!("ngram 2={}", c2 - 1));
    let e = model_err(&d, "count2.arpa", wrong.as_bytes());
    assert!(e.contains("more entries than"), "{e}");
    // A missing section.
    let start = good.find("\\2-grams:").unwrap();
    let end = good.find("\\3-grams:").unwrap();
    let missing = format!("{}{}", &good[..start], &good[end..]);
    let e = model_err(&d, "missing.arpa", missing.as_bytes());
    assert!(
        e.contains("missing.arpa:") && e.contains("\\2-grams:"),
        "{e}"
    );
    // No \end\.
    let e = model_err(&d, "noend.arpa", good.replace("\\end\\", "").as_bytes());
    assert!(e.contains("noend.arpa:"), "{e}");
    // A word in a bigram that is not a unigram.
    let first_bigram = lines[lines.iter().position(|l| *l == "\\2-grams:").unwrap() + 1];
    let (p, rest) = first_bigram.split_once('\t').unwrap();
    let (_, tail) = rest.split_once(' ').unwrap();
    let bad = good.replacen(first_bigram, &format!("{p}\tnotaword {tail}"), 1);
    let e = model_err(&d, "word.arpa", bad.as_bytes());
    assert!(e.contains("word.arpa:") && e.contains("notaword"), "{e}");
    // A bad number.
    let bad = good.replacen(first_bigram, &first_bigram.replacen('-', "x", 1), 1);
    let e = model_err(&d, "num.arpa", bad.as_bytes());
    assert!(e.contains("num.arpa:") && e.contains("probability"), "{e}");
    // Not an ARPA file at all: empty, text, binary garbage.
    let e = model_err(&d, "empty.arpa", b"");
    assert!(e.contains("empty.arpa") && e.contains("\\data\\"), "{e}");
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    let e = model_err(&d, "garbage", &garbage);
    assert!(e.contains("garbage"), "{e}");
    let e = Model::load(&d.join("nope.arpa")).err().unwrap().to_string();
    assert!(e.contains("cannot read") && e.contains("nope.arpa"), "{e}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn broken_binary_files() {
    let d = tmpdir("badbin");
    let b = build_text(
        &synthetic(500, 10),
        &BuildOptions {
            order: 3,
            discount_fallback: Some(firth_ngram::Discount::FALLBACK),
            ..Default::default()
        },
    );
    let p = d.join("m.bin");
    b.model.write_binary(&p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    for cut in [8, 60, bytes.len() / 2, bytes.len() - 1] {
        let e = model_err(&d, "cut.bin", &bytes[..cut]);
        assert!(e.contains("cut.bin"), "{e}");
    }
    let mut bad = bytes.clone();
    bad[16] = 99; // order
    let e = model_err(&d, "order.bin", &bad);
    assert!(e.contains("order.bin") && e.contains("damaged"), "{e}");
    // Found by the ngram_binary fuzz target: a string length near 2^64 overflowed the
    // padding arithmetic (a panic) instead of being reported.
    let mut bad = bytes.clone();
    bad[40..48].copy_from_slice(&(u64::MAX - 6).to_le_bytes());
    let e = model_err(&d, "strings.bin", &bad);
    assert!(e.contains("strings.bin") && e.contains("damaged"), "{e}");
    let mut bad = bytes.clone();
    bad[12] = 7; // version
    let e = model_err(&d, "version.bin", &bad);
    assert!(e.contains("version"), "{e}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn failed_writes_leave_nothing_behind() {
    let d = tmpdir("atomic");
    let p = d.join("out.arpa");
    let e = firth_ngram::util::write_atomic(&p, |w| {
        use std::io::Write;
        w.write_all(b"partial")?;
        Err(std::io::Error::other("disk full"))
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("out.arpa") && e.contains("disk full"), "{e}");
    assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
    // An existing file survives a failed rewrite.
    std::fs::write(&p, "old").unwrap();
    let _ = firth_ngram::util::write_atomic(&p, |_| Err(std::io::Error::other("no")));
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
    let b = build_text(
        "a b c\n",
        &BuildOptions {
            order: 2,
            discount_fallback: Some(firth_ngram::Discount::FALLBACK),
            ..Default::default()
        },
    );
    let e = b
        .write_arpa(&d.join("no/such/dir/m.arpa"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot write") && e.contains("m.arpa"), "{e}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn every_flipped_bit_and_every_cut_is_reported_as_damage() {
    let d = tmpdir("flips");
    let b = build_text(
        &synthetic(60, 5),
        &BuildOptions {
            order: 3,
            discount_fallback: Some(firth_ngram::Discount::FALLBACK),
            ..Default::default()
        },
    );
    let p = d.join("m.bin");
    b.model.write_binary(&p).unwrap();
    let good = std::fs::read(&p).unwrap();
    let reference = Model::load(&p).unwrap();
    assert!(!reference.lacks_checksum());
    // Every header and trailer byte, and a spread of bytes in the tables and vocabulary.
    let n = good.len();
    for i in (0..n).filter(|&i| i < 128 || i % 13 == 0 || i >= n - 8) {
        let mut bad = good.clone();
        bad[i] ^= 1 << (i % 8);
        let e = model_err(&d, "flip.bin", &bad);
        assert!(
            e.contains("flip.bin") && e.contains("damaged"),
            "byte {i}: {e}"
        );
    }
    for cut in (0..n).step_by(29) {
        let e = model_err(&d, "cut.bin", &good[..cut]);
        assert!(e.contains("cut.bin"), "cut at {cut}: {e}");
        if cut >= 8 {
            assert!(e.contains("damaged"), "cut at {cut}: {e}");
        }
    }
    // The fast path skips only the checksum: a flip in a table loads, a cut does not.
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 0x10;
    std::fs::write(&p, &bad).unwrap();
    assert!(Model::load_with(&p, firth_ngram::model::Checksum::Skip).is_ok());
    std::fs::write(&p, &good[..good.len() - 8]).unwrap();
    assert!(Model::load_with(&p, firth_ngram::model::Checksum::Skip).is_err());
    // A background check loads the flipped file at once and reports the damage when asked,
    // on every call; a sound file passes.
    std::fs::write(&p, &bad).unwrap();
    let m = Model::load_with(&p, firth_ngram::model::Checksum::Background).unwrap();
    for _ in 0..2 {
        let e = m.verified().unwrap_err().to_string();
        assert!(e.contains("m.bin") && e.contains("damaged"), "{e}");
    }
    std::fs::write(&p, &good).unwrap();
    let m = Model::load_with(&p, firth_ngram::model::Checksum::Background).unwrap();
    assert!(m.verified().is_ok() && m.verified().is_ok());
    assert!(Model::load(&p).unwrap().verified().is_ok());
    let _ = std::fs::remove_dir_all(d);
}
