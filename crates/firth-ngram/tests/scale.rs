//! Corpora larger than memory and builds over many machines: the two-pass build from files,
//! compressed input, multi-pass merges under a tiny budget, shards counted separately and
//! merged, `--limit-vocab-file` against lmplz, and bad shard files refused.

mod common;
use common::*;
use firth_ngram::build::{build_files, FileSummary};
use firth_ngram::kn::{BuildOptions, Discount};
use firth_ngram::shard::{count_shard, merge_build, Vocab};
use firth_ngram::stream::Outputs;
use firth_ngram::CorpusOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// `firth ngram build` on `files`: the ARPA and binary bytes, and the summary.
fn build(files: &[PathBuf], opts: &BuildOptions, dir: &Path) -> (Vec<u8>, Vec<u8>, FileSummary) {
    written_files(dir, "single", |outputs| {
        build_files(files, CorpusOptions::default(), opts, outputs, &mut |_| {}).unwrap()
    })
}

/// Writes `text` split into `n` shard files of whole lines, in order.
fn shards(text: &str, n: usize, dir: &Path) -> Vec<PathBuf> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let per = lines.len().div_ceil(n);
    lines
        .chunks(per)
        .enumerate()
        .map(|(i, chunk)| {
            let p = dir.join(format!("part{i}.txt"));
            std::fs::write(&p, chunk.concat()).unwrap();
            p
        })
        .collect()
}

/// The shard flow: a vocabulary per shard, merged; counts per shard; merge and estimate.
fn shard_build(parts: &[PathBuf], opts: &BuildOptions, dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut vocabs = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let v = Vocab::scan(std::slice::from_ref(p), CorpusOptions::default()).unwrap();
        let path = dir.join(format!("part{i}.vocab"));
        v.write(&path).unwrap();
        vocabs.push(path);
    }
    let all = Vocab::merge(&vocabs).unwrap();
    all.write(&dir.join("all.vocab")).unwrap();
    let all = Vocab::read(&dir.join("all.vocab")).unwrap();
    let mut counts = Vec::new();
    // The shards are counted in reverse order, each in its own small budget: neither matters.
    for (i, p) in parts.iter().enumerate().rev() {
        let c = dir.join(format!("part{i}.counts"));
        count_shard(
            std::slice::from_ref(p),
            &all,
            &BuildOptions {
                memory: 64 << 10,
                ..opts.clone()
            },
            &c,
        )
        .unwrap();
        counts.push(c);
    }
    let (arpa, bin) = (dir.join("merged.arpa"), dir.join("merged.bin"));
    merge_build(
        &all,
        &counts,
        &BuildOptions {
            order: 0,
            ..opts.clone()
        },
        &Outputs {
            arpa: Some(&arpa),
            binary: Some(&bin),
            flags: 0,
        },
        &mut |_| {},
    )
    .unwrap();
    (std::fs::read(&arpa).unwrap(), std::fs::read(&bin).unwrap())
}

