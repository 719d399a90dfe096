//! A set of word vectors (owned or memory-mapped) with similarity and analogy queries.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::simd::dot;

/// Where the matrix lives.
pub enum Store {
    Owned(Vec<f32>),
    /// A memory-mapped firth file; the matrix is `count × dim` f32 at `offset`.
    Mapped {
        map: memmap2::Mmap,
        offset: usize,
        len: usize,
    },
}

/// Word vectors: `words[i]` has row `i` of a `words.len() × dim` matrix.
pub struct Embeddings {
    pub words: Vec<String>,
    pub dim: usize,
    store: Store,
    index: HashMap<String, u32>,
}

/// Analogy scoring: 3CosAdd (argmax cos(x, b - a + c)) or 3CosMul (Levy & Goldberg 2014).
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalogyMethod {
    #[cfg_attr(feature = "clap", value(name = "cosadd"))]
    CosAdd,
    #[cfg_attr(feature = "clap", value(name = "cosmul"))]
    CosMul,
}

impl Embeddings {
    pub fn new(words: Vec<String>, dim: usize, data: Vec<f32>) -> Embeddings {
        assert_eq!(words.len() * dim, data.len(), "matrix size");
        Self::with_store(words, dim, Store::Owned(data))
    }

    pub fn with_store(words: Vec<String>, dim: usize, store: Store) -> Embeddings {
        let mut index = HashMap::with_capacity(words.len());
        // The first occurrence of a word wins (as gensim does when keys repeat).
        for (i, w) in words.iter().enumerate().rev() {
            index.insert(w.clone(), i as u32);
        }
        Embeddings {
            words,
            dim,
            store,
            index,
        }
    }

