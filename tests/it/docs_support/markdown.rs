//! Fenced blocks of a Markdown file and the notes that say what to do with
//! them: an HTML comment on the line right above a fence, one of
//!
//! - `<!-- test: status=200 server=keys header:Name=value capture:VAR=Header -->`
//!   the block holds one curl command to run; the next block tagged
//!   `response` (before the next `test:` block) shows its answer;
//! - `<!-- mirrored: FILE TEST... -->` the end-to-end suite runs the same
//!   calls (Python, Node);
//! - `<!-- excerpt: PATH -->` every line shown is a line of that file;
//! - `<!-- no-test: why -->` shown for illustration, with the reason.

use std::path::Path;

#[derive(Debug, Clone)]
pub struct Block {
    /// `README.md:42`, for messages.
    pub place: String,
    /// The fence's info string (`bash`, `json response`, ...).
    pub info: String,
    pub text: String,
    pub note: Option<Note>,
    /// For a `test:` block: the `response` block that shows its answer.
    pub response: Option<Box<Block>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Test(String),
    Mirrored(String),
    Excerpt(String),
    NoTest(String),
}

impl Block {
    pub fn language(&self) -> &str {
        self.info.split_whitespace().next().unwrap_or("")
    }

    pub fn is_response(&self) -> bool {
        self.info.split_whitespace().any(|w| w == "response")
    }
}

/// Every fenced block of `path` (relative to the crate root), in order.
pub fn blocks(path: &str) -> Vec<Block> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()));
    parse(path, &text)
}

pub fn parse(name: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<Block> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = fence(lines[i]) else {
            i += 1;
            continue;
        };
        let start = i;
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && fence(lines[i]) != Some("") {
            body.push(lines[i]);
            i += 1;
        }
        i += 1; // the closing fence
        let note = start.checked_sub(1).and_then(|above| note(lines[above]));
        out.push(Block {
            place: format!("{name}:{}", start + 1),
            info: info.to_string(),
            text: body.join("\n"),
            note,
            response: None,
        });
    }
    attach_responses(out)
}

/// The info string of a fence line, `None` for other lines.
fn fence(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    (line.len() - trimmed.len() <= 3 && trimmed.starts_with("```"))
        .then(|| trimmed.trim_start_matches('`').trim())
}

fn note(line: &str) -> Option<Note> {
    let inner = line
        .trim()
        .strip_prefix("<!--")?
        .strip_suffix("-->")?
        .trim();
    let (kind, rest) = inner.split_once(':')?;
    let rest = rest.trim().to_string();
    match kind.trim() {
        "test" => Some(Note::Test(rest)),
        "mirrored" => Some(Note::Mirrored(rest)),
        "excerpt" => Some(Note::Excerpt(rest)),
        "no-test" => Some(Note::NoTest(rest)),
        _ => None,
    }
}

/// Gives each `test:` block the first `response` block after it, unless
/// another `test:` block comes first.
fn attach_responses(blocks: Vec<Block>) -> Vec<Block> {
    let mut out = blocks.clone();
    for (i, block) in blocks.iter().enumerate() {
        if !matches!(block.note, Some(Note::Test(_))) {
            continue;
        }
        let response = blocks[i + 1..]
            .iter()
            .take_while(|b| !matches!(b.note, Some(Note::Test(_))))
            .find(|b| b.is_response());
        out[i].response = response.map(|b| Box::new(b.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_and_responses_are_attached() {
        let text = "intro\n<!-- test: status=200 -->\n```bash\ncurl x\n```\n\ntext\n\n```json response\n{}\n```\n<!-- no-test: because -->\n```sh\ncurl y\n```\n";
        let blocks = parse("x.md", text);
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0].note, Some(Note::Test("status=200".into())));
        assert_eq!(blocks[0].place, "x.md:3");
        assert_eq!(
            blocks[0].response.as_ref().map(|r| r.text.as_str()),
            Some("{}")
        );
        assert_eq!(blocks[2].note, Some(Note::NoTest("because".into())));
        assert!(blocks[1].is_response() && blocks[1].note.is_none());
    }
}
