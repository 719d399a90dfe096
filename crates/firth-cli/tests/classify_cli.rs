//! End-to-end checks of `firth classify`: learning a toy task, exact resume, label-set and
//! bad-input errors, pretrained vectors, the NaN stop, predict and eval.

mod common;

use common::tiny_lm;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn firth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_firth"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("firth-classify-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `label<TAB>text` lines from a toy grammar: the label is the polarity of the adjective,
/// flipped by "not" (so word order matters a little).
fn toy(dir: &Path, name: &str, lines: usize, seed: u64) -> PathBuf {
    let nouns = ["film", "plot", "cast", "script", "ending", "score"];
    let good = ["good", "great", "moving", "funny", "sharp"];
    let bad = ["bad", "dull", "flat", "tedious", "weak"];
    let mut s = seed;
    let mut next = |n: usize| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as usize) % n
    };
    let mut text = String::new();
    for _ in 0..lines {
        let positive = next(2) == 0;
        let negated = next(3) == 0;
        let adj = if positive ^ negated {
            good[next(5)]
        } else {
            bad[next(5)]
        };
        text.push_str(&format!(
            "{}\tthe {} was {}{} .\n",
            if positive { "positive" } else { "negative" },
            nouns[next(6)],
            if negated { "not " } else { "" },
            adj
        ));
    }
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn err(out: Output) -> String {
    assert!(!out.status.success(), "command should have failed");
    let e = String::from_utf8(out.stderr).unwrap();
    assert!(!e.contains("panicked"), "panic instead of an error: {e}");
    e
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.lines().last().unwrap()).unwrap()
}

fn train(dir: &Path, out: &str, extra: &[&str]) -> Command {
    let mut c = firth();
    c.args(["classify", "train", "--train"])
        .arg(dir.join("train.tsv"))
        .arg("--dev")
        .arg(dir.join("dev.tsv"))
        .arg("--test")
        .arg(dir.join("test.tsv"))
        .arg("--out")
        .arg(dir.join(out))
        .args([
            "--hidden",
            "16",
            "--emb",
            "16",
            "--batch",
            "8",
            "--lr",
            "0.01",
            "--threads",
            "1",
            "--quiet",
            "--json",
        ])
        .args(extra);
    c
}

fn data(name: &str) -> PathBuf {
    let d = tmp(name);
    toy(&d, "train.tsv", 300, 1);
    toy(&d, "dev.tsv", 60, 2);
    toy(&d, "test.tsv", 60, 3);
    d
}

#[test]
fn learns_a_toy_task_and_predicts() {
    let d = data("learn");
    let s = json(&ok(train(
        &d,
        "m",
        &[
            "--epochs",
            "12",
            "--bidirectional",
            "true",
            "--pooling",
            "max",
        ],
    )
    .output()
    .unwrap()));
    let acc = s["test_accuracy"].as_f64().unwrap();
    assert!(acc >= 90.0, "test accuracy {acc}");
    for f in [
        "model.safetensors",
        "checkpoint.safetensors",
        "metrics.csv",
        "curves.svg",
    ] {
        assert!(d.join("m").join(f).exists(), "{f} missing");
    }
    // eval reproduces the test accuracy of the summary.
    let e = json(&ok(firth()
        .args(["classify", "eval", "--json"])
        .arg(d.join("m"))
        .arg(d.join("test.tsv"))
        .output()
        .unwrap()));
    assert!((e["accuracy"].as_f64().unwrap() - acc).abs() < 1e-9);
    let plain = d.join("plain.txt");
    std::fs::write(&plain, "the film was great .\nthe plot was not funny .\n").unwrap();
    let p = ok(firth()
        .args(["classify", "predict"])
        .arg(d.join("m"))
        .arg(&plain)
        .output()
        .unwrap());
    assert_eq!(
        p,
        "positive\tthe film was great .\nnegative\tthe plot was not funny .\n"
    );
}

