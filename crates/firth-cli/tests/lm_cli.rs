//! End-to-end checks of `firth lm`: resuming after SIGKILL, refusing bad checkpoints and bad
//! input with clear errors, stopping on a NaN loss, and the eval/generate commands.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn firth() -> Command {
    Command::new(env!("CARGO_BIN_EXE_firth"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("firth-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small corpus from a toy grammar, made reproducibly (no files from outside the repo).
fn corpus(dir: &Path, lines: usize, seed: u64) -> PathBuf {
    let subjects = [
        "the cat",
        "a dog",
        "the students",
        "my friend",
        "the old man",
        "she",
        "they",
    ];
    let verbs = ["sees", "likes", "opened", "wrote", "found", "carried"];
    let objects = [
        "the book",
        "their exams",
        "a letter",
        "the door",
        "some bread",
        "the box",
    ];
    let mut s = seed;
    let mut next = |n: usize| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as usize) % n
    };
    let mut text = String::new();
    for _ in 0..lines {
        text.push_str(&format!(
            "{} {} {}\n",
            subjects[next(7)],
            verbs[next(6)],
            objects[next(6)]
        ));
    }
    let p = dir.join(format!("text{seed}.txt"));
    std::fs::write(&p, text).unwrap();
    p
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "firth failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn err(out: Output) -> String {
    assert!(!out.status.success(), "firth should have failed");
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn train_cmd(train: &Path, valid: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = firth();
    c.args([
        "lm", "train", "--hidden", "24", "--layers", "2", "--bptt", "8", "--batch", "4",
        "--epochs", "3",
    ])
    .args([
        "--optim",
        "adam",
        "--dropout",
        "0.2",
        "--threads",
        "1",
        "--quiet",
        "--checkpoint-every",
        "2",
    ])
    .arg("--train")
    .arg(train)
    .arg("--valid")
    .arg(valid)
    .arg("--out")
    .arg(out)
    .args(extra);
    c
}

/// The model's tensors (the file's header order is not fixed, so bytes are not compared).
fn weights(dir: &Path) -> std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    firth_nn::checkpoint::Tensors::load(&dir.join("model.safetensors"))
        .unwrap()
        .tensors
}

#[test]
fn resume_after_stop_and_sigkill_gives_the_same_weights() {
    let d = tmp("resume");
    let train = corpus(&d, 400, 1);
    let valid = corpus(&d, 40, 2);
    let full = d.join("full");
    ok(train_cmd(&train, &valid, &full, &[]).output().unwrap());

    // Stopped by --max-steps in the middle of epoch 2 (epochs have 57 steps), then resumed.
    let parts = d.join("parts");
    ok(train_cmd(&train, &valid, &parts, &["--max-steps", "71"])
        .output()
        .unwrap());
    ok(train_cmd(&train, &valid, &parts, &["--resume"])
        .output()
        .unwrap());
    assert!(
        weights(&full) == weights(&parts),
        "stop + resume changed the result"
    );

    // Killed with SIGKILL once a checkpoint exists, then resumed.
    let killed = d.join("killed");
    let mut child = train_cmd(&train, &valid, &killed, &["--epochs", "3"])
        .spawn()
        .unwrap();
    let ckpt = killed.join("checkpoint.safetensors");
    let start = std::time::Instant::now();
    while !ckpt.exists() && start.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::thread::sleep(std::time::Duration::from_millis(30));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(
        !killed.join("summary.json").exists(),
        "the run finished before it was killed"
    );
    ok(train_cmd(&train, &valid, &killed, &["--resume"])
        .output()
        .unwrap());
    assert!(
        weights(&full) == weights(&killed),
        "kill + resume changed the result"
    );
}

#[test]
fn bad_checkpoints_and_settings_are_refused() {
    let d = tmp("badckpt");
    let train = corpus(&d, 200, 3);
    let valid = corpus(&d, 20, 4);
    let out = d.join("run");
    ok(train_cmd(&train, &valid, &out, &["--max-steps", "5"])
        .output()
        .unwrap());
    let e = err(train_cmd(&train, &valid, &out, &[]).output().unwrap());
    assert!(e.contains("--resume"), "{e}");
    let e = err(
        train_cmd(&train, &valid, &out, &["--resume", "--hidden", "32"])
            .output()
            .unwrap(),
    );
    assert!(e.contains("model settings differ"), "{e}");
    let other = corpus(&d, 200, 9);
    let mut text = std::fs::read_to_string(&other).unwrap();
    text.push_str("zebra\n");
    std::fs::write(&other, text).unwrap();
    let e = err(train_cmd(&other, &valid, &out, &["--resume"])
        .output()
        .unwrap());
    assert!(e.contains("vocabulary differs"), "{e}");
    let ckpt = out.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ckpt).unwrap();
    std::fs::write(&ckpt, &bytes[..bytes.len() / 2]).unwrap();
    let e = err(train_cmd(&train, &valid, &out, &["--resume"])
        .output()
        .unwrap());
    assert!(e.contains("is damaged"), "{e}");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let d = tmp("badinput");
    let valid = corpus(&d, 20, 5);
    let e = err(
        train_cmd(&d.join("missing.txt"), &valid, &d.join("o1"), &[])
            .output()
            .unwrap(),
    );
    assert!(
        e.contains("cannot read") && e.contains("missing.txt"),
        "{e}"
    );
    let bad = d.join("bad.txt");
    std::fs::write(&bad, b"one line\ntwo \xfe\xff lines\n").unwrap();
    let e = err(train_cmd(&bad, &valid, &d.join("o2"), &[])
        .output()
        .unwrap());
    assert!(e.contains("bad.txt:2") && e.contains("UTF-8"), "{e}");
    let empty = d.join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let e = err(train_cmd(&empty, &valid, &d.join("o3"), &[])
        .output()
        .unwrap());
    assert!(e.contains("empty"), "{e}");
    let e = err(
        train_cmd(&valid, &valid, &d.join("o4"), &["--batch", "100000"])
            .output()
            .unwrap(),
    );
    assert!(e.contains("--batch"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn a_diverging_run_stops_with_a_message() {
    let d = tmp("nan");
    let train = corpus(&d, 300, 6);
    let valid = corpus(&d, 20, 7);
    let e = err(train_cmd(
        &train,
        &valid,
        &d.join("o"),
        &["--optim", "sgd", "--lr", "1e30", "--clip", "0"],
    )
    .output()
    .unwrap());
    assert!(e.contains("became") && e.contains("checkpoint"), "{e}");
}

#[test]
fn eval_and_generate() {
    let d = tmp("evalgen");
    let train = corpus(&d, 400, 8);
    let valid = corpus(&d, 40, 9);
    let out = d.join("m");
    let summary = ok(train_cmd(&train, &valid, &out, &["--json", "--test"])
        .arg(&valid)
        .output()
        .unwrap());
    let s: serde_json::Value = serde_json::from_str(summary.trim()).unwrap();
    let vp = s["valid_perplexity"].as_f64().unwrap();
    // Sentences from a 7·6·6 toy grammar: a trained model is far better than the uniform
    // guess over 27 words.
    assert!(vp < 15.0, "valid perplexity {vp}");
    assert!(s["train_tokens_per_second"].as_f64().unwrap() > 0.0);
    let tp = s["test_perplexity"].as_f64().unwrap();
    let e = ok(firth()
        .args(["lm", "eval"])
        .arg(&out)
        .arg(&valid)
        .arg("--json")
        .output()
        .unwrap());
    let e: serde_json::Value = serde_json::from_str(e.trim()).unwrap();
    assert!(
        (e["perplexity"].as_f64().unwrap() - tp).abs() < 1e-3 * tp,
        "{e} vs {tp}"
    );
    assert!((e["loss"].as_f64().unwrap().exp() - e["perplexity"].as_f64().unwrap()).abs() < 1e-9);

    let g = ok(firth()
        .args(["lm", "generate"])
        .arg(&out)
        .args(["--prompt", "the cat", "--max-tokens", "12", "--seed", "3"])
        .output()
        .unwrap());
    assert!(g.starts_with("the cat"), "{g}");
    let g2 = ok(firth()
        .args(["lm", "generate"])
        .arg(&out)
        .args(["--prompt", "the cat", "--max-tokens", "12", "--seed", "3"])
        .output()
        .unwrap());
    assert_eq!(g, g2, "same seed, same text");
    let b = ok(firth()
        .args(["lm", "generate"])
        .arg(&out)
        .args(["--prompt", "the cat", "--beam", "4", "--max-tokens", "6"])
        .output()
        .unwrap());
    assert!(b.starts_with("the cat"), "{b}");
    let e = err(firth()
        .args(["lm", "eval"])
        .arg(d.join("nothing"))
        .arg(&valid)
        .output()
        .unwrap());
    assert!(e.contains("cannot read checkpoint"), "{e}");
}

#[test]
fn data_parallel_training_is_repeatable_and_matches_one_thread() {
    let d = tmp("dataparallel");
    let train = corpus(&d, 400, 1);
    let valid = corpus(&d, 40, 2);
    let run = |name: &str, threads: &str| {
        let out = d.join(name);
        let extra = ["--threads", threads, "--dropout", "0", "--max-steps", "20"];
        ok(train_cmd(&train, &valid, &out, &extra).output().unwrap());
        weights(&out)
    };
    let (a, b, one) = (run("a", "2"), run("b", "2"), run("one", "1"));
    assert!(a == b, "two runs with --threads 2 differ");
    // Two replicas each take half the batch; their summed gradient is the whole batch's, so
    // the weights match the one-thread run up to the order of floating-point additions.
    let mut worst = 0.0f32;
    for (name, (_, w)) in &a {
        for (x, y) in w.iter().zip(&one[name].1) {
            worst = worst.max((x - y).abs());
        }
    }
    assert!(
        worst < 1e-4,
        "2 threads vs 1 thread: largest weight difference {worst}"
    );
}
