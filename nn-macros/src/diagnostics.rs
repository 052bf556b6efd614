//! What every stage needs to report a mistake: the error collector, "did you mean" hints and
//! the wording shared by several messages. Imports nothing of the macro's own.

use quote::ToTokens;

/// Collects errors (serde's `Ctxt`): checking goes on after an error, so the user sees every
/// mistake in one compile.
#[derive(Default)]
pub struct Errors(Vec<syn::Error>);

impl Errors {
    /// An error spanned on `tokens`: the tokens the user must change.
    pub fn spanned(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.0.push(syn::Error::new_spanned(tokens, message));
    }

    /// Adds errors found elsewhere, in order.
    pub fn extend(&mut self, errors: impl IntoIterator<Item = syn::Error>) {
        self.0.extend(errors);
    }

    /// Whether no error was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors found, in order.
    pub fn into_vec(self) -> Vec<syn::Error> {
        self.0
    }

    /// `Ok` if nothing was found, else every error combined into one.
    pub fn into_result(self) -> Result<(), syn::Error> {
        let mut errors = self.0.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut first) => {
                first.extend(errors);
                Err(first)
            }
        }
    }
}

/// `unknown layer `Dens`; did you mean `Dense`?`, or without a hint `unknown layer `Foo``.
pub fn unknown(what: &str, name: &str, hint: Option<&str>) -> String {
    match hint {
        Some(hint) => format!("unknown {what} `{name}`; did you mean `{hint}`?"),
        None => format!("unknown {what} `{name}`"),
    }
}

/// The candidate closest to `name` (edit distance at most a third of its length), for
/// "did you mean" hints.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance counting an insertion, deletion, substitution or swap of two adjacent
/// characters as one edit (optimal string alignment), so `rleu` is one edit from `relu`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// "a" or "an", for the word that follows: `an Embedding layer`.
pub fn article(word: &str) -> &'static str {
    if word.starts_with(['A', 'E', 'I', 'O', 'U']) {
        "an"
    } else {
        "a"
    }
}
