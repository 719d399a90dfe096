//! The JSON API: one handler per question the page asks. Each one reads its body itself (so a
//! malformed or oversized body gets the same JSON error as any other), checks the model id and
//! the input's size, then runs the model off the async threads.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::nearest::Query;
use crate::registry::{Entry, Kind, Registry};
use crate::{MAX_BODY, MAX_CHARS, MAX_TOKENS, TIME_LIMIT};

/// An error the client sees: a status and `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

type Reply = Result<Json<serde_json::Value>, ApiError>;

type Reg = State<Arc<Registry>>;

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no such page or endpoint: {}; the API is under /api (GET /api/models lists the models)",
            uri.path()
        ),
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "wrong method: /api/models takes GET, every other endpoint POST with a JSON body",
    )
}

/// The body as `T`, or the error saying what is wrong with it.
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|r| {
        let status = r.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                format!("request body too large: at most {MAX_BODY} bytes"),
            )
        } else {
            ApiError::new(
                status,
                format!("cannot read the request body: {}", r.body_text()),
            )
        }
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad(format!(
            "malformed JSON request: {e}; send an object such as {{\"model\": \"ID\", ...}}"
        ))
    })
}

/// The entry `id` names, which must be of kind `want`. An id that looks like a path is refused
/// before anything else: models are named by the ids the server lists, never by files.
fn entry<'r>(reg: &'r Registry, id: &str, want: Kind) -> Result<&'r Entry, ApiError> {
    let pathlike = id.contains(['/', '\\', ':', '~']) || id.contains("..") || id.starts_with('.');
    let ids = || {
        reg.listed
            .iter()
            .filter(|l| l.kind == want)
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if pathlike {
        return Err(ApiError::bad(format!(
            "model {id:?} looks like a file path; name a model by its id (GET /api/models lists them: {})",
            ids()
        )));
    }
    let e = reg.entries.get(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no model with id {id:?}; {} models here: {}",
                want.name(),
                ids()
            ),
        )
    })?;
    if e.kind() != want {
        return Err(ApiError::bad(format!(
            "{id} is a {} entry, not {}; {} models here: {}",
            e.kind().name(),
            want.name(),
            want.name(),
            ids()
        )));
    }
    Ok(e)
}

/// Checks a text input's size: at most [`MAX_CHARS`] characters and [`MAX_TOKENS`] words.
fn text(field: &str, s: &str, allow_empty: bool) -> Result<(), ApiError> {
    let chars = s.chars().count();
    if chars > MAX_CHARS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{field} has {chars} characters; at most {MAX_CHARS} are accepted"),
        ));
    }
    let words = s.split_whitespace().count();
    if words > MAX_TOKENS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{field} has {words} words; at most {MAX_TOKENS} are accepted"),
        ));
    }
    if words == 0 && !allow_empty {
        return Err(ApiError::bad(format!("{field} is empty")));
    }
    Ok(())
}

fn in_range(field: &str, v: usize, lo: usize, hi: usize) -> Result<usize, ApiError> {
    if v < lo || v > hi {
        return Err(ApiError::bad(format!(
            "{field} is {v}; give a value from {lo} to {hi}"
        )));
    }
    Ok(v)
}

/// A model's lock; a panic in an earlier request leaves buffers that the next forward pass
/// resizes and overwrites, so the model stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on the blocking pool within [`TIME_LIMIT`].
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::time::timeout(TIME_LIMIT, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the model failed on this input (a bug in firth; please report it with the request)",
        )),
        Err(_) => Err(timeout()),
    }
}

fn timeout() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the server did not answer within {} s; it is busy, try again or send less",
            TIME_LIMIT.as_secs()
        ),
    )
}

/// A model refusing the input (a prompt word it lacks, say): the client can change the input.
fn refused(e: anyhow::Error) -> ApiError {
    ApiError::bad(format!("{e:#}"))
}

pub async fn models(State(reg): Reg) -> Json<serde_json::Value> {
    Json(json!({
        "models": reg.listed,
        "limits": {"body_bytes": MAX_BODY, "chars": MAX_CHARS, "tokens": MAX_TOKENS,
                   "seconds": TIME_LIMIT.as_secs()},
    }))
}

// ---- vectors ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NeighborsReq {
    model: String,
    word: String,
    #[serde(default = "ten")]
    k: usize,
}

fn ten() -> usize {
    10
}

#[derive(Serialize)]
struct Scored {
    word: String,
    cosine: f32,
}

