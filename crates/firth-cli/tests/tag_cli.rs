//! End-to-end checks of `firth tag`: train/predict/eval on a tiny CoNLL file, conlleval-style
//! output, resume, and bad input (malformed lines, unknown tags, label-set mismatch).

mod common;

use common::tiny_lm;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn firth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_firth"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tag")
        .join(name)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("firth-tag-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    firth().args(args).output().expect("runs firth")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn train(out: &Path, train: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "tag",
        "train",
        "--train",
        train.to_str().unwrap(),
        "--dev",
        fixture("dev.conll").to_str().unwrap().to_string().leak(),
        "--test",
        fixture("dev.conll").to_str().unwrap().to_string().leak(),
        "--out",
        out.to_str().unwrap(),
        "--emb",
        "8",
        "--hidden",
        "8",
        "--char-dim",
        "4",
        "--char-hidden",
        "4",
        "--lr",
        "0.05",
        "--batch",
        "2",
        "--threads",
        "1",
        "--json",
        "--quiet",
    ];
    if !extra.contains(&"--dropout") {
        args.extend_from_slice(&["--dropout", "0"]);
    }
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn trains_predicts_evaluates_and_resumes() {
    let dir = tmp("ok");
    let out = dir.join("m");
    let o = train(
        &out,
        &fixture("train.conll"),
        &["--epochs", "30", "--scheme", "bioes"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["epochs_completed"], 30);
    assert!(s["test_f1"].as_f64().unwrap() > 99.0, "{s}");
    assert!(s["test_accuracy"].as_f64().unwrap() > 99.0, "{s}");
    for f in [
        "model.safetensors",
        "checkpoint.safetensors",
        "metrics.csv",
        "curves.svg",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // Predictions are written in the training file's scheme (IOB1) next to the gold column.
    let pred = dir.join("pred.txt");
    let o = run(&[
        "tag",
        "predict",
        out.to_str().unwrap(),
        fixture("dev.conll").to_str().unwrap(),
        "--output",
        pred.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&pred).unwrap();
    assert!(text.starts_with("EU I-ORG I-ORG\n"), "{text}");
    let o = run(&[
        "tag",
        "eval",
        out.to_str().unwrap(),
        fixture("dev.conll").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("processed 20 tokens with 7 phrases"),
        "{text}"
    );
    // Resume: more epochs continue the saved run.
    let o = train(
        &out,
        &fixture("train.conll"),
        &["--epochs", "31", "--scheme", "bioes", "--resume"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["epochs_completed"], 31);
    // A different label set (here: IOB2 instead of BIOES) is refused on resume.
    let o = train(
        &out,
        &fixture("train.conll"),
        &["--epochs", "32", "--scheme", "iob2", "--resume"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("label set differs"), "{}", stderr(&o));
    // A gold tag the model never saw counts as an error at evaluation time, as in training's
    // dev and test scores, with a warning naming the file, the line and the tag.
    let o = run(&[
        "tag",
        "eval",
        out.to_str().unwrap(),
        fixture("unknown_tag.conll").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("unknown_tag.conll: 1 of 2 tokens")
            && e.contains("\"B-FOO\" on line 1")
            && e.contains("count as errors"),
        "{e}"
    );
    // A model trained on other labels: POS tags are not in the NER label set.
    let o = run(&[
        "tag",
        "eval",
        out.to_str().unwrap(),
        fixture("pos.tsv").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not in the model's label set"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_reported_not_panicked() {
    let dir = tmp("bad");
    let o = train(
        &dir.join("m"),
        &fixture("malformed.conll"),
        &["--epochs", "1"],
    );
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("malformed.conll:2:") && !e.contains("panicked"),
        "{e}"
    );
    let empty = dir.join("empty.conll");
    std::fs::write(&empty, "-DOCSTART- -X- O O\n\n").unwrap();
    let o = train(&dir.join("m2"), &empty, &["--epochs", "1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no sentences"), "{}", stderr(&o));
    let o = run(&[
        "tag",
        "predict",
        dir.join("none").to_str().unwrap(),
        fixture("dev.conll").to_str().unwrap(),
    ]);
    assert!(!o.status.success() && !stderr(&o).contains("panicked"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    let dir = tmp("resume");
    let (a, b) = (dir.join("a"), dir.join("b"));
    let args = ["--scheme", "bioes", "--dropout", "0.3", "--seed", "7"];
    let o = train(
        &a,
        &fixture("train.conll"),
        &[&args[..], &["--epochs", "4"]].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train(
        &b,
        &fixture("train.conll"),
        &[&args[..], &["--epochs", "2"]].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train(
        &b,
        &fixture("train.conll"),
        &[&args[..], &["--epochs", "4", "--resume"]].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let metrics = |d: &Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
    let strip = |s: String| -> Vec<String> {
        // Drop the timing columns (items/s, predict items/s, seconds), found by name.
        let header: Vec<&str> = s.lines().next().unwrap().split(',').collect();
        let timing = ["items_per_second", "predict_items_per_second", "seconds"];
        s.lines()
            .map(|l| {
                l.split(',')
                    .zip(&header)
                    .filter(|(_, h)| !timing.contains(h))
                    .map(|(c, _)| c)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    assert_eq!(strip(metrics(&a)), strip(metrics(&b)));
    // The tensor bytes after the JSON header (whose metadata order may vary) are identical.
    let weights = |d: &Path| {
        let b = std::fs::read(d.join("checkpoint.safetensors")).unwrap();
        let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        b[8 + n..].to_vec()
    };
    assert!(weights(&a) == weights(&b), "resumed weights differ");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--char-dim 0` and `--case-dim 0` are the documented way to turn those features off (the
/// plain BiLSTM of bench/tagger); the flag validation must not refuse them.
#[test]
fn zero_char_and_case_dims_turn_those_features_off() {
    let dir = tmp("nochar");
    let out = dir.join("m");
    let o = run(&[
        "tag",
        "train",
        "--train",
        fixture("train.conll").to_str().unwrap(),
        "--dev",
        fixture("dev.conll").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--emb",
        "8",
        "--hidden",
        "8",
        "--char-dim",
        "0",
        "--case-dim",
        "0",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--json",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("model.safetensors").exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// `--char-lm FWD_DIR,BWD_DIR` with two tiny character LMs trained here: the tagger trains,
/// keeps copies of both LMs, and a copy of its directory (the original LMs gone) predicts
/// exactly what the original does and scores what training reported; bad values are refused
/// with what to do.
#[test]
fn character_lm_features_train_save_and_load() {
    let dir = tmp("charlm");
    let (fwd, bwd) = (
        tiny_lm(&dir, "fwd", &["--level", "char"]),
        tiny_lm(&dir, "bwd", &["--level", "char", "--reverse"]),
    );
    let pair = |a: &Path, b: &Path| format!("{},{}", a.display(), b.display());
    let out = dir.join("m");
    let o = train(
        &out,
        &fixture("train.conll"),
        &["--epochs", "3", "--char-lm", &pair(&fwd, &bwd)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for d in ["char-lm-fwd", "char-lm-bwd"] {
        assert!(out.join(d).join("model.safetensors").exists(), "{d}");
    }
    // The model directory alone, moved elsewhere, with the LMs it was given deleted.
    let moved = dir.join("moved");
    for f in [
        "model.safetensors",
        "char-lm-fwd/model.safetensors",
        "char-lm-bwd/model.safetensors",
    ] {
        std::fs::create_dir_all(moved.join(f).parent().unwrap()).unwrap();
        std::fs::copy(out.join(f), moved.join(f)).unwrap();
    }
    let predict = |m: &Path| {
        let o = run(&[
            "tag",
            "predict",
            m.to_str().unwrap(),
            fixture("dev.conll").to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let before = predict(&out);
    // Bad values, while the LMs are still there: not two directories, or swapped.
    let o = train(
        &dir.join("bad"),
        &fixture("train.conll"),
        &["--char-lm", fwd.to_str().unwrap()],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("FWD_DIR,BWD_DIR"), "{}", stderr(&o));
    let o = train(
        &dir.join("bad"),
        &fixture("train.conll"),
        &["--char-lm", &pair(&bwd, &fwd)],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("swap the two"), "{}", stderr(&o));
    std::fs::remove_dir_all(&fwd).unwrap();
    std::fs::remove_dir_all(&bwd).unwrap();
    assert_eq!(predict(&moved), before);
    let o = run(&[
        "tag",
        "eval",
        moved.to_str().unwrap(),
        fixture("dev.conll").to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["accuracy"], s["test_accuracy"]);
    // Without its LMs the model cannot read its inputs, and says what is missing.
    std::fs::remove_dir_all(moved.join("char-lm-bwd")).unwrap();
    let o = run(&[
        "tag",
        "predict",
        moved.to_str().unwrap(),
        fixture("dev.conll").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("must hold the two LMs"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}