    /// The first word listed twice, as (first entry, second entry), if any.
    pub fn first_duplicate(&self) -> Option<(usize, usize)> {
        if self.index.len() == self.words.len() {
            return None;
        }
        let mut seen: HashMap<&str, usize> = HashMap::with_capacity(self.words.len());
        for (i, w) in self.words.iter().enumerate() {
            if let Some(&first) = seen.get(w.as_str()) {
                return Some((first, i));
            }
            seen.insert(w, i);
        }
        None
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The whole matrix, row-major.
    pub fn matrix(&self) -> &[f32] {
        match &self.store {
            Store::Owned(v) => v,
            Store::Mapped { map, offset, len } => {
                let bytes = &map[*offset..*offset + len * 4];
                // SAFETY: the loader checked that this range is in the map, 4-byte aligned (the
                // map is page-aligned and the offset a multiple of 64) and little-endian f32s;
                // every bit pattern is a valid f32.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr() as *const f32, *len) }
            }
        }
    }

    pub fn vector(&self, i: usize) -> &[f32] {
        &self.matrix()[i * self.dim..(i + 1) * self.dim]
    }

    pub fn index_of(&self, w: &str) -> Option<usize> {
        self.index.get(w).map(|&i| i as usize)
    }

    pub fn get(&self, w: &str) -> Option<&[f32]> {
        self.index_of(w).map(|i| self.vector(i))
    }

    /// Rows scaled to unit length (zero rows stay zero), as gensim's `get_normed_vectors`.
    pub fn normalized(&self) -> Vec<f32> {
        let mut out = self.matrix().to_vec();
        if self.dim == 0 {
            return out;
        }
        out.par_chunks_mut(self.dim).for_each(|r| {
            let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
            if n > 0.0 {
                for x in r {
                    *x /= n;
                }
            }
        });
        out
    }

    /// Cosine similarity of two words.
    pub fn similarity(&self, a: &str, b: &str) -> Option<f32> {
        let (x, y) = (self.get(a)?, self.get(b)?);
        let (nx, ny) = (dot(x, x).sqrt(), dot(y, y).sqrt());
        if nx == 0.0 || ny == 0.0 {
            return Some(0.0);
        }
        Some(dot(x, y) / (nx * ny))
    }

    /// The `k` words most similar (cosine) to `word`, excluding it.
    pub fn similar(&self, word: &str, k: usize) -> Option<Vec<(String, f32)>> {
        let i = self.index_of(word)?;
        let norm = self.normalized();
        let q = norm[i * self.dim..(i + 1) * self.dim].to_vec();
        Some(self.top_k(&norm, &q, k, &[i], self.len()))
    }

    /// Best `k` rows of `norm` (first `limit` rows) by dot with `q`, skipping `exclude`.
    pub fn top_k(
        &self,
        norm: &[f32],
        q: &[f32],
        k: usize,
        exclude: &[usize],
        limit: usize,
    ) -> Vec<(String, f32)> {
        top_k_ids(norm, self.dim, q, k, exclude, limit.min(self.len()))
            .into_iter()
            .map(|(i, s)| (self.words[i].clone(), s))
            .collect()
    }

    /// Answers "a is to b as c is to ?" (b - a + c), query words excluded.
    pub fn analogy(
        &self,
        a: &str,
        b: &str,
        c: &str,
        k: usize,
        method: AnalogyMethod,
    ) -> Result<Vec<(String, f32)>, String> {
        let ids: Vec<usize> = [a, b, c]
            .iter()
            .map(|w| {
                self.index_of(w)
                    .ok_or_else(|| format!("'{w}' is not in the vocabulary"))
            })
            .collect::<Result<_, _>>()?;
        let norm = self.normalized();
        let d = self.dim;
        let r = |i: usize| &norm[i * d..(i + 1) * d];
        match method {
            AnalogyMethod::CosAdd => {
                let q = cosadd_query(r(ids[0]), r(ids[1]), r(ids[2]));
                Ok(self.top_k(&norm, &q, k, &ids, self.len()))
            }
            AnalogyMethod::CosMul => {
                // gensim most_similar_cosmul: ((1+cos(x,b))/2 · (1+cos(x,c))/2) / ((1+cos(x,a))/2 + 1e-6).
                let mut scored: Vec<(usize, f32)> = (0..self.len())
                    .filter(|i| !ids.contains(i))
                    .map(|i| {
                        let x = r(i);
                        let p = |j: usize| (1.0 + dot(x, r(j))) / 2.0;
                        (i, p(ids[1]) * p(ids[2]) / (p(ids[0]) + 1e-6))
                    })
                    .collect();
                scored.sort_by(|x, y| y.1.total_cmp(&x.1));
                scored.truncate(k);
                Ok(scored
                    .into_iter()
                    .map(|(i, s)| (self.words[i].clone(), s))
                    .collect())
            }
        }
    }
}

/// unit((b + c - a) / 3) as gensim computes it (mean of the weighted unit vectors, then unit).
pub fn cosadd_query(a: &[f32], b: &[f32], c: &[f32]) -> Vec<f32> {
    let mut q: Vec<f32> = (0..a.len()).map(|i| (b[i] + c[i] - a[i]) / 3.0).collect();
    let n = q.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        for x in q.iter_mut() {
            *x /= n;
        }
    }
    q
}

