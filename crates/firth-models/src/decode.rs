//! Decoding one token at a time: greedy, sampling with temperature / top-k / top-p, and beam
//! search with a length penalty and n-best output.
//!
//! The searches are written once, over [`StepDecoder`]: anything that, given the last token of
//! each of a batch of hypotheses, advances their states and scores the next token. A language
//! model is one ([`LanguageModel`]'s state is its recurrent state); an encoder-decoder
//! translator is another (its state also carries each hypothesis's row of the encoder memory).
//! [`generate`] and [`beam_search`] are the language model's front ends: they feed the prompt
//! and hand the model to [`generate_with`] / [`beam_search_with`].

use crate::lm::{LanguageModel, LmState};
use firth_nn::Rng;

/// A model that extends a batch of hypotheses by one token per step.
///
/// A search holds a `State` for B hypotheses (rows) and the scores of their next token. Each
/// step it picks tokens, keeps or reorders rows with [`Self::select`] (beam search drops the
/// worse hypotheses and duplicates the better ones), and calls [`Self::step`] with the picked
/// tokens to get the next scores.
pub trait StepDecoder {
    /// Everything per row that the next step depends on.
    type State;

    /// V, the width of a row of scores.
    fn vocab(&self) -> usize;

    /// Feeds `last` (B), the token just chosen for each row, advances every row of `state` by
    /// one step and returns the unnormalised scores of the next token, (B, V).
    fn step(&mut self, state: &mut Self::State, last: &[u32]) -> &[f32];

    /// The state of rows `rows` of `state`, in that order; a row may appear more than once.
    fn select(&self, state: &Self::State, rows: &[usize]) -> Self::State;
}

impl StepDecoder for LanguageModel<f32> {
    type State = LmState<f32>;

    fn vocab(&self) -> usize {
        LanguageModel::vocab(self)
    }

    fn step(&mut self, state: &mut LmState<f32>, last: &[u32]) -> &[f32] {
        // Without training there is no dropout, so the generator is never drawn from.
        let mut unused = Rng::new(0);
        self.forward_logits(last, 1, last.len(), state, false, &mut unused);
        self.logits()
    }

    fn select(&self, state: &LmState<f32>, rows: &[usize]) -> LmState<f32> {
        state.select(rows)
    }
}

/// How the next token is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Strategy {
    /// Always the most probable token.
    Greedy,
    /// Sample from softmax(z / temperature), restricted to the `top_k` most probable tokens
    /// (0 = all) and then to the smallest set whose probability reaches `top_p` (1 = all).
    Sample {
        temperature: f64,
        top_k: usize,
        top_p: f64,
    },
}

/// ln softmax of one row of scores, in f64.
pub fn log_softmax(z: &[f32]) -> Vec<f64> {
    let m = z.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let lse = z.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln() + m;
    z.iter().map(|&v| v as f64 - lse).collect()
}

/// The tokens a sampler may pick, with their renormalised probabilities, most probable first.
pub fn allowed(z: &[f32], temperature: f64, top_k: usize, top_p: f64) -> Vec<(u32, f64)> {
    let t = temperature.max(1e-6);
    let scaled: Vec<f32> = z.iter().map(|&v| (v as f64 / t) as f32).collect();
    let lp = log_softmax(&scaled);
    let mut order: Vec<(u32, f64)> = lp
        .iter()
        .enumerate()
        .map(|(i, &l)| (i as u32, l.exp()))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if top_k > 0 && top_k < order.len() {
        order.truncate(top_k);
    }
    if top_p < 1.0 {
        let total: f64 = order.iter().map(|p| p.1).sum();
        let mut cum = 0.0;
        let mut keep = 0;
        for (_, p) in &order {
            cum += p / total;
            keep += 1;
            if cum >= top_p {
                break;
            }
        }
        order.truncate(keep.max(1));
    }
    let total: f64 = order.iter().map(|p| p.1).sum();
    for p in &mut order {
        p.1 /= total;
    }
    order
}

/// Picks the next token from scores `z`.
pub fn choose(z: &[f32], strategy: Strategy, rng: &mut Rng) -> u32 {
    match strategy {
        Strategy::Greedy => argmax(z),
        Strategy::Sample {
            temperature,
            top_k,
            top_p,
        } => {
            let dist = allowed(z, temperature, top_k, top_p);
            let mut u = rng.uniform();
            for &(id, p) in &dist {
                if u < p {
                    return id;
                }
                u -= p;
            }
            dist.last().map(|d| d.0).unwrap_or(0)
        }
    }
}

