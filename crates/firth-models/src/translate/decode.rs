//! Translating: the encoder once per batch of sentences, then the decoder one step at a time
//! for all live hypotheses at once.
//!
//! The inference step is written apart from the training forward (which caches every step
//! for the backward): it keeps only each row's current state, so rows can be dropped
//! (finished sentences) or reordered and duplicated (beam search) between steps. A row
//! belongs to one source sentence (`DecodeState::sent`); the encoder memory and the keys
//! the attention scores against (M·W for general, M·W_k for additive attention) are computed
//! once per batch of sentences and shared by all rows of a sentence. Buffers are reused from
//! step to step and batch to batch. The test `stepwise_decoding_equals_teacher_forcing`
//! checks this path against the training forward on the same tokens.

use super::model::{resize, AttentionType, PairBatch, Translator};
use super::vocab::{BOS_ID, EOS_ID, PAD_ID};
use crate::decode::{beam_search_with, length_penalty, BeamConfig, Hypothesis, StepDecoder};
use firth_nn::gemm::{gemm, Op, Out};
use firth_nn::kernels;
use firth_nn::{CellKind, Gemm, Rng};

/// Per-batch encoder results and per-step scratch of the inference path.
#[derive(Clone, Debug, Default)]
pub struct Inference<T> {
    sents: usize,
    src_steps: usize,
    src_len: Vec<usize>,
    src_ids: Vec<u32>,
    x_src: Vec<T>,
    memory: Vec<T>, // (S, Bs, Dv)
    keys: Vec<T>,   // general: (S, Bs, Hd); additive: (S, Bs, A)
    bridge_x: Vec<T>,
    x0: Vec<T>,      // (R, E + F)
    layer_x: Vec<T>, // (R, Hd)
    gates: Vec<T>,   // (R, G·H)
    hp: Vec<T>,      // (R, G·H)
    h_new: Vec<T>,   // (R, H)
    c_new: Vec<T>,   // (R, H)
    tanh_c: Vec<T>,  // (R, H)
    hn: Vec<T>,      // (R, H) GRU
    qp: Vec<T>,      // (R, A) additive
    scores: Vec<T>,  // (S)
    u: Vec<T>,       // (A) additive scratch
    /// α of the last step, (R, S), zero beyond each source's length.
    pub alpha: Vec<T>,
    ctx: Vec<T>,    // (R, Dv)
    cat: Vec<T>,    // (R, Dv + Hd)
    logits: Vec<T>, // (R, V)
    ids: Vec<u32>,  // (R)
}

/// The decoder state of R hypotheses.
#[derive(Clone, Debug, Default)]
pub struct DecodeState<T> {
    pub rows: usize,
    /// The source sentence (of the encoded batch) each row translates.
    pub sent: Vec<usize>,
    pub h: Vec<T>,    // (Ld, R, Hd)
    pub c: Vec<T>,    // (Ld, R, Hd), LSTM only
    pub feed: Vec<T>, // (R, Hd) h~ of the last step
}

impl<T: Gemm> DecodeState<T> {
    /// The state of rows `rows`, in that order (repeats allowed).
    pub fn select(&self, rows: &[usize]) -> DecodeState<T> {
        let r_old = self.rows.max(1);
        let hd = self.feed.len() / r_old;
        let layers = if hd == 0 {
            0
        } else {
            self.h.len() / (r_old * hd)
        };
        let gather = |src: &[T]| -> Vec<T> {
            let mut out = Vec::with_capacity(layers * rows.len() * hd);
            if src.is_empty() {
                return out;
            }
            for l in 0..layers {
                for &r in rows {
                    out.extend_from_slice(&src[(l * self.rows + r) * hd..][..hd]);
                }
            }
            out
        };
        let mut feed = Vec::with_capacity(rows.len() * hd);
        for &r in rows {
            feed.extend_from_slice(&self.feed[r * hd..][..hd]);
        }
        DecodeState {
            rows: rows.len(),
            sent: rows.iter().map(|&r| self.sent[r]).collect(),
            h: gather(&self.h),
            c: gather(&self.c),
            feed,
        }
    }

