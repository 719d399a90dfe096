"""Result tuples shaped like scipy's, which gensim's ``evaluate_word_pairs`` returns."""

from typing import NamedTuple


class PearsonRResult(NamedTuple):
    """Pearson's r and its two-sided p-value (scipy.stats.pearsonr's result)."""

    statistic: float
    pvalue: float


class SignificanceResult(NamedTuple):
    """Spearman's rho and its two-sided p-value (scipy.stats.spearmanr's result)."""

    statistic: float
    pvalue: float

    @property
    def correlation(self) -> float:
        """Spearman's rho (scipy's older name for ``statistic``)."""
        return self.statistic
