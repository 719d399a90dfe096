//! `firth speech` end to end on a synthetic fixture made in the test: "words" are tones of
//! different pitch, utterances strings of them with silences between.

mod common;

use common::{firth, ok, s, tmp};
use firth_audio::wav::write_wav16;
use std::path::{Path, PathBuf};

const RATE: u32 = 8000;

/// Tone of `word` ("1" 300 Hz, "2" 900 Hz, "3" 2000 Hz), 0.2 s.
fn tone(word: &str) -> Vec<f32> {
    let hz = match word {
        "1" => 300.0,
        "2" => 900.0,
        _ => 2000.0,
    };
    (0..RATE as usize / 5)
        .map(|n| 0.5 * (2.0 * std::f32::consts::PI * hz * n as f32 / RATE as f32).sin())
        .collect()
}

/// Writes utterances of the `transcripts` into `dir` and `dir/manifest.tsv`.
fn corpus(dir: &Path, transcripts: &[&str]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let mut manifest = String::new();
    for (i, t) in transcripts.iter().enumerate() {
        let mut x = vec![0.0f32; 400];
        for w in t.split(' ') {
            x.extend(tone(w));
            x.extend(std::iter::repeat_n(0.0, 800));
        }
        let name = format!("u{i}.wav");
        write_wav16(&dir.join(&name), &x, RATE).unwrap();
        manifest.push_str(&format!("{name}\t{t}\n"));
    }
    let m = dir.join("manifest.tsv");
    std::fs::write(&m, manifest).unwrap();
    m
}

fn fixture(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let train = corpus(
        &root.join("train"),
        &[
            "1", "2", "3", "1 2", "2 3", "3 1", "1 1", "2 2 3", "3 2 1", "1 3", "2 1", "3 3",
        ],
    );
    let dev = corpus(&root.join("dev"), &["1 2 3", "2", "3 1"]);
    let test = corpus(&root.join("test"), &["3 2", "1", "2 1 3"]);
    (train, dev, test)
}

fn train_tiny(root: &Path, out: &Path, threads: &str, extra: &[&str]) -> serde_json::Value {
    let (train, dev, test) = fixture(root);
    let mut args = vec![
        "speech",
        "train",
        "--train",
        s(&train),
        "--dev",
        s(&dev),
        "--test",
        s(&test),
        "--out",
        s(out),
        "--hidden",
        "8",
        "--layers",
        "1",
        "--epochs",
        "2",
        "--batch",
        "4",
        "--threads",
        threads,
        "--json",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(firth(&args))).unwrap()
}

fn refused(o: std::process::Output) -> String {
    assert!(!o.status.success(), "should have failed");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!err.contains("panicked"), "panicked: {err}");
    err
}

