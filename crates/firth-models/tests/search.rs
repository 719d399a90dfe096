//! The generic searches over `StepDecoder`: length penalty, n-best lists, batched greedy
//! decoding, and exactness of a wide beam with α = 0.

use firth_models::decode::{
    beam_search_with, generate_with, length_penalty, log_softmax, prime, BeamConfig, StepDecoder,
    Strategy,
};
use firth_models::lm::{Arch, LanguageModel, LmConfig};
use firth_nn::Rng;
use firth_text::Level;

/// Two tokens, 0 = stop and 1 = "a", with p(next | k a's so far) from a table; the state of a
/// row is its number of a's.
struct Table {
    probs: Vec<[f32; 2]>,
    scores: Vec<f32>,
}

impl Table {
    fn scores_after(&self, k: usize) -> [f32; 2] {
        let p = self.probs[k.min(self.probs.len() - 1)];
        [p[0].ln(), p[1].ln()]
    }
}

impl StepDecoder for Table {
    type State = Vec<usize>;
    fn vocab(&self) -> usize {
        2
    }
    fn step(&mut self, state: &mut Vec<usize>, last: &[u32]) -> &[f32] {
        assert_eq!(state.len(), last.len());
        self.scores.clear();
        for (k, &tok) in state.iter_mut().zip(last) {
            assert_eq!(tok, 1, "only unfinished rows are stepped");
            *k += 1;
            let z = self.scores_after(*k);
            self.scores.extend_from_slice(&z);
        }
        &self.scores
    }
    fn select(&self, state: &Vec<usize>, rows: &[usize]) -> Vec<usize> {
        rows.iter().map(|&r| state[r]).collect()
    }
}

fn table() -> Table {
    // p(stop) = 0.4 first, then 0.6: "stop" = 0.4, "a stop" = 0.6·0.6 = 0.36, "a a" = 0.24.
    Table {
        probs: vec![[0.4, 0.6], [0.6, 0.4]],
        scores: Vec::new(),
    }
}

fn search(alpha: f64, n_best: usize) -> Vec<(Vec<u32>, f64, f64)> {
    let mut t = table();
    let first = t.scores_after(0).to_vec();
    let cfg = BeamConfig {
        beam: 3,
        max_tokens: 2,
        stop: Some(0),
        alpha,
        n_best,
    };
    beam_search_with(&mut t, vec![0], first, &cfg)
        .into_iter()
        .map(|h| (h.tokens, h.log_prob, h.score))
        .collect()
}

#[test]
fn length_penalty_changes_the_ranking_as_computed_by_hand() {
    assert_eq!(length_penalty(1, 1.0), 1.0);
    assert!((length_penalty(2, 1.0) - 7.0 / 6.0).abs() < 1e-15);
    assert_eq!(length_penalty(9, 0.0), 1.0);
    // α = 0: by probability, "stop" (0.4) > "a stop" (0.36) > "a a" (0.24).
    let plain = search(0.0, 3);
    let tokens: Vec<&Vec<u32>> = plain.iter().map(|h| &h.0).collect();
    assert_eq!(tokens, [&vec![0], &vec![1, 0], &vec![1, 1]]);
    for (h, p) in plain.iter().zip([0.4f64, 0.36, 0.24]) {
        assert!((h.1 - p.ln()).abs() < 1e-6, "{h:?}");
        assert_eq!(h.1, h.2);
    }
    // α = 1: lp(1) = 1, lp(2) = 7/6. "a stop" scores ln 0.36 · 6/7 = -0.8757 and overtakes
    // "stop" at ln 0.4 = -0.9163; "a a" scores ln 0.24 · 6/7 = -1.2233.
    let long = search(1.0, 3);
    let tokens: Vec<&Vec<u32>> = long.iter().map(|h| &h.0).collect();
    assert_eq!(tokens, [&vec![1, 0], &vec![0], &vec![1, 1]]);
    let want = [
        0.36f64.ln() * 6.0 / 7.0,
        0.4f64.ln(),
        0.24f64.ln() * 6.0 / 7.0,
    ];
    for (h, w) in long.iter().zip(want) {
        assert!((h.2 - w).abs() < 1e-6, "{h:?} vs {w}");
    }
}

#[test]
fn n_best_returns_n_distinct_hypotheses_best_first() {
    for n in 1..=3 {
        let hyps = search(0.5, n);
        assert_eq!(hyps.len(), n);
        assert!(hyps.windows(2).all(|w| w[0].2 >= w[1].2));
        for i in 0..n {
            for j in i + 1..n {
                assert_ne!(hyps[i].0, hyps[j].0);
            }
        }
    }
}

#[test]
fn greedy_decodes_rows_independently_and_drops_finished_ones() {
    let mut t = table();
    // Row 0 starts having seen one "a" (stop is likelier next), row 1 none.
    let mut first = t.scores_after(1).to_vec();
    first.extend_from_slice(&t.scores_after(0));
    let out = generate_with(
        &mut t,
        vec![1, 0],
        first,
        5,
        Strategy::Greedy,
        Some(0),
        &mut Rng::new(0),
    );
    // Row 0: stop at once. Row 1: "a" (0.6), then stop (0.6).
    assert_eq!(out, vec![vec![0], vec![1, 0]]);
}

fn tiny_model(seed: u64) -> LanguageModel<f32> {
    let cfg = LmConfig {
        emb: 3,
        context: 2,
        init_range: 1.5,
        ..LmConfig::new(Arch::Gru, Level::Word, 3, 4)
    };
    LanguageModel::new(cfg, &mut Rng::new(seed)).unwrap()
}

#[test]
fn wide_beam_with_alpha_zero_is_exhaustive_over_the_language_model() {
    for seed in 0..3 {
        let mut m = tiny_model(seed);
        let len = 3u32;
        // Every sequence of 3 tokens, scored by stepping the model.
        let mut all = Vec::new();
        for code in 0..3u32.pow(len) {
            let seq: Vec<u32> = (0..len).map(|i| (code / 3u32.pow(i)) % 3).collect();
            let (mut state, z) = prime(&mut m, &[1], 0);
            let mut total = log_softmax(&z)[seq[0] as usize];
            for w in seq.windows(2) {
                let zs = StepDecoder::step(&mut m, &mut state, &[w[0]]).to_vec();
                total += log_softmax(&zs)[w[1] as usize];
            }
            all.push((seq, total));
        }
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        let (state, z) = prime(&mut m, &[1], 0);
        let cfg = BeamConfig {
            beam: 9,
            max_tokens: len as usize,
            stop: None,
            alpha: 0.0,
            n_best: 4,
        };
        let hyps = beam_search_with(&mut m, state, z, &cfg);
        assert_eq!(hyps.len(), 4);
        for (h, want) in hyps.iter().zip(&all) {
            assert_eq!(h.tokens, want.0, "seed {seed}");
            assert!((h.log_prob - want.1).abs() < 1e-4);
        }
    }
}
