//! `callbacks.conf`: `filename = trigger` lines, `#` comments; the file's extension picks
//! the language (`.py` python, `.pl` perl, `.qcb` qube) and its content is the code.

use std::fmt;

use crate::front::model::Language;

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

/// Reads a `callbacks.conf` and the code files it names (relative to its folder), and
/// returns the universal callbacks to hand to [`crate::Engine::add_universal`]. A `.qcb`
/// file's content is trimmed (it is one qube code); other code is kept as it is.
///
/// # Errors
/// The conf file or a code file cannot be read, or a line is malformed; the error
/// names the line.
pub fn load_callbacks_conf(path: &std::path::Path) -> Result<Vec<crate::CallbackSpec>, ConfError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfError { line: 0, message: format!("cannot read {}: {e}", path.display()) })?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    parse_callbacks_conf(&text)?
        .into_iter()
        .map(|entry| {
            let file = dir.join(&entry.file);
            let code = std::fs::read_to_string(&file)
                .map_err(|e| ConfError { line: entry.line, message: format!("cannot read {}: {e}", file.display()) })?;
            let code = if entry.language == Language::Qube { code.trim().to_string() } else { code };
            Ok(crate::CallbackSpec { triggers: vec![entry.trigger], language: entry.language, code, maximum: None })
        })
        .collect()
}