    /// Keeps rows `keep` (ascending), moving them to the front in place.
    fn compact(&mut self, keep: &[usize]) {
        let hd = self.feed.len() / self.rows.max(1);
        let layers = self.h.len() / (self.rows * hd).max(1);
        let (r_old, r_new) = (self.rows, keep.len());
        for buf in [&mut self.h, &mut self.c] {
            if buf.is_empty() {
                continue;
            }
            for l in 0..layers {
                for (i, &r) in keep.iter().enumerate() {
                    let (src, dst) = ((l * r_old + r) * hd, (l * r_new + i) * hd);
                    buf.copy_within(src..src + hd, dst);
                }
            }
            buf.truncate(layers * r_new * hd);
        }
        for (i, &r) in keep.iter().enumerate() {
            self.feed.copy_within(r * hd..(r + 1) * hd, i * hd);
            self.sent[i] = self.sent[r];
        }
        self.feed.truncate(r_new * hd);
        self.sent.truncate(r_new);
        self.rows = r_new;
    }
}

/// How sentences are decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchConfig {
    /// 1 = greedy (batched over sentences); more = beam search, one sentence at a time.
    pub beam: usize,
    /// GNMT length-penalty α (beam only).
    pub alpha: f64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            beam: 1,
            alpha: 0.0,
        }
    }
}

/// The non-empty sources' indices in decoding batches of similar length: sorted by length,
/// each batch at most `batch_tokens / beam` source tokens (a beam of K keeps K rows per
/// sentence, so K times fewer sentences fit), a longer sentence alone.
pub fn similar_length_batches(
    srcs: &[Vec<u32>],
    batch_tokens: usize,
    beam: usize,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..srcs.len()).filter(|&i| !srcs[i].is_empty()).collect();
    order.sort_by_key(|&i| srcs[i].len());
    let cap = (batch_tokens / beam.max(1)).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && (end + 1 - start) * srcs[order[end]].len() <= cap {
            end += 1;
        }
        out.push(order[start..end].to_vec());
        start = end;
    }
    out
}

/// The longest output for a source of `n` tokens: 2n + 10.
pub fn max_output(n: usize) -> usize {
    2 * n + 10
}

impl<T: Gemm> Translator<T> {
    /// Encodes a batch of source sentences (each non-empty) and returns the decoder's start
    /// state, one row per sentence.
    pub fn encode_sources(&mut self, srcs: &[&[u32]]) -> DecodeState<T> {
        let c = self.config.clone();
        let (e, hd, dv, he) = (c.emb, c.dec_hidden, c.memory(), c.enc_hidden);
        let b_n = srcs.len();
        let inf = &mut self.inf;
        inf.sents = b_n;
        inf.src_len.clear();
        inf.src_len.extend(srcs.iter().map(|s| s.len()));
        assert!(inf.src_len.iter().all(|&n| n > 0), "empty source sentence");
        let s_n = inf.src_len.iter().copied().max().unwrap_or(0);
        inf.src_steps = s_n;
        inf.src_ids.clear();
        inf.src_ids.resize(s_n * b_n, PAD_ID);
        for (b, s) in srcs.iter().enumerate() {
            for (t, &w) in s.iter().enumerate() {
                inf.src_ids[t * b_n + b] = w;
            }
        }
        resize(&mut inf.x_src, s_n * b_n * e);
        self.src_emb.forward(&inf.src_ids, &mut inf.x_src);
        let mut rng = Rng::new(0);
        let mem = self
            .encoder
            .forward(&inf.x_src, s_n, b_n, &inf.src_len, false, &mut rng);
        inf.memory.clear();
        inf.memory.extend_from_slice(mem);
        match c.attention {
            AttentionType::General => {
                resize(&mut inf.keys, s_n * b_n * hd);
                let w = &self.attn.w.as_ref().expect("general attention has W").value;
                gemm(
                    &mut inf.keys,
                    Out::Set,
                    &inf.memory,
                    Op::N,
                    w,
                    Op::N,
                    s_n * b_n,
                    hd,
                    dv,
                );
            }
            AttentionType::Additive => {
                resize(&mut inf.keys, s_n * b_n * hd);
                let w_k = &self.attn.w_k.as_ref().expect("additive has W_k").value;
                gemm(
                    &mut inf.keys,
                    Out::Set,
                    &inf.memory,
                    Op::N,
                    w_k,
                    Op::N,
                    s_n * b_n,
                    hd,
                    dv,
                );
            }
            _ => {}
        }
        let ld = c.dec_layers;
        let lstm = c.cell == CellKind::Lstm;
        let mut st = DecodeState {
            rows: b_n,
            sent: (0..b_n).collect(),
            h: vec![T::ZERO; ld * b_n * hd],
            c: if lstm {
                vec![T::ZERO; ld * b_n * hd]
            } else {
                Vec::new()
            },
            feed: vec![T::ZERO; b_n * hd],
        };
        resize(&mut inf.bridge_x, b_n * dv);
        for l in 0..ld {
            let k = c.bridge_source(l);
            let gather = |fin: &[T], x: &mut [T]| {
                for b in 0..b_n {
                    let row = &mut x[b * dv..][..dv];
                    row[..he].copy_from_slice(&fin[((2 * k) * b_n + b) * he..][..he]);
                    row[he..].copy_from_slice(&fin[((2 * k + 1) * b_n + b) * he..][..he]);
                }
            };
            gather(self.encoder.final_h(), &mut inf.bridge_x);
            let h0 = &mut st.h[l * b_n * hd..][..b_n * hd];
            self.bridge[l].h.forward(&inf.bridge_x, h0);
            h0.iter_mut().for_each(|v| *v = v.tanh());
            if let Some(bc) = &self.bridge[l].c {
                gather(self.encoder.final_c(), &mut inf.bridge_x);
                bc.forward(&inf.bridge_x, &mut st.c[l * b_n * hd..][..b_n * hd]);
            }
        }
        st
    }