/// Asks the vector file's batching worker for the `k` rows nearest `q`.
async fn nearest(
    entry: &Entry,
    q: Vec<f32>,
    k: usize,
    exclude: Vec<usize>,
) -> Result<Vec<Scored>, ApiError> {
    let Entry::Vectors { e, nearest } = entry else {
        unreachable!("checked by entry()")
    };
    let (reply, rx) = tokio::sync::oneshot::channel();
    nearest
        .send(Query {
            q,
            k,
            exclude,
            reply,
        })
        .map_err(|m| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m))?;
    let found = match tokio::time::timeout(TIME_LIMIT, rx).await {
        Ok(Ok(f)) => f,
        Ok(Err(_)) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the nearest-neighbour worker has stopped",
            ))
        }
        Err(_) => return Err(timeout()),
    };
    Ok(found
        .into_iter()
        .map(|(i, s)| Scored {
            word: e.words[i].clone(),
            cosine: s,
        })
        .collect())
}

fn vectors(entry: &Entry) -> &firth_vectors::embeddings::Embeddings {
    match entry {
        Entry::Vectors { e, .. } => e,
        _ => unreachable!("checked by entry()"),
    }
}

/// The row of `w`, or a 404 naming it.
fn row_of(e: &firth_vectors::embeddings::Embeddings, id: &str, w: &str) -> Result<usize, ApiError> {
    e.index_of(w).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{w:?} is not in the vocabulary of {id}"),
        )
    })
}

pub async fn neighbors(State(reg): Reg, body: Result<Bytes, BytesRejection>) -> Reply {
    let r: NeighborsReq = parse(body)?;
    let entry = entry(&reg, &r.model, Kind::Vectors)?;
    text("word", &r.word, false)?;
    let k = in_range("k", r.k, 1, 100)?;
    let e = vectors(entry);
    let i = row_of(e, &r.model, &r.word)?;
    let q = e.normed()[i * e.dim..(i + 1) * e.dim].to_vec();
    let found = nearest(entry, q, k, vec![i]).await?;
    Ok(Json(json!({"word": r.word, "neighbors": found})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnalogyReq {
    model: String,
    a: String,
    b: String,
    c: String,
    #[serde(default = "ten")]
    k: usize,
}

/// "a is to b as c is to ?" by 3CosAdd, as `firth vectors analogy`.
pub async fn analogy(State(reg): Reg, body: Result<Bytes, BytesRejection>) -> Reply {
    let r: AnalogyReq = parse(body)?;
    let entry = entry(&reg, &r.model, Kind::Vectors)?;
    let k = in_range("k", r.k, 1, 100)?;
    let e = vectors(entry);
    let mut ids = vec![];
    for (f, w) in [("a", &r.a), ("b", &r.b), ("c", &r.c)] {
        text(f, w, false)?;
        ids.push(row_of(e, &r.model, w)?);
    }
    let d = e.dim;
    let row = |i: usize| &e.normed()[i * d..(i + 1) * d];
    let q = firth_vectors::embeddings::cosadd_query(row(ids[0]), row(ids[1]), row(ids[2]));
    let found = nearest(entry, q, k, ids).await?;
    Ok(Json(json!({"answers": found})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MapReq {
    model: String,
    words: Vec<String>,
}

/// The words on their own first two principal components, as `firth plot --vectors`.
pub async fn map(State(reg): Reg, body: Result<Bytes, BytesRejection>) -> Reply {
    let r: MapReq = parse(body)?;
    entry(&reg, &r.model, Kind::Vectors)?;
    in_range("the number of words", r.words.len(), 2, 100)?;
    for w in &r.words {
        text("a word", w, false)?;
    }
    blocking(move || {
        let e = vectors(entry(&reg, &r.model, Kind::Vectors)?);
        let missing: Vec<&String> = r.words.iter().filter(|w| e.index_of(w).is_none()).collect();
        if !missing.is_empty() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("not in the vocabulary of {}: {missing:?}", r.model),
            ));
        }
        let m =
            firth_vectors::pipeline::map_words(e, &r.words, &r.model, &r.model).map_err(refused)?;
        let points: Vec<_> = m
            .points
            .iter()
            .map(|(w, x, y)| json!({"word": w, "x": x, "y": y}))
            .collect();
        Ok(Json(json!({"points": points})))
    })
    .await
}

// ---- n-gram ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextReq {
    model: String,
    text: String,
}

/// Each line of the text scored word by word, as `firth ngram query` prints it.
pub async fn ngram_score(State(reg): Reg, body: Result<Bytes, BytesRejection>) -> Reply {
    let r: TextReq = parse(body)?;
    let Entry::Ngram(m) = entry(&reg, &r.model, Kind::Ngram)? else {
        unreachable!()
    };
    text("text", &r.text, false)?;
    let m = m.clone();
    blocking(move || {
        let mut sentences = vec![];
        let mut words = vec![];
        let (mut total, mut oov) = (0f64, 0u64);
        let mut each = |w: firth_ngram::model::WordScore| {
            total += w.log10_prob as f64;
            oov += (w.id == 0) as u64;
            words.push(json!({"word": w.word, "id": w.id, "ngram_len": w.ngram_len,
                              "log10_prob": w.log10_prob}));
            if w.end {
                sentences.push(json!({"words": std::mem::take(&mut words),
                                      "total": total as f32, "oov": oov}));
                total = 0.0;
                oov = 0;
            }
        };
        let mut rd = std::io::Cursor::new(r.text.as_bytes());
        let st = m
            .score_text(&mut rd, std::path::Path::new("text"), Some(&mut each))
            .map_err(|e| refused(e.into()))?;
        Ok(Json(json!({
            "sentences": sentences,
            "perplexity": st.perplexity(),
            "perplexity_excluding_oov": st.perplexity_excluding_oov(),
            "tokens": st.tokens,
            "oov": st.oov,
        })))
    })
    .await
}

// ---- language model ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerateReq {
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default = "twenty")]
    max_tokens: usize,
    #[serde(default = "one")]
    temperature: f64,
    #[serde(default)]
    top_k: usize,
    #[serde(default = "one")]
    top_p: f64,
    #[serde(default)]
    greedy: bool,
    #[serde(default = "seed")]
    seed: u64,
    #[serde(default = "five")]
    alternatives: usize,
}

