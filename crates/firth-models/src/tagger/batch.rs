//! Padded batches of sentences, and an epoch's plan of them.

use super::vocab::Encoded;
use firth_nn::Rng;

/// One padded batch, built into reused buffers.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub steps: usize,
    pub batch: usize,
    pub lengths: Vec<usize>,
    pub words: Vec<u32>, // (L, B), 0 at padding
    pub tags: Vec<u32>,  // (L, B), 0 at padding
    /// Row t·B + b of each real token, in row order; N = rows.len().
    pub rows: Vec<usize>,
    /// Token index n of each row in `rows`: which sentence and position it came from.
    pub origin: Vec<(usize, usize)>,
    pub char_steps: usize,
    pub char_ids: Vec<u32>,       // (Lc, N)
    pub char_lengths: Vec<usize>, // (N)
    pub cases: Vec<u32>,          // (N) capitalisation class of each real token
    /// Character-LM features of each real token, (N, char_lm_dim); empty without them.
    pub lm: Vec<f32>,
}

impl Batch {
    /// Fills the batch from `sents` (indices into `data`).
    pub fn fill(&mut self, data: &[Encoded], sents: &[usize]) {
        let b_n = sents.len();
        let l_n = sents
            .iter()
            .map(|&i| data[i].words.len())
            .max()
            .unwrap_or(0);
        self.steps = l_n;
        self.batch = b_n;
        self.lengths.clear();
        self.lengths
            .extend(sents.iter().map(|&i| data[i].words.len()));
        self.words.clear();
        self.words.resize(l_n * b_n, 0);
        self.tags.clear();
        self.tags.resize(l_n * b_n, 0);
        self.rows.clear();
        self.origin.clear();
        for t in 0..l_n {
            for (b, &i) in sents.iter().enumerate() {
                let s = &data[i];
                if t < s.words.len() {
                    self.words[t * b_n + b] = s.words[t];
                    if let Some(&g) = s.tags.get(t) {
                        self.tags[t * b_n + b] = g;
                    }
                    self.rows.push(t * b_n + b);
                    self.origin.push((i, t));
                }
            }
        }
        let n = self.rows.len();
        self.cases.clear();
        self.cases.extend(
            self.origin
                .iter()
                .map(|&(i, t)| data[i].cases.get(t).copied().unwrap_or(4)),
        );
        self.lm.clear();
        for &(i, t) in &self.origin {
            let f = &data[i].lm;
            let k = f.len() / data[i].words.len();
            self.lm.extend_from_slice(&f[t * k..(t + 1) * k]);
        }
        self.char_lengths.clear();
        self.char_lengths.extend(
            self.origin
                .iter()
                .map(|&(i, t)| data[i].chars[t].len().max(1)),
        );
        self.char_steps = self.char_lengths.iter().copied().max().unwrap_or(1);
        self.char_ids.clear();
        self.char_ids.resize(self.char_steps * n, 0);
        for (k, &(i, t)) in self.origin.iter().enumerate() {
            for (c, &id) in data[i].chars[t].iter().enumerate() {
                self.char_ids[c * n + k] = id;
            }
        }
    }
}

/// Shuffles sentence indices, sorts them by length within pools of 50 batches (so a batch
/// holds sentences of similar length and little padding), cuts batches, shuffles their order.
pub fn make_batches(data: &[Encoded], batch: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let batch = batch.max(1);
    let mut idx: Vec<usize> = (0..data.len()).collect();
    shuffle(&mut idx, rng);
    let mut out = Vec::new();
    for pool in idx.chunks_mut(batch * 50) {
        pool.sort_by_key(|&i| data[i].words.len());
        out.extend(pool.chunks(batch).map(|c| c.to_vec()));
    }
    shuffle(&mut out, rng);
    out
}

fn shuffle<X>(v: &mut [X], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}