    /// Feeds `last` (R), the previous token of each row, advances every row by one step and
    /// returns the scores of the next token, (R, V). The attention weights of the step are in
    /// `self.inf.alpha` (R, S).
    pub fn decode_step(&mut self, st: &mut DecodeState<T>, last: &[u32]) -> &[T] {
        let c = &self.config;
        let (e, hd, dv, f, v) = (
            c.emb,
            c.dec_hidden,
            c.memory(),
            if c.input_feeding { c.dec_hidden } else { 0 },
            c.tgt_vocab,
        );
        let rows = st.rows;
        assert_eq!(last.len(), rows, "one token per row");
        let inf = &mut self.inf;
        let ld = c.dec_layers;
        let lstm = c.cell == CellKind::Lstm;
        // x0 = [emb(last) ; h~_{t-1}]
        resize(&mut inf.x0, rows * (e + f));
        let ev = &self.tgt_emb.weight.value;
        for (r, &w) in last.iter().enumerate() {
            let x = &mut inf.x0[r * (e + f)..][..e + f];
            x[..e].copy_from_slice(&ev[w as usize * e..][..e]);
            if f > 0 {
                x[e..].copy_from_slice(&st.feed[r * hd..][..hd]);
            }
        }
        let g_n = c.cell.gates() * hd;
        resize(&mut inf.gates, rows * g_n);
        resize(&mut inf.hp, rows * g_n);
        resize(&mut inf.h_new, rows * hd);
        resize(&mut inf.c_new, rows * hd);
        resize(&mut inf.tanh_c, rows * hd);
        resize(&mut inf.hn, rows * hd);
        resize(&mut inf.layer_x, rows * hd);
        for l in 0..ld {
            let dec = &self.decoder[l];
            let x: &[T] = if l == 0 { &inf.x0 } else { &inf.layer_x };
            let input = dec.input;
            // gates = x·W_x + b;  hp = h·W_h
            gemm(
                &mut inf.gates,
                Out::Set,
                x,
                Op::N,
                &dec.w_x.value,
                Op::N,
                rows,
                g_n,
                input,
            );
            kernels::add_bias(&mut inf.gates, &dec.b.value);
            let h = &mut st.h[l * rows * hd..][..rows * hd];
            gemm(
                &mut inf.hp,
                Out::Set,
                h,
                Op::N,
                &dec.w_h.value,
                Op::N,
                rows,
                g_n,
                hd,
            );
            if lstm {
                let cc = &mut st.c[l * rows * hd..][..rows * hd];
                kernels::lstm_forward(
                    &mut inf.gates,
                    &inf.hp,
                    cc,
                    &mut inf.c_new,
                    &mut inf.tanh_c,
                    &mut inf.h_new,
                    hd,
                );
                cc.copy_from_slice(&inf.c_new);
            } else {
                let bh = &dec.b_h.as_ref().expect("GRU has b_h").value;
                kernels::gru_forward(
                    &mut inf.gates,
                    &inf.hp,
                    bh,
                    h,
                    &mut inf.hn,
                    &mut inf.h_new,
                    hd,
                );
            }
            h.copy_from_slice(&inf.h_new);
            inf.layer_x.copy_from_slice(&inf.h_new);
        }
        // The top state is in layer_x (and in st.h's last block).
        match &self.combine {
            None => st.feed.copy_from_slice(&inf.layer_x),
            Some(comb) => {
                let inf = &mut self.inf;
                attend(c, &self.attn, inf, st);
                resize(&mut inf.cat, rows * (dv + hd));
                for r in 0..rows {
                    let row = &mut inf.cat[r * (dv + hd)..][..dv + hd];
                    row[..dv].copy_from_slice(&inf.ctx[r * dv..][..dv]);
                    row[dv..].copy_from_slice(&inf.layer_x[r * hd..][..hd]);
                }
                comb.forward(&inf.cat, &mut st.feed);
                st.feed.iter_mut().for_each(|x| *x = x.tanh());
            }
        }
        let inf = &mut self.inf;
        resize(&mut inf.logits, rows * v);
        let w = match &self.out_w {
            Some(w) => &w.value,
            None => &self.tgt_emb.weight.value,
        };
        firth_nn::linear::affine_forward(
            &st.feed,
            w,
            Some(&self.out_b.value),
            &mut inf.logits,
            hd,
            v,
        );
        &inf.logits
    }