fn argmax(z: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in z.iter().enumerate() {
        if v > z[best] {
            best = i;
        }
    }
    best as u32
}

/// Feeds `prompt` to the model (one column) and returns the state and the scores for the next
/// token. An empty prompt starts from `pad` (a sentence boundary).
pub fn prime(model: &mut LanguageModel<f32>, prompt: &[u32], pad: u32) -> (LmState<f32>, Vec<f32>) {
    let mut state = model.start_state(1, pad);
    let mut rng = Rng::new(0);
    let ids: Vec<u32> = if prompt.is_empty() {
        vec![pad]
    } else {
        prompt.to_vec()
    };
    model.forward_logits(&ids, ids.len(), 1, &mut state, false, &mut rng);
    let v = model.vocab();
    let z = model.logits()[(ids.len() - 1) * v..].to_vec();
    (state, z)
}

/// Continues `prompt` by up to `max_tokens` tokens; stops early after `stop` if given.
pub fn generate(
    model: &mut LanguageModel<f32>,
    prompt: &[u32],
    pad: u32,
    max_tokens: usize,
    strategy: Strategy,
    stop: Option<u32>,
    rng: &mut Rng,
) -> Vec<u32> {
    let (state, z) = prime(model, prompt, pad);
    let mut out = generate_with(model, state, z, max_tokens, strategy, stop, rng);
    out.pop().unwrap_or_default()
}

/// Greedy decoding or sampling for B rows at once: from `state` and the scores of each row's
/// first token, `first` (B, V), picks a token per row with [`choose`] and steps, for up to
/// `max_tokens` tokens; a row that picks `stop` ends there (with `stop` as its last token) and
/// leaves the batch. Returns each row's tokens. Rows draw from `rng` in row order each step.
pub fn generate_with<D: StepDecoder>(
    decoder: &mut D,
    state: D::State,
    first: Vec<f32>,
    max_tokens: usize,
    strategy: Strategy,
    stop: Option<u32>,
    rng: &mut Rng,
) -> Vec<Vec<u32>> {
    let v = decoder.vocab();
    assert!(
        v > 0 && first.len().is_multiple_of(v),
        "first scores are not (B, V)"
    );
    let batch = first.len() / v;
    let mut out = vec![Vec::with_capacity(max_tokens); batch];
    // Live rows: `live[i]` is the output row that row i of `state` and `z` belongs to.
    let mut live: Vec<usize> = (0..batch).collect();
    let (mut state, mut z) = (state, first);
    for n in 0..max_tokens {
        let picked: Vec<u32> = (0..live.len())
            .map(|i| choose(&z[i * v..(i + 1) * v], strategy, rng))
            .collect();
        for (&row, &tok) in live.iter().zip(&picked) {
            out[row].push(tok);
        }
        let keep: Vec<usize> = (0..live.len())
            .filter(|&i| Some(picked[i]) != stop)
            .collect();
        if keep.is_empty() || n + 1 == max_tokens {
            break;
        }
        if keep.len() < live.len() {
            state = decoder.select(&state, &keep);
            live = keep.iter().map(|&i| live[i]).collect();
        }
        let last: Vec<u32> = keep.iter().map(|&i| picked[i]).collect();
        z.clear();
        z.extend_from_slice(decoder.step(&mut state, &last));
    }
    out
}

/// GNMT's length penalty (Wu et al. 2016), lp(n) = ((5 + n) / 6)^α for a hypothesis of n
/// tokens. Beam search ranks finished hypotheses by log p / lp(n): with α = 0 that is log p,
/// which favours short outputs (every token multiplies p by at most 1); α > 0 divides the
/// (negative) log p of longer ones by more, which moves them up.
pub fn length_penalty(tokens: usize, alpha: f64) -> f64 {
    ((5.0 + tokens as f64) / 6.0).powf(alpha)
}

/// Settings of [`beam_search_with`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BeamConfig {
    /// Hypotheses kept alive each step (at least 1).
    pub beam: usize,
    /// The longest output, in tokens.
    pub max_tokens: usize,
    /// A hypothesis that emits this token is finished.
    pub stop: Option<u32>,
    /// α of [`length_penalty`]; 0 ranks by log probability alone.
    pub alpha: f64,
    /// How many hypotheses to return, best first (at most `beam`).
    pub n_best: usize,
}

