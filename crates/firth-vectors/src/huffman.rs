//! Huffman tree over word counts for hierarchical softmax (word2vec C's `CreateBinaryTree`).
//!
//! Each word w gets a path of inner nodes `points[w]` (indices into the output matrix, root
//! first) and binary `codes[w]`; the probability of w is the product over its path of
//! σ(±u_node·v), with label `1 - code` for each node.

/// Codes and inner-node paths for every word.
#[derive(Debug, Clone, Default)]
pub struct Huffman {
    pub codes: Vec<Vec<u8>>,
    pub points: Vec<Vec<u32>>,
}

impl Huffman {
    /// Builds the tree. `counts` must be sorted in descending order (as a counted vocabulary
    /// is); the two-queue construction then runs in linear time. Inner node `i` (0-based) is
    /// row `i` of the output matrix; there are `counts.len() - 1` of them.
    pub fn build(counts: &[u64]) -> Huffman {
        let n = counts.len();
        if n == 0 {
            return Huffman::default();
        }
        if n == 1 {
            return Huffman {
                codes: vec![vec![0]],
                points: vec![vec![0]],
            };
        }
        let mut count = vec![u64::MAX; 2 * n];
        count[..n].copy_from_slice(counts);
        let mut binary = vec![0u8; 2 * n];
        let mut parent = vec![0usize; 2 * n];
        // pos1 walks the leaves from the rarest up, pos2 the inner nodes as they are made.
        let mut pos1 = n as isize - 1;
        let mut pos2 = n;
        for a in 0..n - 1 {
            let mut pick = || {
                if pos1 >= 0 && count[pos1 as usize] < count[pos2] {
                    pos1 -= 1;
                    (pos1 + 1) as usize
                } else {
                    pos2 += 1;
                    pos2 - 1
                }
            };
            let min1 = pick();
            let min2 = pick();
            count[n + a] = count[min1] + count[min2];
            parent[min1] = n + a;
            parent[min2] = n + a;
            binary[min2] = 1;
        }
        let root = 2 * n - 2;
        let mut codes = Vec::with_capacity(n);
        let mut points = Vec::with_capacity(n);
        for w in 0..n {
            let mut code = vec![];
            let mut point = vec![];
            let mut b = w;
            while b != root {
                code.push(binary[b]);
                b = parent[b];
                point.push((b - n) as u32);
            }
            code.reverse();
            point.reverse();
            codes.push(code);
            points.push(point);
        }
        Huffman { codes, points }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distribution() {
        // Counts 8,4,2,1,1: merges (1,1)->2, (2,2)->4, (4,4)->8, (8,8)->16.
        // Optimal code lengths 1,2,3,4,4 (total cost 8+8+6+4+4 = 30).
        let h = Huffman::build(&[8, 4, 2, 1, 1]);
        let lens: Vec<usize> = h.codes.iter().map(|c| c.len()).collect();
        assert_eq!(lens, vec![1, 2, 3, 4, 4]);
        // The codes form a prefix-free set.
        for i in 0..5 {
            for j in 0..5 {
                if i != j {
                    assert!(!h.codes[j].starts_with(&h.codes[i]), "{i} prefix of {j}");
                }
            }
        }
        // Every path starts at the root, which is the last inner node made (n - 2 = 3).
        assert!(h.points.iter().all(|p| p[0] == 3));
        // Exact codes of word2vec C's construction: the second-picked node gets bit 1.
        assert_eq!(h.codes[0], vec![1]);
        assert_eq!(h.codes[3], vec![0, 0, 0, 1]);
        assert_eq!(h.codes[4], vec![0, 0, 0, 0]);
    }

    #[test]
    fn kraft_equality_on_uniform() {
        let h = Huffman::build(&[5; 16]);
        assert!(h.codes.iter().all(|c| c.len() == 4));
        let kraft: f64 = h.codes.iter().map(|c| 0.5f64.powi(c.len() as i32)).sum();
        assert!((kraft - 1.0).abs() < 1e-12);
    }
}