#[test]
fn train_transcribe_and_eval_end_to_end() {
    let d = tmp("e2e");
    let out = d.join("model");
    let j = train_tiny(&d, &out, "1", &[]);
    for k in [
        "test_accuracy",
        "test_wer",
        "test_cer",
        "wall_seconds",
        "train_seconds",
    ] {
        assert!(j[k].is_number(), "summary lacks {k}: {j}");
    }
    assert_eq!(j["epochs_completed"], 2);
    assert_eq!(j["units"], 4, "blank + 3 words");
    for f in [
        "model.safetensors",
        "metrics.csv",
        "summary.json",
        "dev_wer.csv",
        "test.hyp",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let wavs = [d.join("test/u0.wav"), d.join("test/u1.wav")];
    let lines = ok(firth(&[
        "speech",
        "transcribe",
        s(&out),
        s(&wavs[0]),
        s(&wavs[1]),
    ]));
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with(&format!("{}\t", s(&wavs[0]))));
    let e: serde_json::Value = serde_json::from_str(&ok(firth(&[
        "speech",
        "eval",
        s(&out),
        s(&d.join("test/manifest.tsv")),
        "--json",
    ])))
    .unwrap();
    // The same model, features and greedy decoding as the summary's test numbers.
    assert_eq!(e["wer"], j["test_wer"]);
    assert_eq!(e["accuracy"], j["test_accuracy"]);

    // Shallow fusion with an n-gram LM over the training transcripts.
    let text = d.join("text.txt");
    std::fs::write(&text, "1\n2\n3\n1 2\n2 3\n3 1\n1 1\n2 2 3\n3 2 1\n").unwrap();
    let lm = d.join("lm.arpa");
    ok(firth(&[
        "ngram",
        "build",
        "-o",
        "2",
        "--arpa",
        s(&lm),
        s(&text),
        "--discount-fallback",
    ]));
    let e: serde_json::Value = serde_json::from_str(&ok(firth(&[
        "speech",
        "eval",
        s(&out),
        s(&d.join("test/manifest.tsv")),
        "--lm",
        s(&lm),
        "--beam",
        "4",
        "--lm-weight",
        "0.3",
        "--json",
    ])))
    .unwrap();
    assert!(e["cer"].is_number());
    ok(firth(&[
        "speech",
        "transcribe",
        s(&out),
        s(&wavs[0]),
        "--lm",
        s(&lm),
        "--word-bonus",
        "0.5",
    ]));

    // --resume goes on to a larger --epochs.
    let (train, dev) = (d.join("train/manifest.tsv"), d.join("dev/manifest.tsv"));
    let j: serde_json::Value = serde_json::from_str(&ok(firth(&[
        "speech",
        "train",
        "--train",
        s(&train),
        "--dev",
        s(&dev),
        "--out",
        s(&out),
        "--hidden",
        "8",
        "--layers",
        "1",
        "--epochs",
        "3",
        "--batch",
        "4",
        "--threads",
        "1",
        "--json",
        "--quiet",
        "--resume",
    ])))
    .unwrap();
    assert_eq!(j["epochs_completed"], 3);
}

#[test]
fn two_threads_and_stacking_train() {
    let d = tmp("threads");
    let j = train_tiny(
        &d,
        &d.join("m"),
        "2",
        &["--stack", "3", "--no-spec-augment"],
    );
    assert!(j["test_wer"].is_number());
    assert_eq!(j["threads"], 2);
}

#[test]
fn feature_flags_shape_the_model_and_travel_with_it() {
    let d = tmp("featflags");
    let mfcc = train_tiny(&d, &d.join("mfcc"), "1", &[]);
    let fbank = train_tiny(&d, &d.join("fbank"), "1", &["--fbank", "--deltas", "0"]);
    // 39 MFCC+Δ+ΔΔ against 26 log-mel bands, 2 frames stacked: the first layer's input
    // weights (2 directions × 4·8 gates) shrink by 13·2 columns.
    let p = |j: &serde_json::Value| j["parameters"].as_i64().unwrap();
    assert_eq!(p(&mfcc) - p(&fbank), 2 * 4 * 8 * 13 * 2);
    // transcribe computes the model's own features (a wrong width would be refused).
    let (train, _, _) = fixture(&d);
    let out = ok(firth(&[
        "speech",
        "eval",
        &s(&d.join("fbank")),
        &s(&train),
        "--json",
    ]));
    assert!(out.contains("wer"), "{out}");
}

#[test]
fn character_units_and_global_normalisation_train_and_travel() {
    let d = tmp("chars_global");
    let out = d.join("m");
    let j = train_tiny(&d, &out, "1", &["--units", "chars", "--norm", "global"]);
    assert_eq!(j["units"], 5, "blank, space and the characters 1 2 3");
    assert!(j["test_wer"].is_number());
    // The statistics are stored with the model: eval reads the training manifest with them,
    // so the model sees features normalised as in training.
    let model = firth_models::speech::load(&out).unwrap();
    let stats = model
        .2
        .global_norm
        .expect("statistics stored with the model");
    assert_eq!(stats.mean.len(), 39);
    assert!(
        stats.mean.iter().any(|&m| m.abs() > 0.1),
        "fitted, not zero"
    );
    let (train, _, _) = fixture(&d);
    let eval = ok(firth(&["speech", "eval", s(&out), s(&train), "--json"]));
    let eval: serde_json::Value = serde_json::from_str(&eval).unwrap();
    assert!(eval["wer"].is_number(), "{eval}");
    // One WAV has no training set to fit on.
    let wav = d.join("train/u0.wav");
    let err = refused(firth(&[
        "speech",
        "features",
        s(&wav),
        "--out",
        s(&d.join("f.csv")),
        "--norm",
        "global",
    ]));
    assert!(
        err.contains("--norm global") && err.contains("--norm utterance"),
        "{err}"
    );
}

