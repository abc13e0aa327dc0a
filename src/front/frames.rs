//! Frame ranges as Qube and Flamenco write them: `1-100`, `1-100x5`, `1,3,5-9`.

use std::fmt;

/// A frame range that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameRangeError {
    /// The offending item of the range, trimmed.
    pub item: String,
    /// What was expected.
    pub message: String,
}

impl fmt::Display for FrameRangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad frame range item `{}`: {}", self.item, self.message)
    }
}

impl std::error::Error for FrameRangeError {}

/// Expands a frame range into frame names, in the order written: comma-separated
/// items, each a frame `N`, a range `A-B` (`A <= B`, both included) or a stepped range
/// `A-BxS` (`A`, `A+S`, ... up to `B`; `S > 0`). White space around items is ignored.
/// At most `limit` frames.
///
/// # Errors
/// An empty or malformed item, a backwards range, a zero step, a number past `u64`,
/// or more than `limit` frames; the error names the item.
///
/// # Example
/// ```
/// use trigwire::qube::frame_range;
/// assert_eq!(frame_range("1-5x2, 10", 1000)?, ["1", "3", "5", "10"]);
/// # Ok::<(), trigwire::qube::FrameRangeError>(())
/// ```
pub fn frame_range(text: &str, limit: u64) -> Result<Vec<String>, FrameRangeError> {
    let mut frames = Vec::new();
    for raw in text.split(',') {
        let item = raw.trim();
        let fail = |message: String| FrameRangeError { item: item.to_string(), message };
        let (first, last, step) = parse_item(item).map_err(|m| fail(m.to_string()))?;
        let count = (last - first) / step + 1;
        if frames.len() as u64 + count > limit {
            return Err(fail(format!("more than the limit of {limit} frames")));
        }
        let mut frame = first;
        loop {
            frames.push(frame.to_string());
            match frame.checked_add(step) {
                Some(next) if next <= last => frame = next,
                _ => break,
            }
        }
    }
    Ok(frames)
}

/// `(first, last, step)` of one item.
fn parse_item(item: &str) -> Result<(u64, u64, u64), &'static str> {
    let (range, step) = match item.split_once(['x', 'X']) {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    let (first, last) = match range.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let n = number(range)?;
            (n, n)
        }
    };
    if last < first {
        return Err("the range runs backwards; expected FIRST-LAST with FIRST <= LAST");
    }
    let step = match step {
        Some(s) => number(s)?,
        None => 1,
    };
    if step == 0 {
        return Err("a step of 0; expected FIRST-LASTxSTEP with STEP > 0");
    }
    Ok((first, last, step))
}

fn number(text: &str) -> Result<u64, &'static str> {
    crate::syntax::parse_number(text.trim()).ok_or("expected N, FIRST-LAST or FIRST-LASTxSTEP of decimal frames")
}

#[cfg(test)]
mod tests {
    use super::frame_range;

    #[test]
    fn ranges_expand_in_order_and_faults_name_the_item() {
        assert_eq!(frame_range("1-3", 10).unwrap(), ["1", "2", "3"]);
        assert_eq!(frame_range("1-10x4", 10).unwrap(), ["1", "5", "9"]);
        assert_eq!(frame_range(" 7 , 1,3-4", 10).unwrap(), ["7", "1", "3", "4"]);
        assert_eq!(frame_range("18446744073709551614-18446744073709551615x5", 10).unwrap(), ["18446744073709551614"]);
        for (text, item) in [("1-", "1-"), ("a", "a"), ("5-1", "5-1"), ("1-9x0", "1-9x0"), ("1,,2", ""), ("", "")] {
            assert_eq!(frame_range(text, 10).unwrap_err().item, item, "{text:?}");
        }
        assert!(frame_range("1-11", 10).unwrap_err().message.contains("limit of 10"));
    }
}