#[test]
fn cross_validation_trains_one_model_per_fold() {
    let d = data("folds");
    let cv = d.join("cv");
    let s = json(&ok(firth()
        .args(["classify", "train", "--train"])
        .arg(d.join("train.tsv"))
        .arg("--out")
        .arg(&cv)
        .args([
            "--folds",
            "3",
            "--hidden",
            "16",
            "--emb",
            "16",
            "--batch",
            "8",
            "--lr",
            "0.01",
            "--epochs",
            "12",
            "--threads",
            "1",
            "--quiet",
            "--json",
        ])
        .output()
        .unwrap()));
    assert_eq!(s["folds"], 3);
    assert_eq!(s["examples"], 300);
    let acc: Vec<f64> = s["fold_accuracy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_f64().unwrap())
        .collect();
    assert_eq!(acc.len(), 3);
    let mean = acc.iter().sum::<f64>() / 3.0;
    assert!((s["mean_accuracy"].as_f64().unwrap() - mean).abs() < 1e-9);
    assert!(mean >= 85.0, "fold accuracies {acc:?}");
    // Each fold's model scores its own held-out fold as the summary says: fold k's test set
    // is a third of the shuffled file, so eval on the whole file differs, but the model is
    // there and loads.
    for k in 1..=3 {
        let fold = cv.join(format!("fold-{k}"));
        assert!(fold.join("model.safetensors").exists(), "fold {k}");
        let sum: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fold.join("summary.json")).unwrap())
                .unwrap();
        assert_eq!(sum["test_accuracy"], s["fold_accuracy"][k - 1]);
        assert_eq!(sum["test_examples"], 100);
        assert_eq!(
            sum["train_examples"], 180,
            "200 minus a tenth held out for dev"
        );
    }
    assert!(cv.join("cv.json").exists());
    let e = err(firth()
        .args(["classify", "train", "--train"])
        .arg(d.join("train.tsv"))
        .arg("--test")
        .arg(d.join("test.tsv"))
        .arg("--out")
        .arg(&cv)
        .args(["--folds", "3"])
        .output()
        .unwrap());
    assert!(e.contains("--folds") && e.contains("--test"), "{e}");
}

#[test]
fn resume_is_exact_with_one_thread() {
    let d = data("resume");
    let full = json(&ok(train(&d, "full", &["--epochs", "4"]).output().unwrap()));
    ok(train(&d, "part", &["--epochs", "2"]).output().unwrap());
    let resumed = json(&ok(train(&d, "part", &["--epochs", "4", "--resume"])
        .output()
        .unwrap()));
    assert_eq!(full["test_accuracy"], resumed["test_accuracy"]);
    assert_eq!(full["dev_loss"], resumed["dev_loss"]);
    let cols = |p: PathBuf| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(
        cols(d.join("full/metrics.csv")),
        cols(d.join("part/metrics.csv"))
    );
    // Changing a setting on resume is refused.
    let e = err(
        train(&d, "part", &["--epochs", "5", "--resume", "--hidden", "8"])
            .output()
            .unwrap(),
    );
    assert!(e.contains("model settings differ"), "{e}");
    // Starting over in a used directory is refused.
    let e = err(train(&d, "part", &["--epochs", "5"]).output().unwrap());
    assert!(e.contains("--resume"), "{e}");
}

#[test]
fn label_sets_are_checked() {
    let d = data("labels");
    ok(train(&d, "m", &["--epochs", "1"]).output().unwrap());
    // Resuming with data of another label set.
    let other = d.join("other.tsv");
    std::fs::write(&other, "a\tone two\nb\tthree\nc\tfour\n").unwrap();
    let e = err(firth()
        .args([
            "classify", "train", "--resume", "--quiet", "--epochs", "2", "--train",
        ])
        .arg(&other)
        .arg("--dev")
        .arg(&other)
        .arg("--out")
        .arg(d.join("m"))
        .args([
            "--hidden", "16", "--emb", "16", "--batch", "8", "--lr", "0.01",
        ])
        .output()
        .unwrap());
    assert!(e.contains("label set"), "{e}");
    // Evaluating on data with a label the model does not know.
    let e = err(firth()
        .args(["classify", "eval"])
        .arg(d.join("m"))
        .arg(&other)
        .output()
        .unwrap());
    assert!(
        e.contains("other.tsv: example 1 has the label \"a\""),
        "{e}"
    );
    // A dev label missing from training data.
    let dev = d.join("dev_bad.tsv");
    std::fs::write(&dev, "positive\tgood\nneutral\tok\n").unwrap();
    let e = err(firth()
        .args(["classify", "train", "--quiet", "--train"])
        .arg(d.join("train.tsv"))
        .arg("--dev")
        .arg(&dev)
        .arg("--out")
        .arg(d.join("m2"))
        .output()
        .unwrap());
    assert!(e.contains("dev_bad.tsv: example 2"), "{e}");
}