#[test]
fn features_are_written_as_csv() {
    let d = tmp("features");
    let wav = d.join("a.wav");
    write_wav16(&wav, &tone("2"), RATE).unwrap();
    let out = d.join("a.csv");
    ok(firth(&["speech", "features", s(&wav), "--out", s(&out)]));
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 19, "0.2 s in 25 ms frames every 10 ms");
    assert!(rows.iter().all(|r| r.split(',').count() == 39));
    ok(firth(&[
        "speech",
        "features",
        s(&wav),
        "--out",
        s(&out),
        "--fbank",
        "--deltas",
        "0",
        "--norm",
        "none",
        "--hop-ms",
        "20",
    ]));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().next().unwrap().split(',').count(), 26);
    assert_eq!(text.lines().count(), 10, "1 + ⌈(1600 − 200)/160⌉ frames");
}

#[test]
fn bad_inputs_are_refused_with_the_file_and_line() {
    let d = tmp("bad");
    let (train, dev, _) = fixture(&d);
    let run = |train: &Path, out: &str| {
        firth(&[
            "speech",
            "train",
            "--train",
            s(train),
            "--dev",
            s(&dev),
            "--out",
            s(&d.join(out)),
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--layers",
            "1",
            "--quiet",
        ])
    };
    let err = refused(run(&d.join("missing.tsv"), "a"));
    assert!(err.contains("missing.tsv"), "{err}");

    let no_tab = d.join("train/no_tab.tsv");
    std::fs::write(&no_tab, "u0.wav\t1\nu1.wav 2\n").unwrap();
    let err = refused(run(&no_tab, "b"));
    assert!(err.contains("no_tab.tsv:2") && err.contains("tab"), "{err}");

    std::fs::write(d.join("train/junk.wav"), b"this is not audio at all").unwrap();
    let junk = d.join("train/junk.tsv");
    std::fs::write(&junk, "u0.wav\t1\n\njunk.wav\t2\n").unwrap();
    let err = refused(run(&junk, "c"));
    assert!(
        err.contains("junk.tsv:3") && err.contains("junk.wav"),
        "{err}"
    );
    assert!(!d.join("c/model.safetensors").exists());

    // A model is needed: a folder without one, and a file of another kind.
    let err = refused(firth(&[
        "speech",
        "transcribe",
        s(&d),
        s(&d.join("train/u0.wav")),
    ]));
    assert!(err.contains("not a firth model directory"), "{err}");
    let other = d.join("tagger");
    std::fs::create_dir_all(&other).unwrap();
    let mut t = firth_nn::checkpoint::Tensors::default();
    t.metadata.insert("firth".into(), "tagger-model-v1".into());
    t.insert("model.x", &[1], vec![0.0]);
    t.save(&other.join("model.safetensors")).unwrap();
    let err = refused(firth(&["speech", "eval", s(&other), s(&train)]));
    assert!(
        err.contains("tagger-model-v1") && err.contains("not a firth speech model"),
        "{err}"
    );

    // Transcribing a missing or unreadable WAV names it.
    let out = d.join("ok");
    train_tiny(&d.join("again"), &out, "1", &[]);
    let err = refused(firth(&[
        "speech",
        "transcribe",
        s(&out),
        s(&d.join("nope.wav")),
    ]));
    assert!(err.contains("nope.wav"), "{err}");
    let err = refused(firth(&[
        "speech",
        "transcribe",
        s(&out),
        s(&d.join("train/junk.wav")),
    ]));
    assert!(err.contains("junk.wav"), "{err}");
}
