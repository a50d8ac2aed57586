//! Which tensors `quantize`, `cast` and `footprint` convert, and why the
//! others are kept as they are.
//!
//! By default a floating-point tensor with two or more dimensions is
//! converted and a 1-D one (a norm's weight, a bias) is kept, as llama.cpp's
//! converter and torchao do: they are few bytes and quantizing them costs
//! accuracy. `--all` converts every float tensor (quantlab's old behaviour);
//! `--include GLOB` keeps only the tensors a pattern matches as candidates,
//! `--exclude GLOB` removes the ones a pattern matches. The library is
//! policy-free: this is the command line's choice.

use std::collections::BTreeMap;
use std::fmt;

use anyhow::{Context, Result};
use globset::{Glob, GlobSet, GlobSetBuilder};
use quantlab::io::Tensor;
use serde::Serialize;

use crate::args::SelectArgs;

/// The metadata key of the output that records the selection.
pub const KEY: &str = "quantlab.selection";

/// Why a tensor is kept as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Integers, booleans: nothing to convert.
    NotFloat,
    /// A float type quantlab does not read (MX, FNUZ float8, complex).
    UnreadFloat,
    /// No elements.
    Empty,
    /// Fewer than two dimensions, and no `--all`.
    OneDim,
    /// Matched by no `--include` pattern.
    NotIncluded,
    /// Matched by an `--exclude` pattern.
    Excluded,
    /// Selected, but its shape does not split into the block format's blocks.
    Unfit,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::NotFloat => "not floating point",
            Reason::UnreadFloat => "a float type quantlab does not read",
            Reason::Empty => "empty",
            Reason::OneDim => "fewer than 2 dimensions; --all converts them",
            Reason::NotIncluded => "matched by no --include",
            Reason::Excluded => "matched by --exclude",
            Reason::Unfit => "its rows are not whole blocks of the format",
        })
    }
}

/// The rules the flags set.
#[derive(Debug, Clone)]
pub struct Selection {
    all: bool,
    include: Vec<String>,
    exclude: Vec<String>,
    include_set: GlobSet,
    exclude_set: GlobSet,
}

fn glob_set(flag: &str, patterns: &[String]) -> Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        set.add(Glob::new(p).with_context(|| format!("{flag} {p}: not a valid glob pattern"))?);
    }
    set.build().with_context(|| format!("{flag}: the patterns cannot be combined"))
}

impl Selection {
    /// The selection the flags describe.
    pub fn new(args: &SelectArgs) -> Result<Selection> {
        Ok(Selection {
            all: args.all,
            include: args.include.clone(),
            exclude: args.exclude.clone(),
            include_set: glob_set("--include", &args.include)?,
            exclude_set: glob_set("--exclude", &args.exclude)?,
        })
    }

    /// `None` when `t` is converted, otherwise why it is kept.
    pub fn keep(&self, t: &Tensor<'_>) -> Option<Reason> {
        if t.floats().is_none() {
            return Some(if t.is_unread_float() { Reason::UnreadFloat } else { Reason::NotFloat });
        }
        if !self.include.is_empty() && !self.include_set.is_match(&t.name) {
            return Some(Reason::NotIncluded);
        }
        if self.exclude_set.is_match(&t.name) {
            return Some(Reason::Excluded);
        }
        if !self.all && t.shape.len() < 2 {
            return Some(Reason::OneDim);
        }
        if t.numel() == 0 {
            return Some(Reason::Empty);
        }
        None
    }
}

/// What was kept, by reason, in file order: the report and the metadata.
#[derive(Debug, Default, Serialize)]
pub struct Kept {
    /// `true` with `--all`.
    all: bool,
    include: Vec<String>,
    exclude: Vec<String>,
    /// Names of the converted tensors.
    converted: Vec<String>,
    /// Every kept tensor's name, by reason.
    kept: BTreeMap<Reason, Vec<String>>,
}

impl Kept {
    /// An empty record of `selection`.
    pub fn new(selection: &Selection) -> Kept {
        Kept {
            all: selection.all,
            include: selection.include.clone(),
            exclude: selection.exclude.clone(),
            ..Kept::default()
        }
    }