#[test]
fn bad_input_is_reported_with_lines() {
    let d = data("bad");
    let sst = d.join("bad_sst.txt");
    std::fs::write(&sst, "(3 (2 a) (3 b))\n(2 (2 c) (9 d))\n").unwrap();
    let e = err(firth()
        .args(["classify", "train", "--quiet", "--train"])
        .arg(&sst)
        .arg("--out")
        .arg(d.join("m"))
        .output()
        .unwrap());
    assert!(e.contains("bad_sst.txt:2:11: node label \"9\""), "{e}");
    let tsv = d.join("bad.tsv");
    std::fs::write(&tsv, "positive\tfine\nnegative\t \n").unwrap();
    let e = err(firth()
        .args(["classify", "train", "--quiet", "--train"])
        .arg(&tsv)
        .arg("--out")
        .arg(d.join("m"))
        .output()
        .unwrap());
    assert!(e.contains("bad.tsv:2: empty sentence"), "{e}");
    ok(train(&d, "ok", &["--epochs", "1"]).output().unwrap());
    let plain = d.join("plain.txt");
    std::fs::write(&plain, "good film\n\nbad film\n").unwrap();
    let e = err(firth()
        .args(["classify", "predict"])
        .arg(d.join("ok"))
        .arg(&plain)
        .output()
        .unwrap());
    assert!(e.contains("plain.txt:2: empty sentence"), "{e}");
    let e = err(firth()
        .args(["classify", "predict"])
        .arg(d.join("missing"))
        .arg(&plain)
        .output()
        .unwrap());
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn pretrained_vectors_and_the_nan_stop() {
    let d = data("vectors");
    let vec = d.join("v.txt");
    // word2vec text: header, then rows; "Good" is found through its lowercase form.
    std::fs::write(&vec, "3 4\ngood 1 0 0 0\nbad -1 0 0 0\nfilm 0 1 0 0\n").unwrap();
    let s = json(&ok(train(
        &d,
        "v",
        &["--epochs", "1", "--emb", "4", "--freeze"],
    )
    .arg("--embeddings")
    .arg(&vec)
    .output()
    .unwrap()));
    assert!(s["test_accuracy"].is_number());
    let e = err(train(&d, "v2", &["--epochs", "1", "--emb", "8"])
        .arg("--embeddings")
        .arg(&vec)
        .output()
        .unwrap());
    assert!(e.contains("--emb 8 differs from the 4 dimensions"), "{e}");
    let e = err(train(
        &d,
        "nan",
        &[
            "--epochs", "3", "--optim", "sgd", "--lr", "1e38", "--clip", "0",
        ],
    )
    .output()
    .unwrap());
    assert!(e.contains("became"), "{e}");
    assert!(e.contains("--resume"), "{e}");
}

/// `--char-lm FWD_DIR,BWD_DIR` with two tiny character LMs trained here: the classifier
/// trains, keeps copies of both LMs, resumes, and a copy of its directory (the original LMs
/// gone) predicts exactly what the original does and scores what training reported; bad
/// values are refused with what to do, never with a panic.
#[test]
fn character_lm_features_train_save_and_load() {
    let d = data("charlm");
    let fwd = tiny_lm(&d, "fwd", &["--level", "char"]);
    let bwd = tiny_lm(&d, "bwd", &["--level", "char", "--reverse"]);
    let word = tiny_lm(&d, "word", &["--level", "word"]);
    let pair = |a: &Path, b: &Path| format!("{},{}", a.display(), b.display());
    let s = json(&ok(train(
        &d,
        "m",
        &["--epochs", "2", "--char-lm", &pair(&fwd, &bwd)],
    )
    .output()
    .unwrap()));
    let m = d.join("m");
    for l in ["char-lm-fwd", "char-lm-bwd"] {
        assert!(m.join(l).join("model.safetensors").exists(), "{l}");
    }
    // Resuming reads the checkpoint, whose LMs are the copies in its directory.
    let r = json(&ok(train(
        &d,
        "m",
        &["--epochs", "3", "--char-lm", &pair(&fwd, &bwd), "--resume"],
    )
    .output()
    .unwrap()));
    assert_eq!(r["epochs_completed"], 3);
    let plain = d.join("plain.txt");
    std::fs::write(&plain, "the film was great .\nthe plot was not funny .\n").unwrap();
    let predict = |model: &Path| {
        ok(firth()
            .args(["classify", "predict", "--json"])
            .arg(model)
            .arg(&plain)
            .output()
            .unwrap())
    };
    let before = predict(&m);
    // Bad values: not two directories, swapped, a word-level LM.
    let e = err(train(&d, "bad", &["--char-lm", fwd.to_str().unwrap()])
        .output()
        .unwrap());
    assert!(e.contains("FWD_DIR,BWD_DIR"), "{e}");
    let e = err(train(&d, "bad", &["--char-lm", &pair(&bwd, &fwd)])
        .output()
        .unwrap());
    assert!(e.contains("swap the two"), "{e}");
    let e = err(train(&d, "bad", &["--char-lm", &pair(&word, &bwd)])
        .output()
        .unwrap());
    assert!(e.contains("word-level LM") && e.contains("word"), "{e}");
    // The model directory alone, moved elsewhere, with the LMs it was given deleted.
    let moved = d.join("moved");
    for f in [
        "model.safetensors",
        "char-lm-fwd/model.safetensors",
        "char-lm-bwd/model.safetensors",
    ] {
        std::fs::create_dir_all(moved.join(f).parent().unwrap()).unwrap();
        std::fs::copy(m.join(f), moved.join(f)).unwrap();
    }
    std::fs::remove_dir_all(&fwd).unwrap();
    std::fs::remove_dir_all(&bwd).unwrap();
    assert_eq!(predict(&moved), before);
    let e = json(&ok(firth()
        .args(["classify", "eval", "--json"])
        .arg(&moved)
        .arg(d.join("test.tsv"))
        .output()
        .unwrap()));
    assert_eq!(e["accuracy"], r["test_accuracy"]);
    assert!(s["test_accuracy"].is_number());
    // Without its LMs the model cannot read its inputs, and says what is missing.
    std::fs::remove_dir_all(moved.join("char-lm-bwd")).unwrap();
    let e = err(firth()
        .args(["classify", "predict"])
        .arg(&moved)
        .arg(&plain)
        .output()
        .unwrap());
    assert!(e.contains("must hold the two LMs"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

/// With --folds every fold's model directory keeps its own copies of the LMs.
#[test]
fn character_lm_features_with_folds() {
    let d = data("charlm-folds");
    let fwd = tiny_lm(&d, "fwd", &["--level", "char"]);
    let bwd = tiny_lm(&d, "bwd", &["--level", "char", "--reverse"]);
    let cv = json(&ok(firth()
        .args(["classify", "train", "--train"])
        .arg(d.join("train.tsv"))
        .arg("--out")
        .arg(d.join("cv"))
        .arg("--char-lm")
        .arg(format!("{},{}", fwd.display(), bwd.display()))
        .args([
            "--folds",
            "2",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--emb",
            "8",
            "--threads",
            "1",
            "--quiet",
            "--json",
        ])
        .output()
        .unwrap()));
    assert_eq!(cv["fold_accuracy"].as_array().unwrap().len(), 2);
    for k in 1..=2 {
        for l in ["char-lm-fwd", "char-lm-bwd"] {
            let f = d.join(format!("cv/fold-{k}/{l}/model.safetensors"));
            assert!(f.exists(), "{}", f.display());
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}
