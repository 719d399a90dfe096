//! Nearest-neighbour queries over a vector file, batched.
//!
//! One query is a scan of the whole unit-length matrix (50,000 × 200 f32 is 40 MB), which is
//! bound by memory bandwidth: ~1-2 ms however fast the dot product. Under many concurrent
//! requests, scanning once per query makes them queue behind each other. So queries go to a
//! few worker threads per vector file (one per core); a free worker takes every query waiting
//! at that moment and answers them together: one matrix product Q·Mᵀ per block of rows (faer's
//! GEMM through `firth_nn::gemm`), so N waiting queries cost one pass over the matrix instead
//! of N. Each worker runs its batch on its own thread (`firth_nn::par::sequential`): handing
//! small products to the rayon pool costs more than it saves, and idle pool threads spinning
//! take cycles from the workers and the HTTP threads. A lone query takes the plain SIMD scan
//! (`top_k_ids`), which is what the CLI runs.
//!
//! Where the CPU has 8-bit dot products (AVX-512 VNNI), every batch instead goes through
//! [`QuantizedRows`]: a quarter of the bytes and about a quarter of the time per row, with an
//! error bound that keeps the answers exactly `top_k_ids`'s (see that module).

use std::sync::{mpsc, Arc, Mutex};

use firth_nn::gemm::{gemm, Op, Out};
use firth_vectors::embeddings::{top_k_ids, Embeddings};
use firth_vectors::quantized::{fast_kernel_available, NeighbourQuery, QuantizedRows};
use tokio::sync::oneshot;

/// Rows of the matrix scored per GEMM: 1024 rows against 256 queries is a 1 MB score block,
/// which stays in L2 while the top-k lists are updated from it. (4096 rows, a 4 MB block, cost
/// 0.29 / 0.23 / 0.17 ms per query in batches of 32 / 64 / 128, against 0.22 / 0.17 / 0.15 ms
/// now: `examples/nearest_speed.rs`, 54,605 x 100.)
const BLOCK: usize = 1024;
/// At most this many queries are answered by one pass.
const MAX_BATCH: usize = 256;

/// A unit-length query with what to leave out of its answer.
pub struct Query {
    pub q: Vec<f32>,
    pub k: usize,
    pub exclude: Vec<usize>,
    pub reply: oneshot::Sender<Vec<(usize, f32)>>,
}

/// The handle requests use; dropping every handle ends the worker.
#[derive(Clone)]
pub struct Nearest {
    tx: mpsc::Sender<Query>,
}

impl Nearest {
    /// Starts the worker threads over `e`'s unit-length rows (computed here, once), and their
    /// 8-bit copy where the CPU scores it faster ([`Scan`]).
    pub fn start(e: Arc<Embeddings>, name: &str) -> std::io::Result<Nearest> {
        let scan = Arc::new(Scan::new(e));
        let (tx, rx) = mpsc::channel::<Query>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        for w in 0..workers {
            let (scan, rx) = (scan.clone(), rx.clone());
            std::thread::Builder::new()
                .name(format!("nearest-{w}-{name}"))
                .spawn(move || firth_nn::par::sequential(|| worker(&scan, &rx)))?;
        }
        Ok(Nearest { tx })
    }

    /// Queues a query; the answer (row, cosine) comes on `reply`.
    pub fn send(&self, q: Query) -> Result<(), String> {
        self.tx
            .send(q)
            .map_err(|_| "the nearest-neighbour worker has stopped".to_string())
    }
}

/// A vector file's rows and how they are scanned: through [`QuantizedRows`] (exact, and about
/// 4x faster) where the CPU has 8-bit dot products, else by the f32 product below.
pub struct Scan {
    e: Arc<Embeddings>,
    quantized: Option<QuantizedRows>,
}

impl Scan {
    pub fn new(e: Arc<Embeddings>) -> Scan {
        let quantized = if fast_kernel_available() {
            QuantizedRows::new(e.normed(), e.dim)
        } else {
            let _ = e.normed();
            None
        };
        Scan { e, quantized }
    }

    /// Whether queries go through the 8-bit copy.
    pub fn quantized(&self) -> bool {
        self.quantized.is_some()
    }

    /// The answers to `batch`, each exactly what `top_k_ids` gives for that query alone (the
    /// f32 product up to the rounding of a dot product summed in another order).
    pub fn answer(&self, batch: &[Query]) -> Vec<Vec<(usize, f32)>> {
        match &self.quantized {
            Some(q) => {
                let queries: Vec<NeighbourQuery> = batch
                    .iter()
                    .map(|b| NeighbourQuery {
                        q: &b.q,
                        k: b.k,
                        exclude: &b.exclude,
                    })
                    .collect();
                q.top_k(self.e.normed(), &queries)
            }
            None => answer_f32(&self.e, batch),
        }
    }
}

fn worker(scan: &Scan, rx: &Mutex<mpsc::Receiver<Query>>) {
    loop {
        // Hold the receiver only while collecting a batch, so another worker can collect the
        // next one while this one computes.
        let batch = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            let Ok(first) = rx.recv() else { return };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(q) => batch.push(q),
                    Err(_) => break,
                }
            }
            batch
        };
        let answers = scan.answer(&batch);
        for (q, a) in batch.into_iter().zip(answers) {
            // The requester may have given up (timeout); nothing to do then.
            let _ = q.reply.send(a);
        }
    }
}

