//! `callbacks.conf`: `filename = trigger` lines, `#` comments; the file's extension picks
//! the language (`.py` python, `.pl` perl, `.qcb` qube, in any case) and its content is
//! the code.
//!
//! Sites keep these files by hand, so reading one is forgiving where Qube is: a bad line
//! is reported with its file and line number and skipped, and the good lines still
//! load. Qube's setting for universal callbacks is a comma-separated list of files;
//! [`load_callbacks_conf`] takes the same list, where a folder stands for the `.conf`
//! files in it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::front::model::{CallbackSpec, Language};

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

/// A `callbacks.conf` line (or file) that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfError {
    /// The conf file, when the error came from reading one.
    pub path: Option<PathBuf>,
    /// The 1-based line; 0 for the file as a whole.
    pub line: usize,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.path, self.line) {
            (Some(path), 0) => write!(f, "{}: {}", path.display(), self.message),
            (Some(path), line) => write!(f, "{}:{line}: {}", path.display(), self.message),
            (None, line) => write!(f, "callbacks.conf line {line}: {}", self.message),
        }
    }
}

impl std::error::Error for ConfError {}

/// Reads the entries of a `callbacks.conf`. Blank lines and `#` comments (whole-line or
/// after the trigger) are skipped. A malformed line is an error and is skipped too; the
/// other lines are still read. The triggers are parsed later, when the engine attaches
/// them.
///
/// # Example
/// ```
/// use trigwire::qube::parse_callbacks_conf;
/// let (entries, errors) = parse_callbacks_conf("notify.py = failed-job-self\nbroken line\nretry.QCB = timeout-work-self-*\n");
/// assert_eq!(entries.len(), 2);
/// assert_eq!((errors[0].line, errors[0].message.starts_with("missing `=`")), (2, true));
/// ```
pub fn parse_callbacks_conf(text: &str) -> (Vec<ConfEntry>, Vec<ConfError>) {
    let (mut entries, mut errors) = (Vec::new(), Vec::new());
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        match parse_line(content, line) {
            Ok(entry) => entries.push(entry),
            Err(e) => errors.push(e),
        }
    }
    (entries, errors)
}

fn parse_line(content: &str, line: usize) -> Result<ConfEntry, ConfError> {
    let err = |message: String| ConfError { path: None, line, message };
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
    [("py", Language::Python), ("pl", Language::Perl), ("qcb", Language::Qube)]
        .into_iter()
        .find(|(e, _)| ext.eq_ignore_ascii_case(e))
        .map(|(_, language)| language)
}

/// A universal callback read from a `callbacks.conf`, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniversalCallback {
    /// The callback, ready for [`crate::Engine::add_universal`].
    pub spec: CallbackSpec,
    /// The conf file it came from.
    pub path: PathBuf,
    /// Its 1-based line there.
    pub line: usize,
}

/// Reads the universal callbacks of a comma-separated list of `callbacks.conf` files and
/// folders (a folder stands for its files ending in `.conf`, in name order), and the
/// code files they name (relative to each conf file's folder). A `.qcb` file's content is
/// trimmed (it is one qube code); other code is kept as it is.
///
/// Returns the callbacks that could be read, in order, and an error for each line or
/// file that could not (a malformed line, a missing code file), naming the file and
/// line; those are skipped.
pub fn load_callbacks_conf(list: &str) -> (Vec<UniversalCallback>, Vec<ConfError>) {
    let (mut callbacks, mut errors) = (Vec::new(), Vec::new());
    for path in conf_files(list, &mut errors) {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(file_error(&path, format!("cannot read it: {e}")));
                continue;
            }
        };
        let (entries, bad) = parse_callbacks_conf(&text);
        errors.extend(bad.into_iter().map(|e| ConfError { path: Some(path.clone()), ..e }));
        let dir = path.parent().unwrap_or(Path::new("."));
        for entry in entries {
            match read_code(dir, &entry) {
                Ok(code) => {
                    let spec =
                        CallbackSpec { triggers: vec![entry.trigger], language: entry.language, code, maximum: None };
                    callbacks.push(UniversalCallback { spec, path: path.clone(), line: entry.line });
                }
                Err(message) => errors.push(ConfError { path: Some(path.clone()), line: entry.line, message }),
            }
        }
    }
    (callbacks, errors)
}

/// The conf files a list names, folders expanded.
fn conf_files(list: &str, errors: &mut Vec<ConfError>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let path = PathBuf::from(item);
        if !path.is_dir() {
            files.push(path);
            continue;
        }
        match std::fs::read_dir(&path) {
            Ok(dir) => {
                let mut confs: Vec<PathBuf> = dir
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && p.extension().is_some_and(|x| x.eq_ignore_ascii_case("conf")))
                    .collect();
                confs.sort();
                files.extend(confs);
            }
            Err(e) => errors.push(file_error(&path, format!("cannot list the folder: {e}"))),
        }
    }
    files
}

fn read_code(dir: &Path, entry: &ConfEntry) -> Result<String, String> {
    let file = dir.join(&entry.file);
    let code = std::fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    Ok(if entry.language == Language::Qube { code.trim().to_string() } else { code })
}

fn file_error(path: &Path, message: String) -> ConfError {
    ConfError { path: Some(path.to_path_buf()), line: 0, message }
}
