//! The trie layout: exact (unquantized) scores equal the probing layout's and the ARPA file's to
//! the bit; quantized scores stay within the bound the bins allow; ARPA -> trie -> ARPA gives the
//! same file; damaged files are refused.

mod common;
use common::*;
use firth_ngram::kn::BuildOptions;
use firth_ngram::model::Checksum;
use firth_ngram::trie::{write_trie, Quant, TrieParts};
use firth_ngram::{AnyModel, Model, Scorer, TrieModel};
use std::path::Path;

/// Text to score: the training text, plus lines with unseen words and unseen word orders.
fn probe_text(train: &str) -> String {
    let mut t: String = train.lines().take(400).map(|l| format!("{l}\n")).collect();
    for l in train.lines().take(60) {
        let mut w: Vec<&str> = l.split_whitespace().collect();
        w.reverse();
        t.push_str(&format!("{} zzz-unseen {}\n", w.join(" "), l));
    }
    t
}

/// Every word's (log10 p bits, n-gram length) over `text`, one sentence per line.
fn scores<M: Scorer>(m: &M, text: &str) -> Vec<(u32, usize)> {
    text.lines()
        .flat_map(|l| m.full_scores(l, true, true))
        .map(|f| (f.log10_prob.to_bits(), f.ngram_len))
        .collect()
}

fn built_arpa(dir: &Path, text: &str, order: usize) -> std::path::PathBuf {
    let b = build_text(
        text,
        &BuildOptions {
            order,
            ..Default::default()
        },
    );
    let p = dir.join(format!("o{order}.arpa"));
    b.write_arpa(&p).unwrap();
    p
}

