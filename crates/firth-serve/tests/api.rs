//! The JSON API over a real socket: answers checked against values computed here from the
//! fixtures, and the refusals (paths, unknown ids, over-long input, malformed JSON, oversized
//! bodies) each a 4xx with a message, after which the server still answers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use firth_models::lm::{Arch, LanguageModel, LmConfig};
use firth_nn::Rng;
use firth_serve::{router, Registry};
use firth_text::{Level, Vocab};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("firth-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A hand-made 2-D space (word2vec text format).
const VECTORS: &str = "5 2\nman 1 0\nwoman 0 1\nking 1 0.2\nqueen 0.2 1\napple -1 -0.3\n";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// An untrained word LSTM saved as a model directory, with a metrics.csv beside it.
fn lm_dir(dir: &Path) -> PathBuf {
    let d = dir.join("tiny-lm");
    std::fs::create_dir_all(&d).unwrap();
    let text = "the cat sat\nthe dog ran\n".repeat(3);
    let vocab = Vocab::build(&text, Level::Word);
    let config = LmConfig::new(Arch::Lstm, Level::Word, vocab.len(), 8);
    let model = LanguageModel::<f32>::new(config, &mut Rng::new(3)).unwrap();
    let mut t = model.to_tensors(&vocab).unwrap();
    t.metadata.insert("firth".into(), "lm-model-v1".into());
    t.save(&d.join("model.safetensors")).unwrap();
    d
}

async fn start(paths: &[PathBuf]) -> SocketAddr {
    let reg = Arc::new(Registry::load(paths).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(reg)).await.unwrap() });
    addr
}