    /// Greedy decoding of a batch of sources (each non-empty): every step feeds each live
    /// row its last choice and takes the most probable next token; a row stops at </s> or
    /// after [`max_output`] tokens. Returns the tokens without </s>.
    pub fn greedy(&mut self, srcs: &[&[u32]]) -> Vec<Vec<u32>> {
        let mut st = self.encode_sources(srcs);
        let b_n = srcs.len();
        let v = self.config.tgt_vocab;
        let limits: Vec<usize> = srcs.iter().map(|s| max_output(s.len())).collect();
        let longest = limits.iter().copied().max().unwrap_or(0);
        let mut out: Vec<Vec<u32>> = vec![Vec::new(); b_n];
        let mut ids = std::mem::take(&mut self.inf.ids);
        ids.clear();
        ids.resize(b_n, BOS_ID);
        let mut keep = Vec::with_capacity(b_n);
        for n in 0..longest {
            let z = self.decode_step(&mut st, &ids);
            keep.clear();
            for r in 0..st.rows {
                let row = &z[r * v..][..v];
                let mut best = 0;
                for (i, &x) in row.iter().enumerate() {
                    if x > row[best] {
                        best = i;
                    }
                }
                let s = st.sent[r];
                ids[r] = best as u32;
                if best as u32 != EOS_ID {
                    out[s].push(best as u32);
                    if n + 1 < limits[s] {
                        keep.push(r);
                    }
                }
            }
            if keep.is_empty() {
                break;
            }
            if keep.len() < st.rows {
                for (i, &r) in keep.iter().enumerate() {
                    ids[i] = ids[r];
                }
                ids.truncate(keep.len());
                st.compact(&keep);
            }
        }
        self.inf.ids = ids;
        out
    }