#[test]
fn unquantized_trie_scores_equal_probing_and_arpa_to_the_bit() {
    let text = synthetic(3000, 7);
    let probe = probe_text(&text);
    let dir = tmpdir("trie-exact");
    for order in [1, 2, 3, 5] {
        let ap = built_arpa(&dir, &text, order);
        let arpa = Model::load(&ap).unwrap();
        let parts = TrieParts::read_arpa(&ap).unwrap();
        let mem = TrieModel::from_parts(&parts, None).unwrap();
        let tp = dir.join(format!("o{order}.trie"));
        write_trie(&parts, None, &tp).unwrap();
        let mapped = AnyModel::load(&tp).unwrap();
        assert_eq!(mapped.layout(), "trie");
        let bp = dir.join(format!("o{order}.bin"));
        arpa.write_binary(&bp).unwrap();
        let probing = AnyModel::load(&bp).unwrap();
        assert_eq!(probing.layout(), "probing");
        let want = scores(&arpa, &probe);
        assert!(want.iter().any(|s| s.1 == order), "some full-order matches");
        assert_eq!(scores(&mem, &probe), want, "order {order}, trie in memory");
        assert_eq!(scores(&mapped, &probe), want, "order {order}, trie file");
        assert_eq!(
            scores(&probing, &probe),
            want,
            "order {order}, probing file"
        );
        assert_eq!(mem.counts(), arpa.counts());
        // Whole-text totals through the one interface.
        let t = |m: &AnyModel| {
            m.score_text(&mut probe.as_bytes(), Path::new("t"), None)
                .unwrap()
        };
        assert_eq!(t(&mapped), t(&probing));
        // Back to probing from the trie: the same model.
        assert_eq!(scores(&mem.to_probing().unwrap(), &probe), want);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn lmplz_fixture_scores_the_same_in_both_layouts() {
    for f in [
        "toy.kenlm.o3.arpa",
        "toy.kenlm.o4.prune01.arpa",
        "students.kenlm.o2.arpa",
    ] {
        let arpa = Model::load(&fixture(f)).unwrap();
        let trie =
            TrieModel::from_parts(&TrieParts::read_arpa(&fixture(f)).unwrap(), None).unwrap();
        let text = std::fs::read_to_string(fixture("toy.txt")).unwrap();
        let probe = probe_text(&text);
        assert_eq!(scores(&trie, &probe), scores(&arpa, &probe), "{f}");
    }
}

#[test]
fn arpa_trie_arpa_round_trip_is_identical() {
    let text = synthetic(1500, 3);
    let dir = tmpdir("trie-roundtrip");
    for order in [2, 4] {
        let ap = built_arpa(&dir, &text, order);
        let tp = dir.join("m.trie");
        firth_ngram::trie::arpa_to_trie(&ap, &tp, None, 0).unwrap();
        let back = dir.join("back.arpa");
        TrieModel::load(&tp, Checksum::Verify)
            .unwrap()
            .write_arpa(&back)
            .unwrap();
        assert!(
            std::fs::read(&ap).unwrap() == std::fs::read(&back).unwrap(),
            "order {order}: ARPA -> trie -> ARPA changed the file"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// The largest spread (last - first) of any equal-population bin of `values`.
fn widest_bin(mut values: Vec<f32>, bins: usize) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let mut start = 0;
    let mut w = 0f64;
    for i in 0..bins {
        let end = values.len() * (i + 1) / bins;
        if end > start {
            w = w.max(values[end - 1] as f64 - values[start] as f64);
        }
        start = end;
    }
    w
}

#[test]
fn quantized_scores_stay_within_the_bins() {
    // A value is coded as the nearest bin centre, and its own bin's centre (a mean of the bin)
    // lies inside the bin, so it moves by at most the bin's spread. A word's log10 p is one
    // probability plus backoffs of distinct orders (unigrams are exact), so it moves by at most
    // the widest probability bin plus the widest backoff bin of each middle order.
    let text = synthetic(3000, 11);
    let probe = probe_text(&text);
    let dir = tmpdir("trie-quant");
    let ap = built_arpa(&dir, &text, 4);
    let parts = TrieParts::read_arpa(&ap).unwrap();
    for (q, b) in [(8u8, 8u8), (4, 3)] {
        let mut bound = 0f64;
        let mut widest_prob = 0f64;
        for (i, d) in parts.orders.iter().enumerate() {
            widest_prob = widest_prob.max(widest_bin(d.probs.clone(), 1 << q));
            if i + 2 < 4 {
                let nz: Vec<f32> = d.backoffs.iter().copied().filter(|&x| x != 0.0).collect();
                bound += widest_bin(nz, (1 << b) - 2);
            }
        }
        bound += widest_prob;
        let exact = TrieModel::from_parts(&parts, None).unwrap();
        let quant = TrieModel::from_parts(&parts, Some(Quant::new(q, b).unwrap())).unwrap();
        let (mut sum_e, mut sum_q, mut worst) = (0f64, 0f64, 0f64);
        for l in probe.lines() {
            let e = exact.full_scores(l, true, true);
            let z = quant.full_scores(l, true, true);
            for (x, y) in e.iter().zip(&z) {
                assert_eq!(x.ngram_len, y.ngram_len);
                let d = (x.log10_prob as f64 - y.log10_prob as f64).abs();
                worst = worst.max(d);
                sum_e += x.log10_prob as f64;
                sum_q += y.log10_prob as f64;
            }
        }
        assert!(
            worst <= bound + 1e-5,
            "-q {q} -b {b}: a word moved {worst}, bound {bound}"
        );
        assert!(worst > 0.0, "quantization changes something");
        let tokens = scores(&exact, &probe).len() as f64;
        let (pe, pq) = (10f64.powf(-sum_e / tokens), 10f64.powf(-sum_q / tokens));
        if q == 8 {
            assert!((pq / pe - 1.0).abs() < 0.01, "ppl {pe} vs {pq}");
        }
        // Smaller than the exact trie.
        assert!(quant.size_bytes() < exact.size_bytes());
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn damaged_trie_files_are_refused() {
    let text = synthetic(800, 5);
    let dir = tmpdir("trie-damage");
    let ap = built_arpa(&dir, &text, 3);
    let tp = dir.join("m.trie");
    firth_ngram::trie::arpa_to_trie(&ap, &tp, Some(Quant::new(8, 8).unwrap()), 0).unwrap();
    let good = std::fs::read(&tp).unwrap();
    let err = |bytes: &[u8], c: Checksum| {
        TrieModel::from_bytes(bytes, c, Path::new("m.trie"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert!(TrieModel::from_bytes(&good, Checksum::Verify, Path::new("m.trie")).is_ok());
    let e = err(&good[..good.len() - 100], Checksum::Verify);
    assert!(e.contains("m.trie") && e.contains("truncated"), "{e}");
    let e = err(&good[..40], Checksum::Verify);
    assert!(e.contains("truncated"), "{e}");
    let mut flipped = good.clone();
    let mid = good.len() / 2;
    flipped[mid] ^= 0x10;
    let e = err(&flipped, Checksum::Verify);
    assert!(e.contains("checksum mismatch"), "{e}");
    let mut order = good.clone();
    order[16] = 99;
    let e = err(&order, Checksum::Verify);
    assert!(e.contains("impossible order"), "{e}");
    let mut magic = good.clone();
    magic[3] ^= 1;
    assert!(err(&magic, Checksum::Verify).contains("magic"));
    // Damage that the unchecked path cannot see still never reads outside the file.
    for at in (200..good.len() - 8).step_by(97) {
        let mut d = good.clone();
        d[at] ^= 0xff;
        if let Ok(m) = TrieModel::from_bytes(&d, Checksum::Skip, Path::new("m.trie")) {
            for l in text.lines().take(20) {
                let _ = m.full_scores(l, true, true);
            }
        }
    }
    // Through the loader that picks the layout, with the file named.
    std::fs::write(&tp, &good[..good.len() - 3]).unwrap();
    let e = AnyModel::load(&tp).err().unwrap().to_string();
    assert!(e.contains("m.trie") && e.contains("damaged"), "{e}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn states_keep_only_context_that_can_extend() {
    // The probing model read from ARPA and the trie mark the same n-grams as extending, so
    // their states have the same length word by word; the model built in memory has no marks
    // and keeps every matched word, so its states are never shorter; the scores agree.
    let text = synthetic(2000, 9);
    let dir = tmpdir("trie-states");
    let b = build_text(
        &text,
        &BuildOptions {
            order: 4,
            ..Default::default()
        },
    );
    let ap = dir.join("m.arpa");
    b.write_arpa(&ap).unwrap();
    let arpa = Model::load(&ap).unwrap();
    let trie = TrieModel::from_parts(&TrieParts::read_arpa(&ap).unwrap(), None).unwrap();
    let mut shorter = 0;
    for l in probe_text(&text).lines() {
        let (mut sa, mut st, mut sb) = (
            arpa.begin_state(),
            trie.begin_state(),
            b.model.begin_state(),
        );
        for w in l.split_whitespace().chain(["</s>"]) {
            let (mut oa, mut ot, mut ob) = (sa, st, sb);
            let pa = arpa.score(&sa, arpa.word_id(w), &mut oa);
            let pt = trie.score(&st, trie.word_id(w), &mut ot);
            let pb = b.model.score(&sb, b.model.word_id(w), &mut ob);
            assert_eq!(pa, pt);
            assert_eq!(pa, pb);
            assert_eq!(oa.len(), ot.len());
            assert!(oa.len() <= ob.len());
            shorter += (oa.len() < ob.len()) as usize;
            (sa, st, sb) = (oa, ot, ob);
        }
    }
    assert!(shorter > 0, "some states are minimised");
    let _ = std::fs::remove_dir_all(dir);
}