/// One HTTP/1.1 request with a raw body; returns the status and the body parsed as JSON.
async fn raw(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) and close before reading a large body.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let status: u16 = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    let v = serde_json::from_str(body).unwrap_or(Value::String(body.to_string()));
    (status, v)
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> (u16, Value) {
    raw(addr, "POST", path, body.to_string().as_bytes()).await
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    d / (n(a) * n(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_vectors_ngram_lm_and_refusals() {
    let dir = tmp("api");
    let vec_path = dir.join("toy.vec");
    std::fs::write(&vec_path, VECTORS).unwrap();
    let arpa = fixture("firth-ngram/tests/fixtures/students.kenlm.o2.arpa");
    let lm = lm_dir(&dir);
    std::fs::write(
        lm.join("metrics.csv"),
        "epoch,lr,train_loss,train_perplexity,valid_loss,valid_perplexity,items_per_second,seconds\n1,1,2,7.39,2.1,8.17,100,1\n2,1,1.5,4.48,1.9,6.69,100,1\n",
    )
    .unwrap();
    let addr = start(&[vec_path, arpa, lm]).await;

    // The listing: ids from the names, kinds detected; the LM directory is also a run.
    let (st, m) = raw(addr, "GET", "/api/models", b"").await;
    assert_eq!(st, 200);
    let listed: Vec<(String, String)> = m["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_string(),
                x["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("toy", "vectors"),
        ("students-kenlm-o2", "ngram"),
        ("tiny-lm", "lm"),
        ("tiny-lm-insight", "insight"),
    ];
    assert_eq!(
        listed,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );

    // Nearest neighbours of king: every other word, by cosine computed here.
    let rows: Vec<(&str, Vec<f32>)> = VECTORS
        .lines()
        .skip(1)
        .map(|l| {
            let mut f = l.split(' ');
            let w = f.next().unwrap();
            (w, f.map(|x| x.parse().unwrap()).collect())
        })
        .collect();
    let king = &rows[2].1;
    let mut expect: Vec<(&str, f32)> = rows
        .iter()
        .filter(|r| r.0 != "king")
        .map(|r| (r.0, cos(king, &r.1)))
        .collect();
    expect.sort_by(|a, b| b.1.total_cmp(&a.1));
    // Many at once, so the batching worker answers several in one pass.
    let mut handles = vec![];
    for _ in 0..24 {
        handles.push(tokio::spawn(post(
            addr,
            "/api/vectors/neighbors",
            json!({"model": "toy", "word": "king", "k": 4}),
        )));
    }
    for h in handles {
        let (st, r) = h.await.unwrap();
        assert_eq!(st, 200, "{r}");
        let got = r["neighbors"].as_array().unwrap();
        assert_eq!(got.len(), 4);
        for (g, (w, c)) in got.iter().zip(&expect) {
            assert_eq!(g["word"], *w);
            assert!((g["cosine"].as_f64().unwrap() as f32 - c).abs() < 1e-5);
        }
    }
    let (st, r) = post(
        addr,
        "/api/vectors/analogy",
        json!({"model": "toy", "a": "man", "b": "king", "c": "woman", "k": 1}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(r["answers"][0]["word"], "queen");
    let (st, r) = post(
        addr,
        "/api/vectors/map",
        json!({"model": "toy", "words": ["man", "woman", "king"]}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(r["points"].as_array().unwrap().len(), 3);

    // The n-gram model: "the students opened their books" by hand from the ARPA file.
    let (st, r) = post(
        addr,
        "/api/ngram/score",
        json!({"model": "students-kenlm-o2", "text": "the students opened their books"}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    let words = r["sentences"][0]["words"].as_array().unwrap();
    let probs: Vec<f64> = words
        .iter()
        .map(|w| w["log10_prob"].as_f64().unwrap())
        .collect();
    let hand = [
        -0.2498775,
        -0.2498775,
        -0.2498775,
        -0.2498775,
        -0.50514996,
        -0.22639638,
    ];
    assert_eq!(probs.len(), hand.len());
    for (p, h) in probs.iter().zip(hand) {
        assert!((p - h).abs() < 1e-6, "{p} {h}");
    }
    assert_eq!(words[5]["word"], "</s>");
    let total = r["sentences"][0]["total"].as_f64().unwrap();
    assert!((total - hand.iter().sum::<f64>()).abs() < 1e-5);

    // The LM: probabilities in (0, 1], alternatives sorted, the chosen token among them
    // when greedy.
    let (st, r) = post(
        addr,
        "/api/lm/generate",
        json!({"model": "tiny-lm", "prompt": "the cat", "max_tokens": 4, "greedy": true, "alternatives": 3}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["prompt"], json!(["the", "cat"]));
    for t in r["tokens"].as_array().unwrap() {
        let top = t["top"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(top[0][0], t["token"]);
        assert_eq!(top[0][1], t["prob"]);
    }
    let (st, r) = post(
        addr,
        "/api/insight/run",
        json!({"model": "tiny-lm-insight"}),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(r["files"][0]["kind"], "metrics");
    assert_eq!(r["files"][0]["rows"][1][5], 6.69);

    // Refusals: each a 4xx with a message naming the problem.
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "/api/vectors/neighbors",
            json!({"model": "/etc/passwd", "word": "king"})
                .to_string()
                .into_bytes(),
            400,
            "looks like a file path",
        ),
        (
            "/api/vectors/neighbors",
            json!({"model": "../toy", "word": "king"})
                .to_string()
                .into_bytes(),
            400,
            "looks like a file path",
        ),
        (
            "/api/vectors/neighbors",
            json!({"model": "nope", "word": "king"})
                .to_string()
                .into_bytes(),
            404,
            "no model with id \"nope\"; vectors models here: toy",
        ),
        (
            "/api/vectors/neighbors",
            json!({"model": "students-kenlm-o2", "word": "king"})
                .to_string()
                .into_bytes(),
            400,
            "is a ngram entry, not vectors",
        ),
        (
            "/api/vectors/neighbors",
            json!({"model": "toy", "word": "zebra"})
                .to_string()
                .into_bytes(),
            404,
            "\"zebra\" is not in the vocabulary of toy",
        ),
        (
            "/api/vectors/neighbors",
            json!({"model": "toy", "word": "king", "k": 0})
                .to_string()
                .into_bytes(),
            400,
            "k is 0",
        ),
        (
            "/api/ngram/score",
            json!({"model": "students-kenlm-o2", "text": "the ".repeat(300)})
                .to_string()
                .into_bytes(),
            413,
            "text has 300 words; at most 200",
        ),
        (
            "/api/ngram/score",
            json!({"model": "students-kenlm-o2", "text": "x".repeat(5000)})
                .to_string()
                .into_bytes(),
            413,
            "text has 5000 characters; at most 2000",
        ),
        (
            "/api/ngram/score",
            b"{\"model\": \"students-kenlm-o2\", \"text\": ".to_vec(),
            400,
            "malformed JSON request",
        ),
        (
            "/api/ngram/score",
            json!({"model": "students-kenlm-o2", "txt": "a"})
                .to_string()
                .into_bytes(),
            400,
            "unknown field `txt`",
        ),
        (
            "/api/lm/generate",
            json!({"model": "tiny-lm", "max_tokens": 100000})
                .to_string()
                .into_bytes(),
            400,
            "max_tokens is 100000",
        ),
        (
            "/api/ngram/score",
            vec![b' '; 200_000],
            413,
            "request body too large",
        ),
        (
            "/api/nothing",
            b"{}".to_vec(),
            404,
            "no such page or endpoint",
        ),
    ];
    for (path, body, status, msg) in cases {
        let (st, r) = raw(addr, "POST", path, &body).await;
        assert_eq!(st, status, "{path}: {r}");
        let e = r["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error: {r}"));
        assert!(e.contains(msg), "{e:?} lacks {msg:?}");
        // Still serving.
        let (st, _) = raw(addr, "GET", "/api/models", b"").await;
        assert_eq!(st, 200);
    }
    let (st, r) = raw(addr, "GET", "/api/ngram/score", b"").await;
    assert_eq!(st, 405);
    assert!(r["error"].as_str().unwrap().contains("POST"));

    // The page and its assets are served from the binary.
    let (st, page) = raw(addr, "GET", "/", b"").await;
    assert_eq!(st, 200);
    assert!(page.as_str().unwrap().contains("<script src=\"/app.js\">"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unreadable_or_unknown_inputs_are_errors_naming_the_file() {
    let dir = tmp("load");
    let e = Registry::load(&[dir.join("missing.bin")]).err().unwrap();
    assert!(format!("{e:#}").contains("missing.bin"), "{e:#}");
    let empty = dir.join("empty-run");
    std::fs::create_dir_all(&empty).unwrap();
    let e = Registry::load(&[empty]).err().unwrap();
    assert!(format!("{e:#}").contains("nothing firth can show"), "{e:#}");
    std::fs::remove_dir_all(&dir).ok();
}