    /// Records the decision about `name`.
    pub fn record(&mut self, name: &str, reason: Option<Reason>) {
        match reason {
            None => self.converted.push(name.to_string()),
            Some(r) => self.kept.entry(r).or_default().push(name.to_string()),
        }
    }

    /// The metadata value: this record as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The lines the command prints: how many were converted, then one line
    /// per reason with the names (the first few of a long list).
    pub fn summary(&self, verb: &str) -> Vec<String> {
        const NAMES_SHOWN: usize = 6;
        let mut lines = vec![format!(
            "{verb} {} tensor(s); kept {} as they are",
            self.converted.len(),
            self.kept.values().map(Vec::len).sum::<usize>()
        )];
        for (reason, names) in &self.kept {
            let mut shown = names.iter().take(NAMES_SHOWN).cloned().collect::<Vec<_>>().join(", ");
            if names.len() > NAMES_SHOWN {
                shown += &format!(", ... ({} more)", names.len() - NAMES_SHOWN);
            }
            lines.push(format!("  kept {} ({reason}): {shown}", names.len()));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use quantlab::io::Dtype;

    use super::*;

    fn tensor(name: &str, dtype: Dtype, shape: &[usize]) -> Tensor<'static> {
        let len = shape.iter().product::<usize>() * 4;
        Tensor { name: name.into(), dtype, shape: shape.to_vec(), data: Cow::Owned(vec![0; len]), stored_as: None }
    }

    fn select(all: bool, include: &[&str], exclude: &[&str]) -> Selection {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Selection::new(&SelectArgs { all, include: strings(include), exclude: strings(exclude) }).unwrap()
    }

    #[test]
    fn two_dimensional_floats_by_default_and_the_flags_narrow_them() {
        let w = tensor("encoder.layer.0.attention.query.weight", Dtype::F32, &[8, 8]);
        let b = tensor("encoder.layer.0.attention.query.bias", Dtype::F32, &[8]);
        let e = tensor("embeddings.word_embeddings.weight", Dtype::F32, &[16, 8]);
        let ids = tensor("position_ids", Dtype::I64, &[1, 8]);
        let empty = tensor("pooler.dense.weight", Dtype::F32, &[0, 8]);
        let default = select(false, &[], &[]);
        assert_eq!(default.keep(&w), None);
        assert_eq!(default.keep(&b), Some(Reason::OneDim));
        assert_eq!(default.keep(&e), None);
        assert_eq!(default.keep(&ids), Some(Reason::NotFloat));
        assert_eq!(default.keep(&empty), Some(Reason::Empty));
        assert_eq!(select(true, &[], &[]).keep(&b), None);
        let no_embeddings = select(false, &[], &["*embeddings*"]);
        assert_eq!(no_embeddings.keep(&e), Some(Reason::Excluded));
        assert_eq!(no_embeddings.keep(&w), None);
        let attention = select(true, &["*attention*"], &[]);
        assert_eq!(attention.keep(&b), None);
        assert_eq!(attention.keep(&e), Some(Reason::NotIncluded));
        let bad = Selection::new(&SelectArgs { all: false, include: vec!["[".into()], exclude: vec![] });
        assert!(bad.unwrap_err().to_string().contains("--include [: not a valid glob pattern"));
    }

    #[test]
    fn the_record_lists_every_decision() {
        let mut kept = Kept::new(&select(false, &[], &["*emb*"]));
        kept.record("w", None);
        kept.record("b", Some(Reason::OneDim));
        kept.record("emb", Some(Reason::Excluded));
        assert_eq!(
            kept.to_json(),
            r#"{"all":false,"include":[],"exclude":["*emb*"],"converted":["w"],"kept":{"one_dim":["b"],"excluded":["emb"]}}"#
        );
        assert_eq!(
            kept.summary("quantized"),
            [
                "quantized 1 tensor(s); kept 2 as they are",
                "  kept 1 (fewer than 2 dimensions; --all converts them): b",
                "  kept 1 (matched by --exclude): emb"
            ]
        );
    }
}