/// Ids of the `k` best rows (by dot with `q`) among the first `limit`, excluding `exclude`;
/// ties keep the lower id first.
pub fn top_k_ids(
    norm: &[f32],
    dim: usize,
    q: &[f32],
    k: usize,
    exclude: &[usize],
    limit: usize,
) -> Vec<(usize, f32)> {
    if k == 0 {
        return vec![];
    }
    let mut best: Vec<(usize, f32)> = Vec::with_capacity(k + 1);
    for i in 0..limit {
        if exclude.contains(&i) {
            continue;
        }
        let s = dot(&norm[i * dim..(i + 1) * dim], q);
        if best.len() < k || s > best[best.len() - 1].1 {
            let pos = best.partition_point(|&(_, bs)| bs >= s);
            best.insert(pos, (i, s));
            best.truncate(k);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made 2-D space: king - man + woman lands exactly on queen.
    fn toy() -> Embeddings {
        let words = ["man", "woman", "king", "queen", "apple"]
            .map(String::from)
            .to_vec();
        #[rustfmt::skip]
        let data = vec![
            1.0, 0.0,   // man
            0.0, 1.0,   // woman
            1.0, 0.2,   // king
            0.2, 1.0,   // queen
            -1.0, -0.3, // apple
        ];
        Embeddings::new(words, 2, data)
    }

    #[test]
    fn analogy_on_hand_made_vectors() {
        let e = toy();
        let r = e
            .analogy("man", "king", "woman", 1, AnalogyMethod::CosAdd)
            .unwrap();
        assert_eq!(r[0].0, "queen");
        let r = e
            .analogy("man", "king", "woman", 1, AnalogyMethod::CosMul)
            .unwrap();
        assert_eq!(r[0].0, "queen");
        assert!(e
            .analogy("man", "king", "robot", 1, AnalogyMethod::CosAdd)
            .is_err());
    }

    #[test]
    fn similar_excludes_query() {
        let e = toy();
        let s = e.similar("king", 2).unwrap();
        assert_eq!(s[0].0, "man");
        assert!(s.iter().all(|(w, _)| w != "king"));
        // cos(king, man) = 1 / sqrt(1.04)
        assert!((s[0].1 - 1.0 / 1.04f32.sqrt()).abs() < 1e-6);
        assert!((e.similarity("man", "woman").unwrap()).abs() < 1e-7);
    }

    #[test]
    fn one_hot_vectors_are_orthogonal() {
        let words: Vec<String> = (0..4).map(|i| format!("w{i}")).collect();
        let mut data = vec![0.0; 16];
        for i in 0..4 {
            data[i * 4 + i] = 1.0;
        }
        let e = Embeddings::new(words, 4, data);
        for a in 0..4 {
            for b in 0..4 {
                let s = e.similarity(&format!("w{a}"), &format!("w{b}")).unwrap();
                assert_eq!(s, if a == b { 1.0 } else { 0.0 });
            }
        }
    }
}

/// Projects `n × dim` rows (row-major) onto their first two principal components (power
/// iteration with deflation on the covariance), returning one (x, y) per row.
pub fn pca2(rows: &[f32], dim: usize) -> Vec<(f32, f32)> {
    let n = rows.len().checked_div(dim).unwrap_or(0);
    if n == 0 {
        return vec![];
    }
    let mut mean = vec![0f64; dim];
    for r in rows.chunks(dim) {
        for (m, &x) in mean.iter_mut().zip(r) {
            *m += x as f64 / n as f64;
        }
    }
    let centred: Vec<Vec<f64>> = rows
        .chunks(dim)
        .map(|r| r.iter().zip(&mean).map(|(&x, m)| x as f64 - m).collect())
        .collect();
    // Covariance-vector product without forming the matrix: C v = Σ_i x_i (x_i · v).
    let cov_mul = |v: &[f64]| -> Vec<f64> {
        let mut out = vec![0.0; dim];
        for x in &centred {
            let s: f64 = x.iter().zip(v).map(|(a, b)| a * b).sum();
            for (o, a) in out.iter_mut().zip(x) {
                *o += a * s;
            }
        }
        out
    };
    let unit = |v: &mut Vec<f64>| {
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if n > 0.0 {
            v.iter_mut().for_each(|x| *x /= n);
        }
    };
    let mut comps: Vec<Vec<f64>> = vec![];
    for c in 0..2 {
        let mut v: Vec<f64> = (0..dim)
            .map(|i| 1.0 + ((i * 7 + c * 3) % 11) as f64 * 0.1)
            .collect();
        unit(&mut v);
        for _ in 0..200 {
            let mut w = cov_mul(&v);
            for p in &comps {
                let s: f64 = w.iter().zip(p).map(|(a, b)| a * b).sum();
                w.iter_mut().zip(p).for_each(|(a, b)| *a -= s * b);
            }
            unit(&mut w);
            v = w;
        }
        comps.push(v);
    }
    centred
        .iter()
        .map(|x| {
            let p = |c: &Vec<f64>| x.iter().zip(c).map(|(a, b)| a * b).sum::<f64>() as f32;
            (p(&comps[0]), p(&comps[1]))
        })
        .collect()
}

#[cfg(test)]
mod pca_tests {
    #[test]
    fn pca_recovers_dominant_axis() {
        // Points spread along (1, 1, 0) with a little spread along (0, 0, 1).
        let mut rows = vec![];
        for i in 0..10 {
            let t = i as f32 - 4.5;
            rows.extend_from_slice(&[t, t, 0.1 * (i % 2) as f32]);
        }
        let p = super::pca2(&rows, 3);
        // First coordinate is ±t·√2.
        let s = p[9].0.signum();
        for (i, (x, _)) in p.iter().enumerate() {
            assert!((x * s - (i as f32 - 4.5) * 2f32.sqrt()).abs() < 1e-3);
        }
    }
}
