//! Checks for numeric flags, run where clap parses them (`#[arg(value_parser = ...)]`), so a
//! bad value is refused before any work starts, with the accepted range in the message.
//!
//! Every floating-point flag must be finite: `nan`, `inf` and overflowing literals such as
//! `1e999` are refused everywhere.

/// Parses a finite number.
fn finite(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if !x.is_finite() {
        return Err(format!("{s:?} is not a finite number"));
    }
    Ok(x)
}

/// A finite number > 0.
pub fn finite_positive(s: &str) -> Result<f64, String> {
    let x = finite(s)?;
    if x <= 0.0 {
        return Err(format!("must be a finite number > 0, got {x}"));
    }
    Ok(x)
}

/// A finite number >= 0 (0 usually means "off").
pub fn non_negative(s: &str) -> Result<f64, String> {
    let x = finite(s)?;
    if x < 0.0 {
        return Err(format!("must be a finite number >= 0, got {x}"));
    }
    Ok(x)
}

/// Any finite number (negative values allowed).
pub fn finite_any(s: &str) -> Result<f64, String> {
    finite(s)
}

/// A probability or fraction in [0, 1].
pub fn probability(s: &str) -> Result<f64, String> {
    let x = finite(s)?;
    if !(0.0..=1.0).contains(&x) {
        return Err(format!("must be in [0, 1], got {x}"));
    }
    Ok(x)
}

/// A fraction in [0, 1): dropout rates and held-out fractions, where 1 would leave nothing.
pub fn fraction_below_1(s: &str) -> Result<f64, String> {
    let x = finite(s)?;
    if !(0.0..1.0).contains(&x) {
        return Err(format!("must be in [0, 1), got {x}"));
    }
    Ok(x)
}

/// A probability in (0, 1]: nucleus sampling mass, learning-rate decay factors.
pub fn positive_probability(s: &str) -> Result<f64, String> {
    let x = finite(s)?;
    if !(x > 0.0 && x <= 1.0) {
        return Err(format!("must be in (0, 1], got {x}"));
    }
    Ok(x)
}

/// word2vec's starting learning rate, in (0, 1]: larger values make the vectors overflow.
pub fn word2vec_alpha(s: &str) -> Result<f32, String> {
    positive_probability(s).map(|x| x as f32)
}

/// [`finite_positive`] for f32 flags.
pub fn finite_positive_f32(s: &str) -> Result<f32, String> {
    to_f32(finite_positive(s)?)
}

/// [`fraction_below_1`] for f32 flags.
pub fn fraction_below_1_f32(s: &str) -> Result<f32, String> {
    to_f32(fraction_below_1(s)?)
}

fn to_f32(x: f64) -> Result<f32, String> {
    let y = x as f32;
    if !y.is_finite() {
        return Err(format!("{x} is too large for a 32-bit float"));
    }
    Ok(y)
}

/// An integer >= 1 (sizes and counts where 0 would divide by zero or do nothing).
pub fn at_least_1(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if n == 0 {
        return Err("must be at least 1, got 0".into());
    }
    Ok(n)
}

/// [`at_least_1`] for u32 flags.
pub fn at_least_1_u32(s: &str) -> Result<u32, String> {
    let n = at_least_1(s)?;
    u32::try_from(n).map_err(|_| format!("must be at most {}, got {n}", u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_finite_and_out_of_range_values_with_the_range() {
        assert_eq!(finite_positive("0.5"), Ok(0.5));
        assert!(finite_positive("nan").unwrap_err().contains("not a finite"));
        assert!(finite_positive("inf").unwrap_err().contains("not a finite"));
        assert!(finite_positive("1e999")
            .unwrap_err()
            .contains("not a finite"));
        assert!(finite_positive("-1").unwrap_err().contains("> 0, got -1"));
        assert!(finite_positive("0").is_err());
        assert!(finite_positive("x").unwrap_err().contains("not a number"));
        assert_eq!(non_negative("0"), Ok(0.0));
        assert!(non_negative("-0.1").unwrap_err().contains(">= 0"));
        assert_eq!(probability("1"), Ok(1.0));
        assert!(probability("1.5").unwrap_err().contains("[0, 1]"));
        assert!(fraction_below_1("1").unwrap_err().contains("[0, 1)"));
        assert_eq!(fraction_below_1("0.5"), Ok(0.5));
        assert!(positive_probability("0").unwrap_err().contains("(0, 1]"));
        assert!(word2vec_alpha("1e30").is_err());
        assert_eq!(word2vec_alpha("0.025"), Ok(0.025));
        assert_eq!(at_least_1("3"), Ok(3));
        assert!(at_least_1("0").unwrap_err().contains("at least 1"));
        assert!(at_least_1("-2").unwrap_err().contains("not a whole number"));
        assert_eq!(finite_any("-3"), Ok(-3.0));
    }
}