/// [`Scan::answer`] without the 8-bit copy.
pub fn answer_f32(e: &Embeddings, batch: &[Query]) -> Vec<Vec<(usize, f32)>> {
    let (d, n) = (e.dim, e.len());
    let norm = e.normed();
    if batch.len() == 1 {
        let b = &batch[0];
        return vec![top_k_ids(norm, d, &b.q, b.k, &b.exclude, n)];
    }
    let nq = batch.len();
    let mut qs = Vec::with_capacity(nq * d);
    for b in batch {
        qs.extend_from_slice(&b.q);
    }
    let mut best: Vec<TopK> = batch.iter().map(|b| TopK::new(b.k)).collect();
    let mut scores = vec![0f32; nq * BLOCK];
    for start in (0..n).step_by(BLOCK) {
        let rows = BLOCK.min(n - start);
        let s = &mut scores[..nq * rows];
        // S (nq × rows) = Q (nq × d) · M[start..start+rows]ᵀ.
        gemm(
            s,
            Out::Set,
            &qs,
            Op::N,
            &norm[start * d..(start + rows) * d],
            Op::T,
            nq,
            rows,
            d,
        );
        for ((top, row), b) in best.iter_mut().zip(s.chunks(rows)).zip(batch) {
            top.scan(row, start, &b.exclude);
        }
    }
    best.into_iter().map(|t| t.best).collect()
}

/// The k best (row, score) seen so far, best first; ties keep the lower row first, as
/// `top_k_ids` does (rows arrive in increasing order).
struct TopK {
    k: usize,
    best: Vec<(usize, f32)>,
}

impl TopK {
    fn new(k: usize) -> TopK {
        TopK {
            k,
            best: Vec::with_capacity(k + 1),
        }
    }

    /// The score a row must beat to enter the list.
    fn threshold(&self) -> f32 {
        if self.best.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.best[self.k - 1].1
        }
    }

    /// Offers rows `start..start + scores.len()`, leaving out `exclude`. Almost every score
    /// falls below the threshold once the list is full, so groups of 16 are first tested
    /// together (a comparison the compiler vectorises) and only a group with a candidate is
    /// looked at one by one.
    fn scan(&mut self, scores: &[f32], start: usize, exclude: &[usize]) {
        const W: usize = 16;
        if self.k == 0 {
            return;
        }
        for (g, group) in scores.chunks(W).enumerate() {
            let t = self.threshold();
            let mut any = false;
            for &v in group {
                any |= v > t;
            }
            if !any {
                continue;
            }
            for (j, &v) in group.iter().enumerate() {
                let i = start + g * W + j;
                if v > self.threshold() && !exclude.contains(&i) {
                    self.push(i, v);
                }
            }
        }
    }

    fn push(&mut self, i: usize, s: f32) {
        let pos = self.best.partition_point(|&(_, bs)| bs >= s);
        self.best.insert(pos, (i, s));
        self.best.truncate(self.k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Batched answers equal the one-query scan's on random vectors over several blocks.
    #[test]
    fn batched_answers_equal_the_single_scan() {
        let (n, d) = (BLOCK + 1234, 16);
        let mut x = 12345u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let data: Vec<f32> = (0..n * d).map(|_| rnd()).collect();
        let words = (0..n).map(|i| format!("w{i}")).collect();
        let e = Embeddings::new(words, d, data);
        let norm = e.normed().to_vec();
        let mut batch = vec![];
        let mut singles = vec![];
        for i in 0..7 {
            let row = (i * 517) % n;
            let q = norm[row * d..(row + 1) * d].to_vec();
            let exclude = vec![row];
            singles.push(top_k_ids(&norm, d, &q, 10, &exclude, n));
            let (reply, _) = oneshot::channel();
            batch.push(Query {
                q,
                k: 10,
                exclude,
                reply,
            });
        }
        // The same rows in the same order; the scores up to the rounding of a dot product
        // summed in another order (the GEMM's).
        let same = |got: &[Vec<(usize, f32)>], want: &[Vec<(usize, f32)>]| {
            assert_eq!(got.len(), want.len());
            for (g, s) in got.iter().zip(want) {
                assert_eq!(g.len(), 10);
                for (a, b) in g.iter().zip(s) {
                    assert_eq!(a.0, b.0);
                    assert!((a.1 - b.1).abs() < 1e-5, "{} vs {}", a.1, b.1);
                }
            }
        };
        same(&answer_f32(&e, &batch), &singles);
        // The scan the server runs: where the CPU has VNNI, the 8-bit copy re-scores its
        // candidates with top_k_ids's own f32 product, so its answers are exactly top_k_ids's;
        // elsewhere it is answer_f32 (one query alone goes through top_k_ids itself).
        let scan = Scan::new(Arc::new(e));
        if scan.quantized() {
            assert_eq!(scan.answer(&batch), singles);
        } else {
            same(&scan.answer(&batch), &singles);
        }
        assert_eq!(scan.answer(&batch[..1]), singles[..1]);
    }
}