#[test]
fn four_shards_merged_equal_the_single_build() {
    let dir = tmpdir("scale-shards");
    let tmp = tmpdir("scale-shards-tmp");
    let toy = std::fs::read_to_string(fixture("toy.txt")).unwrap();
    let synth = synthetic(3000, 21);
    let cases = [
        (toy.as_str(), 3, vec![], None),
        (synth.as_str(), 5, vec![], None),
        (synth.as_str(), 4, vec![0, 1, 1], Some(80)),
    ];
    for (text, order, prune, vocab_limit) in cases {
        let opts = BuildOptions {
            order,
            prune,
            vocab_limit,
            discount_fallback: Some(Discount::FALLBACK),
            temp_dir: tmp.clone(),
            ..Default::default()
        };
        let whole = dir.join("whole.txt");
        std::fs::write(&whole, text).unwrap();
        let (arpa_a, bin_a, _) = build(std::slice::from_ref(&whole), &opts, &dir);
        let parts = shards(text, 4, &dir);
        assert_eq!(parts.len(), 4);
        // Later shards bring words the earlier ones lack: their ids must follow the
        // single build's first-appearance order.
        let (arpa_b, bin_b) = shard_build(&parts, &opts, &dir);
        assert!(
            arpa_a == arpa_b,
            "order {order}: merged ARPA differs from the single build"
        );
        assert!(
            bin_a == bin_b,
            "order {order}: merged binary differs from the single build"
        );
        // The same shards given to one build as four files: the same model again.
        let (arpa_c, _, _) = build(&parts, &opts, &dir);
        assert!(arpa_a == arpa_c);
    }
    // The toy trigram is also lmplz's (compared value by value in kenlm_parity.rs); here its
    // header as a spot check.
    let opts = BuildOptions {
        order: 3,
        temp_dir: tmp.clone(),
        ..Default::default()
    };
    let (arpa, _) = shard_build(&shards(&toy, 4, &dir), &opts, &dir);
    let lmplz = std::fs::read_to_string(fixture("toy.kenlm.o3.arpa")).unwrap();
    let head = |s: &str| s.lines().take(5).collect::<Vec<_>>().join("\n");
    assert_eq!(head(&String::from_utf8(arpa).unwrap()), head(&lmplz));
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "temporary files removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn vocabularies_merge_in_first_appearance_order() {
    let dir = tmpdir("scale-vocab");
    let parts = shards("b a\nc a\n\nd b e\n", 3, &dir);
    let vocabs: Vec<PathBuf> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let path = dir.join(format!("{i}.vocab"));
            Vocab::scan(std::slice::from_ref(p), CorpusOptions::default())
                .unwrap()
                .write(&path)
                .unwrap();
            path
        })
        .collect();
    let v = Vocab::merge(&vocabs).unwrap();
    // Two shards of two lines: "b a / c a" and "(empty) / d b e".
    assert_eq!(
        v.corpus.words,
        ["<unk>", "<s>", "</s>", "b", "a", "c", "d", "e"]
    );
    // a twice, b twice, </s> once per sentence (4 lines).
    assert_eq!(v.corpus.counts, [0, 0, 4, 2, 2, 1, 1, 1]);
    assert_eq!((v.corpus.sentences, v.corpus.word_tokens), (4, 7));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn compressed_input_builds_the_same_model() {
    let dir = tmpdir("scale-compressed");
    let text = std::fs::read_to_string(fixture("toy.txt")).unwrap();
    let plain = dir.join("toy.txt");
    std::fs::write(&plain, &text).unwrap();
    let gz = dir.join("toy.txt.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    let xz = dir.join("toy.txt.xz");
    let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(text.as_bytes()).unwrap();
    std::fs::write(&xz, e.finish().unwrap()).unwrap();
    // The name says nothing: zstd data under a plain name is still read as zstd.
    let zst = dir.join("toy-zstd.txt");
    std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
    let opts = BuildOptions {
        order: 3,
        temp_dir: dir.clone(),
        ..Default::default()
    };
    let (arpa, bin, s) = build(std::slice::from_ref(&plain), &opts, &dir);
    for f in [&gz, &xz, &zst] {
        let (a, b, t) = build(std::slice::from_ref(f), &opts, &dir);
        assert!(
            a == arpa && b == bin,
            "{}: not the plain text's model",
            f.display()
        );
        assert_eq!(t.corpus, s.corpus);
    }
    // Damaged compressed input is an error naming the file, for each format.
    for f in [&gz, &xz, &zst] {
        let bytes = std::fs::read(f).unwrap();
        let cut = dir.join(format!("cut-{}", f.file_name().unwrap().to_str().unwrap()));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let e = build_files(
            std::slice::from_ref(&cut),
            CorpusOptions::default(),
            &opts,
            &Outputs {
                arpa: Some(&dir.join("cut.arpa")),
                ..Default::default()
            },
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("cut-"), "{e}");
        assert!(!dir.join("cut.arpa").exists());
    }
    // An ARPA file read compressed is the same model as read plain.
    let (pa, pz) = (dir.join("m.arpa"), dir.join("m.arpa.zst"));
    std::fs::write(&pa, &arpa).unwrap();
    std::fs::write(&pz, zstd::encode_all(&arpa[..], 3).unwrap()).unwrap();
    let (ma, mz) = (
        firth_ngram::Model::load(&pa).unwrap(),
        firth_ngram::Model::load(&pz).unwrap(),
    );
    assert_eq!(ma.counts(), mz.counts());
    let score = |m: &firth_ngram::Model| {
        m.score_text(&mut text.as_bytes(), Path::new("toy"), None)
            .unwrap()
            .log10_prob
    };
    assert_eq!(score(&ma), score(&mz));
    // A shard's vocabulary and counts from compressed text equal the plain text's.
    let plain_vocab = Vocab::scan(std::slice::from_ref(&plain), CorpusOptions::default()).unwrap();
    let gz_vocab = Vocab::scan(std::slice::from_ref(&gz), CorpusOptions::default()).unwrap();
    assert_eq!(plain_vocab.corpus.words, gz_vocab.corpus.words);
    assert_eq!(plain_vocab.corpus.counts, gz_vocab.corpus.counts);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tiny_budget_merges_in_several_passes_and_gives_the_same_model() {
    let dir = tmpdir("scale-multipass");
    let tmp = tmpdir("scale-multipass-tmp");
    let text = synthetic(4000, 22);
    let file = dir.join("t.txt");
    std::fs::write(&file, &text).unwrap();
    let base = BuildOptions {
        order: 4,
        temp_dir: tmp.clone(),
        ..Default::default()
    };
    let (arpa_a, bin_a, a) = build(
        std::slice::from_ref(&file),
        &BuildOptions {
            external: Some(false),
            ..base.clone()
        },
        &dir,
    );
    assert_eq!(a.build.count_runs, 0, "a 1G budget counts in memory");
    let (arpa_b, bin_b, b) = build(
        std::slice::from_ref(&file),
        &BuildOptions {
            memory: 64 << 10,
            ..base.clone()
        },
        &dir,
    );
    // At 64 KB the merge reads at most fan_in runs at once; counting wrote more, so the merge
    // went through intermediate passes.
    let k = firth_ngram::extsort::fan_in(0);
    assert!(
        b.build.count_runs > k,
        "{} counting runs, fan-in {k}",
        b.build.count_runs
    );
    assert!(
        arpa_a == arpa_b,
        "multi-pass ARPA differs from the in-memory build"
    );
    assert!(
        bin_a == bin_b,
        "multi-pass binary differs from the in-memory build"
    );
    assert_eq!(a.build.counts, b.build.counts);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "temporary files removed"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn limit_vocab_file_matches_lmplz() {
    // lmplz -o 3 --limit_vocab_file toy.limitvocab.txt < toy.txt: the list holds the 30 most
    // frequent words and one word the corpus lacks (ignored, as lmplz ignores it).
    let dir = tmpdir("scale-limitvocab");
    for external in [None, Some(false)] {
        let (arpa, _, _) = build(
            &[fixture("toy.txt")],
            &BuildOptions {
                order: 3,
                limit_vocab_file: Some(fixture("toy.limitvocab.txt")),
                temp_dir: dir.clone(),
                external,
                ..Default::default()
            },
            &dir,
        );
        let lmplz = std::fs::read(fixture("toy.kenlm.o3.limitvocab.arpa")).unwrap();
        assert!(
            arpa == lmplz,
            "differs from lmplz's ARPA (external {external:?})"
        );
    }
    // The model sums to one over the kept words and <unk>.
    let m = firth_ngram::Model::load(&fixture("toy.kenlm.o3.limitvocab.arpa")).unwrap();
    assert_eq!(m.counts()[0], 33);
    let missing = dir.join("missing.txt");
    let e = build_files(
        &[fixture("toy.txt")],
        CorpusOptions::default(),
        &BuildOptions {
            order: 3,
            limit_vocab_file: Some(missing.clone()),
            temp_dir: dir.clone(),
            ..Default::default()
        },
        &Outputs {
            arpa: Some(&dir.join("x.arpa")),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("missing.txt"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_shard_files_are_refused_naming_the_file() {
    let dir = tmpdir("scale-bad");
    let text = synthetic(300, 23);
    let parts = shards(&text, 2, &dir);
    let v0 = Vocab::scan(&parts[..1], CorpusOptions::default()).unwrap();
    let all = Vocab::scan(&parts, CorpusOptions::default()).unwrap();
    let opts = BuildOptions {
        order: 3,
        temp_dir: dir.clone(),
        discount_fallback: Some(Discount::FALLBACK),
        ..Default::default()
    };
    let good = dir.join("good.counts");
    count_shard(&parts[..1], &all, &opts, &good).unwrap();
    let out = dir.join("m.arpa");
    let outputs = Outputs {
        arpa: Some(&out),
        ..Default::default()
    };
    let merge_err = |files: &[PathBuf], v: &Vocab| {
        merge_build(v, files, &opts, &outputs, &mut |_| {})
            .unwrap_err()
            .to_string()
    };
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, b: &[u8]| {
        let p = dir.join(name);
        std::fs::write(&p, b).unwrap();
        p
    };
    // Truncated in the middle of a record.
    let p = write("trunc.counts", &bytes[..bytes.len() - 7]);
    let e = merge_err(&[good.clone(), p], &all);
    assert!(e.contains("trunc.counts") && e.contains("truncated"), "{e}");
    // Not a count file at all.
    let p = write(
        "text.counts",
        b"the cat sat on the mat, which is not a count file\n",
    );
    let e = merge_err(&[p], &all);
    assert!(
        e.contains("text.counts") && e.contains("not a firth count file"),
        "{e}"
    );
    // Records out of order (two swapped).
    let mut swapped = bytes.clone();
    let (a, b) = (40, 40 + 24);
    let first: Vec<u8> = swapped[a..a + 24].to_vec();
    swapped.copy_within(b..b + 24, a);
    swapped[b..b + 24].copy_from_slice(&first);
    let p = write("unsorted.counts", &swapped);
    let e = merge_err(&[p], &all);
    assert!(
        e.contains("unsorted.counts") && e.contains("record 2"),
        "{e}"
    );
    // Counted with another vocabulary (shard 0's own instead of the merged one).
    let other = dir.join("other.counts");
    count_shard(&parts[..1], &v0, &opts, &other).unwrap();
    let e = merge_err(&[good.clone(), other], &all);
    assert!(
        e.contains("other.counts") && e.contains("another vocabulary"),
        "{e}"
    );
    // Counts of another order.
    let o4 = dir.join("o4.counts");
    count_shard(
        &parts[1..],
        &all,
        &BuildOptions {
            order: 4,
            ..opts.clone()
        },
        &o4,
    )
    .unwrap();
    let e = merge_err(&[good.clone(), o4], &all);
    assert!(e.contains("o4.counts") && e.contains("same --order"), "{e}");
    assert!(!out.exists(), "no output after a refused merge");
    // Bad vocabulary files.
    let vp = dir.join("all.vocab");
    all.write(&vp).unwrap();
    let vtext = std::fs::read_to_string(&vp).unwrap();
    let bad = write("garbage.vocab", b"\x00\x01binary");
    let e = Vocab::read(&bad).unwrap_err().to_string();
    assert!(
        e.contains("garbage.vocab") && e.contains("not a firth vocabulary"),
        "{e}"
    );
    let cut = write("cut.vocab", &vtext.as_bytes()[..vtext.len() / 2]);
    let e = Vocab::read(&cut).unwrap_err().to_string();
    assert!(e.contains("cut.vocab") && e.contains("truncated"), "{e}");
    let lines: Vec<&str> = vtext.lines().collect();
    let dup = format!("{}\n{}\n", lines.join("\n"), lines[5]);
    let dup = dup.replacen(
        &format!("types={}", lines.len() - 1),
        &format!("types={}", lines.len()),
        1,
    );
    let p = write("dup.vocab", dup.as_bytes());
    let e = Vocab::read(&p).unwrap_err().to_string();
    assert!(e.contains("dup.vocab") && e.contains("listed twice"), "{e}");
    let p = write("badline.vocab", vtext.replacen("\t", " ", 3).as_bytes());
    let e = Vocab::read(&p).unwrap_err().to_string();
    assert!(
        e.contains("badline.vocab:2:") && e.contains("COUNT<TAB>WORD"),
        "{e}"
    );
    // Counting a shard whose text has a word the vocabulary lacks.
    let e = count_shard(&parts, &v0, &opts, &dir.join("x.counts"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("part1.txt") && e.contains("not in the vocabulary"),
        "{e}"
    );
    assert!(!dir.join("x.counts").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
