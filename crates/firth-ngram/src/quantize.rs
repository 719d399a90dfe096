//! Quantized probabilities and backoffs for the trie layout: each order's values are split into
//! `2^bits` bins of equal population over the sorted values, and a value is stored as the index
//! of the nearest bin centre, the centre being the mean of the bin's values (Federico and
//! Bertoldi 2006, as KenLM's `build_binary -q -b` does, so a quantized model scores as KenLM's).
//!
//! Backoffs reserve two codes: 0 for a backoff of 0 on an n-gram that no longer n-gram extends
//! (stored as `-0.0`, which lets a query drop it from the state), 1 for a backoff of 0 on one
//! that does (`+0.0`); both decode exactly. The highest order has no backoff. Unigrams are not
//! quantized.

/// Codes 0 and 1 of a backoff table: exact zeros that mark whether the n-gram extends.
pub const BACKOFF_RESERVED: usize = 2;

/// `-0.0`: a zero backoff on an n-gram that is no longer n-gram's context.
pub const NO_EXTENSION: f32 = -0.0;

/// True unless `backoff` is exactly `-0.0`: the n-gram may be the context of a longer one.
#[inline]
pub fn extends(backoff: f32) -> bool {
    backoff.to_bits() != NO_EXTENSION.to_bits()
}

/// Bin centres for `values` (sorted here) into `bins` equal-population bins. An empty bin (fewer
/// values than bins) repeats the previous centre, or is `-inf` when it is the first. The mean
/// is summed in `f64` in sorted order and divided by the bin's size as `f32`, rounding once,
/// as KenLM does, so both tools pick the same centres.
pub fn make_bins(values: &mut [f32], bins: usize) -> Vec<f32> {
    values.sort_unstable_by(|a, b| a.total_cmp(b));
    let mut centres = Vec::with_capacity(bins);
    let mut start = 0usize;
    for i in 0..bins {
        let finish = ((values.len() as u128 * (i as u128 + 1)) / bins as u128) as usize;
        let c = if finish == start {
            centres.last().copied().unwrap_or(f32::NEG_INFINITY)
        } else {
            let sum: f64 = values[start..finish].iter().map(|&v| v as f64).sum();
            (sum / ((finish - start) as f32) as f64) as f32
        };
        centres.push(c);
        start = finish;
    }
    centres
}

/// The code of the centre nearest `value` among `centres[reserved..]` (sorted); a tie goes to the
/// upper centre.
#[inline]
pub fn encode(centres: &[f32], reserved: usize, value: f32) -> u64 {
    let c = &centres[reserved..];
    let above = c.partition_point(|&x| x < value);
    let code = if above == 0 {
        0
    } else if above == c.len() {
        c.len() - 1
    } else if value - c[above - 1] < c[above] - value {
        above - 1
    } else {
        above
    };
    (code + reserved) as u64
}

/// Probability centres of one order from all its probabilities.
pub fn train_probs(mut probs: Vec<f32>, bits: u8) -> Vec<f32> {
    make_bins(&mut probs, 1 << bits)
}

/// Backoff centres of one order: the two reserved zeros, then bins over the nonzero backoffs.
pub fn train_backoffs(backoffs: &[f32], bits: u8) -> Vec<f32> {
    let mut nonzero: Vec<f32> = backoffs.iter().copied().filter(|&b| b != 0.0).collect();
    let mut c = vec![NO_EXTENSION, 0.0];
    c.extend(make_bins(&mut nonzero, (1usize << bits) - BACKOFF_RESERVED));
    c
}

/// The code of a backoff: a zero keeps its extension mark exactly.
#[inline]
pub fn encode_backoff(centres: &[f32], backoff: f32) -> u64 {
    if backoff == 0.0 {
        if extends(backoff) {
            1
        } else {
            0
        }
    } else {
        encode(centres, BACKOFF_RESERVED, backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_means_of_equal_populations() {
        let mut v = vec![-4.0, -1.0, -3.0, -2.0, -6.0, -5.0, -8.0, -7.0];
        // Sorted: -8 -7 | -6 -5 | -4 -3 | -2 -1.
        assert_eq!(make_bins(&mut v, 4), vec![-7.5, -5.5, -3.5, -1.5]);
        // Three values in four bins: sizes 0, 1, 1, 1 (cut at 3*1/4=0, 3*2/4=1, 2, 3).
        let mut w = vec![-1.0, -2.0, -3.0];
        assert_eq!(
            make_bins(&mut w, 4),
            vec![f32::NEG_INFINITY, -3.0, -2.0, -1.0]
        );
    }

    #[test]
    fn encoding_picks_the_nearest_centre() {
        let c = [-7.5, -5.5, -3.5, -1.5];
        assert_eq!(encode(&c, 0, -9.0), 0);
        assert_eq!(encode(&c, 0, -6.4), 1);
        assert_eq!(encode(&c, 0, -4.5), 2); // a tie goes up
        assert_eq!(encode(&c, 0, -0.1), 3);
        let b = train_backoffs(&[0.0, -0.0, -0.5, -0.25], 2);
        assert_eq!(b.len(), 4);
        assert_eq!(b[2], -0.5);
        assert_eq!(b[3], -0.25);
        assert_eq!(encode_backoff(&b, -0.0), 0);
        assert_eq!(encode_backoff(&b, 0.0), 1);
        assert_eq!(encode_backoff(&b, -0.3), 3);
        assert!(!extends(b[0]) && extends(b[1]));
    }
}
