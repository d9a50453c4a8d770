//! "Did you mean" suggestions for misspelt names.

/// The candidate closest to `word` by edit distance, if it is close enough to be a
/// plausible typo: at most a third of the word's length, and at least one edit allowed.
pub(crate) fn nearest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (distance(word, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters, in O(len(b)) space.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(distance("kafel_rules", "kafel_rule"), 1);
        assert_eq!(distance("per_sourc", "per_source"), 1);
        assert_eq!(distance("sever", "server"), 1);
        assert_eq!(distance("abc", "xyz"), 3);
        assert_eq!(distance("", "ab"), 2);
    }

    #[test]
    fn nearest_ignores_names_too_far_to_be_typos() {
        let names = ["server", "server_args", "user"];
        assert_eq!(nearest("sever", names.into_iter()), Some("server"));
        assert_eq!(nearest("completely_different", names.into_iter()), None);
    }
}