fn twenty() -> usize {
    20
}
fn one() -> f64 {
    1.0
}
fn seed() -> u64 {
    1
}
fn five() -> usize {
    5
}

/// A continuation with each token's probability and the alternatives at every position.
pub async fn lm_generate(State(reg): Reg, body: Result<Bytes, BytesRejection>) -> Reply {
    let r: GenerateReq = parse(body)?;
    entry(&reg, &r.model, Kind::Lm)?;
    text("prompt", &r.prompt, true)?;
    in_range("max_tokens", r.max_tokens, 1, MAX_TOKENS)?;
    in_range("alternatives", r.alternatives, 1, 20)?;
    let sane = r.temperature > 0.0 && r.temperature <= 100.0 && 0.0 < r.top_p && r.top_p <= 1.0;
    if !sane {
        return Err(ApiError::bad(
            "temperature must be in (0, 100] and top_p in (0, 1]",
        ));
    }
    blocking(move || {
        let Entry::Lm(m) = entry(&reg, &r.model, Kind::Lm)? else {
            unreachable!()
        };
        let mut g = lock(m);
        let (model, vocab) = &mut *g;
        let o = firth_models::lm_text::GenerateOptions {
            prompt: r.prompt.clone(),
            greedy: r.greedy,
            temperature: r.temperature,
            top_k: r.top_k,
            top_p: r.top_p,
            beam: None,
            max_tokens: r.max_tokens,
            seed: r.seed,
        };
        let x = firth_models::lm_text::continue_explained(model, vocab, &o, r.alternatives)
            .map_err(refused)?;
        Ok(Json(json!({
            "level": format!("{:?}", model.config.level).to_lowercase(),
            "prompt": x.prompt,
            "tokens": x.tokens,
        })))
    })
    .await
}

// ---- tagger ----

/// Tags of the whitespace-separated tokens, and the entities (spans) they mark.
pub async fn tag(State(reg): Reg, body: Result<Bytes, BytesRejection>) -> Reply {
    let r: TextReq = parse(body)?;
    entry(&reg, &r.model, Kind::Tagger)?;
    text("text", &r.text, false)?;
    blocking(move || {
        use firth_models::tagger::pipeline::strip_tags;
        use firth_text::conll::{chunks, is_span_tagset, Scheme, Sentence};
        let Entry::Tagger(m) = entry(&reg, &r.model, Kind::Tagger)? else {
            unreachable!()
        };
        let tokens: Vec<String> = r.text.split_whitespace().map(String::from).collect();
        let sents = vec![Sentence {
            tokens: tokens.clone(),
            tags: vec![],
            line: 1,
            doc: 0,
        }];
        let mut g = lock(m);
        let (model, vocab) = &mut *g;
        let enc = firth_models::tagger::encode(
            &strip_tags(&sents),
            vocab,
            &model.config,
            model.char_lm.as_ref(),
            std::path::Path::new("text"),
        )
        .map_err(refused)?;
        let scheme = vocab.data_scheme.as_deref().and_then(Scheme::parse);
        let tags =
            firth_models::tagger::predict_all(model, vocab, &sents, &enc, scheme, 256).remove(0);
        let entities: Vec<_> = if is_span_tagset(&vocab.tags) {
            chunks(&tags)
                .into_iter()
                .map(|(s, e, ty)| {
                    json!({"start": s, "end": e, "type": ty, "text": tokens[s..e].join(" ")})
                })
                .collect()
        } else {
            vec![]
        };
        Ok(Json(
            json!({"tokens": tokens, "tags": tags, "entities": entities,
                       "spans": is_span_tagset(&vocab.tags)}),
        ))
    })
    .await
}