/// One output of beam search.
#[derive(Clone, Debug, PartialEq)]
pub struct Hypothesis {
    pub tokens: Vec<u32>,
    /// log p(tokens | start), Σ of the steps' log softmax.
    pub log_prob: f64,
    /// log_prob / [`length_penalty`](tokens.len(), α): what the hypotheses are ranked by.
    pub score: f64,
}

/// Beam search from one row: `state` (batch 1) and `first` (V), the scores of the first token.
///
/// Each step every live hypothesis h is extended by every token w with
/// log p(h w) = log p(h) + log softmax(z_h)_w, and the `beam` best extensions by log p that do
/// not end in `stop` stay alive (those that do are finished). Finished hypotheses, and the
/// live ones after `max_tokens`, are ranked by score = log p / lp(length). The search stops
/// early once `beam` finished hypotheses all score at least what the best live one could
/// still reach: log p can only fall and lp(n) ≤ lp(max_tokens), so a live hypothesis's final
/// score is at most log p / lp(max_tokens). Returns the `n_best` best, best first.
pub fn beam_search_with<D: StepDecoder>(
    decoder: &mut D,
    state: D::State,
    first: Vec<f32>,
    cfg: &BeamConfig,
) -> Vec<Hypothesis> {
    let beam = cfg.beam.max(1);
    let v = decoder.vocab();
    assert_eq!(first.len(), v, "beam search starts from one row of scores");
    let finish = |tokens: Vec<u32>, log_prob: f64| Hypothesis {
        score: log_prob / length_penalty(tokens.len(), cfg.alpha),
        tokens,
        log_prob,
    };
    let best_first = |a: &Hypothesis, b: &Hypothesis| b.score.total_cmp(&a.score);
    // Live hypotheses: (tokens, log p); their states are the rows of `state`.
    let mut live: Vec<(Vec<u32>, f64)> = vec![(Vec::new(), 0.0)];
    let mut state = state;
    let mut scores = vec![log_softmax(&first)];
    let mut done: Vec<Hypothesis> = Vec::new();
    for n in 0..cfg.max_tokens {
        let mut cand: Vec<(usize, u32, f64)> = Vec::with_capacity(live.len() * v);
        for (h, (_, lp)) in live.iter().enumerate() {
            for (tok, &s) in scores[h].iter().enumerate() {
                cand.push((h, tok as u32, lp + s));
            }
        }
        cand.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
        let mut next_live = Vec::new();
        let mut parents = Vec::new();
        for (h, tok, lp) in cand {
            if next_live.len() >= beam {
                break;
            }
            let mut seq = live[h].0.clone();
            seq.push(tok);
            if Some(tok) == cfg.stop {
                done.push(finish(seq, lp));
            } else {
                next_live.push((seq, lp));
                parents.push(h);
            }
        }
        live = next_live;
        if live.is_empty() || n + 1 == cfg.max_tokens {
            break;
        }
        done.sort_by(best_first);
        done.truncate(beam);
        let reachable = live[0].1 / length_penalty(cfg.max_tokens, cfg.alpha);
        if done.len() >= beam && done[beam - 1].score >= reachable {
            live.clear();
            break;
        }
        state = decoder.select(&state, &parents);
        let last: Vec<u32> = live
            .iter()
            .map(|h| *h.0.last().expect("nonempty"))
            .collect();
        let zs = decoder.step(&mut state, &last);
        scores = (0..last.len())
            .map(|i| log_softmax(&zs[i * v..(i + 1) * v]))
            .collect();
    }
    done.extend(live.into_iter().map(|(tokens, lp)| finish(tokens, lp)));
    done.sort_by(best_first);
    done.truncate(cfg.n_best.min(beam));
    done
}

/// Beam search: keeps the `beam` most probable continuations at each step (by total log
/// probability) and returns them best first, each with its log probability. A hypothesis that
/// emits `stop` is finished and kept as it is.
pub fn beam_search(
    model: &mut LanguageModel<f32>,
    prompt: &[u32],
    pad: u32,
    beam: usize,
    max_tokens: usize,
    stop: Option<u32>,
) -> Vec<(Vec<u32>, f64)> {
    let (state, z) = prime(model, prompt, pad);
    let cfg = BeamConfig {
        beam,
        max_tokens,
        stop,
        alpha: 0.0,
        n_best: beam.max(1),
    };
    beam_search_with(model, state, z, &cfg)
        .into_iter()
        .map(|h| (h.tokens, h.log_prob))
        .collect()
}
