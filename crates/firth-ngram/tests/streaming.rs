//! The external-memory build (`--memory` too small for the model) writes byte-identical ARPA and
//! binary files to the in-memory build, and leaves no temporary files behind.

mod common;
use common::*;
use firth_ngram::kn::{BuildOptions, Discount};
use firth_ngram::stream::{Outputs, Summary};
use firth_ngram::{Corpus, CorpusOptions};
use std::path::Path;

fn build_files(
    text: &str,
    opts: &BuildOptions,
    dir: &Path,
    tag: &str,
) -> (Vec<u8>, Vec<u8>, Summary) {
    let c = Corpus::from_text(text, CorpusOptions::default()).unwrap();
    written_files(dir, tag, |outputs| {
        firth_ngram::build::build_to(c, opts, outputs, &mut |_| {}).unwrap()
    })
}

/// Builds `text` in memory and streamed with a budget so small that counting and every sort
/// spill many runs; the files must be the same bytes.
fn same_both_ways(text: &str, opts: BuildOptions, tag: &str) {
    let out = tmpdir(&format!("stream-out-{tag}"));
    let tmp = tmpdir(&format!("stream-tmp-{tag}"));
    let mem = BuildOptions {
        external: Some(false),
        ..opts.clone()
    };
    let ext = BuildOptions {
        external: None,
        memory: 64 << 10,
        temp_dir: tmp.clone(),
        ..opts
    };
    let (arpa_a, bin_a, sa) = build_files(text, &mem, &out, "mem");
    let (arpa_b, bin_b, sb) = build_files(text, &ext, &out, "ext");
    assert!(!sa.external);
    assert!(sb.external, "a 64 KB budget must stream");
    assert!(sb.count_runs > 1, "a 64 KB budget must spill counting runs");
    assert_eq!(sa.counts, sb.counts);
    assert_eq!(sa.stats, sb.stats);
    assert_eq!(sa.discounts, sb.discounts);
    assert!(
        arpa_a == arpa_b,
        "{tag}: streamed ARPA differs from the in-memory one"
    );
    assert!(
        bin_a == bin_b,
        "{tag}: streamed binary differs from the in-memory one"
    );
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "temporary files are removed"
    );
    // The in-memory build through `build_to` is the same as `build` + `write_arpa`.
    let built = build_text(text, &mem);
    let p = out.join("direct.arpa");
    built.write_arpa(&p).unwrap();
    assert!(std::fs::read(&p).unwrap() == arpa_a);
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn streamed_orders_2_to_5_are_byte_identical() {
    let text = synthetic(3000, 11);
    for order in 2..=5 {
        same_both_ways(
            &text,
            BuildOptions {
                order,
                ..Default::default()
            },
            &format!("o{order}"),
        );
    }
}

#[test]
fn streamed_pruned_and_limited_are_byte_identical() {
    let text = synthetic(3000, 12);
    same_both_ways(
        &text,
        BuildOptions {
            order: 4,
            prune: vec![0, 1, 2],
            discount_fallback: Some(Discount::FALLBACK),
            ..Default::default()
        },
        "prune",
    );
    same_both_ways(
        &text,
        BuildOptions {
            order: 3,
            vocab_limit: Some(100),
            prune: vec![0, 0, 1],
            discount_fallback: Some(Discount::FALLBACK),
            ..Default::default()
        },
        "vocab",
    );
}

#[test]
fn streamed_toy_corpus_is_byte_identical() {
    let text = std::fs::read_to_string(fixture("toy.txt")).unwrap();
    same_both_ways(
        &text.repeat(8),
        BuildOptions {
            order: 3,
            discount_fallback: Some(Discount::FALLBACK),
            ..Default::default()
        },
        "toy",
    );
}

#[test]
fn streamed_build_reports_bad_discounts() {
    // Repeated text has no n-grams of adjusted count 2: the same error as in memory.
    let text = "a b c d\n".repeat(500);
    let c = Corpus::from_text(&text, CorpusOptions::default()).unwrap();
    let tmp = tmpdir("stream-bad");
    let e = firth_ngram::build::build_to(
        c,
        &BuildOptions {
            order: 3,
            external: Some(true),
            temp_dir: tmp.clone(),
            ..Default::default()
        },
        &Outputs {
            arpa: Some(&tmp.join("x.arpa")),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap_err();
    assert!(e.to_string().contains("--discount-fallback"), "{e}");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn streamed_unigram_model_is_byte_identical() {
    same_both_ways(
        &synthetic(500, 13),
        BuildOptions {
            order: 1,
            discount_fallback: Some(Discount::FALLBACK),
            ..Default::default()
        },
        "o1",
    );
}

#[test]
fn missing_temp_dir_is_a_clear_error() {
    let c = Corpus::from_text("a b c\n", CorpusOptions::default()).unwrap();
    let out = tmpdir("stream-notmp");
    let e = firth_ngram::build::build_to(
        c,
        &BuildOptions {
            order: 2,
            temp_dir: out.join("missing"),
            ..Default::default()
        },
        &Outputs {
            arpa: Some(&out.join("x.arpa")),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("missing") && e.contains("--temp-dir"), "{e}");
    assert!(!out.join("x.arpa").exists());
    let _ = std::fs::remove_dir_all(&out);
}
