//! End-to-end checks of `firth translate`: train a tiny model on a toy German-English fixture,
//! translate (file and stdin), score, draw attention, resume; and bad input (misaligned
//! files, empty and over-long lines, a model directory of another kind, impossible settings)
//! with nothing written half.

mod common;

use common::{firth_stdin, tmp};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn firth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_firth"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/translate")
        .join(name)
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn run(args: &[String]) -> Output {
    firth().args(args).output().expect("runs firth")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `translate train` of a small model on the fixture (`src`/`tgt` the training files).
fn train(out: &Path, src: &Path, tgt: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<String> = [
        "translate",
        "train",
        "--train-src",
        &s(src),
        "--train-tgt",
        &s(tgt),
        "--valid-src",
        &s(&fixture("valid.de")),
        "--valid-tgt",
        &s(&fixture("valid.en")),
        "--test-src",
        &s(&fixture("valid.de")),
        "--test-tgt",
        &s(&fixture("valid.en")),
        "--out",
        &s(out),
        "--emb",
        "16",
        "--hidden",
        "16",
        "--lr",
        "0.02",
        "--warmup-steps",
        "0",
        "--plateau-decay",
        "1",
        "--batch-tokens",
        "60",
        "--dropout",
        "0",
        "--min-count",
        "1",
        "--threads",
        "1",
        "--json",
        "--quiet",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    // "--verbose" here means: without --quiet (warnings are printed).
    if extra.contains(&"--verbose") {
        args.retain(|a| a != "--quiet");
    }
    args.extend(
        extra
            .iter()
            .filter(|a| **a != "--verbose")
            .map(|a| a.to_string()),
    );
    run(&args)
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn trains_translates_scores_draws_and_resumes() {
    let dir = tmp("ok");
    let out = dir.join("m");
    let o = train(
        &out,
        &fixture("train.de"),
        &fixture("train.en"),
        &["--epochs", "40"],
    );
    let summary = json(&o);
    for key in [
        "valid_bleu",
        "test_bleu",
        "train_tokens_per_second",
        "wall_seconds",
    ] {
        assert!(summary[key].as_f64().is_some(), "{key} missing: {summary}");
    }
    assert_eq!(summary["epochs_completed"], 40);
    let test_bleu = summary["test_bleu"].as_f64().unwrap();
    assert!(test_bleu > 60.0, "{summary}");
    for f in [
        "model.safetensors",
        "metrics.csv",
        "summary.json",
        "test.hyp",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }

    // run: a file, and stdin; one line out per line in (an empty line stays empty).
    let r = run(&[
        "translate".into(),
        "run".into(),
        s(&out),
        s(&fixture("valid.de")),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let lines: Vec<String> = String::from_utf8(r.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 8);
    let r = firth_stdin(
        &["translate", "run", &s(&out), "--beam", "3"],
        "der hund läuft .\n\nein kind schläft .\n".as_bytes(),
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let text = String::from_utf8(r.stdout).unwrap();
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), 3, "{text}");
    assert_eq!(got[1], "");
    // n-best: 3 per non-empty line in Moses' format, best first; the first is the one-best.
    let r = firth_stdin(
        &["translate", "run", &s(&out), "--beam", "3", "--n-best", "3"],
        "der hund läuft .\n\nein kind schläft .\n".as_bytes(),
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let nbest = String::from_utf8(r.stdout).unwrap();
    let rows: Vec<Vec<&str>> = nbest.lines().map(|l| l.split(" ||| ").collect()).collect();
    assert_eq!(rows.len(), 6, "{nbest}");
    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 3, "{nbest}");
        assert_eq!(row[0], if k < 3 { "0" } else { "2" });
    }
    assert_eq!(rows[0][1], got[0]);
    assert_eq!(rows[3][1], got[2]);
    for w in [&rows[0..3], &rows[3..6]] {
        let scores: Vec<f64> = w.iter().map(|r| r[2].parse().unwrap()).collect();
        assert!(scores.windows(2).all(|p| p[0] >= p[1]), "{nbest}");
        assert!(scores.iter().all(|&x| x < 0.0), "{nbest}");
    }
    // <unk> replacement runs on a source with an unknown word.
    let r = firth_stdin(
        &["translate", "run", &s(&out), "--replace-unk"],
        "der elefant läuft .\n".as_bytes(),
    );
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(String::from_utf8(r.stdout).unwrap().lines().count(), 1);

    // eval: greedy BLEU equals what training reported for the greedy test translation.
    let e = run(&[
        "translate".into(),
        "eval".into(),
        s(&out),
        "--src".into(),
        s(&fixture("valid.de")),
        "--ref".into(),
        s(&fixture("valid.en")),
        "--json".into(),
    ]);
    let ev = json(&e);
    let greedy = summary["test_bleu_greedy"].as_f64().unwrap();
    assert!(
        (ev["bleu"].as_f64().unwrap() - greedy).abs() < 1e-9,
        "{ev} vs {summary}"
    );

    // attention: an SVG and a PNG.
    let stem = dir.join("att");
    let a = run(&[
        "translate".into(),
        "attention".into(),
        s(&out),
        "--src".into(),
        "der hund läuft .".into(),
        "--out".into(),
        s(&stem),
    ]);
    assert!(a.status.success(), "{}", stderr(&a));
    let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
    assert!(svg.contains("läuft"), "source words label the columns");
    let png = std::fs::read(stem.with_extension("png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Resume: stopped after 7 updates, then continued to the end.
    let part = dir.join("part");
    let o = train(
        &part,
        &fixture("train.de"),
        &fixture("train.en"),
        &["--epochs", "3", "--max-steps", "7"],
    );
    assert_eq!(json(&o)["stopped_early"], true);
    let o = train(
        &part,
        &fixture("train.de"),
        &fixture("train.en"),
        &["--epochs", "3", "--resume"],
    );
    assert_eq!(json(&o)["epochs_completed"], 3);
    // Changed settings are refused on resume.
    let o = train(
        &part,
        &fixture("train.de"),
        &fixture("train.en"),
        &["--epochs", "4", "--resume", "--cell", "gru"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("settings differ"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_is_refused_clearly_and_nothing_is_written_half() {
    let dir = tmp("bad");
    // Different line counts: both files and both counts named; no model written.
    let short = dir.join("short.en");
    let lines = std::fs::read_to_string(fixture("train.en")).unwrap();
    let cut: Vec<&str> = lines.lines().take(40).collect();
    std::fs::write(&short, cut.join("\n") + "\n").unwrap();
    let out = dir.join("m1");
    let o = train(&out, &fixture("train.de"), &short, &["--epochs", "1"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("train.de")
            && e.contains("48 lines")
            && e.contains("short.en")
            && e.contains("40"),
        "{e}"
    );
    assert!(
        !out.join("model.safetensors").exists() && !out.join("checkpoint.safetensors").exists()
    );

    // Empty lines and over-long sentences: skipped with warnings naming the files and lines.
    let src = dir.join("gappy.de");
    let tgt = dir.join("gappy.en");
    let mut de: Vec<String> = std::fs::read_to_string(fixture("train.de"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut en: Vec<String> = lines.lines().map(String::from).collect();
    de[2] = String::new();
    en[5] = "   ".into();
    de[7] = "der hund läuft ".repeat(10);
    std::fs::write(&src, de.join("\n") + "\n").unwrap();
    std::fs::write(&tgt, en.join("\n") + "\n").unwrap();
    let out = dir.join("m2");
    let o = train(
        &out,
        &src,
        &tgt,
        &["--epochs", "1", "--max-len", "20", "--verbose"],
    );
    let e = stderr(&o);
    let summary = json(&o);
    assert_eq!(summary["train_pairs"], 45, "{summary}");
    assert!(
        e.contains("skipped 2 pair(s) with an empty line (first at line 3)"),
        "{e}"
    );
    assert!(
        e.contains("skipped 1 pair(s) longer than --max-len 20 tokens (first at line 8)"),
        "{e}"
    );

    // A model directory of another kind, and one without a model.
    let text = dir.join("lm.txt");
    std::fs::write(&text, "a b c d e f\n".repeat(50)).unwrap();
    let lm = dir.join("lm");
    let o = run(&[
        "lm".into(),
        "train".into(),
        "--train".into(),
        s(&text),
        "--out".into(),
        s(&lm),
        "--hidden".into(),
        "4".into(),
        "--epochs".into(),
        "1".into(),
        "--threads".into(),
        "1".into(),
        "--quiet".into(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "translate".into(),
        "run".into(),
        s(&lm),
        s(&fixture("valid.de")),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not a firth translator"),
        "{}",
        stderr(&o)
    );
    let o = run(&[
        "translate".into(),
        "eval".into(),
        s(&dir),
        "--src".into(),
        s(&fixture("valid.de")),
        "--ref".into(),
        s(&fixture("valid.en")),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no model.safetensors"),
        "{}",
        stderr(&o)
    );

    // Impossible settings are refused before anything is written.
    let out = dir.join("m3");
    let o = train(
        &out,
        &fixture("train.de"),
        &fixture("train.en"),
        &["--tied", "--dec-hidden", "8"],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--tied needs --emb"), "{}", stderr(&o));
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
    std::fs::remove_dir_all(&dir).ok();
}

/// With --bpe-merges the run learns joint codes into the model directory, trains on subwords
/// and writes words again; `run` and `eval` read the codes back.
#[test]
fn bpe_subwords_are_learned_kept_and_joined_back() {
    let dir = tmp("bpe");
    let out = dir.join("m");
    let o = train(
        &out,
        &fixture("train.de"),
        &fixture("train.en"),
        &["--epochs", "2", "--bpe-merges", "25"],
    );
    let summary = json(&o);
    assert_eq!(summary["bpe_merges"], 25);
    assert!(summary["test_chrf"].as_f64().is_some(), "{summary}");
    let codes = std::fs::read_to_string(out.join("bpe.codes")).unwrap();
    assert!(codes.starts_with("#version: 0.2"), "{codes}");
    let r = run(&[
        "translate".into(),
        "run".into(),
        s(&out),
        s(&fixture("valid.de")),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let text = String::from_utf8(r.stdout).unwrap();
    assert_eq!(text.lines().count(), 8);
    assert!(!text.contains("@@"), "{text}");
    let e = run(&[
        "translate".into(),
        "eval".into(),
        s(&out),
        "--src".into(),
        s(&fixture("valid.de")),
        "--ref".into(),
        s(&fixture("valid.en")),
        "--json".into(),
    ]);
    let ev = json(&e);
    assert!(
        ev["chrf"].as_f64().is_some() && ev["bleu"].as_f64().is_some(),
        "{ev}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