// ---- classifier ----

/// The label, every label's probability and, for attention pooling, the weight on each word.
pub async fn classify(State(reg): Reg, body: Result<Bytes, BytesRejection>) -> Reply {
    let r: TextReq = parse(body)?;
    entry(&reg, &r.model, Kind::Classifier)?;
    text("text", &r.text, false)?;
    blocking(move || {
        use firth_nn::pooling::PoolKind;
        let Entry::Classifier(m) = entry(&reg, &r.model, Kind::Classifier)? else {
            unreachable!()
        };
        let tokens: Vec<String> = r.text.split_whitespace().map(String::from).collect();
        let mut b = lock(m);
        // Ids, and the features of the model's character LMs when it reads them.
        let enc = b
            .encode(&[&tokens[..]], std::path::Path::new("text"))
            .map_err(refused)?;
        let ids = &enc.sents[0];
        let lm: Vec<&[f32]> = enc.lm.iter().map(|f| &f[..]).collect();
        let mut rng = firth_nn::Rng::new(0);
        b.model.forward(&[&ids[..]], &lm, None, false, &mut rng);
        let probs: Vec<f32> = b.model.probs().to_vec();
        let best = (0..probs.len())
            .max_by(|&x, &y| probs[x].total_cmp(&probs[y]).then(y.cmp(&x)))
            .unwrap_or(0);
        // With one sentence in the batch, the (L, B) weights are one per word.
        let attention = (b.model.config.pooling == PoolKind::Attention)
            .then(|| b.model.pool.attention().to_vec());
        let unknown: Vec<bool> = ids.iter().map(|&i| i == 0).collect();
        Ok(Json(json!({
            "tokens": tokens,
            "unknown": unknown,
            "label": b.labels[best],
            "probs": b.labels.iter().zip(&probs).map(|(l, p)| json!({"label": l, "prob": p})).collect::<Vec<_>>(),
            "pooling": format!("{:?}", b.model.config.pooling).to_lowercase(),
            "attention": attention,
        })))
    })
    .await
}

// ---- translator ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TranslateReq {
    model: String,
    text: String,
    #[serde(default = "one_usize")]
    beam: usize,
}

fn one_usize() -> usize {
    1
}

/// The translation and its attention: one row per output token (and `</s>`), one column per
/// source token, as `firth translate attention` draws it.
pub async fn translate(State(reg): Reg, body: Result<Bytes, BytesRejection>) -> Reply {
    let r: TranslateReq = parse(body)?;
    entry(&reg, &r.model, Kind::Translator)?;
    text("text", &r.text, false)?;
    in_range("beam", r.beam, 1, 10)?;
    blocking(move || {
        use firth_models::translate::{vocab, AttentionType, SearchConfig};
        let Entry::Translator(m) = entry(&reg, &r.model, Kind::Translator)? else {
            unreachable!()
        };
        let mut g = lock(m);
        let (model, v, subwords, seg) = &mut *g;
        let src_tokens: Vec<String> = seg
            .apply(&r.text)
            .split_whitespace()
            .map(String::from)
            .collect();
        let src = vocab::encode(&v.src, &src_tokens);
        let search = SearchConfig {
            beam: r.beam,
            ..SearchConfig::default()
        };
        let out = model
            .translate_ids(std::slice::from_ref(&src), search, 4000)
            .remove(0);
        let attention = (model.config.attention != AttentionType::None)
            .then(|| model.forced_attention(&src, &out));
        let mut rows: Vec<String> = out.iter().map(|&i| v.tgt.token(i).to_string()).collect();
        rows.push(vocab::EOS.to_string());
        Ok(Json(json!({
            "source": src_tokens,
            "output": rows,
            "translation": subwords.join(&v.tgt, &out),
            "attention": attention,
        })))
    })
    .await
}

// ---- insight ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelReq {
    model: String,
}

/// The run directory's CSV files as read at start.
pub async fn insight(State(reg): Reg, body: Result<Bytes, BytesRejection>) -> Reply {
    let r: ModelReq = parse(body)?;
    let Entry::Insight(i) = entry(&reg, &r.model, Kind::Insight)? else {
        unreachable!()
    };
    Ok(Json(json!(i)))
}