    /// The attention of a translation: α (T, S) of each output step, running the decoder on
    /// `out` (the tokens, without </s>; one row more for </s>).
    pub fn forced_attention(&mut self, src: &[u32], out: &[u32]) -> Vec<Vec<f32>> {
        let mut b = PairBatch::default();
        b.fill(std::iter::once((src, out)), BOS_ID, EOS_ID, PAD_ID);
        self.forward_body(&b, false, &mut Rng::new(0));
        (0..b.tgt_steps)
            .map(|t| {
                self.attention_weights(t)
                    .iter()
                    .map(|x| x.to_f64() as f32)
                    .collect()
            })
            .collect()
    }

    /// For each pair (source, output) the source position each output token attends to most,
    /// from a teacher-forced pass over the outputs (batched).
    pub fn alignments(&mut self, pairs: &[(&[u32], &[u32])]) -> Vec<Vec<usize>> {
        if self.combine.is_none() || pairs.is_empty() {
            return pairs.iter().map(|p| vec![0; p.1.len()]).collect();
        }
        let mut b = PairBatch::default();
        b.fill(pairs.iter().copied(), BOS_ID, EOS_ID, PAD_ID);
        self.forward_body(&b, false, &mut Rng::new(0));
        let s_n = b.src_steps;
        pairs
            .iter()
            .enumerate()
            .map(|(r, (_, out))| {
                (0..out.len())
                    .map(|t| {
                        let w = &self.attention_weights(t)[r * s_n..][..s_n];
                        let mut best = 0;
                        for (s, &x) in w.iter().enumerate() {
                            if x > w[best] {
                                best = s;
                            }
                        }
                        best
                    })
                    .collect()
            })
            .collect()
    }
}

impl Translator<f32> {
    /// Beam search for one non-empty source: the `n_best` best outputs (without </s>), at
    /// most [`max_output`] tokens long.
    pub fn beam(&mut self, src: &[u32], beam: usize, alpha: f64, n_best: usize) -> Vec<Hypothesis> {
        self.beam_batch(&[src], beam, alpha, n_best, &max_output)
            .remove(0)
    }

    /// Beam search for one non-empty source with explicit settings (`stop` is </s>); the
    /// hypotheses' tokens keep a final </s>, as their scores count it.
    pub fn beam_with(&mut self, src: &[u32], cfg: &BeamConfig) -> Vec<Hypothesis> {
        let mut st = self.encode_sources(&[src]);
        let first = self.decode_step(&mut st, &[BOS_ID]).to_vec();
        let cfg = BeamConfig {
            stop: Some(EOS_ID),
            ..*cfg
        };
        beam_search_with(self, st, first, &cfg)
    }

