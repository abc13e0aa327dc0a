//! `trigwire check`: one trigger compiled on its own, with the way back from its latch
//! bits to its atoms' text.

use super::circuit::Templates;
use crate::error::Error;
use crate::front::registry::{Limits, Registry};
use crate::front::resolve::{resolve_explained, Owner};

/// Compiles one trigger on its own, for `trigwire check`: the canonical form, the
/// compiled circuit and its latch slots (duplicate atoms share a slot). `self` and
/// `parent` are resolved against a stand-in owner that has a parent.
///
/// # Errors
/// The parse error, with its span.
pub fn explain(trigger: &str, limits: &Limits) -> Result<String, Error> {
    let mut reg = Registry::new(*limits);
    let expr = crate::syntax::parse(trigger, &limits.parse, &reg.custom).map_err(|e| Error::parse(e, "trigger"))?;
    let owner = Owner { id: 1, pgrp: 1, pid: Some(2) };
    let (texts, shape) = resolve_explained(&expr, Some(owner), trigger, &mut reg.symbols)?;
    let mut templates = Templates::default();
    let template = templates.intern(&shape, texts.len() as u32);
    let mut out = format!("canonical: {expr}\ncircuit: {}\n", templates.get(template).describe());
    for (i, t) in texts.iter().enumerate() {
        out.push_str(&format!("  bit{i}: {t}\n"));
    }
    Ok(out)
}
