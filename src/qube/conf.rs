//! `callbacks.conf`: `filename = trigger` lines, `#` comments; the file's extension picks
//! the language (`.py` python, `.pl` perl, `.qcb` qube) and its content is the code.

use std::fmt;

use crate::model::Language;

/// One universal callback named by the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfEntry {
    /// The code file, as written.
    pub file: String,
    /// Its language, from the extension.
    pub language: Language,
    /// The trigger expression.
    pub trigger: String,
    /// The 1-based line it came from.
    pub line: usize,
}

/// A `callbacks.conf` line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfError {
    /// The 1-based line.
    pub line: usize,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "callbacks.conf line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ConfError {}

/// Reads the entries of a `callbacks.conf`. Blank lines and `#` comments (whole-line or
/// after the trigger) are skipped. The triggers are parsed later, when the engine
/// attaches them.
///
/// # Errors
/// The first line that has no `=`, no file name, no trigger or an unknown extension.
pub fn parse_callbacks_conf(text: &str) -> Result<Vec<ConfEntry>, ConfError> {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        entries.push(parse_line(content, line)?);
    }
    Ok(entries)
}

fn parse_line(content: &str, line: usize) -> Result<ConfEntry, ConfError> {
    let err = |message: String| ConfError { line, message };
    let Some((file, trigger)) = content.split_once('=') else {
        return Err(err(format!("missing `=`; expected `filename = trigger`, got `{content}`")));
    };
    let (file, trigger) = (file.trim(), trigger.trim());
    if file.is_empty() {
        return Err(err("missing file name before `=`".to_string()));
    }
    if trigger.is_empty() {
        return Err(err(format!("missing trigger after `{file} =`")));
    }
    let language =
        language_of(file).ok_or_else(|| err(format!("unknown extension of `{file}`; expected .py, .pl or .qcb")))?;
    Ok(ConfEntry { file: file.to_string(), language, trigger: trigger.to_string(), line })
}

fn language_of(file: &str) -> Option<Language> {
    let (_, ext) = file.rsplit_once('.')?;
    match ext {
        "py" => Some(Language::Python),
        "pl" => Some(Language::Perl),
        "qcb" => Some(Language::Qube),
        _ => None,
    }
}