    /// Translates token-id sources: greedy in batches of sentences of similar length (at most
    /// `batch_tokens` source tokens each), or beam search one sentence at a time. Empty
    /// sources give empty outputs.
    pub fn translate_ids(
        &mut self,
        srcs: &[Vec<u32>],
        search: SearchConfig,
        batch_tokens: usize,
    ) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); srcs.len()];
        for group in similar_length_batches(srcs, batch_tokens, search.beam) {
            let batch: Vec<&[u32]> = group.iter().map(|&i| &srcs[i][..]).collect();
            let outs = if search.beam > 1 {
                self.beam_batch(&batch, search.beam, search.alpha, 1, &max_output)
                    .into_iter()
                    .map(|hyps| {
                        let mut best = hyps
                            .into_iter()
                            .next()
                            .map(|h| h.tokens)
                            .unwrap_or_default();
                        if best.last() == Some(&EOS_ID) {
                            best.pop();
                        }
                        best
                    })
                    .collect()
            } else {
                self.greedy(&batch)
            };
            for (&i, o) in group.iter().zip(outs) {
                out[i] = o;
            }
        }
        out
    }

    /// Beam search for a batch of non-empty sources at once: every step runs the live
    /// hypotheses of all sentences as the rows of one decoder step. Per sentence it is exactly
    /// [`beam_search_with`] (the same candidates, order, finishing and early stop, up to the
    /// f32 rounding of scores computed in differently sized batches; the test
    /// `batched_beam_equals_the_generic_search` checks it), with at most
    /// `max_tokens(source length)` tokens. Returns each sentence's `n_best` hypotheses, best
    /// first; finished ones end in </s>.
    pub fn beam_batch(
        &mut self,
        srcs: &[&[u32]],
        beam: usize,
        alpha: f64,
        n_best: usize,
        max_tokens: &dyn Fn(usize) -> usize,
    ) -> Vec<Vec<Hypothesis>> {
        struct Sent {
            /// Live hypotheses (tokens, log p), best first; row `rows[i]` of the state.
            live: Vec<(Vec<u32>, f64)>,
            rows: Vec<usize>,
            done: Vec<Hypothesis>,
            max_tokens: usize,
            active: bool,
        }
        let beam = beam.max(1);
        let v = self.config.tgt_vocab;
        let n_s = srcs.len();
        let mut st = self.encode_sources(srcs);
        let mut sents: Vec<Sent> = srcs
            .iter()
            .enumerate()
            .map(|(i, s)| Sent {
                live: vec![(Vec::new(), 0.0)],
                rows: vec![i],
                done: Vec::new(),
                max_tokens: max_tokens(s.len()),
                active: max_tokens(s.len()) > 0,
            })
            .collect();
        let finish = |tokens: Vec<u32>, log_prob: f64| Hypothesis {
            score: log_prob / length_penalty(tokens.len(), alpha),
            tokens,
            log_prob,
        };
        let best_first = |a: &Hypothesis, b: &Hypothesis| b.score.total_cmp(&a.score);
        let mut last = vec![BOS_ID; n_s];
        let mut top: Vec<(u32, f64)> = Vec::with_capacity(beam + 2);
        let mut lsm: Vec<f64> = Vec::with_capacity(v);
        for n in 0.. {
            if sents.iter().all(|s| !s.active) {
                break;
            }
            let z = self.decode_step(&mut st, &last).to_vec();
            let mut next_rows: Vec<usize> = Vec::new();
            let mut next_last: Vec<u32> = Vec::new();
            for s in sents.iter_mut().filter(|s| s.active) {
                // Each row's K+1 best tokens hold every candidate the search can take.
                let mut cand: Vec<(usize, u32, f64)> =
                    Vec::with_capacity(s.live.len() * (beam + 1));
                for (h, (_, lp)) in s.live.iter().enumerate() {
                    let row = &z[s.rows[h] * v..][..v];
                    log_softmax_into(row, &mut lsm);
                    top.clear();
                    for (tok, &x) in lsm.iter().enumerate() {
                        if top.len() == beam + 1 && x <= top[beam].1 {
                            continue;
                        }
                        let at = top.partition_point(|&(_, y)| y >= x);
                        top.insert(at, (tok as u32, x));
                        top.truncate(beam + 1);
                    }
                    cand.extend(top.iter().map(|&(tok, x)| (h, tok, lp + x)));
                }
                cand.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)).then(a.1.cmp(&b.1)));
                let mut live = Vec::new();
                let mut parents = Vec::new();
                for (h, tok, lp) in cand {
                    if live.len() >= beam {
                        break;
                    }
                    let mut seq = s.live[h].0.clone();
                    seq.push(tok);
                    if tok == EOS_ID {
                        s.done.push(finish(seq, lp));
                    } else {
                        live.push((seq, lp));
                        parents.push(s.rows[h]);
                    }
                }
                s.live = live;
                let mut stop = s.live.is_empty() || n + 1 == s.max_tokens;
                if !stop {
                    s.done.sort_by(best_first);
                    s.done.truncate(beam);
                    let reachable = s.live[0].1 / length_penalty(s.max_tokens, alpha);
                    if s.done.len() >= beam && s.done[beam - 1].score >= reachable {
                        s.live.clear();
                        stop = true;
                    }
                }
                if stop {
                    s.active = false;
                    let live = std::mem::take(&mut s.live);
                    s.done.extend(live.into_iter().map(|(t, lp)| finish(t, lp)));
                    s.done.sort_by(best_first);
                    s.done.truncate(n_best.min(beam));
                    continue;
                }
                s.rows.clear();
                for (p, (seq, _)) in parents.iter().zip(&s.live) {
                    s.rows.push(next_rows.len());
                    next_rows.push(*p);
                    next_last.push(*seq.last().expect("nonempty"));
                }
            }
            if next_rows.is_empty() {
                break;
            }
            st = st.select(&next_rows);
            last = next_last;
        }
        sents.into_iter().map(|s| s.done).collect()
    }
}

