//! Generating text from a language model: greedy, sampling with temperature / top-k / top-p,
//! and beam search.

use crate::lm::{LanguageModel, LmState};
use firth_nn::Rng;

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
    let (mut state, mut z) = prime(model, prompt, pad);
    let mut out = Vec::with_capacity(max_tokens);
    let mut scratch = Rng::new(0);
    for _ in 0..max_tokens {
        let next = choose(&z, strategy, rng);
        out.push(next);
        if Some(next) == stop {
            break;
        }
        model.forward_logits(&[next], 1, 1, &mut state, false, &mut scratch);
        z.clear();
        z.extend_from_slice(model.logits());
    }
    out
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
    let beam = beam.max(1);
    let v = model.vocab();
    let (state, z) = prime(model, prompt, pad);
    let mut scratch = Rng::new(0);
    // Live hypotheses: (tokens, log p); their states are the columns of `state`.
    let mut live: Vec<(Vec<u32>, f64)> = vec![(Vec::new(), 0.0)];
    let mut state = state;
    let mut scores = vec![log_softmax(&z)];
    let mut done: Vec<(Vec<u32>, f64)> = Vec::new();
    for _ in 0..max_tokens {
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
            if Some(tok) == stop {
                done.push((seq, lp));
            } else {
                next_live.push((seq, lp));
                parents.push(h);
            }
        }
        if next_live.is_empty() {
            break;
        }
        // Prune finished hypotheses that can no longer be beaten: log p only falls with length.
        let best_live = next_live[0].1;
        done.sort_by(|a, b| b.1.total_cmp(&a.1));
        done.truncate(beam);
        if done.len() >= beam && done[beam - 1].1 >= best_live {
            live = Vec::new();
            break;
        }
        state = state.select(&parents);
        let last: Vec<u32> = next_live
            .iter()
            .map(|h| *h.0.last().expect("nonempty"))
            .collect();
        model.forward_logits(&last, 1, last.len(), &mut state, false, &mut scratch);
        let zs = model.logits();
        scores = (0..last.len())
            .map(|i| log_softmax(&zs[i * v..(i + 1) * v]))
            .collect();
        live = next_live;
    }
    done.extend(live);
    done.sort_by(|a, b| b.1.total_cmp(&a.1));
    done.truncate(beam);
    done
}