/// ln softmax of a row of scores, in f64, into `out`.
fn log_softmax_into<T: Gemm>(z: &[T], out: &mut Vec<f64>) {
    out.clear();
    out.extend(z.iter().map(|x| x.to_f64()));
    let m = out.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let lse = out.iter().map(|&x| (x - m).exp()).sum::<f64>().ln() + m;
    out.iter_mut().for_each(|x| *x -= lse);
}

impl StepDecoder for Translator<f32> {
    type State = DecodeState<f32>;

    fn vocab(&self) -> usize {
        self.config.tgt_vocab
    }

    fn step(&mut self, state: &mut DecodeState<f32>, last: &[u32]) -> &[f32] {
        self.decode_step(state, last)
    }

    fn select(&self, state: &DecodeState<f32>, rows: &[usize]) -> DecodeState<f32> {
        state.select(rows)
    }
}

/// Attention of each row's top state (`inf.layer_x`) over its sentence's memory: α into
/// `inf.alpha` (R, S), contexts into `inf.ctx` (R, Dv).
fn attend<T: Gemm>(
    c: &super::model::TranslatorConfig,
    attn: &firth_nn::attention::AttentionParams<T>,
    inf: &mut Inference<T>,
    st: &DecodeState<T>,
) {
    let (hd, dv) = (c.dec_hidden, c.memory());
    let (rows, s_n, b_n) = (st.rows, inf.src_steps, inf.sents);
    resize(&mut inf.alpha, rows * s_n);
    resize(&mut inf.ctx, rows * dv);
    resize(&mut inf.scores, s_n);
    let additive = c.attention == AttentionType::Additive;
    if additive {
        resize(&mut inf.qp, rows * hd);
        resize(&mut inf.u, hd);
        let w_q = &attn.w.as_ref().expect("additive has W_q").value;
        gemm(
            &mut inf.qp,
            Out::Set,
            &inf.layer_x,
            Op::N,
            w_q,
            Op::N,
            rows,
            hd,
            hd,
        );
    }
    for r in 0..rows {
        let sb = st.sent[r];
        let len = inf.src_len[sb];
        let q = &inf.layer_x[r * hd..][..hd];
        for s in 0..len {
            inf.scores[s] = match c.attention {
                AttentionType::Dot => dot(q, &inf.memory[(s * b_n + sb) * dv..][..dv]),
                AttentionType::General => dot(q, &inf.keys[(s * b_n + sb) * hd..][..hd]),
                _ => {
                    let v = &attn.v.as_ref().expect("additive has v").value;
                    let kp = &inf.keys[(s * b_n + sb) * hd..][..hd];
                    let qp = &inf.qp[r * hd..][..hd];
                    for ((u, &a), &b) in inf.u.iter_mut().zip(qp).zip(kp) {
                        *u = (a + b).tanh();
                    }
                    dot(&inf.u, v)
                }
            };
        }
        let alpha = &mut inf.alpha[r * s_n..][..s_n];
        let m = inf.scores[..len]
            .iter()
            .fold(inf.scores[0], |a, &b| if b > a { b } else { a });
        let mut sum = T::ZERO;
        for (a, &e) in alpha[..len].iter_mut().zip(&inf.scores[..len]) {
            *a = (e - m).exp();
            sum += *a;
        }
        let inv = T::ONE / sum;
        alpha[..len].iter_mut().for_each(|a| *a *= inv);
        alpha[len..].fill(T::ZERO);
        let ctx = &mut inf.ctx[r * dv..][..dv];
        ctx.fill(T::ZERO);
        for (s, &a) in alpha[..len].iter().enumerate() {
            for (o, &x) in ctx.iter_mut().zip(&inf.memory[(s * b_n + sb) * dv..][..dv]) {
                *o += a * x;
            }
        }
    }
}

use firth_nn::attention::dot;
